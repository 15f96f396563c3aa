"""The reference executor of compiled integer programs: plain numpy, written from docs/arithmetic.md.

:func:`run_reference` runs a w8a8 :class:`~npuemu.runtime.program.Program` step by step without the C++
core and without ``npuemu.ops``: it is the executable specification of what the emulated NPU computes for
a compiled graph, and the oracle that :class:`~npuemu.runtime.executor.Runtime` is tested against, bit for
bit (tests/test_compiled_bitexact.py).

What is written out here, from the arithmetic contract (section numbers of docs/arithmetic.md):

- conv / matmul (2, 3, 4): the exact integer accumulator ``sum (x - x_zp) * w + bias`` (int32, two's
  complement) and the fixed-point output stage: ``quantize_multiplier`` (double, frexp, Q31 mantissa rounded
  half away from zero) and gemmlowp's ``MultiplyByQuantizedMultiplier`` with its two named roundings, the
  fused activation as an integer clamp (relu, clip) or a second multiplier (leaky relu).
- add / mul (7.1): TFLite's integer Add (2^20 pre-shift, three multipliers) and Mul (one multiplier).
- maxpool (7.2), avgpool / global average pool (7.3, with the pre-shift L(count)).
- lut (a 256-entry table indexed by the byte) and concat.

The host-side steps (input normalization, quantize, cast, output dequantization, data movement and the
float32 CPU-fallback ops) are the CPU's part on a real board as well; they run through the same functions
of :mod:`npuemu.runtime.host` that the runtime uses, so that only the NPU arithmetic is checked here.

float16 programs (FP16 conv / matmul / add / mul / pool steps) raise NotImplementedError: the FP16 path is
checked against its stated tolerance elsewhere, not bit for bit against this file.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from . import host
from .program import Program, Step, TensorSpec, dequantize_f32, quantize_f32

__all__ = [
    "run_reference",
    "run_reference_tensors",
    "quantize_multiplier",
    "multiply_by_quantized_multiplier",
    "activation_bounds",
]

INT8_MIN, INT8_MAX = -128, 127


# ------------------------------------------------------------------------------------------------------
# Fixed-point arithmetic (section 3)


def _round_half_away(v: float) -> int:
    """Round a double to the nearest integer, ties away from zero (C's ``std::round``), exactly."""
    a = abs(v)
    f = math.floor(a)
    r = f + 1 if a - f >= 0.5 else f  # a - f is exact: f and a share the binade's exponent or f = 0
    return int(-r if v < 0 else r)


def quantize_multiplier(m: float) -> "tuple[int, int]":
    """The real multiplier ``m`` (a double) as ``(m0, shift)`` with ``m = m0 * 2^(shift - 31)`` and
    ``2^30 <= |m0| < 2^31`` (TFLite's QuantizeMultiplier): ``frexp`` gives ``m = q * 2^e`` with
    ``0.5 <= |q| < 1``; ``m0 = round(q * 2^31)`` half away from zero (q * 2^31 is exact, a power-of-two
    scaling); when that rounds up to 2^31 the mantissa is renormalized to 2^30 and the exponent raised by
    one. An exponent below -62 after that (``|m| < 2^-63`` up to the rounding) gives (0, 0); ``|m| >= 2^30``
    is refused (the left shift of the output stage is at most 30)."""
    m = float(m)
    if not math.isfinite(m):
        raise ValueError(f"quantize_multiplier: the multiplier must be finite, got {m!r}")
    if abs(m) >= 2.0**30:
        raise ValueError(f"quantize_multiplier: the multiplier {m!r} is too large (must be below 2^30)")
    if m == 0.0:
        return 0, 0
    q, e = math.frexp(m)
    m0 = _round_half_away(q * 2.0**31)
    if abs(m0) == 2**31:  # the mantissa rounded up to 1.0: 2^31 * 2^(e-31) = 2^30 * 2^(e+1-31)
        m0 //= 2
        e += 1
    if e < -62:  # right shifts stop at 62
        return 0, 0
    return m0, e


def multiply_by_quantized_multiplier(acc: np.ndarray, m0: Any, shift: Any) -> np.ndarray:
    """gemmlowp's MultiplyByQuantizedMultiplier, vectorized and exact, in int64 lanes.

    ``acc``: integer array with |acc| < 2^31 (int32 accumulators: conv / matmul sums, avgpool's S * 2^L,
    Add's shifted inputs, Mul's products); ``m0`` / ``shift``: scalars or arrays broadcasting against acc
    (per-channel multipliers). With ``left = max(shift, 0)``, ``right = max(-shift, 0)``:

    1. ``q1 = SaturatingRoundingDoublingHighMul(acc * 2^left, m0) = floor((acc * 2^left * m0 + 2^30) / 2^31)``,
       rounding half **up** (toward +infinity, ARM's VQRDMULH). ``acc * 2^left`` is exact (no saturation).
       Computed as ``floor((acc * m0 + 2^(30 - left)) / 2^(31 - left))``: numerator and denominator divided
       by 2^left (left <= 30, so 2^(30 - left) is an integer), which leaves the floor unchanged and keeps
       ``|acc * m0| < 2^31 * 2^31 = 2^62`` inside int64; the floor is an arithmetic shift right.
    2. ``q = RoundingDivideByPOT(q1, right)``: q1 / 2^right rounded half **away from zero**, written in
       sign-magnitude: ``sign(q1) * floor((|q1| + 2^(right - 1)) / 2^right)``. |q1| < 2^61, so the sum stays
       below 2^62; a right shift beyond 62 gives 0 and is clipped to 62 (same result).
    """
    a = np.asarray(acc, dtype=np.int64)
    m0 = np.asarray(m0, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any(np.abs(a) > 2**31):
        raise ValueError("multiply_by_quantized_multiplier: |acc| must stay within the int32 range")
    left = np.maximum(shift, 0)
    right = np.minimum(np.maximum(-shift, 0), 62)
    if np.any(left > 30):
        raise ValueError(f"multiply_by_quantized_multiplier: left shift {int(left.max())} > 30")
    # step 1: SRDHM, round half up
    p = a * m0
    q1 = (p + (np.int64(1) << (30 - left))) >> (31 - left)  # arithmetic shift: the floor
    # step 2: RoundingDivideByPOT, round half away from zero
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), np.int64(0))
    mag = (np.abs(q1) + half) >> right
    return np.where(q1 < 0, -mag, mag)


# ------------------------------------------------------------------------------------------------------
# Fused activations (section 4)


def _normalize_act(act: Any) -> "tuple[str, float, float]":
    """None | 'relu' | 'relu6' | ('clip', a, b) | ('leaky_relu', alpha) (tuples may be JSON lists)."""
    if act is None or act == "none":
        return "none", 0.0, 0.0
    if act == "relu":
        return "relu", 0.0, 0.0
    if act == "relu6":
        return "clip", 0.0, 6.0
    if isinstance(act, (list, tuple)) and len(act) == 3 and act[0] == "clip":
        return "clip", float(act[1]), float(act[2])
    if isinstance(act, (list, tuple)) and len(act) == 2 and act[0] == "leaky_relu":
        return "leaky_relu", float(act[1]), 0.0
    raise ModelError(f"unknown fused activation {act!r}")


def activation_bounds(act: Any, y_scale: float, y_zp: int, dtype: str = "int8") -> "tuple[int, int]":
    """``[lo, hi]``: int8's range shifted by ``-y_zp`` and narrowed by the activation (TFLite's
    CalculateActivationRangeQuantized). relu: ``lo = max(lo, 0)``. clip(a, b): ``round(a / y_scale)``,
    ``round(b / y_scale)`` in double with y_scale the float32 scale, rounded half away from zero, then each
    clamped to the type's range (clip first, saturation second). leaky relu leaves the range alone."""
    qmin, qmax = (-32768, 32767) if dtype == "int16" else (INT8_MIN, INT8_MAX)
    lo, hi = qmin - int(y_zp), qmax - int(y_zp)
    kind, a, b = _normalize_act(act)
    if kind == "relu":
        lo = max(lo, 0)
    elif kind == "clip":
        ys = float(np.float32(y_scale))

        def bound(v: float) -> int:
            r = v / ys
            if not math.isfinite(r):  # an infinite clip bound saturates to the type
                return hi if r > 0 else lo
            return min(max(_round_half_away(r), lo), hi)

        lo, hi = bound(a), bound(b)
    return lo, hi


# ------------------------------------------------------------------------------------------------------
# The output stage of the MAC array (section 3): accumulator -> int8


def _requantize(acc: np.ndarray, axis: int, x_scale: float, w_scale: np.ndarray, y_spec: TensorSpec, act: Any
                ) -> np.ndarray:
    """``y = y_zp + clamp(MBQM(acc, M[c]), lo, hi)`` per output channel c along ``axis``, with
    ``M[c] = double(x_scale) * double(w_scale[c]) / double(y_scale)``; leaky relu uses ``M[c] * alpha``
    where ``acc < 0``."""
    channels = acc.shape[axis]
    ws = np.broadcast_to(np.asarray(w_scale, np.float32).reshape(-1), (channels,))
    xs, ys = float(np.float32(x_scale)), float(np.float32(y_spec.scale))
    kind, alpha, _ = _normalize_act(act)
    shape = [1] * acc.ndim
    shape[axis] = channels

    def multipliers(scale_of_c: Callable[[int], float]) -> "tuple[np.ndarray, np.ndarray]":
        pairs = [quantize_multiplier(scale_of_c(c)) for c in range(channels)]
        m0 = np.array([p[0] for p in pairs], np.int64).reshape(shape)
        sh = np.array([p[1] for p in pairs], np.int64).reshape(shape)
        return m0, sh

    real = [xs * float(ws[c]) / ys for c in range(channels)]
    m0, sh = multipliers(lambda c: real[c])
    q = multiply_by_quantized_multiplier(acc, m0, sh)
    if kind == "leaky_relu":
        n0, nsh = multipliers(lambda c: real[c] * alpha)
        q = np.where(acc < 0, multiply_by_quantized_multiplier(acc, n0, nsh), q)
    # the MAC array writes int8, or int16 where the compiler keeps the accumulator's precision
    lo, hi = activation_bounds(act, y_spec.scale, y_spec.zero_point, y_spec.dtype)
    return (np.minimum(np.maximum(q, lo), hi) + int(y_spec.zero_point)).astype(np.dtype(y_spec.dtype))


def _wrap_int32(v: np.ndarray) -> np.ndarray:
    """The int32 accumulator's two's-complement wrap-around (section 2): exact sums stay as they are
    while ``K * 32,640 + |bias| < 2^31``; beyond, the sum modulo 2^32."""
    return v.astype(np.int64).astype(np.int32).astype(np.int64)


def _exact_int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix product (batched like np.matmul), exact. Computed in float64 through BLAS: every
    operand is an integer with |x - x_zp| <= 255 and |w| <= 128, every product at most 32,640 < 2^15 and
    every partial sum of K terms at most K * 2^15 in magnitude, so all intermediate values (sums or
    fused multiply-adds, in any order) are integers below 2^53 whenever K < 2^38: float64 represents them
    exactly and the result equals the int64 product. Operands are integer-valued arrays of any dtype."""
    k = a.shape[-1]
    if k * 255 * 128 >= 2**53:
        raise ValueError(f"reduction length {k} too long for the exact float64 product")
    return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)


# ------------------------------------------------------------------------------------------------------
# NPU steps


def _check_int8(step: Step, *specs: "TensorSpec | None") -> None:
    for s in specs:
        if s is None:
            continue
        if s.dtype == "float16":
            raise NotImplementedError(
                f"{step.kind} {step.name!r}: float16 NPU steps are not executed by the reference executor "
                "(the FP16 path is tolerance-checked, not bit-exact); build the model with mode='w8a8'"
            )
        if s.dtype not in ("int8", "int16") or not s.quantized:
            raise ModelError(f"{step.kind} {step.name!r}: tensor {s.name!r} is {s.dtype}, expected quantized int8")


def conv_int8(x: np.ndarray, xs: TensorSpec, w: np.ndarray, w_scale: np.ndarray, bias: "np.ndarray | None",
              ys: TensorSpec, attrs: dict) -> np.ndarray:
    """int8 convolution (QLinearConv with the NPU's output stage), NCHW x, OIHW symmetric int8 w.

    acc[n, o, oh, ow] = sum over (ic in o's group, kh, kw) of (x[n, ic, oh*sh + kh*dh - pt, ow*sw + kw*dw - pl]
    - x_zp) * w[o, ic, kh, kw] + bias[o]; positions in the padding hold x_zp and contribute 0. Computed by
    im2col: the taps of every output position gathered into a [K = Cg*kh*kw, OH*OW] matrix per group, then
    one exact integer matrix product per group (groups = 1 dense, groups = C depthwise)."""
    sh, sw = attrs["strides"]
    pt, pl, pb, pr = attrs["pads"]
    dh, dw = attrs["dilations"]
    g = int(attrs["group"])
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if c != cg * g or o % g:
        raise ModelError(f"conv: x has {c} channels, w {w.shape} with group {g}")
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    # x - x_zp, padded with 0 (= the zero point): the values the MAC array multiplies
    # (held in float64, which represents these integers exactly; see _exact_int_matmul)
    xc = np.zeros((n, c, h + pt + pb, wd + pl + pr), np.float64)
    xc[:, :, pt:pt + h, pl:pl + wd] = x.astype(np.int64) - int(xs.zero_point)
    cols = np.empty((n, c, kh, kw, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xc[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
    cols = cols.reshape(n, g, cg * kh * kw, oh * ow)  # K ordered (ic, kh, kw), as OIHW flattens
    wg = w.astype(np.float64).reshape(g, o // g, cg * kh * kw)
    acc = _exact_int_matmul(wg, cols).reshape(n, o, oh, ow)  # [n, g, o/g, P] -> [n, o, oh, ow]
    if bias is not None:
        acc = acc + bias.astype(np.int64).reshape(1, o, 1, 1)
    acc = _wrap_int32(acc)
    return _requantize(acc, 1, xs.scale, w_scale, ys, attrs.get("activation"))


def matmul_int8(a: np.ndarray, as_: TensorSpec, w: np.ndarray, w_scale: np.ndarray, bias: "np.ndarray | None",
                ys: TensorSpec, attrs: dict) -> np.ndarray:
    """int8 MatMul / Gemm with constant B (a 1x1 convolution): a of any rank with last dim K flattened to
    [M, K], acc = (a - a_zp) @ w + bias per column, the same output stage per column."""
    k, ncol = w.shape
    a2 = a.reshape(-1, k).astype(np.int64) - int(as_.zero_point)
    acc = _exact_int_matmul(a2, w.astype(np.int64))
    if bias is not None:
        acc = acc + bias.astype(np.int64).reshape(1, ncol)
    acc = _wrap_int32(acc)
    return _requantize(acc, 1, as_.scale, w_scale, ys, attrs.get("activation")).reshape(ys.shape)


def add_int8(a: np.ndarray, b: np.ndarray, qa: "tuple[float, int]", qb: "tuple[float, int]", ys: TensorSpec,
             act: Any) -> np.ndarray:
    """TFLite's integer Add (section 7.1): with s = 2 max(s_a, s_b),
    ``a' = (a - z_a) * 2^20`` (|a'| <= 255 * 2^20 < 2^28), ``y = z_y + clamp(MBQM(MBQM(a', s_a / s) +
    MBQM(b', s_b / s), s / (2^20 s_y)), lo, hi)``, every multiplier from quantize_multiplier (double);
    a and b broadcast like numpy."""
    sa, za = float(np.float32(qa[0])), int(qa[1])
    sb, zb = float(np.float32(qb[0])), int(qb[1])
    sy = float(np.float32(ys.scale))
    twice_max = 2.0 * max(sa, sb)
    ma = quantize_multiplier(sa / twice_max)
    mb = quantize_multiplier(sb / twice_max)
    my = quantize_multiplier(twice_max / (2.0**20 * sy))
    a1 = (a.astype(np.int64) - za) * (1 << 20)
    b1 = (b.astype(np.int64) - zb) * (1 << 20)
    s = multiply_by_quantized_multiplier(a1, *ma) + multiply_by_quantized_multiplier(b1, *mb)  # |s| < 2^28
    q = multiply_by_quantized_multiplier(s, *my)
    lo, hi = _eltwise_bounds(act, ys)
    return (np.minimum(np.maximum(q, lo), hi) + int(ys.zero_point)).astype(np.int8)


def mul_int8(a: np.ndarray, b: np.ndarray, qa: "tuple[float, int]", qb: "tuple[float, int]", ys: TensorSpec,
             act: Any) -> np.ndarray:
    """TFLite's integer Mul (section 7.1): ``p = (a - z_a) * (b - z_b)`` exact (|p| <= 65,025),
    ``y = z_y + clamp(MBQM(p, s_a s_b / s_y), lo, hi)`` with one multiplier (double)."""
    sa, za = float(np.float32(qa[0])), int(qa[1])
    sb, zb = float(np.float32(qb[0])), int(qb[1])
    sy = float(np.float32(ys.scale))
    m = quantize_multiplier(sa * sb / sy)
    p = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb)
    q = multiply_by_quantized_multiplier(p, *m)
    lo, hi = _eltwise_bounds(act, ys)
    return (np.minimum(np.maximum(q, lo), hi) + int(ys.zero_point)).astype(np.int8)


def _eltwise_bounds(act: Any, ys: TensorSpec) -> "tuple[int, int]":
    if _normalize_act(act)[0] == "leaky_relu":
        raise ModelError("leaky relu is not fused into Add / Mul (docs/arithmetic.md section 7.1)")
    return activation_bounds(act, ys.scale, ys.zero_point)


def _pool_geometry(x_shape, attrs: dict) -> "tuple[list[int], list[int], list[int], list[int], int, int]":
    h, w = x_shape[2], x_shape[3]
    if attrs.get("global"):
        return [h, w], [1, 1], [0, 0, 0, 0], [1, 1], 1, 1
    ks = [int(v) for v in attrs["kernel_shape"]]
    st = [int(v) for v in attrs["strides"]]
    pads = [int(v) for v in attrs["pads"]]
    dil = [int(v) for v in attrs.get("dilations", [1, 1])]
    # floor mode (the compiler keeps ceil_mode pools on the CPU)
    oh = (h + pads[0] + pads[2] - dil[0] * (ks[0] - 1) - 1) // st[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (ks[1] - 1) - 1) // st[1] + 1
    return ks, st, pads, dil, oh, ow


def _window_taps(xp: np.ndarray, ks, st, dil, oh: int, ow: int):
    """The (kh, kw) taps of every window over a padded NCHW array: one strided [N, C, OH, OW] view each."""
    for i in range(ks[0]):
        for j in range(ks[1]):
            r, c = i * dil[0], j * dil[1]
            yield xp[:, :, r: r + st[0] * (oh - 1) + 1: st[0], c: c + st[1] * (ow - 1) + 1: st[1]]


def maxpool(x: np.ndarray, attrs: dict) -> np.ndarray:
    """MaxPool (section 7.2): the maximum of the window's input elements. The padding is filled with
    the dtype's lowest value (-128): it can tie the maximum but never exceed it, so padding never wins,
    and a window holding no input element gives the lowest value, as the contract says."""
    if x.dtype != np.int8:
        raise NotImplementedError(f"maxpool of {x.dtype}: the reference executor runs int8 programs only")
    ks, st, pads, dil, oh, ow = _pool_geometry(x.shape, attrs)
    n, c, h, w = x.shape
    xp = np.full((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), INT8_MIN, np.int8)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    y = np.full((n, c, oh, ow), INT8_MIN, np.int8)
    for tap in _window_taps(xp, ks, st, dil, oh, ow):
        np.maximum(y, tap, out=y)
    return y


def _pool_preshift(count: int) -> int:
    """L(count): the largest L with 255 * count * 2^L < 2^31 (count 1: 23, 4: 21, 9: 19, 49: 17)."""
    L = 0
    while 255 * count * 2 ** (L + 1) < 2**31:
        L += 1
    return L


def avgpool_int8(x: np.ndarray, xs: TensorSpec, ys: TensorSpec, attrs: dict) -> np.ndarray:
    """QLinearAveragePool / QLinearGlobalAveragePool, rounding='fixed_point' (section 7.3):
    S = exact sum of (x - z_x) over the window's input elements, count = that number of elements
    (count_include_pad: kh * kw), and per distinct count
    ``y = z_y + clamp(MBQM(S * 2^L, m0 * 2^(shift - L)), -128 - z_y, 127 - z_y)`` with
    ``(m0, shift) = quantize_multiplier(x_scale / (y_scale * count))`` (double) and L = L(count)."""
    ks, st, pads, dil, oh, ow = _pool_geometry(x.shape, attrs)
    if dil != [1, 1]:
        raise ModelError("average pooling has no dilations")
    n, c, h, w = x.shape
    hp, wp = h + pads[0] + pads[2], w + pads[1] + pads[3]
    xp = np.zeros((n, c, hp, wp), np.int64)  # (x - z_x), padding 0: contributes nothing to S
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x.astype(np.int64) - int(xs.zero_point)
    S = np.zeros((n, c, oh, ow), np.int64)
    for tap in _window_taps(xp, ks, st, dil, oh, ow):
        S += tap
    if attrs.get("count_include_pad") and not attrs.get("global"):
        count = np.full((oh, ow), ks[0] * ks[1], np.int64)
    else:  # the window's input elements: sum a plane of ones padded with zeros
        inside = np.zeros((1, 1, hp, wp), np.int64)
        inside[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = 1
        count = np.zeros((1, 1, oh, ow), np.int64)
        for tap in _window_taps(inside, ks, st, dil, oh, ow):
            count += tap
        count = count[0, 0]
    if count.min() < 1:
        raise ModelError("average pooling window without input elements")
    if count.max() * 255 >= 2**31:
        raise ModelError(f"average pooling window of {int(count.max())} elements is too large")
    sx, sy = float(np.float32(xs.scale)), float(np.float32(ys.scale))
    m0 = np.empty((oh, ow), np.int64)
    shift = np.empty((oh, ow), np.int64)
    pre = np.empty((oh, ow), np.int64)
    for cnt in np.unique(count):
        cnt = int(cnt)
        mm, sh = quantize_multiplier(sx / (sy * cnt))
        L = _pool_preshift(cnt)
        sel = count == cnt
        m0[sel], shift[sel], pre[sel] = mm, sh - L, L
    q = multiply_by_quantized_multiplier(S << pre, m0, shift)  # |S * 2^L| < 2^31 by the choice of L
    lo, hi = INT8_MIN - int(ys.zero_point), INT8_MAX - int(ys.zero_point)
    return (np.minimum(np.maximum(q, lo), hi) + int(ys.zero_point)).astype(np.int8)


# ------------------------------------------------------------------------------------------------------
# The executor


class _Exec:
    def __init__(self, prog: Program, inputs: "list[np.ndarray]"):
        if len(inputs) != len(prog.inputs):
            raise ModelError(f"the model has {len(prog.inputs)} inputs, got {len(inputs)}")
        self.prog = prog
        self.env: "dict[str, np.ndarray]" = dict(zip(prog.inputs, inputs))

    def val(self, name: str) -> np.ndarray:
        if name in self.prog.consts:
            return self.prog.consts[name]
        try:
            return self.env[name]
        except KeyError:
            raise ModelError(f"tensor {name!r} is read before it is produced") from None

    def spec(self, name: str) -> TensorSpec:
        return self.prog.tensors[name]

    def put(self, name: str, v: np.ndarray) -> None:
        spec = self.prog.tensors[name]
        if tuple(v.shape) != tuple(spec.shape) or v.dtype != np.dtype(spec.dtype):
            raise ModelError(f"tensor {name!r}: produced {v.dtype}{tuple(v.shape)}, the program says "
                             f"{spec.dtype}{tuple(spec.shape)}")
        self.env[name] = v

    def empty(self, name: str) -> np.ndarray:
        spec = self.prog.tensors[name]
        return np.empty(spec.shape, spec.dtype)

    # one method per step kind ---------------------------------------------------------------------------
    def step_input(self, s: Step) -> None:
        y = self.empty(s.outputs[0])
        host.store(host.normalize_input(self.val(s.inputs[0]), s), self.spec(s.outputs[0]), y)
        self.put(s.outputs[0], y)

    def step_output(self, s: Step) -> None:
        a = self.val(s.inputs[0])
        spec = self.prog.tensors.get(s.inputs[0])
        if spec is not None and spec.quantized:
            self.env[s.outputs[0]] = dequantize_f32(a, spec.scale, spec.zero_point)
        else:
            self.env[s.outputs[0]] = a.astype(np.float32 if a.dtype.kind == "f" else a.dtype, copy=True)

    def step_conv(self, s: Step) -> None:
        xs, ys = self.spec(s.inputs[0]), self.spec(s.outputs[0])
        _check_int8(s, xs, ys)
        w = self.val(s.inputs[1])
        if w.dtype != np.int8 or w.ndim != 4:
            raise ModelError(f"conv {s.name!r}: weights must be int8 OIHW, got {w.dtype}{w.shape}")
        bias = self.val(s.inputs[3]) if s.inputs[3] else None
        self.put(s.outputs[0], conv_int8(self.val(s.inputs[0]), xs, w, self.val(s.inputs[2]), bias, ys, s.attrs))

    def step_matmul(self, s: Step) -> None:
        xs, ys = self.spec(s.inputs[0]), self.spec(s.outputs[0])
        _check_int8(s, xs, ys)
        w = self.val(s.inputs[1])
        if w.dtype != np.int8 or w.ndim != 2:
            raise ModelError(f"matmul {s.name!r}: weights must be int8 [K, N], got {w.dtype}{w.shape}")
        bias = self.val(s.inputs[3]) if s.inputs[3] else None
        self.put(s.outputs[0], matmul_int8(self.val(s.inputs[0]), xs, w, self.val(s.inputs[2]), bias, ys, s.attrs))

    def _eltwise(self, s: Step, fn) -> None:
        ys = self.spec(s.outputs[0])
        _check_int8(s, ys, *(self.prog.tensors.get(t) for t in s.inputs))
        a, b = (self.val(t) for t in s.inputs)
        qa, qb = s.attrs["qparams"]
        y = fn(a, b, qa, qb, ys, s.attrs.get("activation"))
        self.put(s.outputs[0], y.reshape(ys.shape))

    def step_add(self, s: Step) -> None:
        self._eltwise(s, add_int8)

    def step_mul(self, s: Step) -> None:
        self._eltwise(s, mul_int8)

    def step_maxpool(self, s: Step) -> None:
        _check_int8(s, self.spec(s.inputs[0]))
        self.put(s.outputs[0], maxpool(self.val(s.inputs[0]), s.attrs))

    def step_avgpool(self, s: Step) -> None:
        xs, ys = self.spec(s.inputs[0]), self.spec(s.outputs[0])
        _check_int8(s, xs, ys)
        self.put(s.outputs[0], avgpool_int8(self.val(s.inputs[0]), xs, ys, s.attrs))

    def step_lut(self, s: Step) -> None:
        x, table = self.val(s.inputs[0]), self.val(s.inputs[1])
        n = 256 if x.itemsize == 1 else 65536
        if x.itemsize not in (1, 2) or table.shape != (n,):
            raise ModelError(f"lut {s.name!r}: needs an 8/16-bit x and a {n}-entry table, got {x.dtype} / {table.shape}")
        # the value's bits index the table (int8 -1 -> entry 255; int16 -1 -> entry 65535)
        self.put(s.outputs[0], table[x.view(np.uint8 if x.itemsize == 1 else np.uint16)])

    def step_concat(self, s: Step) -> None:
        self.put(s.outputs[0], np.concatenate([self.val(t) for t in s.inputs], axis=int(s.attrs["axis"])))

    def step_move(self, s: Step) -> None:
        at = s.attrs
        if at.get("alias"):  # Reshape / Flatten / Squeeze / ...: the same values in the output's shape
            self.put(s.outputs[0], self.val(s.inputs[0]).reshape(self.spec(s.outputs[0]).shape))
            return
        if at["op_type"] == "ResizeNearest":
            y = self.empty(s.outputs[0])
            host.resize_nearest(self.val(s.inputs[0]), self.val(s.inputs[1]), self.val(s.inputs[2]), y)
            self.put(s.outputs[0], y)
            return
        node = host.step_node(s, self.prog.consts)
        res = host.run_move(node, [self.val(t) if t else None for t in s.inputs])
        for t, r in zip(s.outputs, res):
            if t:
                y = self.empty(t)
                if r.shape != y.shape:
                    raise ModelError(f"{s.op_type} {s.name!r}: produced {r.shape}, expected {y.shape}")
                np.copyto(y, r)
                self.put(t, y)

    def step_eval(self, s: Step) -> None:
        node = host.step_node(s, self.prog.consts)
        ins = []
        for t in s.inputs:
            v = self.val(t) if t else None
            ins.append(None if v is None else host.const_f32(host.to_f32(v, self.prog.tensors.get(t))))
        res = host.run_eval(s, node, ins, self.prog)
        for t, r in zip(s.outputs, res):
            if t:
                y = self.empty(t)
                host.store(r, self.spec(t), y)
                self.put(t, y)

    def step_quantize(self, s: Step) -> None:
        spec = self.spec(s.outputs[0])
        x = self.val(s.inputs[0])
        self.put(s.outputs[0], quantize_f32(x.astype(np.float32, copy=False), spec.scale, spec.zero_point,
                                            dtype=np.dtype(spec.dtype)).reshape(spec.shape))

    def step_cast(self, s: Step) -> None:
        x = self.val(s.inputs[0])
        xs = self.prog.tensors.get(s.inputs[0])
        y = self.empty(s.outputs[0])
        if xs is not None and xs.quantized:
            dequantize_f32(x, xs.scale, xs.zero_point, out=y)
        else:
            np.copyto(y, x, casting="unsafe")
        self.put(s.outputs[0], y)

    def run(self) -> None:
        for s in self.prog.steps:
            fn = getattr(self, "step_" + s.kind, None)
            if fn is None:
                raise ModelError(f"unknown step kind {s.kind!r}")
            try:
                fn(s)
            except (NotImplementedError, ModelError):
                raise
            except (ValueError, TypeError, KeyError, IndexError) as e:
                raise ModelError(f"reference executor: step {s.kind} {s.name!r} ({s.op_type}) failed: {e}") from e


def run_reference_tensors(prog: Program, inputs: "list[np.ndarray]") -> "dict[str, np.ndarray]":
    """Runs ``prog`` and returns every tensor it produced (stored forms: int8, float16, float32, ...)
    and the user inputs, by name."""
    ex = _Exec(prog, inputs)
    ex.run()
    return ex.env


def run_reference(prog: Program, inputs: "list[np.ndarray]") -> "list[np.ndarray]":
    """Runs a compiled w8a8 program with plain numpy (one array per program input, NCHW as
    :meth:`Runtime.run <npuemu.runtime.executor.Runtime.run>` takes them); returns the float32 outputs in
    program order. float16 NPU steps raise NotImplementedError."""
    env = run_reference_tensors(prog, inputs)
    return [env[o] for o in prog.outputs]
