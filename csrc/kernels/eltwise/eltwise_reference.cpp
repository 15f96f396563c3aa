// Reference element-wise kernel: the executable specification of every element-wise kernel.
//
// One loop over the output elements in C order. Each output index is unravelled, the operand indices
// follow numpy broadcasting literally (an operand dimension of size 1 is read at index 0, missing
// leading dimensions are ignored), and the element is computed by the scalar definitions of
// eltwise_arith.h. No merging of dimensions, no rows, no SIMD: optimized kernels must be bit-identical.
#include "core/check.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/eltwise/eltwise_arith.h"

namespace npuemu {
namespace {

int32_t load_q(DType t, const void* p, int64_t i) {
  return t == DType::kUInt8 ? static_cast<const uint8_t*>(p)[i] : static_cast<const int8_t*>(p)[i];
}

class ReferencePlan final : public EltwisePlan {
 public:
  explicit ReferencePlan(const EltSpec& spec) : s_(spec) {}

  void run(const void* a, const void* b, void* y, const CoreSet& cores) const override {
    int64_t total = 1;
    for (int64_t d : s_.y_shape) total *= d;
    auto body = [&](int, int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t ia = operand_index(i, s_.a_shape), ib = operand_index(i, s_.b_shape);
        if (s_.kind == EltKind::kFp16) {
          static_cast<uint16_t*>(y)[i] =
              elt_fp16(s_.op, static_cast<const uint16_t*>(a)[ia], static_cast<const uint16_t*>(b)[ib], s_.p.act);
        } else {
          const int32_t v = elt_quant(s_.op, s_.kind, load_q(s_.dtype, a, ia), load_q(s_.dtype, b, ib), s_.p);
          if (s_.dtype == DType::kUInt8)
            static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(v);
          else
            static_cast<int8_t*>(y)[i] = static_cast<int8_t>(v);
        }
      }
    };
    CorePool::instance().run(cores, total, body);
  }

 private:
  // Flat index into an operand of shape `op` for the output element with flat index `i`.
  int64_t operand_index(int64_t i, const std::vector<int64_t>& op) const {
    const std::vector<int64_t>& ys = s_.y_shape;
    const size_t r = ys.size(), lead = r - op.size();
    int64_t idx = 0, stride = 1;
    for (size_t d = r; d-- > 0;) {
      const int64_t coord = i % ys[d];
      i /= ys[d];
      if (d < lead) continue;  // dimension the operand does not have
      const int64_t od = op[d - lead];
      idx += (od == 1 ? 0 : coord) * stride;
      stride *= od;
    }
    return idx;
  }

  EltSpec s_;
};

class EltwiseReference final : public EltwiseKernel {
 public:
  std::string name() const override { return "eltwise_any_reference_scalar"; }
  std::string algo() const override { return "reference"; }
  Isa isa() const override { return Isa::kScalar; }
  bool supports(const EltSpec&, std::string*) const override { return true; }
  double cost(const EltSpec& spec) const override { return 1e9 + 100.0 * static_cast<double>(elt_output_elements(spec)); }
  std::unique_ptr<EltwisePlan> plan(const EltSpec& spec) const override { return std::make_unique<ReferencePlan>(spec); }
};

NPUEMU_REGISTER_ELTWISE_KERNEL(EltwiseReference);

}  // namespace
}  // namespace npuemu
