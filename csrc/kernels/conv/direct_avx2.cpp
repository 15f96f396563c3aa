// AVX2 micro-kernels of the direct convolution (Haswell, Zen 1-3 and other CPUs without AVX-512).
//
// CNA stage: an MR x NOB tile, one block of 16 output channels = two ymm registers (8 channels each).
//   int8 family (kI16_I32): vpmaddwd of a broadcast dword (2 input channels, raw x as int16) with 8
//        output channels x 2 input channels of int16 weights, accumulated with vpaddd (int32 wrap).
//        Exact: |x| <= 255 and |w - w_zp| <= 255, so each pair sum is at most 2 * 255 * 255 = 130,050
//        in magnitude, and int32 addition modulo 2^32 is the contract's wrap-around (docs/arithmetic.md
//        section 2). AVX2 has no u8 x s8 dot product without saturation (vpmaddubsw saturates to int16),
//        hence the 16-bit operands.
//   int16 family (kI16_I64): the same vpmaddwd pair sums (exact in int32: weights exclude -32768, so
//        |pair| <= 2 * 32768 * 32767 < 2^31), widened into int64 without a 64-bit arithmetic shift
//        (AVX2 has none), see mac_i16_i64.
//   fp16 family (kF32): vfmadd231ps chains in fp32 starting at the bias, taps -> c1 -> c2, the order of
//        the reference, so the results are bit-identical.
// DPU stage: SIMD output stages for int32 tiles (raw, fixed point, float) and fp32 tiles (fp16 out);
// int64 tiles: fixed-point requantization to int8 / int16 in 64-bit lanes, the rest epi_portable.
// Register budget (16 ymm): accumulators + weight vectors + broadcast + temporaries <= 16.
// Only functions marked NPUEMU_TARGET_AVX2 contain AVX2 / FMA / F16C instructions.
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

// ---------------------------------------------------------------------------------------------------
// CNA stage

template <int MR, int NOB>
NPUEMU_TARGET_AVX2 void mac_i16_i32(const MacArgs& a, void* accv) {
  __m256i acc[MR][NOB][2];
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    acc[p][b][0] = _mm256_setzero_si256();
    acc[p][b][1] = _mm256_setzero_si256();
  }
  const int16_t* w = static_cast<const int16_t*>(a.w);
  const int ntaps = a.ntaps, nc1 = a.nc1;
  const int64_t c1s = a.c1_stride;
  for (int t = 0; t < ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < nc1; ++c, xt += c1s) {
      // Not unrolled: fully unrolled, GCC reassociates the integer sums across q and spills the products.
      _Pragma("GCC unroll 1") for (int q = 0; q < 8; ++q) {
        __m256i wv[NOB][2];
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
          wv[b][0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + b * 32));
          wv[b][1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + b * 32 + 16));
        }
        NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
          int32_t xd;  // input channels 2q, 2q+1 of pixel p
          std::memcpy(&xd, xt + (p * 16 + q * 2) * 2, 4);
          const __m256i xb = _mm256_set1_epi32(xd);
          NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
            acc[p][b][0] = _mm256_add_epi32(acc[p][b][0], _mm256_madd_epi16(xb, wv[b][0]));
            acc[p][b][1] = _mm256_add_epi32(acc[p][b][1], _mm256_madd_epi16(xb, wv[b][1]));
          }
        }
        w += NOB * 32;
      }
    }
  }
  int32_t* out = static_cast<int32_t*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + (p * NOB + b) * 16), acc[p][b][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + (p * NOB + b) * 16 + 8), acc[p][b][1]);
  }
}

// int16 x int16 -> int64 accumulators. Each vpmaddwd gives 8 pair sums m (int32, exact, |m| < 2^31);
// qword j of the register holds m[2j] (low dword, even channel) and m[2j+1] (high dword, odd channel).
// AVX2 cannot sign-extend dwords in place (no vpsraq), so the sums are biased to unsigned:
//   t = m XOR 0x80000000 per dword, i.e. as unsigned u = m + 2^31 in [0, 2^32).
//   ae += t  (64-bit add): ae = sum(u_even) + 2^32 * sum(u_odd)   (mod 2^64)
//   ao += t >> 32 (logical): ao = sum(u_odd)                       (exact: < n * 2^32 < 2^64)
// After n steps: odd = ao - n * 2^31; even = ae - (ao << 32) - n * 2^31, both modulo 2^64, where
// sum(u_even) < n * 2^32 < 2^63 is recovered exactly by the subtraction, and the true sums fit in int64,
// so the modular results are the exact sums. n = ntaps * nc1 * 8 (every step adds one pair per lane,
// padded channels included: their weights are 0, u = 2^31).
template <int MR, int NOB>
NPUEMU_TARGET_AVX2 void mac_i16_i64(const MacArgs& a, void* accv) {
  __m256i ae[MR][NOB][2], ao[MR][NOB][2];
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) NPUEMU_UNROLL for (
      int h = 0; h < 2; ++h) {
    ae[p][b][h] = _mm256_setzero_si256();
    ao[p][b][h] = _mm256_setzero_si256();
  }
  const __m256i bias = _mm256_set1_epi32(INT32_MIN);
  const int16_t* w = static_cast<const int16_t*>(a.w);
  const int ntaps = a.ntaps, nc1 = a.nc1;
  const int64_t c1s = a.c1_stride;
  for (int t = 0; t < ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < nc1; ++c, xt += c1s) {
      _Pragma("GCC unroll 1") for (int q = 0; q < 8; ++q) {  // see mac_i16_i32
        __m256i wv[NOB][2];
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
          wv[b][0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + b * 32));
          wv[b][1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + b * 32 + 16));
        }
        NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
          int32_t xd;
          std::memcpy(&xd, xt + (p * 16 + q * 2) * 2, 4);
          const __m256i xb = _mm256_set1_epi32(xd);
          NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) NPUEMU_UNROLL for (int h = 0; h < 2; ++h) {
            const __m256i u = _mm256_xor_si256(_mm256_madd_epi16(xb, wv[b][h]), bias);
            ae[p][b][h] = _mm256_add_epi64(ae[p][b][h], u);
            ao[p][b][h] = _mm256_add_epi64(ao[p][b][h], _mm256_srli_epi64(u, 32));
          }
        }
        w += NOB * 32;
      }
    }
  }
  const __m256i corr = _mm256_set1_epi64x(static_cast<int64_t>(ntaps) * nc1 * 8 * (int64_t{1} << 31));
  int64_t* out = static_cast<int64_t*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) NPUEMU_UNROLL for (
      int h = 0; h < 2; ++h) {
    const __m256i odd = _mm256_sub_epi64(ao[p][b][h], corr);  // channels 1, 3, 5, 7 of this half
    const __m256i even =                                      // channels 0, 2, 4, 6
        _mm256_sub_epi64(_mm256_sub_epi64(ae[p][b][h], _mm256_slli_epi64(ao[p][b][h], 32)), corr);
    const __m256i lo = _mm256_unpacklo_epi64(even, odd);  // channels 0, 1 | 4, 5
    const __m256i hi = _mm256_unpackhi_epi64(even, odd);  // channels 2, 3 | 6, 7
    int64_t* o = out + (p * NOB + b) * 16 + h * 8;
    _mm256_store_si256(reinterpret_cast<__m256i*>(o), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_store_si256(reinterpret_cast<__m256i*>(o + 4), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

// fp32 FMA chain per output: starts at the bias, then taps (kh, kw), input channel blocks, channels.
template <int MR, int NOB>
NPUEMU_TARGET_AVX2 void mac_f32(const MacArgs& a, void* accv) {
  __m256 acc[MR][NOB][2];
  NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    const __m256 b0 = _mm256_load_ps(a.blocks[b].bias_f), b1 = _mm256_load_ps(a.blocks[b].bias_f + 8);
    NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
      acc[p][b][0] = b0;
      acc[p][b][1] = b1;
    }
  }
  const float* w = static_cast<const float*>(a.w);
  const int ntaps = a.ntaps, nc1 = a.nc1;
  const int64_t c1s = a.c1_stride;
  for (int t = 0; t < ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < nc1; ++c, xt += c1s) {
      const float* xf = reinterpret_cast<const float*>(xt);
      for (int c2 = 0; c2 < 16; ++c2) {
        __m256 wv[NOB][2];
        NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
          wv[b][0] = _mm256_load_ps(w + b * 16);
          wv[b][1] = _mm256_load_ps(w + b * 16 + 8);
        }
        NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
          const __m256 xb = _mm256_broadcast_ss(xf + p * 16 + c2);
          NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
            acc[p][b][0] = _mm256_fmadd_ps(xb, wv[b][0], acc[p][b][0]);
            acc[p][b][1] = _mm256_fmadd_ps(xb, wv[b][1], acc[p][b][1]);
          }
        }
        w += NOB * 16;
      }
    }
  }
  float* out = static_cast<float*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) NPUEMU_UNROLL for (int b = 0; b < NOB; ++b) {
    _mm256_store_ps(out + (p * NOB + b) * 16, acc[p][b][0]);
    _mm256_store_ps(out + (p * NOB + b) * 16 + 8, acc[p][b][1]);
  }
}

// ---------------------------------------------------------------------------------------------------
// DPU stage: fixed-point requantization of int32 accumulators in 32-bit lanes.
//
// The contract (docs/arithmetic.md section 3) is q = RoundingDivideByPOT(SRDHM(acc * 2^left, M0), right),
// acc * 2^left exact, then y = zp + clamp(q, lo, hi). AVX2 has no 64-bit arithmetic shift and no 64-bit
// min/max, so this stage works on int32 lanes and uses 64-bit lanes only for the product:
//
//  (1) a = (clamp(acc, -2^(31-left), 2^(31-left) - 1)) << left        [vpminsd, vpmaxsd, vpsllvd]
//      Exact (a = acc * 2^left) whenever acc is inside the clamp. Outside, |acc * 2^left| >= 2^31, so the
//      true result has |q| >= floor(2^31 * 2^30 / 2^31) = 2^30 (|M0| >= 2^30, right = 0 when left > 0),
//      while the clamped a is -2^31 or 2^31 - 2^left (>= 2^30 as left <= 30), giving |q| >= 2^29, both
//      with the sign of acc * M0. Whenever |lo|, |hi| < 2^29 both clamp to the same bound; when lo == hi
//      the output does not depend on q at all. make_output_stage guarantees one of the two (its bounds
//      lie in [-65535, 65535] or collapse to lo == hi); epi_i32 checks it anyway and falls back to
//      epi_portable otherwise. For left = 0 the clamp is the identity (and skipped).
//  (2) q1 = SRDHM(a, M0) = floor((a * M0 + 2^30) / 2^31)   (gemmlowp's, rounding half up; the nudge
//      form and this floor form agree for both signs of a * M0). a * M0 is exact in 64 bits (vpmuldq on
//      even / odd lanes); |a * M0| <= 2^31 * (2^31 - 1), so q1 fits in int32 and equals bits 31..62 of
//      a * M0 + 2^30: the low dword of (P >> 31) logical for even lanes, the high dword of (P << 1) for
//      odd lanes (the bits above 62 are copies of the sign and never reach the dword).
//  (3) q = RoundingDivideByPOT(q1, right) with gemmlowp's own int32 formula (rounding half away from
//      zero): (q1 >> right) + ((q1 & mask) > (mask >> 1) + (q1 < 0)), mask = 2^right - 1, vpsravd for the
//      arithmetic shift. right <= 31 (the driver stores M0 = 0 for right >= 32: every int32 rounds to 0).
// Per-lane constants are derived from the driver's FixedBlock: s = 31 - left (left > 0), 31 + right
// (right > 0) or 31, and s = 0 with M0 = 0 for a zero multiplier (then a = acc, q1 = 0, q = 0).

struct FixedHalf {  // 8 output channels
  __m256i m0, m0o, right, mask, thr0, left, amin, amax;
  bool any_left;
};

NPUEMU_TARGET_AVX2 NPUEMU_INLINE void load_fixed(const FixedBlock& f, int h, FixedHalf& r) {
  const __m256i one = _mm256_set1_epi32(1), c31 = _mm256_set1_epi32(31), zero = _mm256_setzero_si256();
  r.m0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(f.m0 + h * 8));
  r.m0o = _mm256_load_si256(reinterpret_cast<const __m256i*>(f.m0_odd + h * 8));  // m0 of odd lanes, low dwords
  const __m256i se = _mm256_load_si256(reinterpret_cast<const __m256i*>(f.s_e + h * 4));
  const __m256i so = _mm256_load_si256(reinterpret_cast<const __m256i*>(f.s_o + h * 4));
  const __m256i s = _mm256_blend_epi32(se, _mm256_slli_epi64(so, 32), 0xAA);  // s per dword (0..62)
  r.right = _mm256_max_epi32(_mm256_sub_epi32(s, c31), zero);
  r.mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, r.right), one);  // 2^right - 1 (right <= 31)
  r.thr0 = _mm256_srli_epi32(r.mask, 1);
  const __m256i m0zero = _mm256_cmpeq_epi32(r.m0, zero);
  r.left = _mm256_andnot_si256(m0zero, _mm256_max_epi32(_mm256_sub_epi32(c31, s), zero));
  const __m256i pw = _mm256_sllv_epi32(one, _mm256_sub_epi32(c31, r.left));  // 2^(31-left); 2^31 wraps
  r.amax = _mm256_sub_epi32(pw, one);                                         // 2^(31-left) - 1
  r.amin = _mm256_xor_si256(r.amax, _mm256_set1_epi32(-1));                   // -2^(31-left)
  r.any_left = !_mm256_testz_si256(r.left, r.left);
}

// Unclamped q of (1)-(3) for 8 accumulators (acc already includes the bias).
NPUEMU_TARGET_AVX2 NPUEMU_INLINE __m256i fixed_q(__m256i v, const FixedHalf& f) {
  __m256i a = v;
  if (f.any_left) a = _mm256_sllv_epi32(_mm256_min_epi32(_mm256_max_epi32(v, f.amin), f.amax), f.left);
  const __m256i rnd = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(a, f.m0), rnd);
  const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), f.m0o), rnd);
  const __m256i q1 = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
  const __m256i rem = _mm256_and_si256(q1, f.mask);
  const __m256i thr = _mm256_sub_epi32(f.thr0, _mm256_srai_epi32(q1, 31));  // + 1 where q1 < 0
  return _mm256_sub_epi32(_mm256_srav_epi32(q1, f.right), _mm256_cmpgt_epi32(rem, thr));
}

// Whether step (1)'s saturation argument holds for every lane of the half: no left shift, or
// |lo|, |hi| < 2^29, or lo == hi.
NPUEMU_TARGET_AVX2 NPUEMU_INLINE bool saturation_ok(const FixedHalf& f, __m256i lo, __m256i hi) {
  if (!f.any_left) return true;
  const __m256i lim = _mm256_set1_epi32(1 << 29), nlim = _mm256_set1_epi32(-(1 << 29));
  const __m256i wide = _mm256_or_si256(_mm256_cmpgt_epi32(hi, _mm256_sub_epi32(lim, _mm256_set1_epi32(1))),
                                       _mm256_cmpgt_epi32(_mm256_add_epi32(nlim, _mm256_set1_epi32(1)), lo));
  const __m256i bad = _mm256_andnot_si256(_mm256_cmpeq_epi32(lo, hi), wide);
  return _mm256_testz_si256(bad, bad) != 0;
}

// Stores 16 int32 lanes (two ymm, channels 0-7 and 8-15) as OUT-byte integers, truncating like the
// scalar static_cast (the values are already in range except in the degenerate lo == hi case).
template <int OUT>
NPUEMU_TARGET_AVX2 NPUEMU_INLINE void store16(uint8_t* y, __m256i v0, __m256i v1) {
  if (OUT == 4) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), v0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + 32), v1);
    return;
  }
  const __m256i m = _mm256_set1_epi32(OUT == 1 ? 0xFF : 0xFFFF);
  // masked to unsigned 16-bit values, so vpackusdw does not saturate; lanes come out [a0-3 b0-3 | a4-7 b4-7]
  __m256i p = _mm256_packus_epi32(_mm256_and_si256(v0, m), _mm256_and_si256(v1, m));
  p = _mm256_permute4x64_epi64(p, 0xD8);  // a0-7 b0-7
  if (OUT == 2) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y), p);
  } else {  // values <= 255: vpackuswb does not saturate either
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y),
                     _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
  }
}

template <int OUT>
NPUEMU_TARGET_AVX2 void epi_i32(const void* accv, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride) {
  const int32_t* acc = static_cast<const int32_t*>(accv);
  const int width = nob * 16;
  const __m256i zp = _mm256_set1_epi32(e.zp);
  if (e.kind == EpiKind::kFixed) {
    FixedHalf pos[kMaxNob][2], neg[kMaxNob][2];
    for (int b = 0; b < nob; ++b) {
      const EpiBlock& eb = e.blocks[b];
      for (int h = 0; h < 2; ++h) {
        load_fixed(eb.pos, h, pos[b][h]);
        if (e.leaky) load_fixed(eb.neg, h, neg[b][h]);
        const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.lo + h * 8));
        const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.hi + h * 8));
        if (!saturation_ok(pos[b][h], lo, hi) || (e.leaky && !saturation_ok(neg[b][h], lo, hi))) {
          epi_portable(accv, mr, nob, e, y, y_ob_stride);
          return;
        }
      }
    }
    for (int b = 0; b < nob; ++b) {
      const EpiBlock& eb = e.blocks[b];
      uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
      __m256i bias[2], lo[2], hi[2];
      for (int h = 0; h < 2; ++h) {
        bias[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.bias + h * 8));
        lo[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.lo + h * 8));
        hi[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.hi + h * 8));
      }
      for (int p = 0; p < mr; ++p) {
        __m256i r[2];
        for (int h = 0; h < 2; ++h) {
          const __m256i v =
              _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc + p * width + b * 16 + h * 8)),
                               bias[h]);
          __m256i q = fixed_q(v, pos[b][h]);
          if (e.leaky)  // the negative multiplier where acc < 0 (sign of v selects, as requantize())
            q = _mm256_blendv_epi8(q, fixed_q(v, neg[b][h]), _mm256_srai_epi32(v, 31));
          r[h] = _mm256_add_epi32(_mm256_max_epi32(_mm256_min_epi32(q, hi[h]), lo[h]), zp);
        }
        store16<OUT>(yb + p * 16 * OUT, r[0], r[1]);
      }
    }
    return;
  }
  for (int b = 0; b < nob; ++b) {
    const EpiBlock& eb = e.blocks[b];
    uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
    const __m256i bias0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.bias));
    const __m256i bias1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.bias + 8));
    const int32_t* ap = acc + b * 16;
    if (e.kind == EpiKind::kRaw32) {
      for (int p = 0; p < mr; ++p, ap += width)
        store16<OUT>(yb + p * 16 * OUT,
                     _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(ap)), bias0),
                     _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(ap + 8)), bias1));
    } else {  // kFloat: float32(acc) * scale (scale_neg where acc < 0), MAXPS / MINPS clamp, round half to even
      __m256 sp[2], sn[2], flo[2], fhi[2];
      for (int h = 0; h < 2; ++h) {
        sp[h] = _mm256_load_ps(eb.scale + h * 8);
        sn[h] = _mm256_load_ps(eb.scale_neg + h * 8);
        flo[h] = _mm256_load_ps(eb.flo + h * 8);
        fhi[h] = _mm256_load_ps(eb.fhi + h * 8);
      }
      for (int p = 0; p < mr; ++p, ap += width) {
        __m256i r[2];
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(ap + h * 8)),
                                             h ? bias1 : bias0);
          // vcvtdq2ps rounds to nearest even like static_cast<float>; blendv selects by the sign bit of v
          __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_blendv_ps(sp[h], sn[h], _mm256_castsi256_ps(v)));
          f = _mm256_min_ps(_mm256_max_ps(f, flo[h]), fhi[h]);
          // explicit round-half-even (independent of MXCSR), then an exact conversion of an integer value
          f = _mm256_round_ps(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          r[h] = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);
        }
        store16<OUT>(yb + p * 16 * OUT, r[0], r[1]);
      }
    }
  }
}

NPUEMU_TARGET_AVX2 void epi_any_i32(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t s) {
  if (e.acc64 || e.kind == EpiKind::kFp16 || e.kind == EpiKind::kRaw64) {  // not an int32 tile
    epi_portable(acc, mr, nob, e, y, s);
    return;
  }
  switch (e.out_elem) {
    case 1: epi_i32<1>(acc, mr, nob, e, y, s); break;
    case 2: epi_i32<2>(acc, mr, nob, e, y, s); break;
    case 4: epi_i32<4>(acc, mr, nob, e, y, s); break;
    default: epi_portable(acc, mr, nob, e, y, s); break;
  }
}

// ---------------------------------------------------------------------------------------------------
// DPU stage: fixed-point requantization of int64 accumulators (int16 family) in 64-bit lanes.
//
// Same contract, q = RoundingDivideByPOT(SRDHM(acc * 2^left, M0), right) with right up to 62, from the
// per-channel constants of Fixed64Block (the FixedBlock encoding is specific to int32 accumulators).
// Lanes are 4 consecutive channels; a = acc * 2^left is any int64:
//  (1) left > 0 (M >= 1): acc is first clamped to [-2^31, 2^31 - 1] (then |a| <= 2^61). Outside, the
//      true |q| >= 2^31 and the computed |q| >= 2^30 with the sign of acc * M0: the same bound after the
//      clamp to [lo, hi] whenever |lo|, |hi| < 2^29 or lo == hi (checked per tile, as for int32).
//  (2) M0 < 0 (leaky relu with a negative slope): a * M0 = (-a) * |M0|, so a is negated and |M0| used;
//      below, 0 <= M0 < 2^31. -a is exact except for a = -2^63: tiles holding that accumulator are redone
//      by epi_portable.
//  (3) a = ah * 2^32 + al (ah = a >> 32 signed, al unsigned 32 bits): a * M0 = A * 2^32 + B with
//      A = ah * M0 (vpmuldq, |A| < 2^62) and B = al * M0 (vpmuludq, 0 <= B < 2^63). Then
//      q1 = floor((a * M0 + 2^30) / 2^31) = 2A + floor((B + 2^30) / 2^31), B + 2^30 < 2^64 shifted
//      logically. |a * M0| < 2^94 gives |q1| < 2^63 - 2^31: the int64 sum is exact (the reference's
//      saturation of q1 to int64 never triggers for int64 accumulators).
//  (4) RoundingDivideByPOT in 64 bits: floor(q1 / 2^right) as a logical shift between two XORs with the
//      sign mask (vpcmpgtq), plus 1 where (q1 & mask) > (mask >> 1) + (q1 < 0).
//  (5) clamp with vpcmpgtq / vpblendvb (lo applied last, as requantize()), pack to 32 bits, add zp.

NPUEMU_TARGET_AVX2 NPUEMU_INLINE __m256i min64(__m256i a, __m256i b) {
  return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b));
}
NPUEMU_TARGET_AVX2 NPUEMU_INLINE __m256i max64(__m256i a, __m256i b) {
  return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(b, a));
}
NPUEMU_TARGET_AVX2 NPUEMU_INLINE __m256i ld64(const int64_t* p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
}

// Unclamped q of (1)-(4) for channels 4j..4j+3 (v = acc + bias).
NPUEMU_TARGET_AVX2 NPUEMU_INLINE __m256i fixed_q64(__m256i v, const Fixed64Block& f, int j) {
  __m256i a = v;
  if (f.any_left) {  // clamp to the int32 range where left > 0 (no-op bounds elsewhere), then shift
    const __m256i left = ld64(f.left + 4 * j);
    const __m256i isleft = _mm256_cmpgt_epi64(left, _mm256_setzero_si256());
    const __m256i amin = _mm256_blendv_epi8(_mm256_set1_epi64x(INT64_MIN), _mm256_set1_epi64x(INT32_MIN), isleft);
    const __m256i amax = _mm256_blendv_epi8(_mm256_set1_epi64x(INT64_MAX), _mm256_set1_epi64x(INT32_MAX), isleft);
    a = _mm256_sllv_epi64(min64(max64(v, amin), amax), left);
  }
  if (f.any_neg) {
    const __m256i n = ld64(f.negm + 4 * j);
    a = _mm256_sub_epi64(_mm256_xor_si256(a, n), n);
  }
  const __m256i m0 = ld64(f.m0 + 4 * j);
  const __m256i hi = _mm256_mul_epi32(_mm256_srli_epi64(a, 32), m0);  // signed high half x M0
  const __m256i lo = _mm256_mul_epu32(a, m0);                         // unsigned low half x M0
  const __m256i q1 = _mm256_add_epi64(
      _mm256_slli_epi64(hi, 1), _mm256_srli_epi64(_mm256_add_epi64(lo, _mm256_set1_epi64x(int64_t{1} << 30)), 31));
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), q1);
  const __m256i fl = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(q1, sign), ld64(f.right + 4 * j)), sign);
  const __m256i rem = _mm256_and_si256(q1, ld64(f.mask + 4 * j));
  const __m256i thr = _mm256_sub_epi64(ld64(f.thr0 + 4 * j), sign);
  return _mm256_sub_epi64(fl, _mm256_cmpgt_epi64(rem, thr));
}

// Low dwords of two registers of 4 qwords, in order.
NPUEMU_TARGET_AVX2 NPUEMU_INLINE __m256i pack_lo32(__m256i a, __m256i b) {
  const __m256 s = _mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), 0x88);  // a0 a1 b0 b1 | a2 a3 b2 b3
  return _mm256_permute4x64_epi64(_mm256_castps_si256(s), 0xD8);
}

template <int OUT>
NPUEMU_TARGET_AVX2 void epi_i64_fixed(const void* accv, int mr, int nob, const EpiArgs& e, void* y,
                                      int64_t y_ob_stride) {
  const int64_t* acc = static_cast<const int64_t*>(accv);
  const int width = nob * 16;
  bool any_neg = false;
  for (int b = 0; b < nob; ++b) {
    const EpiBlock& eb = e.blocks[b];
    any_neg = any_neg || eb.pos64.any_neg || (e.leaky && eb.neg64.any_neg);
    for (int h = 0; h < 2; ++h) {  // the saturation argument of step (1), as saturation_ok()
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.lo + h * 8));
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(eb.hi + h * 8));
      FixedHalf t;
      t.any_left = eb.pos64.any_left || (e.leaky && eb.neg64.any_left);
      if (!saturation_ok(t, lo, hi)) {
        epi_portable(accv, mr, nob, e, y, y_ob_stride);
        return;
      }
    }
  }
  const __m256i zp = _mm256_set1_epi32(e.zp), i64min = _mm256_set1_epi64x(INT64_MIN);
  __m256i edge = _mm256_setzero_si256();  // all ones where acc = -2^63 (step (2))
  for (int b = 0; b < nob; ++b) {
    const EpiBlock& eb = e.blocks[b];
    uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
    for (int p = 0; p < mr; ++p) {
      __m256i q[4];
      for (int j = 0; j < 4; ++j) {
        const __m256i v = _mm256_add_epi64(ld64(acc + p * width + b * 16 + 4 * j), ld64(eb.bias64 + 4 * j));
        edge = _mm256_or_si256(edge, _mm256_cmpeq_epi64(v, i64min));
        __m256i r = fixed_q64(v, eb.pos64, j);
        if (e.leaky) r = _mm256_blendv_epi8(r, fixed_q64(v, eb.neg64, j), _mm256_cmpgt_epi64(_mm256_setzero_si256(), v));
        const __m256i lo = _mm256_cvtepi32_epi64(_mm_load_si128(reinterpret_cast<const __m128i*>(eb.lo + 4 * j)));
        const __m256i hi = _mm256_cvtepi32_epi64(_mm_load_si128(reinterpret_cast<const __m128i*>(eb.hi + 4 * j)));
        q[j] = max64(min64(r, hi), lo);
      }
      store16<OUT>(yb + p * 16 * OUT, _mm256_add_epi32(pack_lo32(q[0], q[1]), zp),
                   _mm256_add_epi32(pack_lo32(q[2], q[3]), zp));
    }
  }
  if (any_neg && !_mm256_testz_si256(edge, edge)) epi_portable(accv, mr, nob, e, y, y_ob_stride);
}

}  // namespace

NPUEMU_TARGET_AVX2 void epi_avx2_i64(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t s) {
  if (e.acc64 && !e.wrap32 && e.kind == EpiKind::kFixed && e.out_elem == 1) {
    epi_i64_fixed<1>(acc, mr, nob, e, y, s);
  } else if (e.acc64 && !e.wrap32 && e.kind == EpiKind::kFixed && e.out_elem == 2) {
    epi_i64_fixed<2>(acc, mr, nob, e, y, s);
  } else {  // raw int64 output, rounding='float' (no int64 -> float32 conversion in AVX2), int8 family
    epi_portable(acc, mr, nob, e, y, s);
  }
}

namespace {

// fp32 tile -> activation (written as MAXPS / MINPS behave, like apply_activation_f32) -> fp16 with
// vcvtps2ph, round to nearest even (the rounding of fp32_to_fp16, NaN quieted keeping sign and payload).
NPUEMU_TARGET_AVX2 void epi_f32(const void* accv, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride) {
  const float* acc = static_cast<const float*>(accv);
  const int width = nob * 16;
  const __m256 zero = _mm256_setzero_ps();
  const __m256 lo = _mm256_set1_ps(e.act.lo), hi = _mm256_set1_ps(e.act.hi), alpha = _mm256_set1_ps(e.act.alpha);
  for (int b = 0; b < nob; ++b) {
    uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
    for (int p = 0; p < mr; ++p) {
      for (int h = 0; h < 2; ++h) {
        __m256 v = _mm256_load_ps(acc + p * width + b * 16 + h * 8);
        switch (e.act.kind) {
          case ActKind::kNone: break;
          case ActKind::kRelu: v = _mm256_max_ps(v, zero); break;  // v > 0 ? v : +0 (NaN -> 0, -0 -> +0)
          case ActKind::kClip: v = _mm256_min_ps(_mm256_max_ps(v, lo), hi); break;
          case ActKind::kLeakyRelu:  // v < 0 ? v * alpha : v (ordered compare: NaN stays)
            v = _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            break;
          case ActKind::kHardSwish: {  // as apply_activation_f32: mul, add, MAXPS(t, 0), MINPS(t, 1), mul
            const __m256 t =
                _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(kHardSwishAlpha)), _mm256_set1_ps(0.5f));
            v = _mm256_mul_ps(v, _mm256_min_ps(_mm256_max_ps(t, zero), _mm256_set1_ps(1.f)));
            break;
          }
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(yb + p * 32 + h * 16),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Tables

template <template <int, int> class K, int NOB, int... I>
void fill(UkernelTable& t, std::integer_sequence<int, I...>) {
  ((t.mac[NOB - 1][I] = K<I + 1, NOB>::run), ...);
  t.mr_max[NOB - 1] = static_cast<int>(sizeof...(I));
}
template <int MR, int NOB>
struct I32K {
  static constexpr MacFn run = &mac_i16_i32<MR, NOB>;
};
template <int MR, int NOB>
struct I64K {
  static constexpr MacFn run = &mac_i16_i64<MR, NOB>;
};
template <int MR, int NOB>
struct F32K {
  static constexpr MacFn run = &mac_f32<MR, NOB>;
};

// kI16_I32 / kF32: a block is 2 ymm accumulators and 2 ymm weights; + 1 broadcast (+ 1 vpmaddwd result).
//   NOB = 1: 2 MR + 2 + 2 <= 16 -> MR <= 6;   NOB = 2: 4 MR + 4 + 2 <= 16 -> MR <= 2.
UkernelTable make_i32() {
  UkernelTable t;
  fill<I32K, 1>(t, std::make_integer_sequence<int, 6>{});
  fill<I32K, 2>(t, std::make_integer_sequence<int, 2>{});
  t.epi = &epi_any_i32;
  return t;
}
// kI16_I64: a block is 4 ymm accumulators (even / odd channels of each half) and 2 ymm weights; + 1
// broadcast, the 0x80000000 constant and 1-2 temporaries.
//   NOB = 1: 4 MR + 2 + 4 <= 16 -> MR <= 2;   NOB = 2: 8 + 4 + 3 -> MR = 1.
UkernelTable make_i64() {
  UkernelTable t;
  fill<I64K, 1>(t, std::make_integer_sequence<int, 2>{});
  fill<I64K, 2>(t, std::make_integer_sequence<int, 1>{});
  t.epi = &epi_avx2_i64;
  return t;
}
UkernelTable make_f32() {
  UkernelTable t;
  fill<F32K, 1>(t, std::make_integer_sequence<int, 6>{});
  fill<F32K, 2>(t, std::make_integer_sequence<int, 2>{});
  t.epi = &epi_f32;
  return t;
}

// Depthwise: 16 channels per tile row as 2 ymm; MR pixels. int8 inputs in the U8 format (as the AVX-512
// kernel): zero-extended u8 times the weight in the low int16 of each dword (vpmaddwd), exact.
template <int MR>
NPUEMU_TARGET_AVX2 void dw_u8(const DwArgs& a, void* accv) {
  __m256i acc[MR][2];
  const __m256i i0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.init));
  const __m256i i1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.init + 8));
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
    acc[p][0] = i0;
    acc[p][1] = i1;
  }
  const int32_t* w = static_cast<const int32_t*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + t * 16));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + t * 16 + 8));
    NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
      const __m128i xv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(xt + p * 16));
      acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(_mm256_cvtepu8_epi32(xv), w0));
      acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(_mm256_cvtepu8_epi32(_mm_srli_si128(xv, 8)), w1));
    }
  }
  int32_t* out = static_cast<int32_t*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + p * 16), acc[p][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + p * 16 + 8), acc[p][1]);
  }
}

template <int MR>
NPUEMU_TARGET_AVX2 void dw_f32(const DwArgs& a, void* accv) {
  __m256 acc[MR][2];
  const __m256 b0 = _mm256_load_ps(a.block->bias_f), b1 = _mm256_load_ps(a.block->bias_f + 8);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
    acc[p][0] = b0;
    acc[p][1] = b1;
  }
  const float* w = static_cast<const float*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const float* xt = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.x) + a.tap_off[t]);
    const __m256 w0 = _mm256_load_ps(w + t * 16), w1 = _mm256_load_ps(w + t * 16 + 8);
    NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
      acc[p][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xt + p * 16), w0, acc[p][0]);
      acc[p][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xt + p * 16 + 8), w1, acc[p][1]);
    }
  }
  float* out = static_cast<float*>(accv);
  NPUEMU_UNROLL for (int p = 0; p < MR; ++p) {
    _mm256_store_ps(out + p * 16, acc[p][0]);
    _mm256_store_ps(out + p * 16 + 8, acc[p][1]);
  }
}

// Register budget: 2 MR accumulators + 2 weight vectors + 2 temporaries <= 16 -> MR <= 6.
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

const DwTable* dw_ukernels_avx2(MacType m) {
  static const DwTable u8 = make_dw_u8(std::make_integer_sequence<int, 6>{});
  static const DwTable f32 = make_dw_f32(std::make_integer_sequence<int, 6>{});
  return m == MacType::kU8S8_I32 ? &u8 : m == MacType::kF32 ? &f32 : nullptr;
}

const UkernelTable* ukernels_avx2(MacType m) {
  static const UkernelTable i32 = make_i32();
  static const UkernelTable i64 = make_i64();
  static const UkernelTable f32 = make_f32();
  switch (m) {
    case MacType::kI16_I32: return &i32;
    case MacType::kI16_I64: return &i64;
    case MacType::kF32: return &f32;
    default: return nullptr;
  }
}

#else
const UkernelTable* ukernels_avx2(MacType) { return nullptr; }
const DwTable* dw_ukernels_avx2(MacType) { return nullptr; }
void epi_avx2_i64(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t s) {
  epi_portable(acc, mr, nob, e, y, s);
}
#endif

}  // namespace direct
}  // namespace npuemu
