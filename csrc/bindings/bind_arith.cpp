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
