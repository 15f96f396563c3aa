#include "kernels/lut/formula.h"

#include <cmath>

#include "core/cpu.h"
#if NPUEMU_X86
#include <immintrin.h>
#endif

namespace npuemu {
namespace {

constexpr float kSixth = 1.0f / 6.0f;  // numpy's float32(1.0 / 6.0) in reference.hard_sigmoid

struct Consts {
  float xs, xz, ys, yz;
};

inline float max0(float v, float lo) { return v > lo ? v : lo; }  // np.maximum on finite values
inline float min0(float v, float hi) { return v < hi ? v : hi; }

inline int8_t one(LutFormula f, const Consts& c, int16_t q) {
  const float v = (static_cast<float>(q) - c.xz) * c.xs;
  float h;
  if (f == LutFormula::kHardSwish) {
    const float t = min0(max0(v * kSixth + 0.5f, 0.f), 1.f);
    h = v * t;
  } else {
    const float a = min0(max0(v + 3.f, 0.f), 6.f);
    h = (v * a) / 6.f;
  }
  float r = std::nearbyint(h / c.ys) + c.yz;  // the default rounding mode: half to even
  if (std::isnan(r)) return static_cast<int8_t>(c.yz);
  r = min0(max0(r, -128.f), 127.f);
  return static_cast<int8_t>(r);
}

void run_scalar(LutFormula f, const Consts& c, const int16_t* x, int8_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = one(f, c, x[i]);
}

#if NPUEMU_X86
template <LutFormula F>
NPUEMU_TARGET_AVX512 void run_avx512(const Consts& c, const int16_t* x, int8_t* y, int64_t n) {
  const __m512 xs = _mm512_set1_ps(c.xs), xz = _mm512_set1_ps(c.xz), ys = _mm512_set1_ps(c.ys),
               yz = _mm512_set1_ps(c.yz), zero = _mm512_setzero_ps(), lo = _mm512_set1_ps(-128.f),
               hi = _mm512_set1_ps(127.f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i q = _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), xz), xs);
    __m512 h;
    if (F == LutFormula::kHardSwish) {
      __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(kSixth)), _mm512_set1_ps(0.5f));
      t = _mm512_min_ps(_mm512_max_ps(t, zero), _mm512_set1_ps(1.f));
      h = _mm512_mul_ps(v, t);
    } else {
      __m512 a = _mm512_add_ps(v, _mm512_set1_ps(3.f));
      a = _mm512_min_ps(_mm512_max_ps(a, zero), _mm512_set1_ps(6.f));
      h = _mm512_div_ps(_mm512_mul_ps(v, a), _mm512_set1_ps(6.f));
    }
    __m512 r = _mm512_add_ps(_mm512_roundscale_ps(_mm512_div_ps(h, ys), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), yz);
    const __mmask16 nan = _mm512_cmp_ps_mask(r, r, _CMP_UNORD_Q);
    r = _mm512_mask_mov_ps(_mm512_min_ps(_mm512_max_ps(r, lo), hi), nan, yz);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
  run_scalar(F, c, x + i, y + i, n - i);
}

template <LutFormula F>
NPUEMU_TARGET_AVX2 void run_avx2(const Consts& c, const int16_t* x, int8_t* y, int64_t n) {
  const __m256 xs = _mm256_set1_ps(c.xs), xz = _mm256_set1_ps(c.xz), ys = _mm256_set1_ps(c.ys),
               yz = _mm256_set1_ps(c.yz), zero = _mm256_setzero_ps(), lo = _mm256_set1_ps(-128.f),
               hi = _mm256_set1_ps(127.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i q = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q), xz), xs);
    __m256 h;
    if (F == LutFormula::kHardSwish) {
      __m256 t = _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(kSixth)), _mm256_set1_ps(0.5f));
      t = _mm256_min_ps(_mm256_max_ps(t, zero), _mm256_set1_ps(1.f));
      h = _mm256_mul_ps(v, t);
    } else {
      __m256 a = _mm256_add_ps(v, _mm256_set1_ps(3.f));
      a = _mm256_min_ps(_mm256_max_ps(a, zero), _mm256_set1_ps(6.f));
      h = _mm256_div_ps(_mm256_mul_ps(v, a), _mm256_set1_ps(6.f));
    }
    __m256 r = _mm256_add_ps(_mm256_round_ps(_mm256_div_ps(h, ys), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), yz);
    const __m256 nan = _mm256_cmp_ps(r, r, _CMP_UNORD_Q);
    r = _mm256_blendv_ps(_mm256_min_ps(_mm256_max_ps(r, lo), hi), yz, nan);
    const __m256i w = _mm256_cvtps_epi32(r);  // integral, in [-128, 127]
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packs_epi16(p16, p16));
  }
  run_scalar(F, c, x + i, y + i, n - i);
}
#endif

}  // namespace

void lut_formula_i16_i8(const LutFormulaArgs& a, const int16_t* x, int8_t* y, int64_t n) {
  const Consts c{a.x_scale, static_cast<float>(a.x_zp), a.y_scale, static_cast<float>(a.y_zp)};
#if NPUEMU_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512Vnni) {
    if (a.f == LutFormula::kHardSwish) run_avx512<LutFormula::kHardSwish>(c, x, y, n);
    else run_avx512<LutFormula::kHardSwishArith>(c, x, y, n);
    return;
  }
  if (isa >= Isa::kAvx2) {
    if (a.f == LutFormula::kHardSwish) run_avx2<LutFormula::kHardSwish>(c, x, y, n);
    else run_avx2<LutFormula::kHardSwishArith>(c, x, y, n);
    return;
  }
#endif
  run_scalar(a.f, c, x, y, n);
}

}  // namespace npuemu
