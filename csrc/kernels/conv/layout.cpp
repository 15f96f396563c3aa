#include "kernels/conv/layout.h"

#include <cstring>

#include "core/cpu.h"
#include "quant/fp16.h"

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
  return L;
}

namespace {

template <class Dst, class Src, class Conv>
void pack_rows_t(const InputLayout& L, const ConvGeometry& g, const Src* xg, int64_t icg, Dst pad, Conv conv,
                 int64_t r_begin, int64_t r_end, Dst* xp) {
  const int64_t cols = L.sw * L.wq;  // phase-split columns per row (>= wp)
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t c1 = r / L.hp, row = r % L.hp;
    Dst* dst = xp + (c1 * L.hp + row) * cols * kC2;
    const int64_t h = row - L.pt;
    if (h < 0 || h >= g.h) {
      for (int64_t i = 0; i < cols * kC2; ++i) dst[i] = pad;
      continue;
    }
    for (int64_t c2 = 0; c2 < kC2; ++c2) {
      const int64_t c = c1 * kC2 + c2;
      const Src* src = c < icg ? xg + (c * g.h + h) * g.w : nullptr;
      if (L.sw == 1) {
        Dst* d = dst + c2;
        int64_t j = 0;
        for (; j < L.pl; ++j) d[j * kC2] = pad;
        if (src != nullptr)
          for (int64_t w = 0; w < g.w; ++w) d[(j + w) * kC2] = conv(src[w]);
        else
          for (int64_t w = 0; w < g.w; ++w) d[(j + w) * kC2] = pad;
        for (j += g.w; j < cols; ++j) d[j * kC2] = pad;
      } else {
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t phase = j / L.wq, col = j % L.wq;  // storage order: phase-major
          const int64_t pj = col * L.sw + phase;           // padded column
          const int64_t w = pj - L.pl;
          dst[j * kC2 + c2] = (src != nullptr && w >= 0 && w < g.w) ? conv(src[w]) : pad;
        }
      }
    }
  }
}

}  // namespace

void pack_input_rows(const InputLayout& L, const ConvGeometry& g, DType xd, const void* xg, int64_t icg, int32_t pad,
                     int64_t r_begin, int64_t r_end, void* xp) {
  if (L.elem == 1) {
    const uint8_t p = static_cast<uint8_t>(pad);
    if (xd == DType::kUInt8)
      pack_rows_t<uint8_t>(L, g, static_cast<const uint8_t*>(xg), icg, p, [](uint8_t v) { return v; }, r_begin, r_end,
                           static_cast<uint8_t*>(xp));
    else
      pack_rows_t<uint8_t>(L, g, static_cast<const int8_t*>(xg), icg, p,
                           [](int8_t v) { return static_cast<uint8_t>(static_cast<uint8_t>(v) ^ 0x80u); }, r_begin,
                           r_end, static_cast<uint8_t*>(xp));
  } else if (L.elem == 2) {
    const int16_t p = static_cast<int16_t>(pad);
    auto id = [](auto v) { return static_cast<int16_t>(v); };
    if (xd == DType::kUInt8)
      pack_rows_t<int16_t>(L, g, static_cast<const uint8_t*>(xg), icg, p, id, r_begin, r_end, static_cast<int16_t*>(xp));
    else if (xd == DType::kInt16)
      pack_rows_t<int16_t>(L, g, static_cast<const int16_t*>(xg), icg, p, id, r_begin, r_end, static_cast<int16_t*>(xp));
    else
      pack_rows_t<int16_t>(L, g, static_cast<const int8_t*>(xg), icg, p, id, r_begin, r_end, static_cast<int16_t*>(xp));
  } else {
    pack_rows_t<float>(L, g, static_cast<const uint16_t*>(xg), icg, 0.0f, [](uint16_t v) { return fp16_to_fp32(v); },
                       r_begin, r_end, static_cast<float*>(xp));
  }
}

namespace {
template <class T>
void unpack_t(const T* yb, int64_t pixels, int64_t ocg, int64_t ob_begin, int64_t ob_end, T* yg) {
  for (int64_t ob = ob_begin; ob < ob_end; ++ob) {
    const T* src = yb + ob * pixels * kC2;
    for (int64_t c2 = 0; c2 < kC2; ++c2) {
      const int64_t c = ob * kC2 + c2;
      if (c >= ocg) break;
      T* dst = yg + c * pixels;
      for (int64_t p = 0; p < pixels; ++p) dst[p] = src[p * kC2 + c2];
    }
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
