// AVX-512 vector primitives for the element-wise and pooling kernels (16 x 32-bit lanes, 32 x 16-bit).
// Every function carries NPUEMU_TARGET_AVX512 and is inlined into kernels with the same attribute; the
// kernel bodies (eltwise_simd.inc, pool_simd.inc) are written once against these names and compiled
// once per ISA (vec_avx2.h provides the same names for AVX2).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/cpu.h"
#include "quant/fixedpoint.h"

#if NPUEMU_X86
#include <immintrin.h>

namespace npuemu {
namespace simd512 {

#define NPUEMU_SIMD NPUEMU_TARGET_AVX512 NPUEMU_INLINE

constexpr int kLanes = 16;    // 32-bit lanes per vector
constexpr int kLanes16 = 32;  // 16-bit lanes per vector
using vi = __m512i;
using vf = __m512;

NPUEMU_SIMD vi vset1(int32_t v) { return _mm512_set1_epi32(v); }
NPUEMU_SIMD vf vset1f(float v) { return _mm512_set1_ps(v); }
NPUEMU_SIMD vi vadd(vi a, vi b) { return _mm512_add_epi32(a, b); }
NPUEMU_SIMD vi vsub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
NPUEMU_SIMD vi vmullo(vi a, vi b) { return _mm512_mullo_epi32(a, b); }
NPUEMU_SIMD vi vmin(vi a, vi b) { return _mm512_min_epi32(a, b); }
NPUEMU_SIMD vi vmax(vi a, vi b) { return _mm512_max_epi32(a, b); }
NPUEMU_SIMD vi vsll(vi a, int n) { return _mm512_sll_epi32(a, _mm_cvtsi32_si128(n)); }

// kLanes 8-bit values -> int32 lanes (sign- or zero-extended)
NPUEMU_SIMD vi load_s8(const void* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD vi load_u8(const void* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD vi load_i32(const void* p) { return _mm512_loadu_si512(p); }
NPUEMU_SIMD void store_i32(void* p, vi v) { _mm512_storeu_si512(p, v); }
// low byte of each lane (the values are already in range)
NPUEMU_SIMD void store_8(void* p, vi v) { _mm_storeu_si128(static_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v)); }

NPUEMU_SIMD vf load_f(const void* p) { return _mm512_loadu_ps(static_cast<const float*>(p)); }
NPUEMU_SIMD void store_f(void* p, vf v) { _mm512_storeu_ps(static_cast<float*>(p), v); }
NPUEMU_SIMD vf vzerof() { return _mm512_setzero_ps(); }
NPUEMU_SIMD vf cvt_f(vi v) { return _mm512_cvtepi32_ps(v); }
// CVTPS2DQ: round with MXCSR (half to even), INT32_MIN for NaN / out of range (fixedpoint.h cvtps2dq)
NPUEMU_SIMD vi cvt_i(vf v) { return _mm512_cvtps_epi32(v); }
NPUEMU_SIMD vf fadd(vf a, vf b) { return _mm512_add_ps(a, b); }
NPUEMU_SIMD vf fmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
// a * b + c rounded once (VFMADD)
NPUEMU_SIMD vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
NPUEMU_SIMD vf fdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
// MAXPS / MINPS: a > b ? a : b, a < b ? a : b (the second operand when either is NaN)
NPUEMU_SIMD vf fmax(vf a, vf b) { return _mm512_max_ps(a, b); }
NPUEMU_SIMD vf fmin(vf a, vf b) { return _mm512_min_ps(a, b); }
// isnan(x) ? x : r
NPUEMU_SIMD vf nan_select(vf r, vf x) { return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x); }
// kLanes float16 <-> float32 (vcvtph2ps exact; vcvtps2ph round to nearest even)
NPUEMU_SIMD vf load_h(const void* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }
NPUEMU_SIMD void store_h(void* p, vf v) {
  _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// 16-bit lanes
NPUEMU_SIMD vi load16(const void* p) { return _mm512_loadu_si512(p); }
NPUEMU_SIMD void store16(void* p, vi v) { _mm512_storeu_si512(p, v); }
NPUEMU_SIMD vi vset1_16(int16_t v) { return _mm512_set1_epi16(v); }
NPUEMU_SIMD vi vmax16(vi a, vi b) { return _mm512_max_epi16(a, b); }
NPUEMU_SIMD vi vand(vi a, vi b) { return _mm512_and_si512(a, b); }
NPUEMU_SIMD vi vxor(vi a, vi b) { return _mm512_xor_si512(a, b); }
NPUEMU_SIMD vi vsrai16_15(vi a) { return _mm512_srai_epi16(a, 15); }
// a > b ? c : d, per 16-bit lane
NPUEMU_SIMD vi vselect_gt16(vi a, vi b, vi c, vi d) { return _mm512_mask_mov_epi16(d, _mm512_cmpgt_epi16_mask(a, b), c); }
// kLanes16 8-bit values -> int16 lanes
NPUEMU_SIMD vi load_s8_16(const void* p) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}
NPUEMU_SIMD vi load_u8_16(const void* p) {
  return _mm512_cvtepu8_epi16(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}
// low byte of each 16-bit lane
NPUEMU_SIMD void store_8_16(void* p, vi v) { _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_cvtepi16_epi8(v)); }

// Gather kLanes 32-bit words at byte offsets idx[l] from base (unaligned)
NPUEMU_SIMD vi gather_b32(const void* base, vi idx) { return _mm512_i32gather_epi32(idx, base, 1); }
// Gather kLanes floats p[idx[l]]
NPUEMU_SIMD vf gather_f(const float* p, vi idx) { return _mm512_i32gather_ps(idx, p, 4); }
NPUEMU_SIMD vi iota_times(int32_t step) {
  const vi iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  return _mm512_mullo_epi32(iota, _mm512_set1_epi32(step));
}

// Fixed-point requantization in closed form (fixedpoint.h ClosedFormMultiplier), one multiplier for
// all lanes: q = (x*m0 + r - (x*m0 < -2^30 ? k : 0)) >> s in 64-bit lanes, clamped to [lo, hi] in
// 64 bits, returned as int32 lanes. Even and odd 32-bit lanes are multiplied separately (VPMULDQ).
struct VFixed {
  vi m0, r, k, s, lo, hi;
};
NPUEMU_SIMD VFixed vfixed(const ClosedFormMultiplier& c, int64_t lo, int64_t hi) {
  return VFixed{_mm512_set1_epi64(c.m0), _mm512_set1_epi64(c.r), _mm512_set1_epi64(c.k),
                _mm512_set1_epi64(c.s), _mm512_set1_epi64(lo), _mm512_set1_epi64(hi)};
}
NPUEMU_SIMD vi fixed_half(vi p, const VFixed& f) {
  const __mmask8 neg = _mm512_cmplt_epi64_mask(p, _mm512_set1_epi64(-(int64_t{1} << 30)));
  vi q = _mm512_add_epi64(p, f.r);
  q = _mm512_mask_sub_epi64(q, neg, q, f.k);
  q = _mm512_srav_epi64(q, f.s);
  return _mm512_max_epi64(_mm512_min_epi64(q, f.hi), f.lo);
}
NPUEMU_SIMD vi fixed_mul(vi x, const VFixed& f) {
  const vi qe = fixed_half(_mm512_mul_epi32(x, f.m0), f);
  const vi qo = fixed_half(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), f.m0), f);
  return _mm512_mask_blend_epi32(0xAAAA, qe, _mm512_slli_epi64(qo, 32));
}

#undef NPUEMU_SIMD
}  // namespace simd512
}  // namespace npuemu

#endif  // NPUEMU_X86
