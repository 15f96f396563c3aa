#include "ops/conv_op.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "ops/kernel_select.h"
#include "ops/op_cache.h"
#include "quant/fp16.h"

namespace npuemu {
namespace {

bool is_activation_int(DType t) { return t == DType::kUInt8 || t == DType::kInt8 || t == DType::kInt4 || t == DType::kInt16; }

ConvFamily family_of(DType x, DType w) {
  if (x == DType::kFloat16 || w == DType::kFloat16) return ConvFamily::kFp16;
  if (x == DType::kInt16 || w == DType::kInt16) return ConvFamily::kInt16;
  return ConvFamily::kInt8;
}

const char* family_name(ConvFamily f) {
  switch (f) {
    case ConvFamily::kInt8: return "int8";
    case ConvFamily::kInt16: return "int16";
    case ConvFamily::kFp16: return "fp16";
  }
  return "?";
}

bool algo_matches(const std::string& requested, const std::string& algo) {
  if (requested == "auto") return true;  // the reference costs most, so it is chosen last
  if (requested == "winograd") return algo.rfind("winograd", 0) == 0;
  return requested == algo;
}

size_t bias_elem_size(DType t) { return dtype_size(t); }

}  // namespace

std::vector<const ConvKernel*> conv_candidates(const ConvSpec& spec, const std::string& algo) {
  std::vector<const ConvKernel*> out;
  for (const ConvKernel* k : conv_kernel_registry()) {
    if (!k->handles(spec.family) || static_cast<int>(k->isa()) > static_cast<int>(active_isa())) continue;
    if (spec.nhwc && !k->supports_nhwc()) continue;
    if (!algo_matches(algo, k->algo())) continue;
    std::string why;
    if (!k->supports(spec, &why)) continue;
    out.push_back(k);
  }
  keep_highest_isa(out);
  std::stable_sort(out.begin(), out.end(), [&](const ConvKernel* a, const ConvKernel* b) {
    const double ca = a->cost(spec), cb = b->cost(spec);
    return ca != cb ? ca < cb : a->name() < b->name();
  });
  return out;
}

ConvOp::ConvOp(const ConvArgs& a) : args_(a) {
  args_.w = nullptr;
  args_.bias = a.bias != nullptr ? this : nullptr;  // presence only; never dereferenced
  ConvSpec& s = spec_;
  // Matmul's B arrives as [K, N] (input channels x output channels): transpose it once, here, into the
  // OIHW form of a 1x1 convolution. The cache still compares the caller's original bytes.
  std::vector<int64_t> w_shape = a.w_shape;
  std::vector<uint8_t> w_oihw;
  const void* w_ptr = a.w;
  if (a.w_transposed) {
    NPU_CHECK(a.w_shape.size() == 2, "a transposed weight (matmul B) must be 2-D [K, N], got ", a.w_shape.size(),
              " dimensions");
    const int64_t k = a.w_shape[0], n = a.w_shape[1];
    const size_t es = dtype_size(a.w_dtype);
    w_oihw.resize(static_cast<size_t>(k * n) * es);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(&w_oihw[static_cast<size_t>(j * k + i) * es], static_cast<const uint8_t*>(a.w) + (i * n + j) * es,
                    es);
    w_shape = {n, k, 1, 1};
    w_ptr = w_oihw.data();
  }
  std::vector<int64_t> nchw = a.x_shape;
  if (a.nhwc) {
    NPU_CHECK(a.x_shape.size() == 4, "x must be 4-D NHWC, got ", a.x_shape.size(), " dimensions");
    nchw = {a.x_shape[0], a.x_shape[3], a.x_shape[1], a.x_shape[2]};
  }
  s.g = make_conv_geometry(nchw, w_shape, a.strides, a.pads, a.dilations, a.group);
  s.nhwc = a.nhwc;
  const ConvGeometry& g = s.g;
  NPU_CHECK_TYPE(is_activation_int(a.x_dtype) || a.x_dtype == DType::kFloat16,
                 "x dtype must be uint8, int8, int4, int16 or float16, got ", dtype_name(a.x_dtype));
  NPU_CHECK_TYPE(is_activation_int(a.w_dtype) || a.w_dtype == DType::kFloat16,
                 "w dtype must be uint8, int8, int4, int16 or float16, got ", dtype_name(a.w_dtype));
  NPU_CHECK_TYPE((a.x_dtype == DType::kFloat16) == (a.w_dtype == DType::kFloat16),
                 "x and w must both be float16 or both be integers, got x ", dtype_name(a.x_dtype), " and w ",
                 dtype_name(a.w_dtype));
  s.family = family_of(a.x_dtype, a.w_dtype);
  s.x_dtype = a.x_dtype;
  s.w_dtype = a.w_dtype;
  s.act = a.act;
  const int64_t nw = g.oc * g.icg() * g.kh * g.kw;
  ConvData d;
  d.w = w_ptr;
  std::vector<int8_t> w_unpacked;  // int4: the kernels' view of the nibble-packed storage
  w_bytes_.assign(static_cast<const uint8_t*>(a.w), static_cast<const uint8_t*>(a.w) + nw * dtype_size(a.w_dtype));

  if (s.family == ConvFamily::kFp16) {
    bool zero_zps = a.x_zp == 0;
    for (int32_t z : a.w_zp) zero_zps = zero_zps && z == 0;
    NPU_CHECK(zero_zps && !a.requant, "float16 convolution takes no zero points or scales");
    s.y_dtype = DType::kFloat16;
    d.bias_f.assign(static_cast<size_t>(g.oc), 0.f);
    if (a.bias != nullptr) {
      NPU_CHECK_TYPE(a.bias_dtype == DType::kFloat16, "bias of a float16 convolution must be float16, got ",
                     dtype_name(a.bias_dtype));
      NPU_CHECK(a.bias_len == g.oc, "bias must have ", g.oc, " elements (output channels), got ", a.bias_len);
      for (int64_t c = 0; c < g.oc; ++c) d.bias_f[c] = fp16_to_fp32(static_cast<const uint16_t*>(a.bias)[c]);
    }
    check_activation(s.act);
  } else {
    // zero points
    NPU_CHECK(a.x_zp >= dtype_min(a.x_dtype) && a.x_zp <= dtype_max(a.x_dtype), "x_zero_point ", a.x_zp,
              " is outside the ", dtype_name(a.x_dtype), " range [", dtype_min(a.x_dtype), ", ",
              dtype_max(a.x_dtype), "]");
    d.x_zp = a.x_zp;
    NPU_CHECK(a.w_zp.size() <= 1 || static_cast<int64_t>(a.w_zp.size()) == g.oc, "w_zero_point must have 1 or ",
              g.oc, " (output channels) elements, got ", a.w_zp.size());
    d.w_zp.assign(static_cast<size_t>(g.oc), 0);
    for (int64_t c = 0; c < g.oc; ++c) {
      const int32_t z = a.w_zp.empty() ? 0 : a.w_zp[a.w_zp.size() == 1 ? 0 : c];
      NPU_CHECK(z >= dtype_min(a.w_dtype) && z <= dtype_max(a.w_dtype), "w_zero_point ", z, " is outside the ",
                dtype_name(a.w_dtype), " range [", dtype_min(a.w_dtype), ", ", dtype_max(a.w_dtype), "]");
      d.w_zp[c] = z;
      if (z != 0) s.has_w_zero_point = true;
    }
    if (a.w_dtype == DType::kInt4) {
      const int8_t* w = static_cast<const int8_t*>(w_ptr);
      for (int64_t i = 0; i < nw; ++i)
        NPU_CHECK(w[i] >= -8 && w[i] <= 7, "w_dtype='int4' needs every weight in [-8, 7], got ", int(w[i]),
                  " at flat index ", i);
      // int4 weights are stored packed, two per byte (dtype.h); the kernels are planned from that storage
      w_int4_.resize(static_cast<size_t>((nw + 1) / 2));
      pack_int4(w, static_cast<size_t>(nw), w_int4_.data());
      w_unpacked.resize(static_cast<size_t>(nw));
      unpack_int4(w_int4_.data(), static_cast<size_t>(nw), w_unpacked.data());
      d.w = w_unpacked.data();
    }
    // bias
    d.bias.assign(static_cast<size_t>(g.oc), 0);
    if (a.bias != nullptr) {
      NPU_CHECK(a.requant, "conv_integer takes no bias");
      NPU_CHECK_TYPE(a.bias_dtype == DType::kInt32 || a.bias_dtype == DType::kInt64,
                     "bias of an integer convolution must be int32 (or int64 for int16), got ",
                     dtype_name(a.bias_dtype));
      NPU_CHECK(a.bias_len == g.oc, "bias must have ", g.oc, " elements (output channels), got ", a.bias_len);
      for (int64_t c = 0; c < g.oc; ++c)
        d.bias[c] = a.bias_dtype == DType::kInt32 ? static_cast<const int32_t*>(a.bias)[c]
                                                   : static_cast<const int64_t*>(a.bias)[c];
      bias_bytes_.assign(static_cast<const uint8_t*>(a.bias),
                         static_cast<const uint8_t*>(a.bias) + a.bias_len * bias_elem_size(a.bias_dtype));
    }
    NPU_CHECK(a.act.kind != ActKind::kHardSwish,
              "activation 'hard_swish' is fused only into float16 convolutions (integer paths apply it as a "
              "lookup table); valid here: none, relu, relu6 / clip, leaky_relu");
    s.requant = a.requant;
    if (a.requant) {
      NPU_CHECK_TYPE(is_activation_int(a.y_dtype), "output dtype must be uint8, int8, int4 or int16, got ",
                     dtype_name(a.y_dtype));
      s.y_dtype = a.y_dtype;
      d.os = make_output_stage(g.oc, a.x_scale, a.w_scale.data(), static_cast<int64_t>(a.w_scale.size()), a.y_scale,
                               a.y_zp, a.y_dtype, a.rounding, a.act);
    } else {
      NPU_CHECK(a.act.kind == ActKind::kNone, "conv_integer returns raw accumulators and takes no activation");
      s.y_dtype = s.family == ConvFamily::kInt16 ? DType::kInt64 : DType::kInt32;
    }
  }

  // kernel selection
  NPU_CHECK(a.algo == "auto" || a.algo == "direct" || a.algo == "winograd" || a.algo == "reference",
            "algo must be 'auto', 'direct', 'winograd' or 'reference', got '", a.algo, "'");
  std::vector<const ConvKernel*> cands;
  if (!a.kernel.empty()) {
    const ConvKernel* k = find_forced_kernel(conv_kernel_registry(), a.kernel, "convolution");
    std::string why;
    NPU_CHECK(k->handles(s.family) && (!s.nhwc || k->supports_nhwc()) && k->supports(s, &why), "kernel '", a.kernel,
              "' does not support this ",
              family_name(s.family), " convolution", why.empty() ? "" : ": ", why);
    cands.push_back(k);
  } else {
    cands = conv_candidates(s, a.algo);
    if (cands.empty()) {
      std::string reasons;
      for (const ConvKernel* k : conv_kernel_registry()) {
        if (!k->handles(s.family) || !algo_matches(a.algo, k->algo())) continue;
        std::string why;
        if (static_cast<int>(k->isa()) > static_cast<int>(active_isa()))
          why = std::string("needs ISA ") + isa_name(k->isa());
        else if (!k->supports(s, &why) && why.empty())
          why = "unsupported";
        if (!why.empty()) reasons += "; " + k->name() + ": " + why;
      }
      NPU_CHECK(false, "no ", family_name(s.family), " convolution kernel for algo='", a.algo,
                "' supports this convolution (kernel ", g.kh, "x", g.kw, ", stride ", g.sh, "x", g.sw, ", dilation ",
                g.dh, "x", g.dw, ", group ", g.group, ")", reasons);
    }
  }
  const bool tune = a.algo == "auto" && a.kernel.empty();
  for (size_t i = 0; i < cands.size(); ++i) {
    plan_ = cands[i]->plan(s, d);
    if (!plan_) continue;
    kernel_name_ = cands[i]->name();
    if (tune && i + 1 < cands.size()) settle_near_tie(s, d, cands[i], cands[i + 1]);
    break;
  }
  if (!plan_) {  // every candidate declined the data: the reference handles everything
    for (const ConvKernel* k : conv_kernel_registry())
      if (k->algo() == "reference") {
        NPU_CHECK(a.algo == "auto" && a.kernel.empty(), "the requested kernel cannot run these weights exactly");
        plan_ = k->plan(s, d);
        kernel_name_ = k->name();
      }
  }
}

// Integer kernels give identical bits (docs/arithmetic.md), so where the cost model cannot separate the
// two cheapest candidates (within 15%), both are timed once on this machine, one core, and the faster is
// kept: the choice can differ between machines or runs, the results cannot. Float16 kernels differ in
// their last bits, so their choice stays with the deterministic model.
void ConvOp::settle_near_tie(const ConvSpec& s, const ConvData& d, const ConvKernel* first, const ConvKernel* second) {
  if (s.family == ConvFamily::kFp16 || second->algo() == "reference" || second->cost(s) > 1.15 * first->cost(s))
    return;
  std::unique_ptr<ConvPlan> other = second->plan(s, d);
  if (!other) return;
  const ConvGeometry& g = s.g;
  std::vector<uint8_t> x(static_cast<size_t>(g.n * g.c * g.h * g.w) * dtype_size(s.x_dtype));
  std::vector<uint8_t> y(static_cast<size_t>(g.n * g.oc * g.oh * g.ow) * dtype_size(s.y_dtype));
  uint32_t r = 12345;
  for (uint8_t& v : x) v = static_cast<uint8_t>((r = r * 1103515245u + 12345u) >> 24);  // any input times alike
  const CoreSet one = CorePool::instance().cores_for_mask(kCoreMaskAuto);
  auto best_of = [&](const ConvPlan& p) {
    p.run(x.data(), y.data(), one);  // warm-up: workspaces, caches
    double best = 1e300;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      p.run(x.data(), y.data(), one);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  if (best_of(*other) < best_of(*plan_)) {
    plan_ = std::move(other);
    kernel_name_ = second->name();
  }
}

std::vector<int64_t> ConvOp::y_shape() const {
  const ConvGeometry& g = spec_.g;
  if (spec_.nhwc) return {g.n, g.oh, g.ow, g.oc};
  return {g.n, g.oc, g.oh, g.ow};
}

void ConvOp::run(const void* x, void* y, uint32_t core_mask) const {
  const CoreSet cores = CorePool::instance().cores_for_mask(core_mask);
  if (spec_.x_dtype == DType::kInt4) {
    const ConvGeometry& g = spec_.g;
    const int8_t* xv = static_cast<const int8_t*>(x);
    const int64_t n = g.n * g.c * g.h * g.w;
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) bad |= (xv[i] < -8) | (xv[i] > 7);
    if (bad)
      for (int64_t i = 0; i < n; ++i)
        NPU_CHECK(xv[i] >= -8 && xv[i] <= 7, "x_dtype='int4' needs every input in [-8, 7], got ", int(xv[i]),
                  " at flat index ", i);
  }
  plan_->run(x, y, cores);
}

// ---------------------------------------------------------------------------------------------------
// Plan cache for the functional API.

namespace {

bool same_activation(const Activation& a, const Activation& b) {
  return a.kind == b.kind && same_bits(a.lo, b.lo) && same_bits(a.hi, b.hi) && same_bits(a.alpha, b.alpha);
}

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool same_scalars(const ConvArgs& a, const ConvArgs& b) {
  return a.x_shape == b.x_shape && a.x_dtype == b.x_dtype && a.w_shape == b.w_shape && a.w_dtype == b.w_dtype &&
         a.strides == b.strides && a.pads == b.pads && a.dilations == b.dilations && a.group == b.group &&
         a.nhwc == b.nhwc && a.w_transposed == b.w_transposed && a.x_zp == b.x_zp && a.w_zp == b.w_zp &&
         (a.bias == nullptr) == (b.bias == nullptr) && a.bias_dtype == b.bias_dtype && a.bias_len == b.bias_len &&
         a.requant == b.requant && same_bits(a.x_scale, b.x_scale) && same_bits(a.y_scale, b.y_scale) &&
         same_floats(a.w_scale, b.w_scale) &&
         a.y_zp == b.y_zp && a.y_dtype == b.y_dtype && a.rounding == b.rounding && same_activation(a.act, b.act) &&
         a.algo == b.algo && a.kernel == b.kernel;
}

// Intentionally leaked: the cache must outlive every static destructor that could still run an op.
OpCache<ConvOp>& cache() {
  static OpCache<ConvOp>* c = new OpCache<ConvOp>(16);
  return *c;
}

}  // namespace

std::shared_ptr<ConvOp> conv_op_cached(const ConvArgs& args) {
  // Weights and bias are compared by value: a caller may reuse an array object with new contents.
  return cache().get(
      [&](const ConvOp& op) {
        return same_scalars(op.args_, args) && std::memcmp(op.w_bytes_.data(), args.w, op.w_bytes_.size()) == 0 &&
               (args.bias == nullptr || std::memcmp(op.bias_bytes_.data(), args.bias, op.bias_bytes_.size()) == 0);
      },
      [&] { return std::make_shared<ConvOp>(args); });
}

void conv_cache_clear() { cache().clear(); }

}  // namespace npuemu
