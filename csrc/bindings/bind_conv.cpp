#include <pybind11/stl.h>

#include "bindings/numpy_util.h"
#include "ops/conv_op.h"

namespace npuemu {

namespace {

Activation make_activation(const std::string& kind, float lo, float hi, float alpha) {
  Activation a;
  if (kind == "none") a.kind = ActKind::kNone;
  else if (kind == "relu") a.kind = ActKind::kRelu, a.lo = 0.f, a.hi = INFINITY;
  else if (kind == "clip") a.kind = ActKind::kClip, a.lo = lo, a.hi = hi;
  else if (kind == "leaky_relu") a.kind = ActKind::kLeakyRelu, a.alpha = alpha;
  else if (kind == "hard_swish") a.kind = ActKind::kHardSwish;
  else
    throw std::invalid_argument("unknown activation '" + kind +
                                "'; valid: none, relu, clip, leaky_relu, hard_swish (float16 only)");
  return a;
}

Rounding parse_rounding(const std::string& r) {
  if (r == "fixed_point") return Rounding::kFixedPoint;
  if (r == "float") return Rounding::kFloat;
  throw std::invalid_argument("rounding must be 'fixed_point' or 'float', got '" + r + "'");
}

ConvArgs make_args(const std::vector<int64_t>& x_shape, const std::string& x_dtype, const py::array& w,
                   const std::string& w_dtype, const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                   const std::vector<int64_t>& dilations, int64_t group, int32_t x_zp, const std::vector<int32_t>& w_zp,
                   const py::object& bias, bool requant, float x_scale, const std::vector<float>& w_scale,
                   float y_scale, int32_t y_zp, const std::string& y_dtype, const std::string& rounding,
                   const std::string& act, float act_lo, float act_hi, float act_alpha, const std::string& algo,
                   const std::string& kernel, bool nhwc, bool w_transposed) {
  ConvArgs a;
  a.w_transposed = w_transposed;
  a.x_shape = x_shape;
  a.nhwc = nhwc;
  a.x_dtype = parse_dtype(x_dtype);
  a.w_dtype = parse_dtype(w_dtype);
  a.w_shape = shape_of(w);
  a.w = input_ptr(w, "w", a.w_dtype, a.w_shape);
  for (int64_t d : a.w_shape) NPU_CHECK(d > 0, "w must not be empty, got shape ", shape_str(a.w_shape));
  a.strides = strides;
  a.pads = pads;
  a.dilations = dilations;
  a.group = group;
  a.x_zp = x_zp;
  a.w_zp = w_zp;
  if (!bias.is_none()) {
    const py::array b = bias.cast<py::array>();
    a.bias_dtype = dtype_of(b);
    NPU_CHECK(b.ndim() == 1, "bias must be 1-D, got shape ", shape_str(shape_of(b)));
    NPU_CHECK(b.flags() & py::array::c_style, "bias must be C-contiguous");
    a.bias = b.data();
    a.bias_len = b.shape(0);
  }
  a.requant = requant;
  a.x_scale = x_scale;
  a.w_scale = w_scale;
  a.y_scale = y_scale;
  a.y_zp = y_zp;
  a.y_dtype = parse_dtype(y_dtype);
  a.rounding = parse_rounding(rounding);
  a.act = make_activation(act, act_lo, act_hi, act_alpha);
  a.algo = algo;
  a.kernel = kernel;
  return a;
}

void run_op(const ConvOp& op, const py::array& x, py::array& y, uint32_t core_mask) {
  const ConvGeometry& g = op.spec().g;
  const std::vector<int64_t> xs = op.spec().nhwc ? std::vector<int64_t>{g.n, g.h, g.w, g.c}
                                                 : std::vector<int64_t>{g.n, g.c, g.h, g.w};
  const void* xp = input_ptr(x, "x", op.spec().x_dtype, xs);
  void* yp = output_ptr(y, "out", op.y_dtype(), op.y_shape());
  NPU_CHECK(!shares_memory(x, y), "out must not share memory with x");
  py::gil_scoped_release release;
  op.run(xp, yp, core_mask);
}

#define NPUEMU_CONV_ARGS                                                                                      \
  py::arg("x_shape"), py::arg("x_dtype"), py::arg("w"), py::arg("w_dtype"), py::arg("strides"), py::arg("pads"), \
      py::arg("dilations"), py::arg("group"), py::arg("x_zero_point"), py::arg("w_zero_point"), py::arg("bias"), \
      py::arg("requant"), py::arg("x_scale"), py::arg("w_scale"), py::arg("y_scale"), py::arg("y_zero_point"),   \
      py::arg("y_dtype"), py::arg("rounding"), py::arg("activation"), py::arg("act_lo"), py::arg("act_hi"),      \
      py::arg("act_alpha"), py::arg("algo"), py::arg("kernel"), py::arg("nhwc") = false, py::arg("w_transposed") = false

}  // namespace

void bind_conv(py::module_& m) {
  py::class_<ConvOp, std::shared_ptr<ConvOp>>(m, "ConvOp")
      .def(py::init([](const std::vector<int64_t>& x_shape, const std::string& x_dtype, const py::array& w,
                       const std::string& w_dtype, const std::vector<int64_t>& strides,
                       const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, int64_t group,
                       int32_t x_zp, const std::vector<int32_t>& w_zp, const py::object& bias, bool requant,
                       float x_scale, const std::vector<float>& w_scale, float y_scale, int32_t y_zp,
                       const std::string& y_dtype, const std::string& rounding, const std::string& act, float act_lo,
                       float act_hi, float act_alpha, const std::string& algo, const std::string& kernel,
                       bool nhwc, bool w_transposed) {
             return std::make_shared<ConvOp>(make_args(x_shape, x_dtype, w, w_dtype, strides, pads, dilations, group,
                                                       x_zp, w_zp, bias, requant, x_scale, w_scale, y_scale, y_zp,
                                                       y_dtype, rounding, act, act_lo, act_hi, act_alpha, algo,
                                                       kernel, nhwc, w_transposed));
           }),
           NPUEMU_CONV_ARGS)
      .def("run", &run_op, py::arg("x"), py::arg("out"), py::arg("core_mask"))
      .def_property_readonly("kernel_name", &ConvOp::kernel_name)
      .def_property_readonly("y_shape", &ConvOp::y_shape)
      .def_property_readonly("y_dtype", [](const ConvOp& op) { return numpy_dtype(op.y_dtype()); })
      .def_property_readonly("packed_bytes", &ConvOp::packed_bytes)
      .def_property_readonly("int4_weights",
                             [](const ConvOp& op) {
                               const auto& v = op.int4_weights();
                               return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
                             })
      .def_property_readonly("macs", [](const ConvOp& op) { return op.spec().g.macs(); })
      .def_property_readonly("candidate_costs", [](const ConvOp& op) {
        // (kernel name, modelled ns) of every kernel algo='auto' could pick for this op, cheapest first
        py::list out;
        for (const ConvKernel* k : conv_candidates(op.spec(), "auto"))
          out.append(py::make_tuple(k->name(), k->cost(op.spec())));
        return out;
      });

  m.def(
      "conv_cached",
      [](const std::vector<int64_t>& x_shape, const std::string& x_dtype, const py::array& w,
         const std::string& w_dtype, const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
         const std::vector<int64_t>& dilations, int64_t group, int32_t x_zp, const std::vector<int32_t>& w_zp,
         const py::object& bias, bool requant, float x_scale, const std::vector<float>& w_scale, float y_scale,
         int32_t y_zp, const std::string& y_dtype, const std::string& rounding, const std::string& act, float act_lo,
         float act_hi, float act_alpha, const std::string& algo, const std::string& kernel, bool nhwc,
         bool w_transposed) {
        return conv_op_cached(make_args(x_shape, x_dtype, w, w_dtype, strides, pads, dilations, group, x_zp, w_zp,
                                        bias, requant, x_scale, w_scale, y_scale, y_zp, y_dtype, rounding, act, act_lo,
                                        act_hi, act_alpha, algo, kernel, nhwc, w_transposed));
      },
      NPUEMU_CONV_ARGS);
  m.def("conv_cache_clear", &conv_cache_clear);

  m.def("list_conv_kernels", [] {
    py::list out;
    for (const ConvKernel* k : conv_kernel_registry()) {
      py::list fams;
      for (ConvFamily f : {ConvFamily::kInt8, ConvFamily::kInt16, ConvFamily::kFp16})
        if (k->handles(f)) fams.append(f == ConvFamily::kInt8 ? "int8" : f == ConvFamily::kInt16 ? "int16" : "fp16");
      py::dict d;
      d["name"] = k->name();
      d["families"] = fams;
      d["algo"] = k->algo();
      d["isa"] = isa_name(k->isa());
      d["available"] = static_cast<int>(k->isa()) <= static_cast<int>(detected_isa());
      out.append(d);
    }
    return out;
  });
}

}  // namespace npuemu
