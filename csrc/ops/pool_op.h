// Pooling operator (MaxPool, AveragePool, GlobalAveragePool): validated arguments and the selected
// kernel. pool_op_cached() serves the functional API: an identical earlier call's op is reused, so
// repeated calls allocate nothing.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/pool/pool.h"

namespace npuemu {

// Largest window of a quantized average: the int32 sum of |x - x_zp| <= 255 stays exact,
// 255 * 8,421,504 = 2,147,483,520 < 2^31.
constexpr int64_t kMaxQuantAvgWindow = 8421504;

struct PoolArgs {
  PoolKind kind = PoolKind::kMax;
  bool global = false;  // GlobalAveragePool: the window is the whole plane
  DType dtype = DType::kInt8;
  std::vector<int64_t> x_shape;
  std::vector<int64_t> kernel_shape{1, 1}, strides{1, 1}, pads{0, 0, 0, 0}, dilations{1, 1};
  bool ceil_mode = false;
  bool count_include_pad = false;
  bool quantized = false;  // scales given (average pooling of int8 / uint8)
  float x_scale = 1.f, y_scale = 1.f;
  int32_t x_zp = 0, y_zp = 0;
  Rounding rounding = Rounding::kFixedPoint;
  std::string kernel;  // force a registered kernel by name
};

class PoolOp {
 public:
  explicit PoolOp(const PoolArgs& args);
  const PoolSpec& spec() const { return spec_; }
  const PoolArgs& args() const { return args_; }
  const std::string& kernel_name() const { return kernel_name_; }
  const std::vector<int64_t>& y_shape() const { return y_shape_; }
  DType y_dtype() const { return spec_.dtype; }
  void run(const void* x, void* y, uint32_t core_mask) const;

 private:
  PoolArgs args_;
  PoolSpec spec_;
  std::vector<int64_t> y_shape_;  // (n, c, oh, ow)
  std::string kernel_name_;
  std::unique_ptr<PoolPlan> plan_;
};

std::shared_ptr<PoolOp> pool_op_cached(const PoolArgs& args);
void pool_cache_clear();

}  // namespace npuemu
