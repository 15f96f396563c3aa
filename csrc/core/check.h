// Boundary validation. Public entry points validate their arguments and throw standard exceptions whose
// message names the offending values; kernels only assert. pybind11 maps std::invalid_argument to
// ValueError and npuemu::type_error to TypeError (see bindings/module.cpp).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace npuemu {

// A wrong dtype / type of argument (-> Python TypeError).
class type_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace npuemu

// Throws std::invalid_argument (ValueError) with the streamed message when `cond` is false.
#define NPU_CHECK(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) throw std::invalid_argument(::npuemu::detail::concat(__VA_ARGS__)); \
  } while (0)

// Throws npuemu::type_error (TypeError) with the streamed message when `cond` is false.
#define NPU_CHECK_TYPE(cond, ...)                                              \
  do {                                                                         \
    if (!(cond)) throw ::npuemu::type_error(::npuemu::detail::concat(__VA_ARGS__)); \
  } while (0)
