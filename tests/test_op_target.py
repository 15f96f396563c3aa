"""config(op_target={layer: 'cpu' | 'npu'}): a named layer runs on the CPU in float32 (or must run on the NPU).

Oracles: onnxruntime fp32 on the ONNX model; the numpy reference executor of the compiled program
(bit-exactness of the runtime with a CPU layer in the middle of NPU layers). The test model has a layer
of each kind the lowering handles differently: a convolution with a fused activation, a convolution
whose output feeds a lookup table (int16 output stage), the table, a LayerNormalization and a Softmax.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from graph_builders import conv_weights, make_model, run_ort_model
from npuemu import RKNN, RKNNLite
from npuemu.analysis import cosine
from npuemu.compiler import LowerOptions, compile_graph, prepare_graph
from npuemu.frontend import import_onnx
from npuemu.runtime.executor import Runtime
from test_compiled_bitexact import check_program

pytest.importorskip("onnxruntime")


def _model():
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Sigmoid", ["c2"], ["s2"], name="sigmoid2"),
        helper.make_node("LayerNormalization", ["s2", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-5,
                         name="layernorm"),
        helper.make_node("Conv", ["ln", "w3"], ["c3"], name="conv3"),
        helper.make_node("Softmax", ["c3"], ["y"], axis=1, name="softmax"),
    ]
    inits = {"w1": conv_weights(rng, 8, 3), "w2": conv_weights(rng, 8, 8, 1), "w3": conv_weights(rng, 6, 8, 1),
             "gamma": (1 + 0.3 * rng.standard_normal(16)).astype(np.float32),
             "beta": (0.2 * rng.standard_normal(16)).astype(np.float32)}
    return make_model(nodes, {"x": ([1, 3, 16, 16], np.float32)}, ["y"], inits, opset=17)


MODEL = _model()
RNG = np.random.default_rng(3)
SAMPLES = [RNG.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]


def _build(mode: str, targets: "dict | None" = None):
    g = prepare_graph(import_onnx(MODEL))
    calib = [{"x": s} for s in SAMPLES] if mode == "w8a8" else None
    return compile_graph(g, LowerOptions(mode=mode, op_targets=dict(targets or {})), calib, prepared=True)


def _targets(prog, node: str) -> "set[str]":
    """Where the steps computing ``node`` run (conversions excluded)."""
    return {s.target for s in prog.steps if s.name == node and s.kind not in ("cast", "quantize")}


# (mode, layer as the user names it, node it resolves to): node name, output tensor (of conv1: its fused Relu's),
# rknn-toolkit2's name of a tensor's 4-D form
CASES = [(m, name, node) for m in ("w8a8", "float16")
         for name, node in [("conv2", "conv2"), ("s2", "sigmoid2"), ("c2_shape4", "conv2"), ("r1", "conv1")]]


@pytest.mark.parametrize("mode,name,node", CASES, ids=[f"{m}-{n}" for m, n, _ in CASES])
def test_cpu_target_runs_the_layer_on_the_cpu_bit_exactly(mode, name, node):
    base = _build(mode)
    assert _targets(base, node) == {"NPU"}  # so the test can fail: by default the layer is an NPU one
    prog = _build(mode, {name: "cpu"})
    assert _targets(prog, node) == {"CPU"}
    assert {s.kind for s in prog.steps if s.name == node} - {"cast", "quantize"} == {"eval"}
    assert prog.summary()["CPU"] == base.summary()["CPU"] + 1
    assert prog.meta["op_target"] == {name.removesuffix("_shape4"): "cpu"}
    # every other layer keeps its place
    others = {s.name for s in base.steps if s.name != node and s.kind not in ("cast", "quantize")}
    assert all(_targets(prog, n) == _targets(base, n) for n in others)
    if mode == "w8a8":  # (the reference executor is integer-only: float16 is tolerance-checked)
        check_program(prog, [SAMPLES[0]], masks=(1, 7))
    for x in SAMPLES:
        ref = run_ort_model(MODEL, {"x": x})["y"]
        got = Runtime(prog).run([x])[0]
        assert cosine(got, ref) >= (0.999 if mode == "float16" else 0.99)


def test_cpu_layer_computes_in_float32_from_the_stored_input():
    """A convolution op_target puts on the CPU reads its input as the NPU stored it (conv1's output stage,
    int16 since its reader leaves the NPU), dequantized, and computes in float32: its output equals
    onnxruntime's Conv on that input with the model's float weights."""
    from onnx import numpy_helper

    from npuemu.runtime.program import dequantize_f32
    from npuemu.runtime.reference_exec import run_reference_tensors

    prog = _build("w8a8", {"conv2": "cpu"})
    env = run_reference_tensors(prog, [SAMPLES[1]])
    step = next(s for s in prog.steps if s.name == "conv2" and s.kind == "eval")
    assert step.target == "CPU" and prog.tensors[step.outputs[0]].dtype == "float32"
    q = prog.tensors[step.inputs[0]]
    assert q.dtype == "int16"
    x = dequantize_f32(env[step.inputs[0]], q.scale, q.zero_point)
    w2 = next(numpy_helper.to_array(i) for i in MODEL.graph.initializer if i.name == "w2")
    conv = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], {"x": ([1, 8, 16, 16], np.float32)}, ["y"],
                      {"w": w2}, opset=17)
    np.testing.assert_allclose(env[step.outputs[0]], run_ort_model(conv, {"x": x})["y"], rtol=1e-5, atol=1e-5)


def test_npu_target_is_checked():
    base = _build("w8a8")
    prog = _build("w8a8", {"conv2": "npu", "s2": "npu", "r1": "npu"})
    assert [(s.kind, s.name, s.target) for s in prog.steps] == [(s.kind, s.name, s.target) for s in base.steps]
    with pytest.raises(ValueError, match=r"asks for 'y' \(Softmax\) on the NPU, but npuemu runs it on the CPU in "
                                         r"this w8a8 build.*valid for it: 'cpu'"):
        _build("w8a8", {"y": "npu"})
    for mode in ("w8a8", "float16"):  # npuemu runs LayerNormalization on the CPU
        with pytest.raises(ValueError, match=rf"'ln' \(LayerNormalization\) on the NPU.* {mode} build"):
            _build(mode, {"ln": "npu"})
    with pytest.raises(ValueError, match="float32 build .* runs every layer on the CPU"):
        _build("float32", {"conv2": "npu"})
    assert _targets(_build("float32", {"conv2": "cpu"}), "conv2") == {"CPU"}


def test_unknown_or_contradictory_names():
    with pytest.raises(ValueError, match=r"op_target names 2 unknown layer\(s\): 'c1', 'nope'.*accuracy_analysis"):
        _build("w8a8", {"nope": "cpu", "c1": "cpu"})  # c1: conv1's output before the Relu fused into it
    with pytest.raises(ValueError, match=r"names layer 'conv2' twice, as 'c2' \(cpu\) and as 'conv2' \(npu\)"):
        _build("float16", {"c2_shape4": "cpu", "conv2": "npu"})
    with pytest.raises(ValueError, match="target 'gpu' is not supported; valid: cpu, npu"):
        _build("float16", {"conv2": "gpu"})


@pytest.mark.parametrize("quant", [True, False])
def test_facade_export_and_rknnlite(tmp_path, quant, capsys):
    path = tmp_path / "m.onnx"
    path.write_bytes(MODEL.SerializeToString())
    ds = tmp_path / "ds.txt"
    for i, s in enumerate(SAMPLES):
        np.save(tmp_path / f"s{i}.npy", s)
    ds.write_text("\n".join(f"s{i}.npy" for i in range(len(SAMPLES))) + "\n")
    with RKNN() as r:
        assert r.config(op_target={"ln_shape4": "cpu", "conv2": "npu"}) == 0
        assert r.load_onnx(str(path)) == 0
        assert r.build(do_quantization=quant, dataset=str(ds)) == 0
        assert "LayerNormalization" in capsys.readouterr().err  # the build summary lists it among CPU ops
        assert r.export_rknn(str(tmp_path / "m.rknn")) == 0
        assert r.init_runtime() == 0
        want = [r.inference([s], data_format="nchw")[0] for s in SAMPLES]
    lite = RKNNLite()
    assert lite.load_rknn(str(tmp_path / "m.rknn")) == 0 and lite.init_runtime() == 0
    for s, w in zip(SAMPLES, want):
        np.testing.assert_array_equal(lite.inference([s], data_format="nchw")[0], w)
    lite.release()
    with RKNN() as r:
        assert r.config(op_target={"no_such_layer": "cpu"}) == 0
        assert r.load_onnx(str(path)) == 0
        assert r.build(do_quantization=quant, dataset=str(ds)) == -1
        err = capsys.readouterr().err
        assert "E build:" in err and "op_target names 1 unknown layer(s): 'no_such_layer'" in err
        assert r.config(op_target={"conv2": "gpu"}) == -1
        assert "op_target['conv2'] = 'gpu'" in capsys.readouterr().err
