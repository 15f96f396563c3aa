// Packed input layout of the direct and Winograd convolutions (see direct.h) and the conversions
// between ONNX NCHW tensors and the NPU's blocked NC1HWC2 layout (C2 = 16).
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/direct.h"

namespace npuemu {
namespace direct {

struct InputLayout {
  int64_t c1 = 0, hp = 0, wp = 0, wq = 0, sw = 1, elem = 1, pt = 0, pl = 0;
  int64_t phase_pitch = 0, row_pitch = 0, c1_stride = 0, bytes = 0;
  std::vector<uint8_t> row_needed;    // per padded row: read by some tap (others are not packed)
  std::vector<uint8_t> phase_needed;  // per stride phase: read by some tap
  // Byte offset of the input element dy rows and dx padded columns from an output pixel's origin.
  int64_t tap_offset(int64_t dy, int64_t dx) const {
    return dy * row_pitch + (dx % sw) * phase_pitch + (dx / sw) * kC2 * elem;
  }
};

InputLayout make_input_layout(const ConvGeometry& g, InputFormat f);

// Packs rows [r_begin, r_end) of the c1 * hp row space of one image's group (xg points at the group's
// first channel in NCHW; icg channels) into xp. Padding and channels >= icg get `pad`.
void pack_input_rows(const InputLayout& L, const ConvGeometry& g, DType x_dtype, const void* xg, int64_t icg,
                     int32_t pad, int64_t r_begin, int64_t r_end, void* xp);

// Short rows (any stride) or unpadded stride-1 layers: pack whole channel blocks [c1_begin, c1_end) at
// once instead (same result).
bool pack_by_planes(const InputLayout& L, const ConvGeometry& g);
void pack_input_planes(const InputLayout& L, const ConvGeometry& g, DType x_dtype, const void* xg, int64_t icg,
                       int32_t pad, int64_t c1_begin, int64_t c1_end, void* xp);

// The same for a channels-last image (x_img: one NHWC image; the group's channels start at c_offset).
void pack_input_rows_nhwc(const InputLayout& L, const ConvGeometry& g, DType x_dtype, const void* x_img,
                          int64_t c_offset, int64_t icg, int32_t pad, int64_t r_begin, int64_t r_end, void* xp);

// Packs group `grp` (icg channels) of one image (NCHW, or NHWC when nhwc) into xp for the MAC array,
// whole planes or row by row (pack_by_planes), split over `cores`. The entry point the drivers use.
void pack_input(const InputLayout& L, const ConvGeometry& g, DType x_dtype, bool nhwc, const void* x_img,
                int64_t grp, int64_t icg, int32_t pad, const CoreSet& cores, void* xp);

// Tap folding (im2col), in two passes.
// 1) rows [r_begin, r_end) of a padded channels-last copy of one group: xa[row][col][icg], row in
//    [0, H + pt + pb), col in [0, W + pl + pr); padding gets `pad` (converted as format f).
void pack_padded_hwc(const ConvGeometry& g, DType x_dtype, bool nhwc, const void* x_img, int64_t c_offset,
                     int64_t icg, InputFormat f, int32_t pad, int64_t r_begin, int64_t r_end, void* xa);
// Bytes of the padded channels-last buffer of pass 1, with the slack pass 2 may read past its end.
constexpr int64_t kIm2colSlack = 64;
inline size_t padded_hwc_bytes(const ConvGeometry& g, int64_t icg, int64_t elem) {
  return static_cast<size_t>((g.h + g.pt + g.pb) * (g.w + g.pl + g.pr) * icg * elem + kIm2colSlack);
}
// 2) output pixels [p_begin, p_end) into xp[c1][pixel][16], channel k = (kh * KW + kw) * icg + ic (the
//    FP16 reduction order); channels k >= KH * KW * icg get `pad`.
void im2col_from_hwc(const ConvGeometry& g, int64_t icg, int64_t c1, InputFormat f, int32_t pad, const void* xa,
                     int64_t p_begin, int64_t p_end, void* xp);

// One block of 16 channels: src [pixels][16] (elem bytes each) -> dst[c][0..pixels) for c < nch.
void unpack_block(const void* src, int64_t pixels, int64_t nch, void* const* dst, int elem);

// Unpacks output blocks [ob_begin, ob_end) of a blocked [ob][pixels][16] buffer into NCHW (yg points at
// the group's first output channel; ocg channels, `pixels` per channel; elem bytes per element).
void unpack_output_blocks(const void* yb, int64_t pixels, int64_t ocg, int elem, int64_t ob_begin, int64_t ob_end,
                          void* yg);

}  // namespace direct
}  // namespace npuemu
