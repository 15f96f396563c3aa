// Reference convolution: the executable specification of every convolution kernel.
//
// Plain loops over NCHW / OIHW, no packing, no SIMD. Integer families accumulate exactly in int64 and
// then apply the family's accumulator width (int8 family: wrap to int32, two's complement; int16
// family: int64). The fp16 family accumulates in fp32 with one fused multiply-add per tap, in the order
// kh, kw, then input channel, starting from the bias; padded taps are multiplied as zeros. Optimized
// kernels must be bit-identical to this (Winograd fp16: within the documented tolerance).
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/conv/conv.h"
#include "quant/fp16.h"

namespace npuemu {
namespace {

template <class T>
int64_t load_int(const void* p, int64_t i) {
  return static_cast<int64_t>(static_cast<const T*>(p)[i]);
}

int64_t load_as_int(DType t, const void* p, int64_t i) {
  switch (t) {
    case DType::kUInt8: return load_int<uint8_t>(p, i);
    case DType::kInt8: case DType::kInt4: return load_int<int8_t>(p, i);
    case DType::kInt16: return load_int<int16_t>(p, i);
    default: return 0;
  }
}

void store_int(DType t, void* p, int64_t i, int64_t v) {
  switch (t) {
    case DType::kUInt8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
    case DType::kInt8: case DType::kInt4: static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); break;
    case DType::kInt16: static_cast<int16_t*>(p)[i] = static_cast<int16_t>(v); break;
    case DType::kInt32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::kInt64: static_cast<int64_t*>(p)[i] = v; break;
    default: break;
  }
}

// Two's-complement wrap of an exact sum to the int32 accumulator.
int64_t wrap_int32(int64_t v) { return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(v))); }

class ReferencePlan final : public ConvPlan {
 public:
  // Flat index of (n, c, h, w) in the input / output layout (NCHW or NHWC).
  int64_t xi(int64_t n, int64_t c, int64_t h, int64_t w) const {
    const ConvGeometry& g = spec_.g;
    return spec_.nhwc ? ((n * g.h + h) * g.w + w) * g.c + c : ((n * g.c + c) * g.h + h) * g.w + w;
  }
  int64_t yi(int64_t n, int64_t c, int64_t h, int64_t w) const {
    const ConvGeometry& g = spec_.g;
    return spec_.nhwc ? ((n * g.oh + h) * g.ow + w) * g.oc + c : ((n * g.oc + c) * g.oh + h) * g.ow + w;
  }

  ReferencePlan(const ConvSpec& spec, const ConvData& data) : spec_(spec), data_(data) {
    const ConvGeometry& g = spec.g;
    const int64_t nw = g.oc * g.icg() * g.kh * g.kw;
    const int64_t per_oc = g.icg() * g.kh * g.kw;
    if (spec.family == ConvFamily::kFp16) {
      wf_.resize(static_cast<size_t>(nw));
      for (int64_t i = 0; i < nw; ++i) wf_[i] = fp16_to_fp32(static_cast<const uint16_t*>(data.w)[i]);
    } else {
      wi_.resize(static_cast<size_t>(nw));
      for (int64_t i = 0; i < nw; ++i) wi_[i] = load_as_int(spec.w_dtype, data.w, i) - data.w_zp[i / per_oc];
    }
    data_.w = nullptr;  // not valid after plan()
  }

  size_t packed_bytes() const override { return wi_.size() * sizeof(int64_t) + wf_.size() * sizeof(float); }

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const ConvGeometry& g = spec_.g;
    auto body = [&](int, int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / g.oc, oc = item % g.oc;
        if (spec_.family == ConvFamily::kFp16)
          run_fp16(static_cast<const uint16_t*>(x), static_cast<uint16_t*>(y), n, oc);
        else
          run_int(x, y, n, oc);
      }
    };
    CorePool::instance().run(cores, g.n * g.oc, body);
  }

 private:
  void run_int(const void* x, void* y, int64_t n, int64_t oc) const {
    const ConvGeometry& g = spec_.g;
    const int64_t icg = g.icg(), grp = oc / g.ocg();
    const int64_t* w = wi_.data() + oc * icg * g.kh * g.kw;
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        int64_t acc = 0;
        for (int64_t kh = 0; kh < g.kh; ++kh) {
          const int64_t ih = oh * g.sh - g.pt + kh * g.dh;
          for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t iw = ow * g.sw - g.pl + kw * g.dw;
            if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;  // padding == x_zp: contributes 0
            for (int64_t ic = 0; ic < icg; ++ic) {
              acc += (load_as_int(spec_.x_dtype, x, xi(n, grp * icg + ic, ih, iw)) - data_.x_zp) *
                     w[(ic * g.kh + kh) * g.kw + kw];
            }
          }
        }
        acc += data_.bias[oc];
        if (spec_.family == ConvFamily::kInt8) acc = wrap_int32(acc);
        const int64_t o = yi(n, oc, oh, ow);
        if (spec_.requant)
          store_int(spec_.y_dtype, y, o, requantize(acc, data_.os.ch[oc], data_.os.rounding, data_.os.zp));
        else
          store_int(spec_.y_dtype, y, o, acc);
      }
    }
  }

  void run_fp16(const uint16_t* x, uint16_t* y, int64_t n, int64_t oc) const {
    const ConvGeometry& g = spec_.g;
    const int64_t icg = g.icg(), grp = oc / g.ocg();
    const float* w = wf_.data() + oc * icg * g.kh * g.kw;
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        float acc = data_.bias_f[oc];
        for (int64_t kh = 0; kh < g.kh; ++kh) {
          const int64_t ih = oh * g.sh - g.pt + kh * g.dh;
          for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t iw = ow * g.sw - g.pl + kw * g.dw;
            const bool inside = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
            for (int64_t ic = 0; ic < icg; ++ic) {
              const float xv = inside ? fp16_to_fp32(x[xi(n, grp * icg + ic, ih, iw)]) : 0.0f;
              acc = std::fmaf(xv, w[(ic * g.kh + kh) * g.kw + kw], acc);
            }
          }
        }
        y[yi(n, oc, oh, ow)] = fp32_to_fp16(apply_activation_f32(acc, spec_.act));
      }
    }
  }

  ConvSpec spec_;
  ConvData data_;
  std::vector<int64_t> wi_;
  std::vector<float> wf_;
};

class ConvReference final : public ConvKernel {
 public:
  std::string name() const override { return "conv2d_any_reference_scalar"; }
  bool handles(ConvFamily) const override { return true; }  // serves every family
  std::string algo() const override { return "reference"; }
  Isa isa() const override { return Isa::kScalar; }
  bool supports(const ConvSpec&, std::string*) const override { return true; }
  bool supports_nhwc() const override { return true; }
  double cost(const ConvSpec& spec) const override { return 5.0 * static_cast<double>(spec.g.macs()) + 1e9; }
  std::unique_ptr<ConvPlan> plan(const ConvSpec& spec, const ConvData& data) const override {
    return std::make_unique<ReferencePlan>(spec, data);
  }
};

}  // namespace

NPUEMU_REGISTER_CONV_KERNEL(ConvReference);

}  // namespace npuemu
