// Parsing of the string-valued arguments shared by the element-wise and pooling bindings.
#pragma once
#include <cmath>
#include <stdexcept>
#include <string>

#include "quant/requant.h"

namespace npuemu {

inline Activation parse_activation(const std::string& kind, float lo, float hi) {
  Activation a;
  if (kind == "none") a.kind = ActKind::kNone;
  else if (kind == "relu") a.kind = ActKind::kRelu, a.lo = 0.f, a.hi = INFINITY;
  else if (kind == "clip") a.kind = ActKind::kClip, a.lo = lo, a.hi = hi;
  else if (kind == "leaky_relu") a.kind = ActKind::kLeakyRelu;
  else throw std::invalid_argument("unknown activation '" + kind + "'; valid: none, relu, clip");
  return a;
}

inline Rounding parse_rounding_name(const std::string& r) {
  if (r == "fixed_point") return Rounding::kFixedPoint;
  if (r == "float") return Rounding::kFloat;
  throw std::invalid_argument("rounding must be 'fixed_point' or 'float', got '" + r + "'");
}

}  // namespace npuemu
