// Winograd convolution driver: weight transform, tiling, multi-core split and the registered kernels.
// See winograd.h for the stages and docs/arithmetic.md section 6 for the arithmetic.
#include "kernels/conv/winograd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/memory.h"
#include "kernels/conv/layout.h"
#include "quant/fp16.h"

namespace npuemu {
namespace winograd {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Kernel transforms G (rows = transform positions along one axis, columns = kernel taps).
// F(2,3) integer: G' = 2 G, so U' = G' g G'^T = 4 U is an integer matrix.
constexpr int64_t kG23x2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
// F(2,3) float: G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
constexpr double kG23[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
// F(4,3) float: 24 G = [6 0 0; -4 -4 -4; -4 4 -4; 1 2 4; 1 -2 4; 0 0 24].
constexpr double kG43x24[6][3] = {{6, 0, 0}, {-4, -4, -4}, {-4, 4, -4}, {1, 2, 4}, {1, -2, 4}, {0, 0, 24}};

// The largest |x| the packed input can hold and the largest |w - w_zp|, per dtype (int8 family).
int64_t max_abs_x(DType t) { return std::max<int64_t>(-int64_t{dtype_min(t)}, dtype_max(t)); }
int64_t max_abs_w(DType t, bool has_zp) {
  return has_zp ? int64_t{dtype_max(t)} - dtype_min(t) : std::max<int64_t>(-int64_t{dtype_min(t)}, dtype_max(t));
}

// The integer Winograd sum is exact iff |sum_k x_k (w_k - w_zp)| < 2^29 (A^T M A = 4 * sum must fit
// int32). With K = 9 * icg terms this holds for every input when K * max|x| * max|w - w_zp| < 2^29.
bool int_exact(const ConvSpec& s, int64_t* limit_icg) {
  const int64_t per = 9 * max_abs_x(s.x_dtype) * max_abs_w(s.w_dtype, s.has_w_zero_point);
  *limit_icg = ((int64_t{1} << 29) - 1) / per;
  return s.g.icg() <= *limit_icg;
}

struct Tiling {
  int nob = 1, mr = 1;
  int64_t tb = 1;  // tiles per GEMM task (a multiple of mr, or all tiles)
};

Tiling choose_tiling(const Table& t, Kind kind, int64_t obg, int64_t tiles) {
  Tiling best;
  double best_score = -1;
  for (int nob = 1; nob <= kMaxNob; ++nob) {
    if (t.mr_max[nob - 1] == 0 || nob > obg) continue;
    const int mr = static_cast<int>(std::min<int64_t>(t.mr_max[nob - 1], tiles));
    const double oc_eff = static_cast<double>(obg) / static_cast<double>(ceil_div(obg, nob) * nob);
    const double t_eff = static_cast<double>(tiles) / static_cast<double>(ceil_div(tiles, mr) * mr);
    const double regs = static_cast<double>(mr * nob);
    const double score = oc_eff * (0.6 + 0.4 * t_eff) * std::min(1.0, regs / 16.0) * (1.0 + 0.02 * nob);
    if (score > best_score) {
      best_score = score;
      best.nob = nob;
      best.mr = mr;
    }
  }
  // M of a task ([npos][tb][nob * 16] x 4 bytes) stays within ~192 KB (L2).
  const int64_t per_tile = static_cast<int64_t>(npos(kind)) * best.nob * kC2 * 4;
  const int64_t tb = std::max<int64_t>(1, (192 * 1024) / per_tile / best.mr) * best.mr;
  best.tb = tb >= tiles ? tiles : tb;
  return best;
}

class WinogradPlan final : public ConvPlan {
 public:
  WinogradPlan(const ConvSpec& spec, const ConvData& data, Kind kind, const Table* tab)
      : spec_(spec), kind_(kind), tab_(tab) {
    const ConvGeometry& g = spec.g;
    m_ = tile_out(kind);
    n_ = tile_in(kind);
    np_ = npos(kind);
    icg_ = g.icg();
    ocg_ = g.ocg();
    c1_ = ceil_div(icg_, kC2);
    obg_ = ceil_div(ocg_, kC2);
    th_ = ceil_div(g.oh, m_);
    tw_ = ceil_div(g.ow, m_);
    tiles_ = th_ * tw_;
    // Extend the bottom / right padding so that every tile's window is inside the packed input.
    gp_ = g;
    gp_.pb += th_ * m_ - g.oh;
    gp_.pr += tw_ * m_ - g.ow;
    gp_.oh = th_ * m_;
    gp_.ow = tw_ * m_;
    layout_ = direct::make_input_layout(gp_, is_int(kind) ? direct::InputFormat::kI16 : direct::InputFormat::kF32);
    const Tiling t = choose_tiling(*tab, kind, obg_, tiles_);
    nob_ = t.nob;
    mr_ = t.mr;
    tb_ = t.tb;
    og_ = ceil_div(obg_, nob_);
    nblk_ = ceil_div(tiles_, tb_);
    pack_weights(data);
    pad_value_ = is_int(kind) ? data.x_zp : 0;
    direct::build_epilogue(spec, data, wsum_, is_int(kind) ? data.x_zp : 0, false, &epi_);
  }

  size_t packed_bytes() const override { return u_.size() + epi_.blocks.size(); }

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const ConvGeometry& g = spec_.g;
    Workspace& ws = Workspace::local();
    uint8_t* xp = ws.slot<uint8_t>(kSlotInput, static_cast<size_t>(layout_.bytes));
    const int64_t eb = elem_bytes(kind_);
    const int64_t v_bytes = np_ * c1_ * tiles_ * kC2 * eb;
    uint8_t* v = ws.slot<uint8_t>(kSlotTile, static_cast<size_t>(v_bytes));
    const int64_t out_elem = static_cast<int64_t>(dtype_size(spec_.y_dtype));
    uint8_t* yb = ws.slot<uint8_t>(kSlotOutput, static_cast<size_t>(obg_ * g.oh * g.ow * kC2 * out_elem));
    const int64_t x_elem = static_cast<int64_t>(dtype_size(spec_.x_dtype));
    const int64_t x_img = g.c * g.h * g.w * x_elem;
    const int64_t y_img = g.oc * g.oh * g.ow * out_elem;
    CorePool& pool = CorePool::instance();
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t grp = 0; grp < g.group; ++grp) {
        direct::pack_input(layout_, gp_, spec_.x_dtype, false, static_cast<const uint8_t*>(x) + n * x_img, grp, icg_,
                           pad_value_, cores, xp);
        auto input = [&](int, int64_t b, int64_t e) { input_rows(xp, v, b, e); };
        pool.run(cores, c1_ * th_, input);
        auto compute = [&](int, int64_t b, int64_t e) { compute_tasks(grp, v, yb, b, e); };
        pool.run(cores, og_ * nblk_, compute);
        uint8_t* yg = static_cast<uint8_t*>(y) + n * y_img + grp * ocg_ * g.oh * g.ow * out_elem;
        auto unpack = [&](int, int64_t b, int64_t e) {
          direct::unpack_output_blocks(yb, g.oh * g.ow, ocg_, static_cast<int>(out_elem), b, e, yg);
        };
        pool.run(cores, obg_, unpack);
      }
    }
  }

 private:
  // Input transform of tasks [b, e) of the (c1, tile row) space.
  void input_rows(const uint8_t* xp, uint8_t* v, int64_t b, int64_t e) const {
    const int64_t eb = elem_bytes(kind_);
    InputArgs a;
    a.row_pitch = layout_.row_pitch;
    a.ntiles = static_cast<int>(tw_);
    a.pos_stride = c1_ * tiles_ * kC2 * eb;
    for (int64_t task = b; task < e; ++task) {
      const int64_t c1 = task / th_, th = task % th_;
      a.x = xp + c1 * layout_.c1_stride + th * m_ * layout_.row_pitch;
      a.v = v + (c1 * tiles_ + th * tw_) * kC2 * eb;
      tab_->input(a);
    }
  }

  // GEMM, output transform and output stage of tasks [b, e) of the (og, tile block) space.
  void compute_tasks(int64_t grp, const uint8_t* v, uint8_t* yb, int64_t b, int64_t e) const {
    const ConvGeometry& g = spec_.g;
    const int64_t eb = elem_bytes(kind_);
    const int64_t out_elem = static_cast<int64_t>(dtype_size(spec_.y_dtype));
    const int64_t y_ob_stride = g.oh * g.ow * kC2 * out_elem;
    const int64_t width_max = static_cast<int64_t>(nob_) * kC2;
    uint8_t* mbuf = Workspace::local().slot<uint8_t>(kSlotTile2, static_cast<size_t>(np_ * tb_ * width_max * 4));
    uint8_t* rowbuf = Workspace::local().slot<uint8_t>(kSlotMisc, static_cast<size_t>(m_ * tb_ * m_ * width_max * 4));
    GemmArgs ga;
    ga.c1_stride = tiles_ * kC2 * eb;
    ga.nc1 = static_cast<int>(c1_);
    const int64_t u_pos = c1_ * kC2 * width_max * eb;  // bytes of U per position for a full og
    direct::EpiArgs ea = epi_.args;
    for (int64_t task = b; task < e; ++task) {
      const int64_t og = task / nblk_, blk = task % nblk_;
      const int64_t ob0 = og * nob_;
      const int nob = static_cast<int>(std::min<int64_t>(nob_, obg_ - ob0));
      const int64_t width = static_cast<int64_t>(nob) * kC2;
      const int64_t t0 = blk * tb_, t1 = std::min(tiles_, t0 + tb_);
      const int64_t tb = t1 - t0;
      const uint8_t* u = u_.data<uint8_t>() + u_off_[grp * og_ + og];
      const int64_t u_stride = u_pos / nob_ * nob;
      ga.nob = nob;
      for (int xi = 0; xi < np_; ++xi) {
        ga.u = u + xi * u_stride;
        for (int64_t p0 = t0; p0 < t1; p0 += mr_) {
          const int mr = static_cast<int>(std::min<int64_t>(mr_, t1 - p0));
          ga.v = v + ((xi * c1_) * tiles_ + p0) * kC2 * eb;
          ga.mr = mr;
          tab_->gemm[nob - 1][mr - 1](ga, mbuf + ((xi * tb) + (p0 - t0)) * width * 4);
        }
      }
      ea.blocks = epi_.blocks.data<direct::EpiBlock>() + grp * obg_ + ob0;
      ea.ch = epi_.ch.data() + (grp * obg_ + ob0) * kC2;
      ea.valid_channels = static_cast<int>(std::min<int64_t>(width, ocg_ - ob0 * kC2));
      // Output transform into a row buffer per run of tiles on the same tile row, then the output
      // stage once per output row of the run.
      OutputArgs oa;
      oa.pos_stride = tb * width * 4;
      oa.nob = nob;
      oa.blocks = ea.blocks;
      for (int64_t ta = t0; ta < t1;) {
        const int64_t th = ta / tw_, tw0 = ta % tw_;
        const int64_t tz = std::min(t1, (th + 1) * tw_);
        const int64_t run_px = (tz - ta) * m_;
        oa.y_row_stride = run_px * width * 4;
        for (int64_t t = ta; t < tz; ++t) {
          oa.m = mbuf + (t - t0) * width * 4;
          oa.y = rowbuf + (t - ta) * m_ * width * 4;
          tab_->output(oa);
        }
        const int rows = static_cast<int>(std::min<int64_t>(m_, g.oh - th * m_));
        const int cols = static_cast<int>(std::min<int64_t>(g.ow, (tw0 + tz - ta) * m_) - tw0 * m_);
        for (int r = 0; r < rows; ++r) {
          uint8_t* yt = yb + ((ob0 * g.oh + th * m_ + r) * g.ow + tw0 * m_) * kC2 * out_elem;
          tab_->epi(rowbuf + r * oa.y_row_stride, cols, nob, ea, yt, y_ob_stride);
        }
        ta = tz;
      }
    }
  }

  // Transforms the weights of every group and output channel block into the GEMM order (winograd.h):
  // U[grp][og][xi][...]; padded input / output channels are zero.
  void pack_weights(const ConvData& d) {
    const ConvGeometry& g = spec_.g;
    const int64_t eb = elem_bytes(kind_);
    const int64_t u_pos_full = c1_ * kC2 * nob_ * kC2 * eb;
    u_off_.resize(static_cast<size_t>(g.group * og_));
    int64_t total = 0;
    for (int64_t grp = 0; grp < g.group; ++grp)
      for (int64_t og = 0; og < og_; ++og) {
        u_off_[grp * og_ + og] = total;
        total += np_ * (u_pos_full / nob_) * std::min<int64_t>(nob_, obg_ - og * nob_);
      }
    u_ = Buffer(static_cast<size_t>(total));
    std::memset(u_.data(), 0, u_.size());
    wsum_.assign(static_cast<size_t>(g.oc), 0);
    for (int64_t grp = 0; grp < g.group; ++grp) {
      for (int64_t ocl = 0; ocl < ocg_; ++ocl) {
        const int64_t oc = grp * ocg_ + ocl;
        const int64_t og = ocl / kC2 / nob_, b = ocl / kC2 % nob_, lane = ocl % kC2;
        const int64_t nob = std::min<int64_t>(nob_, obg_ - og * nob_);
        uint8_t* base = u_.data<uint8_t>() + u_off_[grp * og_ + og];
        const int64_t u_stride = u_pos_full / nob_ * nob;
        for (int64_t ic = 0; ic < icg_; ++ic) {
          const int64_t c1 = ic / kC2, c2 = ic % kC2;
          const int64_t wi = (oc * icg_ + ic) * 9;
          if (is_int(kind_)) {
            int64_t gk[3][3], u[4][4];
            for (int i = 0; i < 9; ++i) {
              gk[i / 3][i % 3] = weight_minus_zp(spec_, d, oc, wi + i);
              wsum_[oc] += gk[i / 3][i % 3];
            }
            transform_kernel_int(gk, u);
            for (int xi = 0; xi < 16; ++xi) {
              // [c1][q < 8][nob][16 oc][2 ic]; |u| <= 9 * 255 fits int16
              int16_t* p = reinterpret_cast<int16_t*>(base + xi * u_stride) +
                           (((c1 * 8 + c2 / 2) * nob + b) * kC2 + lane) * 2 + c2 % 2;
              *p = static_cast<int16_t>(u[xi / 4][xi % 4]);
            }
          } else {
            double gk[3][3], u[6][6];
            for (int i = 0; i < 9; ++i) gk[i / 3][i % 3] = fp16_to_fp32(static_cast<const uint16_t*>(d.w)[wi + i]);
            transform_kernel_float(gk, u);
            for (int xi = 0; xi < np_; ++xi) {
              // [c1][c2 < 16][nob][16 oc]
              float* p = reinterpret_cast<float*>(base + xi * u_stride) + ((c1 * kC2 + c2) * nob + b) * kC2 + lane;
              *p = static_cast<float>(u[xi / n_][xi % n_]);  // one rounding to fp32 (nearest even)
            }
          }
        }
      }
    }
  }

  // U' = G' g G'^T (exact integers, |U'| <= 9 * max|g|).
  static void transform_kernel_int(const int64_t gk[3][3], int64_t u[4][4]) {
    int64_t t[4][3];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 3; ++j) t[i][j] = kG23x2[i][0] * gk[0][j] + kG23x2[i][1] * gk[1][j] + kG23x2[i][2] * gk[2][j];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) u[i][j] = t[i][0] * kG23x2[j][0] + t[i][1] * kG23x2[j][1] + t[i][2] * kG23x2[j][2];
  }

  // U = G g G^T in double, exact for F(2,3) (halves and quarters of sums of fp16 values: multiples of
  // 2^-26 below 2^18) and for F(4,3) up to the final division: (24G) g (24G)^T has integer-matrix
  // products of fp16 values (multiples of 2^-24 below 2^35), then / 576 rounds once (2^-53).
  void transform_kernel_float(const double gk[3][3], double u[6][6]) const {
    const bool f43 = kind_ == Kind::kFp16F43;
    const int n = n_;
    double gm[6][3], t[6][3];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < 3; ++j) gm[i][j] = f43 ? kG43x24[i][j] : kG23[i][j];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < 3; ++j) t[i][j] = gm[i][0] * gk[0][j] + gm[i][1] * gk[1][j] + gm[i][2] * gk[2][j];
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        const double s = t[i][0] * gm[j][0] + t[i][1] * gm[j][1] + t[i][2] * gm[j][2];
        u[i][j] = f43 ? s / 576.0 : s;
      }
  }

  ConvSpec spec_;
  Kind kind_;
  const Table* tab_;
  int m_ = 2, n_ = 4, np_ = 16;
  ConvGeometry gp_;
  int64_t icg_ = 0, ocg_ = 0, c1_ = 0, obg_ = 0, th_ = 0, tw_ = 0, tiles_ = 0;
  int nob_ = 1, mr_ = 1;
  int64_t tb_ = 1, og_ = 1, nblk_ = 1;
  direct::InputLayout layout_;
  Buffer u_;
  std::vector<int64_t> u_off_;
  std::vector<int64_t> wsum_;
  direct::Epilogue epi_;
  int32_t pad_value_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// Registered kernels

const char* kind_algo(Kind k) { return k == Kind::kFp16F43 ? "winograd43" : "winograd23"; }

class WinogradKernel : public ConvKernel {
 public:
  WinogradKernel(const char* name, Isa isa, Kind kind, double macs_per_ns, double tf_ns, double vec_ns)
      : name_(name), isa_(isa), kind_(kind), macs_per_ns_(macs_per_ns), tf_ns_(tf_ns), vec_ns_(vec_ns) {}
  std::string name() const override { return name_; }
  std::string algo() const override { return kind_algo(kind_); }
  Isa isa() const override { return isa_; }
  bool handles(ConvFamily f) const override { return is_int(kind_) ? f == ConvFamily::kInt8 : f == ConvFamily::kFp16; }
  bool supports(const ConvSpec& s, std::string* why) const override {
    const ConvGeometry& g = s.g;
    if (table() == nullptr) {
      *why = "not built for this ISA";
      return false;
    }
    if (g.kh != 3 || g.kw != 3) {
      *why = "Winograd needs a 3x3 kernel, got " + std::to_string(g.kh) + "x" + std::to_string(g.kw);
      return false;
    }
    if (g.sh != 1 || g.sw != 1) {
      *why = "Winograd needs stride 1, got " + std::to_string(g.sh) + "x" + std::to_string(g.sw);
      return false;
    }
    if (g.dh != 1 || g.dw != 1) {
      *why = "Winograd needs dilation 1, got " + std::to_string(g.dh) + "x" + std::to_string(g.dw);
      return false;
    }
    if (is_int(kind_)) {
      int64_t limit = 0;
      if (!int_exact(s, &limit)) {
        *why = "exact integer Winograd needs 9 * channels * max|x| * max|w - w_zp| < 2^29: at most " +
               std::to_string(limit) + " input channels per group for " + dtype_name(s.x_dtype) + " x and " +
               dtype_name(s.w_dtype) + (s.has_w_zero_point ? " (with zero point)" : "") + " w, got " +
               std::to_string(g.icg());
        return false;
      }
    }
    return true;
  }
  // Modelled time on one core (ns), the form of direct.cpp's model: the GEMMs at the measured rate, or
  // the transformed weights streamed from memory where they exceed what stays cached (~16 MiB at
  // ~22 GB/s), plus the transforms per element of V and M, a fixed cost per GEMM output vector, the shared
  // pack / unpack passes and a fixed cost. Constants fitted with bench/bench_winograd.py --calibrate.
  double cost(const ConvSpec& s) const override {
    const ConvGeometry& g = s.g;
    const int m = tile_out(kind_);
    const double per_img_tiles = static_cast<double>(g.group * ceil_div(g.oh, m) * ceil_div(g.ow, m));
    const double tiles = static_cast<double>(g.n) * per_img_tiles;
    const double icp = static_cast<double>(ceil_div(g.icg(), kC2) * kC2);
    const double ocp = static_cast<double>(ceil_div(g.ocg(), kC2) * kC2);
    const double np = npos(kind_);
    const double gemm = tiles * np * icp * ocp / macs_per_ns_;
    const double u_bytes = static_cast<double>(g.group) * np * icp * ocp * elem_bytes(kind_);
    const double stream = static_cast<double>(g.n) * std::max(0.0, u_bytes - 16.0 * (1 << 20)) * 0.045;
    // per GEMM output vector (tile x position x 16 output channels): loading and storing its accumulators,
    // the fixed cost that makes short-K (few input channels) GEMMs slow
    const double vecs = tiles * np * ocp / kC2;
    return std::max(gemm, stream) + tf_ns_ * tiles * np * (icp + ocp) + vec_ns_ * vecs + conv_memory_cost_ns(s) +
           2000.0;
  }
  std::unique_ptr<ConvPlan> plan(const ConvSpec& s, const ConvData& d) const override {
    return std::make_unique<WinogradPlan>(s, d, kind_, table());
  }

 private:
  const Table* table() const {
    switch (isa_) {
      case Isa::kScalar: return table_scalar(kind_);
      case Isa::kAvx2: return table_avx2(kind_);
      case Isa::kAvx512Vnni: return table_avx512(kind_);
    }
    return nullptr;
  }
  const char* name_;
  Isa isa_;
  Kind kind_;
  double macs_per_ns_;  // GEMM multiply-adds (padded channels) per ns
  double tf_ns_;        // ns per element of V and M (input / output transform)
  double vec_ns_;       // ns per output element (output stage)
};

#define NPUEMU_WINOGRAD_KERNEL(cls, name, isa, kind, rate, tf_ns, vec_ns) \
  class cls final : public WinogradKernel {                              \
   public:                                                               \
    cls() : WinogradKernel(name, isa, kind, rate, tf_ns, vec_ns) {}      \
  };                                                                     \
  NPUEMU_REGISTER_CONV_KERNEL(cls)

// Per kernel: GEMM rate (multiply-adds per ns), ns per transformed element, ns per GEMM output vector.
// Fitted on this project's calibration grid with bench/bench_winograd.py --calibrate (AMD Zen 4, one
// core).
NPUEMU_WINOGRAD_KERNEL(Int8Wino23Scalar, "conv2d_int8_winograd23_scalar", Isa::kScalar, Kind::kInt8F23, 8.2, 1.36, 8.2);
NPUEMU_WINOGRAD_KERNEL(Fp16Wino23Scalar, "conv2d_fp16_winograd23_scalar", Isa::kScalar, Kind::kFp16F23, 0.5, 0.23, 5.2);
NPUEMU_WINOGRAD_KERNEL(Fp16Wino43Scalar, "conv2d_fp16_winograd43_scalar", Isa::kScalar, Kind::kFp16F43, 0.5, 2.0, 2.6);
NPUEMU_WINOGRAD_KERNEL(Int8Wino23Avx2, "conv2d_int8_winograd23_avx2", Isa::kAvx2, Kind::kInt8F23, 50.3, 0.141, 0.0);
NPUEMU_WINOGRAD_KERNEL(Fp16Wino23Avx2, "conv2d_fp16_winograd23_avx2", Isa::kAvx2, Kind::kFp16F23, 51.0, 0.134, 0.0);
NPUEMU_WINOGRAD_KERNEL(Fp16Wino43Avx2, "conv2d_fp16_winograd43_avx2", Isa::kAvx2, Kind::kFp16F43, 46.2, 0.150, 0.0);
NPUEMU_WINOGRAD_KERNEL(Int8Wino23Avx512, "conv2d_int8_winograd23_avx512vnni", Isa::kAvx512Vnni, Kind::kInt8F23, 112.0, 0.106, 0.0);
NPUEMU_WINOGRAD_KERNEL(Fp16Wino23Avx512, "conv2d_fp16_winograd23_avx512vnni", Isa::kAvx512Vnni, Kind::kFp16F23, 55.0, 0.118, 0.0);
NPUEMU_WINOGRAD_KERNEL(Fp16Wino43Avx512, "conv2d_fp16_winograd43_avx512vnni", Isa::kAvx512Vnni, Kind::kFp16F43, 53.3, 0.149, 0.0);

}  // namespace

}  // namespace winograd
}  // namespace npuemu
