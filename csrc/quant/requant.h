// The output stage of integer ops: accumulator (+ bias) -> activation -> requantized integer.
// This file is the executable form of docs/arithmetic.md, section "Requantization". Reference and
// scalar kernels call requantize() element by element; SIMD kernels implement the same formula and are
// tested bit-exactly against it.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "quant/fixedpoint.h"

namespace npuemu {

enum class Rounding : int {
  kFixedPoint = 0,  // NPU default: Q31 multiplier + shift, gemmlowp rounding (see fixedpoint.h)
  kFloat = 1,       // onnxruntime QLinearConv: float32 multiply, clamp, round half to even
};

// kHardSwish is a float16-path activation only (integer paths apply it with a lookup table).
enum class ActKind : int { kNone = 0, kRelu = 1, kClip = 2, kLeakyRelu = 3, kHardSwish = 4 };

// HardSwish of the float16 path, ONNX's definition x * max(0, min(1, alpha * x + beta)) with alpha = 1/6
// and beta = 0.5 in float32: each operation rounded (no FMA), comparisons as MAXPS / MINPS behave.
constexpr float kHardSwishAlpha = 1.0f / 6.0f;  // 0x1.555556p-3, float32(1/6)

struct Activation {
  ActKind kind = ActKind::kNone;
  float lo = 0.f, hi = 0.f;  // kClip bounds (real values); kRelu uses lo = 0, hi = +inf
  float alpha = 0.f;         // kLeakyRelu slope for negative inputs
};

// Per-output-channel requantization constants, derived once in prepare().
struct RequantChannel {
  QuantizedMultiplier pos;  // multiplier for acc >= 0 (for every acc unless leaky relu)
  QuantizedMultiplier neg;  // multiplier for acc < 0 (== pos unless leaky relu)
  float scale_pos = 0.f;    // rounding='float': float32 multiplier for acc >= 0
  float scale_neg = 0.f;    // rounding='float': for acc < 0
  int32_t lo = 0, hi = 0;   // clamp bounds relative to the zero point: y = zp + clamp(q, lo, hi)
};

struct OutputStage {
  DType y_dtype = DType::kInt8;
  Rounding rounding = Rounding::kFixedPoint;
  int32_t zp = 0;
  std::vector<RequantChannel> ch;  // one per output channel
};

// Round-half-away-from-zero quantization of an activation bound (TFLite's CalculateActivationRange).
inline int64_t quantize_bound(double v, double scale) {
  const double q = std::round(v / scale);
  if (q > 1e12) return int64_t{1000000000000};
  if (q < -1e12) return -int64_t{1000000000000};
  return static_cast<int64_t>(q);
}

// Clamp bounds, relative to the zero point, of a quantized output of (y_scale, y_zp, y_dtype) narrowed
// by a fused activation: y = y_zp + clamp(q, *lo, *hi). relu: lo >= 0; clip(a, b): lo >= round(a / y_scale),
// hi <= round(b / y_scale), rounding half away from zero (TFLite's CalculateActivationRangeQuantized).
// Leaky relu does not narrow the range.
inline void check_scale(const char* name, float s) {
  NPU_CHECK(std::isfinite(s) && s > 0, name, " must be a positive finite float, got ", s);
}

inline void check_zero_point(const char* name, int32_t zp, DType t) {
  NPU_CHECK(zp >= dtype_min(t) && zp <= dtype_max(t), name, " ", zp, " is outside the ", dtype_name(t), " range [",
            dtype_min(t), ", ", dtype_max(t), "]");
}

// Validates a fused activation: clip bounds are not NaN (+-inf are allowed) and ordered; the leaky slope
// is finite.
inline void check_activation(const Activation& act) {
  if (act.kind == ActKind::kClip) {
    NPU_CHECK(!std::isnan(act.lo) && !std::isnan(act.hi), "clip bounds must not be NaN, got min=", act.lo,
              " max=", act.hi);
    NPU_CHECK(act.lo <= act.hi, "clip activation needs min <= max, got min=", act.lo, " max=", act.hi);
  } else if (act.kind == ActKind::kLeakyRelu) {
    NPU_CHECK(std::isfinite(act.alpha), "leaky_relu alpha must be finite, got ", act.alpha);
  }
}

inline void activation_bounds(const Activation& act, float y_scale, int32_t y_zp, DType y_dtype, int32_t* lo_out,
                              int32_t* hi_out) {
  check_activation(act);
  const int32_t qmin = dtype_min(y_dtype), qmax = dtype_max(y_dtype);
  int64_t lo = int64_t{qmin} - y_zp, hi = int64_t{qmax} - y_zp;
  if (act.kind == ActKind::kRelu) {
    lo = lo > 0 ? lo : 0;
  } else if (act.kind == ActKind::kClip) {
    // clip first, then saturate to the output type: each bound is clamped into the type's range, so a clip
    // range entirely above (below) it yields the type's maximum (minimum) everywhere
    const int64_t qlo = quantize_bound(act.lo, y_scale), qhi = quantize_bound(act.hi, y_scale);
    const int64_t lo_t = lo, hi_t = hi;
    lo = qlo < lo_t ? lo_t : (qlo > hi_t ? hi_t : qlo);
    hi = qhi < lo_t ? lo_t : (qhi > hi_t ? hi_t : qhi);
  }
  *lo_out = static_cast<int32_t>(lo);
  *hi_out = static_cast<int32_t>(hi);
}

// Builds the output stage for accumulators of scale x_scale * w_scale[c] (c = 0..oc-1; w_scale has 1 or
// oc entries) requantized to (y_scale, y_zp, y_dtype) with a fused activation.
inline OutputStage make_output_stage(int64_t oc, float x_scale, const float* w_scale, int64_t n_w_scale,
                                     float y_scale, int32_t y_zp, DType y_dtype, Rounding rounding,
                                     const Activation& act) {
  check_scale("x_scale", x_scale);
  check_scale("y_scale", y_scale);
  NPU_CHECK(n_w_scale == 1 || n_w_scale == oc, "w_scale must have 1 or ", oc, " (output channels) elements, got ",
            n_w_scale);
  NPU_CHECK(is_quantized_int(y_dtype), "output dtype must be uint8, int8, int4 or int16, got ", dtype_name(y_dtype));
  check_zero_point("y_zero_point", y_zp, y_dtype);
  int32_t lo = 0, hi = 0;
  activation_bounds(act, y_scale, y_zp, y_dtype, &lo, &hi);
  OutputStage os;
  os.y_dtype = y_dtype;
  os.rounding = rounding;
  os.zp = y_zp;
  os.ch.resize(static_cast<size_t>(oc));
  for (int64_t c = 0; c < oc; ++c) {
    const float ws = w_scale[n_w_scale == 1 ? 0 : c];
    if (!(std::isfinite(ws) && ws > 0)) check_scale(("w_scale[" + std::to_string(c) + "]").c_str(), ws);
    RequantChannel& rc = os.ch[static_cast<size_t>(c)];
    const double m = static_cast<double>(x_scale) * static_cast<double>(ws) / static_cast<double>(y_scale);
    rc.pos = quantize_multiplier(m);
    rc.scale_pos = x_scale * ws / y_scale;  // float32, left to right, as onnxruntime
    if (act.kind == ActKind::kLeakyRelu) {
      rc.neg = quantize_multiplier(m * static_cast<double>(act.alpha));
      rc.scale_neg = rc.scale_pos * act.alpha;
    } else {
      rc.neg = rc.pos;
      rc.scale_neg = rc.scale_pos;
    }
    rc.lo = lo;
    rc.hi = hi;
  }
  return os;
}

// Requantizes one accumulator (acc already includes the bias). Result in [zp+lo, zp+hi].
inline int32_t requantize(int64_t acc, const RequantChannel& c, Rounding rounding, int32_t zp) {
  if (rounding == Rounding::kFixedPoint) {
    int64_t q = multiply_by_quantized_multiplier(acc, acc < 0 ? c.neg : c.pos);
    q = q < c.lo ? c.lo : (q > c.hi ? c.hi : q);
    return static_cast<int32_t>(q) + zp;
  }
  float v = static_cast<float>(acc) * (acc < 0 ? c.scale_neg : c.scale_pos);
  const float flo = static_cast<float>(c.lo), fhi = static_cast<float>(c.hi);
  v = v > flo ? v : flo;  // MAXPS / MINPS semantics
  v = v < fhi ? v : fhi;
  return static_cast<int32_t>(round_half_even(v)) + zp;
}

// Fused activation of the float16 path, applied in fp32 before rounding to fp16. The comparisons are
// written as the x86 MAXPS/MINPS instructions behave so that SIMD kernels match bit for bit.
inline float apply_activation_f32(float v, const Activation& act) {
  switch (act.kind) {
    case ActKind::kNone: return v;
    case ActKind::kRelu: return v > 0.f ? v : 0.f;
    case ActKind::kClip: {
      const float t = v > act.lo ? v : act.lo;
      return t < act.hi ? t : act.hi;
    }
    case ActKind::kLeakyRelu: return v < 0.f ? v * act.alpha : v;
    case ActKind::kHardSwish: {
      float t = v * kHardSwishAlpha + 0.5f;  // two roundings (-ffp-contract=off)
      t = t > 0.f ? t : 0.f;                 // NaN -> 0
      t = t < 1.f ? t : 1.f;
      return v * t;
    }
  }
  return v;
}

}  // namespace npuemu
