// Pooling geometry, the kernel registry and the "rows" kernels (see pool.h for the packed layout).
// One task per plane (n, c): the plane is packed into the calling core's workspace, then every output
// row is a tap combination over consecutive columns, decimated by the stride and finished per run of
// outputs that share a divisor. Each output is computed by exactly one core with the same arithmetic, so
// every core mask gives the same bits.
#include "kernels/pool/pool.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/shape.h"
#include "core/memory.h"
#include "kernels/pool/pool_arith.h"

namespace npuemu {

namespace {

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d, bool ceil_mode) {
  const int64_t span = in + pb + pe - d * (k - 1) - 1;  // >= 0, checked by the caller
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + pb) --out;  // the last window would start in the end padding
  return out;
}
}  // namespace

PoolGeometry make_pool_geometry(const std::vector<int64_t>& x, const std::vector<int64_t>& kernel,
                                const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                                const std::vector<int64_t>& dilations, bool ceil_mode) {
  NPU_CHECK(x.size() == 4, "x must be 4-D NCHW, got shape ", shape_str(x));
  for (int64_t d : x) NPU_CHECK(d > 0, "x must not be empty, got shape ", shape_str(x));
  NPU_CHECK(kernel.size() == 2, "kernel_shape must have 2 values (h, w), got ", shape_str(kernel));
  NPU_CHECK(strides.size() == 2, "strides must have 2 values (h, w), got ", shape_str(strides));
  NPU_CHECK(dilations.size() == 2, "dilations must have 2 values (h, w), got ", shape_str(dilations));
  NPU_CHECK(pads.size() == 4, "pads must have 4 values (top, left, bottom, right), got ", shape_str(pads));
  check_window_attr("kernel_shape", kernel, 1);
  check_window_attr("strides", strides, 1);
  check_window_attr("dilations", dilations, 1);
  check_window_attr("pads", pads, 0);
  // onnxruntime's rule: a pad is smaller than the kernel, so every (undilated) window meets the input
  NPU_CHECK(pads[0] < kernel[0] && pads[2] < kernel[0] && pads[1] < kernel[1] && pads[3] < kernel[1],
            "pads must be smaller than the kernel (pads ", shape_str(pads), ", kernel_shape ", shape_str(kernel), ")");
  PoolGeometry g;
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.kh = kernel[0];
  g.kw = kernel[1];
  g.sh = strides[0];
  g.sw = strides[1];
  g.dh = dilations[0];
  g.dw = dilations[1];
  g.pt = pads[0];
  g.pl = pads[1];
  g.pb = pads[2];
  g.pr = pads[3];
  g.ceil_mode = ceil_mode;
  const int64_t eh = (g.kh - 1) * g.dh + 1, ew = (g.kw - 1) * g.dw + 1;
  NPU_CHECK(g.h + g.pt + g.pb >= eh && g.w + g.pl + g.pr >= ew, "the (dilated) window ", eh, "x", ew,
            " is larger than the padded input ", g.h + g.pt + g.pb, "x", g.w + g.pl + g.pr, "; x shape ", shape_str(x),
            ", kernel_shape ", shape_str(kernel), ", pads ", shape_str(pads));
  g.oh = out_size(g.h, g.kh, g.sh, g.pt, g.pb, g.dh, ceil_mode);
  g.ow = out_size(g.w, g.kw, g.sw, g.pl, g.pr, g.dw, ceil_mode);
  checked_numel({g.n, g.c, g.h, g.w}, "x");
  checked_numel({g.h + g.pt + g.pb, g.w + g.pl + g.pr}, "the padded plane");
  checked_numel({g.kh, g.kw}, "the window");
  checked_numel({g.n, g.c, g.oh, g.ow}, "the output");
  return g;
}

std::vector<const PoolKernel*>& pool_kernel_registry() {
  static std::vector<const PoolKernel*> reg;
  return reg;
}

namespace {

// Divisor of an average along one axis for output index o (dilation 1), per PoolCount.
int64_t axis_count(int64_t o, int64_t k, int64_t s, int64_t pb, int64_t in, int64_t pe, PoolCount mode) {
  const int64_t start = o * s - pb;
  switch (mode) {
    case PoolCount::kKernel: return k;
    case PoolCount::kPaddedExtent: return std::min(start + k, in + pe) - start;
    case PoolCount::kValid: break;
  }
  return std::min(start + k, in) - std::max<int64_t>(start, 0);
}

enum class Mode { kMax, kAvgFixed, kAvgFloat, kAvgFp16, kPlaneQuant, kPlaneFp16 };

class RowsPlan final : public PoolPlan {
 public:
  RowsPlan(const PoolSpec& s, const PoolRowTable* t) : s_(s), t_(t) {
    const PoolGeometry& g = s.g;
    // the padded plane, extended where a ceil_mode window reaches past the end padding (those
    // positions are padding too: they never win a maximum and add +0 / 0 to a sum)
    hp_ = std::max(g.h + g.pt + g.pb, (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1);
    wp_ = std::max(g.w + g.pl + g.pr, (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1);
    jn_ = (g.ow - 1) * g.sw + 1;
    jn_r_ = (jn_ + t->block - 1) / t->block * t->block;
    if (s.kind == PoolKind::kMax) {
      mode_ = Mode::kMax;
    } else if (g.whole_plane()) {
      mode_ = s.dtype == DType::kFloat16 ? Mode::kPlaneFp16 : Mode::kPlaneQuant;
    } else if (s.dtype == DType::kFloat16) {
      mode_ = Mode::kAvgFp16;
    } else {
      mode_ = s.rounding == Rounding::kFixedPoint ? Mode::kAvgFixed : Mode::kAvgFloat;
    }
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) tap_off_.push_back(i * g.dh * wp_ + j * g.dw);
    if (s.kind == PoolKind::kAvg) build_counts();
  }

  void run(const void* x, void* y, const CoreSet& cores) const override {
    const PoolGeometry& g = s_.g;
    const int64_t planes = g.n * g.c;
    if (mode_ == Mode::kPlaneFp16) {
      auto body = [&](int, int64_t b, int64_t e) {
        for (int64_t blk = b; blk < e; ++blk) plane_fp16_block(x, y, blk * 16, std::min<int64_t>(16, planes - blk * 16));
      };
      CorePool::instance().run(cores, (planes + 15) / 16, body);
      return;
    }
    auto body = [&](int, int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) plane(x, y, p);
    };
    CorePool::instance().run(cores, planes, body);
  }

 private:
  // Distinct divisors: per output row the row count, per run of columns the column count.
  void build_counts() {
    const PoolGeometry& g = s_.g;
    for (int64_t o = 0; o < g.ow; ++o) {
      const int64_t wc = axis_count(o, g.kw, g.sw, g.pl, g.w, g.pr, s_.count);
      if (segs_.empty() || segs_.back().wc != wc) segs_.push_back(Seg{o, o + 1, wc});
      else segs_.back().e = o + 1;
    }
    cidx_.resize(static_cast<size_t>(g.oh * static_cast<int64_t>(segs_.size())));
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      const int64_t hc = axis_count(oh, g.kh, g.sh, g.pt, g.h, g.pb, s_.count);
      for (size_t si = 0; si < segs_.size(); ++si) {
        const int64_t count = hc * segs_[si].wc;
        size_t k = 0;
        while (k < counts_.size() && counts_[k] != count) ++k;
        if (k == counts_.size()) {
          counts_.push_back(count);
          // one fixed-point multiplier per distinct count (pool_arith.h avg_fixed)
          const bool quant = s_.dtype != DType::kFloat16 && s_.rounding == Rounding::kFixedPoint;
          cf_.push_back(quant ? closed_form(avg_fixed_multiplier(count, s_)) : ClosedFormMultiplier{});
          left_.push_back(quant ? avg_fixed_left_shift(count) : 0);
        }
        cidx_[static_cast<size_t>(oh) * segs_.size() + si] = static_cast<int32_t>(k);
      }
    }
  }

  template <class T>
  T* pack_plane(const void* x, int64_t p, T pad, void (*pack_row)(const void*, T*, int64_t, const RowsPlan&)) const {
    const PoolGeometry& g = s_.g;
    T* buf = Workspace::local().slot<T>(kSlotInput, static_cast<size_t>(hp_ * wp_ + t_->block));
    const int64_t esz = static_cast<int64_t>(dtype_size(s_.dtype));
    const uint8_t* src = static_cast<const uint8_t*>(x) + p * g.h * g.w * esz;
    for (int64_t r = 0; r < hp_; ++r) {
      T* row = buf + r * wp_;
      const int64_t ih = r - g.pt;
      if (ih < 0 || ih >= g.h) {
        std::fill(row, row + wp_, pad);
        continue;
      }
      std::fill(row, row + g.pl, pad);
      pack_row(src + ih * g.w * esz, row + g.pl, g.w, *this);
      std::fill(row + g.pl + g.w, row + wp_, pad);
    }
    std::fill(buf + hp_ * wp_, buf + hp_ * wp_ + t_->block, pad);
    return buf;
  }

  // every sw-th column of a combined row (in place is fine: j*sw >= j)
  template <class T>
  static const T* decimate(const T* acc, int64_t ow, int64_t sw, T* tmp) {
    if (sw == 1) return acc;
    for (int64_t j = 0; j < ow; ++j) tmp[j] = acc[j * sw];
    return tmp;
  }

  void plane(const void* x, void* y, int64_t p) const {
    const PoolGeometry& g = s_.g;
    Workspace& ws = Workspace::local();
    const int ntaps = static_cast<int>(tap_off_.size());
    const int64_t esz = static_cast<int64_t>(dtype_size(s_.dtype));
    uint8_t* yp = static_cast<uint8_t*>(y) + p * g.oh * g.ow * esz;
    const int64_t row_step = g.sh * wp_;

    if (mode_ == Mode::kPlaneQuant) {
      const int64_t n = g.h * g.w;
      const int64_t sum = t_->plane_sum(s_.dtype, static_cast<const uint8_t*>(x) + p * n * esz, n) - int64_t{s_.x_zp} * n;
      int32_t v;
      if (s_.rounding == Rounding::kFixedPoint) {
        const int64_t lo = dtype_min(s_.dtype) - s_.y_zp, hi = dtype_max(s_.dtype) - s_.y_zp;
        const int64_t q = apply_closed_form(sum * (int64_t{1} << left_[0]), cf_[0]);
        v = static_cast<int32_t>((q < lo ? lo : (q > hi ? hi : q)) + s_.y_zp);
      } else {
        v = avg_float_global(sum, n, s_);
      }
      if (s_.dtype == DType::kUInt8) yp[0] = static_cast<uint8_t>(v);
      else reinterpret_cast<int8_t*>(yp)[0] = static_cast<int8_t>(v);
      return;
    }

    if (mode_ == Mode::kMax) {
      const int16_t* buf =
          pack_plane<int16_t>(x, p, kKeyLowest, [](const void* src, int16_t* dst, int64_t n, const RowsPlan& me) {
            me.t_->pack_key16(me.s_.dtype, src, dst, n);
          });
      int16_t* acc = ws.slot<int16_t>(kSlotOutput, static_cast<size_t>(jn_r_));
      int16_t* tmp = ws.slot<int16_t>(kSlotMisc, static_cast<size_t>(g.ow + t_->block));
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        t_->max16(buf + oh * row_step, tap_off_.data(), ntaps, acc, jn_);
        t_->unkey16(decimate(acc, g.ow, g.sw, tmp), g.ow, s_.dtype, yp + oh * g.ow * esz);
      }
      return;
    }

    const size_t nseg = segs_.size();
    if (mode_ == Mode::kAvgFixed) {
      const int32_t* buf = pack_plane<int32_t>(x, p, 0, [](const void* src, int32_t* dst, int64_t n, const RowsPlan& me) {
        me.t_->pack_i32(me.s_.dtype, src, me.s_.x_zp, dst, n);
      });
      int32_t* acc = ws.slot<int32_t>(kSlotOutput, static_cast<size_t>(jn_r_));
      int32_t* tmp = ws.slot<int32_t>(kSlotMisc, static_cast<size_t>(g.ow + t_->block));
      const int32_t lo = dtype_min(s_.dtype) - s_.y_zp, hi = dtype_max(s_.dtype) - s_.y_zp;
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        t_->sum32(buf + oh * row_step, tap_off_.data(), ntaps, acc, jn_);
        const int32_t* sums = decimate(acc, g.ow, g.sw, tmp);
        for (size_t si = 0; si < nseg; ++si) {
          const Seg& sg = segs_[si];
          const int32_t ci = cidx_[static_cast<size_t>(oh) * nseg + si];
          t_->req_fixed(sums + sg.b, sg.e - sg.b, left_[ci], cf_[ci], lo, hi, s_.y_zp, s_.dtype,
                        yp + (oh * g.ow + sg.b) * esz);
        }
      }
      return;
    }

    const float* buf;
    if (mode_ == Mode::kAvgFloat) {
      buf = pack_plane<float>(x, p, 0.f, [](const void* src, float* dst, int64_t n, const RowsPlan& me) {
        me.t_->pack_f32_deq(me.s_.dtype, src, me.s_.x_zp, me.s_.x_scale, dst, n);
      });
    } else {
      buf = pack_plane<float>(x, p, 0.f, [](const void* src, float* dst, int64_t n, const RowsPlan& me) {
        me.t_->pack_f32_h(static_cast<const uint16_t*>(src), dst, n);
      });
    }
    float* acc = ws.slot<float>(kSlotOutput, static_cast<size_t>(jn_r_));
    float* tmp = ws.slot<float>(kSlotMisc, static_cast<size_t>(g.ow + t_->block));
    const float zp_f = static_cast<float>(s_.y_zp);
    for (int64_t oh = 0; oh < g.oh; ++oh) {
      t_->sumf(buf + oh * row_step, tap_off_.data(), ntaps, acc, jn_);
      const float* sums = decimate(acc, g.ow, g.sw, tmp);
      for (size_t si = 0; si < nseg; ++si) {
        const Seg& sg = segs_[si];
        const float count = static_cast<float>(counts_[cidx_[static_cast<size_t>(oh) * nseg + si]]);
        uint8_t* out = yp + (oh * g.ow + sg.b) * esz;
        if (mode_ == Mode::kAvgFloat)
          t_->req_float(sums + sg.b, sg.e - sg.b, count, s_.y_scale, zp_f, dtype_min(s_.dtype), dtype_max(s_.dtype),
                        s_.dtype, out);
        else
          t_->fin_fp16(sums + sg.b, sg.e - sg.b, count, reinterpret_cast<uint16_t*>(out));
      }
    }
  }

  // float16 averages over whole planes, up to 16 planes at a time
  void plane_fp16_block(const void* x, void* y, int64_t p0, int64_t np) const {
    const int64_t n = s_.g.h * s_.g.w;
    float sums[16];
    t_->fp16_plane_sums(static_cast<const uint16_t*>(x) + p0 * n, n, static_cast<int>(np), sums);
    for (int64_t i = 0; i < np; ++i) static_cast<uint16_t*>(y)[p0 + i] = avg_fp16_finish(sums[i], n);
  }

  struct Seg {
    int64_t b, e, wc;
  };

  PoolSpec s_;
  const PoolRowTable* t_;
  Mode mode_ = Mode::kMax;
  int64_t hp_ = 0, wp_ = 0, jn_ = 0, jn_r_ = 0;
  std::vector<int64_t> tap_off_;
  std::vector<Seg> segs_;
  std::vector<int64_t> counts_;
  std::vector<ClosedFormMultiplier> cf_;
  std::vector<int> left_;
  std::vector<int32_t> cidx_;
};

class RowsKernel : public PoolKernel {
 public:
  RowsKernel(const char* name, Isa isa) : name_(name), isa_(isa) {}
  std::string name() const override { return name_; }
  std::string algo() const override { return "rows"; }
  Isa isa() const override { return isa_; }
  bool supports(const PoolSpec&, std::string* why) const override {
    if (table() == nullptr) {
      *why = "not built for this ISA";
      return false;
    }
    return true;
  }
  std::unique_ptr<PoolPlan> plan(const PoolSpec& spec) const override {
    return std::make_unique<RowsPlan>(spec, table());
  }

 private:
  const PoolRowTable* table() const {
    return isa_ == Isa::kScalar ? pool_rows_scalar() : isa_ == Isa::kAvx2 ? pool_rows_avx2() : pool_rows_avx512();
  }
  const char* name_;
  Isa isa_;
};

#define NPUEMU_POOL_ROWS_KERNEL(cls, name, isa) \
  class cls final : public RowsKernel {         \
   public:                                      \
    cls() : RowsKernel(name, isa) {}            \
  };                                            \
  NPUEMU_REGISTER_POOL_KERNEL(cls)

NPUEMU_POOL_ROWS_KERNEL(PoolRowsScalar, "pool_any_rows_scalar", Isa::kScalar);
NPUEMU_POOL_ROWS_KERNEL(PoolRowsAvx2, "pool_any_rows_avx2", Isa::kAvx2);
NPUEMU_POOL_ROWS_KERNEL(PoolRowsAvx512, "pool_any_rows_avx512vnni", Isa::kAvx512Vnni);

}  // namespace
}  // namespace npuemu
