"""matmul_integer / qlinear_matmul against onnxruntime (MatMulInteger, QLinearMatMul), and every
kernel bit-exact against the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import available_kernels
from conv_cases import int_data
from npuemu import _core, ops
from onnx_oracles import run_ort

SHAPES = [((5, 7), (7, 3)), ((1, 64), (64, 1000)), ((37, 129), (129, 20)), ((2, 3, 33, 48), (48, 17)),
          ((4, 16), (16,)), ((16,), (16, 9)), ((2, 1, 6, 10), (3, 10, 5))]


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("at,bt", [("uint8", "uint8"), ("uint8", "int8"), ("int8", "int8")])
def test_matmul_integer_matches_onnxruntime(rng, sa, sb, at, bt):
    lim = {"uint8": (0, 255), "int8": (-128, 127)}
    a = int_data(rng, sa, *lim[at], np.dtype(at))
    b = int_data(rng, sb, *lim[bt], np.dtype(bt))
    azp = np.array(rng.integers(*lim[at]), at)
    bzp = np.array(rng.integers(*lim[bt]), bt)
    got = ops.matmul_integer(a, b, azp, bzp)
    if at == "int8" and bt == "int8":  # onnxruntime's MatMulInteger takes uint8 A only: exact numpy int64 oracle
        ref = np.matmul(a.astype(np.int64) - int(azp), b.astype(np.int64) - int(bzp))
    else:
        ref = run_ort("MatMulInteger", dict(a=a, b=b, a_zero_point=azp, b_zero_point=bzp), np.int32)
    assert got.dtype == np.int32 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("sa,sb", SHAPES[:4])
@pytest.mark.parametrize("dt", ["int8", "uint8"])
@pytest.mark.parametrize("per_column", [False, True])
def test_qlinear_matmul_float_rounding_matches_onnxruntime(rng, sa, sb, dt, per_column):
    lo, hi = (-128, 127) if dt == "int8" else (0, 255)
    a = int_data(rng, sa, lo, hi, np.dtype(dt))
    b = int_data(rng, sb, -127, 127, np.int8)
    n = sb[-1]
    b_scale = rng.uniform(0.001, 0.02, n).astype(np.float32) if per_column else np.array(0.011, np.float32)
    feeds = dict(a=a, a_scale=np.array(0.037, np.float32), a_zero_point=np.array(rng.integers(lo, hi), dt), b=b,
                 b_scale=b_scale, b_zero_point=np.zeros(n, np.int8) if per_column else np.array(0, np.int8),
                 y_scale=np.array(0.9, np.float32), y_zero_point=np.array(rng.integers(lo, hi), dt))
    ref = run_ort("QLinearMatMul", feeds, np.dtype(dt))
    got = ops.qlinear_matmul(*feeds.values(), rounding="float")
    diff = np.abs(got.astype(np.int32) - ref.astype(np.int32))
    assert diff.max() <= 1 and np.mean(diff == 0) >= 0.999
    fixed = ops.qlinear_matmul(*feeds.values())
    assert np.abs(fixed.astype(np.int32) - ref.astype(np.int32)).max() <= 1


@pytest.mark.parametrize("kernel", available_kernels("int8") + available_kernels("int16"))
@pytest.mark.parametrize("sa,sb", [((37, 129), (129, 20)), ((3, 200), (200, 50)), ((1, 16), (16, 16))])
def test_matmul_kernels_bit_exact(rng, kernel, sa, sb):
    a = int_data(rng, sa, -128, 127, np.int8)
    b = int_data(rng, sb, -127, 127, np.int8)
    bias = rng.integers(-5000, 5000, sb[-1]).astype(np.int32)
    f = lambda k: ops.qlinear_matmul(a, 0.02, 3, b, 0.01, 0, 0.3, np.int8(-1), bias=bias,  # noqa: E731
                                     activation="relu", kernel=k)
    try:
        got = f(kernel)
    except ValueError as e:
        if "does not support" in str(e):
            pytest.skip(str(e))
        raise
    np.testing.assert_array_equal(got, f("conv2d_any_reference_scalar"))


def test_matmul_out_is_reused_without_allocation(rng):
    a = int_data(rng, (50, 64), -128, 127, np.int8)
    b = int_data(rng, (64, 40), -127, 127, np.int8)
    out = np.empty((50, 40), np.int32)
    assert ops.matmul_integer(a, b, 1, 0, out=out) is out
    before = _core.alloc_stats()["count"]
    for _ in range(20):
        ops.matmul_integer(a, b, 1, 0, out=out)
    assert _core.alloc_stats()["count"] == before
    np.testing.assert_array_equal(out, (a.astype(np.int64) - 1) @ b.astype(np.int64))


def test_matmul_errors(rng):
    a = np.zeros((3, 4), np.int8)
    with pytest.raises(ValueError, match="a's last dimension 4 != b's first matrix dimension 5"):
        ops.matmul_integer(a, np.zeros((5, 2), np.int8))
    with pytest.raises(ValueError, match="per-row zero points"):
        ops.matmul_integer(a, np.zeros((4, 2), np.int8), np.zeros(3, np.int8))
    with pytest.raises(ValueError, match="do not broadcast"):
        ops.matmul_integer(np.zeros((2, 3, 4), np.int8), np.zeros((3, 4, 2), np.int8))
    with pytest.raises(TypeError, match="a dtype must be one of"):
        ops.matmul_integer(a.astype(np.float32), np.zeros((4, 2), np.int8))
