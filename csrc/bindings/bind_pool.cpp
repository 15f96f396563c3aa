// Pooling ops for npuemu.ops: declarations only; validation lives in ops/pool_op.
#include <pybind11/stl.h>

#include "bindings/numpy_util.h"
#include "bindings/quant_args.h"
#include "ops/pool_op.h"

namespace npuemu {
namespace {

PoolArgs make_args(const std::string& op, const std::string& dtype, const std::vector<int64_t>& x_shape,
                   const std::vector<int64_t>& kernel_shape, const std::vector<int64_t>& strides,
                   const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, bool ceil_mode,
                   bool count_include_pad, bool quantized, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
                   const std::string& rounding, const std::string& kernel) {
  PoolArgs a;
  if (op == "max") a.kind = PoolKind::kMax;
  else if (op == "avg") a.kind = PoolKind::kAvg;
  else if (op == "global_avg") a.kind = PoolKind::kAvg, a.global = true;
  else throw std::invalid_argument("op must be 'max', 'avg' or 'global_avg', got '" + op + "'");
  a.dtype = parse_dtype(dtype);
  a.x_shape = x_shape;
  a.kernel_shape = kernel_shape;
  a.strides = strides;
  a.pads = pads;
  a.dilations = dilations;
  a.ceil_mode = ceil_mode;
  a.count_include_pad = count_include_pad;
  a.quantized = quantized;
  a.x_scale = x_scale;
  a.x_zp = x_zp;
  a.y_scale = y_scale;
  a.y_zp = y_zp;
  a.rounding = parse_rounding_name(rounding);
  a.kernel = kernel;
  return a;
}

void run_op(const PoolOp& op, const py::array& x, py::array& y, uint32_t core_mask) {
  const PoolGeometry& g = op.spec().g;
  const void* xp = input_ptr(x, "x", op.spec().dtype, {g.n, g.c, g.h, g.w});
  void* yp = output_ptr(y, "out", op.y_dtype(), op.y_shape());
  NPU_CHECK(!shares_memory(x, y), "out must not share memory with x");
  py::gil_scoped_release release;
  op.run(xp, yp, core_mask);
}

#define NPUEMU_POOL_ARGS                                                                                        \
  py::arg("op"), py::arg("dtype"), py::arg("x_shape"), py::arg("kernel_shape"), py::arg("strides"),             \
      py::arg("pads"), py::arg("dilations"), py::arg("ceil_mode"), py::arg("count_include_pad"),                 \
      py::arg("quantized"), py::arg("x_scale"), py::arg("x_zero_point"), py::arg("y_scale"), py::arg("y_zero_point"), \
      py::arg("rounding"), py::arg("kernel")

}  // namespace

void bind_pool(py::module_& m) {
  py::class_<PoolOp, std::shared_ptr<PoolOp>>(m, "PoolOp")
      .def(py::init([](const std::string& op, const std::string& dtype, const std::vector<int64_t>& x_shape,
                       const std::vector<int64_t>& kernel_shape, const std::vector<int64_t>& strides,
                       const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, bool ceil_mode,
                       bool count_include_pad, bool quantized, float x_scale, int32_t x_zp, float y_scale,
                       int32_t y_zp, const std::string& rounding, const std::string& kernel) {
             return std::make_shared<PoolOp>(make_args(op, dtype, x_shape, kernel_shape, strides, pads, dilations,
                                                       ceil_mode, count_include_pad, quantized, x_scale, x_zp, y_scale,
                                                       y_zp, rounding, kernel));
           }),
           NPUEMU_POOL_ARGS)
      .def("run", &run_op, py::arg("x"), py::arg("out"), py::arg("core_mask"))
      .def_property_readonly("kernel_name", &PoolOp::kernel_name)
      .def_property_readonly("y_shape", &PoolOp::y_shape)
      .def_property_readonly("y_dtype", [](const PoolOp& op) { return numpy_dtype(op.y_dtype()); });

  m.def(
      "pool_cached",
      [](const std::string& op, const std::string& dtype, const std::vector<int64_t>& x_shape,
         const std::vector<int64_t>& kernel_shape, const std::vector<int64_t>& strides,
         const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, bool ceil_mode,
         bool count_include_pad, bool quantized, float x_scale, int32_t x_zp, float y_scale, int32_t y_zp,
         const std::string& rounding, const std::string& kernel) {
        return pool_op_cached(make_args(op, dtype, x_shape, kernel_shape, strides, pads, dilations, ceil_mode,
                                        count_include_pad, quantized, x_scale, x_zp, y_scale, y_zp, rounding, kernel));
      },
      NPUEMU_POOL_ARGS);
  m.def("pool_cache_clear", &pool_cache_clear);

  m.def("list_pool_kernels", [] {
    py::list out;
    for (const PoolKernel* k : pool_kernel_registry()) {
      py::list fams;
      for (const char* f : {"int8", "uint8", "int16", "fp16"}) fams.append(f);
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
