// Direct ("MAC array") convolution: the shared driver and the micro-kernel interface each ISA fills in.
//
// The emulated NPU computes a convolution in two stages, and so do these kernels:
//   CNA (MAC array): a tile of MR output pixels x NOB blocks of 16 output channels accumulates the
//        products of the input window and the weights into int32 (int8 family), int64 (int16 family)
//        or fp32 (fp16 family) accumulators held in registers;
//   DPU (output stage): bias, activation and requantization of the accumulator tile, stored to the
//        output in the NPU's native NC1HWC2 layout (C2 = 16 channels).
//
// Input layout seen by the CNA stage ("packed input"): for one image and one group,
//   xp[c1][row][phase][col][16]   with row in [0, H + pad_top + pad_bottom),
// where padded column j (0 <= j < W + pad_left + pad_right) is stored at phase j % stride_w and column
// j / stride_w. Consecutive output pixels of a row then read consecutive packed columns for every tap,
// whatever the stride and dilation, so one micro-kernel (pixel pitch 16 elements) serves them all; each
// tap is a byte offset (kh*dh*row_pitch + ((kw*dw) % sw)*phase_pitch + ((kw*dw) / sw)*16*elem).
// Padded positions and channels past the group's input channels hold the input zero point.
//
// Packed input element per family:
//   int8  (U8 format, VNNI-style): uint8 = x (uint8 input) or x ^ 0x80 (int8 input). Products are
//         u8 x s8 and the zero point (x_zp, or x_zp + 128) times the weight sum is folded into the bias.
//   int8/int16 (I16 format): int16 = x; the zero point times the weight sum is folded into the bias.
//   fp16  (F32 format): float32 = x (exact), padding 0.
// Weights are packed once per plan in the exact order a micro-kernel consumes them.
#pragma once
#include <cstdint>
#include <vector>

#include <vector>

#include "core/memory.h"
#include "kernels/conv/conv.h"

namespace npuemu {
namespace direct {

constexpr int kC2 = 16;      // channels per block (NC1HWC2)
constexpr int kMaxNob = 4;   // output-channel blocks per tile
constexpr int kMaxMr = 28;   // output pixels per tile

enum class InputFormat : int { kU8 = 0, kI16 = 1, kF32 = 2 };

// The MAC array's operand and accumulator types. Each has its packed weight layout:
//   kU8S8_I32: u8 x s8 products, int32 accumulators; weights [tap][c1][q<4][nob][16 oc][4 ic] int8
//   kI16_I32:  int16 x int16, int32 accumulators;     weights [tap][c1][q<8][nob][16 oc][2 ic] int16
//   kI16_I64:  int16 x int16, int64 accumulators;     weights as kI16_I32
//   kF32:      fp32 FMA chain, fp32 accumulators;      weights [tap][c1][c2<16][nob][16 oc] float
enum class MacType : int { kU8S8_I32 = 0, kI16_I32 = 1, kI16_I64 = 2, kF32 = 3 };

inline InputFormat input_format(MacType m) {
  return m == MacType::kU8S8_I32 ? InputFormat::kU8 : m == MacType::kF32 ? InputFormat::kF32 : InputFormat::kI16;
}
inline int input_elem_bytes(InputFormat f) { return f == InputFormat::kU8 ? 1 : f == InputFormat::kI16 ? 2 : 4; }
inline int acc_elem_bytes(MacType m) { return m == MacType::kI16_I64 ? 8 : 4; }

// Arguments of one CNA micro-kernel call.
struct MacArgs {
  const void* x;           // packed input at (c1 = 0, row of the first tap, first output pixel)
  const int64_t* tap_off;  // byte offsets of the taps, in (kh, kw) order
  int ntaps;
  int nc1;                 // input channel blocks
  int64_t c1_stride;       // bytes between input channel blocks
  const void* w;           // packed weights of this output-channel group
  const struct EpiBlock* blocks;  // the tile's output-channel blocks (fp16: accumulators start at bias_f)
  int mr, nob;             // tile shape (portable kernels; SIMD kernels are instantiated per shape)
};

// Output-stage constants of one block of 16 output channels (SIMD-friendly layout; see
// docs/arithmetic.md for the formula these implement).
//   fixed point: q = (P + r - (P < -2^30 ? k : 0)) >> s with P = acc * m0 (64-bit), clamp to [lo, hi],
//                then + zp. Per lane: left shift -> r = 2^(30-left), k = 0, s = 31-left; right shift e >= 1
//                -> r = 2^30 + 2^(30+e), k = 2^31, s = 31+e; e = 0 -> r = 2^30, k = 0, s = 31. This is
//                exactly RoundingDivideByPOT(SRDHM(acc * 2^left, m0), e).
//   64-bit lanes are split into even ("_e", lanes 0, 2, ..) and odd ("_o") channels.
struct alignas(64) FixedBlock {
  int32_t m0[16];
  int32_t m0_odd[16];  // qword i holds m0[2i+1] in its low dword
  int64_t r_e[8], r_o[8], k_e[8], k_o[8], s_e[8], s_o[8];
};

// The same requantization for int64 accumulators (int16 family) in 64-bit lanes, from the scalar
// multiplier (right shifts up to 62; see direct_avx2.cpp): |m0|, -1 where m0 < 0, left (0 when m0 = 0),
// right, 2^right - 1 and (2^right - 1) >> 1 per channel.
struct alignas(64) Fixed64Block {
  int64_t m0[16], negm[16], left[16], right[16], mask[16], thr0[16];
  int32_t any_left, any_neg;  // some lane has left > 0 / m0 < 0
};

struct alignas(64) EpiBlock {
  int32_t bias[16];    // integer families (int8: int32 wrap): bias - zp_input * sum(w)
  int64_t bias64[16];  // int16 family
  float bias_f[16];    // fp16 family
  int32_t lo[16], hi[16];        // clamp relative to zp
  int64_t lo_e[8], lo_o[8], hi_e[8], hi_o[8];
  float scale[16], scale_neg[16], flo[16], fhi[16];  // rounding = float
  FixedBlock pos, neg;  // neg used only for leaky relu
  int32_t narrow;       // 1 when no lane shifts left: every q fits int32, so clamping can follow the narrowing
  Fixed64Block pos64, neg64;  // int16 family
};

enum class EpiKind : int {
  kRaw32 = 0,       // int32 accumulators (+ bias) stored (conv_integer, int8 family)
  kRaw64 = 1,       // int64 accumulators stored (conv_integer, int16 family)
  kFixed = 2,       // fixed-point requantization
  kFloat = 3,       // float32 requantization (onnxruntime)
  kFp16 = 4,        // fp32 -> activation -> fp16
};

struct EpiArgs {
  EpiKind kind;
  const EpiBlock* blocks;  // NOB blocks for this tile
  int32_t zp;
  bool leaky;
  int out_elem;            // bytes per output element (1, 2, 4, 8)
  Activation act;          // fp16 family
  const RequantChannel* ch;  // per-channel scalar form (scalar / int64 paths), NOB*16 entries (nullptr past oc)
  Rounding rounding;
  int valid_channels;      // channels of this tile that exist (<= NOB*16)
  bool acc64;              // the tile holds int64 accumulators (I16_I64 MACs)
  bool unsigned_out;       // uint8 output (packing saturates unsigned)
  bool wrap32;             // int64 tile of the int8 family: wrap to int32 before the output stage
};

// The output-stage tables of one convolution, shared by every driver (direct, depthwise, Winograd): one
// EpiBlock per (group, block of 16 output channels) in group-major order, the per-channel scalar form
// (RequantChannel per lane, zero past the channel count) and the EpiArgs of its tiles (blocks, ch and
// valid_channels are set per tile by the driver).
struct Epilogue {
  Buffer blocks;                   // EpiBlock[groups * ceil(ocg / 16)]
  std::vector<RequantChannel> ch;  // [groups * ceil(ocg / 16) * 16]
  EpiArgs args{};
};

// Builds the tables. Integer families: the bias of output channel oc becomes
// bias[oc] - zp_in * wsum[oc] (wsum = sum of the channel's weights minus w_zp, zp_in = the value the
// packed input holds for a zero activation), wrapped to int32 for the int8 family (exact modulo 2^32,
// docs/arithmetic.md section 2). acc64: the tiles hold int64 accumulators. fp16: bias_f only.
// groups / ocg default to the spec's; depthwise kernels pass one group of all channels.
void build_epilogue(const ConvSpec& spec, const ConvData& d, const std::vector<int64_t>& wsum, int64_t zp_in,
                    bool acc64, Epilogue* out, int64_t groups = -1, int64_t ocg = -1);

// The value a zero activation takes in the packed input of a MAC type (its padding), which is also the
// zero point the weight sums correct for: x_zp, or x_zp + 128 for int8 inputs XOR-ed into uint8.
int64_t packed_zero_point(const ConvSpec& spec, const ConvData& d, MacType mac);

// The portable output stage (scalar definitions); SIMD tables use it for what they do not vectorize.
void epi_portable(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride);
// The AVX2 output stage of int64 tiles (fixed-point requantization in 64-bit lanes, everything else
// through epi_portable); direct_avx2.cpp. Needs an AVX2 CPU: the AVX2 and AVX-512 int16 tables use it.
void epi_avx2_i64(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride);

// CNA micro-kernel: computes an MR x (NOB*16) accumulator tile into acc (row-major [MR][NOB*16]).
using MacFn = void (*)(const MacArgs& a, void* acc);
// DPU stage: acc tile [mr][nob*16] -> output blocks y + b*y_ob_stride + p*16*out_elem.
using EpiFn = void (*)(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride);

struct UkernelTable {
  // mac[nob-1][mr-1]; null where the combination is not instantiated.
  MacFn mac[kMaxNob][kMaxMr] = {};
  int mr_max[kMaxNob] = {};  // largest MR instantiated per NOB
  EpiFn epi = nullptr;
};

// Depthwise (group == input channels == output channels): the 16 lanes are 16 channels, each with its
// own weights; a tile is MR consecutive output pixels of one channel block. Packed weights per block:
// [tap][16] int32 holding the int8 weight in the low int16 half (U8 inputs: vpmaddwd with the zero-
// extended input gives x * w exactly) or float (F32 inputs: FMA chain in tap order from the bias).
struct DwArgs {
  const void* x;           // packed input of the block at the tile's first output pixel (tap 0)
  const int64_t* tap_off;  // byte offsets of the taps
  int ntaps;
  const void* w;           // this block's packed weights
  const int32_t* init;     // U8: the accumulators' start, 16 lanes (taps the driver skipped; see depthwise.cpp)
  const EpiBlock* block;   // fp16: accumulators start at bias_f
  int mr;
};
using DwFn = void (*)(const DwArgs& a, void* acc);  // acc: [mr][16]
struct DwTable {
  DwFn dw[kMaxMr] = {};
  int mr_max = 0;
  EpiFn epi = nullptr;
};
const DwTable* dw_ukernels_scalar(MacType m);
const DwTable* dw_ukernels_avx512(MacType m);
const DwTable* dw_ukernels_avx2(MacType m);

// Micro-kernel tables per (ISA, MAC type); nullptr when that ISA has none for the type.
const UkernelTable* ukernels_scalar(MacType m);
const UkernelTable* ukernels_avx512(MacType m);
const UkernelTable* ukernels_avx2(MacType m);

}  // namespace direct
}  // namespace npuemu
