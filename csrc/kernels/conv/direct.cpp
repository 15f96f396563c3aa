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
  DirectPlan(const ConvSpec& spec, const ConvData& data_in, MacType mac, const UkernelTable* tab)
      : spec_(spec), mac_(mac), tab_(tab), fmt_(input_format(mac)) {
    // Tap folding: with few input channels per group most of a 16-lane channel block would be idle, so
    // an im2col pass folds the taps into the channel axis, (kh, kw, ic) in that order (the FP16
    // reduction order), and the convolution runs as a 1x1 stride-1 one over the output pixels.
    const ConvGeometry& g0 = spec.g;
    const int64_t kf = g0.kh * g0.kw * g0.icg();
    const double util_normal = static_cast<double>(g0.icg()) / static_cast<double>(ceil_div(g0.icg(), kC2) * kC2);
    const double util_fold = static_cast<double>(kf) / static_cast<double>(ceil_div(kf, kC2) * kC2);
    fold_ = g0.kh * g0.kw > 1 && g0.icg() < kC2 && util_fold >= 1.3 * util_normal && kf <= 1024;
    ConvData data = data_in;
    std::vector<uint8_t> wfold;
    cg_ = g0;
    if (fold_) {
      cg_.c = kf * g0.group;
      cg_.h = g0.oh;
      cg_.w = g0.ow;
      cg_.kh = cg_.kw = cg_.sh = cg_.sw = cg_.dh = cg_.dw = 1;
      cg_.pt = cg_.pl = cg_.pb = cg_.pr = 0;
      const size_t es = dtype_size(spec.w_dtype);
      const int64_t icg = g0.icg(), taps = g0.kh * g0.kw;
      wfold.resize(static_cast<size_t>(g0.oc * kf) * es);
      for (int64_t oc = 0; oc < g0.oc; ++oc)
        for (int64_t ic = 0; ic < icg; ++ic)
          for (int64_t t = 0; t < taps; ++t)
            std::memcpy(&wfold[static_cast<size_t>(oc * kf + t * icg + ic) * es],
                        static_cast<const uint8_t*>(data_in.w) + static_cast<size_t>((oc * icg + ic) * taps + t) * es,
                        es);
      data.w = wfold.data();
    }
    const ConvGeometry& g = cg_;
    icg_ = g.icg();
    ocg_ = g.ocg();
    c1_ = ceil_div(icg_, kC2);
    obg_ = ceil_div(ocg_, kC2);
    flat_ = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.pb == 0 && g.pr == 0;
    icg_in_ = g0.icg();
    const Tiling t = choose_tiling(*tab, obg_, flat_ ? g.oh * g.ow : g.ow);
    nob_ = t.nob;
    mr_ = t.mr;
    og_ = ceil_div(obg_, nob_);
    if (flat_) {  // chunks of ~96 pixels, a multiple of the tile
      row_len_ = std::min<int64_t>(g.oh * g.ow, mr_ * std::max<int64_t>(1, 96 / mr_));
      tasks_per_og_ = ceil_div(g.oh * g.ow, row_len_);
    } else {  // short rows: several per task, so that unpacking transposes >= 16 pixels at a time
      row_len_ = g.ow;
      rows_per_task_ = std::min<int64_t>(g.oh, std::max<int64_t>(1, ceil_div(16, g.ow)));
      tasks_per_og_ = ceil_div(g.oh, rows_per_task_);
    }
    layout_ = make_input_layout(g, fmt_);
    for (int64_t kh = 0; kh < g.kh; ++kh)
      for (int64_t kw = 0; kw < g.kw; ++kw) tap_off_.push_back(layout_.tap_offset(kh * g.dh, kw * g.dw));
    pack_weights(data);
    build_epilogue(data);
  }

  size_t packed_bytes() const override { return w_packed_.size() + epi_.size(); }

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const ConvGeometry& g = spec_.g;  // the caller's tensors; cg_ is the geometry computed
    uint8_t* xp = Workspace::local().slot<uint8_t>(kSlotInput, static_cast<size_t>(layout_.bytes));
    const int64_t xelem = static_cast<int64_t>(dtype_size(spec_.x_dtype));
    const int64_t x_img = g.c * g.h * g.w * xelem;
    const int64_t y_img = g.oc * g.oh * g.ow * out_elem_bytes();
    CorePool& pool = CorePool::instance();
    for (int64_t n = 0; n < g.n; ++n) {
      const uint8_t* xn = static_cast<const uint8_t*>(x) + n * x_img;
      uint8_t* yn = static_cast<uint8_t*>(y) + n * y_img;
      for (int64_t grp = 0; grp < g.group; ++grp) {
        if (fold_) {
          uint8_t* xa = Workspace::local().slot<uint8_t>(kSlotMisc, padded_hwc_bytes(g, icg_in_, layout_.elem));
          auto hwc = [&](int, int64_t b, int64_t e) {
            pack_padded_hwc(g, spec_.x_dtype, spec_.nhwc, xn, grp * icg_in_, icg_in_, fmt_, pad_value_, b, e, xa);
          };
          pool.run(cores, g.h + g.pt + g.pb, hwc);
          auto im2col = [&](int, int64_t b, int64_t e) {
            im2col_from_hwc(g, icg_in_, layout_.c1, fmt_, pad_value_, xa, b, e, xp);
          };
          pool.run(cores, g.oh * g.ow, im2col);
        } else {
          pack_input(layout_, g, spec_.x_dtype, spec_.nhwc, xn, grp, icg_, pad_value_, cores, xp);  // cg_ == g here
        }
        auto compute = [&](int, int64_t b, int64_t e) { compute_tasks(grp, xp, yn, b, e); };
        pool.run(cores, og_ * tasks_per_og_, compute);
      }
    }
  }

 private:
  int64_t out_elem_bytes() const { return static_cast<int64_t>(dtype_size(spec_.y_dtype)); }

  // Task (og, t): output channel blocks [og*NOB, og*NOB + NOB) for output row t, or, in flat mode (1x1
  // stride-1 unpadded: consecutive pixels are consecutive in the packed input across rows), for the
  // pixel chunk t. The tile outputs land in the NPU's blocked layout in a small per-core buffer
  // (L1-resident) and are then transposed into NCHW (or copied into NHWC) in the caller's output.
  void compute_tasks(int64_t grp, const uint8_t* xp, uint8_t* y_img, int64_t b, int64_t e) const {
    const ConvGeometry& g = cg_;
    const int64_t oe = out_elem_bytes();
    const int64_t pixels = g.oh * g.ow;
    alignas(64) uint8_t acc[kMaxMr * kMaxNob * kC2 * 8];
    uint8_t* rowbuf = Workspace::local().slot<uint8_t>(
        kSlotTile, static_cast<size_t>(nob_ * row_len_ * rows_per_task_ * kC2 * oe));
    MacArgs a;
    a.tap_off = tap_off_.data();
    a.ntaps = static_cast<int>(tap_off_.size());
    a.nc1 = static_cast<int>(c1_);
    a.c1_stride = layout_.c1_stride;
    EpiArgs ea = epi_args_;
    for (int64_t task = b; task < e; ++task) {
      const int64_t og = task / tasks_per_og_, t = task % tasks_per_og_;
      // pixels [p0, p0 + np) of the output plane; rows of row_len_ pixels starting at xbase
      int64_t p0, np, nrows, row_len;
      const uint8_t* xbase;
      if (flat_) {
        p0 = t * row_len_;
        np = std::min<int64_t>(row_len_, pixels - p0);
        nrows = 1;
        row_len = np;
        xbase = xp + p0 * kC2 * layout_.elem;
      } else {  // rows_per_task_ whole output rows (several when rows are short)
        const int64_t r0 = t * rows_per_task_;
        nrows = std::min<int64_t>(rows_per_task_, g.oh - r0);
        p0 = r0 * g.ow;
        np = nrows * g.ow;
        row_len = g.ow;
        xbase = xp + r0 * g.sh * layout_.row_pitch;
      }
      const int64_t ob0 = og * nob_;
      const int nob = static_cast<int>(std::min<int64_t>(nob_, obg_ - ob0));
      a.w = w_packed_.data<uint8_t>() + w_offset_[grp * og_ + og];
      ea.blocks = epi_.data<EpiBlock>() + grp * obg_ + ob0;
      ea.ch = ch_.data() + (grp * obg_ + ob0) * kC2;
      ea.valid_channels = static_cast<int>(std::min<int64_t>(nob * kC2, ocg_ - ob0 * kC2));
      a.blocks = ea.blocks;
      a.nob = nob;
      for (int64_t r = 0; r < nrows; ++r) {
        const uint8_t* xr = xbase + r * g.sh * layout_.row_pitch;
        // ceil(row_len / mr_) pixel tiles of balanced sizes (differing by at most one): a row of 7 runs as
        // 4 + 3 rather than 6 + 1, keeping more independent accumulators in flight in the last tile.
        const int64_t ntiles = ceil_div(row_len, mr_);
        for (int64_t ti = 0; ti < ntiles; ++ti) {
          const int64_t i = row_len * ti / ntiles;
          const int mr = static_cast<int>(row_len * (ti + 1) / ntiles - i);
          a.x = xr + i * kC2 * layout_.elem;
          a.mr = mr;
          tab_->mac[nob - 1][mr - 1](a, acc);
          tab_->epi(acc, mr, nob, ea, rowbuf + (r * row_len + i) * kC2 * oe, np * kC2 * oe);
        }
      }
      for (int bb = 0; bb < nob; ++bb) {
        const int64_t c0 = grp * ocg_ + (ob0 + bb) * kC2;
        const int64_t nch = std::min<int64_t>(kC2, ocg_ - (ob0 + bb) * kC2);
        const uint8_t* src = rowbuf + bb * np * kC2 * oe;
        if (spec_.nhwc) {
          for (int64_t p = 0; p < np; ++p)
            std::memcpy(y_img + ((p0 + p) * g.oc + c0) * oe, src + p * kC2 * oe, static_cast<size_t>(nch * oe));
        } else {
          void* dst[kC2];
          for (int64_t c = 0; c < nch; ++c) dst[c] = y_img + ((c0 + c) * pixels + p0) * oe;
          unpack_block(src, np, nch, dst, static_cast<int>(oe));
        }
      }
    }
  }

  // Packs OIHW weights of every group into the micro-kernel order (direct.h) and computes the
  // per-channel weight sums used for the zero-point correction.
  void pack_weights(const ConvData& d) {
    const ConvGeometry& g = cg_;
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
    auto wval = [&](int64_t oc, int64_t ic, int64_t tap) {  // integer families, minus w_zp
      return weight_minus_zp(spec_, d, oc, (oc * icg_ + ic) * ntaps + tap);
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
  }

  // The packed input's padding value and the zero point its sums correct for, then the shared
  // output-stage tables (epilogue.cpp).
  void build_epilogue(const ConvData& d) {
    const int64_t zp_in = packed_zero_point(spec_, d, mac_);
    pad_value_ = static_cast<int32_t>(zp_in);
    Epilogue e;
    direct::build_epilogue(spec_, d, wsum_, zp_in, mac_ == MacType::kI16_I64, &e, cg_.group, ocg_);
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
  bool flat_ = false;
  bool fold_ = false;      // taps folded into channels by im2col (see the constructor)
  ConvGeometry cg_;        // geometry the MAC array computes (the folded one when fold_)
  int64_t icg_in_ = 0;     // input channels per group of the caller's tensor
  int64_t row_len_ = 0, tasks_per_og_ = 0;  // pixels per task and tasks per output-channel group
  int64_t rows_per_task_ = 1;               // output rows per task (not flat)
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
  bool supports_nhwc() const override { return true; }
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
    if (mac_ == MacType::kI16_I64 && s.w_dtype == DType::kInt16) {
      // int16 x int16 pairs (vpmaddwd) are exact in 32 bits unless both products are (-32768)^2: weights
      // minus their zero point must lie in [-32767, 32767]. Only int16 weights can leave that range; the
      // int8 family (uint8 / int8 / int4 weights and zero points of the same dtype) has |w - w_zp| <= 255,
      // so with |x| <= 255 a pair sum is at most 130,050 and kI16_I32's int32 accumulators wrap exactly as
      // the contract's (docs/arithmetic.md section 2).
      const ConvGeometry& g = s.g;
      const int64_t n = g.oc * g.icg() * g.kh * g.kw, per_oc = g.icg() * g.kh * g.kw;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t v = static_cast<int64_t>(static_cast<const int16_t*>(d.w)[i]) - d.w_zp[i / per_oc];
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

// Rates (MACs per ns on one core) are model parameters for algo='auto'. The AVX2 rates (and the AVX-512
// fp16 rate, which must stay above the AVX2 one on a CPU that has both) are the mean "model rate" of
// bench/direct_rates.py over the ResNet-50 3x3 layers (64->64 @56, 256->256 @14, 512->512 @7), measured
// on an AMD EPYC (Zen 4, whose 512-bit units are 256 bits wide: AVX2 and AVX-512 fp32 FMA run at the
// same speed there) with NPUEMU_ISA=avx2.
NPUEMU_DIRECT_KERNEL(Int8DirectScalar, "conv2d_int8_direct_scalar", Isa::kScalar, MacType::kU8S8_I32, 7.5);
NPUEMU_DIRECT_KERNEL(Int8DirectAvx2, "conv2d_int8_direct_avx2", Isa::kAvx2, MacType::kI16_I32, 93.5);
NPUEMU_DIRECT_KERNEL(Int8DirectAvx512, "conv2d_int8_direct_avx512vnni", Isa::kAvx512Vnni, MacType::kU8S8_I32, 231.1);
NPUEMU_DIRECT_KERNEL(Int16DirectScalar, "conv2d_int16_direct_scalar", Isa::kScalar, MacType::kI16_I64, 0.8);
NPUEMU_DIRECT_KERNEL(Int16DirectAvx2, "conv2d_int16_direct_avx2", Isa::kAvx2, MacType::kI16_I64, 37.0);
NPUEMU_DIRECT_KERNEL(Int16DirectAvx512, "conv2d_int16_direct_avx512vnni", Isa::kAvx512Vnni, MacType::kI16_I64, 40.0);
NPUEMU_DIRECT_KERNEL(Fp16DirectScalar, "conv2d_fp16_direct_scalar", Isa::kScalar, MacType::kF32, 0.5);
NPUEMU_DIRECT_KERNEL(Fp16DirectAvx2, "conv2d_fp16_direct_avx2", Isa::kAvx2, MacType::kF32, 61.8);
NPUEMU_DIRECT_KERNEL(Fp16DirectAvx512, "conv2d_fp16_direct_avx512vnni", Isa::kAvx512Vnni, MacType::kF32, 65.2);

}  // namespace
}  // namespace direct
}  // namespace npuemu
