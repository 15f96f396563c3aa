// The arithmetic of one element of the element-wise ops: the executable specification that the
// reference kernel applies element by element and every optimized kernel reproduces bit for bit
// (docs/arithmetic.md, section 7).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/eltwise/eltwise.h"
#include "quant/fixedpoint.h"
#include "quant/fp16.h"

namespace npuemu {

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// ---------------------------------------------------------------------------------------------------
// rounding='fixed_point': TFLite's integer Add (reference_ops::AddElementwise, left_shift 20), every
// multiplication by a real multiplier being gemmlowp's MultiplyByQuantizedMultiplier (SRDHM rounds half
// up, then RoundingDivideByPOT rounds half away from zero; fixedpoint.h).
//   a' = (a - za) * 2^20                      |a'| <= 255 * 2^20 < 2^28
//   sa = MBQM(a', ma), sb = MBQM(b', mb)      ma, mb <= 1/2, so |sa + sb| <= 255 * 2^20 < 2^31
//   y  = zy + clamp(MBQM(sa + sb, my), lo, hi)
inline int32_t elt_add_fixed(int32_t a, int32_t b, const EltParams& p) {
  const int64_t sa = multiply_by_quantized_multiplier(int64_t{a - p.za} * (int64_t{1} << p.left_shift), p.ma);
  const int64_t sb = multiply_by_quantized_multiplier(int64_t{b - p.zb} * (int64_t{1} << p.left_shift), p.mb);
  const int64_t q = multiply_by_quantized_multiplier(sa + sb, p.my);
  return static_cast<int32_t>(clamp64(q, p.lo, p.hi) + p.zy);
}

// TFLite's integer Mul (reference_ops::MulElementwise): one multiplier s_a s_b / s_y on the exact
// product, |(a - za)(b - zb)| <= 255 * 255 = 65,025.
inline int32_t elt_mul_fixed(int32_t a, int32_t b, const EltParams& p) {
  const int64_t prod = int64_t{a - p.za} * int64_t{b - p.zb};
  const int64_t q = multiply_by_quantized_multiplier(prod, p.my);
  return static_cast<int32_t>(clamp64(q, p.lo, p.hi) + p.zy);
}

// ---------------------------------------------------------------------------------------------------
// rounding='float': onnxruntime's QLinearAdd, i.e. the kernel of MLAS qladd.cpp for SSE2 as the
// onnxruntime 1.31 x86-64 build evaluates it, its compiler fusing the multiply-adds into FMAs
// (measured: 0 mismatches over every (a, b) pair of 28 scale / zero-point sets and the broadcast
// patterns; the AVX2 assembly formula ((a-za)*sa + (b-zb)*sb) / sy would differ in ~0.03%). With
// ra = s_a / s_y and rb = s_b / s_y in float32 and a, b the raw values (not minus their zero points):
//   fix_ab = zy - fma(ra, za, rb * zb)            v = fma(a, ra, fma(b, rb, fix_ab))
//   y = clamp(cvtps2dq(v), zy + lo, zy + hi)      (round half to even; INT32_MIN outside int32)
// onnxruntime computes every broadcast span with one call of that kernel, and when a is the operand
// that is one value over the span it swaps the roles of a and b (p.swap):
//   fix_ba = zy - fma(rb, zb, ra * za)            v = fma(b, rb, fma(a, ra, fix_ba))
// The clamp is the dtype's saturation, narrowed by the activation.
inline int32_t elt_add_float(int32_t a, int32_t b, const EltParams& p) {
  const float fa = static_cast<float>(a), fb = static_cast<float>(b);
  const float v = p.swap ? std::fmaf(fb, p.rb, std::fmaf(fa, p.ra, p.fix_ba))
                         : std::fmaf(fa, p.ra, std::fmaf(fb, p.rb, p.fix_ab));
  return static_cast<int32_t>(clamp64(cvtps2dq(v), int64_t{p.zy} + p.lo, int64_t{p.zy} + p.hi));
}

// onnxruntime's QLinearMul on x86 (MLAS qlmul.cpp, SSE2): the exact int32 product, one float32
// multiply by ratio = (sa * sb) / sy, the output zero point added in float32 before rounding, then
// saturation to the dtype (here: to [zy + lo, zy + hi], the activation included).
//   y = clamp(cvtps2dq((float)((a - za)(b - zb)) * ratio + (float)zy), zy + lo, zy + hi)
inline int32_t elt_mul_float(int32_t a, int32_t b, const EltParams& p) {
  const int32_t prod = (a - p.za) * (b - p.zb);
  const float v = static_cast<float>(prod) * p.ratio + p.zy_f;
  return static_cast<int32_t>(clamp64(cvtps2dq(v), int64_t{p.zy} + p.lo, int64_t{p.zy} + p.hi));
}

// ---------------------------------------------------------------------------------------------------
// float16: the operation in float32, the activation in float32, one rounding to float16 (round to
// nearest even; fp16.h). For one add or mul of two float16 values this equals IEEE binary16 arithmetic:
// the product of two 11-bit significands is exact in float32, and for the sum float32's 24 bits satisfy
// 24 >= 2*11 + 2, so the double rounding (to float32, then to float16) is innocuous.
// NaN operands: the result is a's NaN if a is one, else b's (quieted by the fp16 rounding); an invalid
// operation (inf - inf, 0 * inf) gives the x86 default NaN (negative, quiet).
inline float elt_fp16_op(EltOp op, float fa, float fb) {
  float r = op == EltOp::kAdd ? fa + fb : fa * fb;
  if (std::isnan(fb)) r = fb;
  if (std::isnan(fa)) r = fa;
  return r;
}

inline uint16_t elt_fp16(EltOp op, uint16_t a, uint16_t b, const Activation& act) {
  return fp32_to_fp16(apply_activation_f32(elt_fp16_op(op, fp16_to_fp32(a), fp16_to_fp32(b)), act));
}

// One quantized element of op/kind (dispatch used by the reference and the portable kernels).
inline int32_t elt_quant(EltOp op, EltKind kind, int32_t a, int32_t b, const EltParams& p) {
  const bool fixed = kind == EltKind::kFixedS8 || kind == EltKind::kFixedU8;
  if (op == EltOp::kAdd) return fixed ? elt_add_fixed(a, b, p) : elt_add_float(a, b, p);
  return fixed ? elt_mul_fixed(a, b, p) : elt_mul_float(a, b, p);
}

}  // namespace npuemu
