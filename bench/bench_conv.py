"""Convolution speed on real layer shapes (ResNet-50, MobileNetV2, YOLOv5s at 640x640), batch 1, one
core / one thread, NCHW in and out, weights prepared once: every npuemu dtype and algorithm next to
onnxruntime's fp32 Conv and int8 QLinearConv in the same run.

    python -m pytest bench/bench_conv.py --benchmark-json=bench.json
    python tools/bench_report.py bench.json          # tables for docs/performance.md
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_shapes, macs, ort_conv_model, ort_session
from npuemu import ops

NETS = ["resnet50", "mobilenet_v2", "yolov5s_640"]
SHAPES = [s for net in NETS for s in load_shapes(net)]
VARIANTS = ["ort_fp32", "ort_int8", "int8", "int8_direct", "int8_winograd", "int4", "int16", "fp16", "fp16_direct",
            "fp16_winograd"]


def build(s: dict, variant: str, rng):
    """Returns (callable, kernel name, check) for one variant; check() runs outside the timed region."""
    shape = (1, s["ic"], s["h"], s["w"])
    wshape = (s["oc"], s["ic"] // s["group"], s["kh"], s["kw"])
    conv = dict(strides=s["stride"], pads=s["pad"], group=s["group"])
    if variant.startswith("ort"):
        sess = ort_session(ort_conv_model(s, rng, variant == "ort_int8"))
        x = (rng.integers(-128, 128, shape).astype(np.int8) if variant == "ort_int8"
             else rng.standard_normal(shape).astype(np.float32))
        return (lambda: sess.run(None, {"x": x})), "onnxruntime", None
    algo = {"direct": "direct", "winograd": "winograd"}.get(variant.split("_")[-1], "auto")
    if variant.startswith("fp16"):
        x = rng.standard_normal(shape).astype(np.float16)
        w = rng.standard_normal(wshape).astype(np.float16)
        op = ops.Conv(shape, w, **conv, algo=algo)
        ref = ops.Conv(shape, w, **conv, algo="direct") if algo == "winograd" else None
        y = np.empty(op.output_shape, np.float16)

        def check():
            if ref is not None:  # Winograd within fp16 tolerance of direct
                np.testing.assert_allclose(op(x).astype(np.float32), ref(x).astype(np.float32), rtol=1e-2, atol=5e-2)

        return (lambda: op(x, out=y)), op.kernel_name, check
    if variant == "int16":
        x = rng.integers(-32768, 32768, shape).astype(np.int16)
        w = rng.integers(-32767, 32768, wshape).astype(np.int16)
        op = ops.QLinearConv(shape, "int16", 0.001, 5, w, np.full(s["oc"], 1e-4, np.float32), 0, 30.0,
                             np.int16(-3), **conv)
        y = np.empty(op.output_shape, np.int16)
        return (lambda: op(x, out=y)), op.kernel_name, None
    x = rng.integers(-128, 128, shape).astype(np.int8)
    lim = 8 if variant == "int4" else 128
    w = rng.integers(-lim + 1, lim, wshape).astype(np.int8)
    w_scale = rng.uniform(0.002, 0.02, s["oc"]).astype(np.float32)
    bias = rng.integers(-5000, 5000, s["oc"]).astype(np.int32)
    kw = dict(conv, algo=algo, w_dtype="int4" if variant == "int4" else None)
    op = ops.QLinearConv(shape, "int8", 0.02, 3, w, w_scale, 0, 0.5, np.int8(-2), bias, activation="relu", **kw)
    ref = ops.QLinearConv(shape, "int8", 0.02, 3, w, w_scale, 0, 0.5, np.int8(-2), bias, activation="relu",
                          **dict(kw, algo="direct")) if algo == "winograd" else None
    y = np.empty(op.output_shape, np.int8)

    def check():
        if ref is not None:  # Winograd is bit-identical to direct
            np.testing.assert_array_equal(op(x), ref(x))

    return (lambda: op(x, out=y)), op.kernel_name, check


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("s", SHAPES, ids=lambda s: f"{s['net']}-{s['name']}")
def test_conv(benchmark, s, variant, peaks):
    rng = np.random.default_rng(0)
    is_3x3s1 = s["kh"] == s["kw"] == 3 and s["stride"] == 1 and s["group"] == 1
    if variant.endswith("winograd") and not is_3x3s1:
        pytest.skip("Winograd needs a 3x3 stride-1 dense convolution")
    try:
        fn, kernel, check = build(s, variant, rng)
    except ValueError as e:  # e.g. no Winograd kernel on this ISA
        pytest.skip(str(e))
    if check is not None:
        check()
    benchmark.group = f"{s['net']}-{s['name']}"
    benchmark(fn)
    m = macs(s)
    benchmark.extra_info.update(net=s["net"], layer=s["name"], variant=variant, kernel=kernel, macs=m,
                                shape=f"{s['ic']}->{s['oc']} {s['kh']}x{s['kw']}/{s['stride']} @{s['h']}x{s['w']}",
                                gmacs=m / benchmark.stats.stats.min / 1e9, peak_int8_gmacs=peaks["int8"],
                                peak_fp32_gmacs=peaks["fp32"])
