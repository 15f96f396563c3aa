// Shapes: formatting for error messages and overflow-safe size checks shared by the op validators.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/check.h"

namespace npuemu {

// "(1, 3, 224, 224)"; "(5,)" for one dimension.
inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// Largest kernel size, stride, dilation or pad accepted: far beyond any real model, small enough that no
// geometry product of these with tensor dimensions (< 2^31) can overflow int64.
constexpr int64_t kMaxWindowAttr = int64_t{1} << 20;

inline void check_window_attr(const char* name, const std::vector<int64_t>& v, int64_t lo) {
  for (int64_t x : v)
    NPU_CHECK(x >= lo && x <= kMaxWindowAttr, name, " must be in [", lo, ", ", kMaxWindowAttr, "], got ", shape_str(v));
}

// Product of non-negative dimensions; throws when it reaches 2^31 elements (the limit of every tensor the
// core handles), without overflowing on the way.
inline int64_t checked_numel(std::initializer_list<int64_t> dims, const char* what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    NPU_CHECK(d >= 0, what, " has a negative dimension ", d);
    NPU_CHECK(d == 0 || n <= ((int64_t{1} << 31) - 1) / d, what, " is too large (2^31 elements or more)");
    n *= d;
  }
  return n;
}

}  // namespace npuemu
