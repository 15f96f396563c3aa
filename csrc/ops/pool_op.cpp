#include "ops/pool_op.h"

#include <cmath>
#include <cstring>

#include "core/check.h"
#include "ops/kernel_select.h"
#include "ops/op_cache.h"

namespace npuemu {

PoolOp::PoolOp(const PoolArgs& a) : args_(a) {
  PoolSpec& s = spec_;
  s.kind = a.kind;
  s.dtype = a.dtype;
  const char* opname = a.kind == PoolKind::kMax ? "max_pool" : a.global ? "global_average_pool" : "avg_pool";
  if (a.kind == PoolKind::kMax) {
    NPU_CHECK_TYPE(a.dtype == DType::kInt8 || a.dtype == DType::kUInt8 || a.dtype == DType::kInt16 ||
                       a.dtype == DType::kFloat16,
                   "max_pool needs int8, uint8, int16 or float16 x, got ", dtype_name(a.dtype));
    NPU_CHECK(!a.quantized, "max_pool takes no scales or zero points (the maximum commutes with them)");
  } else {
    NPU_CHECK_TYPE(a.dtype == DType::kInt8 || a.dtype == DType::kUInt8 || a.dtype == DType::kFloat16, opname,
                   " needs int8, uint8 (quantized) or float16 x, got ", dtype_name(a.dtype));
    if (a.dtype == DType::kFloat16) {
      NPU_CHECK(!a.quantized, opname, " of float16 takes no scales or zero points");
    } else {
      NPU_CHECK(a.quantized, opname, " of ", dtype_name(a.dtype), " needs x_scale and y_scale (QLinearAveragePool)");
    }
    NPU_CHECK(a.dilations.size() == 2 && a.dilations[0] == 1 && a.dilations[1] == 1, opname,
              " takes no dilations");
  }
  std::vector<int64_t> kernel = a.kernel_shape, strides = a.strides, pads = a.pads;
  if (a.global) {
    NPU_CHECK(a.x_shape.size() == 4, "x must be 4-D NCHW, got ", a.x_shape.size(), " dimensions");
    kernel = {a.x_shape[2], a.x_shape[3]};
    strides = {1, 1};
    pads = {0, 0, 0, 0};
  }
  s.g = make_pool_geometry(a.x_shape, kernel, strides, pads, a.dilations, a.ceil_mode);
  if (a.kind == PoolKind::kAvg) {
    if (a.dtype == DType::kFloat16) {
      s.count = a.count_include_pad ? PoolCount::kPaddedExtent : PoolCount::kValid;
    } else {
      s.count = a.count_include_pad ? PoolCount::kKernel : PoolCount::kValid;
      check_scale("x_scale", a.x_scale);
      check_scale("y_scale", a.y_scale);
      check_zero_point("x_zero_point", a.x_zp, a.dtype);
      check_zero_point("y_zero_point", a.y_zp, a.dtype);
      NPU_CHECK(s.g.kh * s.g.kw <= kMaxQuantAvgWindow, opname, ": a window of ", s.g.kh * s.g.kw,
                " elements exceeds ", kMaxQuantAvgWindow, ", the most whose int32 sum of |x - x_zp| <= 255 is exact");
      NPU_CHECK(a.rounding != Rounding::kFixedPoint || static_cast<double>(a.x_scale) / a.y_scale < 1073741824.0,
                opname,
                ": the requantization multiplier x_scale / (y_scale * count) = ",
                static_cast<double>(a.x_scale) / a.y_scale, " (count 1) is too large (must be < 2^30)");
      s.rounding = a.rounding;
      s.x_scale = a.x_scale;
      s.y_scale = a.y_scale;
      s.x_zp = a.x_zp;
      s.y_zp = a.y_zp;
    }
  }

  const PoolKernel* chosen = nullptr;
  if (!a.kernel.empty()) {
    chosen = find_forced_kernel(pool_kernel_registry(), a.kernel, "pooling");
    std::string why;
    NPU_CHECK(chosen->supports(s, &why), "kernel '", a.kernel, "' does not support this op: ", why);
  } else {  // the highest ISA that supports the op; the reference only when nothing else does
    for (const PoolKernel* k : pool_kernel_registry()) {
      std::string why;
      if (k->algo() == "reference" || static_cast<int>(k->isa()) > static_cast<int>(active_isa()) ||
          !k->supports(s, &why))
        continue;
      if (chosen == nullptr || static_cast<int>(k->isa()) > static_cast<int>(chosen->isa())) chosen = k;
    }
    if (chosen == nullptr)
      for (const PoolKernel* k : pool_kernel_registry())
        if (k->algo() == "reference") chosen = k;
    NPU_CHECK(chosen != nullptr, "no pooling kernel supports this op");
  }
  kernel_name_ = chosen->name();
  plan_ = chosen->plan(s);
  y_shape_ = {s.g.n, s.g.c, s.g.oh, s.g.ow};
}

void PoolOp::run(const void* x, void* y, uint32_t core_mask) const {
  const CoreSet cores = CorePool::instance().cores_for_mask(core_mask);
  plan_->run(x, y, cores);
}

namespace {

bool same_args(const PoolArgs& a, const PoolArgs& b) {
  return a.kind == b.kind && a.global == b.global && a.dtype == b.dtype && a.x_shape == b.x_shape &&
         a.kernel_shape == b.kernel_shape && a.strides == b.strides && a.pads == b.pads && a.dilations == b.dilations &&
         a.ceil_mode == b.ceil_mode && a.count_include_pad == b.count_include_pad && a.quantized == b.quantized &&
         same_bits(a.x_scale, b.x_scale) && same_bits(a.y_scale, b.y_scale) && a.x_zp == b.x_zp && a.y_zp == b.y_zp &&
         a.rounding == b.rounding && a.kernel == b.kernel;
}

// Intentionally leaked: the cache must outlive every static destructor that could still run an op.
OpCache<PoolOp>& cache() {
  static OpCache<PoolOp>* c = new OpCache<PoolOp>(32);
  return *c;
}

}  // namespace

std::shared_ptr<PoolOp> pool_op_cached(const PoolArgs& args) {
  return cache().get([&](const PoolOp& op) { return same_args(op.args(), args); },
                     [&] { return std::make_shared<PoolOp>(args); });
}

void pool_cache_clear() { cache().clear(); }

}  // namespace npuemu
