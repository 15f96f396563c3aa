// Lookup tables that are a known float32 formula: the int16 -> int8 HardSwish tables of w8a8 builds.
//
// The compiler builds every activation table by evaluating the ONNX chain in float32 on all 65,536 int16
// codes (python/npuemu/compiler/lower.py, materialize()). For HardSwish that chain is a handful of
// correctly rounded float32 operations, so it can be evaluated on the fly, vectorized, instead of read
// from a 64 KiB table (one load per element, bound by the table's cache traffic). The runtime uses the
// formula only after checking that it reproduces the table on all 65,536 codes, so a program's results
// do not depend on which of the two ran. Per element, in this order (no FMA, no reciprocal):
//   v = (float32(q) - float32(x_zp)) * x_scale                       (dequantize, as lower.py)
//   kHardSwish:      t = min(max(v * float32(1/6) + 0.5, 0), 1); h = v * t        (ONNX HardSwish)
//   kHardSwishArith: a = min(max(v + 3, 0), 6); h = (v * a) / 6        (x * clip(x + 3, 0, 6) / 6)
//   y = clamp(rint(h / y_scale) + float32(y_zp), -128, 127)          (quantize_f32: half to even)
#pragma once
#include <cstdint>

namespace npuemu {

enum class LutFormula : int { kHardSwish = 0, kHardSwishArith = 1 };

struct LutFormulaArgs {
  LutFormula f = LutFormula::kHardSwish;
  float x_scale = 1.f;
  int32_t x_zp = 0;
  float y_scale = 1.f;
  int32_t y_zp = 0;
};

// y[i] = formula(x[i]) on the active ISA tier (scalar, AVX2, AVX-512: identical results).
void lut_formula_i16_i8(const LutFormulaArgs& a, const int16_t* x, int8_t* y, int64_t n);

}  // namespace npuemu
