// Portable micro-kernels of the direct convolution (any CPU). Same packed layouts and the same
// arithmetic as the SIMD kernels; the lane loops are written so that compilers vectorize them for the
// baseline instruction set. The output stage calls requantize(), the scalar definition itself.
#include <cmath>
#include <cstring>

#include "kernels/conv/direct.h"
#include "quant/fp16.h"

namespace npuemu {
namespace direct {
namespace {

void mac_u8s8(const MacArgs& a, void* accv) {
  uint32_t* acc = static_cast<uint32_t*>(accv);  // int32 accumulators with defined wrap-around
  const int nob = a.nob, mr = a.mr, width = nob * kC2;
  std::memset(acc, 0, sizeof(uint32_t) * static_cast<size_t>(mr * width));
  const int8_t* w = static_cast<const int8_t*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < a.nc1; ++c, xt += a.c1_stride) {
      for (int q = 0; q < 4; ++q, w += nob * kC2 * 4) {
        for (int p = 0; p < mr; ++p) {
          const uint8_t* xv = xt + p * kC2 + q * 4;
          const int32_t x0 = xv[0], x1 = xv[1], x2 = xv[2], x3 = xv[3];
          uint32_t* ap = acc + p * width;
          for (int l = 0; l < width; ++l) {
            const int8_t* wl = w + l * 4;
            ap[l] += static_cast<uint32_t>(x0 * wl[0] + x1 * wl[1] + x2 * wl[2] + x3 * wl[3]);
          }
        }
      }
    }
  }
}

void mac_i16_i64(const MacArgs& a, void* accv) {
  int64_t* acc = static_cast<int64_t*>(accv);
  const int nob = a.nob, mr = a.mr, width = nob * kC2;
  std::memset(acc, 0, sizeof(int64_t) * static_cast<size_t>(mr * width));
  const int16_t* w = static_cast<const int16_t*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < a.nc1; ++c, xt += a.c1_stride) {
      for (int q = 0; q < 8; ++q, w += nob * kC2 * 2) {
        for (int p = 0; p < mr; ++p) {
          const int16_t* xv = reinterpret_cast<const int16_t*>(xt) + p * kC2 + q * 2;
          const int32_t x0 = xv[0], x1 = xv[1];
          int64_t* ap = acc + p * width;
          for (int l = 0; l < width; ++l)
            ap[l] += static_cast<int64_t>(x0 * w[l * 2]) + static_cast<int64_t>(x1 * w[l * 2 + 1]);
        }
      }
    }
  }
}

// fp32 FMA chain per output: starts at the bias, then taps (kh, kw) and input channels in order.
void mac_f32(const MacArgs& a, void* accv) {
  float* acc = static_cast<float*>(accv);
  const int nob = a.nob, mr = a.mr, width = nob * kC2;
  for (int p = 0; p < mr; ++p)
    for (int b = 0; b < nob; ++b)
      for (int l = 0; l < kC2; ++l) acc[p * width + b * kC2 + l] = a.blocks[b].bias_f[l];
  const float* w = static_cast<const float*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    for (int c = 0; c < a.nc1; ++c, xt += a.c1_stride) {
      for (int c2 = 0; c2 < kC2; ++c2, w += width) {
        for (int p = 0; p < mr; ++p) {
          const float xv = reinterpret_cast<const float*>(xt)[p * kC2 + c2];
          float* ap = acc + p * width;
          for (int l = 0; l < width; ++l) ap[l] = std::fmaf(xv, w[l], ap[l]);
        }
      }
    }
  }
}

template <class T>
void store_elem(void* y, int64_t i, int64_t v) {
  static_cast<T*>(y)[i] = static_cast<T>(v);
}

void store_int(void* y, int elem, int64_t i, int64_t v) {
  switch (elem) {
    case 1: store_elem<int8_t>(y, i, v); break;
    case 2: store_elem<int16_t>(y, i, v); break;
    case 4: store_elem<int32_t>(y, i, v); break;
    default: store_elem<int64_t>(y, i, v); break;
  }
}

int64_t wrap32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

}  // namespace

// Output stage for int32 / int64 / fp32 tiles, one element at a time with the scalar definitions.
void epi_portable(const void* acc, int mr, int nob, const EpiArgs& e, void* y, int64_t y_ob_stride) {
  const int width = nob * kC2;
  for (int b = 0; b < nob; ++b) {
    const EpiBlock& blk = e.blocks[b];
    uint8_t* yb = static_cast<uint8_t*>(y) + b * y_ob_stride;
    for (int p = 0; p < mr; ++p) {
      for (int l = 0; l < kC2; ++l) {
        const int idx = p * width + b * kC2 + l;
        const int64_t oi = static_cast<int64_t>(p) * kC2 + l;
        if (e.kind == EpiKind::kFp16) {
          const float v = apply_activation_f32(static_cast<const float*>(acc)[idx], e.act);
          reinterpret_cast<uint16_t*>(yb)[oi] = fp32_to_fp16(v);
          continue;
        }
        int64_t v;
        if (e.acc64) {
          v = static_cast<const int64_t*>(acc)[idx] + blk.bias64[l];
          if (e.wrap32) v = wrap32(v);
        } else {
          v = wrap32(static_cast<int64_t>(static_cast<const int32_t*>(acc)[idx]) + blk.bias[l]);
        }
        if (e.kind == EpiKind::kRaw32 || e.kind == EpiKind::kRaw64) {
          store_int(yb, e.out_elem, oi, v);
        } else {
          if (b * kC2 + l >= e.valid_channels) continue;
          store_int(yb, e.out_elem, oi, requantize(v, e.ch[b * kC2 + l], e.rounding, e.zp));
        }
      }
    }
  }
}

namespace {
// The portable kernels take the tile shape at run time: every (nob, mr) slot points at them.
UkernelTable make_table(MacFn fn, EpiFn epi) {
  UkernelTable t;
  for (int nob = 1; nob <= kMaxNob; ++nob) {
    t.mr_max[nob - 1] = 8;
    for (int mr = 1; mr <= kMaxMr; ++mr) t.mac[nob - 1][mr - 1] = fn;
  }
  t.epi = epi;
  return t;
}
}  // namespace

const UkernelTable* ukernels_scalar(MacType m) {
  static const UkernelTable u8 = make_table(mac_u8s8, epi_portable);
  static const UkernelTable i64 = make_table(mac_i16_i64, epi_portable);
  static const UkernelTable f32 = make_table(mac_f32, epi_portable);
  switch (m) {
    case MacType::kU8S8_I32: return &u8;
    case MacType::kI16_I64: return &i64;
    case MacType::kF32: return &f32;
    default: return nullptr;
  }
}

}  // namespace direct
}  // namespace npuemu

namespace npuemu {
namespace direct {
namespace {

void dw_u8(const DwArgs& a, void* accv) {
  uint32_t* acc = static_cast<uint32_t*>(accv);
  for (int p = 0; p < a.mr; ++p)
    for (int l = 0; l < kC2; ++l) acc[p * kC2 + l] = static_cast<uint32_t>(a.init[l]);
  const int32_t* w = static_cast<const int32_t*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const uint8_t* xt = static_cast<const uint8_t*>(a.x) + a.tap_off[t];
    const int32_t* wt = w + t * kC2;
    for (int p = 0; p < a.mr; ++p)
      for (int l = 0; l < kC2; ++l)
        acc[p * kC2 + l] += static_cast<uint32_t>(xt[p * kC2 + l] * static_cast<int16_t>(wt[l] & 0xFFFF));
  }
}

void dw_f32(const DwArgs& a, void* accv) {
  float* acc = static_cast<float*>(accv);
  for (int p = 0; p < a.mr; ++p)
    for (int l = 0; l < kC2; ++l) acc[p * kC2 + l] = a.block->bias_f[l];
  const float* w = static_cast<const float*>(a.w);
  for (int t = 0; t < a.ntaps; ++t) {
    const float* xt = reinterpret_cast<const float*>(static_cast<const uint8_t*>(a.x) + a.tap_off[t]);
    for (int p = 0; p < a.mr; ++p)
      for (int l = 0; l < kC2; ++l) acc[p * kC2 + l] = std::fmaf(xt[p * kC2 + l], w[t * kC2 + l], acc[p * kC2 + l]);
  }
}

DwTable make_dw(DwFn fn) {
  DwTable t;
  for (int mr = 1; mr <= 8; ++mr) t.dw[mr - 1] = fn;
  t.mr_max = 8;
  t.epi = epi_portable;
  return t;
}

}  // namespace

const DwTable* dw_ukernels_scalar(MacType m) {
  static const DwTable u8 = make_dw(dw_u8), f32 = make_dw(dw_f32);
  return m == MacType::kU8S8_I32 ? &u8 : m == MacType::kF32 ? &f32 : nullptr;
}

}  // namespace direct
}  // namespace npuemu
