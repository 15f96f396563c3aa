// Scalar arithmetic primitives exposed element-wise, so tests can check them against independent
// Python implementations (exact big-integer arithmetic, numpy's float16).
#include <pybind11/stl.h>

#include "bindings/numpy_util.h"
#include "kernels/host/normalize.h"
#include "kernels/lut/lookup.h"
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
    lookup_table(tp, xp, static_cast<int>(xs), yp, static_cast<int>(ys), static_cast<int64_t>(n));
  });
  // The runtime's input step in one pass (kernels/host/normalize.h): out = store((x - mean) / std), channels
  // on axis 1, bit-identical to host.normalize() + host.store(). x float32 or uint8; mean / std None or
  // float32 arrays of 1 value or one per channel; out int8 / int16 (quantized with scale and zero_point:
  // program.quantize_f32) or float16 / float32 (scale and zero_point None). No allocation, the GIL released.
  m.def(
      "normalize_store",
      [](const py::array& x, const py::object& mean, const py::object& std, const py::object& scale,
         const py::object& zero_point, py::array& out) {
        NormalizeArgs a;
        const auto native = [](const py::dtype& d) {  // '>f4' on x86 is not float32 here
          const char b = d.byteorder();
          return b == '=' || b == '|' || b == (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? '>' : '<');
        };
        const py::dtype xd = x.dtype();
        NPU_CHECK_TYPE(native(xd) &&
                           ((xd.kind() == 'f' && xd.itemsize() == 4) || (xd.kind() == 'u' && xd.itemsize() == 1)),
                       "normalize_store: x must be float32 or uint8, got ", std::string(py::str(xd)));
        a.x_uint8 = xd.kind() == 'u';
        const py::dtype od = out.dtype();
        if (!native(od)) {
          throw type_error("normalize_store: out must be in native byte order, got " + std::string(py::str(od)));
        } else if (od.kind() == 'i' && od.itemsize() == 1) {
          a.out = NormOut::kInt8;
        } else if (od.kind() == 'i' && od.itemsize() == 2) {
          a.out = NormOut::kInt16;
        } else if (od.kind() == 'f' && od.itemsize() == 2) {
          a.out = NormOut::kFloat16;
        } else if (od.kind() == 'f' && od.itemsize() == 4) {
          a.out = NormOut::kFloat32;
        } else {
          throw type_error("normalize_store: out must be int8, int16, float16 or float32, got " +
                           std::string(py::str(od)));
        }
        NPU_CHECK(shape_of(x) == shape_of(out), "normalize_store: x has shape ", shape_str(shape_of(x)),
                  ", out ", shape_str(shape_of(out)));
        NPU_CHECK((x.flags() & py::array::c_style) && (out.flags() & py::array::c_style),
                  "normalize_store: x and out must be C-contiguous");
        NPU_CHECK(out.writeable(), "normalize_store: out must be writable");
        NPU_CHECK(!shares_memory(x, out), "normalize_store: out must not overlap x");
        // numpy's normalize(): per channel on axis 1 for rank >= 2, else one value for the whole tensor
        const std::vector<int64_t> shp = shape_of(x);
        a.outer = shp.size() >= 2 ? shp[0] : 1;
        a.channels = shp.size() >= 2 ? shp[1] : 1;
        a.inner = 1;
        for (size_t i = shp.size() >= 2 ? 2 : 0; i < shp.size(); ++i) a.inner *= shp[i];
        py::array mean_a, std_a;  // keep the arrays alive while the GIL is released
        const auto per_channel = [&](const py::object& o, const char* name, py::array& keep, const float*& p,
                                     int64_t& n) {
          if (o.is_none()) return;
          NPU_CHECK_TYPE(py::isinstance<py::array>(o), "normalize_store: ", name, " must be None or a float32 array");
          keep = py::reinterpret_borrow<py::array>(o);
          const py::dtype d = keep.dtype();
          NPU_CHECK_TYPE(native(d) && d.kind() == 'f' && d.itemsize() == 4, "normalize_store: ", name,
                         " must be float32, got ", std::string(py::str(d)));
          NPU_CHECK(keep.flags() & py::array::c_style, "normalize_store: ", name, " must be C-contiguous");
          n = static_cast<int64_t>(keep.size());
          NPU_CHECK(n == 1 || (n == a.channels && shp.size() >= 2), "normalize_store: ", name, " has ", n,
                    " values; x of shape ", shape_str(shp), " takes 1",
                    shp.size() >= 2 ? " or " + std::to_string(a.channels) + " (one per channel)" : std::string());
          p = static_cast<const float*>(keep.data());
        };
        per_channel(mean, "mean", mean_a, a.mean, a.mean_size);
        per_channel(std, "std", std_a, a.std, a.std_size);
        const bool quant = a.out == NormOut::kInt8 || a.out == NormOut::kInt16;
        if (quant) {
          NPU_CHECK(!scale.is_none() && !zero_point.is_none(), "normalize_store: an ",
                    std::string(py::str(od)), " out needs scale and zero_point");
          NPU_CHECK_TYPE(py::isinstance<py::float_>(scale) || py::isinstance<py::int_>(scale) ||
                             py::isinstance(scale, py::module_::import("numpy").attr("floating")),
                         "normalize_store: scale must be a float, got ",
                         std::string(py::str(py::type::of(scale).attr("__name__"))));
          NPU_CHECK_TYPE(py::isinstance<py::int_>(zero_point) ||
                             py::isinstance(zero_point, py::module_::import("numpy").attr("integer")),
                         "normalize_store: zero_point must be an int, got ",
                         std::string(py::str(py::type::of(zero_point).attr("__name__"))));
          a.scale = static_cast<float>(scale.cast<double>());  // round to nearest even, as np.float32(scale)
          const int64_t zp = zero_point.cast<int64_t>();
          const int64_t lo = a.out == NormOut::kInt8 ? -128 : -32768, hi = a.out == NormOut::kInt8 ? 127 : 32767;
          NPU_CHECK(zp >= lo && zp <= hi, "normalize_store: zero_point ", zp, " is outside the range of ",
                    std::string(py::str(od)), " [", lo, ", ", hi, "]");
          a.zero_point = static_cast<int32_t>(zp);
        } else {
          NPU_CHECK(scale.is_none() && zero_point.is_none(), "normalize_store: scale and zero_point apply to "
                    "int8 / int16 outputs only (out is ", std::string(py::str(od)), ")");
        }
        a.x = x.data();
        a.y = out.mutable_data();
        py::gil_scoped_release nogil;
        normalize_store(a);
      },
      py::arg("x"), py::arg("mean"), py::arg("std"), py::arg("scale"), py::arg("zero_point"), py::arg("out"));
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
