"""Pooling (ops.max_pool, ops.avg_pool, ops.global_average_pool): every optimized kernel against the
reference kernel bit for bit (rows with vector tails, strides, asymmetric pads, dilations, ceil_mode,
count_include_pad, whole-plane windows, extreme values and zero points, every ISA tier), and the
reference against independent oracles: onnxruntime's MaxPool, com.microsoft QLinearAveragePool and
QLinearGlobalAveragePool, AveragePool / GlobalAveragePool, onnx.reference, a literal Python
transcription of the fixed-point average, and float64 arithmetic for float16."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from conftest import available_isas, available_kernels
from npuemu import _core, ops
from onnx_oracles import run_ort, run_reference
from test_arith import mbqm
from quant_oracles import quantize_multiplier_tflite

REF = "pool_any_reference_scalar"
ROWS = available_kernels("int8", "rows", op="pool")  # every ISA tier this CPU and NPUEMU_ISA allow
RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}

# (x shape, kernel, strides, pads (t, l, b, r), dilations, ceil_mode)
CASES = [
    ((1, 3, 9, 10), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False),  # the classic 3x3 s2 p1
    ((1, 3, 9, 10), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), True),
    ((2, 2, 7, 33), (2, 3), (1, 2), (0, 1, 1, 2), (1, 1), True),  # last window dropped by ceil_mode
    ((1, 2, 5, 5), (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), False),  # whole plane
    ((1, 1, 13, 70), (3, 2), (3, 1), (2, 1, 0, 1), (1, 1), False),  # rows wider than a vector block
    ((1, 2, 6, 131), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False),  # 1x1, tails of every width
    ((2, 5, 12, 12), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),
    ((1, 4, 11, 17), (7, 7), (3, 2), (3, 3, 3, 3), (1, 1), True),
    ((1, 1, 3, 3), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False),  # every window touches padding
    ((1, 2, 20, 45), (3, 5), (4, 3), (2, 4, 1, 0), (1, 1), True),
]
DILATED = [
    ((1, 2, 8, 8), (3, 3), (1, 1), (0, 0, 0, 0), (2, 2), False),
    ((1, 3, 10, 37), (2, 3), (2, 1), (1, 2, 1, 1), (3, 2), True),
    ((1, 1, 1, 5), (2, 1), (1, 1), (1, 0, 1, 0), (2, 1), False),  # a window with no input element
]


def case_id(c) -> str:
    s, k, st, p, d, ceil = c
    return f"x{'x'.join(map(str, s))}-k{k[0]}x{k[1]}-s{st[0]}x{st[1]}-p{''.join(map(str, p))}-d{d[0]}x{d[1]}" + (
        "-ceil" if ceil else "")


def idata(rng, shape, dt, extremes=0.15):
    lo, hi = RANGE[dt]
    a = rng.integers(lo, hi + 1, shape, dtype=np.int64)
    m = rng.random(shape)
    a[m < extremes / 2] = lo
    a[m > 1 - extremes / 2] = hi
    return a.astype(dt)


def fdata(rng, shape, specials=True, nan=True):
    x = (rng.standard_normal(shape) * 3).astype(np.float16)
    if specials:
        flat = x.reshape(-1)
        flat[::17] = np.float16(-0.0)
        flat[3::29] = np.float16(0.0)
        flat[5::41] = np.float16(6e-8)
        flat[7::53] = np.float16(-np.inf)
        flat[13::101] = np.float16(np.inf)
        if nan:
            flat[11::97] = np.float16(np.nan)
    return x


def same_bits(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def kw(c, dilations=True):
    _, k, st, p, d, ceil = c
    out = dict(strides=st, pads=p, ceil_mode=ceil)
    if dilations:
        out["dilations"] = d
    return k, out


def onnx_attrs(c, avg=False, cip=False):
    _, k, st, p, d, ceil = c
    a = dict(kernel_shape=list(k), strides=list(st), pads=list(p), ceil_mode=int(ceil))
    if avg:
        a["count_include_pad"] = int(cip)
    else:
        a["dilations"] = list(d)
    return a


# ---------------------------------------------------------------------------------------------------
# Optimized kernels against the reference kernel


@pytest.mark.parametrize("kernel", ROWS)
@pytest.mark.parametrize("c", CASES + DILATED, ids=case_id)
@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "float16"])
def test_max_pool_bit_exact(rng, kernel, c, dt):
    x = fdata(rng, c[0]) if dt == "float16" else idata(rng, c[0], dt)
    k, a = kw(c)
    assert same_bits(ops.max_pool(x, k, kernel=kernel, **a), ops.max_pool(x, k, kernel=REF, **a))


@pytest.mark.parametrize("kernel", ROWS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
@pytest.mark.parametrize("dt", ["int8", "uint8"])
@pytest.mark.parametrize("rounding", ["fixed_point", "float"])
@pytest.mark.parametrize("cip", [False, True])
def test_quantized_avg_pool_bit_exact(rng, kernel, c, dt, rounding, cip):
    x = idata(rng, c[0], dt)
    lo, hi = RANGE[dt]
    k, a = kw(c, dilations=False)
    for xs, ys, xz, yz in [(0.05, 0.031, lo, hi), (0.02, 0.02, hi, lo), (0.4, 0.003, (lo + hi) // 2, lo + 3)]:
        q = dict(x_scale=xs, y_scale=ys, x_zero_point=np.array(xz, dt), y_zero_point=np.array(yz, dt),
                 count_include_pad=cip, rounding=rounding)
        ref = ops.avg_pool(x, k, kernel=REF, **q, **a)
        assert same_bits(ops.avg_pool(x, k, kernel=kernel, **q, **a), ref), (xs, ys, xz, yz)


@pytest.mark.parametrize("kernel", ROWS)
@pytest.mark.parametrize("c", CASES, ids=case_id)
@pytest.mark.parametrize("cip", [False, True])
def test_fp16_avg_pool_bit_exact(rng, kernel, c, cip):
    x = fdata(rng, c[0])
    k, a = kw(c, dilations=False)
    ref = ops.avg_pool(x, k, count_include_pad=cip, kernel=REF, **a)
    assert same_bits(ops.avg_pool(x, k, count_include_pad=cip, kernel=kernel, **a), ref)


@pytest.mark.parametrize("kernel", ROWS)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 37, 7, 7), (1, 20, 13, 9), (1, 3, 40, 41), (1, 17, 1, 300)])
def test_global_average_pool_bit_exact(rng, kernel, shape):
    for dt in ("int8", "uint8"):
        x = idata(rng, shape, dt)
        lo, hi = RANGE[dt]
        for rounding in ("fixed_point", "float"):
            q = dict(x_scale=0.05, y_scale=0.02, x_zero_point=np.array(lo + 1, dt), y_zero_point=np.array(hi - 2, dt),
                     rounding=rounding)
            ref = ops.global_average_pool(x, kernel=REF, **q)
            assert same_bits(ops.global_average_pool(x, kernel=kernel, **q), ref)
    x = fdata(rng, shape)
    assert same_bits(ops.global_average_pool(x, kernel=kernel), ops.global_average_pool(x, kernel=REF))


def test_global_is_avg_pool_over_the_plane(rng):
    x = fdata(rng, (2, 19, 6, 5), specials=False)
    np.testing.assert_array_equal(ops.global_average_pool(x).view(np.uint16), ops.avg_pool(x, (6, 5)).view(np.uint16))
    q = idata(rng, (2, 19, 6, 5), "int8")
    for r in ("fixed_point", "float"):
        qa = dict(x_scale=0.1, y_scale=0.03, x_zero_point=np.int8(-4), y_zero_point=np.int8(9), rounding=r)
        np.testing.assert_array_equal(ops.global_average_pool(q, **qa), ops.avg_pool(q, (6, 5), **qa))


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512vnni"])
def test_isa_cap_selects_the_rows_kernel(isa_cap, isa):
    if isa not in available_isas():
        pytest.skip(f"CPU lacks {isa}")
    isa_cap(isa)
    op = _core.pool_cached(op="max", dtype="int8", x_shape=[1, 1, 4, 4], kernel_shape=[2, 2], strides=[1, 1],
                           pads=[0, 0, 0, 0], dilations=[1, 1], ceil_mode=False, count_include_pad=False,
                           quantized=False, x_scale=1.0, x_zero_point=0, y_scale=1.0, y_zero_point=0,
                           rounding="fixed_point", kernel="")
    assert op.kernel_name == f"pool_any_rows_{isa}"


@pytest.mark.parametrize("mask", [0, 1, 2, 4, 3, 5, 6, 7, 0xFFFF])
def test_every_core_mask_is_bit_identical(rng, mask):
    x = idata(rng, (2, 7, 20, 21), "int8")
    q = dict(x_scale=0.05, y_scale=0.04, x_zero_point=np.int8(3), y_zero_point=np.int8(-2))
    for f in (lambda m: ops.max_pool(x, 3, strides=2, pads=1, core_mask=m),
              lambda m: ops.avg_pool(x, 3, strides=2, pads=1, core_mask=m, **q),
              lambda m: ops.global_average_pool(x.astype(np.float16), core_mask=m)):
        assert same_bits(f(mask), f(1))


# ---------------------------------------------------------------------------------------------------
# Independent oracles


@pytest.mark.parametrize("c", CASES + DILATED[:2], ids=case_id)
@pytest.mark.parametrize("dt", ["int8", "uint8", "float16"])
def test_max_pool_matches_onnxruntime(rng, c, dt):
    # onnxruntime's float16 MaxPool lets a NaN win or not depending on its position (std::max order),
    # so its inputs here hold no NaN; npuemu's rule (a NaN never wins) is checked below.
    x = fdata(rng, c[0], nan=False) if dt == "float16" else idata(rng, c[0], dt)
    k, a = kw(c)
    got = ops.max_pool(x, k, **a)
    ref = run_ort("MaxPool", dict(x=x), x.dtype, onnx_attrs(c), opset=12)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)  # float16: values equal (+0 == -0)


@pytest.mark.parametrize("c", CASES + DILATED[:2], ids=case_id)
def test_fp16_max_pool_nan_never_wins_and_zero_order(rng, c):
    """numpy fmax over each window (NaN ignored; padding as NaN) is the oracle; max(-0, +0) = +0."""
    x = fdata(rng, c[0])
    (n, ch, h, w), (kh, kwd), (sh, sw), (pt, pl, pb, pr), (dh, dw), ceil = x.shape, *c[1:]
    got = ops.max_pool(x, (kh, kwd), strides=(sh, sw), pads=(pt, pl, pb, pr), dilations=(dh, dw), ceil_mode=ceil)
    big = np.full((n, ch, h + pt + pb + kh * dh + sh, w + pl + pr + kwd * dw + sw), np.nan, np.float64)
    big[:, :, pt : pt + h, pl : pl + w] = x
    for i in range(got.shape[2]):
        for j in range(got.shape[3]):
            win = big[:, :, i * sh : i * sh + (kh - 1) * dh + 1 : dh, j * sw : j * sw + (kwd - 1) * dw + 1 : dw]
            win = win.reshape(n, ch, -1)
            expect = np.fmax.reduce(win, axis=2)
            allnan = np.all(np.isnan(win), axis=2)
            expect[allnan] = -np.inf
            g = got[:, :, i, j].astype(np.float64)
            assert np.array_equal(g, expect)
            zero = expect == 0
            has_pos_zero = np.any((win == 0) & ~np.signbit(win), axis=2)
            assert np.array_equal(np.signbit(g[zero]), ~has_pos_zero[zero])


@pytest.mark.parametrize("c", CASES + DILATED[:2], ids=case_id)
@pytest.mark.parametrize("dt", ["int16", "float16"])
def test_max_pool_matches_onnx_reference(rng, c, dt):
    # onnx.reference pads integer inputs with NaN and fails; int16 runs there as float64 (exact)
    x = fdata(rng, c[0], nan=False) if dt == "float16" else idata(rng, c[0], dt)
    k, a = kw(c)
    xr = x if dt == "float16" else x.astype(np.float64)
    ref = run_reference("MaxPool", dict(x=xr), xr.dtype, onnx_attrs(c), opset=12)
    np.testing.assert_array_equal(ops.max_pool(x, k, **a), ref)


def test_max_pool_empty_window_is_lowest_like_onnxruntime():
    x = np.array([[[[5, -3, 7, 1, 0]]]], np.int8)
    a = dict(dilations=(2, 1), pads=(1, 0, 1, 0))
    got = ops.max_pool(x, (2, 1), **a)
    ref = run_ort("MaxPool", dict(x=x), np.int8, dict(kernel_shape=[2, 1], dilations=[2, 1], pads=[1, 0, 1, 0]),
                  opset=12)
    np.testing.assert_array_equal(got, ref)
    assert np.all(got == -128)
    assert np.all(np.isneginf(ops.max_pool(x.astype(np.float16), (2, 1), **a)))


def ort_qavg(x, c, xs, xz, ys, yz, cip):
    f32 = np.float32
    feeds = dict(x=x, x_scale=np.array(xs, f32), x_zero_point=np.array(xz, x.dtype), y_scale=np.array(ys, f32),
                 y_zero_point=np.array(yz, x.dtype))
    return run_ort("QLinearAveragePool", feeds, x.dtype, onnx_attrs(c, avg=True, cip=cip), domain="com.microsoft")


@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_quantized_avg_pool_against_onnxruntime(rng, dt):
    """rounding='float' reproduces QLinearAveragePool (the bar: >= 99.9% exact, never more than 1 apart;
    measured 100%); the fixed-point rounding stays within 1."""
    lo, hi = RANGE[dt]
    n = exact_float = exact_fixed = 0
    for c in CASES:
        x = idata(rng, c[0], dt)
        k, a = kw(c, dilations=False)
        for cip in (False, True):
            xs, ys = (float(v) for v in rng.uniform(0.005, 0.1, 2))
            xz, yz = (int(v) for v in rng.integers(lo, hi + 1, 2))
            ref = ort_qavg(x, c, xs, xz, ys, yz, cip).astype(np.int32)
            q = dict(x_scale=xs, y_scale=ys, x_zero_point=np.array(xz, dt), y_zero_point=np.array(yz, dt),
                     count_include_pad=cip)
            flt = ops.avg_pool(x, k, rounding="float", **q, **a).astype(np.int32)
            fix = ops.avg_pool(x, k, **q, **a).astype(np.int32)
            assert flt.shape == ref.shape
            assert np.abs(flt - ref).max() <= 1 and np.abs(fix - ref).max() <= 1
            n += ref.size
            exact_float += np.count_nonzero(flt == ref)
            exact_fixed += np.count_nonzero(fix == ref)
    assert exact_float / n >= 0.999
    assert exact_fixed / n >= 0.99


@pytest.mark.parametrize("dt", ["int8", "uint8"])
@pytest.mark.parametrize("shape", [(1, 64, 7, 7), (2, 37, 13, 9), (1, 5, 1, 1), (1, 8, 56, 56)])
def test_global_average_pool_against_onnxruntime(rng, dt, shape):
    lo, hi = RANGE[dt]
    x = idata(rng, shape, dt)
    for xs, ys in [(0.05, 0.02), (0.013, 0.09)]:
        xz, yz = (int(v) for v in rng.integers(lo, hi + 1, 2))
        feeds = dict(x=x, x_scale=np.array(xs, np.float32), x_zero_point=np.array(xz, dt),
                     y_scale=np.array(ys, np.float32), y_zero_point=np.array(yz, dt))
        ref = run_ort("QLinearGlobalAveragePool", feeds, x.dtype, domain="com.microsoft").astype(np.int32)
        q = dict(x_scale=xs, y_scale=ys, x_zero_point=np.array(xz, dt), y_zero_point=np.array(yz, dt))
        np.testing.assert_array_equal(ops.global_average_pool(x, rounding="float", **q), ref)
        assert np.abs(ops.global_average_pool(x, **q).astype(np.int32) - ref).max() <= 1


def avg_fixed_transcription(x, c, xs, xz, ys, yz, cip, lo, hi):
    """The fixed-point average written out with Python integers: window sums of x - x_zp, the count, the
    pre-shift L (255 * count * 2^L < 2^31), TFLite's QuantizeMultiplier of x_scale / (y_scale * count)
    with its exponent lowered by L, gemmlowp's MultiplyByQuantizedMultiplier, clamp."""
    (n, ch, h, w), (kh, kwd), (sh, sw), (pt, pl, pb, pr), _, ceil = x.shape, *c[1:]

    oh, ow = pool_out_size(h, kh, sh, pt, pb, ceil), pool_out_size(w, kwd, sw, pl, pr, ceil)
    xs, ys = float(np.float32(xs)), float(np.float32(ys))
    y = np.empty((n, ch, oh, ow), np.int64)
    xi = x.astype(np.int64)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * sh - pt, j * sw - pl
            hs, he, ws, we = max(h0, 0), min(h0 + kh, h), max(w0, 0), min(w0 + kwd, w)
            count = kh * kwd if cip else (he - hs) * (we - ws)
            sums = (xi[:, :, hs:he, ws:we] - xz).sum(axis=(2, 3))
            L = 0
            while 255 * count * 2 ** (L + 1) < 2**31:
                L += 1
            m0, shift = quantize_multiplier_tflite(xs / (ys * count))
            for nn in range(n):
                for cc in range(ch):
                    v = mbqm(int(sums[nn, cc]) << L, m0, shift - L) if m0 else 0
                    y[nn, cc, i, j] = min(hi, max(lo, v + yz))
    return y


@pytest.mark.parametrize("c", CASES[:5] + CASES[7:], ids=case_id)
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_fixed_point_avg_matches_transcription(rng, c, dt):
    lo, hi = RANGE[dt]
    x = idata(rng, c[0], dt)
    k, a = kw(c, dilations=False)
    for cip in (False, True):
        xs, ys = (float(v) for v in rng.uniform(0.002, 0.2, 2))
        xz, yz = (int(v) for v in rng.integers(lo, hi + 1, 2))
        got = ops.avg_pool(x, k, x_scale=xs, y_scale=ys, x_zero_point=np.array(xz, dt), y_zero_point=np.array(yz, dt),
                           count_include_pad=cip, **a)
        np.testing.assert_array_equal(got, avg_fixed_transcription(x, c, xs, xz, ys, yz, cip, lo, hi))


def test_fixed_point_avg_is_the_rounded_exact_average(rng):
    """With the pre-shift the NPU's average equals round_half_away(S * x_scale / (y_scale * count))
    (checked with exact fractions; a tie within 2^-L of .5 would be the only exception)."""
    x = idata(rng, (1, 8, 15, 16), "int8")
    xs, ys = float(np.float32(0.05)), float(np.float32(0.031))
    got = ops.avg_pool(x, 3, pads=1, x_scale=xs, y_scale=ys, x_zero_point=np.int8(5), y_zero_point=np.int8(0))
    xi = np.pad(x.astype(np.int64) - 5, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((15, 16), np.int64), 1)
    for i in range(15):
        for j in range(16):
            count = int(ones[i : i + 3, j : j + 3].sum())
            for cc in range(8):
                ex = Fraction(int(xi[0, cc, i : i + 3, j : j + 3].sum())) * Fraction(xs) / (Fraction(ys) * count)
                r = math.floor(abs(ex) + Fraction(1, 2)) * (1 if ex >= 0 else -1)
                assert int(got[0, cc, i, j]) == min(127, max(-128, r)), (i, j, cc)


def pool_out_size(i, k, s, p0, p1, ceil):
    span = i + p0 + p1 - k
    o = (-(-span // s) if ceil else span // s) + 1
    return o - 1 if ceil and (o - 1) * s >= i + p0 else o


def fp16_avg_oracle(x, c, cip):
    """Exact (float64) averages with ONNX AveragePool's divisor (count_include_pad: the window's positions
    inside the padded input), and the mean of |x| with the same divisor. (onnx.reference's AveragePool
    disagrees with onnxruntime and with this for the 7x7 / stride (3, 2) / ceil_mode case, so it is not
    used here.)"""
    (n, ch, h, w), (kh, kwd), (sh, sw), (pt, pl, pb, pr), _, ceil = x.shape, *c[1:]
    oh, ow = pool_out_size(h, kh, sh, pt, pb, ceil), pool_out_size(w, kwd, sw, pl, pr, ceil)
    xd = x.astype(np.float64)
    y, mag = np.empty((n, ch, oh, ow)), np.empty((n, ch, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * sh - pt, j * sw - pl
            win = xd[:, :, max(h0, 0) : min(h0 + kh, h), max(w0, 0) : min(w0 + kwd, w)]
            count = (min(h0 + kh, h + pb) - h0) * (min(w0 + kwd, w + pr) - w0) if cip else win.shape[2] * win.shape[3]
            y[:, :, i, j] = win.sum(axis=(2, 3)) / count
            mag[:, :, i, j] = np.abs(win).sum(axis=(2, 3)) / count
    return y, mag


@pytest.mark.parametrize("c", CASES, ids=case_id)
@pytest.mark.parametrize("cip", [False, True])
def test_fp16_avg_pool_within_bound_of_float64(rng, c, cip):
    """|y - exact| <= ulp_fp16/2 + (K + 1) * 2^-24 * mean|x| for a window of K elements (float32 sum,
    division, one fp16 rounding); exact = onnx.reference's AveragePool in float64 (ONNX divisor)."""
    x = fdata(rng, c[0], specials=False)
    k, a = kw(c, dilations=False)
    got = ops.avg_pool(x, k, count_include_pad=cip, **a).astype(np.float64)
    exact, mag = fp16_avg_oracle(x, c, cip)
    assert got.shape == exact.shape
    kk = c[1][0] * c[1][1]
    top = np.maximum(np.abs(exact), np.abs(got)).astype(np.float16)
    half_ulp = np.spacing(top).astype(np.float64) / 2
    bound = half_ulp + (kk + 1) * 2.0**-24 * mag
    assert np.all(np.abs(got - exact) <= bound * (1 + 1e-9))


@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_fp16_avg_pool_close_to_onnxruntime(rng, c):
    x = fdata(rng, c[0], specials=False)
    k, a = kw(c, dilations=False)
    for cip in (False, True):
        ref = run_ort("AveragePool", dict(x=x.astype(np.float32)), np.float32, onnx_attrs(c, avg=True, cip=cip))
        got = ops.avg_pool(x, k, count_include_pad=cip, **a)
        assert got.shape == ref.shape
        ulps = np.abs(got.view(np.int16).astype(np.int32) - ref.astype(np.float16).view(np.int16).astype(np.int32))
        assert ulps.max() <= 1


def test_fp16_global_average_pool_against_onnxruntime(rng):
    x = fdata(rng, (2, 37, 9, 11), specials=False)
    ref = run_ort("GlobalAveragePool", dict(x=x.astype(np.float32)), np.float32).astype(np.float16)
    got = ops.global_average_pool(x)
    ulps = np.abs(got.view(np.int16).astype(np.int32) - ref.view(np.int16).astype(np.int32))
    assert ulps.max() <= 1


# ---------------------------------------------------------------------------------------------------
# Buffers and errors


def test_out_is_written_without_allocation(rng):
    x = idata(rng, (2, 16, 28, 28), "int8")
    out = np.empty((2, 16, 14, 14), np.int8)
    q = dict(x_scale=0.05, y_scale=0.04, x_zero_point=np.int8(3), y_zero_point=np.int8(-2))
    assert ops.max_pool(x, 3, strides=2, pads=1, out=out) is out
    g = np.empty((2, 16, 1, 1), np.float16)
    xf = x.astype(np.float16)

    def calls():
        ops.max_pool(x, 3, strides=2, pads=(1, 1, 0, 0), out=out, core_mask=7)
        ops.avg_pool(x, 3, strides=2, pads=(1, 1, 0, 0), out=out, **q)
        ops.global_average_pool(xf, out=g)

    calls()  # warm-up with exactly the measured calls: plans, workspaces, worker threads
    before = _core.alloc_stats()["count"]
    for _ in range(3):
        calls()
    assert _core.alloc_stats()["count"] == before


def test_errors(rng):
    x = idata(rng, (1, 2, 6, 6), "int8")
    q = dict(x_scale=0.1, y_scale=0.1)
    with pytest.raises(ValueError, match=r"pads must be smaller than the kernel \(pads \(3, 0, 0, 0\)"):
        ops.max_pool(x, 3, pads=(3, 0, 0, 0))
    with pytest.raises(ValueError, match="x must be 4-D NCHW"):
        ops.max_pool(x[0], 2)
    with pytest.raises(TypeError, match="int8, uint8, int16 or float16"):
        ops.max_pool(x.astype(np.int32), 2)
    with pytest.raises(ValueError, match="max_pool takes no scales"):
        _core.pool_cached(op="max", dtype="int8", x_shape=[1, 2, 6, 6], kernel_shape=[2, 2], strides=[1, 1],
                          pads=[0, 0, 0, 0], dilations=[1, 1], ceil_mode=False, count_include_pad=False,
                          quantized=True, x_scale=1.0, x_zero_point=0, y_scale=1.0, y_zero_point=0,
                          rounding="fixed_point", kernel="")
    with pytest.raises(ValueError, match="of int16 takes no scales"):
        ops.avg_pool(x.astype(np.int16), 2, **q)
    with pytest.raises(TypeError, match="needs y_scale"):
        ops.avg_pool(x, 2, x_scale=0.1)
    with pytest.raises(ValueError, match="avg_pool of int8 needs x_scale and y_scale"):
        ops.avg_pool(x, 2)
    with pytest.raises(TypeError, match="avg_pool needs int8, uint8 .* or float16"):
        ops.avg_pool(x.astype(np.int16), 2)
    with pytest.raises(ValueError, match="x_zero_point 300 is outside the uint8 range"):
        ops.avg_pool(x.astype(np.uint8), 2, x_scale=0.1, y_scale=0.1, x_zero_point=300)
    with pytest.raises(ValueError, match="y_scale must be a positive finite float, got 0"):
        ops.avg_pool(x, 2, x_scale=0.1, y_scale=0.0)
    with pytest.raises(ValueError, match=r"window 7x7 is larger than the padded input 6x6"):
        ops.max_pool(x, 7)
    with pytest.raises(ValueError, match="strides must be in \\[1, 1048576\\]"):
        ops.max_pool(x, 2, strides=0)
    with pytest.raises(ValueError, match="rounding must be one of"):
        ops.avg_pool(x, 2, rounding="up", **q)
    with pytest.raises(ValueError, match=r"out must have shape \(1, 2, 3, 3\)"):
        ops.max_pool(x, 2, strides=2, out=np.empty((1, 2, 2, 2), np.int8))
    with pytest.raises(ValueError, match="exceeds 8421504"):
        ops.global_average_pool(np.zeros((1, 1, 2903, 2901), np.int8), **q)
    with pytest.raises(ValueError, match="unknown kernel"):
        ops.max_pool(x, 2, kernel="pool_any_rows_riscv")
    big = idata(rng, (1, 1, 8, 8), "int8")
    with pytest.raises(ValueError, match="out must not share memory with x"):
        ops.max_pool(big, 1, out=big)
