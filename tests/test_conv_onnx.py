"""npuemu.ops convolutions against independent oracles: onnxruntime's ConvInteger and QLinearConv,
onnx.reference, and an exact float64 convolution for the FP16 path."""

from __future__ import annotations

import numpy as np
import pytest

from conv_cases import (SHAPES, conv_fp64, conv_kwargs, fp16_data, int_data, shape_id, w_shape,
                        winograd_fp16_bound, x_shape)
from npuemu import ops
from onnx_oracles import run_ort, run_reference


def onnx_attrs(s) -> dict:
    _, _, _, _, _, k, st, p, d, g = s
    return dict(kernel_shape=list(k), strides=list(st), pads=[p[0], p[1], p[2], p[3]], dilations=list(d), group=g)


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("wdt", ["uint8", "int8"])
def test_conv_integer_matches_onnxruntime(rng, s, wdt):
    x = int_data(rng, x_shape(s), 0, 255, np.uint8)
    w = int_data(rng, w_shape(s), *((0, 255) if wdt == "uint8" else (-128, 127)), np.dtype(wdt))
    x_zp = np.array(rng.integers(0, 256), np.uint8)
    w_zp = np.array(rng.integers(0, 256) if wdt == "uint8" else 0, np.dtype(wdt))
    ref = run_ort("ConvInteger", dict(x=x, w=w, x_zero_point=x_zp, w_zero_point=w_zp), np.int32, onnx_attrs(s))
    got = ops.conv_integer(x, w, x_zp, w_zp, **conv_kwargs(s))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("s", SHAPES[:6], ids=shape_id)
def test_conv_integer_int8_matches_onnx_reference(rng, s):
    x = int_data(rng, x_shape(s), -128, 127, np.int8)
    w = int_data(rng, w_shape(s), -128, 127, np.int8)
    ref = run_reference("ConvInteger", dict(x=x, w=w, x_zero_point=np.array(-128, np.int8)), np.int32, onnx_attrs(s))
    np.testing.assert_array_equal(ops.conv_integer(x, w, -128, **conv_kwargs(s)), ref)


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("dt", ["int8", "uint8"])
def test_qlinear_conv_float_rounding_matches_onnxruntime(rng, s, dt):
    lo, hi = (-128, 127) if dt == "int8" else (0, 255)
    x = int_data(rng, x_shape(s), lo, hi, np.dtype(dt))
    w = int_data(rng, w_shape(s), -127, 127, np.int8)
    oc = w.shape[0]
    x_scale, y_scale = np.array(0.031, np.float32), np.array(0.57, np.float32)
    w_scale = rng.uniform(0.001, 0.02, oc).astype(np.float32)
    x_zp, y_zp = np.array(rng.integers(lo, hi + 1), dt), np.array(rng.integers(lo, hi + 1), dt)
    bias = rng.integers(-30000, 30000, oc).astype(np.int32)
    feeds = dict(x=x, x_scale=x_scale, x_zero_point=x_zp, w=w, w_scale=w_scale, w_zero_point=np.zeros(oc, np.int8),
                 y_scale=y_scale, y_zero_point=y_zp, B=bias)
    ref = run_ort("QLinearConv", feeds, np.dtype(dt), onnx_attrs(s))
    got = ops.qlinear_conv(x, x_scale, x_zp, w, w_scale, 0, y_scale, y_zp, bias, rounding="float", **conv_kwargs(s))
    diff = np.abs(got.astype(np.int32) - ref.astype(np.int32))
    assert got.dtype == ref.dtype
    assert diff.max() <= 1
    assert np.mean(diff == 0) >= 0.999
    # the NPU's fixed-point rounding is also within 1 of onnxruntime
    fixed = ops.qlinear_conv(x, x_scale, x_zp, w, w_scale, 0, y_scale, y_zp, bias, **conv_kwargs(s))
    assert np.abs(fixed.astype(np.int32) - ref.astype(np.int32)).max() <= 1


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("algo", ["direct", "auto"])
def test_fp16_conv_within_stated_bound_of_float64(rng, s, algo):
    """|y - exact| <= 1/2 ulp_fp16(exact) + K * 2^-24 * sum|x*w| (docs/arithmetic.md section 5, direct
    kernels); Winograd kernels (which algo='auto' may pick) have their own bound (section 6)."""
    x = fp16_data(rng, x_shape(s))
    w = fp16_data(rng, w_shape(s))
    b = fp16_data(rng, (w.shape[0],))
    op = ops.Conv(x.shape, w, b, algo=algo, **conv_kwargs(s))
    y = op(x)
    if "winograd" in op.kernel_name:
        exact, bound = winograd_fp16_bound(x, w, b, s, 4 if "winograd43" in op.kernel_name else 2, y)
        assert np.all(np.abs(y.astype(np.float64) - exact) <= bound)
        return
    y = y.astype(np.float64)
    exact, mag = conv_fp64(x, w, b, s)
    k = w.shape[1] * w.shape[2] * w.shape[3] + 1
    half_ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64) / 2
    bound = half_ulp + k * 2.0**-24 * mag
    assert np.all(np.abs(y - exact) <= bound * (1 + 1e-9)), np.max(np.abs(y - exact) / bound)


@pytest.mark.parametrize("s", SHAPES[:8], ids=shape_id)
def test_fp16_conv_close_to_onnxruntime_fp32(rng, s):
    x = fp16_data(rng, x_shape(s))
    w = fp16_data(rng, w_shape(s))
    attrs = onnx_attrs(s)
    ref = run_ort("Conv", dict(x=x.astype(np.float32), w=w.astype(np.float32)), np.float32, attrs)
    got = ops.conv(x, w, **conv_kwargs(s)).astype(np.float32)
    np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())
