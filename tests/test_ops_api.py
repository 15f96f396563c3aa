"""The ops API contract: arrays used in place, out= written without allocation, repeated calls allocate
nothing new, and bad input raises a clear TypeError / ValueError (never a crash)."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import npuemu
from npuemu import _core, ops


def qconv_args(rng, c=16, oc=24, hw=10):
    x = rng.integers(-128, 128, (1, c, hw, hw)).astype(np.int8)
    w = rng.integers(-127, 128, (oc, c, 3, 3)).astype(np.int8)
    return x, w


def test_out_is_written_in_place_and_returned(rng):
    x, w = qconv_args(rng)
    out = np.empty((1, 24, 10, 10), np.int8)
    y = ops.qlinear_conv(x, 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1, out=out)
    assert y is out
    ref = ops.qlinear_conv(x, 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1)
    np.testing.assert_array_equal(out, ref)
    assert not np.shares_memory(ref, x)


@pytest.mark.parametrize("prepared", [False, True])
def test_repeated_calls_with_out_allocate_nothing(rng, prepared):
    x, w = qconv_args(rng, c=32, oc=48, hw=20)
    out = np.empty((1, 48, 20, 20), np.int8)
    if prepared:
        op = ops.QLinearConv(x.shape, "int8", 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1)
        call = lambda: op(x, out=out, core_mask=7)  # noqa: E731
    else:
        call = lambda: ops.qlinear_conv(x, 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1, out=out,  # noqa: E731
                                        core_mask=7)
    for _ in range(3):  # warm-up: plans, workspaces and worker threads exist after this
        call()
    gc.collect()
    native_before = _core.alloc_stats()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(50):
        call()
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    native_after = _core.alloc_stats()
    assert native_after["count"] == native_before["count"], "the core allocated during steady-state calls"
    assert native_after["bytes"] == native_before["bytes"]
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename") if s.size_diff > 0)
    assert grown < 16384, f"Python-side memory grew by {grown} bytes over 50 calls"


def test_functional_cache_sees_weights_modified_in_place(rng):
    x, w = qconv_args(rng)
    y1 = ops.qlinear_conv(x, 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1)
    w[0, 0, 0, 0] = -w[0, 0, 0, 0] - 1  # same array object, new content
    y2 = ops.qlinear_conv(x, 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1)
    ref = ops.qlinear_conv(x, 0.1, 0, w.copy(), 0.01, 0, 0.5, np.int8(0), pads=1, algo="reference")
    np.testing.assert_array_equal(y2, ref)
    assert not np.array_equal(y1, y2)


def test_list_kernels_and_isa_info():
    names = [k["name"] for k in npuemu.list_kernels()]
    assert "conv2d_any_reference_scalar" in names and len(names) == len(set(names))
    info = npuemu.isa_info()
    assert info["active"] in info["choices"]


# ---------------------------------------------------------------------------------------------------
# bad input: every case raises a typed exception whose message names the problem


def errors_cases(rng):
    x, w = qconv_args(rng)
    q = lambda **kw: ops.qlinear_conv(**{**dict(x=x, x_scale=0.1, x_zero_point=0, w=w, w_scale=0.01,  # noqa: E731
                                                w_zero_point=0, y_scale=0.5, y_zero_point=np.int8(0)), **kw})
    f16 = np.zeros((1, 16, 10, 10), np.float16)
    return [
        (TypeError, "x must be a numpy.ndarray", lambda: q(x=x.tolist())),
        (TypeError, "x dtype must be one of", lambda: q(x=x.astype(np.float32))),
        (ValueError, "x must be 4-D NCHW, got shape", lambda: q(x=x[0])),
        (ValueError, "w has 16 input channels per group but x has 8 channels", lambda: q(x=x[:, :8].copy())),
        (ValueError, "x must not be empty", lambda: q(x=np.zeros((1, 16, 0, 10), np.int8))),
        (ValueError, "C-contiguous", lambda: q(x=np.asfortranarray(x))),
        (ValueError, "C-contiguous", lambda: q(x=x[:, :, ::2])),
        (ValueError, "pads must be in \\[0, 1048576\\]", lambda: q(pads=(-1, 0, 0, 0))),
        (ValueError, "pads must have 2 .* or 4", lambda: q(pads=(1, 1, 1))),
        (ValueError, "strides must be in \\[1, 1048576\\]", lambda: q(strides=0)),
        (ValueError, "dilations must be in \\[1, 1048576\\]", lambda: q(dilations=(1, 0))),
        (ValueError, "not divisible by group 3", lambda: q(group=3)),
        (ValueError, "larger than the padded input", lambda: q(x=np.zeros((1, 16, 2, 2), np.int8))),
        (ValueError, "core_mask 8 names cores this NPU does not have", lambda: q(core_mask=8)),
        (TypeError, "core_mask must be an int", lambda: q(core_mask="all")),
        (ValueError, "algo must be one of", lambda: q(algo="fast")),
        (ValueError, "rounding must be one of", lambda: q(rounding="nearest")),
        (ValueError, "activation must be", lambda: q(activation="gelu")),
        (ValueError, "y_zero_point 200 is outside the int8 range", lambda: q(y_zero_point=200, y_dtype="int8")),
        (ValueError, "x_zero_point 300 is outside the int8 range", lambda: q(x_zero_point=300)),
        (ValueError, "w_scale must have 1 or 24 .output channels. elements, got 5", lambda: q(w_scale=np.ones(5))),
        (ValueError, "x_scale must be a positive finite float, got -1", lambda: q(x_scale=-1.0)),
        (ValueError, "y_scale must be a positive finite float", lambda: q(y_scale=float("nan"))),
        (ValueError, "bias must have 24 elements", lambda: q(bias=np.zeros(3, np.int32))),
        (TypeError, "bias of an integer convolution must be int32", lambda: q(bias=np.zeros(24, np.float32))),
        (ValueError, "out must have shape", lambda: q(out=np.empty((1, 24, 9, 10), np.int8), pads=1)),
        (TypeError, "out must have dtype int8", lambda: q(out=np.empty((1, 24, 8, 8), np.uint8))),
        (ValueError, "w_dtype='int4' needs every weight in \\[-8, 7\\], got", lambda: q(w_dtype="int4")),
        (ValueError, "too large", lambda: q(x_scale=1e6, y_scale=1e-6)),
        (ValueError, "unknown kernel 'nope'; registered convolution kernels:", lambda: q(kernel="nope")),
        (TypeError, "needs float16 x and w", lambda: ops.conv(f16, w)),
        (TypeError, "bias of a float16 convolution must be float16",
         lambda: ops.conv(f16, w.astype(np.float16), np.zeros(24, np.float32))),
        # the core itself refuses a bias on raw accumulators (the Python API has no such parameter)
        (ValueError, "conv_integer takes no bias",
         lambda: _core.ConvOp([1, 16, 10, 10], "int8", w, "int8", [1, 1], [0, 0, 0, 0], [1, 1], 1, 0, [0],
                              np.zeros(24, np.int32), False, 1.0, [1.0], 1.0, 0, "int32", "fixed_point", "none", 0, 0,
                              0, "auto", "")),
    ]


def test_bad_input_raises_clear_errors(rng):
    for exc, pattern, call in errors_cases(rng):
        with pytest.raises(exc, match=pattern):
            call()


def test_absurd_window_attributes_are_refused_before_any_arithmetic():
    """Attributes are bounded before they enter products (no int64 overflow, no giant allocation)."""
    x = np.zeros((1, 1, 1, 1), np.int8)
    with pytest.raises(ValueError, match=r"kernel_shape must be in \[1, 1048576\]"):
        ops.max_pool(x, 2**32, pads=2**32 - 1)
    with pytest.raises(ValueError, match=r"pads must be in \[0, 1048576\]"):
        ops.conv_integer(x, np.ones((1, 1, 1, 1), np.int8), pads=2**40)
    with pytest.raises(ValueError, match=r"strides must be in \[1, 1048576\]"):
        ops.conv_integer(x, np.ones((1, 1, 1, 1), np.int8), strides=2**62)


@pytest.mark.parametrize("bounds", [(-1.0, float("nan")), (float("nan"), 1.0)])
def test_nan_clip_bounds_are_refused(bounds):
    a = np.array([1, 50, -100], np.int8)
    act = ("clip",) + bounds
    w = np.ones((1, 1, 1, 1), np.int8)
    for call in (lambda: ops.add(a, 0.1, 0, a, 0.1, 0, 0.1, np.int8(0), activation=act),
                 lambda: ops.add(a.astype(np.float16), b=a.astype(np.float16), activation=act),
                 lambda: ops.qlinear_conv(a.reshape(1, 1, 1, 3), 1, 0, w, 1, 0, 1, np.int8(0), activation=act),
                 lambda: ops.conv(a.reshape(1, 1, 1, 3).astype(np.float16), w.astype(np.float16), activation=act)):
        with pytest.raises(ValueError, match="clip bounds must not be NaN"):
            call()
    # infinite bounds stay legal
    ops.add(a, 0.1, 0, a, 0.1, 0, 0.1, np.int8(0), activation=("clip", -float("inf"), float("inf")))


def test_float_rounding_accepts_scales_beyond_the_fixed_point_range():
    """rounding='float' needs no Q31 multiplier, so scales the fixed-point path refuses still run (and
    saturate exactly as onnxruntime's float code does); the fixed-point path names the problem."""
    a = np.array([1, 50, -100, 0, 3], np.int8)
    y = ops.mul(a, 0.5, 0, a, 0.5, 0, 1e-10, np.int8(0), rounding="float")
    assert y.shape == a.shape
    with pytest.raises(ValueError, match="too large"):
        ops.mul(a, 0.5, 0, a, 0.5, 0, 1e-10, np.int8(0))
    x = np.full((1, 1, 4, 4), 5, np.int8)
    assert ops.avg_pool(x, 2, x_scale=1e4, x_zero_point=0, y_scale=1e-6, y_zero_point=0, rounding="float").shape == (
        1, 1, 3, 3)


@pytest.mark.parametrize("tier", ["scalar", "avx2"])
def test_environment_variable_forces_the_kernel_tier(tier):
    """NPUEMU_ISA, read once at import, caps the tier for the whole process (a fresh interpreter)."""
    import os
    import subprocess
    import sys

    if tier not in ["scalar", "avx2", "avx512vnni"][: ["scalar", "avx2", "avx512vnni"].index(
            npuemu.isa_info()["detected"]) + 1]:
        pytest.skip(f"the CPU has no {tier}")
    code = ("import numpy as np, npuemu; from npuemu import ops; "
            "x = np.ones((1, 16, 8, 8), np.int8); w = np.ones((16, 16, 3, 3), np.int8); "
            "op = ops.QLinearConv(x.shape, 'int8', 0.1, 0, w, 0.01, 0, 0.5, np.int8(0), pads=1); "
            "print(npuemu.isa_info()['active'], op.kernel_name, int(op(x)[0, 0, 3, 3]))")
    env = dict(os.environ, NPUEMU_ISA=tier)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    active, kernel, value = out.stdout.split()
    assert active == tier and kernel.endswith("_" + tier)
    assert int(value) == round(144 * 0.1 * 0.01 / 0.5)  # 16 channels x 9 taps of 1 * 1, requantized
