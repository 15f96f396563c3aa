// Broadcast decomposition, the kernel registry and the "rows" kernels: the output is cut into rows
// along which both operands advance by 0 or 1 element (eltwise.h), and each ISA's row function does
// the arithmetic. Rows are split into fixed-size chunks, the tasks the emulated cores share.
#include "kernels/eltwise/eltwise.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/shape.h"
#include "core/memory.h"

namespace npuemu {

namespace {
}  // namespace

std::vector<int64_t> broadcast_shape(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> y(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    NPU_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
              " do not broadcast (dimension ", i, " of the aligned shapes: ", da, " vs ", db, ")");
    y[i] = da == 1 ? db : da;
  }
  return y;
}

BroadcastRows make_broadcast_rows(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const std::vector<int64_t> y = broadcast_shape(a, b);
  const size_t r = y.size();
  // Contiguous strides of each operand in the output's index space (0 where it broadcasts).
  std::vector<int64_t> sa(r, 0), sb(r, 0);
  int64_t ca = 1, cb = 1;
  for (size_t i = r; i-- > 0;) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    sa[i] = da == 1 ? 0 : ca;
    sb[i] = db == 1 ? 0 : cb;
    ca *= da;
    cb *= db;
  }
  // Drop size-1 output dims, then merge adjacent dims whose strides chain for both operands.
  std::vector<int64_t> dims, as, bs;
  for (size_t i = 0; i < r; ++i) {
    if (y[i] == 1) continue;
    if (!dims.empty() && as.back() == sa[i] * y[i] && bs.back() == sb[i] * y[i]) {
      dims.back() *= y[i];
      as.back() = sa[i];
      bs.back() = sb[i];
    } else {
      dims.push_back(y[i]);
      as.push_back(sa[i]);
      bs.push_back(sb[i]);
    }
  }
  BroadcastRows br;
  if (dims.empty()) {  // a single element: both operands are one value
    br.inner = 1;
    br.a_step = br.b_step = 0;
    return br;
  }
  NPU_CHECK(dims.size() <= static_cast<size_t>(BroadcastRows::kMaxDims) + 1,
            "broadcasting of ", shape_str(a), " and ", shape_str(b), " needs more than ",
            BroadcastRows::kMaxDims + 1, " dimensions after merging");
  br.inner = dims.back();
  br.a_step = static_cast<int>(as.back());
  br.b_step = static_cast<int>(bs.back());
  br.nouter = static_cast<int>(dims.size()) - 1;
  br.rows = 1;
  for (int d = 0; d < br.nouter; ++d) {
    br.dims[d] = dims[d];
    br.a_stride[d] = as[d];
    br.b_stride[d] = bs[d];
    br.rows *= dims[d];
  }
  return br;
}

int64_t elt_output_elements(const EltSpec& spec) {
  int64_t n = 1;
  for (int64_t d : spec.y_shape) n *= d;
  return n;
}

std::vector<const EltwiseKernel*>& eltwise_kernel_registry() {
  static std::vector<const EltwiseKernel*> reg;
  return reg;
}

namespace {

// Cost model (ns per output element on one core), measured on the development machine (AVX-512 VNNI,
// 1x64x112x112 int8 operands): model parameters for kernel selection only, never for results.
//   rows[isa][op][fixed_point, float]; lut[isa]
constexpr double kRowsNs[3][2][2] = {{{16.2, 8.2}, {9.2, 15.7}},   // scalar: add, mul
                                     {{2.28, 0.16}, {0.86, 0.24}},  // avx2
                                     {{1.09, 0.13}, {0.47, 0.16}}}; // avx512vnni
constexpr double kLutNs[3] = {0.85, 0.64, 0.69};
constexpr double kFp16Ns[3] = {8.0, 0.3, 0.2};

double rows_ns(Isa isa, const EltSpec& s) {
  const int i = static_cast<int>(isa);
  if (s.kind == EltKind::kFp16) return kFp16Ns[i];
  const bool fixed = s.kind == EltKind::kFixedS8 || s.kind == EltKind::kFixedU8;
  return kRowsNs[i][static_cast<int>(s.op)][fixed ? 0 : 1];
}

// Elements per task: rows longer than this are split, so that one long row (same-shape operands)
// still spreads over the cores. The split never changes a result (elements are independent).
constexpr int64_t kChunk = 16384;

class RowsPlan final : public EltwisePlan {
 public:
  RowsPlan(const EltSpec& spec, EltRowFn fn) : p_(spec.p), fn_(fn), elem_(static_cast<int64_t>(dtype_size(spec.dtype))) {
    br_ = make_broadcast_rows(spec.a_shape, spec.b_shape);
    chunks_ = (br_.inner + kChunk - 1) / kChunk;
    // the operand that stays one value along a row
    bcast_ = br_.a_step == 0 ? 1 : (br_.b_step == 0 ? 2 : 0);
  }

  void run(const void* a, const void* b, void* y, const CoreSet& cores) const override {
    auto body = [&](int, int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t row = t / chunks_, c0 = (t % chunks_) * kChunk;
        const int64_t n = std::min(kChunk, br_.inner - c0);
        int64_t ao, bo;
        br_.offsets(row, &ao, &bo);
        ao += c0 * br_.a_step;
        bo += c0 * br_.b_step;
        const int64_t yo = row * br_.inner + c0;
        fn_(p_, static_cast<const uint8_t*>(a) + ao * elem_, static_cast<const uint8_t*>(b) + bo * elem_,
            static_cast<uint8_t*>(y) + yo * elem_, n, bcast_);
      }
    };
    CorePool::instance().run(cores, br_.rows * chunks_, body);
  }

 private:
  EltParams p_;
  EltRowFn fn_;
  int64_t elem_;
  BroadcastRows br_;
  int64_t chunks_ = 1;
  int bcast_ = 0;
};

const EltRowTable* rows_table(Isa isa) {
  return isa == Isa::kScalar ? eltwise_rows_scalar() : isa == Isa::kAvx2 ? eltwise_rows_avx2() : eltwise_rows_avx512();
}

class RowsKernel : public EltwiseKernel {
 public:
  RowsKernel(const char* name, Isa isa) : name_(name), isa_(isa) {}
  std::string name() const override { return name_; }
  std::string algo() const override { return "rows"; }
  Isa isa() const override { return isa_; }
  bool supports(const EltSpec& spec, std::string* why) const override {
    if (fn(spec) == nullptr) {
      *why = "not built for this ISA";
      return false;
    }
    return true;
  }
  double cost(const EltSpec& spec) const override {
    return rows_ns(isa_, spec) * static_cast<double>(elt_output_elements(spec));
  }
  std::unique_ptr<EltwisePlan> plan(const EltSpec& spec) const override {
    return std::make_unique<RowsPlan>(spec, fn(spec));
  }

 private:
  EltRowFn fn(const EltSpec& spec) const {
    const EltRowTable* t = rows_table(isa_);
    return t == nullptr ? nullptr : t->fn[static_cast<int>(spec.op)][static_cast<int>(spec.kind)];
  }
  const char* name_;
  Isa isa_;
};

// The quantized 8-bit ops tabulated: the plan runs the ISA's row function once over all 65,536 (a, b)
// byte pairs (the same arithmetic the rows kernel applies), then every run is one lookup per output.
// Costs a 64 KiB table per plan; chosen by the cost model where a gather beats the arithmetic.
class LutPlan final : public EltwisePlan {
 public:
  LutPlan(const EltSpec& spec, EltRowFn fn, EltLutFn lut) : lut_(lut), table_(65536 + 64) {
    br_ = make_broadcast_rows(spec.a_shape, spec.b_shape);
    chunks_ = (br_.inner + kChunk - 1) / kChunk;
    bcast_ = br_.a_step == 0 ? 1 : (br_.b_step == 0 ? 2 : 0);
    Buffer pairs(2 * 65536);
    uint8_t* a = pairs.data<uint8_t>();
    uint8_t* b = a + 65536;
    for (int i = 0; i < 65536; ++i) {
      a[i] = static_cast<uint8_t>(i >> 8);
      b[i] = static_cast<uint8_t>(i & 0xFF);
    }
    uint8_t* t = table_.data<uint8_t>();
    std::memset(t, 0, table_.size());
    fn(spec.p, a, b, t, 65536, 0);  // p.swap (float add) is honoured by the row function itself
  }

  void run(const void* a, const void* b, void* y, const CoreSet& cores) const override {
    const uint8_t* t = table_.data<uint8_t>();
    auto body = [&](int, int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t row = k / chunks_, c0 = (k % chunks_) * kChunk;
        const int64_t n = std::min(kChunk, br_.inner - c0);
        int64_t ao, bo;
        br_.offsets(row, &ao, &bo);
        lut_(t, static_cast<const uint8_t*>(a) + ao + c0 * br_.a_step,
             static_cast<const uint8_t*>(b) + bo + c0 * br_.b_step, static_cast<uint8_t*>(y) + row * br_.inner + c0, n,
             bcast_);
      }
    };
    CorePool::instance().run(cores, br_.rows * chunks_, body);
  }

 private:
  EltLutFn lut_;
  Buffer table_;
  BroadcastRows br_;
  int64_t chunks_ = 1;
  int bcast_ = 0;
};

class LutKernel : public EltwiseKernel {
 public:
  LutKernel(const char* name, Isa isa) : name_(name), isa_(isa) {}
  std::string name() const override { return name_; }
  std::string algo() const override { return "lut"; }
  Isa isa() const override { return isa_; }
  bool supports(const EltSpec& spec, std::string* why) const override {
    const EltRowTable* t = rows_table(isa_);
    if (t == nullptr || t->lut == nullptr) {
      *why = "not built for this ISA";
      return false;
    }
    if (spec.kind == EltKind::kFp16) {
      *why = "float16 has 2^32 operand pairs (quantized 8-bit ops only)";
      return false;
    }
    return true;
  }
  double cost(const EltSpec& spec) const override {  // the lookups plus tabulating 65,536 pairs once
    return kLutNs[static_cast<int>(isa_)] * static_cast<double>(elt_output_elements(spec)) +
           rows_ns(isa_, spec) * 65536.0;
  }
  std::unique_ptr<EltwisePlan> plan(const EltSpec& spec) const override {
    const EltRowTable* t = rows_table(isa_);
    return std::make_unique<LutPlan>(spec, t->fn[static_cast<int>(spec.op)][static_cast<int>(spec.kind)], t->lut);
  }

 private:
  const char* name_;
  Isa isa_;
};

#define NPUEMU_ELTWISE_LUT_KERNEL(cls, name, isa) \
  class cls final : public LutKernel {            \
   public:                                        \
    cls() : LutKernel(name, isa) {}               \
  };                                              \
  NPUEMU_REGISTER_ELTWISE_KERNEL(cls)

NPUEMU_ELTWISE_LUT_KERNEL(EltLutScalar, "eltwise_q8_lut_scalar", Isa::kScalar);
NPUEMU_ELTWISE_LUT_KERNEL(EltLutAvx2, "eltwise_q8_lut_avx2", Isa::kAvx2);
NPUEMU_ELTWISE_LUT_KERNEL(EltLutAvx512, "eltwise_q8_lut_avx512vnni", Isa::kAvx512Vnni);

#define NPUEMU_ELTWISE_ROWS_KERNEL(cls, name, isa) \
  class cls final : public RowsKernel {            \
   public:                                         \
    cls() : RowsKernel(name, isa) {}               \
  };                                               \
  NPUEMU_REGISTER_ELTWISE_KERNEL(cls)

NPUEMU_ELTWISE_ROWS_KERNEL(EltRowsScalar, "eltwise_any_rows_scalar", Isa::kScalar);
NPUEMU_ELTWISE_ROWS_KERNEL(EltRowsAvx2, "eltwise_any_rows_avx2", Isa::kAvx2);
NPUEMU_ELTWISE_ROWS_KERNEL(EltRowsAvx512, "eltwise_any_rows_avx512vnni", Isa::kAvx512Vnni);

}  // namespace
}  // namespace npuemu
