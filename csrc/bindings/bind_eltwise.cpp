// Element-wise ops (Add, Mul) for npuemu.ops: declarations only; validation lives in ops/eltwise_op.
#include <pybind11/stl.h>

#include "bindings/numpy_util.h"
#include "bindings/quant_args.h"
#include "ops/eltwise_op.h"

namespace npuemu {
namespace {

EltwiseArgs make_args(const std::string& op, const std::string& dtype, const std::vector<int64_t>& a_shape,
                      const std::vector<int64_t>& b_shape, bool quantized, float a_scale, float b_scale,
                      float y_scale, int32_t a_zp, int32_t b_zp, int32_t y_zp, const std::string& rounding,
                      const std::string& act, float act_lo, float act_hi, const std::string& kernel) {
  EltwiseArgs a;
  if (op == "add") a.op = EltOp::kAdd;
  else if (op == "mul") a.op = EltOp::kMul;
  else throw std::invalid_argument("op must be 'add' or 'mul', got '" + op + "'");
  a.dtype = parse_dtype(dtype);
  a.a_shape = a_shape;
  a.b_shape = b_shape;
  a.quantized = quantized;
  a.a_scale = a_scale;
  a.b_scale = b_scale;
  a.y_scale = y_scale;
  a.a_zp = a_zp;
  a.b_zp = b_zp;
  a.y_zp = y_zp;
  a.rounding = parse_rounding_name(rounding);
  a.act = parse_activation(act, act_lo, act_hi);
  a.kernel = kernel;
  return a;
}

// out may be exactly a or exactly b (in place: each element is read before it is written); any other
// overlap is refused.
bool same_buffer(const py::array& a, const py::array& b) { return a.data() == b.data() && a.nbytes() == b.nbytes(); }

void run_op(const EltwiseOp& op, const py::array& a, const py::array& b, py::array& y, uint32_t core_mask) {
  const void* ap = input_ptr(a, "a", op.spec().dtype, op.spec().a_shape);
  const void* bp = input_ptr(b, "b", op.spec().dtype, op.spec().b_shape);
  void* yp = output_ptr(y, "out", op.y_dtype(), op.y_shape());
  NPU_CHECK(!shares_memory(a, y) || same_buffer(a, y), "out must be a itself or not share memory with a");
  NPU_CHECK(!shares_memory(b, y) || same_buffer(b, y), "out must be b itself or not share memory with b");
  py::gil_scoped_release release;
  op.run(ap, bp, yp, core_mask);
}

#define NPUEMU_ELT_ARGS                                                                                         \
  py::arg("op"), py::arg("dtype"), py::arg("a_shape"), py::arg("b_shape"), py::arg("quantized"),                \
      py::arg("a_scale"), py::arg("b_scale"), py::arg("y_scale"), py::arg("a_zero_point"), py::arg("b_zero_point"), \
      py::arg("y_zero_point"), py::arg("rounding"), py::arg("activation"), py::arg("act_lo"), py::arg("act_hi"),  \
      py::arg("kernel")

}  // namespace

void bind_eltwise(py::module_& m) {
  py::class_<EltwiseOp, std::shared_ptr<EltwiseOp>>(m, "EltwiseOp")
      .def(py::init([](const std::string& op, const std::string& dtype, const std::vector<int64_t>& a_shape,
                       const std::vector<int64_t>& b_shape, bool quantized, float a_scale, float b_scale,
                       float y_scale, int32_t a_zp, int32_t b_zp, int32_t y_zp, const std::string& rounding,
                       const std::string& act, float act_lo, float act_hi, const std::string& kernel) {
             return std::make_shared<EltwiseOp>(make_args(op, dtype, a_shape, b_shape, quantized, a_scale, b_scale,
                                                          y_scale, a_zp, b_zp, y_zp, rounding, act, act_lo, act_hi,
                                                          kernel));
           }),
           NPUEMU_ELT_ARGS)
      .def("run", &run_op, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("core_mask"))
      .def_property_readonly("kernel_name", &EltwiseOp::kernel_name)
      .def_property_readonly("y_shape", &EltwiseOp::y_shape)
      .def_property_readonly("y_dtype", [](const EltwiseOp& op) { return numpy_dtype(op.y_dtype()); });

  m.def(
      "eltwise_cached",
      [](const std::string& op, const std::string& dtype, const std::vector<int64_t>& a_shape,
         const std::vector<int64_t>& b_shape, bool quantized, float a_scale, float b_scale, float y_scale,
         int32_t a_zp, int32_t b_zp, int32_t y_zp, const std::string& rounding, const std::string& act, float act_lo,
         float act_hi, const std::string& kernel) {
        return eltwise_op_cached(make_args(op, dtype, a_shape, b_shape, quantized, a_scale, b_scale, y_scale, a_zp,
                                           b_zp, y_zp, rounding, act, act_lo, act_hi, kernel));
      },
      NPUEMU_ELT_ARGS);
  m.def("eltwise_cache_clear", &eltwise_cache_clear);

  // The prepared fixed-point multipliers (m0, shift) of an op, for tests against TFLite's Prepare.
  m.def(
      "eltwise_multipliers",
      [](const std::string& op, float a_scale, float b_scale, float y_scale) {
        EltwiseArgs a = make_args(op, "int8", {1}, {1}, true, a_scale, b_scale, y_scale, 0, 0, 0, "fixed_point", "none",
                                  0.f, 0.f, "");
        const EltParams p = make_eltwise_params(a);
        py::dict d;
        d["a"] = py::make_tuple(p.ma.m0, p.ma.shift);
        d["b"] = py::make_tuple(p.mb.m0, p.mb.shift);
        d["y"] = py::make_tuple(p.my.m0, p.my.shift);
        return d;
      },
      py::arg("op"), py::arg("a_scale"), py::arg("b_scale"), py::arg("y_scale"));

  m.def("list_eltwise_kernels", [] {
    py::list out;
    for (const EltwiseKernel* k : eltwise_kernel_registry()) {
      py::dict d;
      py::list fams;
      fams.append("int8");
      fams.append("uint8");
      if (k->algo() != "lut") fams.append("fp16");
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
