"""The 9 'light' models shipped in the onnx wheel (onnx/backend/test/data/light) through the float path.

1. As the ONNX backend test runs them: input ``arange(n)/n`` (onnx.backend.test.runner), output compared to
   the stored ``light_*_output_0.pb`` with rtol 1e-3, atol 1e-7, before and after the graph passes.
2. Because those models carry constant weights (every weight is ConstantOfShape(0.02), so the stored
   outputs are uniform softmaxes), the same topologies again with seeded random weights and inputs, cut
   before the final Softmax, compared to onnxruntime on the logits, before and after the graph passes.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from npuemu.frontend import import_onnx, passes
from npuemu.reference import run_graph

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
LIGHT = sorted(os.path.basename(p)[: -len(".onnx")] for p in glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx")))


def test_nine_light_models_present():
    assert len(LIGHT) == 9, LIGHT


def _runner_input(graph):
    """The backend runner's dummy input: arange(n)/n in the input's shape, float32."""
    x = graph.values[graph.inputs[0]]
    n = int(np.prod(x.shape))
    return (np.arange(n).reshape(x.shape) / n).astype(np.float32)


@pytest.mark.parametrize("name", LIGHT)
def test_light_model_stored_output(name):
    path = os.path.join(LIGHT_DIR, name + ".onnx")
    expected = numpy_helper.to_array(onnx.load_tensor(os.path.join(LIGHT_DIR, name + "_output_0.pb")))
    g = import_onnx(path)
    feed = {g.inputs[0]: _runner_input(g)}
    got = run_graph(g, feed)[g.outputs[0]]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-7)
    opt = passes.optimize(g)
    assert "BatchNormalization" not in opt.op_types() and "Dropout" not in opt.op_types()
    np.testing.assert_allclose(run_graph(opt, feed)[opt.outputs[0]], expected, rtol=1e-3, atol=1e-7)


def _randomised(model: onnx.ModelProto, rng, max_params: int = 30_000_000) -> "tuple[onnx.ModelProto, str]":
    """The model cut at its logits (the tensor feeding the final Softmax, or the output) with every
    ConstantOfShape weight replaced by a seeded random initializer. Models whose weights exceed
    ``max_params`` (the VGG / AlexNet fully connected layers) are cut at the input of their first Gemm
    instead, to keep the test fast."""
    g = model.graph
    shapes = {
        t.name: tuple(int(d) for d in numpy_helper.to_array(t))
        for t in g.initializer
        if t.data_type == onnx.TensorProto.INT64 and len(t.dims) == 1
    }
    produced = {o: n for n in g.node for o in n.output}
    softmax = [n.input[0] for n in g.node if n.op_type == "Softmax"]
    cut = softmax[-1] if softmax else g.output[0].name

    def needed(out):
        keep, stack, seen = [], [out], set()
        while stack:
            v = stack.pop()
            if v in seen or v not in produced:
                continue
            seen.add(v)
            keep.append(produced[v])
            stack.extend(produced[v].input)
        return keep

    nodes = needed(cut)
    n_params = sum(int(np.prod(shapes[n.input[0]])) for n in nodes if n.op_type == "ConstantOfShape")
    if n_params > max_params:
        cut = [n.input[0] for n in g.node if n.op_type == "Gemm"][0]
        nodes = needed(cut)
    order = {id(n): i for i, n in enumerate(g.node)}
    nodes.sort(key=lambda n: order[id(n)])
    kept, inits = [], []
    for n in nodes:
        if n.op_type == "ConstantOfShape" and n.input[0] in shapes:
            shape = shapes[n.input[0]]
            if len(shape) == 1:  # biases, BN scale/shift/mean/var: positive, O(1)
                w = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
            else:  # conv / fc weights: zero mean, variance 2 / fan_in (He)
                fan_in = int(np.prod(shape[1:]))
                w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
            inits.append(numpy_helper.from_array(w, n.output[0]))
        else:
            kept.append(n)
    used = {i for n in kept for i in n.input}
    inits += [t for t in g.initializer if t.name in used and t.name not in {i.name for i in inits}]
    graph_inputs = [v for v in g.input if v.name in used and v.name not in shapes]
    out = helper.make_tensor_value_info(cut, onnx.TensorProto.FLOAT, None)
    sub = helper.make_graph(kept, g.name, graph_inputs, [out], inits)
    return helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version), cut


@pytest.mark.parametrize("name", LIGHT)
def test_light_topology_random_weights_vs_onnxruntime(name):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(20261121)
    model, logits = _randomised(onnx.load(os.path.join(LIGHT_DIR, name + ".onnx")), rng)
    g = import_onnx(model)
    assert g.outputs == [logits] and "Softmax" not in g.op_types()
    x = rng.uniform(0, 1, size=g.values[g.inputs[0]].shape).astype(np.float32)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ref = sess.run([logits], {g.inputs[0]: x})[0]

    scale = float(np.abs(ref).max())
    assert scale > 0
    for graph in (g, passes.optimize(g)):
        got = run_graph(graph, {g.inputs[0]: x})[logits]
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4 * scale)


# ------------------------------------------------------------------------------------------------------
# synthetic detector / OCR graphs with the op patterns of issue 3 (YOLO heads, DB-style detection, CRNN /
# SVTR-style recognition), vs onnxruntime, before and after the passes


def _yolo_like(rng, opset):
    n = helper.make_node
    f32 = np.float32

    def w(m, c, k):
        return (rng.standard_normal((m, c, k, k)) * np.sqrt(2.0 / (c * k * k))).astype(f32)

    gy, gx = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    grid = np.stack([gx, gy], -1).reshape(1, 1, 8, 8, 2).astype(f32)
    anchors = rng.uniform(10, 40, (1, 3, 1, 1, 2)).astype(f32)
    inits = {
        "w0": w(16, 3, 3),
        "b0": rng.standard_normal(16).astype(f32),
        "w1": w(16, 16, 3),
        "w2": w(27, 32, 1),
        "b2": rng.standard_normal(27).astype(f32),
        "wd": w(64, 32, 1),
        "dfl": np.arange(16, dtype=f32).reshape(1, 16, 1, 1),
        "shape5": np.array([1, 3, 9, 8, 8], np.int64),
        "split": np.array([2, 2, 5], np.int64),
        "two": np.array(2.0, f32),
        "half": np.array(0.5, f32),
        "grid": grid,
        "stride": np.array(8.0, f32),
        "anchors": anchors,
        "out_shape": np.array([1, -1, 9], np.int64),
        "scales": np.array([1, 1, 2, 2], f32),
        "roi": np.zeros(0, f32),
        "dshape": np.array([1, 4, 16, 64], np.int64),
        "dshape2": np.array([4, 16, 64, 1], np.int64),
        "pool_axes": np.array([2, 3], np.int64),
    }
    if opset < 13:
        inits.pop("split")
    split_node = (
        n("Split", ["sig", "split"], ["xy", "wh", "conf"], axis=-1)
        if opset >= 13
        else n("Split", ["sig"], ["xy", "wh", "conf"], axis=-1, split=[2, 2, 5])
    )
    nodes = [
        n("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], strides=[2, 2]),
        n("Sigmoid", ["c0"], ["s0"]),
        n("Mul", ["c0", "s0"], ["a0"]),  # SiLU
        n("MaxPool", ["a0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2]),  # 8x8
        n("Conv", ["p0", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["a1"]),
        n("MaxPool", ["a1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),  # 4x4
        n("Resize", ["p1", "roi", "scales"], ["u1"], mode="nearest"),  # back to 8x8
        n("Concat", ["u1", "p0"], ["cat"], axis=1),  # 32 channels
        n("Conv", ["cat", "w2", "b2"], ["head"]),
        n("Reshape", ["head", "shape5"], ["h5"]),
        n("Transpose", ["h5"], ["ht"], perm=[0, 1, 3, 4, 2]),
        n("Sigmoid", ["ht"], ["sig"]),
        split_node,
        n("Mul", ["xy", "two"], ["xy2"]),
        n("Sub", ["xy2", "half"], ["xy3"]),
        n("Add", ["xy3", "grid"], ["xy4"]),
        n("Mul", ["xy4", "stride"], ["xy5"]),
        n("Mul", ["wh", "two"], ["wh2"]),
        n("Pow", ["wh2", "two"], ["wh3"]),
        n("Mul", ["wh3", "anchors"], ["wh4"]),
        n("Concat", ["xy5", "wh4", "conf"], ["det"], axis=-1),
        n("Reshape", ["det", "out_shape"], ["y"]),
        # YOLOv8 DFL: softmax over 16 bins, expectation by a 1x1 conv with arange weights
        n("Conv", ["cat", "wd"], ["box"]),
        n("Reshape", ["box", "dshape"], ["b4"]),
        n("Softmax", ["b4"], ["bs"], axis=2) if opset >= 13 else n("Transpose", ["b4"], ["bs"], perm=[0, 1, 2, 3]),
        n("Transpose", ["bs"], ["bt"], perm=[0, 2, 1, 3]),
        n("Conv", ["bt", "dfl"], ["dist"]),
        n(
            "ReduceMean",
            ["dist"] + (["pool_axes"] if opset >= 18 else []),
            ["z"],
            keepdims=0,
            **({} if opset >= 18 else {"axes": [2, 3]}),
        ),
    ]
    from graph_builders import make_model

    return make_model(nodes, {"x": ([1, 3, 32, 32], f32)}, ["y", "z"], inits, opset=opset)


def _ocr_like(rng, opset):
    n = helper.make_node
    f32 = np.float32
    c, d = 8, 12
    inits = {
        "w0": (rng.standard_normal((c, 3, 3, 3)) * 0.3).astype(f32),
        "bn_s": rng.uniform(0.5, 1.5, c).astype(f32),
        "bn_b": rng.standard_normal(c).astype(f32),
        "bn_m": rng.standard_normal(c).astype(f32) * 0.1,
        "bn_v": rng.uniform(0.5, 1.5, c).astype(f32),
        "wt": (rng.standard_normal((c, 4, 2, 2)) * 0.3).astype(f32),
        "bt": rng.standard_normal(4).astype(f32),
        "wt2": (rng.standard_normal((4, 1, 2, 2)) * 0.3).astype(f32),
        "wr": (rng.standard_normal((c, c, 4, 1)) * 0.2).astype(f32),
        "sq_axes": np.array([2], np.int64),
        "mm": (rng.standard_normal((c, d)) * 0.3).astype(f32),
        "mb": rng.standard_normal(d).astype(f32),
        "two": np.array(2.0, f32),
        "eps": np.array(1e-5, f32),
        "gamma": rng.uniform(0.5, 1.5, d).astype(f32),
        "beta": rng.standard_normal(d).astype(f32),
        "ln_s": rng.uniform(0.5, 1.5, d).astype(f32),
        "ln_b": rng.standard_normal(d).astype(f32),
        "sqrt2": np.array(np.sqrt(2.0), f32),
        "one": np.array(1.0, f32),
        "halff": np.array(0.5, f32),
        "cls": (rng.standard_normal((d, 7)) * 0.3).astype(f32),
        "rm_axes": np.array([-1], np.int64),
    }
    rm = (
        (lambda x, y: n("ReduceMean", [x, "rm_axes"], [y], keepdims=1))
        if opset >= 18
        else (lambda x, y: n("ReduceMean", [x], [y], axes=[-1], keepdims=1))
    )
    nodes = [
        n("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c0", "bn_s", "bn_b", "bn_m", "bn_v"], ["n0"]),
        n("Relu", ["n0"], ["a0"]),
        # DB-style detection branch: two stride-2 transposed convs and a sigmoid probability map
        n("ConvTranspose", ["a0", "wt", "bt"], ["u0"], strides=[2, 2]),
        n("Relu", ["u0"], ["u1"]),
        n("ConvTranspose", ["u1", "wt2"], ["u2"], strides=[2, 2]),
        n("Sigmoid", ["u2"], ["prob"]),
        # recognition branch: collapse height, sequence of width steps
        n("Conv", ["a0", "wr"], ["r0"]),
        n("Squeeze", ["r0", "sq_axes"], ["seq"]) if opset >= 13 else n("Squeeze", ["r0"], ["seq"], axes=[2]),
        n("Transpose", ["seq"], ["st"], perm=[0, 2, 1]),
        n("MatMul", ["st", "mm"], ["e0"]),
        n("Add", ["e0", "mb"], ["e1"]),
        # LayerNorm spelled out
        rm("e1", "mu"),
        n("Sub", ["e1", "mu"], ["xc"]),
        n("Pow", ["xc", "two"], ["sq"]),
        rm("sq", "var"),
        n("Add", ["var", "eps"], ["ve"]),
        n("Sqrt", ["ve"], ["sd"]),
        n("Div", ["xc", "sd"], ["nz"]),
        n("Mul", ["nz", "gamma"], ["g1"]),
        n("Add", ["g1", "beta"], ["ln1"]),
        # GELU spelled out with Erf
        n("Div", ["ln1", "sqrt2"], ["gd"]),
        n("Erf", ["gd"], ["ge"]),
        n("Add", ["ge", "one"], ["gp"]),
        n("Mul", ["ln1", "gp"], ["gm"]),
        n("Mul", ["gm", "halff"], ["gelu"]),
    ]
    if opset >= 17:
        nodes.append(n("LayerNormalization", ["gelu", "ln_s", "ln_b"], ["ln2"], axis=-1, epsilon=1e-5))
    else:
        nodes.append(n("Identity", ["gelu"], ["ln2"]))
    nodes += [n("MatMul", ["ln2", "cls"], ["logits"]), n("Softmax", ["logits"], ["y"], axis=-1)]
    from graph_builders import make_model

    return make_model(nodes, {"x": ([1, 3, 4, 16], f32)}, ["prob", "y"], inits, opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("kind", ["yolo", "ocr"])
def test_detector_and_ocr_patterns_vs_onnxruntime(kind, opset):
    pytest.importorskip("onnxruntime")
    from graph_builders import run_ort_model

    rng = np.random.default_rng(7)
    model = (_yolo_like if kind == "yolo" else _ocr_like)(rng, opset)
    g = import_onnx(model)
    feeds = {g.inputs[0]: rng.uniform(-1, 1, g.values[g.inputs[0]].shape).astype(np.float32)}
    ref = run_ort_model(model, feeds)
    opt = passes.optimize(g)
    assert "BatchNormalization" not in opt.op_types()
    for graph in (g, opt):
        got = run_graph(graph, feeds)
        for k in ref:
            scale = float(np.abs(ref[k]).max())
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5 * scale, err_msg=k)
