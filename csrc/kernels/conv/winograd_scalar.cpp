// Portable Winograd kernels (any CPU). The transforms are written as the same sequence of operations
// as the SIMD kernels (the same additions, the same fused multiply-adds), so every ISA's fp32 results
// are bit-identical to these; integer results are exact on every ISA.
#include <cmath>
#include <cstring>

#include "kernels/conv/winograd.h"

namespace npuemu {
namespace winograd {
namespace {

// ---------------------------------------------------------------------------------------------------
// One-dimensional transforms (applied to rows, then to columns). T is int32 with wrap-around
// (computed in uint32) or float.
//
// F(2,3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1].
// F(4,3): B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
//         A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].

inline void in23(const uint32_t* r, uint32_t* t) {
  t[0] = r[0] - r[2];
  t[1] = r[1] + r[2];
  t[2] = r[2] - r[1];
  t[3] = r[1] - r[3];
}
inline void in23(const float* r, float* t) {
  t[0] = r[0] - r[2];
  t[1] = r[1] + r[2];
  t[2] = r[2] - r[1];
  t[3] = r[1] - r[3];
}
inline void in43(const float* r, float* t) {
  t[0] = std::fmaf(-5.f, r[2], std::fmaf(4.f, r[0], r[4]));
  const float p = std::fmaf(-4.f, r[2], r[4]), q = std::fmaf(-4.f, r[1], r[3]);
  t[1] = p + q;
  t[2] = p - q;
  const float p2 = r[4] - r[2], q2 = 2.f * (r[3] - r[1]);
  t[3] = p2 + q2;
  t[4] = p2 - q2;
  t[5] = std::fmaf(-5.f, r[3], std::fmaf(4.f, r[1], r[5]));
}
inline void out23(const uint32_t* m, uint32_t* o) {
  o[0] = (m[0] + m[1]) + m[2];
  o[1] = (m[1] - m[2]) - m[3];
}
inline void out23(const float* m, float* o) {
  o[0] = (m[0] + m[1]) + m[2];
  o[1] = (m[1] - m[2]) - m[3];
}
inline void out43(const float* m, float* o) {
  const float a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  o[0] = (m[0] + a) + c;
  o[1] = std::fmaf(2.f, d, b);
  o[2] = std::fmaf(4.f, c, a);
  o[3] = std::fmaf(8.f, d, b) + m[5];
}

// ---------------------------------------------------------------------------------------------------
// Input transform V = B^T d B: pass 1 combines rows (t = B^T d), pass 2 columns (V = t B).

template <int N, class In, class Acc, class Tf>
void input_t(const InputArgs& a, Tf tf) {
  const uint8_t* x = static_cast<const uint8_t*>(a.x);
  constexpr int M = N - 2;
  for (int tw = 0; tw < a.ntiles; ++tw) {
    for (int l = 0; l < kC2; ++l) {
      Acc d[N][N], t[N][N], col[N], res[N];
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          const In v = reinterpret_cast<const In*>(x + i * a.row_pitch)[(tw * M + j) * kC2 + l];
          d[i][j] = static_cast<Acc>(v);
        }
      for (int j = 0; j < N; ++j) {
        for (int i = 0; i < N; ++i) col[i] = d[i][j];
        tf(col, res);
        for (int k = 0; k < N; ++k) t[k][j] = res[k];
      }
      for (int k = 0; k < N; ++k) {
        tf(t[k], res);
        for (int j = 0; j < N; ++j) {
          uint8_t* dst = static_cast<uint8_t*>(a.v) + (k * N + j) * a.pos_stride;
          reinterpret_cast<In*>(dst)[tw * kC2 + l] = static_cast<In>(res[j]);
        }
      }
    }
  }
}

// int16 inputs, int16 V: |V| <= 4 * max|x| <= 1020, so the int32 intermediate and the narrowing are exact.
void input_i16_f23(const InputArgs& a) {
  input_t<4, int16_t, uint32_t>(a, [](const uint32_t* r, uint32_t* t) { in23(r, t); });
}
void input_f32_f23(const InputArgs& a) {
  input_t<4, float, float>(a, [](const float* r, float* t) { in23(r, t); });
}
void input_f32_f43(const InputArgs& a) {
  input_t<6, float, float>(a, [](const float* r, float* t) { in43(r, t); });
}

// ---------------------------------------------------------------------------------------------------
// GEMM micro-kernels (tile shape at run time).

void gemm_i16(const GemmArgs& a, void* accv) {
  uint32_t* acc = static_cast<uint32_t*>(accv);  // int32 accumulators with defined wrap-around
  const int nob = a.nob, mr = a.mr, width = nob * kC2;
  std::memset(acc, 0, sizeof(uint32_t) * static_cast<size_t>(mr * width));
  const int16_t* w = static_cast<const int16_t*>(a.u);
  for (int c = 0; c < a.nc1; ++c) {
    const int16_t* vc = reinterpret_cast<const int16_t*>(static_cast<const uint8_t*>(a.v) + c * a.c1_stride);
    for (int q = 0; q < 8; ++q, w += width * 2) {
      for (int p = 0; p < mr; ++p) {
        // one vpmaddwd lane: two int16 x int16 products summed in int32 (|sum| <= 2 * 2295 * 1020)
        const int32_t x0 = vc[p * kC2 + 2 * q], x1 = vc[p * kC2 + 2 * q + 1];
        uint32_t* ap = acc + p * width;
        for (int l = 0; l < width; ++l) ap[l] += static_cast<uint32_t>(x0 * w[l * 2] + x1 * w[l * 2 + 1]);
      }
    }
  }
}

void gemm_f32(const GemmArgs& a, void* accv) {
  float* acc = static_cast<float*>(accv);
  const int nob = a.nob, mr = a.mr, width = nob * kC2;
  for (int i = 0; i < mr * width; ++i) acc[i] = 0.f;
  const float* w = static_cast<const float*>(a.u);
  for (int c = 0; c < a.nc1; ++c) {
    const float* vc = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.v) + c * a.c1_stride);
    for (int c2 = 0; c2 < kC2; ++c2, w += width) {
      for (int p = 0; p < mr; ++p) {
        const float xv = vc[p * kC2 + c2];
        float* ap = acc + p * width;
        for (int l = 0; l < width; ++l) ap[l] = std::fmaf(xv, w[l], ap[l]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Output transform Y = A^T M A: pass 1 combines rows (s = A^T M), pass 2 columns (Y = s A).

template <int N, class Acc, class Tf, class Fin>
void output_t(const OutputArgs& a, Tf tf, Fin fin) {
  constexpr int M = N - 2;
  const int width = a.nob * kC2;
  const uint8_t* mp = static_cast<const uint8_t*>(a.m);
  for (int l = 0; l < width; ++l) {
    Acc mm[N][N], s[M][N], col[N], res[M];
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) std::memcpy(&mm[i][j], mp + (i * N + j) * a.pos_stride + l * 4, 4);
    for (int j = 0; j < N; ++j) {
      for (int i = 0; i < N; ++i) col[i] = mm[i][j];
      tf(col, res);
      for (int k = 0; k < M; ++k) s[k][j] = res[k];
    }
    for (int k = 0; k < M; ++k) {
      tf(s[k], res);
      for (int j = 0; j < M; ++j) fin(static_cast<uint8_t*>(a.y) + k * a.y_row_stride + (j * width + l) * 4, res[j], l);
    }
  }
}

// A^T M A = 4 * (the sum) modulo 2^32; the arithmetic shift by 2 is exact while |sum| < 2^29.
void output_i32_f23(const OutputArgs& a) {
  output_t<4, uint32_t>(
      a, [](const uint32_t* m, uint32_t* o) { out23(m, o); },
      [](uint8_t* dst, uint32_t v, int) {
        const int32_t r = static_cast<int32_t>(v) >> 2;
        std::memcpy(dst, &r, 4);
      });
}
void output_f32_f23(const OutputArgs& a) {
  output_t<4, float>(a, [](const float* m, float* o) { out23(m, o); },
                     [&a](uint8_t* dst, float v, int l) {
                       const float r = v + a.blocks[l / kC2].bias_f[l % kC2];
                       std::memcpy(dst, &r, 4);
                     });
}
void output_f32_f43(const OutputArgs& a) {
  output_t<6, float>(a, [](const float* m, float* o) { out43(m, o); },
                     [&a](uint8_t* dst, float v, int l) {
                       const float r = v + a.blocks[l / kC2].bias_f[l % kC2];
                       std::memcpy(dst, &r, 4);
                     });
}

Table make_table(InputFn in, GemmFn gemm, OutputFn out) {
  Table t;
  t.input = in;
  t.output = out;
  for (int nob = 1; nob <= kMaxNob; ++nob) {
    t.mr_max[nob - 1] = 8;
    for (int mr = 1; mr <= kMaxMr; ++mr) t.gemm[nob - 1][mr - 1] = gemm;
  }
  t.epi = direct::epi_portable;
  return t;
}

}  // namespace

const Table* table_scalar(Kind k) {
  static const Table i23 = make_table(input_i16_f23, gemm_i16, output_i32_f23);
  static const Table f23 = make_table(input_f32_f23, gemm_f32, output_f32_f23);
  static const Table f43 = make_table(input_f32_f43, gemm_f32, output_f32_f43);
  switch (k) {
    case Kind::kInt8F23: return &i23;
    case Kind::kFp16F23: return &f23;
    case Kind::kFp16F43: return &f43;
  }
  return nullptr;
}

}  // namespace winograd
}  // namespace npuemu
