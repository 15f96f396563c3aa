// Portable row functions of the element-wise ops (any CPU). The fixed-point path evaluates the closed
// form of MultiplyByQuantizedMultiplier in int64 (fixedpoint.h) instead of the 128-bit definition the
// reference uses; the float and fp16 paths are the scalar formulas. Plain loops that compilers may
// vectorize for the baseline instruction set.
#include "kernels/eltwise/eltwise.h"
#include "kernels/eltwise/eltwise_arith.h"

namespace npuemu {
namespace {

template <class T>
inline int64_t at(const T* p, int64_t i, int step) {
  return static_cast<int64_t>(p[i * step]);
}


template <class T>
void add_fixed(const EltParams& p, const void* av, const void* bv, void* yv, int64_t n, int bcast) {
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  T* y = static_cast<T*>(yv);
  const int as = bcast == 1 ? 0 : 1, bs = bcast == 2 ? 0 : 1;
  const int64_t scale = int64_t{1} << p.left_shift;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t sa = apply_closed_form((at(a, i, as) - p.za) * scale, p.ca);
    const int64_t sb = apply_closed_form((at(b, i, bs) - p.zb) * scale, p.cb);
    y[i] = static_cast<T>(clamp64(apply_closed_form(sa + sb, p.cy), p.lo, p.hi) + p.zy);
  }
}

template <class T>
void mul_fixed(const EltParams& p, const void* av, const void* bv, void* yv, int64_t n, int bcast) {
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  T* y = static_cast<T*>(yv);
  const int as = bcast == 1 ? 0 : 1, bs = bcast == 2 ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t prod = (at(a, i, as) - p.za) * (at(b, i, bs) - p.zb);
    y[i] = static_cast<T>(clamp64(apply_closed_form(prod, p.cy), p.lo, p.hi) + p.zy);
  }
}

template <class T>
void add_float(const EltParams& p, const void* av, const void* bv, void* yv, int64_t n, int bcast) {
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  T* y = static_cast<T*>(yv);
  const int as = bcast == 1 ? 0 : 1, bs = bcast == 2 ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(elt_add_float(a[i * as], b[i * bs], p));
}

template <class T>
void mul_float(const EltParams& p, const void* av, const void* bv, void* yv, int64_t n, int bcast) {
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  T* y = static_cast<T*>(yv);
  const int as = bcast == 1 ? 0 : 1, bs = bcast == 2 ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(elt_mul_float(a[i * as], b[i * bs], p));
}

template <EltOp OP>
void fp16(const EltParams& p, const void* av, const void* bv, void* yv, int64_t n, int bcast) {
  const uint16_t* a = static_cast<const uint16_t*>(av);
  const uint16_t* b = static_cast<const uint16_t*>(bv);
  uint16_t* y = static_cast<uint16_t*>(yv);
  const int as = bcast == 1 ? 0 : 1, bs = bcast == 2 ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) y[i] = elt_fp16(OP, a[i * as], b[i * bs], p.act);
}

void lut_row(const uint8_t* t, const void* av, const void* bv, void* yv, int64_t n, int bcast) {
  const uint8_t* a = static_cast<const uint8_t*>(av);
  const uint8_t* b = static_cast<const uint8_t*>(bv);
  uint8_t* y = static_cast<uint8_t*>(yv);
  const int as = bcast == 1 ? 0 : 1, bs = bcast == 2 ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) y[i] = t[(a[i * as] << 8) | b[i * bs]];
}

EltRowTable make_table() {
  EltRowTable t;
  const int add = static_cast<int>(EltOp::kAdd), mul = static_cast<int>(EltOp::kMul);
  t.fn[add][static_cast<int>(EltKind::kFixedS8)] = &add_fixed<int8_t>;
  t.fn[add][static_cast<int>(EltKind::kFixedU8)] = &add_fixed<uint8_t>;
  t.fn[add][static_cast<int>(EltKind::kFloatS8)] = &add_float<int8_t>;
  t.fn[add][static_cast<int>(EltKind::kFloatU8)] = &add_float<uint8_t>;
  t.fn[add][static_cast<int>(EltKind::kFp16)] = &fp16<EltOp::kAdd>;
  t.fn[mul][static_cast<int>(EltKind::kFixedS8)] = &mul_fixed<int8_t>;
  t.fn[mul][static_cast<int>(EltKind::kFixedU8)] = &mul_fixed<uint8_t>;
  t.fn[mul][static_cast<int>(EltKind::kFloatS8)] = &mul_float<int8_t>;
  t.fn[mul][static_cast<int>(EltKind::kFloatU8)] = &mul_float<uint8_t>;
  t.fn[mul][static_cast<int>(EltKind::kFp16)] = &fp16<EltOp::kMul>;
  t.lut = &lut_row;
  return t;
}

}  // namespace

const EltRowTable* eltwise_rows_scalar() {
  static const EltRowTable t = make_table();
  return &t;
}

}  // namespace npuemu
