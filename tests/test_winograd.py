"""Winograd convolution kernels (3x3, stride 1, dilation 1).

INT8 F(2x2,3x3) must be bit-identical to the reference kernel and the direct kernels for every dtype
combination, zero point, output stage and core mask, and must be rejected where it could not be exact.
FP16 F(2x2,3x3) / F(4x4,3x3) must stay within the tolerance of docs/arithmetic.md section 6 against an
exact float64 convolution, and be bit-identical across ISAs and core masks."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import available_isas, available_kernels
from conv_cases import conv_fp64, fp16_data, int_data, winograd_fp16_bound, winograd_magnitude
from npuemu import ops

REF = "conv2d_any_reference_scalar"
INT8_WINO = [k for k in available_kernels("int8") if "winograd" in k]
FP16_WINO = [k for k in available_kernels("fp16") if "winograd" in k]
LIM = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7)}


def same_bits(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def tile_of(kernel: str) -> int:
    return 4 if "winograd43" in kernel else 2


# (n, c, h, w, oc, pads (t, l, b, r), group): odd sizes leave partial tiles at the bottom / right,
# asymmetric pads, channel counts off the 16-block, more than one channel block, groups, depthwise.
SHAPES = [
    (1, 3, 7, 9, 5, (1, 1, 1, 1), 1),
    (2, 17, 9, 11, 33, (0, 0, 0, 0), 1),
    (1, 20, 11, 6, 18, (2, 0, 1, 2), 1),
    (1, 33, 5, 13, 47, (1, 2, 0, 1), 1),
    (1, 64, 14, 14, 70, (1, 1, 1, 1), 1),
    (1, 12, 10, 7, 18, (1, 0, 2, 1), 3),
    (1, 8, 6, 5, 16, (1, 1, 1, 1), 8),
    (1, 5, 3, 3, 6, (0, 0, 0, 0), 1),  # one output pixel
    (1, 4, 1, 1, 3, (2, 2, 2, 2), 1),  # everything is padding but one pixel
    (1, 130, 9, 8, 20, (2, 2, 0, 0), 1),
]


def sid(s) -> str:
    n, c, h, w, oc, p, g = s
    return f"n{n}c{c}h{h}w{w}-oc{oc}-p{''.join(map(str, p))}-g{g}"


def case(s):
    n, c, h, w, oc, p, g = s
    return (n, c, h, w), (oc, c // g, 3, 3), dict(pads=p, group=g)


def full_case(s):
    """The conv_cases tuple of a Winograd shape (for conv_fp64)."""
    n, c, h, w, oc, p, g = s
    return (n, c, h, w, oc, (3, 3), (1, 1), p, (1, 1), g)


def check_int(fn, kernel):
    """Winograd kernel vs the reference and vs the direct kernels (algo='direct'), bit for bit."""
    got = fn(dict(kernel=kernel))
    assert same_bits(got, fn(dict(kernel=REF))), f"{kernel} != reference"
    assert same_bits(got, fn(dict(algo="direct"))), f"{kernel} != direct"


# ---------------------------------------------------------------------------------------------------
# INT8: bit-exact


@pytest.mark.parametrize("s", SHAPES, ids=sid)
@pytest.mark.parametrize("kernel", INT8_WINO)
@pytest.mark.parametrize(
    "xdt,wdt,x_zp,w_zp",
    [("int8", "int8", -128, 0), ("int8", "int8", 127, 0), ("uint8", "int8", 0, 0), ("uint8", "int8", 255, 0),
     ("int8", "int4", 5, 0), ("int4", "int4", -8, 0), ("int4", "int8", 7, 0), ("uint8", "uint8", 37, "per_oc"),
     ("int8", "int8", 3, -128)],
)
def test_int8_conv_integer_bit_exact(rng, s, kernel, xdt, wdt, x_zp, w_zp):
    xs, ws, kw = case(s)
    x = int_data(rng, xs, *LIM[xdt], np.uint8 if xdt == "uint8" else np.int8, extremes=0.3)
    w = int_data(rng, ws, *LIM[wdt], np.uint8 if wdt == "uint8" else np.int8, extremes=0.3)
    if w_zp == "per_oc":
        w_zp = rng.integers(0, 256, ws[0]).astype(np.uint8)
    dts = dict(x_dtype=xdt if xdt == "int4" else None, w_dtype=wdt if wdt == "int4" else None)
    check_int(lambda sel: ops.conv_integer(x, w, x_zp, w_zp, **dts, **kw, **sel), kernel)


@pytest.mark.parametrize("s", SHAPES, ids=sid)
@pytest.mark.parametrize("kernel", INT8_WINO)
@pytest.mark.parametrize("rounding", ["fixed_point", "float"])
@pytest.mark.parametrize(
    "activation,ydt", [(None, "int8"), ("relu", "uint8"), (("clip", -0.5, 3.0), "int8"), (("leaky_relu", 0.1), "int8"),
                       (None, "int4"), ("relu6", "int16")]
)
def test_int8_qlinear_bit_exact(rng, s, kernel, rounding, activation, ydt):
    xs, ws, kw = case(s)
    x = int_data(rng, xs, -128, 127, np.int8, extremes=0.3)
    w = int_data(rng, ws, -128, 127, np.int8, extremes=0.3)
    oc = ws[0]
    bias = rng.integers(-(2**31), 2**31, oc, dtype=np.int64).astype(np.int32)  # wraps with the zero-point fold
    bias[::3] = rng.integers(-20000, 20000, bias[::3].size)
    w_scale = rng.uniform(0.002, 0.02, oc).astype(np.float32)
    y_zp = {"int8": np.int8(-5), "uint8": np.uint8(7), "int4": np.int8(1), "int16": np.int16(-300)}[ydt]
    y_scale = {"int16": 0.002}.get(ydt, 0.35)
    check_int(lambda sel: ops.qlinear_conv(x, 0.04, -128, w, w_scale, 0, y_scale, y_zp, bias, activation=activation,
                                           rounding=rounding, y_dtype=ydt if ydt == "int4" else None, **kw, **sel),
              kernel)


@pytest.mark.parametrize("kernel", INT8_WINO)
@pytest.mark.parametrize("xv,wv", [(-128, -128), (127, -128), (-128, 127), (127, 127)])
def test_int8_constant_extremes(kernel, xv, wv):
    """Every product at the extreme of its range, and a zero point that maximises |x - x_zp|."""
    x = np.full((1, 40, 9, 7), xv, np.int8)
    w = np.full((20, 40, 3, 3), wv, np.int8)
    for x_zp in (-128, 127, 0):
        check_int(lambda sel: ops.conv_integer(x, w, x_zp, pads=(1, 0, 2, 1), **sel), kernel)


# (x dtype, x value, w dtype, w value, w zero point, the largest exact channel count per group):
# 9 * C * max|x| * max|w - w_zp| < 2^29 (docs/arithmetic.md section 6).
LIMITS = [
    ("int8", -128, "int8", -128, 0, 3640),
    ("uint8", 255, "int8", -128, 0, 1827),
    ("int8", -128, "int4", -8, 0, 58254),
    ("uint8", 255, "uint8", 0, 255, 917),
]


@pytest.mark.parametrize("xdt,xv,wdt,wv,wzp,limit", LIMITS)
def test_int8_exactness_limit(xdt, xv, wdt, wv, wzp, limit):
    """At the channel limit the worst-case sum is still exact; one channel more is rejected."""
    max_x = max(-LIM[xdt][0], LIM[xdt][1])
    max_w = 255 if wzp else max(-LIM[wdt][0], LIM[wdt][1])
    assert 9 * limit * max_x * max_w < 2**29 <= 9 * (limit + 1) * max_x * max_w  # the arithmetic of the limit
    dt = np.uint8 if xdt == "uint8" else np.int8
    wd = np.uint8 if wdt == "uint8" else np.int8
    kw = dict(w_dtype="int4") if wdt == "int4" else {}
    x = np.full((1, limit, 3, 4), xv, dt)  # worst case: every product max|x| * max|w|, same sign
    w = np.full((2, limit, 3, 3), wv, wd)
    for kernel in INT8_WINO:
        got = ops.conv_integer(x, w, 0, wzp, kernel=kernel, **kw)
        ref = ops.conv_integer(x, w, 0, wzp, kernel=REF, **kw)
        assert same_bits(got, ref), kernel
        assert abs(int(ref[0, 0, 0, 0])) == 9 * limit * max_x * max_w
    x1 = np.full((1, limit + 1, 3, 4), xv, dt)
    w1 = np.full((2, limit + 1, 3, 3), wv, wd)
    for kernel in INT8_WINO:
        with pytest.raises(ValueError, match=f"at most {limit} input channels per group"):
            ops.conv_integer(x1, w1, 0, wzp, kernel=kernel, **kw)
    with pytest.raises(ValueError, match=f"at most {limit} input channels"):
        ops.conv_integer(x1, w1, 0, wzp, algo="winograd", **kw)
    # algo='auto' moves on to an exact kernel
    assert same_bits(ops.conv_integer(x1, w1, 0, wzp, **kw), ops.conv_integer(x1, w1, 0, wzp, kernel=REF, **kw))


# ---------------------------------------------------------------------------------------------------
# FP16: stated tolerance against float64


@pytest.mark.parametrize("s", SHAPES, ids=sid)
@pytest.mark.parametrize("kernel", FP16_WINO)
@pytest.mark.parametrize("activation", [None, "relu", ("clip", -1.0, 2.5)])
def test_fp16_within_stated_bound(rng, s, kernel, activation):
    xs, ws, kw = case(s)
    x = fp16_data(rng, xs)
    w = fp16_data(rng, ws)
    b = fp16_data(rng, (ws[0],))
    y = ops.conv(x, w, b, kernel=kernel, activation=activation, **kw)
    exact, bound = winograd_fp16_bound(x, w, b, full_case(s), tile_of(kernel), y)
    if activation == "relu":
        exact = np.maximum(exact, 0)
    elif activation is not None:
        exact = np.clip(exact, -1.0, 2.5)  # both are 1-Lipschitz: the bound carries over
    err = np.abs(y.astype(np.float64) - exact)
    assert np.all(err <= bound), f"{kernel}: max err/bound {np.max(err / bound):.3f}"


@pytest.mark.parametrize("kernel", FP16_WINO)
def test_fp16_bound_holds_with_wide_dynamic_range(rng, kernel):
    """Values spanning 2^-12 .. 2^8 (cancellation inside tiles) and channel sums of 256 terms."""
    s = (1, 256, 10, 9, 24, (1, 1, 1, 1), 1)
    xs, ws, kw = case(s)
    x = (rng.standard_normal(xs) * 2.0 ** rng.integers(-12, 7, xs)).astype(np.float16)
    w = (rng.standard_normal(ws) * 2.0 ** rng.integers(-6, 3, ws)).astype(np.float16)
    y = ops.conv(x, w, kernel=kernel, **kw)
    exact, bound = winograd_fp16_bound(x, w, None, full_case(s), tile_of(kernel), y)
    err = np.abs(y.astype(np.float64) - exact)
    assert np.all(err <= bound), f"{kernel}: max err/bound {np.max(err / bound):.3f}"


def test_fp16_magnitude_is_an_upper_bound_of_the_plain_sum(rng):
    """Sanity of the oracle: S >= sum |x w| + |b| for both tile sizes (the transforms only add terms)."""
    s = (1, 7, 9, 10, 5, (1, 2, 1, 0), 1)
    xs, ws, _ = case(s)
    x, w, b = fp16_data(rng, xs), fp16_data(rng, ws), fp16_data(rng, (ws[0],))
    _, mag = conv_fp64(x, w, b, full_case(s))
    for m in (2, 4):
        assert np.all(winograd_magnitude(x, w, b, full_case(s), m) >= mag * (1 - 1e-12))


@pytest.mark.parametrize("algo", ["winograd23", "winograd43"])
def test_fp16_every_isa_bit_identical(rng, algo):
    """The scalar and SIMD Winograd kernels run the same operations in the same order."""
    kernels = [k for k in FP16_WINO if algo in k]
    s = SHAPES[3]
    xs, ws, kw = case(s)
    x, w, b = fp16_data(rng, xs), fp16_data(rng, ws), fp16_data(rng, (ws[0],))
    ys = [ops.conv(x, w, b, kernel=k, activation=("leaky_relu", 0.3), **kw) for k in kernels]
    for k, y in zip(kernels[1:], ys[1:]):
        assert same_bits(y, ys[0]), f"{k} != {kernels[0]}"


# ---------------------------------------------------------------------------------------------------
# Core masks, selection, errors


@pytest.mark.parametrize("kernel", INT8_WINO + FP16_WINO)
@pytest.mark.parametrize("mask", [0, 1, 2, 4, 3, 5, 6, 7, 0xFFFF])
def test_every_core_mask_is_bit_identical(rng, kernel, mask):
    s = (2, 40, 23, 19, 70, (1, 1, 1, 1), 2)
    xs, ws, kw = case(s)
    if "int8" in kernel:
        x = int_data(rng, xs, -128, 127, np.int8)
        w = int_data(rng, ws, -128, 127, np.int8)
        op = ops.QLinearConv(xs, "int8", 0.05, 1, w, 0.01, 0, 0.3, np.int8(2), kernel=kernel, **kw)
    else:
        x = fp16_data(rng, xs)
        w = fp16_data(rng, ws)
        op = ops.Conv(xs, w, kernel=kernel, **kw)
    y1 = op(x, core_mask=1)
    assert same_bits(op(x, core_mask=mask), y1)
    assert same_bits(op(x, core_mask=mask), y1)  # repeated runs identical


@pytest.mark.parametrize("family", ["int8", "fp16"])
@pytest.mark.parametrize(
    "k,attrs,msg",
    [(5, {}, "3x3 kernel, got 5x5"), (3, dict(strides=2), "stride 1, got 2x2"),
     (3, dict(dilations=2, pads=2), "dilation 1, got 2x2"), (3, dict(strides=(1, 2)), "stride 1, got 1x2")],
)
def test_algo_winograd_rejects_unsupported_shapes(rng, family, k, attrs, msg):
    xs, ws = (1, 8, 12, 12), (8, 8, k, k)
    if family == "int8":
        x, w = int_data(rng, xs, -128, 127, np.int8), int_data(rng, ws, -128, 127, np.int8)
        call = lambda **a: ops.conv_integer(x, w, 0, **attrs, **a)  # noqa: E731
    else:
        x, w = fp16_data(rng, xs), fp16_data(rng, ws)
        call = lambda **a: ops.conv(x, w, **attrs, **a)  # noqa: E731
    with pytest.raises(ValueError, match=f"algo='winograd'.*{msg}"):
        call(algo="winograd")
    for kernel in (INT8_WINO if family == "int8" else FP16_WINO):
        with pytest.raises(ValueError, match=f"does not support.*{msg}"):
            call(kernel=kernel)
    call(algo="auto")  # a direct kernel takes it


def test_algo_selects_the_family(rng):
    x = int_data(rng, (1, 16, 8, 8), -128, 127, np.int8)
    w = int_data(rng, (16, 16, 3, 3), -128, 127, np.int8)
    assert "winograd" in ops.ConvInteger(x.shape, "int8", w, pads=1, algo="winograd").kernel_name
    assert "direct" in ops.ConvInteger(x.shape, "int8", w, pads=1, algo="direct").kernel_name
    xf, wf = fp16_data(rng, (1, 16, 8, 8)), fp16_data(rng, (16, 16, 3, 3))
    assert "winograd" in ops.Conv(xf.shape, wf, pads=1, algo="winograd").kernel_name
    assert "direct" in ops.Conv(xf.shape, wf, pads=1, algo="direct").kernel_name


@pytest.mark.parametrize("isa", available_isas())
def test_isa_cap_selects_that_tier(rng, isa_cap, isa):
    """Under each ISA cap algo='winograd' runs that tier's kernel, with the same results."""
    s = SHAPES[2]
    xs, ws, kw = case(s)
    xi, wi = int_data(rng, xs, -128, 127, np.int8), int_data(rng, ws, -128, 127, np.int8)
    xf, wf = fp16_data(rng, xs), fp16_data(rng, ws)
    ref_i = ops.conv_integer(xi, wi, 3, kernel=REF, **kw)
    ref_f = ops.conv(xf, wf, kernel=f"conv2d_fp16_winograd43_{available_isas()[0]}", **kw)
    isa_cap(isa)
    op = ops.ConvInteger(xs, "int8", wi, 3, algo="winograd", **kw)
    assert op.kernel_name == f"conv2d_int8_winograd23_{isa}"
    assert same_bits(op(xi), ref_i)
    opf = ops.Conv(xs, wf, kernel=f"conv2d_fp16_winograd43_{isa}", **kw)
    assert same_bits(opf(xf), ref_f)
    assert ops.Conv(xs, wf, algo="winograd", **kw).kernel_name.endswith("_" + isa)


@pytest.mark.parametrize("kernel", INT8_WINO + FP16_WINO)
def test_steady_state_runs_allocate_nothing(rng, kernel):
    from npuemu import _core

    s = (2, 40, 23, 19, 70, (1, 1, 1, 1), 2)
    xs, ws, kw = case(s)
    if "int8" in kernel:
        x, w = int_data(rng, xs, -128, 127, np.int8), int_data(rng, ws, -128, 127, np.int8)
        op = ops.QLinearConv(xs, "int8", 0.05, 1, w, 0.01, 0, 0.3, np.int8(2), kernel=kernel, **kw)
    else:
        x, w = fp16_data(rng, xs), fp16_data(rng, ws)
        op = ops.Conv(xs, w, kernel=kernel, **kw)
    y = op(x)
    for mask in (0, 7, 0, 7):  # warm every core's workspace
        op(x, out=y, core_mask=mask)
    before = _core.alloc_stats()["count"]
    for mask in (0, 7, 3):
        op(x, out=y, core_mask=mask)
    assert _core.alloc_stats()["count"] == before
