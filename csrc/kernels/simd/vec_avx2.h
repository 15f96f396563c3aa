// AVX2 vector primitives for the element-wise and pooling kernels (8 x 32-bit lanes, 16 x 16-bit):
// the same names as vec_avx512.h. AVX2 lacks 64-bit arithmetic shifts, min/max and 8-bit narrowing
// stores; they are composed here from exact integer identities (noted where used).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/cpu.h"
#include "quant/fixedpoint.h"

#if NPUEMU_X86
#include <immintrin.h>

namespace npuemu {
namespace simd256 {

#define NPUEMU_SIMD NPUEMU_TARGET_AVX2 NPUEMU_INLINE

constexpr int kLanes = 8;
constexpr int kLanes16 = 16;
using vi = __m256i;
using vf = __m256;

NPUEMU_SIMD vi vset1(int32_t v) { return _mm256_set1_epi32(v); }
NPUEMU_SIMD vf vset1f(float v) { return _mm256_set1_ps(v); }
NPUEMU_SIMD vi vadd(vi a, vi b) { return _mm256_add_epi32(a, b); }
NPUEMU_SIMD vi vsub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
NPUEMU_SIMD vi vmullo(vi a, vi b) { return _mm256_mullo_epi32(a, b); }
NPUEMU_SIMD vi vmin(vi a, vi b) { return _mm256_min_epi32(a, b); }
NPUEMU_SIMD vi vmax(vi a, vi b) { return _mm256_max_epi32(a, b); }
NPUEMU_SIMD vi vsll(vi a, int n) { return _mm256_sll_epi32(a, _mm_cvtsi32_si128(n)); }

NPUEMU_SIMD vi load_s8(const void* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD vi load_u8(const void* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD vi load_i32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
NPUEMU_SIMD void store_i32(void* p, vi v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
// Low byte of each 32-bit lane (the values are already in range): VPSHUFB gathers bytes 0, 4, 8, 12 of
// each 128-bit half into its low dword, VPERMD moves the two dwords together.
NPUEMU_SIMD void store_8(void* p, vi v) {
  const vi shuf = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1,
                                   -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const vi t = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, shuf), _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm256_castsi256_si128(t));
}

NPUEMU_SIMD vf load_f(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
NPUEMU_SIMD void store_f(void* p, vf v) { _mm256_storeu_ps(static_cast<float*>(p), v); }
NPUEMU_SIMD vf vzerof() { return _mm256_setzero_ps(); }
NPUEMU_SIMD vf cvt_f(vi v) { return _mm256_cvtepi32_ps(v); }
NPUEMU_SIMD vi cvt_i(vf v) { return _mm256_cvtps_epi32(v); }
NPUEMU_SIMD vf fadd(vf a, vf b) { return _mm256_add_ps(a, b); }
NPUEMU_SIMD vf fmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
// a * b + c rounded once (VFMADD)
NPUEMU_SIMD vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
NPUEMU_SIMD vf fdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
NPUEMU_SIMD vf fmax(vf a, vf b) { return _mm256_max_ps(a, b); }
NPUEMU_SIMD vf fmin(vf a, vf b) { return _mm256_min_ps(a, b); }
NPUEMU_SIMD vf nan_select(vf r, vf x) { return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); }
NPUEMU_SIMD vf load_h(const void* p) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD void store_h(void* p, vf v) {
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

NPUEMU_SIMD vi load16(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
NPUEMU_SIMD void store16(void* p, vi v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
NPUEMU_SIMD vi vset1_16(int16_t v) { return _mm256_set1_epi16(v); }
NPUEMU_SIMD vi vmax16(vi a, vi b) { return _mm256_max_epi16(a, b); }
NPUEMU_SIMD vi vand(vi a, vi b) { return _mm256_and_si256(a, b); }
NPUEMU_SIMD vi vxor(vi a, vi b) { return _mm256_xor_si256(a, b); }
NPUEMU_SIMD vi vsrai16_15(vi a) { return _mm256_srai_epi16(a, 15); }
NPUEMU_SIMD vi vselect_gt16(vi a, vi b, vi c, vi d) { return _mm256_blendv_epi8(d, c, _mm256_cmpgt_epi16(a, b)); }
NPUEMU_SIMD vi load_s8_16(const void* p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD vi load_u8_16(const void* p) { return _mm256_cvtepu8_epi16(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
NPUEMU_SIMD void store_8_16(void* p, vi v) {
  const vi shuf = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1, 0, 2, 4, 6, 8, 10, 12, 14, -1,
                                   -1, -1, -1, -1, -1, -1, -1);
  const vi t = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, shuf), 0x08);
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm256_castsi256_si128(t));
}

// Gather kLanes 32-bit words at byte offsets idx[l] from base (unaligned)
NPUEMU_SIMD vi gather_b32(const void* base, vi idx) {
  return _mm256_i32gather_epi32(static_cast<const int*>(base), idx, 1);
}
NPUEMU_SIMD vf gather_f(const float* p, vi idx) { return _mm256_i32gather_ps(p, idx, 4); }
NPUEMU_SIMD vi iota_times(int32_t step) {
  return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(step));
}

// Fixed-point closed form as in vec_avx512.h. AVX2 has no 64-bit arithmetic shift: floor(t / 2^s) is
// computed as ((t XOR m) >>> s) XOR m with m = (t < 0 ? all ones : 0), exact for every int64 t (for
// t < 0, ~t = -t - 1 >= 0 and ~floor((-t-1) / 2^s) = floor(t / 2^s)). 64-bit min / max use
// VPCMPGTQ + blend.
struct VFixed {
  vi m0, r, k, s, lo, hi;
};
NPUEMU_SIMD VFixed vfixed(const ClosedFormMultiplier& c, int64_t lo, int64_t hi) {
  return VFixed{_mm256_set1_epi64x(c.m0), _mm256_set1_epi64x(c.r), _mm256_set1_epi64x(c.k),
                _mm256_set1_epi64x(c.s), _mm256_set1_epi64x(lo), _mm256_set1_epi64x(hi)};
}
NPUEMU_SIMD vi fixed_half(vi p, const VFixed& f) {
  const vi zero = _mm256_setzero_si256();
  const vi neg = _mm256_cmpgt_epi64(_mm256_set1_epi64x(-(int64_t{1} << 30)), p);
  vi q = _mm256_sub_epi64(_mm256_add_epi64(p, f.r), _mm256_and_si256(neg, f.k));
  const vi m = _mm256_cmpgt_epi64(zero, q);
  q = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(q, m), f.s), m);
  q = _mm256_blendv_epi8(q, f.hi, _mm256_cmpgt_epi64(q, f.hi));
  q = _mm256_blendv_epi8(q, f.lo, _mm256_cmpgt_epi64(f.lo, q));
  return q;
}
NPUEMU_SIMD vi fixed_mul(vi x, const VFixed& f) {
  const vi qe = fixed_half(_mm256_mul_epi32(x, f.m0), f);
  const vi qo = fixed_half(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), f.m0), f);
  return _mm256_blend_epi32(qe, _mm256_slli_epi64(qo, 32), 0xAA);
}

#undef NPUEMU_SIMD
}  // namespace simd256
}  // namespace npuemu

#endif  // NPUEMU_X86
