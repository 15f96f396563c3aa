// normalize_store (normalize.h): one row function per (output dtype, input dtype, mean?, std?) and ISA
// tier; a row is a run of elements that share one mean and one std (a channel plane, or the whole tensor
// when both are per tensor). The vector rows run full vectors and finish the row by running one more
// vector on a zero-padded copy of the tail, so every element goes through the same instructions.
#include "kernels/host/normalize.h"

#include <array>
#include <cstring>
#include <utility>

#include "core/cpu.h"
#include "quant/fp16.h"

#if NPUEMU_X86
#include <immintrin.h>
#endif

namespace npuemu {
namespace {

struct RowK {
  float mean = 0.f, std = 1.f;  // this row's values
  float scale = 1.f, zp = 0.f;  // float32(scale), float32(zero_point)
  float lo = 0.f, hi = 0.f;     // the integer dtype's range, in float
};
using RowFn = void (*)(const void* x, void* y, int64_t n, const RowK& k);

template <NormOut O>
using OutT = std::conditional_t<O == NormOut::kInt8, int8_t,
                                std::conditional_t<O == NormOut::kInt16, int16_t,
                                                   std::conditional_t<O == NormOut::kFloat16, uint16_t, float>>>;

// numpy's float32 -> float16 cast of a NaN with bits b (npy_floatbits_to_halfbits): the top 10 payload
// bits as they are (a signalling NaN stays signalling), 0x7C01 if they are all zero (not to make inf).
// For a quiet NaN this equals vcvtps2ph's sign | 0x7E00 | payload >> 13.
inline uint16_t numpy_nan_half(uint32_t b) {
  const uint32_t p = (b & 0x7FFFFFu) >> 13;
  return static_cast<uint16_t>(((b >> 16) & 0x8000u) | (0x7C00u + (p == 0 ? 1u : p)));
}

// ---- scalar (any CPU) -----------------------------------------------------------------------------------
template <NormOut O, bool U8, bool M, bool S>
struct RowScalar {
  static void run(const void* xp, void* yp, int64_t n, const RowK& k) {
    OutT<O>* y = static_cast<OutT<O>*>(yp);
    for (int64_t i = 0; i < n; ++i) {
      float v = U8 ? static_cast<float>(static_cast<const uint8_t*>(xp)[i]) : static_cast<const float*>(xp)[i];
      if (M) v = v - k.mean;
      if (S) v = v / k.std;
      if constexpr (O == NormOut::kFloat32) {
        y[i] = v;
      } else if constexpr (O == NormOut::kFloat16) {
        const uint32_t b = f32_bits(v);
        y[i] = (b & 0x7FFFFFFFu) > 0x7F800000u ? numpy_nan_half(b) : fp32_to_fp16(v);
      } else {
        const float q = v / k.scale;
        // np.rint (half to even), branch-free so that the compiler vectorizes the loop: below 2^23,
        // |q| + 2^23 lies in [2^23, 2^24) where the float32 spacing is 1, so the addition rounds |q| to an
        // integer, to nearest with ties to even (2^23 is even), and subtracting 2^23 is exact. From 2^23 up
        // the result is not |q| but still >= 2^23 (or inf), and with |zero_point| <= 32768 it saturates
        // below exactly as |q| does; the sign is put back bitwise (-0.0 and +0.0 both store 0).
        const uint32_t qb = f32_bits(q), ab = qb & 0x7FFFFFFFu;
        const float t = (bits_f32(ab) + 8388608.f) - 8388608.f;
        float r = bits_f32(f32_bits(t) | (qb & 0x80000000u));
        r = r + k.zp;
        r = r < k.lo ? k.lo : r;
        r = r > k.hi ? k.hi : r;
        r = ab > 0x7F800000u ? k.zp : r;  // x NaN, 0/0, inf/inf: numpy writes the zero point
        y[i] = static_cast<OutT<O>>(static_cast<int32_t>(r));  // exact: an integer in range
      }
    }
  }
};

#if NPUEMU_X86
// ---- AVX2 (8 lanes) -------------------------------------------------------------------------------------
struct V2 {
  __m256 mean, std, scale, zp, lo, hi;
};

template <NormOut O, bool U8, bool M, bool S>
struct RowAvx2 {
  NPUEMU_TARGET_AVX2 NPUEMU_INLINE static void block(const void* xp, void* yp, const V2& c) {
    __m256 v = U8 ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(xp))))
                  : _mm256_loadu_ps(static_cast<const float*>(xp));
    if (M) v = _mm256_sub_ps(v, c.mean);
    if (S) v = _mm256_div_ps(v, c.std);
    if constexpr (O == NormOut::kFloat32) {
      _mm256_storeu_ps(static_cast<float*>(yp), v);
    } else if constexpr (O == NormOut::kFloat16) {
      __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const int nan = _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      if (nan) {  // rare: numpy's NaN bits (numpy_nan_half), lane by lane
        alignas(32) uint32_t b[8];
        alignas(16) uint16_t t[8];
        _mm256_store_ps(reinterpret_cast<float*>(b), v);
        _mm_store_si128(reinterpret_cast<__m128i*>(t), h);
        for (int l = 0; l < 8; ++l)
          if (nan >> l & 1) t[l] = numpy_nan_half(b[l]);
        h = _mm_load_si128(reinterpret_cast<const __m128i*>(t));
      }
      _mm_storeu_si128(static_cast<__m128i*>(yp), h);
    } else {
      const __m256 q = _mm256_div_ps(v, c.scale);
      const __m256 nan = _mm256_cmp_ps(q, q, _CMP_UNORD_Q);
      __m256 r = _mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);  // half to even
      r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, c.zp), c.lo), c.hi);
      r = _mm256_blendv_ps(r, c.zp, nan);
      const __m256i i32 = _mm256_cvttps_epi32(r);  // exact: integers in [lo, hi]
      const __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
      if constexpr (O == NormOut::kInt16) {
        _mm_storeu_si128(static_cast<__m128i*>(yp), i16);
      } else {
        _mm_storel_epi64(static_cast<__m128i*>(yp), _mm_packs_epi16(i16, i16));
      }
    }
  }
  NPUEMU_TARGET_AVX2 static void run(const void* xp, void* yp, int64_t n, const RowK& k) {
    constexpr int64_t xs = U8 ? 1 : 4, ys = sizeof(OutT<O>);
    const V2 c{_mm256_set1_ps(k.mean), _mm256_set1_ps(k.std), _mm256_set1_ps(k.scale),
               _mm256_set1_ps(k.zp),   _mm256_set1_ps(k.lo),  _mm256_set1_ps(k.hi)};
    const char* x = static_cast<const char*>(xp);
    char* y = static_cast<char*>(yp);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) block(x + i * xs, y + i * ys, c);
    if (i < n) {
      alignas(32) char xb[8 * 4] = {};
      alignas(32) char yb[8 * 4];
      std::memcpy(xb, x + i * xs, static_cast<size_t>((n - i) * xs));
      block(xb, yb, c);
      std::memcpy(y + i * ys, yb, static_cast<size_t>((n - i) * ys));
    }
  }
};

// ---- AVX-512 (16 lanes) ---------------------------------------------------------------------------------
struct V5 {
  __m512 mean, std, scale, zp, lo, hi;
};

template <NormOut O, bool U8, bool M, bool S>
struct RowAvx512 {
  NPUEMU_TARGET_AVX512 NPUEMU_INLINE static void block(const void* xp, void* yp, const V5& c) {
    __m512 v = U8 ? _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(xp))))
                  : _mm512_loadu_ps(xp);
    if (M) v = _mm512_sub_ps(v, c.mean);
    if (S) v = _mm512_div_ps(v, c.std);
    if constexpr (O == NormOut::kFloat32) {
      _mm512_storeu_ps(yp, v);
    } else if constexpr (O == NormOut::kFloat16) {
      __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      if (nan) {  // numpy's NaN bits (numpy_nan_half) in the NaN lanes
        const __m512i b = _mm512_castps_si512(v);
        const __m512i p = _mm512_srli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x7FFFFF)), 13);
        __m512i t = _mm512_add_epi32(_mm512_max_epu32(p, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7C00));
        t = _mm512_or_si512(t, _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x8000)));
        h = _mm256_mask_blend_epi16(nan, h, _mm512_cvtepi32_epi16(t));
      }
      _mm256_storeu_si256(static_cast<__m256i*>(yp), h);
    } else {
      const __m512 q = _mm512_div_ps(v, c.scale);
      const __mmask16 nan = _mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q);
      __m512 r = _mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);  // half to even
      r = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, c.zp), c.lo), c.hi);
      r = _mm512_mask_mov_ps(r, nan, c.zp);
      const __m512i i32 = _mm512_cvttps_epi32(r);  // exact: integers in [lo, hi]
      if constexpr (O == NormOut::kInt16) {
        _mm256_storeu_si256(static_cast<__m256i*>(yp), _mm512_cvtepi32_epi16(i32));
      } else {
        _mm_storeu_si128(static_cast<__m128i*>(yp), _mm512_cvtepi32_epi8(i32));
      }
    }
  }
  NPUEMU_TARGET_AVX512 static void run(const void* xp, void* yp, int64_t n, const RowK& k) {
    constexpr int64_t xs = U8 ? 1 : 4, ys = sizeof(OutT<O>);
    const V5 c{_mm512_set1_ps(k.mean), _mm512_set1_ps(k.std), _mm512_set1_ps(k.scale),
               _mm512_set1_ps(k.zp),   _mm512_set1_ps(k.lo),  _mm512_set1_ps(k.hi)};
    const char* x = static_cast<const char*>(xp);
    char* y = static_cast<char*>(yp);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) block(x + i * xs, y + i * ys, c);
    if (i < n) {
      alignas(64) char xb[16 * 4] = {};
      alignas(64) char yb[16 * 4];
      std::memcpy(xb, x + i * xs, static_cast<size_t>((n - i) * xs));
      block(xb, yb, c);
      std::memcpy(y + i * ys, yb, static_cast<size_t>((n - i) * ys));
    }
  }
};
#endif  // NPUEMU_X86

// Table of the 32 row functions of one tier, index (out << 3) | (uint8 << 2) | (mean << 1) | std.
template <template <NormOut, bool, bool, bool> class R>
struct Rows {
  template <size_t I>
  static constexpr RowFn at() {
    return &R<static_cast<NormOut>(I >> 3), (I & 4) != 0, (I & 2) != 0, (I & 1) != 0>::run;
  }
  template <size_t... I>
  static constexpr std::array<RowFn, 32> make(std::index_sequence<I...>) {
    return {{at<I>()...}};
  }
  static constexpr std::array<RowFn, 32> table = make(std::make_index_sequence<32>());
};

}  // namespace

void normalize_store(const NormalizeArgs& a) {
  const size_t idx = (static_cast<size_t>(a.out) << 3) | (a.x_uint8 ? 4u : 0u) | (a.mean_size > 0 ? 2u : 0u) |
                     (a.std_size > 0 ? 1u : 0u);
  RowFn f = Rows<RowScalar>::table[idx];
#if NPUEMU_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAvx512Vnni) {
    f = Rows<RowAvx512>::table[idx];
  } else if (isa >= Isa::kAvx2) {
    f = Rows<RowAvx2>::table[idx];
  }
#endif
  RowK k;
  k.scale = a.scale;
  k.zp = static_cast<float>(a.zero_point);
  k.lo = a.out == NormOut::kInt8 ? -128.f : -32768.f;
  k.hi = a.out == NormOut::kInt8 ? 127.f : 32767.f;
  const int64_t xs = a.x_uint8 ? 1 : 4;
  const int64_t ys = a.out == NormOut::kInt8 ? 1 : (a.out == NormOut::kFloat32 ? 4 : 2);
  const char* x = static_cast<const char*>(a.x);
  char* y = static_cast<char*>(a.y);
  if (a.mean_size <= 1 && a.std_size <= 1) {  // one row: the whole tensor
    if (a.mean_size) k.mean = a.mean[0];
    if (a.std_size) k.std = a.std[0];
    f(x, y, a.outer * a.channels * a.inner, k);
    return;
  }
  for (int64_t o = 0; o < a.outer; ++o) {
    for (int64_t c = 0; c < a.channels; ++c) {
      if (a.mean_size) k.mean = a.mean[a.mean_size == 1 ? 0 : c];
      if (a.std_size) k.std = a.std[a.std_size == 1 ? 0 : c];
      const int64_t off = (o * a.channels + c) * a.inner;
      f(x + off * xs, y + off * ys, a.inner, k);
    }
  }
}

}  // namespace npuemu
