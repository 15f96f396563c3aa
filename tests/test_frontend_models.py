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
    shapes = {t.name: tuple(int(d) for d in numpy_helper.to_array(t)) for t in g.initializer
              if t.data_type == onnx.TensorProto.INT64 and len(t.dims) == 1}
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
