// Element-wise binary ops of the DPU: quantized Add / Mul (int8, uint8; onnxruntime's com.microsoft
// QLinearAdd / QLinearMul) and float16 Add / Mul, with ONNX multidirectional (numpy) broadcasting.
//
// The arithmetic of one element is defined in eltwise_arith.h (the executable spec, docs/arithmetic.md
// section 7). This file holds the problem description, the prepared constants, the kernel interface and
// registry, the broadcast decomposition shared by the optimized kernels ("rows"), and the row-function
// tables each ISA fills in.
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

enum class EltOp : int { kAdd = 0, kMul = 1 };

// The arithmetic variant: quantized int8/uint8 with one of the two named roundings, or float16.
enum class EltKind : int { kFixedS8 = 0, kFixedU8 = 1, kFloatS8 = 2, kFloatU8 = 3, kFp16 = 4 };
constexpr int kEltKinds = 5;

inline const char* elt_op_name(EltOp op) { return op == EltOp::kAdd ? "add" : "mul"; }

// Constants derived once from the scales and zero points (see eltwise_arith.h for their use).
struct EltParams {
  int32_t za = 0, zb = 0, zy = 0;  // zero points
  int32_t lo = 0, hi = 0;          // output clamp relative to zy (dtype range narrowed by the activation)
  // rounding='fixed_point' (TFLite's integer Add / Mul)
  int left_shift = 20;                  // add: inputs are scaled by 2^20 before their multipliers
  QuantizedMultiplier ma, mb;           // add: s_a / (2 max(s_a, s_b)), s_b / (2 max(s_a, s_b))
  QuantizedMultiplier my;               // add: 2 max(s_a, s_b) / (2^20 s_y); mul: s_a s_b / s_y
  ClosedFormMultiplier ca, cb, cy;      // the same multipliers in closed form (fixedpoint.h)
  // rounding='float' (onnxruntime MLAS on x86-64; eltwise_arith.h)
  float ra = 1.f, rb = 1.f;             // add: s_a / s_y, s_b / s_y in float32
  float fix_ab = 0.f, fix_ba = 0.f;     // add: zy - (ra*za + rb*zb) (fused as MLAS is compiled), two orders
  bool swap = false;                    // add: a is the one value of onnxruntime's broadcast span
  float ratio = 1.f;                    // mul: (sa * sb) / sy, in float32, left to right
  float zy_f = 0.f;                     // mul: float(zy), added before rounding
  // float16
  Activation act;
};

struct EltSpec {
  EltOp op = EltOp::kAdd;
  EltKind kind = EltKind::kFixedS8;
  DType dtype = DType::kInt8;  // of a, b and y
  std::vector<int64_t> a_shape, b_shape, y_shape;
  EltParams p;
};

// A prepared element-wise op: run() is const, thread-safe and allocation-free.
class EltwisePlan {
 public:
  virtual ~EltwisePlan() = default;
  // a, b, y: C-contiguous buffers of the spec's shapes and dtype. y may be exactly a or exactly b
  // (same buffer, same shape) for in-place use.
  virtual void run(const void* a, const void* b, void* y, const CoreSet& cores) const = 0;
};

class EltwiseKernel {
 public:
  virtual ~EltwiseKernel() = default;
  virtual std::string name() const = 0;  // eltwise_<family>_<algo>_<isa>
  virtual std::string algo() const = 0;  // reference | rows | lut
  virtual Isa isa() const = 0;
  virtual bool supports(const EltSpec& spec, std::string* why) const = 0;
  // Estimated time in nanoseconds of one run (plus, for the table lookup, the tabulation); the op picks
  // the cheapest supported kernel of the active ISA tier. Deterministic.
  virtual double cost(const EltSpec& spec) const = 0;
  virtual std::unique_ptr<EltwisePlan> plan(const EltSpec& spec) const = 0;
};

int64_t elt_output_elements(const EltSpec& spec);

std::vector<const EltwiseKernel*>& eltwise_kernel_registry();



struct EltwiseKernelRegistrar {
  explicit EltwiseKernelRegistrar(const EltwiseKernel* k) { eltwise_kernel_registry().push_back(k); }
};

#define NPUEMU_REGISTER_ELTWISE_KERNEL(cls) \
  static const cls g_eltwise_kernel_##cls{}; \
  static const ::npuemu::EltwiseKernelRegistrar g_eltwise_registrar_##cls{&g_eltwise_kernel_##cls}

// Broadcasting. Output shape of numpy / ONNX multidirectional broadcasting; throws std::invalid_argument
// naming both shapes when they do not broadcast.
std::vector<int64_t> broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// The output seen as `rows` rows of `inner` elements. Along a row a and b advance by 1 or 0 (0: the
// operand is one value for the whole row); row r starts at a_off(r), b_off(r). Adjacent dimensions are
// merged wherever both operands allow it, so same-shape and scalar operands give one row, and a
// per-channel [C,1,1] operand against NCHW gives N*C rows of H*W.
struct BroadcastRows {
  static constexpr int kMaxDims = 8;
  int64_t inner = 1, rows = 1;
  int a_step = 1, b_step = 1;  // 0 or 1
  int nouter = 0;              // outer dimensions, outermost first
  int64_t dims[kMaxDims] = {}, a_stride[kMaxDims] = {}, b_stride[kMaxDims] = {};
  void offsets(int64_t row, int64_t* a_off, int64_t* b_off) const {
    int64_t ao = 0, bo = 0;
    for (int d = nouter - 1; d >= 0; --d) {
      const int64_t i = row % dims[d];
      row /= dims[d];
      ao += i * a_stride[d];
      bo += i * b_stride[d];
    }
    *a_off = ao;
    *b_off = bo;
  }
};
BroadcastRows make_broadcast_rows(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// Row functions of the optimized kernels: y[i] = f(a[i * a_step], b[i * b_step]) for i in [0, n).
// bcast: 0 both advance, 1 a is one value (a_step 0), 2 b is one value.
using EltRowFn = void (*)(const EltParams& p, const void* a, const void* b, void* y, int64_t n, int bcast);

// Table lookup of a quantized 8-bit op: y[i] = t[(u8(a[i]) << 8) | u8(b[i])], t the op tabulated on
// all 65,536 (a, b) byte pairs (t has 3 bytes of slack past its end for 32-bit gathers).
using EltLutFn = void (*)(const uint8_t* t, const void* a, const void* b, void* y, int64_t n, int bcast);

struct EltRowTable {
  EltRowFn fn[2][kEltKinds] = {};  // [op][kind]
  EltLutFn lut = nullptr;
};

// Row-function tables per ISA; nullptr when not built for that ISA.
const EltRowTable* eltwise_rows_scalar();
const EltRowTable* eltwise_rows_avx2();
const EltRowTable* eltwise_rows_avx512();

}  // namespace npuemu
