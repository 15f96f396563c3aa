// Pooling of the PPU: MaxPool (int8, uint8, int16, float16) and AveragePool (quantized int8 / uint8 with
// onnxruntime's com.microsoft QLinearAveragePool semantics, and float16 with ONNX AveragePool
// semantics) on NCHW tensors; GlobalAveragePool is AveragePool with the window = the whole plane.
//
// The arithmetic of one output element is defined in pool_arith.h (the executable spec,
// docs/arithmetic.md section 7). This file holds the geometry, the kernel interface and registry, and
// the row-function tables of the optimized ("rows") kernels.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "quant/fixedpoint.h"
#include "quant/requant.h"

namespace npuemu {

enum class PoolKind : int { kMax = 0, kAvg = 1 };

// ONNX pooling geometry (NCHW; pads top, left, bottom, right). Output size per dimension:
//   out = floor_or_ceil((in + pad_begin + pad_end - dilation*(k-1) - 1) / stride) + 1, and with ceil_mode a
//   last window that would start in the end padding is dropped ((out-1)*stride >= in + pad_begin ->
//   out - 1), as onnxruntime and onnx.reference compute it.
struct PoolGeometry {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  bool ceil_mode = false;
  int64_t oh = 1, ow = 1;  // derived
  // the window covers the whole plane with no padding (GlobalAveragePool, and onnxruntime's
  // QLinearAveragePool fallback to its global kernel)
  bool whole_plane() const {
    return kh == h && kw == w && pt == 0 && pl == 0 && pb == 0 && pr == 0 && oh == 1 && ow == 1;
  }
};

// Validates and derives the output size; throws std::invalid_argument naming the values.
PoolGeometry make_pool_geometry(const std::vector<int64_t>& x_shape, const std::vector<int64_t>& kernel,
                                const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                                const std::vector<int64_t>& dilations, bool ceil_mode);

// Which positions an average divides by.
enum class PoolCount : int {
  kValid = 0,        // count_include_pad = 0: the window's elements inside the input
  kKernel = 1,       // count_include_pad = 1, QLinearAveragePool: always kh * kw
  kPaddedExtent = 2  // count_include_pad = 1, ONNX AveragePool: the window's positions inside the padded input
};

struct PoolSpec {
  PoolKind kind = PoolKind::kMax;
  DType dtype = DType::kInt8;  // of x and y
  PoolGeometry g;
  PoolCount count = PoolCount::kValid;
  // quantized average pooling (int8 / uint8)
  Rounding rounding = Rounding::kFixedPoint;
  float x_scale = 1.f, y_scale = 1.f;
  int32_t x_zp = 0, y_zp = 0;
  bool quantized_avg() const { return kind == PoolKind::kAvg && dtype != DType::kFloat16; }
};

class PoolPlan {
 public:
  virtual ~PoolPlan() = default;
  // x: NCHW input, y: NCHW output of the spec's dtype (C-contiguous, not overlapping).
  virtual void run(const void* x, void* y, const CoreSet& cores) const = 0;
};

class PoolKernel {
 public:
  virtual ~PoolKernel() = default;
  virtual std::string name() const = 0;  // pool_<family>_<algo>_<isa>
  virtual std::string algo() const = 0;  // reference | rows
  virtual Isa isa() const = 0;
  virtual bool supports(const PoolSpec& spec, std::string* why) const = 0;
  virtual std::unique_ptr<PoolPlan> plan(const PoolSpec& spec) const = 0;
};

std::vector<const PoolKernel*>& pool_kernel_registry();

struct PoolKernelRegistrar {
  explicit PoolKernelRegistrar(const PoolKernel* k) { pool_kernel_registry().push_back(k); }
};

#define NPUEMU_REGISTER_POOL_KERNEL(cls) \
  static const cls g_pool_kernel_##cls{}; \
  static const ::npuemu::PoolKernelRegistrar g_pool_registrar_##cls{&g_pool_kernel_##cls}

// ---------------------------------------------------------------------------------------------------
// Row functions of the optimized kernels.
//
// A plane is first packed into a padded buffer of (h + pt + pb) rows of (w + pl + pr) elements in a
// 16- or 32-bit working format (see pool_arith.h): order keys (int16) for MaxPool, x - x_zp (int32) for
// fixed-point averages, float32 for float averages; padding holds a value that cannot change the result
// (the smallest key, 0, +0.0). For output row oh, the window taps are fixed offsets from the row
// base + oh*sh*pitch, and a row function combines them for a run of consecutive columns j (stride 1);
// the kernel then keeps every sw-th column. Each column's taps are combined in (kh, kw) order, so the
// float32 sums are the reference's sums bit for bit.
struct PoolRowTable {
  int block = 1;  // row functions may read and write up to `block - 1` elements past n
  // packing of n contiguous source elements
  void (*pack_key16)(DType t, const void* x, int16_t* out, int64_t n) = nullptr;
  void (*pack_i32)(DType t, const void* x, int32_t zp, int32_t* out, int64_t n) = nullptr;
  void (*pack_f32_deq)(DType t, const void* x, int32_t zp, float scale, float* out, int64_t n) = nullptr;
  void (*pack_f32_h)(const uint16_t* x, float* out, int64_t n) = nullptr;
  // acc[j] = combination over t of base[off[t] + j], j in [0, n)
  void (*max16)(const int16_t* base, const int64_t* off, int ntaps, int16_t* acc, int64_t n) = nullptr;
  void (*sum32)(const int32_t* base, const int64_t* off, int ntaps, int32_t* acc, int64_t n) = nullptr;
  void (*sumf)(const float* base, const int64_t* off, int ntaps, float* acc, int64_t n) = nullptr;
  // finishing n outputs that share one divisor (count)
  // y = zp + clamp(closed_form(s << left), lo, hi) (pool_arith.h avg_fixed)
  void (*req_fixed)(const int32_t* s, int64_t n, int left, const ClosedFormMultiplier& c, int32_t lo, int32_t hi,
                    int32_t zp, DType t, void* out) = nullptr;
  void (*req_float)(const float* s, int64_t n, float count, float y_scale, float zp_f, int32_t qmin, int32_t qmax,
                    DType t, void* out) = nullptr;
  void (*fin_fp16)(const float* s, int64_t n, float count, uint16_t* out) = nullptr;
  void (*unkey16)(const int16_t* k, int64_t n, DType t, void* out) = nullptr;
  // whole planes: sum of n integers; float32 sums of `planes` float16 planes of n elements each, every
  // plane summed sequentially from +0.0 (planes <= 16)
  int64_t (*plane_sum)(DType t, const void* x, int64_t n) = nullptr;
  void (*fp16_plane_sums)(const uint16_t* x, int64_t n, int planes, float* sums) = nullptr;
};

const PoolRowTable* pool_rows_scalar();
const PoolRowTable* pool_rows_avx2();
const PoolRowTable* pool_rows_avx512();

}  // namespace npuemu
