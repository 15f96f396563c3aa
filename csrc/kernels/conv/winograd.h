// Winograd convolution F(m x m, 3 x 3) for 3x3 kernels, stride 1, dilation 1 (any pads, any group:
// each group is a separate convolution). Y = A^T [ (G g G^T) (.) (B^T d B) ] A per tile of m x m
// outputs, where d is the (m+2) x (m+2) input tile, g the 3x3 kernel and (.) the element-wise product
// summed over input channels: npos = (m+2)^2 independent GEMMs (tiles x input channels) x (input
// channels x output channels) replace the 9 * m^2 taps of the direct convolution.
//
// The driver (winograd.cpp) runs, per image and group:
//   1. pack:   NCHW -> the direct kernels' packed input (layout.h; stride 1), bottom / right padding
//              extended so every tile's (m+2) x (m+2) window exists (the extra rows / columns only feed
//              outputs that are discarded);
//   2. input transform: V[xi][c1][tile][16] = B^T d B per tile and block of 16 input channels;
//   3. GEMM + output transform + output stage: for a block of output channels and tiles,
//              M[xi][tile][oc] = sum_ic V[xi][ic][tile] U[xi][ic][oc] (npos micro-kernel calls), then
//              Y = A^T M A per tile and the direct kernels' DPU stage (epilogue.cpp tables, the ISA's
//              epi function) into the blocked output;
//   4. unpack: blocked output -> NCHW (layout.h).
//
// Kinds (arithmetic in docs/arithmetic.md section 6):
//   kInt8F23: int8 family, exact. G scaled by 2 (G' = 2G, rows {2,0,0},{1,1,1},{1,-1,1},{0,0,2}) so the
//             transformed weights U = G' g G'^T are integers (|U| <= 9 * 255 = 2295: int16); d = x as
//             packed (int16, padding x_zp; the zero point times the weight sum is folded into the
//             bias), |V| <= 4 * 255 = 1020 (int16); int16 x int16 products summed in int32 with
//             wrap-around; A^T M A = 4 * sum_k x_k w_k exactly modulo 2^32, and an arithmetic shift right
//             by 2 recovers the sum exactly while |sum| < 2^29 (supports() enforces it).
//   kFp16F23, kFp16F43: fp16 family in fp32 (transforms, FMA GEMM), one rounding to fp16 at the end.
#pragma once
#include <cstdint>

#include "kernels/conv/direct.h"

namespace npuemu {
namespace winograd {

using direct::kC2;

enum class Kind : int { kInt8F23 = 0, kFp16F23 = 1, kFp16F43 = 2 };

inline int tile_out(Kind k) { return k == Kind::kFp16F43 ? 4 : 2; }  // m: outputs per tile side
inline int tile_in(Kind k) { return tile_out(k) + 2; }               // m + 2: input tile side
inline int npos(Kind k) { return tile_in(k) * tile_in(k); }          // 16 or 36 GEMMs
inline bool is_int(Kind k) { return k == Kind::kInt8F23; }
inline int elem_bytes(Kind k) { return is_int(k) ? 2 : 4; }          // V and U elements (int16 / fp32)

constexpr int kMaxNob = 4;   // output-channel blocks of 16 per GEMM tile
constexpr int kMaxMr = 24;   // tiles per GEMM micro-kernel call
constexpr int kMaxPos = 36;

// Input transform of one row of tiles for one block of 16 channels.
struct InputArgs {
  const void* x;       // packed input (int16 / fp32) at (channel block, row th * m, column 0)
  int64_t row_pitch;   // bytes between packed rows
  int ntiles;          // tiles in the row; tile tw reads columns [tw * m, tw * m + m + 2)
  void* v;             // V at (xi = 0, this channel block, first tile of the row); tile pitch 16 elements
  int64_t pos_stride;  // bytes between transform positions xi of V
};
using InputFn = void (*)(const InputArgs& a);

// GEMM micro-kernel for one transform position: acc[p][b*16 + l] (p < mr tiles, b < nob blocks, row
// width nob*16, int32 or fp32) = sum over input channels of V[c][p] * U[c][b*16 + l], starting at 0.
//   V: [c1][tile][16] (tile pitch 16 elements, c1_stride bytes between channel blocks)
//   U int16: [c1][q < 8][nob][16 oc][2 ic];  U fp32: [c1][c2 < 16][nob][16 oc]
struct GemmArgs {
  const void* v;
  int64_t c1_stride;
  int nc1;
  const void* u;
  int mr, nob;
};
using GemmFn = void (*)(const GemmArgs& a, void* acc);

// Output transform of one tile: m holds M at (xi = 0, this tile), element (xi, b*16 + l) at
// m + xi * pos_stride + (b*16 + l) * 4 bytes; y receives the tile's m rows (y_row_stride bytes apart)
// of m pixels x nob * 16 channels (int32: A^T M A >> 2, wrapping, the bias is added by the output
// stage; fp32: A^T M A + bias, the bias added last in fp32).
struct OutputArgs {
  const void* m;
  int64_t pos_stride;
  int nob;
  void* y;
  int64_t y_row_stride;
  const direct::EpiBlock* blocks;  // fp32: bias_f of the nob blocks
};
using OutputFn = void (*)(const OutputArgs& a);

struct Table {
  InputFn input = nullptr;
  GemmFn gemm[kMaxNob][kMaxMr] = {};  // [nob-1][mr-1]
  int mr_max[kMaxNob] = {};
  OutputFn output = nullptr;
  direct::EpiFn epi = nullptr;        // the direct kernels' DPU stage for int32 / fp32 tiles
};

// Per (ISA, kind); nullptr when the ISA has no kernels for the kind.
const Table* table_scalar(Kind k);
const Table* table_avx2(Kind k);
const Table* table_avx512(Kind k);

}  // namespace winograd
}  // namespace npuemu
