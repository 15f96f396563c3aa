// The private extension module npuemu._core. Bindings only declare: validation, arithmetic and dispatch
// live in csrc/core, csrc/quant, csrc/kernels and csrc/ops.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/numpy_util.h"
#include "core/cpu.h"
#include "core/memory.h"
#include "core/parallel.h"
#include "quant/fixedpoint.h"
#include "quant/fp16.h"

namespace npuemu {
double measure_peak_gmacs(const std::string& what);
void bind_conv(py::module_& m);
void bind_arith(py::module_& m);
void bind_eltwise(py::module_& m);
void bind_pool(py::module_& m);
}  // namespace npuemu

namespace py = pybind11;
using namespace npuemu;

PYBIND11_MODULE(_core, m) {
  m.doc() = "npuemu native core (private; use npuemu.ops)";
  py::register_exception<type_error>(m, "NpuTypeError", PyExc_TypeError);

  m.def("detected_isa", [] { return std::string(isa_name(detected_isa())); });
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", [](const std::string& name) { set_isa_cap(parse_isa(name)); }, py::arg("name"));
  m.def("alloc_stats", [] {
    const AllocStats s = alloc_stats();
    py::dict d;
    d["count"] = s.count;
    d["bytes"] = s.bytes;
    d["live_bytes"] = s.live_bytes;
    return d;
  });
  m.def("num_cores", [] { return CorePool::instance().num_cores(); });
  m.def("set_num_cores", [](int n) { CorePool::instance().set_num_cores(n); }, py::arg("n"));
  m.def("validate_core_mask", [](uint32_t mask) {
    const CoreSet s = CorePool::instance().cores_for_mask(mask);
    return std::vector<int>(s.ids, s.ids + s.count);
  });
  m.def("measure_peak_gmacs", [](const std::string& what) {
    py::gil_scoped_release release;
    return measure_peak_gmacs(what);
  }, py::arg("what"), "GMAC/s of one core's best int8 dot-product ('int8') or FMA ('fp32') instruction");
  bind_arith(m);
  bind_conv(m);
  bind_eltwise(m);
  bind_pool(m);
}
