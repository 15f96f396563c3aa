// Direct convolution driver: packing, tiling, multi-core split and the kernels it registers.
// See direct.h for the layouts and the CNA / DPU split.
#include "kernels/conv/direct.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/memory.h"
#include "kernels/conv/layout.h"
#include "quant/fp16.h"

namespace npuemu {
namespace direct {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output-channel blocking: NOB blocks of 16 channels per tile and the pixel tile MR that keeps
// MR * NOB accumulators plus NOB weight vectors in registers.
struct Tiling {
  int nob = 1, mr = 1;
};

Tiling choose_tiling(const UkernelTable& t, int64_t obg, int64_t ow) {
  // Prefer the configuration with the most MACs per weight load that still fills a row well.
  Tiling best;
  double best_score = -1;
  for (int nob = 1; nob <= kMaxNob; ++nob) {
    if (t.mr_max[nob - 1] == 0 || nob > obg) continue;
    const int mr = static_cast<int>(std::min<int64_t>(t.mr_max[nob - 1], ow));
    // useful fraction of the output-channel blocks and of the pixel tiles
    const double oc_eff = static_cast<double>(obg) / static_cast<double>(ceil_div(obg, nob) * nob);
    const double px_eff = static_cast<double>(ow) / static_cast<double>(ceil_div(ow, mr) * mr);
    const double regs = static_cast<double>(mr * nob);  // independent accumulators (latency hiding)
    const double score = oc_eff * (0.6 + 0.4 * px_eff) * std::min(1.0, regs / 16.0) * (1.0 + 0.02 * nob);
    if (score > best_score) {
      best_score = score;
      best.nob = nob;
      best.mr = mr;
    }
  }
  return best;
}

class DirectPlan final : public ConvPlan {
 public:
  DirectPlan(const ConvSpec& spec, const ConvData& data, MacType mac, const UkernelTable* tab)
      : spec_(spec), mac_(mac), tab_(tab), fmt_(input_format(mac)) {
    const ConvGeometry& g = spec.g;
    icg_ = g.icg();
    ocg_ = g.ocg();
    c1_ = ceil_div(icg_, kC2);
    obg_ = ceil_div(ocg_, kC2);
    const Tiling t = choose_tiling(*tab, obg_, g.ow);
    nob_ = t.nob;
    mr_ = t.mr;
    og_ = ceil_div(obg_, nob_);
    layout_ = make_input_layout(g, fmt_);
    for (int64_t kh = 0; kh < g.kh; ++kh)
      for (int64_t kw = 0; kw < g.kw; ++kw) tap_off_.push_back(layout_.tap_offset(kh * g.dh, kw * g.dw));
    pack_weights(data);
    build_epilogue(data);
  }

  size_t packed_bytes() const override { return w_packed_.size() + epi_.size(); }

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const ConvGeometry& g = spec_.g;
    Workspace& ws = Workspace::local();
    uint8_t* xp = ws.slot<uint8_t>(kSlotInput, static_cast<size_t>(layout_.bytes));
    const int64_t out_elem = out_elem_bytes();
    const int64_t blk_bytes = obg_ * g.oh * g.ow * kC2 * out_elem;
    uint8_t* yb = ws.slot<uint8_t>(kSlotOutput, static_cast<size_t>(blk_bytes));
    const int64_t x_img = g.c * g.h * g.w * static_cast<int64_t>(dtype_size(spec_.x_dtype));
    const int64_t y_img = g.oc * g.oh * g.ow * out_elem;
    CorePool& pool = CorePool::instance();
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t grp = 0; grp < g.group; ++grp) {
        const uint8_t* xg = static_cast<const uint8_t*>(x) + n * x_img +
                            grp * icg_ * g.h * g.w * static_cast<int64_t>(dtype_size(spec_.x_dtype));
        auto pack = [&](int, int64_t b, int64_t e) {
          pack_input_rows(layout_, g, spec_.x_dtype, xg, icg_, pad_value_, b, e, xp);
        };
        pool.run(cores, layout_.c1 * layout_.hp, pack);
        auto compute = [&](int, int64_t b, int64_t e) { compute_rows(grp, xp, yb, b, e); };
        pool.run(cores, og_ * g.oh, compute);
        uint8_t* yg = static_cast<uint8_t*>(y) + n * y_img + grp * ocg_ * g.oh * g.ow * out_elem;
        auto unpack = [&](int, int64_t b, int64_t e) {
          unpack_output_blocks(yb, g.oh * g.ow, ocg_, static_cast<int>(out_elem), b, e, yg);
        };
        pool.run(cores, obg_, unpack);
      }
    }
  }

 private:
  int64_t out_elem_bytes() const { return static_cast<int64_t>(dtype_size(spec_.y_dtype)); }

  // Computes output rows [b, e) of the (og, oh) task space of group grp into the blocked output.
  void compute_rows(int64_t grp, const uint8_t* xp, uint8_t* yb, int64_t b, int64_t e) const {
    const ConvGeometry& g = spec_.g;
    const int64_t out_elem = out_elem_bytes();
    alignas(64) uint8_t acc[kMaxMr * kMaxNob * kC2 * 8];
    MacArgs a;
    a.tap_off = tap_off_.data();
    a.ntaps = static_cast<int>(tap_off_.size());
    a.nc1 = static_cast<int>(c1_);
    a.c1_stride = layout_.c1_stride;
    EpiArgs ea = epi_args_;
    for (int64_t task = b; task < e; ++task) {
      const int64_t og = task / g.oh, oh = task % g.oh;
      const int64_t ob0 = og * nob_;
      const int nob = static_cast<int>(std::min<int64_t>(nob_, obg_ - ob0));
      a.w = w_packed_.data<uint8_t>() + w_offset_[grp * og_ + og];
      ea.blocks = epi_.data<EpiBlock>() + grp * obg_ + ob0;
      ea.ch = ch_.data() + (grp * obg_ + ob0) * kC2;
      ea.valid_channels = static_cast<int>(std::min<int64_t>(nob * kC2, ocg_ - ob0 * kC2));
      const uint8_t* xrow = xp + oh * g.sh * layout_.row_pitch;
      for (int64_t ow0 = 0; ow0 < g.ow; ow0 += mr_) {
        const int mr = static_cast<int>(std::min<int64_t>(mr_, g.ow - ow0));
        a.x = xrow + ow0 * kC2 * layout_.elem;
        a.blocks = ea.blocks;
        a.mr = mr;
        a.nob = nob;
        tab_->mac[nob - 1][mr - 1](a, acc);
        uint8_t* yt = yb + ((ob0 * g.oh + oh) * g.ow + ow0) * kC2 * out_elem;
        tab_->epi(acc, mr, nob, ea, yt, g.oh * g.ow * kC2 * out_elem);
      }
    }
  }

  // Packs OIHW weights of every group into the micro-kernel order (direct.h) and computes the
  // per-channel weight sums used for the zero-point correction.
  void pack_weights(const ConvData& d) {
    const ConvGeometry& g = spec_.g;
    const int64_t ntaps = g.kh * g.kw;
    const int64_t welem = mac_ == MacType::kU8S8_I32 ? 1 : mac_ == MacType::kF32 ? 4 : 2;
    const int64_t per_og_full = ntaps * c1_ * kC2 * nob_ * kC2 * welem;
    w_offset_.resize(static_cast<size_t>(g.group * og_));
    int64_t total = 0;
    for (int64_t grp = 0; grp < g.group; ++grp)
      for (int64_t og = 0; og < og_; ++og) {
        w_offset_[grp * og_ + og] = total;
        const int64_t nob = std::min<int64_t>(nob_, obg_ - og * nob_);
        total += per_og_full / nob_ * nob;
      }
    w_packed_ = Buffer(static_cast<size_t>(total));
    std::memset(w_packed_.data(), 0, w_packed_.size());
    if (mac_ == MacType::kF32) {
      // Padded input channels multiply -0.0: x + (-0.0) == x for every x (+0 and -0 included), so the
      // extra FMAs of the padded lanes leave the reference's FMA chain bit-identical.
      float* f = w_packed_.data<float>();
      for (size_t i = 0; i < w_packed_.size() / sizeof(float); ++i) f[i] = -0.0f;
    }
    wsum_.assign(static_cast<size_t>(g.oc), 0);
    const int64_t per_oc = icg_ * ntaps;
    auto wval = [&](int64_t oc, int64_t ic, int64_t tap) -> int64_t {  // integer families, minus w_zp
      const int64_t i = (oc * icg_ + ic) * ntaps + tap;
      switch (spec_.w_dtype) {
        case DType::kUInt8: return static_cast<const uint8_t*>(d.w)[i] - d.w_zp[oc];
        case DType::kInt16: return static_cast<const int16_t*>(d.w)[i] - d.w_zp[oc];
        default: return static_cast<const int8_t*>(d.w)[i] - d.w_zp[oc];
      }
    };
    for (int64_t grp = 0; grp < g.group; ++grp) {
      for (int64_t og = 0; og < og_; ++og) {
        const int64_t nob = std::min<int64_t>(nob_, obg_ - og * nob_);
        uint8_t* base = w_packed_.data<uint8_t>() + w_offset_[grp * og_ + og];
        for (int64_t b = 0; b < nob; ++b) {
          for (int64_t lane = 0; lane < kC2; ++lane) {
            const int64_t ocl = (og * nob_ + b) * kC2 + lane;
            if (ocl >= ocg_) continue;
            const int64_t oc = grp * ocg_ + ocl;
            for (int64_t tap = 0; tap < ntaps; ++tap) {
              for (int64_t ic = 0; ic < icg_; ++ic) {
                const int64_t c1 = ic / kC2, c2 = ic % kC2;
                const int64_t blk = (tap * c1_ + c1);  // [tap][c1] block index
                if (mac_ == MacType::kF32) {
                  const float v = fp16_to_fp32(static_cast<const uint16_t*>(d.w)[(oc * icg_ + ic) * ntaps + tap]);
                  float* p = reinterpret_cast<float*>(base) + ((blk * kC2 + c2) * nob + b) * kC2 + lane;
                  *p = v;
                  continue;
                }
                const int64_t v = wval(oc, ic, tap);
                if (oc < g.oc) wsum_[oc] += v;
                if (mac_ == MacType::kU8S8_I32) {
                  const int64_t q = c2 / 4, j = c2 % 4;
                  int8_t* p = reinterpret_cast<int8_t*>(base) + (((blk * 4 + q) * nob + b) * kC2 + lane) * 4 + j;
                  *p = static_cast<int8_t>(v);
                } else {
                  const int64_t q = c2 / 2, j = c2 % 2;
                  int16_t* p = reinterpret_cast<int16_t*>(base) + (((blk * 8 + q) * nob + b) * kC2 + lane) * 2 + j;
                  *p = static_cast<int16_t>(v);
                }
              }
            }
          }
        }
      }
    }
    (void)per_oc;
  }

  // The packed input's padding value and the zero point its sums correct for, then the shared
  // output-stage tables (epilogue.cpp).
  void build_epilogue(const ConvData& d) {
    int64_t zp_in = d.x_zp;
    if (fmt_ == InputFormat::kU8) {
      zp_in = spec_.x_dtype == DType::kUInt8 ? d.x_zp : d.x_zp + 128;
      pad_value_ = static_cast<int32_t>(zp_in);
    } else if (fmt_ == InputFormat::kI16) {
      pad_value_ = d.x_zp;
    } else {
      pad_value_ = 0;
    }
    Epilogue e;
    direct::build_epilogue(spec_, d, wsum_, zp_in, mac_ == MacType::kI16_I64, &e);
    epi_ = std::move(e.blocks);
    ch_ = std::move(e.ch);
    epi_args_ = e.args;
  }

  ConvSpec spec_;
  MacType mac_;
  const UkernelTable* tab_;
  InputFormat fmt_;
  int64_t icg_ = 0, ocg_ = 0, c1_ = 0, obg_ = 0, og_ = 0;
  int nob_ = 1, mr_ = 1;
  InputLayout layout_;
  std::vector<int64_t> tap_off_;
  Buffer w_packed_;
  std::vector<int64_t> w_offset_;
  std::vector<int64_t> wsum_;
  Buffer epi_;
  std::vector<RequantChannel> ch_;
  EpiArgs epi_args_{};
  int32_t pad_value_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// Registered kernels

bool int8_symmetric(const ConvSpec& s) {
  return s.family == ConvFamily::kInt8 && !s.has_w_zero_point &&
         (s.w_dtype == DType::kInt8 || s.w_dtype == DType::kInt4);
}

class DirectKernel : public ConvKernel {
 public:
  DirectKernel(const char* name, Isa isa, MacType mac, double macs_per_ns)
      : name_(name), isa_(isa), mac_(mac), macs_per_ns_(macs_per_ns) {}
  std::string name() const override { return name_; }
  std::string algo() const override { return "direct"; }
  Isa isa() const override { return isa_; }
  bool handles(ConvFamily f) const override {
    switch (mac_) {
      case MacType::kU8S8_I32: case MacType::kI16_I32: return f == ConvFamily::kInt8;
      case MacType::kI16_I64: return f == ConvFamily::kInt8 || f == ConvFamily::kInt16;
      case MacType::kF32: return f == ConvFamily::kFp16;
    }
    return false;
  }
  bool supports(const ConvSpec& s, std::string* why) const override {
    if (table() == nullptr) {
      *why = "not built for this ISA";
      return false;
    }
    if (mac_ == MacType::kU8S8_I32 && !int8_symmetric(s)) {
      *why = "needs int8/int4 weights with zero w_zero_point";
      return false;
    }
    return true;
  }
  double cost(const ConvSpec& s) const override {
    const ConvGeometry& g = s.g;
    // channel-block padding wastes lanes of the MAC array
    const double icg = static_cast<double>(g.icg()), ocg = static_cast<double>(g.ocg());
    const double lane_eff = icg / static_cast<double>(ceil_div(g.icg(), kC2) * kC2) * ocg /
                            static_cast<double>(ceil_div(g.ocg(), kC2) * kC2);
    // the output stage (DPU) costs about as much as 90 MACs per output element (fitted with
    // bench/bench_winograd.py --calibrate: 0.42 ns int8, 1.5 ns fp16 on AVX-512)
    const double outs = static_cast<double>(g.n * g.oc * g.oh * g.ow);
    return static_cast<double>(g.macs()) / (macs_per_ns_ * lane_eff) + 90.0 * outs / macs_per_ns_ +
           conv_memory_cost_ns(s) + 2000.0;
  }
  std::unique_ptr<ConvPlan> plan(const ConvSpec& s, const ConvData& d) const override {
    if (mac_ == MacType::kI16_I64 || mac_ == MacType::kI16_I32) {
      // int16 x int16 pairs are exact in 32 bits unless both products are (-32768)^2: weights (minus
      // their zero point) must lie in [-32767, 32767]; the I16_I32 path also needs int32-exact pairs.
      const ConvGeometry& g = s.g;
      const int64_t n = g.oc * g.icg() * g.kh * g.kw, per_oc = g.icg() * g.kh * g.kw;
      for (int64_t i = 0; i < n; ++i) {
        int64_t v = 0;
        switch (s.w_dtype) {
          case DType::kUInt8: v = static_cast<const uint8_t*>(d.w)[i]; break;
          case DType::kInt16: v = static_cast<const int16_t*>(d.w)[i]; break;
          default: v = static_cast<const int8_t*>(d.w)[i]; break;
        }
        v -= d.w_zp[i / per_oc];
        if (v < -32767 || v > 32767) return nullptr;
      }
    }
    return std::make_unique<DirectPlan>(s, d, mac_, table());
  }

 private:
  const UkernelTable* table() const {
    switch (isa_) {
      case Isa::kScalar: return ukernels_scalar(mac_);
      case Isa::kAvx2: return ukernels_avx2(mac_);
      case Isa::kAvx512Vnni: return ukernels_avx512(mac_);
    }
    return nullptr;
  }
  const char* name_;
  Isa isa_;
  MacType mac_;
  double macs_per_ns_;
};

#define NPUEMU_DIRECT_KERNEL(cls, name, isa, mac, rate)            \
  class cls final : public DirectKernel {                         \
   public:                                                        \
    cls() : DirectKernel(name, isa, mac, rate) {}                 \
  };                                                              \
  NPUEMU_REGISTER_CONV_KERNEL(cls)

// Rates (MACs per ns on one core) are model parameters for algo='auto'; the int8 and fp16 ones fitted
// with bench/bench_winograd.py --calibrate (AMD Zen 4, one core).
NPUEMU_DIRECT_KERNEL(Int8DirectScalar, "conv2d_int8_direct_scalar", Isa::kScalar, MacType::kU8S8_I32, 7.5);
NPUEMU_DIRECT_KERNEL(Int8DirectAvx512, "conv2d_int8_direct_avx512vnni", Isa::kAvx512Vnni, MacType::kU8S8_I32, 214.0);
NPUEMU_DIRECT_KERNEL(Int16DirectScalar, "conv2d_int16_direct_scalar", Isa::kScalar, MacType::kI16_I64, 0.8);
NPUEMU_DIRECT_KERNEL(Int16DirectAvx512, "conv2d_int16_direct_avx512vnni", Isa::kAvx512Vnni, MacType::kI16_I64, 40.0);
NPUEMU_DIRECT_KERNEL(Fp16DirectScalar, "conv2d_fp16_direct_scalar", Isa::kScalar, MacType::kF32, 0.5);
NPUEMU_DIRECT_KERNEL(Fp16DirectAvx512, "conv2d_fp16_direct_avx512vnni", Isa::kAvx512Vnni, MacType::kF32, 59.0);

}  // namespace
}  // namespace direct
}  // namespace npuemu
