// numpy <-> core glue shared by the binding files: dtype mapping and zero-copy pointer access with
// validation (C-contiguous, non-empty, right dtype, writable for outputs). Never copies.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "core/check.h"
#include "core/shape.h"
#include "core/dtype.h"

namespace npuemu {
namespace py = pybind11;

inline DType parse_dtype(const std::string& s) {
  if (s == "uint8") return DType::kUInt8;
  if (s == "int8") return DType::kInt8;
  if (s == "int4") return DType::kInt4;
  if (s == "int16") return DType::kInt16;
  if (s == "int32") return DType::kInt32;
  if (s == "int64") return DType::kInt64;
  if (s == "float16") return DType::kFloat16;
  if (s == "float32") return DType::kFloat32;
  throw type_error("unknown dtype '" + s + "'; valid: uint8, int8, int4, int16, int32, int64, float16, float32");
}

// The npuemu dtype of a numpy array (int4 is never inferred: it is stored as int8).
inline DType dtype_of(const py::array& a) {
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  if (kind == 'u' && size == 1) return DType::kUInt8;
  if (kind == 'i' && size == 1) return DType::kInt8;
  if (kind == 'i' && size == 2) return DType::kInt16;
  if (kind == 'i' && size == 4) return DType::kInt32;
  if (kind == 'i' && size == 8) return DType::kInt64;
  if (kind == 'f' && size == 2) return DType::kFloat16;
  if (kind == 'f' && size == 4) return DType::kFloat32;
  throw type_error("unsupported numpy dtype " + std::string(py::str(dt)));
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  std::vector<int64_t> s(static_cast<size_t>(a.ndim()));
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<int64_t>(a.shape(static_cast<py::ssize_t>(i)));
  return s;
}

// Whether two arrays' byte ranges intersect (outputs must not alias inputs unless an op allows it).
inline bool shares_memory(const py::array& a, const py::array& b) {
  const char* pa = static_cast<const char*>(a.data());
  const char* pb = static_cast<const char*>(b.data());
  return pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

inline bool storage_matches(DType want, DType have) {
  return want == have || (want == DType::kInt4 && have == DType::kInt8);
}

// Pointer to the data of a C-contiguous array of the expected dtype and shape (no copy).
inline const void* input_ptr(const py::array& a, const char* name, DType want, const std::vector<int64_t>& shape) {
  NPU_CHECK_TYPE(storage_matches(want, dtype_of(a)), name, " must be ",
                 want == DType::kInt4 ? "int8 (holding int4 values)" : dtype_name(want), ", got ",
                 std::string(py::str(a.dtype())));
  NPU_CHECK(shape_of(a) == shape, name, " must have shape ", shape_str(shape), ", got ", shape_str(shape_of(a)));
  NPU_CHECK(a.flags() & py::array::c_style, name, " must be C-contiguous (use np.ascontiguousarray)");
  return a.data();
}

inline void* output_ptr(py::array& a, const char* name, DType want, const std::vector<int64_t>& shape) {
  const void* p = input_ptr(a, name, want, shape);
  NPU_CHECK(a.writeable(), name, " must be writable");
  return const_cast<void*>(p);
}

inline py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kInt8: case DType::kInt4: return py::dtype("int8");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt64: return py::dtype("int64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kFloat32: return py::dtype("float32");
  }
  return py::dtype("int8");
}

}  // namespace npuemu
