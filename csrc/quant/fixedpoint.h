// Fixed-point primitives of the NPU requantization (the gemmlowp / TFLite scheme).
//
// A real multiplier M is represented as M = M0 * 2^(shift - 31), M0 a Q31 integer with
// 2^30 <= |M0| < 2^31, shift an integer exponent (positive = left shift). Requantizing an accumulator
// `acc` by M is, exactly as gemmlowp's MultiplyByQuantizedMultiplier:
//
//   left  = max(shift, 0), right = max(-shift, 0)
//   q1    = SaturatingRoundingDoublingHighMul(acc * 2^left, M0)   // = floor((acc*2^left*M0 + 2^30) / 2^31)
//   q     = RoundingDivideByPOT(q1, right)
//
// Rounding, named: SaturatingRoundingDoublingHighMul rounds half UP (toward +infinity; it is the
// VQRDMULH instruction); RoundingDivideByPOT rounds half AWAY FROM ZERO. Two roundings, not one.
// acc * 2^left is exact here (no intermediate saturation: we compute in 64/128 bits), which equals
// gemmlowp whenever gemmlowp itself does not overflow.
//
// Equivalent closed form used by the SIMD kernels (exact integer identity, left <= 30):
//   q1 = floor((acc*M0 + 2^(30-left)) / 2^(31-left))
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "core/check.h"

namespace npuemu {

struct QuantizedMultiplier {
  int32_t m0 = 0;   // Q31 mantissa, 2^30 <= |m0| < 2^31, or 0 for M == 0
  int32_t shift = 0;  // exponent: M = m0 * 2^(shift-31)
};

// Largest left shift we accept: M < 2^kMaxLeftShift.
constexpr int kMaxLeftShift = 30;
// Largest right shift: a multiplier whose exponent (after rounding) is below -62, i.e. below 2^-63, becomes
// 0 (docs/arithmetic.md section 3). Shifts down to -62 matter for the INT16 path's int64 accumulators.
constexpr int kMaxRightShift = 62;

// Splits a real multiplier into (M0, shift) like TFLite's QuantizeMultiplier: frexp, round the Q31
// mantissa half away from zero (std::round), renormalise if it rounds up to 2^31.
inline QuantizedMultiplier quantize_multiplier(double m) {
  NPU_CHECK(std::isfinite(m), "requantization multiplier must be finite, got ", m);
  QuantizedMultiplier q;
  if (m == 0.0) return q;
  int exp = 0;
  const double frac = std::frexp(m, &exp);  // m = frac * 2^exp, 0.5 <= |frac| < 1
  int64_t m0 = static_cast<int64_t>(std::round(frac * 2147483648.0));
  if (m0 == (int64_t{1} << 31) || m0 == -(int64_t{1} << 31)) {
    m0 /= 2;
    ++exp;
  }
  NPU_CHECK(exp <= kMaxLeftShift, "requantization multiplier ", m, " is too large (must be < 2^",
            kMaxLeftShift, "); check the scales (x_scale * w_scale / y_scale)");
  if (exp < -kMaxRightShift) return QuantizedMultiplier{};  // rounds everything to zero
  q.m0 = static_cast<int32_t>(m0);
  q.shift = exp;
  return q;
}

// gemmlowp SaturatingRoundingDoublingHighMul on int32 (reference form, kept for tests and docs).
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * b;
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // C++ division truncates toward 0
}

// gemmlowp RoundingDivideByPOT on int32: x / 2^e rounded half away from zero.
inline int32_t rounding_divide_by_pot(int32_t x, int e) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << e) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (remainder > threshold ? 1 : 0);
}

// 64-bit RoundingDivideByPOT (same rounding), for q1 values that do not fit in int32.
inline int64_t rounding_divide_by_pot64(int64_t x, int e) {
  if (e == 0) return x;
  const int64_t mask = (int64_t{1} << e) - 1;
  const int64_t remainder = x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (remainder > threshold ? 1 : 0);
}

// floor(a / 2^s) for a 128-bit a (arithmetic shift).
inline int64_t shift_right_floor128(__int128 a, int s) { return static_cast<int64_t>(a >> s); }

// The requantization of a 64-bit accumulator (int32 accumulators are a special case): returns
// RoundingDivideByPOT(SRDHM(acc * 2^left, M0), right) computed exactly, saturated to int64.
inline int64_t multiply_by_quantized_multiplier(int64_t acc, QuantizedMultiplier qm) {
  if (qm.m0 == 0) return 0;
  const int left = qm.shift > 0 ? qm.shift : 0;
  const int right = qm.shift > 0 ? 0 : -qm.shift;
  // q1 = floor((acc * M0 + 2^(30-left)) / 2^(31-left))  -- see the file comment
  const __int128 p = static_cast<__int128>(acc) * qm.m0 + (static_cast<__int128>(1) << (30 - left));
  __int128 q1 = p >> (31 - left);
  if (q1 > INT64_MAX) q1 = INT64_MAX;
  if (q1 < INT64_MIN) q1 = INT64_MIN;
  if (right >= 63) {
    // |q1| < 2^62 for any int64 acc with right >= 63 would need |acc*M0| >= 2^93: impossible, and
    // |q1| / 2^63 < 0.5 rounds to 0.
    return 0;
  }
  return rounding_divide_by_pot64(static_cast<int64_t>(q1), right);
}

// Round half to even of a float (the float32 "rne" used by rounding='float').
inline float round_half_even(float v) { return std::nearbyint(v); }  // default FE_TONEAREST

// float -> int32 exactly as the x86 instruction CVTPS2DQ (and CVTSS2SI) converts: round half to even,
// and the "integer indefinite" INT32_MIN for NaN and for every value outside [-2^31, 2^31). onnxruntime's
// x86 kernels convert this way before they clamp, so a huge positive value ends at the low clamp bound;
// rounding='float' reproduces that.
inline int32_t cvtps2dq(float v) {
  if (!(v >= -2147483648.0f && v < 2147483648.0f)) return INT32_MIN;
  return static_cast<int32_t>(std::nearbyint(v));
}

// The closed form of multiply_by_quantized_multiplier for accumulators with |acc * m0| < 2^63 (every
// int32 accumulator): q = (acc*m0 + r - (acc*m0 < -2^30 ? k : 0)) >> s, an arithmetic (floor) shift.
//   left shift L > 0: r = 2^(30-L), k = 0, s = 31-L       (SRDHM of acc*2^L, exact)
//   no shift:         r = 2^30,     k = 0, s = 31
//   right shift e>=1: r = 2^30 + 2^(30+e), k = 2^31, s = 31+e  (SRDHM then RoundingDivideByPOT)
// A right shift of 32 or more maps every |acc| < 2^31 to 0 and is stored as m0 = 0 (then q = 0).
// SIMD and portable kernels evaluate exactly this (64-bit lanes); the kernel tests pin it to the
// reference kernels, which call multiply_by_quantized_multiplier.
struct ClosedFormMultiplier {
  int64_t m0 = 0, r = 0, k = 0;
  int s = 0;
};

inline ClosedFormMultiplier closed_form(QuantizedMultiplier q) {
  ClosedFormMultiplier c;
  const int left = q.shift > 0 ? q.shift : 0;
  const int right = q.shift > 0 ? 0 : -q.shift;
  if (q.m0 == 0 || right >= 32) return c;  // q = (0 + 0) >> 0 = 0
  c.m0 = q.m0;
  if (left > 0) {
    c.r = int64_t{1} << (30 - left);
    c.s = 31 - left;
  } else if (right == 0) {
    c.r = int64_t{1} << 30;
    c.s = 31;
  } else {
    c.r = (int64_t{1} << 30) + (int64_t{1} << (30 + right));
    c.k = int64_t{1} << 31;
    c.s = 31 + right;
  }
  return c;
}

// Scalar evaluation of the closed form (valid for |acc| < 2^31).
inline int64_t apply_closed_form(int64_t acc, const ClosedFormMultiplier& c) {
  const int64_t p = acc * c.m0;
  return (p + c.r - (p < -(int64_t{1} << 30) ? c.k : 0)) >> c.s;
}

}  // namespace npuemu
