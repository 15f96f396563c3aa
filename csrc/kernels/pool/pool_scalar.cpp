// Portable row functions of the pooling kernels (any CPU): plain loops over the packed rows (pool.h),
// the fixed-point requantization in int64 closed form (fixedpoint.h).
#include <algorithm>

#include "kernels/pool/pool.h"
#include "kernels/pool/pool_arith.h"

namespace npuemu {
namespace {

template <class F>
void for_src(DType t, const void* x, int64_t n, F f) {
  switch (t) {
    case DType::kUInt8:
      for (int64_t i = 0; i < n; ++i) f(i, static_cast<int32_t>(static_cast<const uint8_t*>(x)[i]));
      break;
    case DType::kInt8:
      for (int64_t i = 0; i < n; ++i) f(i, static_cast<int32_t>(static_cast<const int8_t*>(x)[i]));
      break;
    default:
      for (int64_t i = 0; i < n; ++i) f(i, static_cast<int32_t>(static_cast<const int16_t*>(x)[i]));
      break;
  }
}

void pack_key16(DType t, const void* x, int16_t* out, int64_t n) {
  if (t == DType::kFloat16) {
    for (int64_t i = 0; i < n; ++i) out[i] = fp16_order_key(static_cast<const uint16_t*>(x)[i]);
    return;
  }
  for_src(t, x, n, [&](int64_t i, int32_t v) { out[i] = static_cast<int16_t>(v); });
}

void pack_i32(DType t, const void* x, int32_t zp, int32_t* out, int64_t n) {
  for_src(t, x, n, [&](int64_t i, int32_t v) { out[i] = v - zp; });
}

void pack_f32_deq(DType t, const void* x, int32_t zp, float scale, float* out, int64_t n) {
  for_src(t, x, n, [&](int64_t i, int32_t v) { out[i] = scale * static_cast<float>(v - zp); });
}

void pack_f32_h(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(x[i]);
}

void max16(const int16_t* base, const int64_t* off, int ntaps, int16_t* acc, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] = kKeyLowest;
  for (int t = 0; t < ntaps; ++t) {
    const int16_t* r = base + off[t];
    for (int64_t j = 0; j < n; ++j) acc[j] = std::max(acc[j], r[j]);
  }
}

void sum32(const int32_t* base, const int64_t* off, int ntaps, int32_t* acc, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] = 0;
  for (int t = 0; t < ntaps; ++t) {
    const int32_t* r = base + off[t];
    for (int64_t j = 0; j < n; ++j) acc[j] += r[j];
  }
}

// taps in (kh, kw) order for every column: the float32 sums of the reference
void sumf(const float* base, const int64_t* off, int ntaps, float* acc, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] = 0.0f;
  for (int t = 0; t < ntaps; ++t) {
    const float* r = base + off[t];
    for (int64_t j = 0; j < n; ++j) acc[j] = acc[j] + r[j];
  }
}

void store_q(DType t, void* out, int64_t i, int64_t v) {
  if (t == DType::kUInt8) static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(v);
  else static_cast<int8_t*>(out)[i] = static_cast<int8_t>(v);
}

void req_fixed(const int32_t* s, int64_t n, int left, const ClosedFormMultiplier& c, int32_t lo, int32_t hi, int32_t zp,
               DType t, void* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t q = apply_closed_form(int64_t{s[i]} * (int64_t{1} << left), c);
    store_q(t, out, i, (q < lo ? lo : (q > hi ? hi : q)) + zp);
  }
}

void req_float(const float* s, int64_t n, float count, float y_scale, float zp_f, int32_t qmin, int32_t qmax, DType t,
               void* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t q = cvtps2dq(s[i] / count / y_scale + zp_f);
    store_q(t, out, i, q < qmin ? qmin : (q > qmax ? qmax : q));
  }
}

void fin_fp16(const float* s, int64_t n, float count, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(s[i] / count);
}

void unkey16(const int16_t* k, int64_t n, DType t, void* out) {
  for (int64_t i = 0; i < n; ++i) pool_store_key(t, out, i, k[i]);
}

int64_t plane_sum(DType t, const void* x, int64_t n) {
  int64_t s = 0;
  for_src(t, x, n, [&](int64_t, int32_t v) { s += v; });
  return s;
}

void fp16_plane_sums(const uint16_t* x, int64_t n, int planes, float* sums) {
  for (int p = 0; p < planes; ++p) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; ++i) acc = acc + fp16_to_fp32(x[p * n + i]);
    sums[p] = acc;
  }
}

PoolRowTable make_table() {
  PoolRowTable t;
  t.block = 1;
  t.pack_key16 = &pack_key16;
  t.pack_i32 = &pack_i32;
  t.pack_f32_deq = &pack_f32_deq;
  t.pack_f32_h = &pack_f32_h;
  t.max16 = &max16;
  t.sum32 = &sum32;
  t.sumf = &sumf;
  t.req_fixed = &req_fixed;
  t.req_float = &req_float;
  t.fin_fp16 = &fin_fp16;
  t.unkey16 = &unkey16;
  t.plane_sum = &plane_sum;
  t.fp16_plane_sums = &fp16_plane_sums;
  return t;
}

}  // namespace

const PoolRowTable* pool_rows_scalar() {
  static const PoolRowTable t = make_table();
  return &t;
}

}  // namespace npuemu
