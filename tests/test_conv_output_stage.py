"""Output stages and accumulators at their extremes, for every kernel: int32 accumulators near +-2^31 and
wrapping, left shifts whose acc * 2^left leaves int32, right shifts up to 31 and beyond, negative and
large leaky-relu slopes, a clip range outside the output dtype, and int16 pair sums at their largest.
Oracles: the reference kernel (bit for bit) and written-out rules (gemmlowp's fixed point literally in
Python integers, numpy float32 for rounding='float', numpy int64 for int16 sums). Also: the ISA cap
selects the AVX2 kernels."""

from __future__ import annotations

import numpy as np
import pytest

import npuemu
from quant_oracles import quantize_multiplier
from conftest import available_isas, available_kernels, call_or_skip
from npuemu import ops
from quant_oracles import mbqm

REF = "conv2d_any_reference_scalar"

# Per output channel: (weight, bias, multiplier). acc = wrap32(x * weight + bias), x in [-128, 127].
CHANNELS = [
    (1, 0, 1.0),  # m0 = 2^30, shift 1
    (127, 5, 0.5),
    (-127, -3, 0.75),
    (3, 100, 2.0**-31 * 0.75),  # right shift 31
    (127, 2**20, 2.0**-30 * 0.6),  # right shift 30
    (127, -(2**24), 2.0**-13 * 0.61),
    (127, 2**31 - 100, 2.0**-20 * 0.9),  # wraps to near -2^31 for x * w > 99
    (-127, -(2**31) + 50, 2.0**-24 * 0.7),  # wraps to near +2^31
    (1, 2**30 - 64, 1.5),  # left 1: acc * 2 leaves int32 around x = 64
    (1, -(2**30) + 64, 1.5),
    (1, 2**26 - 64, 2.0**5 * 0.7),  # left 5, boundary 2^26
    (1, -(2**26) + 64, 2.0**5 * 0.7),
    (1, 2**12 - 64, 2.0**19 * 0.55),  # left 19, boundary 2^12
    (1, -(2**12) + 64, 2.0**19 * 0.55),
    (1, 0, 2.0**28 * 0.99),  # left 28, boundary 8 (x 3.0 for leaky: left 30, the largest)
    (1, 2**15, 2.0**-33),  # below 2^-31: m0 = 0 for int32 accumulators
    (127, 2**31 - 1, 2.0**-40),
    (1, 17, 2.0**3 * 0.8),  # left 3, in range of int16
    (-1, -20, 2.0**10 * 0.77),
    (127, 1000, 2.0**-7),  # exact ties
    (-127, -1000, 2.0**-7),
]


def wrap32(v):
    return ((np.asarray(v, np.int64) + 2**31) % 2**32) - 2**31


def channel_data():
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 16, 16)
    w = np.array([c[0] for c in CHANNELS], np.int8).reshape(-1, 1, 1, 1)
    bias = np.array([c[1] for c in CHANNELS], np.int64).astype(np.int32)
    m = np.array([c[2] for c in CHANNELS], np.float32)
    acc = wrap32(x.reshape(1, -1).astype(np.int64) * w.reshape(-1, 1) + bias.reshape(-1, 1).astype(np.int64))
    return x, w, bias, m, acc  # acc: [channel, pixel]


def qconv(kernel, x, w, m, bias, y_zp, ydt, rounding, activation=None):
    return call_or_skip(lambda k: ops.qlinear_conv(x, 1.0, 0, w, m, 0, 1.0, y_zp, bias, y_dtype=ydt,
                                                   rounding=rounding, activation=activation, kernel=k), kernel)


def fixed_oracle(acc, m, lo, hi, zp, alpha=None):
    out = np.empty(acc.shape, np.int64)
    for c in range(acc.shape[0]):
        mp = float(m[c])  # x_scale = y_scale = 1: M = double(w_scale)
        qp = quantize_multiplier(mp)
        qn = quantize_multiplier(mp * float(np.float32(alpha))) if alpha is not None else qp
        for p in range(acc.shape[1]):
            a = int(acc[c, p])
            q = mbqm(a, *(qn if a < 0 else qp))
            out[c, p] = min(max(q, lo), hi) + zp
    return out


def float_oracle(acc, m, lo, hi, zp, alpha=None):
    s = m.astype(np.float32).reshape(-1, 1)
    sn = (s * np.float32(alpha)).astype(np.float32) if alpha is not None else s
    v = acc.astype(np.float32) * np.where(acc < 0, sn, s)  # float32 product, as onnxruntime
    v = np.minimum(np.maximum(v, np.float32(lo)), np.float32(hi))
    return np.rint(v).astype(np.int64) + zp  # round half to even


@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize("rounding", ["fixed_point", "float"])
@pytest.mark.parametrize("ydt,y_zp", [("int16", 0), ("int16", -300), ("int8", 5), ("uint8", 0)])
@pytest.mark.parametrize("alpha", [None, 0.1, -0.5, 3.0])
def test_int32_output_stage_extremes(kernel, rounding, ydt, y_zp, alpha):
    x, w, bias, m, acc = channel_data()
    info = np.iinfo(np.dtype(ydt))
    act = None if alpha is None else ("leaky_relu", alpha)
    y = qconv(kernel, x, w, m, bias, np.array(y_zp, ydt), ydt, rounding, act)
    ref = qconv(REF, x, w, m, bias, np.array(y_zp, ydt), ydt, rounding, act)
    np.testing.assert_array_equal(y, ref)
    oracle = fixed_oracle if rounding == "fixed_point" else float_oracle
    expect = oracle(acc, m, int(info.min) - y_zp, int(info.max) - y_zp, y_zp, alpha)
    np.testing.assert_array_equal(y.reshape(len(CHANNELS), -1).astype(np.int64), expect)


# int16 family: (weight, int64 bias, multiplier); acc = x * weight + bias with x in [-32768, 32767].
CHANNELS64 = [
    (1, 0, 1.0),
    (32767, 0, 2.0**-20 * 0.7),
    (-32767, 12345, 2.0**-31 * 0.75),
    (32767, 2**40, 2.0**-40 * 0.9),  # right 40
    (-32767, -(2**50), 2.0**-50 * 0.55),
    (32767, 2**61, 2.0**-61 * 0.75),  # right 61
    (-32767, -(2**61) - 2**60, 2.0**-62 * 0.6),  # right 62
    (32767, 2**62 - 2**30, 2.0**-62 * 0.99),  # up to 2^62 - 2^30 + 2^30 - 32767
    (-32767, -(2**62) + 2**30, 2.0**-60 * 0.6),
    (1, 2**31 - 128, 1.5),  # left 1 around the int32 clamp of the left-shift path
    (1, -(2**31) + 128, 1.5),
    (3, 17, 2.0**9 * 0.8),  # left 9, in the int16 range
    (-1, -100, 2.0**28 * 0.99),  # left 28
    (1, 2**40, 2.0**-70),  # below 2^-62: multiplier 0
    (32767, 1000, 2.0**-15),  # exact ties
    (-32767, -1000, 2.0**-15),
    (1, -(2**31) - 100, 2.0**-1),  # beyond int32 without a left shift
    (32767, 2**35, 2.0**28 * 0.99),  # left 28: acc * 2^28 is beyond int64
    (-32767, -(2**40), 2.0**20 * 0.6),
    (1, 0, 2.0**-1),  # ties in both roundings, x in [-64, 63]
    (1, 7, 2.0**-3),
    (-1, 0, 2.0**-6),
]
# Accumulators near the int64 limits, -2^63 itself included (its negation, for a negative leaky slope,
# is not an int64: SIMD stages hand such tiles to the portable one).
CHANNELS64_HUGE = [
    (32767, 2**62 - 2**29, 2.0**-62 * 0.99),
    (-32767, -(2**62) + 2**29, 2.0**-60 * 0.6),
    (32767, 2**63 - 2**31, 2.0**-62 * 0.8),
    (-32767, -(2**63) + 2**31, 2.0**-62 * 0.8),
    (1, 2**62, 2.0**-30),
    (1, -(2**63) + 32768, 2.0**-60 * 0.7),  # acc = -2^63 at x = -32768
    (-1, 2**63 - 32769, 2.0**-61 * 0.7),  # acc = 2^63 - 1 at x = -32768
]


def channel_data64(channels):
    x = np.concatenate([np.arange(-64, 64), np.linspace(-32768, 32767, 128).astype(np.int64)]).astype(np.int16)
    x = x.reshape(1, 1, 16, 16)
    w = np.array([c[0] for c in channels], np.int16).reshape(-1, 1, 1, 1)
    bias = np.array([c[1] for c in channels], np.int64)
    m = np.array([c[2] for c in channels], np.float32)
    acc = x.reshape(1, -1).astype(object) * w.reshape(-1, 1).astype(object) + bias.reshape(-1, 1).astype(object)
    return x, w, bias, m, acc


@pytest.mark.parametrize("kernel", available_kernels("int16"))
@pytest.mark.parametrize("ydt,y_zp", [("int16", 0), ("int16", -300), ("int8", 5)])
@pytest.mark.parametrize("alpha", [None, 0.1, -0.5, 3.0])
@pytest.mark.parametrize("huge", [False, True])
def test_int64_output_stage_extremes(kernel, ydt, y_zp, alpha, huge):
    channels = CHANNELS64_HUGE if huge else CHANNELS64
    x, w, bias, m, acc = channel_data64(channels)
    info = np.iinfo(np.dtype(ydt))
    act = None if alpha is None else ("leaky_relu", alpha)
    run = lambda k: ops.qlinear_conv(x, 1.0, 0, w, m, 0, 1.0, np.array(y_zp, ydt), bias, y_dtype=ydt,  # noqa: E731
                                     activation=act, kernel=k)
    y = call_or_skip(run, kernel)
    np.testing.assert_array_equal(y, run(REF))
    expect = fixed_oracle(acc, m, int(info.min) - y_zp, int(info.max) - y_zp, y_zp, alpha)
    np.testing.assert_array_equal(y.reshape(len(channels), -1).astype(np.int64), expect)


@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize("rounding", ["fixed_point", "float"])
def test_clip_outside_the_output_range(kernel, rounding):
    """clip(1000, 2000) on an int8 output: clip first, then saturate to the type, so every output is the
    type's maximum whatever the accumulator; clip(-2000, -1000) gives the minimum."""
    x, w, bias, m, acc = channel_data()
    for bounds, expect in (((1000.0, 2000.0), 127), ((-2000.0, -1000.0), -128)):
        act = ("clip",) + bounds
        y = qconv(kernel, x, w, m, bias, np.int8(3), "int8", rounding, act)
        np.testing.assert_array_equal(y, qconv(REF, x, w, m, bias, np.int8(3), "int8", rounding, act))
        assert np.all(y == expect)


@pytest.mark.parametrize("kernel", available_kernels("int8"))
def test_uint8_weights_with_zero_points_requantized(rng, kernel):
    """The int8 family with uint8 weights and per-channel weight zero points (|w - w_zp| up to 255)."""
    x = rng.integers(0, 256, (1, 40, 9, 11)).astype(np.uint8)
    w = rng.integers(0, 256, (24, 40, 3, 3)).astype(np.uint8)
    w[:, :, 0, 0] = 255
    w_zp = np.zeros(24, np.uint8)
    w_zp[::2] = 255  # |w - w_zp| = 255 where w = 0
    w[::2, :, 1, 1] = 0
    ws = rng.uniform(0.002, 0.02, 24).astype(np.float32)
    bias = rng.integers(-(2**20), 2**20, 24).astype(np.int32)
    run = lambda k: ops.qlinear_conv(x, 0.05, 200, w, ws, w_zp, 0.9, np.uint8(128), bias, pads=(1, 1, 1, 1),  # noqa: E731
                                     activation="relu", kernel=k)
    try:
        got = run(kernel)
    except ValueError as e:
        if "does not support" in str(e):  # u8 x s8 kernels need symmetric int8 weights
            pytest.skip(f"{kernel}: {e}")
        raise
    np.testing.assert_array_equal(got, run(REF))


@pytest.mark.parametrize("kernel", available_kernels("int16"))
def test_int16_largest_pair_sums(kernel):
    """Every int16 product at +-32768 * 32767: vpmaddwd pair sums of -2^31 + 2^16 and 2^31 - 2^16, summed
    over K = 576 into sums beyond +-2^37; checked against numpy int64."""
    ic, oc = 64, 20
    x = np.full((1, ic, 6, 7), -32768, np.int16)
    x[:, 1::3] = 32767
    w = np.where(np.arange(oc * ic * 9).reshape(oc, ic, 3, 3) % 5 < 3, 32767, -32767).astype(np.int16)
    w[oc // 2:] = 32767  # whole channels of a single sign: the largest magnitudes
    y = call_or_skip(lambda k: ops.conv_integer(x, w, 0, kernel=k), kernel)
    xs = np.lib.stride_tricks.sliding_window_view(x[0].astype(np.int64), (3, 3), axis=(1, 2))  # c, oh, ow, 3, 3
    expect = np.einsum("chwij,ocij->ohw", xs, w.astype(np.int64))[None]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, expect)
    assert np.abs(expect).max() > 2**37


@pytest.mark.skipif("avx2" not in available_isas(), reason="the CPU has no AVX2")
def test_avx2_cap_selects_avx2_kernels(rng, isa_cap):
    isa_cap("avx2")
    assert npuemu.isa_info()["active"] == "avx2"
    w8 = rng.integers(-127, 128, (64, 32, 3, 3)).astype(np.int8)
    # a 3x3 layer: the AVX2 direct or Winograd kernel (integer near-ties are settled by timing)
    q = ops.QLinearConv((1, 32, 20, 20), "int8", 0.05, 1, w8, 0.01, 0, 0.4, np.int8(-3), pads=(1, 1, 1, 1))
    assert q.kernel_name in ("conv2d_int8_direct_avx2", "conv2d_int8_winograd23_avx2")
    wu = rng.integers(0, 256, (64, 32, 3, 3)).astype(np.uint8)
    q = ops.QLinearConv((1, 32, 20, 20), "uint8", 0.05, 1, wu, 0.01, 128, 0.4, np.uint8(3), pads=(1, 1, 1, 1))
    assert q.kernel_name in ("conv2d_int8_direct_avx2", "conv2d_int8_winograd23_avx2")
    q1 = ops.QLinearConv((1, 32, 20, 20), "int8", 0.05, 1, w8[:, :, :1, :1].copy(), 0.01, 0, 0.4, np.int8(-3))
    assert q1.kernel_name == "conv2d_int8_direct_avx2"  # 1x1: no Winograd
    w16 = rng.integers(-1000, 1000, (64, 32, 3, 3)).astype(np.int16)
    c = ops.ConvInteger((1, 32, 20, 20), "int16", w16, pads=(1, 1, 1, 1))
    assert c.kernel_name == "conv2d_int16_direct_avx2"
    wf = rng.standard_normal((64, 32, 3, 3)).astype(np.float16)
    f = ops.Conv((1, 32, 20, 20), wf, pads=(1, 1, 1, 1))
    assert f.kernel_name.endswith("_avx2")
    x = rng.integers(-128, 128, (1, 32, 20, 20)).astype(np.int8)
    q8 = ops.QLinearConv((1, 32, 20, 20), "int8", 0.05, 1, w8, 0.01, 0, 0.4, np.int8(-3), pads=(1, 1, 1, 1))
    ref = ops.qlinear_conv(x, 0.05, 1, w8, 0.01, 0, 0.4, np.int8(-3), pads=(1, 1, 1, 1), kernel=REF)
    np.testing.assert_array_equal(q8(x), ref)
    isa_cap("scalar")
    assert not ops.QLinearConv((1, 32, 20, 20), "int8", 0.05, 1, w8, 0.01, 0, 0.4, np.int8(-3),
                               pads=(1, 1, 1, 1)).kernel_name.endswith("_avx2")


@pytest.mark.parametrize("w_zp", [0, 1000])
def test_int16_weights_outside_the_pair_range_fall_back(rng, w_zp):
    """w - w_zp = -32768 (or beyond +-32767) would make (-32768)^2 pair sums overflow int32: the direct
    int16 kernels decline these weights; algo='auto' falls back to the reference, an explicit request
    fails with a clear error."""
    x = rng.integers(-32768, 32768, (1, 8, 5, 5)).astype(np.int16)
    w = rng.integers(-100, 100, (4, 8, 3, 3)).astype(np.int16)
    if w_zp == 0:
        w[1, 2, 0, 0] = -32768
    else:
        w[1, 2, 0, 0] = -31000  # w - w_zp = -32000: fits
        w[2, 0, 1, 1] = 32767  # 31767: fits
        w[2, 0, 1, 2] = -32767  # -33767: does not
    xs = np.lib.stride_tricks.sliding_window_view(x[0].astype(np.int64), (3, 3), axis=(1, 2))
    expect = np.einsum("chwij,ocij->ohw", xs, w.astype(np.int64) - w_zp)[None]
    op = ops.ConvInteger(x.shape, "int16", w, 0, w_zp)
    assert op.kernel_name == REF
    np.testing.assert_array_equal(op(x), expect)
    for k in available_kernels("int16", "direct"):
        with pytest.raises(ValueError, match="cannot run these weights exactly"):
            ops.conv_integer(x, w, 0, w_zp, kernel=k)
