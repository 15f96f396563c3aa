#include "ops/eltwise_op.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/shape.h"
#include "ops/kernel_select.h"
#include "ops/op_cache.h"

namespace npuemu {
namespace {

// quantize_multiplier() with a message that names the op's scales.
QuantizedMultiplier checked_multiplier(double m, const char* what) {
  NPU_CHECK(std::isfinite(m) && m < 1073741824.0, "the requantization multiplier ", what, " = ", m,
            " is too large (must be < 2^30); check the scales");
  return quantize_multiplier(m);
}

// Whether a is the operand that onnxruntime's broadcaster sees as one value over a span: a is broadcast
// along the output's last dimension of size > 1, or the output is a single element.
bool a_is_span_scalar(const std::vector<int64_t>& a, const std::vector<int64_t>& y) {
  const size_t lead = y.size() - a.size();
  for (size_t d = y.size(); d-- > 0;) {
    if (y[d] == 1) continue;
    return d < lead || a[d - lead] == 1;
  }
  return true;
}

}  // namespace

EltParams make_eltwise_params(const EltwiseArgs& a) {
  EltParams p;
  NPU_CHECK(a.act.kind == ActKind::kNone || a.act.kind == ActKind::kRelu || a.act.kind == ActKind::kClip,
            a.op == EltOp::kAdd ? "add" : "mul",
            " takes activation None, 'relu', 'relu6' or ('clip', min, max); leaky_relu is not fused here");
  check_activation(a.act);
  p.act = a.act;
  if (!a.quantized) return p;

  check_scale("a_scale", a.a_scale);
  check_scale("b_scale", a.b_scale);
  check_scale("y_scale", a.y_scale);
  check_zero_point("a_zero_point", a.a_zp, a.dtype);
  check_zero_point("b_zero_point", a.b_zp, a.dtype);
  check_zero_point("y_zero_point", a.y_zp, a.dtype);
  p.za = a.a_zp;
  p.zb = a.b_zp;
  p.zy = a.y_zp;
  activation_bounds(a.act, a.y_scale, a.y_zp, a.dtype, &p.lo, &p.hi);

  // rounding='fixed_point': TFLite's Prepare of Add (left_shift 20) and Mul, multipliers in double (only
  // then: the float rounding accepts scales whose Q31 multipliers would not be representable).
  const double sa = a.a_scale, sb = a.b_scale, sy = a.y_scale;
  if (a.rounding != Rounding::kFixedPoint) {
    // no fixed-point constants
  } else if (a.op == EltOp::kAdd) {
    p.left_shift = 20;
    const double twice_max = 2.0 * std::max(sa, sb);
    p.ma = checked_multiplier(sa / twice_max, "a_scale / (2 max(a_scale, b_scale))");
    p.mb = checked_multiplier(sb / twice_max, "b_scale / (2 max(a_scale, b_scale))");
    p.my = checked_multiplier(twice_max / (static_cast<double>(1 << p.left_shift) * sy),
                              "2 max(a_scale, b_scale) / (2^20 y_scale)");
  } else {
    p.my = checked_multiplier(sa * sb / sy, "a_scale * b_scale / y_scale");
  }
  p.ca = closed_form(p.ma);
  p.cb = closed_form(p.mb);
  p.cy = closed_form(p.my);

  // rounding='float': onnxruntime's float32 constants (eltwise_arith.h), every operation in float32
  p.ra = a.a_scale / a.y_scale;
  p.rb = a.b_scale / a.y_scale;
  const float fza = static_cast<float>(a.a_zp), fzb = static_cast<float>(a.b_zp), fzy = static_cast<float>(a.y_zp);
  p.fix_ab = fzy - std::fmaf(p.ra, fza, p.rb * fzb);
  p.fix_ba = fzy - std::fmaf(p.rb, fzb, p.ra * fza);
  p.swap = a_is_span_scalar(a.a_shape, broadcast_shape(a.a_shape, a.b_shape));
  p.ratio = a.a_scale * a.b_scale / a.y_scale;  // float32, left to right, as MLAS
  p.zy_f = fzy;
  return p;
}

EltwiseOp::EltwiseOp(const EltwiseArgs& a) : args_(a) {
  for (int64_t d : a.a_shape) NPU_CHECK(d > 0, "a must not be empty, got shape ", shape_str(a.a_shape));
  for (int64_t d : a.b_shape) NPU_CHECK(d > 0, "b must not be empty, got shape ", shape_str(a.b_shape));
  if (a.quantized) {
    NPU_CHECK_TYPE(a.dtype == DType::kInt8 || a.dtype == DType::kUInt8,
                   "quantized add/mul needs int8 or uint8 a and b, got ", dtype_name(a.dtype));
  } else {
    NPU_CHECK_TYPE(a.dtype == DType::kFloat16, "add/mul without scales needs float16 a and b, got ",
                   dtype_name(a.dtype));
  }
  EltSpec& s = spec_;
  s.op = a.op;
  s.dtype = a.dtype;
  s.a_shape = a.a_shape;
  s.b_shape = a.b_shape;
  s.y_shape = broadcast_shape(a.a_shape, a.b_shape);
  int64_t total = 1;
  for (int64_t d : s.y_shape) {
    total *= d;
    NPU_CHECK(total < (int64_t{1} << 31), "output too large (more than 2^31 elements), shape ", shape_str(s.y_shape));
  }
  if (!a.quantized)
    s.kind = EltKind::kFp16;
  else if (a.rounding == Rounding::kFixedPoint)
    s.kind = a.dtype == DType::kInt8 ? EltKind::kFixedS8 : EltKind::kFixedU8;
  else
    s.kind = a.dtype == DType::kInt8 ? EltKind::kFloatS8 : EltKind::kFloatU8;
  s.p = make_eltwise_params(a);

  // kernel selection: a forced kernel, else the rows kernel of the highest available ISA
  const EltwiseKernel* chosen = nullptr;
  std::string names;
  for (const EltwiseKernel* k : eltwise_kernel_registry()) names += (names.empty() ? "" : ", ") + k->name();
  if (!a.kernel.empty()) {
    chosen = find_forced_kernel(eltwise_kernel_registry(), a.kernel, "element-wise");
    std::string why;
    NPU_CHECK(chosen->supports(s, &why), "kernel '", a.kernel, "' does not support this op: ", why);
  } else {
    // the cheapest kernel that runs here, each kernel in its highest-ISA variant (the reference costs
    // most, so it is chosen only when nothing else supports the op)
    std::vector<const EltwiseKernel*> cands;
    for (const EltwiseKernel* k : eltwise_kernel_registry()) {
      std::string why;
      if (static_cast<int>(k->isa()) <= static_cast<int>(active_isa()) && k->supports(s, &why)) cands.push_back(k);
    }
    keep_highest_isa(cands);
    double best = 0;
    for (const EltwiseKernel* k : cands) {
      const double c = k->cost(s);
      if (chosen == nullptr || c < best || (c == best && k->name() < chosen->name())) {
        chosen = k;
        best = c;
      }
    }
    NPU_CHECK(chosen != nullptr, "no element-wise kernel supports this op");
  }
  kernel_name_ = chosen->name();
  plan_ = chosen->plan(s);
}

void EltwiseOp::run(const void* a, const void* b, void* y, uint32_t core_mask) const {
  const CoreSet cores = CorePool::instance().cores_for_mask(core_mask);
  plan_->run(a, b, y, cores);
}

// ---------------------------------------------------------------------------------------------------
// Cache for the functional API.

namespace {


bool same_args(const EltwiseArgs& a, const EltwiseArgs& b) {
  return a.op == b.op && a.dtype == b.dtype && a.a_shape == b.a_shape && a.b_shape == b.b_shape &&
         a.quantized == b.quantized && same_bits(a.a_scale, b.a_scale) && same_bits(a.b_scale, b.b_scale) &&
         same_bits(a.y_scale, b.y_scale) && a.a_zp == b.a_zp && a.b_zp == b.b_zp && a.y_zp == b.y_zp &&
         a.rounding == b.rounding && a.act.kind == b.act.kind && same_bits(a.act.lo, b.act.lo) &&
         same_bits(a.act.hi, b.act.hi) && same_bits(a.act.alpha, b.act.alpha) && a.kernel == b.kernel;
}

// Intentionally leaked: the cache must outlive every static destructor that could still run an op.
OpCache<EltwiseOp>& cache() {
  static OpCache<EltwiseOp>* c = new OpCache<EltwiseOp>(32);
  return *c;
}

}  // namespace

std::shared_ptr<EltwiseOp> eltwise_op_cached(const EltwiseArgs& args) {
  return cache().get([&](const EltwiseOp& op) { return same_args(op.args(), args); },
                     [&] { return std::make_shared<EltwiseOp>(args); });
}

void eltwise_cache_clear() { cache().clear(); }

}  // namespace npuemu
