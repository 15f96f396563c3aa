#include "kernels/conv/conv.h"

#include "core/check.h"
#include "core/shape.h"

namespace npuemu {


ConvGeometry make_conv_geometry(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                                const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                                const std::vector<int64_t>& dilations, int64_t group) {
  NPU_CHECK(x.size() == 4, "x must be 4-D NCHW, got shape ", shape_str(x));
  NPU_CHECK(w.size() == 4, "w must be 4-D OIHW, got shape ", shape_str(w));
  for (int64_t d : x) NPU_CHECK(d > 0, "x must not be empty, got shape ", shape_str(x));
  for (int64_t d : w) NPU_CHECK(d > 0, "w must not be empty, got shape ", shape_str(w));
  NPU_CHECK(strides.size() == 2, "strides must have 2 values (h, w), got ", shape_str(strides));
  NPU_CHECK(dilations.size() == 2, "dilations must have 2 values (h, w), got ", shape_str(dilations));
  NPU_CHECK(pads.size() == 4, "pads must have 4 values (top, left, bottom, right), got ", shape_str(pads));
  check_window_attr("strides", strides, 1);
  check_window_attr("dilations", dilations, 1);
  check_window_attr("pads", pads, 0);
  check_window_attr("kernel size", {w[2], w[3]}, 1);
  NPU_CHECK(group >= 1, "group must be >= 1, got ", group);
  ConvGeometry g;
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.oc = w[0];
  g.kh = w[2];
  g.kw = w[3];
  g.sh = strides[0];
  g.sw = strides[1];
  g.dh = dilations[0];
  g.dw = dilations[1];
  g.pt = pads[0];
  g.pl = pads[1];
  g.pb = pads[2];
  g.pr = pads[3];
  g.group = group;
  NPU_CHECK(g.c % group == 0, "input channels ", g.c, " are not divisible by group ", group);
  NPU_CHECK(g.oc % group == 0, "output channels ", g.oc, " are not divisible by group ", group);
  NPU_CHECK(w[1] == g.c / group, "w has ", w[1], " input channels per group but x has ", g.c, " channels and group=",
            group, " (expected w.shape[1] == ", g.c / group, "); x shape ", shape_str(x), ", w shape ", shape_str(w));
  const int64_t eh = (g.kh - 1) * g.dh + 1, ew = (g.kw - 1) * g.dw + 1;
  const int64_t hp = g.h + g.pt + g.pb, wp = g.w + g.pl + g.pr;
  NPU_CHECK(hp >= eh && wp >= ew, "the dilated kernel (", eh, "x", ew, ") is larger than the padded input (", hp, "x",
            wp, "); x shape ", shape_str(x), ", w shape ", shape_str(w), ", pads ", shape_str(pads));
  g.oh = (hp - eh) / g.sh + 1;
  g.ow = (wp - ew) / g.sw + 1;
  checked_numel({g.n, g.c, g.h, g.w}, "x");
  checked_numel({g.n, g.oc, g.oh, g.ow}, "the output");
  checked_numel({g.oc, g.icg(), g.kh, g.kw}, "w");
  return g;
}

std::vector<const ConvKernel*>& conv_kernel_registry() {
  static std::vector<const ConvKernel*> reg;
  return reg;
}

double conv_memory_cost_ns(const ConvSpec& spec) {
  const ConvGeometry& g = spec.g;
  const double in = static_cast<double>(g.n * g.c * (g.h + g.pt + g.pb) * (g.w + g.pl + g.pr));
  const double out = static_cast<double>(g.n * g.oc * g.oh * g.ow);
  return 0.05 * in + 0.05 * out;  // pack + unpack passes, ~ns per element (SIMD transposes)
}

}  // namespace npuemu
