#include "kernels/conv/layout.h"

#include <cstring>
#include <type_traits>

#include "core/cpu.h"
#include "core/memory.h"
#include "core/parallel.h"
#include "quant/fp16.h"

#if NPUEMU_X86
#include <immintrin.h>  // SSE2 is part of baseline x86-64; F16C/AVX2 only inside NPUEMU_TARGET_AVX2
#endif

namespace npuemu {
namespace direct {

InputLayout make_input_layout(const ConvGeometry& g, InputFormat f) {
  InputLayout L;
  L.elem = input_elem_bytes(f);
  L.c1 = (g.icg() + kC2 - 1) / kC2;
  L.hp = g.h + g.pt + g.pb;
  L.wp = g.w + g.pl + g.pr;
  L.sw = g.sw;
  L.wq = (L.wp + g.sw - 1) / g.sw;
  L.pt = g.pt;
  L.pl = g.pl;
  L.phase_pitch = L.wq * kC2 * L.elem;
  L.row_pitch = L.sw * L.phase_pitch;
  L.c1_stride = L.hp * L.row_pitch;
  L.bytes = L.c1 * L.c1_stride + 64;  // + slack: micro-kernels may read one vector past a row end
  // Only rows and stride phases some tap reads are packed (a 1x1 stride-2 convolution reads a quarter).
  L.row_needed.assign(static_cast<size_t>(L.hp), 0);
  for (int64_t oh = 0; oh < g.oh; ++oh)
    for (int64_t kh = 0; kh < g.kh; ++kh) L.row_needed[static_cast<size_t>(oh * g.sh + kh * g.dh)] = 1;
  L.phase_needed.assign(static_cast<size_t>(L.sw), 0);
  for (int64_t kw = 0; kw < g.kw; ++kw) L.phase_needed[static_cast<size_t>((kw * g.dw) % g.sw)] = 1;
  return L;
}

namespace {

// ---------------------------------------------------------------------------------------------------
// Block transposes (SSE2, baseline x86-64). One round of "interleave row i with row i + n/2" maps
// element (r, c) with b-bit indices to (r << 1 | c_msb, c << 1 | r_msb); b rounds transpose the block.

#if NPUEMU_X86
// 16x16 bytes: rows in[0..15] (16 bytes each) -> out[j] = column j.
inline void transpose16x16_u8(__m128i r[16]) {
  for (int round = 0; round < 4; ++round) {
    __m128i t[16];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm_unpacklo_epi8(r[i], r[i + 8]);
      t[2 * i + 1] = _mm_unpackhi_epi8(r[i], r[i + 8]);
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
  }
}

// 8x8 16-bit elements.
inline void transpose8x8_u16(__m128i r[8]) {
  for (int round = 0; round < 3; ++round) {
    __m128i t[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm_unpacklo_epi16(r[i], r[i + 4]);
      t[2 * i + 1] = _mm_unpackhi_epi16(r[i], r[i + 4]);
    }
    for (int i = 0; i < 8; ++i) r[i] = t[i];
  }
}

// 4x4 32-bit elements.
inline void transpose4x4_u32(__m128i r[4]) {
  for (int round = 0; round < 2; ++round) {
    __m128i t[4];
    for (int i = 0; i < 2; ++i) {
      t[2 * i] = _mm_unpacklo_epi32(r[i], r[i + 2]);
      t[2 * i + 1] = _mm_unpackhi_epi32(r[i], r[i + 2]);
    }
    for (int i = 0; i < 4; ++i) r[i] = t[i];
  }
}
#endif

// Source of one packed row: for each of the 16 channels of block c1, a pointer to the (already
// phase-gathered, contiguous) input values, or nullptr for channels past icg (filled with pad).
template <class Dst>
struct RowSrc {
  const Dst* ch[kC2];
};

// dst[(col0 + i) * 16 + c2] = src.ch[c2][i] ^ flip for i in [0, n), pad where src.ch[c2] == nullptr
// (flip: bytes only, the XOR that maps int8 activations to the unsigned packed domain).
template <class Dst>
void interleave16(const RowSrc<Dst>& src, int64_t n, Dst pad, Dst* dst, uint8_t flip = 0) {
  int64_t i = 0;
#if NPUEMU_X86
  if (sizeof(Dst) == 1) {
    const __m128i vpad = _mm_set1_epi8(static_cast<char>(pad));
    const __m128i vflip = _mm_set1_epi8(static_cast<char>(flip));
    for (; i + 16 <= n; i += 16) {
      __m128i r[16];
      for (int c = 0; c < 16; ++c)
        r[c] = src.ch[c] ? _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src.ch[c] + i)), vflip)
                         : vpad;
      transpose16x16_u8(r);
      for (int p = 0; p < 16; ++p) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (i + p) * kC2), r[p]);
    }
  } else if (sizeof(Dst) == 2) {
    const __m128i vpad = _mm_set1_epi16(static_cast<short>(pad));
    for (; i + 8 <= n; i += 8) {
      for (int half = 0; half < 2; ++half) {
        __m128i r[8];
        for (int c = 0; c < 8; ++c) {
          const Dst* s = src.ch[half * 8 + c];
          r[c] = s ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)) : vpad;
        }
        transpose8x8_u16(r);
        for (int p = 0; p < 8; ++p)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (i + p) * kC2 + half * 8), r[p]);
      }
    }
  } else if (sizeof(Dst) == 4) {
    uint32_t padbits;
    std::memcpy(&padbits, &pad, 4);
    const __m128i vpad = _mm_set1_epi32(static_cast<int>(padbits));
    for (; i + 4 <= n; i += 4) {
      for (int q = 0; q < 4; ++q) {
        __m128i r[4];
        for (int c = 0; c < 4; ++c) {
          const Dst* s = src.ch[q * 4 + c];
          r[c] = s ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)) : vpad;
        }
        transpose4x4_u32(r);
        for (int p = 0; p < 4; ++p)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (i + p) * kC2 + q * 4), r[p]);
      }
    }
  }
#endif
  for (; i < n; ++i) {
    for (int c = 0; c < kC2; ++c) {
      if constexpr (sizeof(Dst) == 1)
        dst[i * kC2 + c] = src.ch[c] ? static_cast<Dst>(src.ch[c][i] ^ flip) : pad;
      else
        dst[i * kC2 + c] = src.ch[c] ? src.ch[c][i] : pad;
    }
  }
}

template <class Dst>
void fill(Dst* dst, int64_t n, Dst v) {
  for (int64_t i = 0; i < n; ++i) dst[i] = v;
}

// Converts n source values to the packed element type (u8: XOR 0x80 for signed inputs; i16: widen;
// f32: fp16 -> fp32), gathering every sw-th value starting at src.
template <class Dst>
void convert_gather(DType xd, const void* src, int64_t sw, int64_t n, Dst* out);

template <>
void convert_gather<uint8_t>(DType xd, const void* src, int64_t sw, int64_t n, uint8_t* out) {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  const uint8_t flip = xd == DType::kUInt8 ? 0 : 0x80;
  int64_t i = 0;
#if NPUEMU_X86
  const __m128i vflip = _mm_set1_epi8(static_cast<char>(flip));
  if (sw == 1) {
    for (; i + 16 <= n; i += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                       _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)), vflip));
  } else if (sw == 2) {
    const __m128i lo = _mm_set1_epi16(0x00FF);
    for (; i + 17 <= n; i += 16) {  // reads s[2i .. 2i+31] <= s[2(n-1) - 1]: never past the last value
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i + 16));
      const __m128i even = _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm_xor_si128(even, vflip));
    }
  }
#endif
  for (; i < n; ++i) out[i] = static_cast<uint8_t>(s[i * sw] ^ flip);
}

template <>
void convert_gather<int16_t>(DType xd, const void* src, int64_t sw, int64_t n, int16_t* out) {
  switch (xd) {
    case DType::kUInt8:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<const uint8_t*>(src)[i * sw];
      break;
    case DType::kInt16:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<const int16_t*>(src)[i * sw];
      break;
    default:
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<const int8_t*>(src)[i * sw];
      break;
  }
}

#if NPUEMU_X86
NPUEMU_TARGET_AVX2 void fp16_to_f32_f16c(const uint16_t* s, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) out[i] = fp16_to_fp32(s[i]);
}
#endif

template <>
void convert_gather<float>(DType, const void* src, int64_t sw, int64_t n, float* out) {
  const uint16_t* s = static_cast<const uint16_t*>(src);
#if NPUEMU_X86
  if (active_isa() >= Isa::kAvx2) {  // F16C's vcvtph2ps is exact, like fp16_to_fp32
    if (sw == 1) {
      fp16_to_f32_f16c(s, n, out);
    } else {
      thread_local Buffer gathered;
      gathered.reserve(static_cast<size_t>(n) * sizeof(uint16_t));
      uint16_t* t = gathered.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) t[i] = s[i * sw];
      fp16_to_f32_f16c(t, n, out);
    }
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(s[i * sw]);
}

template <class Dst>
void pack_rows_t(const InputLayout& L, const ConvGeometry& g, DType xd, const void* xg, int64_t icg, Dst pad,
                 int64_t r_begin, int64_t r_end, Dst* xp) {
  const int64_t xelem = static_cast<int64_t>(dtype_size(xd));
  const int64_t cols = L.sw * L.wq;  // phase-major columns per packed row
  // per-thread staging of the converted (and phase-gathered) values of 16 channels
  thread_local Buffer stage;
  stage.reserve(static_cast<size_t>(kC2 * (L.wq + 16)) * sizeof(Dst));
  Dst* tmp = stage.data<Dst>();
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t c1 = r / L.hp, row = r % L.hp;
    if (!L.row_needed[static_cast<size_t>(row)]) continue;
    Dst* dst = xp + (c1 * L.hp + row) * cols * kC2;
    const int64_t h = row - L.pt;
    if (h < 0 || h >= g.h) {
      fill(dst, cols * kC2, pad);
      continue;
    }
    for (int64_t ph = 0; ph < L.sw; ++ph) {
      if (!L.phase_needed[static_cast<size_t>(ph)]) continue;
      Dst* pdst = dst + ph * L.wq * kC2;
      // packed column col holds padded column j = col * sw + ph, i.e. input column w = j - pl
      int64_t col0 = 0;  // first column with w >= 0
      while (col0 < L.wq && col0 * L.sw + ph < L.pl) ++col0;
      int64_t col1 = col0;  // one past the last column with w < W
      while (col1 < L.wq && col1 * L.sw + ph - L.pl < g.w) ++col1;
      fill(pdst, col0 * kC2, pad);
      fill(pdst + col1 * kC2, (L.wq - col1) * kC2, pad);
      const int64_t n = col1 - col0;
      if (n <= 0) continue;
      const int64_t w0 = col0 * L.sw + ph - L.pl;
      RowSrc<Dst> src;
      for (int c2 = 0; c2 < kC2; ++c2) {
        const int64_t c = c1 * kC2 + c2;
        if (c >= icg) {
          src.ch[c2] = nullptr;
          continue;
        }
        const uint8_t* s = static_cast<const uint8_t*>(xg) + ((c * g.h + h) * g.w + w0) * xelem;
        Dst* t = tmp + c2 * (L.wq + 16);
        convert_gather<Dst>(xd, s, L.sw, n, t);
        src.ch[c2] = t;
      }
      interleave16(src, n, pad, pdst + col0 * kC2);
    }
  }
}

// Plane mode (short rows, or unpadded stride-1 layers): the 16 channels of a block are transposed over
// the whole plane at once, which keeps the vector transposes busy when a row alone has fewer than 16
// pixels; each packed row (and stride phase) is then filled with 16-channel pixel copies.
template <class Dst>
void pack_planes_t(const InputLayout& L, const ConvGeometry& g, DType xd, const void* xg, int64_t icg, Dst pad,
                   int64_t c1_begin, int64_t c1_end, Dst* xp) {
  const int64_t plane = g.h * g.w, xelem = static_cast<int64_t>(dtype_size(xd)), cols = L.wq;
  const bool unpadded = L.pt == 0 && L.pl == 0 && L.hp == g.h && cols == g.w;
  if (sizeof(Dst) == 1 && unpadded) {
    // the packed block is exactly [plane][16]: transpose straight from the caller's channel planes,
    // XOR-ing int8 activations into the unsigned domain on the way (one pass over the input)
    const uint8_t flip = xd == DType::kUInt8 ? 0 : 0x80;
    for (int64_t c1 = c1_begin; c1 < c1_end; ++c1) {
      RowSrc<Dst> src;
      for (int c2 = 0; c2 < kC2; ++c2) {
        const int64_t c = c1 * kC2 + c2;
        src.ch[c2] = c < icg ? reinterpret_cast<const Dst*>(static_cast<const uint8_t*>(xg) + c * plane) : nullptr;
      }
      interleave16(src, plane, pad, xp + c1 * L.hp * cols * kC2, flip);
    }
    return;
  }
  thread_local Buffer conv_buf, inter_buf;
  conv_buf.reserve(static_cast<size_t>(kC2 * (plane + 16)) * sizeof(Dst));
  inter_buf.reserve(static_cast<size_t>(kC2 * plane) * sizeof(Dst));
  Dst* conv = conv_buf.data<Dst>();
  Dst* inter = inter_buf.data<Dst>();
  for (int64_t c1 = c1_begin; c1 < c1_end; ++c1) {
    RowSrc<Dst> src;
    for (int c2 = 0; c2 < kC2; ++c2) {
      const int64_t c = c1 * kC2 + c2;
      if (c >= icg) {
        src.ch[c2] = nullptr;
        continue;
      }
      Dst* t = conv + c2 * (plane + 16);
      convert_gather<Dst>(xd, static_cast<const uint8_t*>(xg) + c * plane * xelem, 1, plane, t);
      src.ch[c2] = t;
    }
    interleave16(src, plane, pad, inter);
    for (int64_t row = 0; row < L.hp; ++row) {
      if (!L.row_needed[static_cast<size_t>(row)]) continue;
      Dst* dst = xp + (c1 * L.hp + row) * L.sw * L.wq * kC2;
      const int64_t h = row - L.pt;
      if (h < 0 || h >= g.h) {
        fill(dst, L.sw * L.wq * kC2, pad);
        continue;
      }
      const Dst* irow = inter + h * g.w * kC2;
      if (L.sw == 1) {
        fill(dst, L.pl * kC2, pad);
        std::memcpy(dst + L.pl * kC2, irow, static_cast<size_t>(g.w * kC2) * sizeof(Dst));
        fill(dst + (L.pl + g.w) * kC2, (cols - L.pl - g.w) * kC2, pad);
        continue;
      }
      for (int64_t ph = 0; ph < L.sw; ++ph) {  // packed column col of phase ph: input column col*sw + ph - pl
        if (!L.phase_needed[static_cast<size_t>(ph)]) continue;
        Dst* pdst = dst + ph * L.wq * kC2;
        for (int64_t col = 0; col < L.wq; ++col) {
          const int64_t w = col * L.sw + ph - L.pl;
          if (w >= 0 && w < g.w)
            std::memcpy(pdst + col * kC2, irow + w * kC2, kC2 * sizeof(Dst));
          else
            fill(pdst + col * kC2, kC2, pad);
        }
      }
    }
  }
}

}  // namespace

bool pack_by_planes(const InputLayout& L, const ConvGeometry& g) {
  // Measured (bench/bench_conv.py): whole-plane transposes win for 8- and 16-bit packing at every size,
  // for float packing when rows are short, strided or unpadded; wide padded stride-1 float rows pack as
  // fast row by row (without the plane buffers).
  const bool unpadded = L.sw == 1 && L.pt == 0 && L.pl == 0 && L.hp == g.h && L.wq == g.w;  // e.g. 1x1 stride 1
  return L.elem != 4 || unpadded || L.sw > 1 || g.w < 32;
}

void pack_input_planes(const InputLayout& L, const ConvGeometry& g, DType xd, const void* xg, int64_t icg, int32_t pad,
                       int64_t c1_begin, int64_t c1_end, void* xp) {
  if (L.elem == 1)
    pack_planes_t<uint8_t>(L, g, xd, xg, icg, static_cast<uint8_t>(pad), c1_begin, c1_end, static_cast<uint8_t*>(xp));
  else if (L.elem == 2)
    pack_planes_t<int16_t>(L, g, xd, xg, icg, static_cast<int16_t>(pad), c1_begin, c1_end, static_cast<int16_t*>(xp));
  else
    pack_planes_t<float>(L, g, xd, xg, icg, 0.0f, c1_begin, c1_end, static_cast<float*>(xp));
}

void pack_input(const InputLayout& L, const ConvGeometry& g, DType xd, bool nhwc, const void* x_img, int64_t grp,
                int64_t icg, int32_t pad, const CoreSet& cores, void* xp) {
  CorePool& pool = CorePool::instance();
  if (nhwc) {
    auto rows = [&](int, int64_t b, int64_t e) { pack_input_rows_nhwc(L, g, xd, x_img, grp * icg, icg, pad, b, e, xp); };
    pool.run(cores, L.c1 * L.hp, rows);
    return;
  }
  const void* xg = static_cast<const uint8_t*>(x_img) + grp * icg * g.h * g.w * static_cast<int64_t>(dtype_size(xd));
  if (pack_by_planes(L, g)) {
    auto planes = [&](int, int64_t b, int64_t e) { pack_input_planes(L, g, xd, xg, icg, pad, b, e, xp); };
    pool.run(cores, L.c1, planes);
  } else {
    auto rows = [&](int, int64_t b, int64_t e) { pack_input_rows(L, g, xd, xg, icg, pad, b, e, xp); };
    pool.run(cores, L.c1 * L.hp, rows);
  }
}

void pack_input_rows(const InputLayout& L, const ConvGeometry& g, DType xd, const void* xg, int64_t icg, int32_t pad,
                     int64_t r_begin, int64_t r_end, void* xp) {
  if (L.elem == 1)
    pack_rows_t<uint8_t>(L, g, xd, xg, icg, static_cast<uint8_t>(pad), r_begin, r_end, static_cast<uint8_t*>(xp));
  else if (L.elem == 2)
    pack_rows_t<int16_t>(L, g, xd, xg, icg, static_cast<int16_t>(pad), r_begin, r_end, static_cast<int16_t*>(xp));
  else
    pack_rows_t<float>(L, g, xd, xg, icg, 0.0f, r_begin, r_end, static_cast<float*>(xp));
}

namespace {

template <class Dst, class Src, class Conv>
void pack_rows_nhwc_t(const InputLayout& L, const ConvGeometry& g, const Src* x, int64_t c_offset, int64_t icg,
                      Dst pad, Conv conv, int64_t r_begin, int64_t r_end, Dst* xp) {
  const int64_t cols = L.sw * L.wq;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t c1 = r / L.hp, row = r % L.hp;
    if (!L.row_needed[static_cast<size_t>(row)]) continue;
    Dst* dst = xp + (c1 * L.hp + row) * cols * kC2;
    const int64_t h = row - L.pt;
    const int64_t nch = icg - c1 * kC2 < kC2 ? icg - c1 * kC2 : kC2;
    for (int64_t ph = 0; ph < L.sw; ++ph) {
      if (!L.phase_needed[static_cast<size_t>(ph)]) continue;
      for (int64_t col = 0; col < L.wq; ++col) {
        Dst* d = dst + (ph * L.wq + col) * kC2;
        const int64_t w = col * L.sw + ph - L.pl;
        if (h < 0 || h >= g.h || w < 0 || w >= g.w) {
          for (int c = 0; c < kC2; ++c) d[c] = pad;
          continue;
        }
        const Src* s = x + (h * g.w + w) * g.c + c_offset + c1 * kC2;
        int64_t c = 0;
        for (; c < nch; ++c) d[c] = conv(s[c]);
        for (; c < kC2; ++c) d[c] = pad;
      }
    }
  }
}

}  // namespace

void pack_input_rows_nhwc(const InputLayout& L, const ConvGeometry& g, DType xd, const void* x, int64_t c_offset,
                          int64_t icg, int32_t pad, int64_t r_begin, int64_t r_end, void* xp) {
  if (L.elem == 1) {
    const uint8_t p = static_cast<uint8_t>(pad);
    if (xd == DType::kUInt8)
      pack_rows_nhwc_t<uint8_t>(L, g, static_cast<const uint8_t*>(x), c_offset, icg, p, [](uint8_t v) { return v; },
                                r_begin, r_end, static_cast<uint8_t*>(xp));
    else
      pack_rows_nhwc_t<uint8_t>(L, g, static_cast<const int8_t*>(x), c_offset, icg, p,
                                [](int8_t v) { return static_cast<uint8_t>(static_cast<uint8_t>(v) ^ 0x80u); },
                                r_begin, r_end, static_cast<uint8_t*>(xp));
  } else if (L.elem == 2) {
    const int16_t p = static_cast<int16_t>(pad);
    auto id = [](auto v) { return static_cast<int16_t>(v); };
    if (xd == DType::kUInt8)
      pack_rows_nhwc_t<int16_t>(L, g, static_cast<const uint8_t*>(x), c_offset, icg, p, id, r_begin, r_end,
                                static_cast<int16_t*>(xp));
    else if (xd == DType::kInt16)
      pack_rows_nhwc_t<int16_t>(L, g, static_cast<const int16_t*>(x), c_offset, icg, p, id, r_begin, r_end,
                                static_cast<int16_t*>(xp));
    else
      pack_rows_nhwc_t<int16_t>(L, g, static_cast<const int8_t*>(x), c_offset, icg, p, id, r_begin, r_end,
                                static_cast<int16_t*>(xp));
  } else {
    pack_rows_nhwc_t<float>(L, g, static_cast<const uint16_t*>(x), c_offset, icg, 0.0f,
                            [](uint16_t v) { return fp16_to_fp32(v); }, r_begin, r_end, static_cast<float*>(xp));
  }
}

namespace {

template <class Dst, class Src, class Conv>
void padded_hwc_t(const ConvGeometry& g, bool nhwc, const Src* x, int64_t c_offset, int64_t icg, Dst pad, Conv conv,
                  int64_t r_begin, int64_t r_end, Dst* xa) {
  const int64_t wp = g.w + g.pl + g.pr;
  for (int64_t row = r_begin; row < r_end; ++row) {
    Dst* d = xa + row * wp * icg;
    const int64_t h = row - g.pt;
    if (h < 0 || h >= g.h) {
      for (int64_t i = 0; i < wp * icg; ++i) d[i] = pad;
      continue;
    }
    for (int64_t i = 0; i < g.pl * icg; ++i) d[i] = pad;
    for (int64_t i = (g.pl + g.w) * icg; i < wp * icg; ++i) d[i] = pad;
    Dst* dm = d + g.pl * icg;
    if (nhwc) {
      for (int64_t w = 0; w < g.w; ++w)
        for (int64_t ic = 0; ic < icg; ++ic) dm[w * icg + ic] = conv(x[(h * g.w + w) * g.c + c_offset + ic]);
    } else {
      for (int64_t ic = 0; ic < icg; ++ic) {
        const Src* src = x + ((c_offset + ic) * g.h + h) * g.w;
        if constexpr (std::is_same<Dst, float>::value) {  // float16 planes: one vector conversion per row
          thread_local Buffer row_f32;
          row_f32.reserve(static_cast<size_t>(g.w) * sizeof(float));
          float* t = row_f32.data<float>();
          convert_gather<float>(DType::kFloat16, src, 1, g.w, t);
          for (int64_t w = 0; w < g.w; ++w) dm[w * icg + ic] = t[w];
        } else {
          for (int64_t w = 0; w < g.w; ++w) dm[w * icg + ic] = conv(src[w]);
        }
      }
    }
  }
}

template <class Dst>
void im2col_hwc_t(const ConvGeometry& g, int64_t icg, int64_t c1, Dst pad, const Dst* xa, int64_t p_begin,
                  int64_t p_end, Dst* xp) {
  const int64_t pixels = g.oh * g.ow, wp = g.w + g.pl + g.pr, kf = g.kh * g.kw * icg;
  const int64_t span = g.kw * icg;  // one kernel row's taps, contiguous when dw == 1
  Dst v[1024 + kC2];
  for (int64_t k = kf; k < c1 * kC2; ++k) v[k] = pad;
  int64_t oh = p_begin / g.ow, ow = p_begin % g.ow;
  // Short kernel rows and few channels (a 3-channel stem: 9-element rows, 27 of 32 channels): each row is
  // one fixed 32- or 64-byte move, in kh order so that every row's spill is overwritten by the next row
  // (the spill past the last row is padded again); the source may be read up to 64 bytes past its end
  // (padded_hwc_bytes() reserves that slack). Pixels go in batches of 64 through a staging buffer so
  // that its 16-channel blocks are read back long after the overlapping stores (no store-to-load
  // forwarding stalls).
  constexpr int64_t kBatch = 64;
  const int64_t span_bytes = span * static_cast<int64_t>(sizeof(Dst));
  auto short_rows = [&](auto move_bytes) {
    constexpr int64_t kMove = decltype(move_bytes)::value, kMoveElems = kMove / static_cast<int64_t>(sizeof(Dst));
    static_assert(kMove <= kIm2colSlack, "the padded buffer's slack must cover one move");
    const int64_t rs = c1 * kC2 + kMoveElems;  // staging row: every spill stays inside it
    Dst vb[kBatch * (64 + kMoveElems)];
    for (int64_t p0 = p_begin; p0 < p_end; p0 += kBatch) {
      const int64_t nb = std::min<int64_t>(kBatch, p_end - p0);
      for (int64_t i = 0; i < nb; ++i) {
        Dst* vi = vb + i * rs;
        for (int64_t kh = 0; kh < g.kh; ++kh)
          std::memcpy(vi + kh * span, xa + ((oh * g.sh + kh * g.dh) * wp + ow * g.sw) * icg, kMove);
        for (int64_t k = kf; k < c1 * kC2; ++k) vi[k] = pad;
        if (++ow == g.ow) {
          ow = 0;
          ++oh;
        }
      }
      for (int64_t c = 0; c < c1; ++c)
        for (int64_t i = 0; i < nb; ++i)
          std::memcpy(xp + (c * pixels + p0 + i) * kC2, vb + i * rs + c * kC2, kC2 * sizeof(Dst));
    }
  };
  if (g.dw == 1 && c1 * kC2 <= 64 && span_bytes <= 64) {
    if (span_bytes <= 32)
      short_rows(std::integral_constant<int64_t, 32>{});
    else
      short_rows(std::integral_constant<int64_t, 64>{});
    return;
  }
  for (int64_t p = p_begin; p < p_end; ++p) {
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      const Dst* row = xa + ((oh * g.sh + kh * g.dh) * wp + ow * g.sw) * icg;
      if (g.dw == 1) {
        std::memcpy(v + kh * span, row, static_cast<size_t>(span) * sizeof(Dst));
      } else {
        for (int64_t kw = 0; kw < g.kw; ++kw)
          std::memcpy(v + kh * span + kw * icg, row + kw * g.dw * icg, static_cast<size_t>(icg) * sizeof(Dst));
      }
    }
    for (int64_t c = 0; c < c1; ++c) std::memcpy(xp + (c * pixels + p) * kC2, v + c * kC2, kC2 * sizeof(Dst));
    if (++ow == g.ow) {
      ow = 0;
      ++oh;
    }
  }
}

}  // namespace

void pack_padded_hwc(const ConvGeometry& g, DType xd, bool nhwc, const void* x, int64_t c_offset, int64_t icg,
                     InputFormat f, int32_t pad, int64_t r_begin, int64_t r_end, void* xa) {
  if (f == InputFormat::kU8) {
    const uint8_t p = static_cast<uint8_t>(pad);
    if (xd == DType::kUInt8)
      padded_hwc_t<uint8_t>(g, nhwc, static_cast<const uint8_t*>(x), c_offset, icg, p, [](uint8_t v) { return v; },
                            r_begin, r_end, static_cast<uint8_t*>(xa));
    else
      padded_hwc_t<uint8_t>(g, nhwc, static_cast<const int8_t*>(x), c_offset, icg, p,
                            [](int8_t v) { return static_cast<uint8_t>(static_cast<uint8_t>(v) ^ 0x80u); }, r_begin,
                            r_end, static_cast<uint8_t*>(xa));
  } else if (f == InputFormat::kI16) {
    const int16_t p = static_cast<int16_t>(pad);
    auto id = [](auto v) { return static_cast<int16_t>(v); };
    if (xd == DType::kUInt8)
      padded_hwc_t<int16_t>(g, nhwc, static_cast<const uint8_t*>(x), c_offset, icg, p, id, r_begin, r_end,
                            static_cast<int16_t*>(xa));
    else if (xd == DType::kInt16)
      padded_hwc_t<int16_t>(g, nhwc, static_cast<const int16_t*>(x), c_offset, icg, p, id, r_begin, r_end,
                            static_cast<int16_t*>(xa));
    else
      padded_hwc_t<int16_t>(g, nhwc, static_cast<const int8_t*>(x), c_offset, icg, p, id, r_begin, r_end,
                            static_cast<int16_t*>(xa));
  } else {
    padded_hwc_t<float>(g, nhwc, static_cast<const uint16_t*>(x), c_offset, icg, 0.0f,
                        [](uint16_t v) { return fp16_to_fp32(v); }, r_begin, r_end, static_cast<float*>(xa));
  }
}

void im2col_from_hwc(const ConvGeometry& g, int64_t icg, int64_t c1, InputFormat f, int32_t pad, const void* xa,
                     int64_t p_begin, int64_t p_end, void* xp) {
  if (f == InputFormat::kU8)
    im2col_hwc_t(g, icg, c1, static_cast<uint8_t>(pad), static_cast<const uint8_t*>(xa), p_begin, p_end,
                 static_cast<uint8_t*>(xp));
  else if (f == InputFormat::kI16)
    im2col_hwc_t(g, icg, c1, static_cast<int16_t>(pad), static_cast<const int16_t*>(xa), p_begin, p_end,
                 static_cast<int16_t*>(xp));
  else
    im2col_hwc_t(g, icg, c1, 0.0f, static_cast<const float*>(xa), p_begin, p_end, static_cast<float*>(xp));
}

namespace {

// Blocked [pixels][16] -> 16 channel planes, 16 / 8 / 4 pixels per block transpose.
template <class T>
void unpack_block(const T* src, int64_t pixels, int64_t nch, T* const* dst) {
  int64_t p = 0;
#if NPUEMU_X86
  if (sizeof(T) == 1 && nch == kC2) {
    for (; p + 16 <= pixels; p += 16) {
      __m128i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (p + i) * kC2));
      transpose16x16_u8(r);
      for (int c = 0; c < 16; ++c) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[c] + p), r[c]);
    }
  } else if (sizeof(T) == 2 && nch == kC2) {
    for (; p + 8 <= pixels; p += 8) {
      for (int half = 0; half < 2; ++half) {
        __m128i r[8];
        for (int i = 0; i < 8; ++i)
          r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (p + i) * kC2 + half * 8));
        transpose8x8_u16(r);
        for (int c = 0; c < 8; ++c) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[half * 8 + c] + p), r[c]);
      }
    }
  } else if (sizeof(T) == 4 && nch == kC2) {
    for (; p + 4 <= pixels; p += 4) {
      for (int q = 0; q < 4; ++q) {
        __m128i r[4];
        for (int i = 0; i < 4; ++i)
          r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (p + i) * kC2 + q * 4));
        transpose4x4_u32(r);
        for (int c = 0; c < 4; ++c) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst[q * 4 + c] + p), r[c]);
      }
    }
  }
#endif
  for (; p < pixels; ++p)
    for (int64_t c = 0; c < nch; ++c) dst[c][p] = src[p * kC2 + c];
}

}  // namespace

void unpack_block(const void* src, int64_t pixels, int64_t nch, void* const* dst, int elem) {
  switch (elem) {
    case 1: unpack_block(static_cast<const uint8_t*>(src), pixels, nch, reinterpret_cast<uint8_t* const*>(dst)); break;
    case 2: unpack_block(static_cast<const uint16_t*>(src), pixels, nch, reinterpret_cast<uint16_t* const*>(dst)); break;
    case 4: unpack_block(static_cast<const uint32_t*>(src), pixels, nch, reinterpret_cast<uint32_t* const*>(dst)); break;
    default: unpack_block(static_cast<const uint64_t*>(src), pixels, nch, reinterpret_cast<uint64_t* const*>(dst)); break;
  }
}

namespace {

template <class T>
void unpack_t(const T* yb, int64_t pixels, int64_t ocg, int64_t ob_begin, int64_t ob_end, T* yg) {
  for (int64_t ob = ob_begin; ob < ob_end; ++ob) {
    T* dst[kC2];
    const int64_t nch = ocg - ob * kC2 < kC2 ? ocg - ob * kC2 : kC2;
    for (int64_t c = 0; c < nch; ++c) dst[c] = yg + (ob * kC2 + c) * pixels;
    unpack_block(yb + ob * pixels * kC2, pixels, nch, dst);
  }
}

}  // namespace

void unpack_output_blocks(const void* yb, int64_t pixels, int64_t ocg, int elem, int64_t ob_begin, int64_t ob_end,
                          void* yg) {
  switch (elem) {
    case 1: unpack_t(static_cast<const uint8_t*>(yb), pixels, ocg, ob_begin, ob_end, static_cast<uint8_t*>(yg)); break;
    case 2: unpack_t(static_cast<const uint16_t*>(yb), pixels, ocg, ob_begin, ob_end, static_cast<uint16_t*>(yg)); break;
    case 4: unpack_t(static_cast<const uint32_t*>(yb), pixels, ocg, ob_begin, ob_end, static_cast<uint32_t*>(yg)); break;
    default: unpack_t(static_cast<const uint64_t*>(yb), pixels, ocg, ob_begin, ob_end, static_cast<uint64_t*>(yg)); break;
  }
}

}  // namespace direct
}  // namespace npuemu
