// A convolution operator: validated arguments, the selected kernel and its plan.
//
// ConvOp is the unit the Python API and (later) the graph runtime use: build it once per weight set and
// input shape (weights packed, constants derived), then run() many times. conv_op_cached() serves the
// functional API: it returns a previously built op whose arguments are identical (compared by value,
// weights included), so repeated functional calls neither re-pack weights nor allocate.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/conv/conv.h"

namespace npuemu {

struct ConvArgs {
  std::vector<int64_t> x_shape;  // NCHW, or NHWC when nhwc
  bool nhwc = false;
  DType x_dtype = DType::kInt8;
  const void* w = nullptr;  // OIHW, or [I, O] when w_transposed (matmul's B)
  std::vector<int64_t> w_shape;
  bool w_transposed = false;
  DType w_dtype = DType::kInt8;
  std::vector<int64_t> strides{1, 1}, pads{0, 0, 0, 0}, dilations{1, 1};
  int64_t group = 1;
  // integer families
  int32_t x_zp = 0;
  std::vector<int32_t> w_zp;  // empty, 1 or oc values
  const void* bias = nullptr;
  DType bias_dtype = DType::kInt32;  // int32 / int64 (integer families), float16 (fp16 family)
  int64_t bias_len = 0;
  bool requant = false;
  float x_scale = 1.f, y_scale = 1.f;
  std::vector<float> w_scale;
  int32_t y_zp = 0;
  DType y_dtype = DType::kInt32;  // ignored unless requant (raw accumulators otherwise)
  Rounding rounding = Rounding::kFixedPoint;
  Activation act;
  std::string algo = "auto";  // auto | direct | winograd | reference
  std::string kernel;         // force a registered kernel by name (tests, benchmarks)
};

class ConvOp {
 public:
  explicit ConvOp(const ConvArgs& args);
  const ConvSpec& spec() const { return spec_; }
  const std::string& kernel_name() const { return kernel_name_; }
  std::vector<int64_t> y_shape() const;
  DType y_dtype() const { return spec_.y_dtype; }
  size_t packed_bytes() const { return plan_->packed_bytes(); }
  // int4 weights as stored: two per byte, element 2i in the low nibble (empty unless w_dtype is int4).
  const std::vector<uint8_t>& int4_weights() const { return w_int4_; }
  // x and y must be C-contiguous NCHW buffers of the op's shapes and dtypes (checked by the caller).
  void run(const void* x, void* y, uint32_t core_mask) const;

 private:
  friend std::shared_ptr<ConvOp> conv_op_cached(const ConvArgs& args);
  void settle_near_tie(const ConvSpec& s, const ConvData& d, const ConvKernel* first, const ConvKernel* second);
  ConvSpec spec_;
  std::string kernel_name_;
  std::unique_ptr<ConvPlan> plan_;
  // The defining arguments by value (pointers nulled; weights and bias as bytes), for the cache.
  ConvArgs args_;
  std::vector<uint8_t> w_bytes_, bias_bytes_;
  std::vector<uint8_t> w_int4_;
};

std::shared_ptr<ConvOp> conv_op_cached(const ConvArgs& args);
void conv_cache_clear();

// Kernels that could run `spec` on this machine, best first (for tests and benchmarks).
std::vector<const ConvKernel*> conv_candidates(const ConvSpec& spec, const std::string& algo);

}  // namespace npuemu
