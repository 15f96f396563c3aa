// Element-wise operator (Add, Mul): validated arguments, prepared constants, the selected kernel.
//
// EltwiseOp validates shapes, dtypes, scales and zero points (std::invalid_argument / type_error naming
// the values), derives the fixed-point multipliers and float constants once, and picks the best kernel
// for the active ISA. eltwise_op_cached() serves the functional API: an identical earlier call's op is
// reused, so repeated calls allocate nothing.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/eltwise/eltwise.h"

namespace npuemu {

struct EltwiseArgs {
  EltOp op = EltOp::kAdd;
  DType dtype = DType::kInt8;  // of a and b: int8 / uint8 (quantized) or float16
  std::vector<int64_t> a_shape, b_shape;
  bool quantized = true;       // false: float16, no scales or zero points
  float a_scale = 1.f, b_scale = 1.f, y_scale = 1.f;
  int32_t a_zp = 0, b_zp = 0, y_zp = 0;
  Rounding rounding = Rounding::kFixedPoint;
  Activation act;
  std::string kernel;  // force a registered kernel by name (tests, benchmarks)
};

class EltwiseOp {
 public:
  explicit EltwiseOp(const EltwiseArgs& args);
  const EltSpec& spec() const { return spec_; }
  const EltwiseArgs& args() const { return args_; }
  const std::string& kernel_name() const { return kernel_name_; }
  const std::vector<int64_t>& y_shape() const { return spec_.y_shape; }
  DType y_dtype() const { return spec_.dtype; }
  // a, b, y: C-contiguous buffers of the op's shapes and dtype (checked by the caller).
  void run(const void* a, const void* b, void* y, uint32_t core_mask) const;

 private:
  EltwiseArgs args_;
  EltSpec spec_;
  std::string kernel_name_;
  std::unique_ptr<EltwisePlan> plan_;
};

std::shared_ptr<EltwiseOp> eltwise_op_cached(const EltwiseArgs& args);
void eltwise_cache_clear();

// Prepares the constants of an element-wise spec from its arguments (exposed for tests of the
// multipliers): validates scales, zero points and the activation.
EltParams make_eltwise_params(const EltwiseArgs& args);

}  // namespace npuemu
