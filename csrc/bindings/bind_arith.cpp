// Scalar arithmetic primitives exposed element-wise, so tests can check them against independent
// Python implementations (exact big-integer arithmetic, numpy's float16).
#include <pybind11/stl.h>

#include "bindings/numpy_util.h"
#include "quant/fixedpoint.h"
#include "quant/fp16.h"
#include "quant/requant.h"

namespace npuemu {

void bind_arith(py::module_& m) {
  m.def("quantize_multiplier", [](double mult) {
    const QuantizedMultiplier q = quantize_multiplier(mult);
    return py::make_tuple(q.m0, q.shift);
  });
  m.def("multiply_by_quantized_multiplier",
        [](const py::array_t<int64_t, py::array::c_style>& acc, int32_t m0, int32_t shift) {
          py::array_t<int64_t> out(acc.request().shape);
          const int64_t* a = acc.data();
          int64_t* o = out.mutable_data();
          for (py::ssize_t i = 0; i < acc.size(); ++i) o[i] = multiply_by_quantized_multiplier(a[i], {m0, shift});
          return out;
        });
  m.def("srdhm", [](int32_t a, int32_t b) { return saturating_rounding_doubling_high_mul(a, b); });
  m.def("rounding_divide_by_pot", [](int32_t x, int e) { return rounding_divide_by_pot(x, e); });
  m.def("fp32_to_fp16_bits", [](const py::array_t<float, py::array::c_style>& x) {
    py::array_t<uint16_t> out(x.request().shape);
    for (py::ssize_t i = 0; i < x.size(); ++i) out.mutable_data()[i] = fp32_to_fp16(x.data()[i]);
    return out;
  });
  m.def("fp16_bits_to_fp32", [](const py::array_t<uint16_t, py::array::c_style>& x) {
    py::array_t<float> out(x.request().shape);
    for (py::ssize_t i = 0; i < x.size(); ++i) out.mutable_data()[i] = fp16_to_fp32(x.data()[i]);
    return out;
  });
  // The DPU's lookup table: y[i] = table[bits(x[i])], x of 1 or 2 bytes (index = its bit pattern, 256 or
  // 65,536 entries), table and y of 1 or 2 bytes. Used by compiled models for activations and requantization
  // (int8 -> int8, int16 -> int8 / int16, float16 -> float16); no allocation, the GIL released.
  m.def("lookup_table", [](const py::array& table, const py::array& x, py::array& y) {
    NPU_CHECK((x.flags() & py::array::c_style) && (y.flags() & py::array::c_style) &&
                  (table.flags() & py::array::c_style),
              "lookup_table: x, y and table must be C-contiguous");
    NPU_CHECK(y.writeable(), "lookup_table: y must be writable");
    NPU_CHECK(x.size() == y.size(), "lookup_table: x has ", x.size(), " elements, y ", y.size());
    const auto xs = x.itemsize(), ys = y.itemsize();
    NPU_CHECK(xs == 1 || xs == 2, "lookup_table: x must have 1- or 2-byte elements, got ", xs);
    NPU_CHECK(ys == 1 || ys == 2, "lookup_table: y must have 1- or 2-byte elements, got ", ys);
    NPU_CHECK(table.itemsize() == ys, "lookup_table: table elements (", table.itemsize(), " bytes) must match y (",
              ys, " bytes)");
    NPU_CHECK(table.size() == (xs == 1 ? 256 : 65536), "lookup_table: a ", xs, "-byte input needs a table of ",
              xs == 1 ? 256 : 65536, " entries, got ", table.size());
    const py::ssize_t n = x.size();
    const void* tp = table.data();
    const void* xp = x.data();
    void* yp = y.mutable_data();
    py::gil_scoped_release nogil;
    if (xs == 1 && ys == 1) {
      const uint8_t* t = static_cast<const uint8_t*>(tp);
      const uint8_t* a = static_cast<const uint8_t*>(xp);
      uint8_t* o = static_cast<uint8_t*>(yp);
      for (py::ssize_t i = 0; i < n; ++i) o[i] = t[a[i]];
    } else if (xs == 2 && ys == 1) {
      const uint8_t* t = static_cast<const uint8_t*>(tp);
      const uint16_t* a = static_cast<const uint16_t*>(xp);
      uint8_t* o = static_cast<uint8_t*>(yp);
      for (py::ssize_t i = 0; i < n; ++i) o[i] = t[a[i]];
    } else if (xs == 1) {
      const uint16_t* t = static_cast<const uint16_t*>(tp);
      const uint8_t* a = static_cast<const uint8_t*>(xp);
      uint16_t* o = static_cast<uint16_t*>(yp);
      for (py::ssize_t i = 0; i < n; ++i) o[i] = t[a[i]];
    } else {
      const uint16_t* t = static_cast<const uint16_t*>(tp);
      const uint16_t* a = static_cast<const uint16_t*>(xp);
      uint16_t* o = static_cast<uint16_t*>(yp);
      for (py::ssize_t i = 0; i < n; ++i) o[i] = t[a[i]];
    }
  });
  m.def("pack_int4", [](const py::array_t<int8_t, py::array::c_style>& x) {
    py::array_t<uint8_t> out((x.size() + 1) / 2);
    pack_int4(x.data(), static_cast<size_t>(x.size()), out.mutable_data());
    return out;
  });
  m.def("unpack_int4", [](const py::array_t<uint8_t, py::array::c_style>& x, py::ssize_t n) {
    NPU_CHECK(n >= 0 && (n + 1) / 2 <= x.size(), "unpack_int4: ", n, " values need ", (n + 1) / 2, " bytes, got ",
              x.size());
    py::array_t<int8_t> out(n);
    unpack_int4(x.data(), static_cast<size_t>(n), out.mutable_data());
    return out;
  });
}

}  // namespace npuemu
