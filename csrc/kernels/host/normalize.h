// The runtime's `input` step in one pass: y = store((x - mean[c]) / std[c]), with channels on axis 1.
//
// Bit-identical, element for element, to the numpy path it replaces (python/npuemu/runtime/host.py
// normalize() then store(), program.py quantize_f32()), which computes in float32:
//   v = float32(x)                      (uint8 -> float32 is exact)
//   v = v - mean[c]                     (skipped when there is no mean: x - 0 would quiet a signalling NaN)
//   v = v / std[c]                      (skipped when there is no std)
//   int8 / int16:  q = v / scale; q = rint(q) (half to even); q = q + zero_point;
//                  q = clip(q, dtype min, dtype max) in float; NaN -> zero_point; exact cast
//   float16:       numpy's float32 -> float16 cast: round to nearest even, overflow to +-inf, subnormals
//                  kept; a NaN becomes sign | 0x7C00 + (payload >> 13) (0x7C01 if that is 0x7C00), which
//                  is vcvtps2ph's result for every quiet NaN but keeps a signalling NaN signalling
//   float32:       v as it is
// Every step is one correctly rounded IEEE operation in a fixed order (no FMA, no reciprocal), so the
// scalar, AVX2 and AVX-512 tiers agree with numpy for every input, NaN payloads included.
#pragma once
#include <cstdint>

namespace npuemu {

enum class NormOut : int { kInt8 = 0, kInt16 = 1, kFloat16 = 2, kFloat32 = 3 };

struct NormalizeArgs {
  const void* x = nullptr;  // float32, or uint8 when x_uint8
  bool x_uint8 = false;
  void* y = nullptr;  // out's dtype; never overlaps x
  NormOut out = NormOut::kFloat32;
  // x and y viewed as (outer, channels, inner) C-contiguous: channels = shape[1] for rank >= 2
  int64_t outer = 0, channels = 1, inner = 0;
  const float* mean = nullptr;  // mean_size values: 0 (none), 1 (all channels) or channels
  int64_t mean_size = 0;
  const float* std = nullptr;
  int64_t std_size = 0;
  float scale = 1.f;  // int8 / int16 outputs
  int32_t zero_point = 0;
};

// Runs on the active ISA tier (core/cpu.h); allocation-free, arguments already validated.
void normalize_store(const NormalizeArgs& a);

}  // namespace npuemu
