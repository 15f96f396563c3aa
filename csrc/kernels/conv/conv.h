// Convolution: problem description, the kernel interface every implementation registers, and the
// registry. ONNX semantics: x is NCHW, w is OIHW (O = output channels, I = input channels / group),
// pads are (top, left, bottom, right) and padded positions hold the input zero point (they contribute
// nothing to the accumulator).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "quant/requant.h"

namespace npuemu {

struct ConvGeometry {
  int64_t n = 1, c = 0, h = 0, w = 0;  // input
  int64_t oc = 0, kh = 0, kw = 0;      // weights (oc, c/group, kh, kw)
  int64_t sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t group = 1;
  int64_t oh = 0, ow = 0;  // derived
  int64_t icg() const { return c / group; }
  int64_t ocg() const { return oc / group; }
  int64_t macs() const { return n * oc * oh * ow * icg() * kh * kw; }
  bool depthwise() const { return group == c && group == oc; }
};

// Validates the shapes and attributes and derives the output size. Throws std::invalid_argument whose
// message names the offending values.
ConvGeometry make_conv_geometry(const std::vector<int64_t>& x_shape, const std::vector<int64_t>& w_shape,
                                const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                                const std::vector<int64_t>& dilations, int64_t group);

// The accumulator family decides the arithmetic contract (docs/arithmetic.md).
enum class ConvFamily : int {
  kInt8 = 0,   // 8/4-bit x and w: int32 accumulator, two's-complement wrap-around
  kInt16 = 1,  // 16-bit x or w: int64 accumulator
  kFp16 = 2,   // fp16 x and w: fp32 accumulator (FMA chain, fixed order), fp16 output
};

struct ConvSpec {
  ConvGeometry g;
  ConvFamily family = ConvFamily::kInt8;
  DType x_dtype = DType::kInt8;  // uint8 | int8 | int4 | int16 | float16
  DType w_dtype = DType::kInt8;  // uint8 | int8 | int4 | int16 | float16
  DType y_dtype = DType::kInt32; // int32 | int64 (raw accumulators), uint8 | int8 | int4 | int16, float16
  bool requant = false;          // y is requantized through an OutputStage
  bool has_w_zero_point = false; // some w_zero_point != 0
  Activation act;                // float16 path; integer paths fold it into the OutputStage
  bool nhwc = false;             // x and y are channels-last (NHWC) instead of NCHW (matmul, FC layers)
};

// Everything a kernel needs to build its plan. Pointers are valid only during plan().
struct ConvData {
  const void* w = nullptr;          // OIHW in spec.w_dtype (int4 as one int8 per value)
  std::vector<int64_t> bias;        // integer families: per output channel (0 if absent)
  std::vector<float> bias_f;        // fp16 family: per output channel, as fp32 (exact from fp16)
  int32_t x_zp = 0;
  std::vector<int32_t> w_zp;        // per output channel
  OutputStage os;                   // when spec.requant
};

// Integer weight i (flat OIHW index) of output channel oc minus its zero point, whatever the weight
// dtype (int4 weights are held one per int8).
inline int64_t weight_minus_zp(const ConvSpec& s, const ConvData& d, int64_t oc, int64_t i) {
  switch (s.w_dtype) {
    case DType::kUInt8: return static_cast<const uint8_t*>(d.w)[i] - d.w_zp[oc];
    case DType::kInt16: return static_cast<const int16_t*>(d.w)[i] - d.w_zp[oc];
    default: return static_cast<const int8_t*>(d.w)[i] - d.w_zp[oc];
  }
}

// A prepared convolution: weights packed, constants derived. run() is const, thread-safe and
// allocation-free in the steady state (it only uses per-thread workspaces).
class ConvPlan {
 public:
  virtual ~ConvPlan() = default;
  // x: input of the spec's x dtype; y: output of the spec's y dtype; NCHW, or NHWC when spec.nhwc.
  virtual void run(const void* x, void* y, const CoreSet& cores) const = 0;
  // Bytes of packed constants this plan holds (weights, biases, requantization tables).
  virtual size_t packed_bytes() const = 0;
};

class ConvKernel {
 public:
  virtual ~ConvKernel() = default;
  // <op>_<family>_<algo>_<isa>, e.g. conv2d_int8_direct_avx512vnni.
  virtual std::string name() const = 0;
  // Whether this kernel implements accumulator family f at all (supports() refines by spec).
  virtual bool handles(ConvFamily f) const = 0;
  virtual std::string algo() const = 0;  // reference | direct | winograd23 | winograd43
  virtual Isa isa() const = 0;
  // Whether this kernel implements the spec; when not, *why says so (for error messages).
  virtual bool supports(const ConvSpec& spec, std::string* why) const = 0;
  // Channels-last tensors are opt-in: a kernel that does not override this never sees one.
  virtual bool supports_nhwc() const { return false; }
  // Estimated run time in nanoseconds on one core; used by algo='auto'. Deterministic.
  virtual double cost(const ConvSpec& spec) const = 0;
  // Builds the plan. May return nullptr when the data (not the spec) is outside what the kernel
  // handles exactly; selection then moves to the next kernel.
  virtual std::unique_ptr<ConvPlan> plan(const ConvSpec& spec, const ConvData& data) const = 0;
};

std::vector<const ConvKernel*>& conv_kernel_registry();

struct ConvKernelRegistrar {
  explicit ConvKernelRegistrar(const ConvKernel* k) { conv_kernel_registry().push_back(k); }
};

#define NPUEMU_REGISTER_CONV_KERNEL(cls)    \
  static const cls g_conv_kernel_##cls{};   \
  static const ::npuemu::ConvKernelRegistrar g_conv_registrar_##cls{&g_conv_kernel_##cls}

// Cost model constants shared by the kernels (nanoseconds): per-element memory passes.
double conv_memory_cost_ns(const ConvSpec& spec);

}  // namespace npuemu
