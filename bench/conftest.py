"""Benchmark fixtures: real layer shapes from data files, onnxruntime peers built on the same shapes,
and the CPU's measured multiply-accumulate peaks (one core)."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # numpy's BLAS threads would spin beside the benchmark

import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHAPES_DIR = pathlib.Path(__file__).parent / "shapes"


def load_shapes(net: str) -> list:
    rows = []
    for line in (SHAPES_DIR / f"{net}.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, *vals = line.split()
        ic, oc, kh, kw, stride, pad, h, w, group = (int(v) for v in vals)
        rows.append(dict(net=net, name=name, ic=ic, oc=oc, kh=kh, kw=kw, stride=stride, pad=pad, h=h, w=w, group=group))
    return rows


def macs(s: dict) -> int:
    oh = (s["h"] + 2 * s["pad"] - s["kh"]) // s["stride"] + 1
    ow = (s["w"] + 2 * s["pad"] - s["kw"]) // s["stride"] + 1
    return s["oc"] * oh * ow * (s["ic"] // s["group"]) * s["kh"] * s["kw"]


def ort_session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def ort_conv_model(s: dict, rng, quantized: bool) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    shape = [1, s["ic"], s["h"], s["w"]]
    attrs = dict(kernel_shape=[s["kh"], s["kw"]], strides=[s["stride"]] * 2, pads=[s["pad"]] * 4, group=s["group"])
    wshape = (s["oc"], s["ic"] // s["group"], s["kh"], s["kw"])
    if not quantized:
        w = rng.standard_normal(wshape).astype(np.float32)
        node = helper.make_node("Conv", ["x", "w"], ["y"], **attrs)
        inits = [numpy_helper.from_array(w, "w")]
        xt, yt = TensorProto.FLOAT, TensorProto.FLOAT
    else:
        w = rng.integers(-127, 128, wshape).astype(np.int8)
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
                 numpy_helper.from_array(np.array(3, np.int8), "xz"),
                 numpy_helper.from_array(np.full(s["oc"], 0.01, np.float32), "ws"),
                 numpy_helper.from_array(np.zeros(s["oc"], np.int8), "wz"),
                 numpy_helper.from_array(np.array(0.5, np.float32), "ys"),
                 numpy_helper.from_array(np.array(-2, np.int8), "yz")]
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], **attrs)
        xt, yt = TensorProto.INT8, TensorProto.INT8
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", xt, shape)],
                              [helper.make_tensor_value_info("y", yt, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.fixture(scope="session")
def peaks():
    from npuemu import _core

    return {"int8": _core.measure_peak_gmacs("int8"), "fp32": _core.measure_peak_gmacs("fp32")}
