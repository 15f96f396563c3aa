// Reference pooling kernel: the executable specification of every pooling kernel.
//
// Plain loops over NCHW: for each output, the window's taps in (kh, kw) order; a tap outside the input
// is padding and is skipped (it never wins a maximum and adds nothing to a sum); the divisor of an
// average is counted tap by tap. The arithmetic of an output is pool_arith.h. Optimized kernels must be
// bit-identical.
#include "core/check.h"
#include "kernels/pool/pool.h"
#include "kernels/pool/pool_arith.h"

namespace npuemu {
namespace {

int32_t load_q(DType t, const void* p, int64_t i) {
  return t == DType::kUInt8 ? static_cast<const uint8_t*>(p)[i] : static_cast<const int8_t*>(p)[i];
}

class ReferencePlan final : public PoolPlan {
 public:
  explicit ReferencePlan(const PoolSpec& spec) : s_(spec) {}

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const PoolGeometry& g = s_.g;
    auto body = [&](int, int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane)
        for (int64_t oh = 0; oh < g.oh; ++oh)
          for (int64_t ow = 0; ow < g.ow; ++ow) output(x, y, plane, oh, ow);
    };
    CorePool::instance().run(cores, g.n * g.c, body);
  }

 private:
  // Whether tap position (ih, iw) counts towards the divisor under the spec's PoolCount.
  bool counted(int64_t ih, int64_t iw) const {
    const PoolGeometry& g = s_.g;
    switch (s_.count) {
      case PoolCount::kKernel: return true;
      case PoolCount::kPaddedExtent: return ih < g.h + g.pb && iw < g.w + g.pr;  // ih >= -pt, iw >= -pl always
      case PoolCount::kValid: break;
    }
    return ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
  }

  void output(const void* x, void* y, int64_t plane, int64_t oh, int64_t ow) const {
    const PoolGeometry& g = s_.g;
    const int64_t xbase = plane * g.h * g.w;
    const int64_t yi = (plane * g.oh + oh) * g.ow + ow;
    int16_t best = kKeyLowest;  // MaxPool
    int64_t isum = 0;           // quantized averages: sum of (x - x_zp), exact
    float fsum = 0.0f;          // float averages, in tap order from +0.0
    int64_t count = 0;
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      const int64_t ih = oh * g.sh - g.pt + kh * g.dh;
      for (int64_t kw = 0; kw < g.kw; ++kw) {
        const int64_t iw = ow * g.sw - g.pl + kw * g.dw;
        if (counted(ih, iw)) ++count;
        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;  // padding
        const int64_t xi = xbase + ih * g.w + iw;
        if (s_.kind == PoolKind::kMax) {
          const int16_t k = pool_key(s_.dtype, x, xi);
          best = k > best ? k : best;
        } else if (s_.dtype == DType::kFloat16) {
          fsum = fsum + fp16_to_fp32(static_cast<const uint16_t*>(x)[xi]);
        } else {
          const int32_t v = load_q(s_.dtype, x, xi);
          isum += v - s_.x_zp;
          fsum = fsum + avg_float_dequant(v, s_);
        }
      }
    }
    if (s_.kind == PoolKind::kMax) {
      pool_store_key(s_.dtype, y, yi, best);
      return;
    }
    if (s_.dtype == DType::kFloat16) {
      static_cast<uint16_t*>(y)[yi] = avg_fp16_finish(fsum, count);
      return;
    }
    int32_t v;
    if (s_.rounding == Rounding::kFixedPoint) v = avg_fixed(isum, count, s_);
    else if (g.whole_plane()) v = avg_float_global(isum, count, s_);
    else v = avg_float_finish(fsum, count, s_);
    if (s_.dtype == DType::kUInt8) static_cast<uint8_t*>(y)[yi] = static_cast<uint8_t>(v);
    else static_cast<int8_t*>(y)[yi] = static_cast<int8_t>(v);
  }

  PoolSpec s_;
};

class PoolReference final : public PoolKernel {
 public:
  std::string name() const override { return "pool_any_reference_scalar"; }
  std::string algo() const override { return "reference"; }
  Isa isa() const override { return Isa::kScalar; }
  bool supports(const PoolSpec&, std::string*) const override { return true; }
  std::unique_ptr<PoolPlan> plan(const PoolSpec& spec) const override { return std::make_unique<ReferencePlan>(spec); }
};

NPUEMU_REGISTER_POOL_KERNEL(PoolReference);

}  // namespace
}  // namespace npuemu
