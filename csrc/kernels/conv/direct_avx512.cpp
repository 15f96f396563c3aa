// AVX-512 VNNI micro-kernels of the direct convolution (Ice Lake / Cascade Lake / Zen 4 and later).
//
// CNA stage: an MR x NOB tile of zmm accumulators, one zmm = 16 output channels.
//   int8:  vpdpbusd: per 32-bit lane, 4 u8 inputs x 4 s8 weights summed into int32 (no saturation),
//          the input dword broadcast to all 16 output channels.
//   int16: vpmaddwd: 2 int16 x int16 products summed into int32 (exact: weights exclude -32768), then
//          sign-extended into int64 accumulators for even and odd channels.
//   fp16:  vfmadd231ps chains in fp32, input broadcast, starting from the bias.
// DPU stage: the fixed-point requantization of fixedpoint.h in 64-bit lanes (even/odd channels), the
// float requantization of onnxruntime, or fp32 -> fp16 with vcvtps2ph (round to nearest even).
// Only functions marked NPUEMU_TARGET_AVX512 contain AVX-512 instructions.
#include <cstring>
#include <utility>

#include "kernels/conv/direct.h"

#if NPUEMU_X86
#include <immintrin.h>
#endif

namespace npuemu {
namespace direct {

#if NPUEMU_X86
namespace {

#define NPUEMU_UNROLL _Pragma("GCC unroll 32")

template <int MR, int NOB>
NPUEMU_TARGET_AVX512 void mac_u8s8(const MacArgs& a, void* accv) {
  __m512i acc[MR][NOB];
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) acc[p][b] =
      _mm512_setzero_si512();
  const int8_t* w = static_cast<const int8_t*>(a.w);
  const int ntaps = a.ntaps, nc1 = a.nc1;
  const int64_t c1s = a.c1_stride;
  for (int t = 0; t < ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < nc1; ++c, xt += c1s) {
      NPUEMU_UNROLL for (int q = 0; q < 4; ++q) {
        __m512i wv[NOB];
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) wv[b] = _mm512_load_si512(w + b * 64);
        NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
          int32_t xd;
          std::memcpy(&xd, xt + p * 16 + q * 4, 4);
          const __m512i xb = _mm512_set1_epi32(xd);
          NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) acc[p][b] = _mm512_dpbusd_epi32(acc[p][b], xb, wv[b]);
        }
        w += NOB * 64;
      }
    }
  }
  int32_t* out = static_cast<int32_t*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b)
      _mm512_store_si512(out + (p * NOB + b) * 16, acc[p][b]);
}

template <int MR, int NOB>
NPUEMU_TARGET_AVX512 void mac_i16_i64(const MacArgs& a, void* accv) {
  __m512i ae[MR][NOB], ao[MR][NOB];
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    ae[p][b] = _mm512_setzero_si512();
    ao[p][b] = _mm512_setzero_si512();
  }
  const int16_t* w = static_cast<const int16_t*>(a.w);
  const int ntaps = a.ntaps, nc1 = a.nc1;
  const int64_t c1s = a.c1_stride;
  for (int t = 0; t < ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < nc1; ++c, xt += c1s) {
      for (int q = 0; q < 8; ++q) {
        __m512i wv[NOB];
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) wv[b] = _mm512_load_si512(w + b * 32);
        NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
          int32_t xd;
          std::memcpy(&xd, xt + (p * 16 + q * 2) * 2, 4);
          const __m512i xb = _mm512_set1_epi32(xd);
          NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
            const __m512i m = _mm512_madd_epi16(xb, wv[b]);
            ae[p][b] = _mm512_add_epi64(ae[p][b], _mm512_srai_epi64(_mm512_slli_epi64(m, 32), 32));
            ao[p][b] = _mm512_add_epi64(ao[p][b], _mm512_srai_epi64(m, 32));
          }
        }
        w += NOB * 32;
      }
    }
  }
  int64_t* out = static_cast<int64_t*>(accv);
  const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    _mm512_storeu_si512(out + (p * NOB + b) * 16, _mm512_permutex2var_epi64(ae[p][b], lo, ao[p][b]));
    _mm512_storeu_si512(out + (p * NOB + b) * 16 + 8, _mm512_permutex2var_epi64(ae[p][b], hi, ao[p][b]));
  }
}

template <int MR, int NOB>
NPUEMU_TARGET_AVX512 void mac_f32(const MacArgs& a, void* accv) {
  __m512 acc[MR][NOB];
  NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    const __m512 bias = _mm512_load_ps(a.blocks[b].bias_f);
    NPUEMU_UNROLL for (int p = 0; p < MR; ++p) acc[p][b] = bias;
  }
  const float* w = static_cast<const float*>(a.w);
  const int ntaps = a.ntaps, nc1 = a.nc1;
  const int64_t c1s = a.c1_stride;
  for (int t = 0; t < ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < nc1; ++c, xt += c1s) {
      const float* xf = reinterpret_cast<const float*>(xt);
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
  }
  float* out = static_cast<float*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b)
      _mm512_store_ps(out + (p * NOB + b) * 16, acc[p][b]);
}

// ---------------------------------------------------------------------------------------------------
// Output stage

struct FixedRegs {
  __m512i m0, m0o, re, ro, ke, ko, se, so;
};

NPUEMU_TARGET_AVX512 NPUEMU_INLINE FixedRegs load_fixed(const FixedBlock& f) {
  FixedRegs r;
  r.m0 = _mm512_load_si512(f.m0);
  r.m0o = _mm512_load_si512(f.m0_odd);
  r.re = _mm512_load_si512(f.r_e);
  r.ro = _mm512_load_si512(f.r_o);
  r.ke = _mm512_load_si512(f.k_e);
  r.ko = _mm512_load_si512(f.k_o);
  r.se = _mm512_load_si512(f.s_e);
  r.so = _mm512_load_si512(f.s_o);
  return r;
}

// q = (P + r - (P < -2^30 ? k : 0)) >> s per 64-bit lane, clamped to [lo, hi]; see direct.h.
NPUEMU_TARGET_AVX512 NPUEMU_INLINE __m512i fixed_half(__m512i p, __m512i r, __m512i k, __m512i s, __m512i lo,
                                                      __m512i hi) {
  const __m512i t = _mm512_set1_epi64(-(int64_t{1} << 30));
  const __mmask8 neg = _mm512_cmplt_epi64_mask(p, t);
  __m512i q = _mm512_add_epi64(p, r);
  q = _mm512_mask_sub_epi64(q, neg, q, k);
  q = _mm512_srav_epi64(q, s);
  return _mm512_max_epi64(_mm512_min_epi64(q, hi), lo);
}

NPUEMU_TARGET_AVX512 NPUEMU_INLINE __m512i fixed_requant(__m512i v, const FixedRegs& f, __m512i lo_e, __m512i lo_o,
                                                         __m512i hi_e, __m512i hi_o) {
  const __m512i pe = _mm512_mul_epi32(v, f.m0);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), f.m0o);
  const __m512i qe = fixed_half(pe, f.re, f.ke, f.se, lo_e, hi_e);
  const __m512i qo = fixed_half(po, f.ro, f.ko, f.so, lo_o, hi_o);
  return _mm512_mask_blend_epi32(0xAAAA, qe, _mm512_slli_epi64(qo, 32));
}

// Same result when no lane shifts left (s >= 31, or m0 == 0): then |q| < 2^31 before clamping, so the
// halves are narrowed first (one vpermt2d) and clamped once in 32-bit lanes.
NPUEMU_TARGET_AVX512 NPUEMU_INLINE __m512i fixed_half_noclamp(__m512i p, __m512i r, __m512i k, __m512i s) {
  const __m512i t = _mm512_set1_epi64(-(int64_t{1} << 30));
  const __mmask8 neg = _mm512_cmplt_epi64_mask(p, t);
  __m512i q = _mm512_add_epi64(p, r);
  q = _mm512_mask_sub_epi64(q, neg, q, k);
  return _mm512_srav_epi64(q, s);
}

NPUEMU_TARGET_AVX512 NPUEMU_INLINE __m512i fixed_requant_narrow(__m512i v, const FixedRegs& f, __m512i lo,
                                                                __m512i hi) {
  const __m512i interleave = _mm512_set_epi32(30, 14, 28, 12, 26, 10, 24, 8, 22, 6, 20, 4, 18, 2, 16, 0);
  const __m512i pe = _mm512_mul_epi32(v, f.m0);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), f.m0o);
  const __m512i qe = fixed_half_noclamp(pe, f.re, f.ke, f.se);
  const __m512i qo = fixed_half_noclamp(po, f.ro, f.ko, f.so);
  const __m512i q = _mm512_permutex2var_epi32(qe, interleave, qo);  // lane 2i <- qe dword 2i, 2i+1 <- qo dword 2i
  return _mm512_max_epi32(_mm512_min_epi32(q, hi), lo);
}

template <int OUT>
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void store16(uint8_t* y, __m512i v) {
  if (OUT == 1) _mm_storeu_si128(reinterpret_cast<__m128i*>(y), _mm512_cvtepi32_epi8(v));
  else if (OUT == 2) _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), _mm512_cvtepi32_epi16(v));
  else _mm512_storeu_si512(y, v);
}

// Stores four consecutive pixels' 16 channels (already in the output range) as 4 x 16 contiguous
// elements. Packs narrow within 128-bit lanes, leaving dword (k, j) = pixel j's channels 4k..4k+3; the
// vpermd (a 4x4 dword transpose) puts pixel j's 16 channels in dwords 4j..4j+3.
template <int OUT, bool UNSIGNED>
NPUEMU_TARGET_AVX512 NPUEMU_INLINE void store16x4(uint8_t* y, __m512i a, __m512i b, __m512i c, __m512i d) {
  if (OUT == 1) {
    const __m512i ab = _mm512_packs_epi32(a, b), cd = _mm512_packs_epi32(c, d);
    const __m512i abcd = UNSIGNED ? _mm512_packus_epi16(ab, cd) : _mm512_packs_epi16(ab, cd);
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_storeu_si512(y, _mm512_permutexvar_epi32(idx, abcd));
  } else if (OUT == 2) {
    const __m512i idx = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
    _mm512_storeu_si512(y, _mm512_permutexvar_epi64(idx, _mm512_packs_epi32(a, b)));
    _mm512_storeu_si512(y + 64, _mm512_permutexvar_epi64(idx, _mm512_packs_epi32(c, d)));
  } else {
    _mm512_storeu_si512(y, a);
    _mm512_storeu_si512(y + 64, b);
    _mm512_storeu_si512(y + 128, c);
    _mm512_storeu_si512(y + 192, d);
  }
}

template <int OUT>
NPUEMU_TARGET_AVX512 void epi_i32(const void* accv, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride) {
  const int32_t* acc = static_cast<const int32_t*>(accv);
  const int width = nob * 16;
  const __m512i zp = _mm512_set1_epi32(e.zp);
  for (int b = 0; b < nob; ++b) {
    const EpiBlock& eb = e.blocks[b];
    const __m512i bias = _mm512_load_si512(eb.bias);
    uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
    if (e.kind == EpiKind::kRaw32) {
      for (int p = 0; p < mr; ++p)
        store16<OUT>(yb + p * 16 * OUT, _mm512_add_epi32(_mm512_load_si512(acc + p * width + b * 16), bias));
    } else if (e.kind == EpiKind::kFixed) {
      const FixedRegs pos = load_fixed(eb.pos);
      const __m512i lo_e = _mm512_load_si512(eb.lo_e), lo_o = _mm512_load_si512(eb.lo_o);
      const __m512i hi_e = _mm512_load_si512(eb.hi_e), hi_o = _mm512_load_si512(eb.hi_o);
      if (!e.leaky && eb.narrow) {
        const __m512i lo = _mm512_load_si512(eb.lo), hi = _mm512_load_si512(eb.hi);
        int p = 0;
        for (; p + 4 <= mr; p += 4) {
          __m512i q[4];
          for (int i = 0; i < 4; ++i) {
            const __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + (p + i) * width + b * 16), bias);
            q[i] = _mm512_add_epi32(fixed_requant_narrow(v, pos, lo, hi), zp);
          }
          if (e.unsigned_out) store16x4<OUT, true>(yb + p * 16 * OUT, q[0], q[1], q[2], q[3]);
          else store16x4<OUT, false>(yb + p * 16 * OUT, q[0], q[1], q[2], q[3]);
        }
        for (; p < mr; ++p) {
          const __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + p * width + b * 16), bias);
          store16<OUT>(yb + p * 16 * OUT, _mm512_add_epi32(fixed_requant_narrow(v, pos, lo, hi), zp));
        }
      } else if (!e.leaky) {
        for (int p = 0; p < mr; ++p) {
          const __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + p * width + b * 16), bias);
          store16<OUT>(yb + p * 16 * OUT, _mm512_add_epi32(fixed_requant(v, pos, lo_e, lo_o, hi_e, hi_o), zp));
        }
      } else {
        const FixedRegs neg = load_fixed(eb.neg);
        for (int p = 0; p < mr; ++p) {
          const __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + p * width + b * 16), bias);
          const __m512i qp = fixed_requant(v, pos, lo_e, lo_o, hi_e, hi_o);
          const __m512i qn = fixed_requant(v, neg, lo_e, lo_o, hi_e, hi_o);
          const __mmask16 isneg = _mm512_cmplt_epi32_mask(v, _mm512_setzero_si512());
          store16<OUT>(yb + p * 16 * OUT, _mm512_add_epi32(_mm512_mask_blend_epi32(isneg, qp, qn), zp));
        }
      }
    } else {  // kFloat: float32 multiply, clamp (MAXPS/MINPS), round half to even
      const __m512 sp = _mm512_load_ps(eb.scale), sn = _mm512_load_ps(eb.scale_neg);
      const __m512 flo = _mm512_load_ps(eb.flo), fhi = _mm512_load_ps(eb.fhi);
      auto requant_float = [&](int p) NPUEMU_TARGET_AVX512 {
        const __m512i v = _mm512_add_epi32(_mm512_load_si512(acc + p * width + b * 16), bias);
        const __mmask16 isneg = _mm512_cmplt_epi32_mask(v, _mm512_setzero_si512());
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_mask_blend_ps(isneg, sp, sn));
        f = _mm512_min_ps(_mm512_max_ps(f, flo), fhi);
        return _mm512_add_epi32(_mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zp);
      };
      int p = 0;
      for (; p + 4 <= mr; p += 4) {
        const __m512i q0 = requant_float(p), q1 = requant_float(p + 1), q2 = requant_float(p + 2),
                      q3 = requant_float(p + 3);
        if (e.unsigned_out) store16x4<OUT, true>(yb + p * 16 * OUT, q0, q1, q2, q3);
        else store16x4<OUT, false>(yb + p * 16 * OUT, q0, q1, q2, q3);
      }
      for (; p < mr; ++p) store16<OUT>(yb + p * 16 * OUT, requant_float(p));
    }
  }
}

NPUEMU_TARGET_AVX512 void epi_any_i32(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t s) {
  switch (e.out_elem) {
    case 1: epi_i32<1>(acc, mr, nob, e, y, s); break;
    case 2: epi_i32<2>(acc, mr, nob, e, y, s); break;
    default: epi_i32<4>(acc, mr, nob, e, y, s); break;
  }
}

NPUEMU_TARGET_AVX512 void epi_f32(const void* accv, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride) {
  const float* acc = static_cast<const float*>(accv);
  const int width = nob * 16;
  const __m512 zero = _mm512_setzero_ps();
  const __m512 lo = _mm512_set1_ps(e.act.lo), hi = _mm512_set1_ps(e.act.hi), alpha = _mm512_set1_ps(e.act.alpha);
  for (int b = 0; b < nob; ++b) {
    uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
    for (int p = 0; p < mr; ++p) {
      __m512 v = _mm512_load_ps(acc + p * width + b * 16);
      switch (e.act.kind) {
        case ActKind::kNone: break;
        case ActKind::kRelu: v = _mm512_max_ps(v, zero); break;
        case ActKind::kClip: v = _mm512_min_ps(_mm512_max_ps(v, lo), hi); break;
        case ActKind::kLeakyRelu:
          v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, alpha);
          break;
        case ActKind::kHardSwish: {  // as apply_activation_f32: mul, add, MAXPS(t, 0), MINPS(t, 1), mul
          const __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(kHardSwishAlpha)), _mm512_set1_ps(0.5f));
          v = _mm512_mul_ps(v, _mm512_min_ps(_mm512_max_ps(t, zero), _mm512_set1_ps(1.f)));
          break;
        }
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(yb + p * 32),
                          _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Tables

template <int NOB, int... I>
void fill_u8(UkernelTable& t, std::integer_sequence<int, I...>) {
  ((t.mac[NOB - 1][I] = &mac_u8s8<I + 1, NOB>), ...);
  t.mr_max[NOB - 1] = static_cast<int>(sizeof...(I));
}
template <int NOB, int... I>
void fill_i64(UkernelTable& t, std::integer_sequence<int, I...>) {
  ((t.mac[NOB - 1][I] = &mac_i16_i64<I + 1, NOB>), ...);
  t.mr_max[NOB - 1] = static_cast<int>(sizeof...(I));
}
template <int NOB, int... I>
void fill_f32(UkernelTable& t, std::integer_sequence<int, I...>) {
  ((t.mac[NOB - 1][I] = &mac_f32<I + 1, NOB>), ...);
  t.mr_max[NOB - 1] = static_cast<int>(sizeof...(I));
}

// Register budget (32 zmm): MR * NOB accumulators + NOB weight vectors + 1 broadcast.
UkernelTable make_u8() {
  UkernelTable t;
  fill_u8<1>(t, std::make_integer_sequence<int, 24>{});
  fill_u8<2>(t, std::make_integer_sequence<int, 12>{});
  fill_u8<3>(t, std::make_integer_sequence<int, 8>{});
  fill_u8<4>(t, std::make_integer_sequence<int, 6>{});
  t.epi = &epi_any_i32;
  return t;
}
UkernelTable make_i64() {
  UkernelTable t;
  fill_i64<1>(t, std::make_integer_sequence<int, 12>{});
  fill_i64<2>(t, std::make_integer_sequence<int, 6>{});
  fill_i64<3>(t, std::make_integer_sequence<int, 4>{});
  fill_i64<4>(t, std::make_integer_sequence<int, 3>{});
  t.epi = &epi_avx2_i64;  // AVX2 instructions: available on every AVX-512 CPU
  return t;
}
UkernelTable make_f32() {
  UkernelTable t;
  fill_f32<1>(t, std::make_integer_sequence<int, 24>{});
  fill_f32<2>(t, std::make_integer_sequence<int, 12>{});
  fill_f32<3>(t, std::make_integer_sequence<int, 8>{});
  fill_f32<4>(t, std::make_integer_sequence<int, 6>{});
  t.epi = &epi_f32;
  return t;
}

// Depthwise: 16 channels per zmm, MR pixels per tile.
template <int MR>
NPUEMU_TARGET_AVX512 void dw_u8(const DwArgs& a, void* accv) {
  __m512i acc[MR];
  const __m512i init = _mm512_loadu_si512(a.init);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) acc[p] = init;
  const int32_t* w = static_cast<const int32_t*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    const __m512i wv = _mm512_load_si512(w + t * 16);  // (w, 0) int16 pairs
    NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
      const __m512i xv = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xt + p * 16)));
      acc[p] = _mm512_dpwssd_epi32(acc[p], xv, wv);  // acc + x * w + 0 * 0 (VNNI), exact
    }
  }
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) _mm512_store_si512(static_cast<int32_t*>(accv) + p * 16, acc[p]);
}

template <int MR>
NPUEMU_TARGET_AVX512 void dw_f32(const DwArgs& a, void* accv) {
  __m512 acc[MR];
  const __m512 bias = _mm512_load_ps(a.block->bias_f);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) acc[p] = bias;
  const float* w = static_cast<const float*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const float* xt = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.x) + a.tap_off[t]);
    const __m512 wv = _mm512_load_ps(w + t * 16);
    NPUEMU_UNROLL for (int p = 0; p < MR; ++p) acc[p] = _mm512_fmadd_ps(_mm512_loadu_ps(xt + p * 16), wv, acc[p]);
  }
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) _mm512_store_ps(static_cast<float*>(accv) + p * 16, acc[p]);
}

template <int... I>
DwTable make_dw_u8(std::integer_sequence<int, I...>) {
  DwTable t;
  ((t.dw[I] = &dw_u8<I + 1>), ...);
  t.mr_max = static_cast<int>(sizeof...(I));
  t.epi = &epi_any_i32;
  return t;
}
template <int... I>
DwTable make_dw_f32(std::integer_sequence<int, I...>) {
  DwTable t;
  ((t.dw[I] = &dw_f32<I + 1>), ...);
  t.mr_max = static_cast<int>(sizeof...(I));
  t.epi = &epi_f32;
  return t;
}

}  // namespace

const DwTable* dw_ukernels_avx512(MacType m) {
  static const DwTable u8 = make_dw_u8(std::make_integer_sequence<int, 16>{});
  static const DwTable f32 = make_dw_f32(std::make_integer_sequence<int, 16>{});
  return m == MacType::kU8S8_I32 ? &u8 : m == MacType::kF32 ? &f32 : nullptr;
}

const UkernelTable* ukernels_avx512(MacType m) {
  static const UkernelTable u8 = make_u8();
  static const UkernelTable i64 = make_i64();
  static const UkernelTable f32 = make_f32();
  switch (m) {
    case MacType::kU8S8_I32: return &u8;
    case MacType::kI16_I64: return &i64;
    case MacType::kF32: return &f32;
    default: return nullptr;
  }
}

#else
const UkernelTable* ukernels_avx512(MacType) { return nullptr; }
const DwTable* dw_ukernels_avx512(MacType) { return nullptr; }
#endif

}  // namespace direct
}  // namespace npuemu
