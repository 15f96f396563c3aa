// Depthwise convolution driver: group == input channels == output channels (MobileNet-style layers).
// The general direct kernel would use one of 16 output lanes per block here; these kernels put 16
// channels in the lanes instead. Same packed input, zero-point folding and output stages as the
// direct kernels (direct.h), so the results are bit-identical to the reference.
#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/memory.h"
#include "kernels/conv/direct.h"
#include "kernels/conv/layout.h"
#include "quant/fp16.h"

namespace npuemu {
namespace direct {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

class DepthwisePlan final : public ConvPlan {
 public:
  DepthwisePlan(const ConvSpec& spec, const ConvData& d, MacType mac, const DwTable* tab)
      : spec_(spec), mac_(mac), tab_(tab), fmt_(input_format(mac)) {
    const ConvGeometry& g = spec.g;
    g1_ = g;
    g1_.group = 1;  // all channels are packed as one block sequence
    g1_.oc = g.c;
    obs_ = ceil_div(g.c, kC2);
    layout_ = make_input_layout(g1_, fmt_);
    for (int64_t kh = 0; kh < g.kh; ++kh)
      for (int64_t kw = 0; kw < g.kw; ++kw) tap_off_.push_back(layout_.tap_offset(kh * g.dh, kw * g.dw));
    mr_ = static_cast<int>(std::min<int64_t>(tab->mr_max, g.ow));
    rows_per_task_ = std::min<int64_t>(g.oh, std::max<int64_t>(1, ceil_div(16, g.ow)));
    tasks_per_block_ = ceil_div(g.oh, rows_per_task_);
    const int64_t ntaps = g.kh * g.kw;
    w_ = Buffer(static_cast<size_t>(obs_ * ntaps * kC2 * 4));
    std::memset(w_.data(), 0, w_.size());
    std::vector<int64_t> wsum(static_cast<size_t>(g.c), 0);
    for (int64_t c = 0; c < g.c; ++c) {
      for (int64_t t = 0; t < ntaps; ++t) {
        const int64_t o = ((c / kC2) * ntaps + t) * kC2 + c % kC2;
        if (mac == MacType::kF32) {
          w_.data<float>()[o] = fp16_to_fp32(static_cast<const uint16_t*>(d.w)[c * ntaps + t]);
        } else {
          const int64_t v = weight_minus_zp(spec, d, c, c * ntaps + t);
          w_.data<int32_t>()[o] = static_cast<int32_t>(static_cast<uint16_t>(static_cast<int16_t>(v)));
          wsum[c] += v;
        }
      }
    }
    const int64_t zp_in = packed_zero_point(spec, d, mac);
    pad_value_ = static_cast<int32_t>(zp_in);
    plan_row_classes(g, ntaps, zp_in);
    Epilogue e;  // one group of all channels: the lanes are channels
    build_epilogue(spec, d, wsum, zp_in, false, &e, 1, g.c);
    epi_ = std::move(e.blocks);
    ch_ = std::move(e.ch);
    epi_args_ = e.args;
  }

  size_t packed_bytes() const override { return w_.size() + epi_.size() + corr_.size(); }

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const ConvGeometry& g = spec_.g;
    uint8_t* xp = Workspace::local().slot<uint8_t>(kSlotInput, static_cast<size_t>(layout_.bytes));
    const int64_t x_img = g.c * g.h * g.w * static_cast<int64_t>(dtype_size(spec_.x_dtype));
    const int64_t y_img = g.oc * g.oh * g.ow * static_cast<int64_t>(dtype_size(spec_.y_dtype));
    CorePool& pool = CorePool::instance();
    for (int64_t n = 0; n < g.n; ++n) {
      const uint8_t* xn = static_cast<const uint8_t*>(x) + n * x_img;
      pack_input(layout_, g1_, spec_.x_dtype, spec_.nhwc, xn, 0, g.c, pad_value_, cores, xp);
      uint8_t* yn = static_cast<uint8_t*>(y) + n * y_img;
      auto compute = [&](int, int64_t b, int64_t e) { compute_rows(xp, yn, b, e); };
      pool.run(cores, obs_ * tasks_per_block_, compute);
    }
  }

 private:
  void compute_rows(const uint8_t* xp, uint8_t* y_img, int64_t b, int64_t e) const {
    const ConvGeometry& g = spec_.g;
    const int64_t oe = static_cast<int64_t>(dtype_size(spec_.y_dtype));
    alignas(64) uint8_t acc[kMaxMr * kC2 * 8];
    uint8_t* rowbuf =
        Workspace::local().slot<uint8_t>(kSlotTile, static_cast<size_t>(rows_per_task_ * g.ow * kC2 * oe));
    DwArgs a;
    EpiArgs ea = epi_args_;
    for (int64_t task = b; task < e; ++task) {
      const int64_t ob = task / tasks_per_block_, r0 = (task % tasks_per_block_) * rows_per_task_;
      const int64_t nrows = std::min<int64_t>(rows_per_task_, g.oh - r0), np = nrows * g.ow;
      const uint8_t* wb = w_.data<uint8_t>() + ob * g.kh * g.kw * kC2 * 4;
      a.block = epi_.data<EpiBlock>() + ob;
      ea.blocks = a.block;
      ea.ch = ch_.data() + ob * kC2;
      ea.valid_channels = static_cast<int>(std::min<int64_t>(kC2, g.c - ob * kC2));
      for (int64_t r = 0; r < nrows; ++r) {
        const uint8_t* xrow = xp + ob * layout_.c1_stride + (r0 + r) * g.sh * layout_.row_pitch;
        const RowClass& rc = classes_[static_cast<size_t>(row_class_[static_cast<size_t>(r0 + r)])];
        a.tap_off = tap_off_.data() + rc.t0;
        a.ntaps = static_cast<int>(rc.t1 - rc.t0);
        a.w = wb + rc.t0 * kC2 * 4;
        a.init = corr_.data<int32_t>() + (rc.index * obs_ + ob) * kC2;
        for (int64_t ow0 = 0; ow0 < g.ow; ow0 += mr_) {
          const int mr = static_cast<int>(std::min<int64_t>(mr_, g.ow - ow0));
          a.x = xrow + ow0 * kC2 * layout_.elem;
          a.mr = mr;
          tab_->dw[mr - 1](a, acc);
          tab_->epi(acc, mr, 1, ea, rowbuf + (r * g.ow + ow0) * kC2 * oe, np * kC2 * oe);
        }
      }
      const int64_t c0 = ob * kC2, nch = std::min<int64_t>(kC2, g.c - c0), p0 = r0 * g.ow;
      if (spec_.nhwc) {
        for (int64_t p = 0; p < np; ++p)
          std::memcpy(y_img + ((p0 + p) * g.oc + c0) * oe, rowbuf + p * kC2 * oe, static_cast<size_t>(nch * oe));
      } else {
        void* dst[kC2];
        for (int64_t c = 0; c < nch; ++c) dst[c] = y_img + ((c0 + c) * g.oh * g.ow + p0) * oe;
        unpack_block(rowbuf, np, nch, dst, static_cast<int>(oe));
      }
    }
  }

  // Output rows at the top and bottom edges whose window has whole kernel rows in the padding (a 5x5
  // kernel on a 2-row input reads 3 padded rows of 5 per output row). Integer kernels skip those taps:
  // each would add pad * w (pad: the packed input zero point), so the accumulators start at the sum of
  // those products instead -- the same integer sum. Float16 kernels keep every tap (their FMA chain
  // order is the contract, and fma(0, w, -0) is +0).
  struct RowClass {
    int64_t t0, t1;  // taps [t0, t1) are read (kernel rows first: a row range is a tap range)
    int64_t index;   // of its start vectors in corr_
  };
  void plan_row_classes(const ConvGeometry& g, int64_t ntaps, int64_t pad) {
    classes_.push_back({0, ntaps, 0});
    row_class_.assign(static_cast<size_t>(g.oh), 0);
    if (mac_ == MacType::kU8S8_I32) {
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        const int64_t iy0 = oh * g.sh - g.pt;
        int64_t lo = 0, hi = g.kh;
        while (lo < g.kh && iy0 + lo * g.dh < 0) ++lo;
        while (hi > lo && iy0 + (hi - 1) * g.dh >= g.h) --hi;
        const int64_t t0 = lo * g.kw, t1 = hi * g.kw;
        size_t k = 0;
        while (k < classes_.size() && (classes_[k].t0 != t0 || classes_[k].t1 != t1)) ++k;
        if (k == classes_.size()) classes_.push_back({t0, t1, static_cast<int64_t>(k)});
        row_class_[static_cast<size_t>(oh)] = static_cast<int32_t>(k);
      }
    }
    const int64_t ncls = static_cast<int64_t>(classes_.size());
    corr_ = Buffer(static_cast<size_t>(ncls * obs_ * kC2 * 4));
    std::memset(corr_.data(), 0, corr_.size());
    int32_t* corr = corr_.data<int32_t>();
    for (const RowClass& rc : classes_)  // class 0 (all float16 rows) skips nothing: its start stays 0
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t t = 0; t < ntaps; ++t)
          if (t < rc.t0 || t >= rc.t1) {  // |pad * w| <= 255 * 255 per tap: no int32 overflow for any kernel
            const int64_t o = ((c / kC2) * ntaps + t) * kC2 + c % kC2;
            const int32_t v = static_cast<int16_t>(w_.data<int32_t>()[o] & 0xFFFF);  // w - w_zp
            corr[(rc.index * obs_ + c / kC2) * kC2 + c % kC2] += static_cast<int32_t>(pad) * v;
          }
  }

  ConvSpec spec_;
  MacType mac_;
  const DwTable* tab_;
  InputFormat fmt_;
  ConvGeometry g1_;
  int64_t obs_ = 0;
  int mr_ = 1;
  int64_t rows_per_task_ = 1, tasks_per_block_ = 0;  // short rows: several output rows per task
  InputLayout layout_;
  std::vector<int64_t> tap_off_;
  Buffer w_, epi_;
  std::vector<RequantChannel> ch_;
  EpiArgs epi_args_{};
  int32_t pad_value_ = 0;
  std::vector<RowClass> classes_;   // [0]: every tap
  std::vector<int32_t> row_class_;  // per output row
  Buffer corr_;                     // [class][block][16] int32 accumulator start
};

class DepthwiseKernel : public ConvKernel {
 public:
  DepthwiseKernel(const char* name, Isa isa, MacType mac, double macs_per_ns)
      : name_(name), isa_(isa), mac_(mac), macs_per_ns_(macs_per_ns) {}
  std::string name() const override { return name_; }
  std::string algo() const override { return "direct"; }
  Isa isa() const override { return isa_; }
  bool handles(ConvFamily f) const override {
    return mac_ == MacType::kF32 ? f == ConvFamily::kFp16 : f == ConvFamily::kInt8;
  }
  bool supports_nhwc() const override { return true; }
  bool supports(const ConvSpec& s, std::string* why) const override {
    if (table() == nullptr) {
      *why = "not built for this ISA";
      return false;
    }
    if (!s.g.depthwise()) {
      *why = "needs a depthwise convolution (group == input channels == output channels)";
      return false;
    }
    if (mac_ == MacType::kU8S8_I32 &&
        (s.has_w_zero_point || (s.w_dtype != DType::kInt8 && s.w_dtype != DType::kInt4))) {
      *why = "needs int8/int4 weights with zero w_zero_point";
      return false;
    }
    return true;
  }
  double cost(const ConvSpec& s) const override {
    return static_cast<double>(s.g.macs()) / macs_per_ns_ + conv_memory_cost_ns(s) + 1000.0;
  }
  std::unique_ptr<ConvPlan> plan(const ConvSpec& s, const ConvData& d) const override {
    return std::make_unique<DepthwisePlan>(s, d, mac_, table());
  }

 private:
  const DwTable* table() const {
    switch (isa_) {
      case Isa::kScalar: return dw_ukernels_scalar(mac_);
      case Isa::kAvx2: return dw_ukernels_avx2(mac_);
      case Isa::kAvx512Vnni: return dw_ukernels_avx512(mac_);
    }
    return nullptr;
  }
  const char* name_;
  Isa isa_;
  MacType mac_;
  double macs_per_ns_;
};

#define NPUEMU_DW_KERNEL(cls, name, isa, mac, rate)       \
  class cls final : public DepthwiseKernel {             \
   public:                                               \
    cls() : DepthwiseKernel(name, isa, mac, rate) {}     \
  };                                                     \
  NPUEMU_REGISTER_CONV_KERNEL(cls)

NPUEMU_DW_KERNEL(Int8DwScalar, "conv2d_int8_depthwise_scalar", Isa::kScalar, MacType::kU8S8_I32, 1.0);
NPUEMU_DW_KERNEL(Int8DwAvx512, "conv2d_int8_depthwise_avx512vnni", Isa::kAvx512Vnni, MacType::kU8S8_I32, 30.0);
NPUEMU_DW_KERNEL(Int8DwAvx2, "conv2d_int8_depthwise_avx2", Isa::kAvx2, MacType::kU8S8_I32, 15.0);
NPUEMU_DW_KERNEL(Fp16DwAvx2, "conv2d_fp16_depthwise_avx2", Isa::kAvx2, MacType::kF32, 15.0);
NPUEMU_DW_KERNEL(Fp16DwScalar, "conv2d_fp16_depthwise_scalar", Isa::kScalar, MacType::kF32, 0.5);
NPUEMU_DW_KERNEL(Fp16DwAvx512, "conv2d_fp16_depthwise_avx512vnni", Isa::kAvx512Vnni, MacType::kF32, 20.0);

}  // namespace
}  // namespace direct
}  // namespace npuemu
