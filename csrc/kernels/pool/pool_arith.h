// The arithmetic of one pooling output: the executable specification that the reference kernel
// applies output by output and every optimized kernel reproduces bit for bit (docs/arithmetic.md,
// section 7).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/pool/pool.h"
#include "quant/fixedpoint.h"
#include "quant/fp16.h"
#include "quant/requant.h"

namespace npuemu {

// ---------------------------------------------------------------------------------------------------
// MaxPool. Integers: the largest element of the window (padding never wins). float16: the largest
// element under the order -inf < ... < -0 < +0 < ... < +inf, a NaN never wins (onnxruntime and
// onnx.reference ignore NaN inputs of MaxPool), so max(-0, +0) = +0 whatever the order. A window with no
// input element (possible with dilations) gives the dtype's lowest value (-inf for float16), as
// onnxruntime initializes its maximum.
//
// The float16 order is realised by an int16 key (kernels compare keys with one integer max):
//   key = bits                       for +0 .. +inf        (0 .. 0x7C00)
//   key = bits XOR 0x7FFF            for -0 .. -inf        (-1 .. -31745 as int16)
//   key = -32768                     for NaN (and for padding): below every number
// and the key of the result is mapped back by the same XOR (a self-inverse for keys >= -31745).
constexpr int16_t kKeyLowest = -32768;
constexpr int16_t kKeyFp16NegInf = -31745;  // key of 0xFC00

inline int16_t fp16_order_key(uint16_t bits) {
  if ((bits & 0x7FFF) > 0x7C00) return kKeyLowest;  // NaN
  const int16_t b = static_cast<int16_t>(bits);
  return b < 0 ? static_cast<int16_t>(b ^ 0x7FFF) : b;
}

inline uint16_t fp16_from_order_key(int16_t key) {
  if (key < kKeyFp16NegInf) key = kKeyFp16NegInf;  // an empty window (or only NaNs) -> -inf
  return static_cast<uint16_t>(key < 0 ? key ^ 0x7FFF : key);
}

// Key of any MaxPool dtype (integers: the value itself).
inline int16_t pool_key(DType t, const void* x, int64_t i) {
  switch (t) {
    case DType::kUInt8: return static_cast<const uint8_t*>(x)[i];
    case DType::kInt8: return static_cast<const int8_t*>(x)[i];
    case DType::kInt16: return static_cast<const int16_t*>(x)[i];
    default: return fp16_order_key(static_cast<const uint16_t*>(x)[i]);
  }
}

// Stores the value of a key; keys below the dtype's range (an empty window) give the dtype's lowest.
inline void pool_store_key(DType t, void* y, int64_t i, int16_t key) {
  switch (t) {
    case DType::kUInt8: static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(key < 0 ? 0 : key); break;
    case DType::kInt8: static_cast<int8_t*>(y)[i] = static_cast<int8_t>(key < -128 ? -128 : key); break;
    case DType::kInt16: static_cast<int16_t*>(y)[i] = key; break;
    default: static_cast<uint16_t*>(y)[i] = fp16_from_order_key(key); break;
  }
}

// ---------------------------------------------------------------------------------------------------
// Average pooling, quantized (int8 / uint8), count = the divisor of the window (PoolCount).
//
// rounding='fixed_point' (the NPU): the exact integer sum S of (x - x_zp) over the window's input
// elements (|x - x_zp| <= 255, S fits int32 for windows of up to 8,421,504 elements), requantized by
// M = x_scale / (y_scale * count) -- one multiplier per distinct count, quantized in double like every
// fixed-point multiplier (fixedpoint.h) -- with gemmlowp's two roundings. As TFLite's Add shifts its
// inputs left by 20 before their multipliers, S is first shifted left by L(count), the largest shift that
// keeps 255 * count * 2^L below 2^31, and the multiplier's exponent lowered by L:
//   y = y_zp + clamp(MultiplyByQuantizedMultiplier(S * 2^L, M * 2^-L), qmin - y_zp, qmax - y_zp)
// Without the shift the first rounding (SRDHM, on a sum of a few hundred) would leave only the bits of
// the right shift below the point, and the second rounding would be off by one for 13-24% of the
// outputs of a 3x3 window; with it the result is S * M rounded half away from zero except within
// 2^-L of a tie.
inline int avg_fixed_left_shift(int64_t count) {
  int L = 0;
  while (L < 31 && 255 * count * (int64_t{1} << (L + 1)) < (int64_t{1} << 31)) ++L;
  return L;
}

// M * 2^-L(count) as a quantized multiplier (the mantissa of M, the exponent lowered by L).
inline QuantizedMultiplier avg_fixed_multiplier(int64_t count, const PoolSpec& s) {
  const double m = static_cast<double>(s.x_scale) / (static_cast<double>(s.y_scale) * static_cast<double>(count));
  QuantizedMultiplier q = quantize_multiplier(m);
  q.shift -= avg_fixed_left_shift(count);
  if (q.m0 == 0 || q.shift < -kMaxRightShift) return QuantizedMultiplier{};  // rounds everything to 0
  return q;
}

inline int32_t avg_fixed(int64_t sum, int64_t count, const PoolSpec& s) {
  const int64_t shifted = sum * (int64_t{1} << avg_fixed_left_shift(count));
  const int64_t q = multiply_by_quantized_multiplier(shifted, avg_fixed_multiplier(count, s));
  const int64_t lo = dtype_min(s.dtype) - s.y_zp, hi = dtype_max(s.dtype) - s.y_zp;
  return static_cast<int32_t>((q < lo ? lo : (q > hi ? hi : q)) + s.y_zp);
}

// rounding='float', general window: onnxruntime's QLinearAveragePool (qlinear_pool.cc). Every input is
// dequantized in float32, f = x_scale * (float)(x - x_zp); the window's f are summed in float32 from
// +0.0 in (h, w) order; then
//   avg = sum / (float)count;  y = clamp(cvtps2dq(avg / y_scale + (float)y_zp), qmin, qmax)
inline float avg_float_dequant(int32_t x, const PoolSpec& s) { return s.x_scale * static_cast<float>(x - s.x_zp); }

inline int32_t avg_float_finish(float sum, int64_t count, const PoolSpec& s) {
  const float avg = sum / static_cast<float>(count);
  const int64_t q = cvtps2dq(avg / s.y_scale + static_cast<float>(s.y_zp));
  const int64_t lo = dtype_min(s.dtype), hi = dtype_max(s.dtype);
  return static_cast<int32_t>(q < lo ? lo : (q > hi ? hi : q));
}

// rounding='float', window = the whole plane without padding: onnxruntime computes QLinearAveragePool
// then (and QLinearGlobalAveragePool always) with MLAS's global kernel: the exact integer sum S of
// (x - x_zp), one float32 scale = x_scale / (y_scale * (float)count), and the requantization of
// MlasRequantizeOutput (as QLinearConv's):
//   y = y_zp + round_half_even(min(max((float)S * scale, qmin - y_zp), qmax - y_zp))
inline int32_t avg_float_global(int64_t sum, int64_t count, const PoolSpec& s) {
  RequantChannel rc;
  rc.scale_pos = rc.scale_neg = s.x_scale / (s.y_scale * static_cast<float>(count));
  rc.lo = dtype_min(s.dtype) - s.y_zp;
  rc.hi = dtype_max(s.dtype) - s.y_zp;
  return requantize(sum, rc, Rounding::kFloat, s.y_zp);
}

// ---------------------------------------------------------------------------------------------------
// Average pooling, float16: the window's inputs (exact in float32) summed in float32 from +0.0 in (h, w)
// order, one float32 division by the count, one rounding to float16 (round to nearest even).
inline uint16_t avg_fp16_finish(float sum, int64_t count) {
  return fp32_to_fp16(sum / static_cast<float>(count));
}

}  // namespace npuemu
