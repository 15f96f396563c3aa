// AVX-512 VNNI Winograd kernels. One vector = one block of 16 channels:
//   int8 family: input transform on int16 (ymm, exact), GEMM with vpdpwssd (per 32-bit lane two
//                int16 x int16 products added to the int32 accumulator, wrapping, no saturation),
//                output transform on int32 (zmm, wrapping) and an arithmetic shift right by 2;
//   fp16 family: fp32 transforms and vfmadd231ps GEMM chains, in the operation order of
//                winograd_scalar.cpp (bit-identical results).
// The output stage is the direct kernels' AVX-512 DPU stage. Only functions marked NPUEMU_TARGET_AVX512
// contain AVX-512 instructions.
#include <cstring>
#include <utility>

#include "kernels/conv/winograd.h"

#if NPUEMU_X86
#include <immintrin.h>
#endif

namespace npuemu {
namespace winograd {

#if NPUEMU_X86
namespace {

#define NPUEMU_UNROLL _Pragma("GCC unroll 36")

// ---------------------------------------------------------------------------------------------------
// One-dimensional transforms (see winograd_scalar.cpp for the matrices; same operations, same order).

NPUEMU_TARGET_AVX512 NPUEMU_INLINE void in23(const __m256i* r, __m256i* t) {
  t[0] = _mm256_sub_epi16(r[0], r[2]);
  t[1] = _mm256_add_epi16(r[1], r[2]);
  t[2] = _mm256_sub_epi16(r[2], r[1]);
  t[3] = _mm256_sub_epi16(r[1], r[3]);
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void in23(const __m512* r, __m512* t) {
  t[0] = _mm512_sub_ps(r[0], r[2]);
  t[1] = _mm512_add_ps(r[1], r[2]);
  t[2] = _mm512_sub_ps(r[2], r[1]);
  t[3] = _mm512_sub_ps(r[1], r[3]);
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void in43(const __m512* r, __m512* t) {
  const __m512 c4 = _mm512_set1_ps(4.f), cm4 = _mm512_set1_ps(-4.f), cm5 = _mm512_set1_ps(-5.f);
  t[0] = _mm512_fmadd_ps(cm5, r[2], _mm512_fmadd_ps(c4, r[0], r[4]));
  const __m512 p = _mm512_fmadd_ps(cm4, r[2], r[4]), q = _mm512_fmadd_ps(cm4, r[1], r[3]);
  t[1] = _mm512_add_ps(p, q);
  t[2] = _mm512_sub_ps(p, q);
  const __m512 p2 = _mm512_sub_ps(r[4], r[2]);
  const __m512 q2 = _mm512_mul_ps(_mm512_set1_ps(2.f), _mm512_sub_ps(r[3], r[1]));
  t[3] = _mm512_add_ps(p2, q2);
  t[4] = _mm512_sub_ps(p2, q2);
  t[5] = _mm512_fmadd_ps(cm5, r[3], _mm512_fmadd_ps(c4, r[1], r[5]));
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void out23(const __m512i* m, __m512i* o) {
  o[0] = _mm512_add_epi32(_mm512_add_epi32(m[0], m[1]), m[2]);
  o[1] = _mm512_sub_epi32(_mm512_sub_epi32(m[1], m[2]), m[3]);
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void out23(const __m512* m, __m512* o) {
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]);
  o[1] = _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]);
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void out43(const __m512* m, __m512* o) {
  const __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]);
  const __m512 c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
  o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), d, b);
  o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), c, a);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), d, b), m[5]);
}

NPUEMU_TARGET_AVX512 NPUEMU_INLINE void load_vec(const uint8_t* p, __m256i* v) {
  *v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void load_vec(const uint8_t* p, __m512* v) { *v = _mm512_loadu_ps(p); }
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void store_vec(uint8_t* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void store_vec(uint8_t* p, __m512 v) { _mm512_storeu_ps(p, v); }

// ---------------------------------------------------------------------------------------------------
// Input transform of a row of tiles. Pass 1 (t = B^T d, per column) is computed once per column: the
// two columns a tile shares with its left neighbour are carried over in registers.

template <int N, class Vec>
NPUEMU_TARGET_AVX512 void input_row(const InputArgs& a) {
  constexpr int M = N - 2;
  constexpr int64_t kVb = sizeof(Vec);  // bytes per 16-channel vector
  const uint8_t* x = static_cast<const uint8_t*>(a.x);
  uint8_t* v = static_cast<uint8_t*>(a.v);
  Vec t[N][N];
  for (int tw = 0; tw < a.ntiles; ++tw) {
    NPUEMU_UNROLL for (int j = 0; j < N; ++j) {
      if (tw > 0 && j < 2) {
        NPUEMU_UNROLL for (int k = 0; k < N; ++k) t[k][j] = t[k][j + M];
        continue;
      }
      Vec r[N], res[N];
      NPUEMU_UNROLL for (int i = 0; i < N; ++i) load_vec(x + i * a.row_pitch + (tw * M + j) * kVb, &r[i]);
      if constexpr (N == 4) in23(r, res); else in43(r, res);
      NPUEMU_UNROLL for (int k = 0; k < N; ++k) t[k][j] = res[k];
    }
    NPUEMU_UNROLL for (int k = 0; k < N; ++k) {
      Vec res[N];
      if constexpr (N == 4) in23(t[k], res); else in43(t[k], res);
      NPUEMU_UNROLL for (int j = 0; j < N; ++j) store_vec(v + (k * N + j) * a.pos_stride + tw * kVb, res[j]);
    }
  }
}

NPUEMU_TARGET_AVX512 void input_i16_f23(const InputArgs& a) { input_row<4, __m256i>(a); }
NPUEMU_TARGET_AVX512 void input_f32_f23(const InputArgs& a) { input_row<4, __m512>(a); }
NPUEMU_TARGET_AVX512 void input_f32_f43(const InputArgs& a) { input_row<6, __m512>(a); }

// ---------------------------------------------------------------------------------------------------
// GEMM micro-kernels: MR tiles x NOB blocks of zmm accumulators, the V element (pair) broadcast.

template <int MR, int NOB>
NPUEMU_TARGET_AVX512 void gemm_i16(const GemmArgs& a, void* accv) {
  __m512i acc[MR][NOB];
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) acc[p][b] =
      _mm512_setzero_si512();
  const int16_t* w = static_cast<const int16_t*>(a.u);
  const uint8_t* vc = static_cast<const uint8_t*>(a.v);
  for (int c = 0; c < a.nc1; ++c, vc += a.c1_stride) {
    NPUEMU_UNROLL for (int q = 0; q < 8; ++q) {
      __m512i wv[NOB];
      NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) wv[b] = _mm512_load_si512(w + b * 32);
      NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
        int32_t xd;
        std::memcpy(&xd, vc + p * 32 + q * 4, 4);
        const __m512i xb = _mm512_set1_epi32(xd);
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) acc[p][b] = _mm512_dpwssd_epi32(acc[p][b], xb, wv[b]);
      }
      w += NOB * 32;
    }
  }
  int32_t* out = static_cast<int32_t*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b)
      _mm512_store_si512(out + (p * NOB + b) * 16, acc[p][b]);
}

template <int MR, int NOB>
NPUEMU_TARGET_AVX512 void gemm_f32(const GemmArgs& a, void* accv) {
  __m512 acc[MR][NOB];
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) acc[p][b] =
      _mm512_setzero_ps();
  const float* w = static_cast<const float*>(a.u);
  const uint8_t* vc = static_cast<const uint8_t*>(a.v);
  for (int c = 0; c < a.nc1; ++c, vc += a.c1_stride) {
    const float* xf = reinterpret_cast<const float*>(vc);
    for (int c2 = 0; c2 < 16; ++c2) {
      __m512 wv[NOB];
      NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) wv[b] = _mm512_load_ps(w + b * 16);
      NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
        const __m512 xb = _mm512_set1_ps(xf[p * 16 + c2]);
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) acc[p][b] = _mm512_fmadd_ps(xb, wv[b], acc[p][b]);
      }
      w += NOB * 16;
    }
  }
  float* out = static_cast<float*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b)
      _mm512_store_ps(out + (p * NOB + b) * 16, acc[p][b]);
}

// ---------------------------------------------------------------------------------------------------
// Output transform of one tile, block by block.

NPUEMU_TARGET_AVX512 void output_i32_f23(const OutputArgs& a) {
  const uint8_t* mp = static_cast<const uint8_t*>(a.m);
  uint8_t* y = static_cast<uint8_t*>(a.y);
  const int width = a.nob * 16;
  for (int b = 0; b < a.nob; ++b) {
    __m512i s[2][4];
    NPUEMU_UNROLL for (int j = 0; j < 4; ++j) {
      __m512i col[4], res[2];
      NPUEMU_UNROLL for (int i = 0; i < 4; ++i) col[i] = _mm512_load_si512(mp + (i * 4 + j) * a.pos_stride + b * 64);
      out23(col, res);
      s[0][j] = res[0];
      s[1][j] = res[1];
    }
    NPUEMU_UNROLL for (int k = 0; k < 2; ++k) {
      __m512i res[2];
      out23(s[k], res);
      // A^T M A = 4 * sum (mod 2^32); exact shift while |sum| < 2^29 (supports())
      NPUEMU_UNROLL for (int j = 0; j < 2; ++j)
          _mm512_store_si512(y + k * a.y_row_stride + (j * width + b * 16) * 4, _mm512_srai_epi32(res[j], 2));
    }
  }
}

template <int N>
NPUEMU_TARGET_AVX512 void output_f32(const OutputArgs& a) {
  constexpr int M = N - 2;
  const uint8_t* mp = static_cast<const uint8_t*>(a.m);
  uint8_t* y = static_cast<uint8_t*>(a.y);
  const int width = a.nob * 16;
  for (int b = 0; b < a.nob; ++b) {
    const __m512 bias = _mm512_load_ps(a.blocks[b].bias_f);
    __m512 s[M][N];
    NPUEMU_UNROLL for (int j = 0; j < N; ++j) {
      __m512 col[N], res[M];
      NPUEMU_UNROLL for (int i = 0; i < N; ++i) col[i] = _mm512_load_ps(mp + (i * N + j) * a.pos_stride + b * 64);
      if constexpr (N == 4) out23(col, res); else out43(col, res);
      NPUEMU_UNROLL for (int k = 0; k < M; ++k) s[k][j] = res[k];
    }
    NPUEMU_UNROLL for (int k = 0; k < M; ++k) {
      __m512 res[M];
      if constexpr (N == 4) out23(s[k], res); else out43(s[k], res);
      NPUEMU_UNROLL for (int j = 0; j < M; ++j)
          _mm512_store_ps(y + k * a.y_row_stride + (j * width + b * 16) * 4, _mm512_add_ps(res[j], bias));
    }
  }
}

NPUEMU_TARGET_AVX512 void output_f32_f23(const OutputArgs& a) { output_f32<4>(a); }
NPUEMU_TARGET_AVX512 void output_f32_f43(const OutputArgs& a) { output_f32<6>(a); }

// ---------------------------------------------------------------------------------------------------
// Tables

template <bool kInt, int NOB, int... I>
void fill(Table& t, std::integer_sequence<int, I...>) {
  if constexpr (kInt)
    ((t.gemm[NOB - 1][I] = &gemm_i16<I + 1, NOB>), ...);
  else
    ((t.gemm[NOB - 1][I] = &gemm_f32<I + 1, NOB>), ...);
  t.mr_max[NOB - 1] = static_cast<int>(sizeof...(I));
}

// Register budget (32 zmm): MR * NOB accumulators + NOB weight vectors + 1 broadcast.
template <bool kInt>
Table make_table(InputFn in, OutputFn out) {
  Table t;
  fill<kInt, 1>(t, std::make_integer_sequence<int, 24>{});
  fill<kInt, 2>(t, std::make_integer_sequence<int, 12>{});
  fill<kInt, 3>(t, std::make_integer_sequence<int, 8>{});
  fill<kInt, 4>(t, std::make_integer_sequence<int, 6>{});
  t.input = in;
  t.output = out;
  const direct::UkernelTable* d = direct::ukernels_avx512(kInt ? direct::MacType::kU8S8_I32 : direct::MacType::kF32);
  t.epi = d != nullptr && d->epi != nullptr ? d->epi : direct::epi_portable;
  return t;
}

}  // namespace

const Table* table_avx512(Kind k) {
  static const Table i23 = make_table<true>(input_i16_f23, output_i32_f23);
  static const Table f23 = make_table<false>(input_f32_f23, output_f32_f23);
  static const Table f43 = make_table<false>(input_f32_f43, output_f32_f43);
  switch (k) {
    case Kind::kInt8F23: return &i23;
    case Kind::kFp16F23: return &f23;
    case Kind::kFp16F43: return &f43;
  }
  return nullptr;
}

#else
const Table* table_avx512(Kind) { return nullptr; }
#endif

}  // namespace winograd
}  // namespace npuemu
