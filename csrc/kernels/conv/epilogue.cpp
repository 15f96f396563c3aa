// Output-stage (DPU) tables shared by the convolution drivers; see direct.h (EpiBlock, FixedBlock) and
// docs/arithmetic.md section 3 for the formulas they encode.
#include <cstring>

#include "kernels/conv/direct.h"

namespace npuemu {
namespace direct {
namespace {

// The SIMD form of RoundingDivideByPOT(SRDHM(acc * 2^left, m0), right) for int32 accumulators.
void fill_fixed(FixedBlock& f, int lane, QuantizedMultiplier q) {
  const ClosedFormMultiplier c = closed_form(q);  // the exact closed form of fixedpoint.h
  f.m0[lane] = static_cast<int32_t>(c.m0);
  if (lane % 2) f.m0_odd[lane - 1] = static_cast<int32_t>(c.m0);
  (lane % 2 ? f.r_o : f.r_e)[lane / 2] = c.r;
  (lane % 2 ? f.k_o : f.k_e)[lane / 2] = c.k;
  (lane % 2 ? f.s_o : f.s_e)[lane / 2] = c.s;
}

// The int64-accumulator form (INT16 path) of the same requantization, for the AVX2 int64 stage.
void fill_fixed64(Fixed64Block& f, int lane, QuantizedMultiplier q) {
  const int left = q.shift > 0 ? q.shift : 0;
  const int right = q.shift > 0 ? 0 : -q.shift;  // <= 62 (quantize_multiplier)
  f.m0[lane] = q.m0 < 0 ? -static_cast<int64_t>(q.m0) : q.m0;
  f.negm[lane] = q.m0 < 0 ? -1 : 0;
  f.left[lane] = q.m0 != 0 ? left : 0;
  f.right[lane] = right;
  f.mask[lane] = (int64_t{1} << right) - 1;
  f.thr0[lane] = f.mask[lane] >> 1;
  if (f.left[lane] > 0) f.any_left = 1;
  if (q.m0 < 0) f.any_neg = 1;
}

// 1 when no lane of the block shifts left: every fixed-point q then fits int32 before clamping.
int32_t narrow_block(const EpiBlock& eb) {
  for (int i = 0; i < 8; ++i)
    if ((eb.pos.s_e[i] != 0 && eb.pos.s_e[i] < 31) || (eb.pos.s_o[i] != 0 && eb.pos.s_o[i] < 31) ||
        (eb.neg.s_e[i] != 0 && eb.neg.s_e[i] < 31) || (eb.neg.s_o[i] != 0 && eb.neg.s_o[i] < 31))
      return 0;
  return 1;
}

}  // namespace

int64_t packed_zero_point(const ConvSpec& spec, const ConvData& d, MacType mac) {
  switch (input_format(mac)) {
    case InputFormat::kU8: return spec.x_dtype == DType::kUInt8 ? d.x_zp : d.x_zp + 128;
    case InputFormat::kI16: return d.x_zp;
    case InputFormat::kF32: return 0;
  }
  return 0;
}

void build_epilogue(const ConvSpec& spec, const ConvData& d, const std::vector<int64_t>& wsum, int64_t zp_in,
                    bool acc64, Epilogue* out, int64_t groups, int64_t ocg) {
  const ConvGeometry& g = spec.g;
  if (groups < 0) groups = g.group;
  if (ocg < 0) ocg = g.ocg();
  const int64_t obg = (ocg + kC2 - 1) / kC2;
  const int64_t nblk = groups * obg;
  out->blocks = Buffer(static_cast<size_t>(nblk) * sizeof(EpiBlock));
  std::memset(out->blocks.data(), 0, out->blocks.size());
  EpiBlock* blocks = out->blocks.data<EpiBlock>();
  out->ch.assign(static_cast<size_t>(nblk * kC2), RequantChannel{});
  const bool leaky = spec.requant && spec.act.kind == ActKind::kLeakyRelu;
  for (int64_t grp = 0; grp < groups; ++grp) {
    for (int64_t ob = 0; ob < obg; ++ob) {
      EpiBlock& eb = blocks[grp * obg + ob];
      for (int lane = 0; lane < kC2; ++lane) {
        const int64_t ocl = ob * kC2 + lane;
        if (ocl >= ocg) continue;
        const int64_t oc = grp * ocg + ocl;
        if (spec.family == ConvFamily::kFp16) {
          eb.bias_f[lane] = d.bias_f[oc];
          continue;
        }
        const int64_t b = d.bias[oc] - zp_in * wsum[oc];
        eb.bias[lane] = static_cast<int32_t>(static_cast<uint32_t>(b));  // int32 wrap
        eb.bias64[lane] = b;
        if (!spec.requant) continue;
        const RequantChannel& rc = d.os.ch[oc];
        out->ch[(grp * obg + ob) * kC2 + lane] = rc;
        eb.lo[lane] = rc.lo;
        eb.hi[lane] = rc.hi;
        (lane % 2 ? eb.lo_o : eb.lo_e)[lane / 2] = rc.lo;
        (lane % 2 ? eb.hi_o : eb.hi_e)[lane / 2] = rc.hi;
        eb.scale[lane] = rc.scale_pos;
        eb.scale_neg[lane] = rc.scale_neg;
        eb.flo[lane] = static_cast<float>(rc.lo);
        eb.fhi[lane] = static_cast<float>(rc.hi);
        fill_fixed(eb.pos, lane, rc.pos);
        fill_fixed(eb.neg, lane, rc.neg);
        fill_fixed64(eb.pos64, lane, rc.pos);
        fill_fixed64(eb.neg64, lane, rc.neg);
      }
      eb.narrow = narrow_block(eb);
    }
  }
  EpiArgs& a = out->args;
  a = EpiArgs{};
  a.zp = spec.requant ? d.os.zp : 0;
  a.leaky = leaky;
  a.out_elem = static_cast<int>(dtype_size(spec.y_dtype));
  a.act = spec.act;
  a.rounding = spec.requant ? d.os.rounding : Rounding::kFixedPoint;
  a.acc64 = acc64;
  a.unsigned_out = spec.y_dtype == DType::kUInt8;
  a.wrap32 = acc64 && spec.family == ConvFamily::kInt8;
  if (spec.family == ConvFamily::kFp16)
    a.kind = EpiKind::kFp16;
  else if (!spec.requant)
    a.kind = spec.family == ConvFamily::kInt16 ? EpiKind::kRaw64 : EpiKind::kRaw32;
  else
    a.kind = d.os.rounding == Rounding::kFixedPoint ? EpiKind::kFixed : EpiKind::kFloat;
}

}  // namespace direct
}  // namespace npuemu
