"""The runtime's one-pass input step, _core.normalize_store, against the numpy path it replaces
(host.normalize then host.store: float32 ``(x - mean) / std`` per channel, then program.quantize_f32 or
numpy's float16 / float32 cast), bit for bit, on every ISA tier; its argument checks; and a compiled model
run with the fast path and with the numpy path forced.

The oracle is numpy's own arithmetic (np.subtract / np.true_divide / np.rint / np.clip and numpy's
float32 -> float16 cast), the code the runtime ran before and the reference executor still runs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import npuemu
from conftest import available_isas
from npuemu import _core
from npuemu.runtime import host
from npuemu.runtime.program import TensorSpec

F32 = np.float32
OUTS = [("int8", 0.0157, -3), ("int16", 0.00123, 211), ("float16", None, None), ("float32", None, None)]
MEAN_STD = [
    ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),  # ImageNet: every division inexact
    (None, None),
    (127.5, None),
    (None, (3.0, 7.0, 0.1)),
    ([0.5], [255.0]),  # one value given as a one-element list
    ((1.0, -2.0, 3.5), 128.0),
    (0.0, 1.0),  # x - 0 and x / 1 still run (they quiet a signalling NaN)
]


def numpy_path(x, mean, std, dtype, scale=None, zp=None):
    out = np.empty(np.shape(x), dtype)
    with np.errstate(all="ignore"):  # NaN / inf inputs warn in numpy; the core computes silently
        host.store(host.normalize(x, mean, std), TensorSpec("t", out.shape, np.dtype(dtype).name, scale, zp), out)
    return out


def fast_path(x, mean, std, dtype, scale=None, zp=None):
    out = np.full(np.shape(x), 77, dtype)
    m = None if mean is None else np.asarray(mean, F32).reshape(-1)
    s = None if std is None else np.asarray(std, F32).reshape(-1)
    _core.normalize_store(x, m, s, None if scale is None else float(np.float32(scale)), zp, out)
    return out


def assert_bits(got, want, what=""):
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape, want.dtype, want.shape)
    u = np.dtype(f"u{got.itemsize}")
    g, w = got.reshape(-1).view(u), want.reshape(-1).view(u)
    bad = np.flatnonzero(g != w)
    if bad.size:
        k = int(bad[0])
        raise AssertionError(f"{what}: {bad.size} of {g.size} elements differ, first at flat index {k}: got "
                             f"{got.reshape(-1)[k]!r} ({g[k]:#x}), numpy {want.reshape(-1)[k]!r} ({w[k]:#x})")


def check(x, mean, std, out, scale, zp, what=""):
    assert_bits(fast_path(x, mean, std, out, scale, zp), numpy_path(x, mean, std, out, scale, zp), what)


@pytest.fixture(params=available_isas())
def isa(request, isa_cap):
    isa_cap(request.param)
    assert npuemu.isa_info()["active"] == request.param
    return request.param


def bits(u32) -> np.ndarray:
    return np.array(u32, np.uint32).view(F32)


# special float32 values: NaNs (quiet, signalling, negative, payloads that vanish in float16), infinities,
# signed zeros, subnormals, the float16 boundaries (65504, the 65520 tie to inf, 2^-24, the 2^-25 tie to 0)
SPECIAL = np.concatenate([
    bits([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000, 0x7F801FFF, 0x7FBFFFFF, 0x7FFFFFFF,
          0x7FC00001, 0x7F802000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000]),
    np.array([np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e30, -1e30, 65504, 65519.996, 65520, -65520, 65536,
              2.0**-24, 2.0**-25, 3 * 2.0**-25, 2.0**-14, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 2.0**31, -2.0**31,
              1e-45, 0.5, -0.5, 1.5, 2.5, -2.5], F32),
])


@pytest.mark.parametrize("out, scale, zp", OUTS)
@pytest.mark.parametrize("mean, std", MEAN_STD)
def test_random_float32_and_uint8(isa, out, scale, zp, mean, std):
    rng = np.random.default_rng(5)
    # spatial sizes around the vector widths (8, 16 lanes): full vectors and every tail length
    for shape in [(1, 3, 48, 192), (2, 3, 5, 7), (1, 3, 1, 1), (1, 3, 17), (3, 3, 31, 1), (1, 3, 2, 2, 9)]:
        xf = (rng.standard_normal(shape) * 300).astype(F32)
        xu = rng.integers(0, 256, shape).astype(np.uint8)
        check(xf, mean, std, out, scale, zp, f"{isa} float32 {shape}")
        check(xu, mean, std, out, scale, zp, f"{isa} uint8 {shape}")


@pytest.mark.parametrize("out, scale, zp", OUTS)
@pytest.mark.parametrize("mean, std", MEAN_STD)
def test_special_values(isa, out, scale, zp, mean, std):
    # every special value in every channel and at every lane position of a vector and its tail
    v = np.tile(SPECIAL, 3 * 7)[: 3 * 5 * 41]
    x = np.ascontiguousarray(v.reshape(1, 3, 5, 41))
    check(x, mean, std, out, scale, zp, f"{isa} specials")
    check(np.ascontiguousarray(x[:, :, :, ::-1]), mean, std, out, scale, zp, f"{isa} specials reversed")


def test_float16_nan_is_numpys(isa):
    """A signalling NaN copied without arithmetic keeps numpy's float16 bits (not vcvtps2ph's quiet NaN)."""
    x = bits([0x7F800001, 0xFF800001, 0x7FA00000, 0x7FC00000, 0x7F802000, 0xFFFFFFFF] * 3).reshape(1, 18)
    got = fast_path(x, None, None, "float16")
    assert [hex(h) for h in got.view(np.uint16)[0, :6]] == ["0x7c01", "0xfc01", "0x7d00", "0x7e00", "0x7c01",
                                                            "0xffff"]
    assert_bits(got, numpy_path(x, None, None, "float16"))


@pytest.mark.parametrize("out, lo, hi", [("int8", -128, 127), ("int16", -32768, 32767)])
@pytest.mark.parametrize("zp", [0, 7, -100])
def test_quantization_ties_and_clip(isa, out, lo, hi, zp):
    """Values on the .5 ties of the grid (round half to even), around the clip bounds and far beyond."""
    rng = np.random.default_rng(9)
    scale = 2.0**-3  # with std 2 and mean 0.5: (x - 0.5) / 2 / 2^-3 exact, so k + 0.5 stays a tie
    k = np.arange(lo - zp - 6, hi - zp + 6) if out == "int8" else rng.integers(lo - zp - 6, hi - zp + 6, 3000)
    q = np.concatenate([k + 0.5, k - 0.5, k + 0.25, k, k + 0.5 - 2.0**-10])
    x = (q * scale * 2.0 + 0.5).astype(F32)
    x = np.concatenate([x, SPECIAL])
    x = np.ascontiguousarray(np.resize(x, (1, 1, x.size)))
    got = fast_path(x, 0.5, 2.0, out, scale, zp)
    assert_bits(got, numpy_path(x, 0.5, 2.0, out, scale, zp), f"{isa} ties")
    # the ties went to even, the ends saturated (a check of the oracle's own meaning)
    assert got[0, 0, 0] == max(lo, min(hi, int(np.rint(k[0] + 0.5)) + zp))
    assert got.min() == lo and got.max() == hi


@pytest.mark.parametrize("out, zp", [("int8", -128), ("int8", 127), ("int16", -32768), ("int16", 32767)])
def test_large_quotients_extreme_zero_points(isa, out, zp):
    """Quotients around and beyond 2^23 (where every float32 is an integer) up to the float32 maximum, both
    signs, with the zero points at the ends of the dtype: they saturate on the right side."""
    e = np.arange(-2, 104, dtype=F32)
    mag = np.concatenate([2.0**e, 2.0**e * 1.5, np.nextafter(2.0**e, 0), np.nextafter(2.0**e, np.inf),
                          [3.4028235e38, 8388607.5, 8388608.5, 4194303.5, 32767.5, 32768.5]]).astype(F32)
    x = np.ascontiguousarray(np.concatenate([mag, -mag]).reshape(1, 1, -1))
    for scale in (1.0, 0.5, 3.0):
        check(x, None, None, out, scale, zp, f"{isa} large {out} {zp}")


def test_uint8_every_value_every_std(isa):
    """All 256 uint8 values through per-channel mean / std values that make each division inexact."""
    rng = np.random.default_rng(3)
    x = np.tile(np.arange(256, dtype=np.uint8), (2, 4, 3)).reshape(2, 4, 3, 256)
    for _ in range(4):
        mean = rng.uniform(0, 255, 4).astype(F32)
        std = rng.uniform(0.01, 100, 4).astype(F32)
        for out, scale, zp in OUTS + [("int8", 0.0039, -128), ("int16", 3.1e-5, 0)]:
            check(x, mean, std, out, scale, zp, f"{isa} uint8 sweep {out}")


@pytest.mark.parametrize("out, scale, zp", OUTS)
def test_zero_std_and_zero_scale(isa, out, scale, zp):
    """x / 0 is +-inf, 0 / 0 NaN (-> the zero point, or NaN in float16 / float32), and scale 0 saturates."""
    x = np.array([[-1, 0, 1, 2, 3, 4, 5, np.nan, np.inf]], F32).repeat(3, 0).reshape(1, 3, 9)
    check(x, (0.0, 1.0, 2.0), (0.0, 0.0, 1.0), out, scale, zp, f"{isa} zero std")
    if scale is not None:
        check(x, None, None, out, 0.0, zp, f"{isa} zero scale")
        check(x, None, None, out, -scale, zp, f"{isa} negative scale")


@pytest.mark.parametrize("out, scale, zp", OUTS)
def test_ranks(isa, out, scale, zp):
    """Rank 0 / 1 take one mean / std for the whole tensor; rank 2 / 3 one per channel on axis 1, as
    normalize() does; per-tensor values with several channels; an empty tensor."""
    rng = np.random.default_rng(1)
    check(np.array(3.75, F32), 1.5, 0.3, out, scale, zp, "rank 0")
    check(rng.standard_normal(37).astype(F32), [1.5], 0.3, out, scale, zp, "rank 1")
    check(rng.standard_normal((5, 3)).astype(F32), (0.1, 0.2, 0.3), (1.0, 3.0, 7.0), out, scale, zp, "rank 2")
    check(rng.standard_normal((2, 3, 19)).astype(F32), (0.1, 0.2, 0.3), 3.0, out, scale, zp, "rank 3")
    check(rng.standard_normal((2, 1, 19)).astype(F32), 0.1, (3.0,), out, scale, zp, "one channel")
    check(np.zeros((1, 3, 0, 4), F32), (0.1, 0.2, 0.3), (1.0, 3.0, 7.0), out, scale, zp, "empty")


def test_bad_arguments():
    x = np.zeros((1, 3, 4, 4), F32)
    out = np.zeros((1, 3, 4, 4), np.int8)
    m3 = np.zeros(3, F32)

    def call(x=x, mean=m3, std=None, scale=0.5, zp=0, out=out):
        _core.normalize_store(x, mean, std, scale, zp, out)

    call()
    cases = [
        (TypeError, "x must be float32 or uint8, got float64", dict(x=x.astype(np.float64))),
        (TypeError, "x must be float32 or uint8, got int8", dict(x=x.astype(np.int8))),
        (TypeError, "x must be float32 or uint8, got >f4", dict(x=x.astype(">f4"))),
        (TypeError, "out must be int8, int16, float16 or float32, got uint8", dict(out=out.view(np.uint8))),
        (ValueError, "x has shape (1, 3, 4, 4), out (1, 3, 16)", dict(out=out.reshape(1, 3, 16))),
        (ValueError, "x and out must be C-contiguous", dict(x=np.zeros((1, 3, 4, 8), F32)[..., ::2])),
        (ValueError, "x and out must be C-contiguous", dict(out=np.zeros((1, 3, 4, 8), np.int8)[..., ::2])),
        (ValueError, "mean has 2 values; x of shape (1, 3, 4, 4) takes 1 or 3 (one per channel)",
         dict(mean=np.zeros(2, F32))),
        (ValueError, "std has 3 values; x of shape (48,) takes 1",
         dict(x=np.zeros(48, F32), out=np.zeros(48, np.int8), mean=None, std=m3)),
        (TypeError, "mean must be float32, got float64", dict(mean=np.zeros(3))),
        (TypeError, "std must be None or a float32 array", dict(std=[1.0, 2.0, 3.0])),
        (ValueError, "an int8 out needs scale and zero_point", dict(scale=None)),
        (ValueError, "an int8 out needs scale and zero_point", dict(zp=None)),
        (TypeError, "zero_point must be an int, got float", dict(zp=1.0)),
        (TypeError, "scale must be a float, got str", dict(scale="0.5")),
        (ValueError, "zero_point 128 is outside the range of int8 [-128, 127]", dict(zp=128)),
        (ValueError, "scale and zero_point apply to int8 / int16 outputs only (out is float16)",
         dict(out=np.zeros(x.shape, np.float16))),
        (ValueError, "out must not overlap x", dict(out=x)),
    ]
    for exc, msg, kw in cases:
        with pytest.raises(exc, match=re.escape(msg)):
            call(**kw)
    ro = np.zeros_like(out)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writable"):
        call(out=ro)


# --- the runtime: a compiled model, fast path against the numpy path ----------------------------------------


def _compiled(mode, mean, std, h=12, w=20):
    from graph_builders import conv_weights, make_model
    from npuemu.compiler import LowerOptions, compile_graph
    from npuemu.frontend import import_onnx
    from onnx import helper

    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("GlobalAveragePool", ["r1"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"], axis=-1)]
    inits = {"w1": conv_weights(rng, 8, 3), "b1": rng.standard_normal(8).astype(F32) * 0.1,
             "w2": rng.standard_normal((4, 8)).astype(F32), "b2": np.zeros(4, F32)}
    g = import_onnx(make_model(nodes, {"x": ([1, 3, h, w], F32)}, ["y", "c1"], inits))
    calib = [{"x": ((rng.uniform(0, 255, (1, 3, h, w)) - 127) / 60).astype(F32)} for _ in range(2)]
    opts = LowerOptions(mode=mode, means=[None if mean is None else np.array(mean, F32)],
                        stds=[None if std is None else np.array(std, F32)])
    return compile_graph(g, opts, calib, 2)


@pytest.mark.parametrize("mode", ["w8a8", "float16", "float32"])
@pytest.mark.parametrize("mean, std", [((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)), (127.0, 64.0),
                                       (None, None)])
def test_runtime_fast_input_equals_numpy_path(monkeypatch, mode, mean, std):
    from npuemu.runtime import executor
    from npuemu.runtime.executor import Runtime

    prog = _compiled(mode, mean, std)
    in_dtype = prog.tensors[prog.steps[0].outputs[0]].dtype
    assert prog.steps[0].kind == "input"
    calls = []
    core_fn = _core.normalize_store

    def counting(*a):
        calls.append((a[-1].dtype, a[-1].shape))
        return core_fn(*a)

    rng = np.random.default_rng(8)
    xs = [rng.uniform(0, 255, (1, 3, 12, 20)).astype(F32), rng.integers(0, 256, (1, 3, 12, 20)).astype(np.uint8),
          np.full((1, 3, 12, 20), np.nan, F32), np.full((1, 3, 12, 20), -np.inf, F32)]
    monkeypatch.setattr(executor._core, "normalize_store", counting, raising=True)
    fast = Runtime(prog)
    got = [fast.run([x]) for x in xs]
    # the input step took the core (so did the stores of the CPU-fallback Softmax / quantize / cast steps)
    assert calls.count((np.dtype(in_dtype), (1, 3, 12, 20))) == len(xs)
    n = len(calls)
    monkeypatch.setattr(host, "normalize_store_args", lambda *a: None)
    slow = Runtime(prog)
    want = [slow.run([x]) for x in xs]
    assert len(calls) == n  # the numpy path did not call the core
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert_bits(a, b, f"{mode} {in_dtype}")
    # inputs the fast path does not take run the numpy path: float64, non-contiguous, another shape
    calls.clear()
    x64 = rng.uniform(0, 255, (1, 3, 12, 20))
    for x in (x64, np.asfortranarray(x64.astype(F32))):
        for a, b in zip(fast.run([x]), slow.run([x])):
            assert_bits(a, b, "fallback")
    assert (np.dtype(in_dtype), (1, 3, 12, 20)) not in calls
