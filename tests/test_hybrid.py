"""Hybrid quantization (float16 layers inside a w8a8 build), accuracy analysis and the two-step cfg flow.

Oracle: onnxruntime fp32 on the ONNX model (and numpy float64 cosines). The test model is made so that
per-tensor int8 fails: a convolution whose 16 output channels span three decades feeds a depthwise
convolution that rescales them, so int8 activations after the first convolution keep only the large
channels (output cosine about 0.9 against onnxruntime); float16 for the depthwise layer and its input's
producer brings it back above 0.999.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from onnx import helper

from graph_builders import conv_weights, make_model, run_ort_model
from npuemu import RKNN
from npuemu.analysis import cosine, layer_errors
from npuemu.compiler import LowerOptions, calibrate, prepare_graph
from npuemu.compiler.hybrid import CfgError, auto_hybrid, read_cfg, write_cfg
from npuemu.compiler.lower import lower
from npuemu.frontend import import_onnx
from npuemu.runtime.executor import Runtime

pytest.importorskip("onnxruntime")


def outlier_model(seed: int = 0):
    rng = np.random.default_rng(seed)
    gain = np.geomspace(1.0, 1000.0, 16).astype(np.float32)
    w1 = conv_weights(rng, 16, 3) * gain[:, None, None, None]
    dw = (rng.standard_normal((16, 1, 3, 3)) / 3).astype(np.float32) / gain[:, None, None, None]
    w3 = conv_weights(rng, 8, 16, 1)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("HardSwish", ["c1"], ["h1"], name="hswish1"),
        helper.make_node("Conv", ["h1", "dw"], ["c2"], pads=[1, 1, 1, 1], group=16, name="dwconv"),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="pwconv"),
        helper.make_node("Relu", ["c3"], ["y"], name="relu"),
    ]
    return make_model(nodes, {"x": ([1, 3, 16, 16], np.float32)}, ["y"], {"w1": w1, "dw": dw, "w3": w3}, opset=14)


@pytest.fixture(scope="module")
def model():
    return outlier_model()


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(1)
    return [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]


@pytest.fixture(scope="module")
def compiled(model, inputs):
    g = prepare_graph(import_onnx(model))
    return g, calibrate(g, [{"x": x} for x in inputs])


def _worst_cos(prog, model, inputs) -> float:
    rt = Runtime(prog, core_mask=1)
    return min(cosine(rt.run([x])[0], run_ort_model(model, {"x": x})["y"]) for x in inputs)


def _kinds(prog) -> "list[str]":
    return [f"{s.kind}:{prog.tensors[s.outputs[0]].dtype}" for s in prog.steps if s.outputs and s.outputs[0]]


def test_float16_layers_fix_the_int8_loss(model, inputs, compiled):
    g, ranges = compiled
    plain = lower(g, LowerOptions(mode="w8a8"), ranges)
    assert _worst_cos(plain, model, inputs) < 0.95  # the model does defeat per-tensor int8
    # the depthwise layer alone in float16 does not help: its input was already quantized to int8
    dw_only = lower(g, LowerOptions(mode="w8a8", layer_modes={"dwconv": "float16"}), ranges)
    assert "conv:float16" in _kinds(dw_only) and _worst_cos(dw_only, model, inputs) < 0.95
    # with its input's producer (the HardSwish table, named by its output tensor) in float16 as well
    both = lower(g, LowerOptions(mode="w8a8", layer_modes={"dwconv": "float16", "h1": "float16"}), ranges)
    kinds = _kinds(both)
    # conv1 keeps int8 weights and writes int16 (read by a float16 layer), the table and the depthwise
    # convolution are float16, the result is quantized back to int8 for the int8 pointwise convolution
    assert kinds == ["input:int8", "conv:int16", "cast:float16", "lut:float16", "conv:float16", "quantize:int8",
                     "conv:int16", "output:float32"], kinds
    assert _worst_cos(both, model, inputs) > 0.999
    assert both.meta["layer_modes"] == {"dwconv": "float16", "h1": "float16"}


def test_conversions_between_int_and_float16_layers_are_the_numpy_path_bit_for_bit(model, inputs, compiled):
    """The casts int8 / int16 -> float16 and the quantizations float16 -> int8 / int16 at the borders of the
    float16 layers run as lookups through tables of the numpy path's own results: every step's output, from
    its input as the run left it, equals that numpy path (``dequantize_f32`` / ``quantize_f32``) bit for bit."""
    from npuemu.runtime.program import dequantize_f32, quantize_f32

    g, ranges = compiled
    # h1 in float16 alone: conv1's int16 output is cast to float16, h1 quantized to int8 for the int8 dwconv;
    # dwconv and pwconv in float16 as well: c1 -> float16 casts, c3 (read by the fused relu of an int8 step)
    modes = [{"h1": "float16"}, {"dwconv": "float16", "h1": "float16"}, {"dwconv": "float16"},
             {"pwconv": "float16"}]
    seen = set()
    for lm in modes:
        prog = lower(g, LowerOptions(mode="w8a8", layer_modes=lm), ranges)
        rt = Runtime(prog, core_mask=1, keep_all=True)
        for x in inputs[:2]:
            rt.run([x])
            for s in prog.steps:
                if s.kind not in ("cast", "quantize"):
                    continue
                xs, ys = prog.tensors[s.inputs[0]], prog.tensors[s.outputs[0]]
                a, y = rt.tensor(s.inputs[0]), rt.tensor(s.outputs[0])
                if s.kind == "cast" and xs.quantized:
                    want = dequantize_f32(a, xs.scale, xs.zero_point, out=np.empty(y.shape, y.dtype))
                elif s.kind == "quantize" and a.dtype == np.float16:
                    want = quantize_f32(a.astype(np.float32), ys.scale, ys.zero_point, dtype=y.dtype)
                else:
                    continue
                seen.add(f"{s.kind}:{xs.dtype}->{ys.dtype}")
                assert want.dtype == y.dtype and np.array_equal(want.view(np.uint8), y.view(np.uint8)), s.name
    assert {"cast:int16->float16", "cast:int8->float16", "quantize:float16->int8"} <= seen, seen


@pytest.mark.parametrize("src,dst", [("int8", "float16"), ("int16", "float16"), ("float16", "int8"),
                                     ("float16", "int16")])
@pytest.mark.parametrize("scale,zp", [(0.0173, -5), (3.1e-5, 77), (250.0, 0)])
def test_conversion_tables_cover_every_value(src, dst, scale, zp):
    """Every stored value (float16: NaN, infinities, subnormals and -0 included) through the runtime's
    conversion table equals the numpy path, for scales from tiny (int16 -> float16 subnormals) to large
    (float16 overflow to inf, saturation)."""
    from npuemu import _core
    from npuemu.runtime.executor import _table
    from npuemu.runtime.program import codes, dequantize_f32, quantize_f32

    if dst == "float16":
        x = codes(src)
        zp = int(np.clip(zp, np.iinfo(src).min, np.iinfo(src).max))
        f = lambda v: dequantize_f32(v, scale, zp, out=np.empty(v.shape, np.float16))  # noqa: E731
    else:
        x = codes(src)
        zp = int(np.clip(zp, np.iinfo(dst).min, np.iinfo(dst).max))
        f = lambda v: quantize_f32(v.astype(np.float32), scale, zp, dtype=np.dtype(dst))  # noqa: E731
    rng = np.random.default_rng(0)
    x = np.concatenate([x, rng.permutation(x)])  # every value, then every value in a random order
    y = np.empty(x.shape, dst)
    with np.errstate(all="ignore"):
        _core.lookup_table(_table(src, f), x, y)
        want = f(x)
    assert np.array_equal(want.view(np.uint8), y.view(np.uint8))
    if dst == "float16" and scale == 250.0 and src == "int16":
        assert np.isinf(y).any()  # the overflow case is exercised


def test_every_layer_float16_matches_a_float16_build(model, inputs, compiled):
    g, ranges = compiled
    every = {n.name: "float16" for n in g.nodes}
    hyb = lower(g, LowerOptions(mode="w8a8", layer_modes=every), ranges)
    fp16 = lower(g, LowerOptions(mode="float16"), None)
    a, b = Runtime(hyb), Runtime(fp16)
    for x in inputs:
        # the only difference: the hybrid program reads its input as int8 (the build is w8a8) and casts
        assert cosine(a.run([x])[0], b.run([x])[0]) > 0.9999


def test_layer_mode_errors(compiled):
    g, ranges = compiled
    with pytest.raises(ValueError, match=r"unknown layer.*'nope'.*accuracy_analysis lists"):
        lower(g, LowerOptions(mode="w8a8", layer_modes={"nope": "float16"}), ranges)
    with pytest.raises(ValueError, match=r"'int16' is not supported; valid: float16, int8"):
        lower(g, LowerOptions(mode="w8a8", layer_modes={"dwconv": "int16"}), ranges)
    with pytest.raises(ValueError, match="apply to w8a8 builds"):
        lower(g, LowerOptions(mode="float16", layer_modes={"dwconv": "float16"}), None)
    # 'int8' is the default and changes nothing
    p = lower(g, LowerOptions(mode="w8a8", layer_modes={"dwconv": "int8"}), ranges)
    assert "conv:float16" not in _kinds(p)


def test_layer_errors_single_points_at_the_depthwise_layer(model, inputs, compiled):
    g, ranges = compiled
    prog = lower(g, LowerOptions(mode="w8a8"), ranges)
    x = inputs[0]
    rows, gold, sim = layer_errors(g, prog, [x], {"x": x})
    by = {r.name: r for r in rows}
    assert set(by) == {"c1", "h1", "c2", "y"}
    # the golden values are the float32 reference graph: onnxruntime agrees
    assert np.allclose(gold["y"], run_ort_model(model, {"x": x})["y"], rtol=1e-4, atol=1e-4)
    # the program's output is what inference returns
    assert cosine(sim["y"], Runtime(prog).run([x])[0]) > 0.999999
    # entire == single for the first layer (it reads the real input); the depthwise layer's own error
    # (it reads int8 activations) is the worst; later layers fed golden inputs are better than entire
    assert by["c1"].single_cos == pytest.approx(by["c1"].entire_cos)
    worst = min(rows, key=lambda r: r.single_cos)
    assert worst.name == "c2" and worst.single_cos < 0.95
    assert by["y"].single_cos > by["y"].entire_cos
    assert by["y"].entire_cos == pytest.approx(cosine(sim["y"], gold["y"]))
    assert by["y"].entire_euc == pytest.approx(float(np.linalg.norm(sim["y"].astype(np.float64) - gold["y"])))


def test_auto_hybrid_reaches_the_threshold(model, inputs, compiled):
    g, ranges = compiled
    samples = [([x], {"x": x}) for x in inputs]
    logs = []
    prog, chosen, rows = auto_hybrid(g, LowerOptions(mode="w8a8"), ranges, samples, 0.99, log=logs.append)
    assert "dwconv" in chosen and "hswish1" in chosen  # the layer and the producer of its input
    assert _worst_cos(prog, model, inputs) >= 0.99
    # the first round suffices: the layers under the threshold and the producers of their inputs
    assert len(logs) == 1 and "layers in float16" in logs[0], logs
    # a model int8 already serves: nothing moves
    easy = {n.name for n in g.nodes}
    _, none, _ = auto_hybrid(g, LowerOptions(mode="w8a8"), ranges, samples, 0.5)
    assert none == {} and easy


def test_auto_hybrid_euclidean_threshold(model, inputs, compiled):
    g, ranges = compiled
    samples = [([x], {"x": x}) for x in inputs]

    def worst_euc(prog):
        rt = Runtime(prog, core_mask=1)
        return max(float(np.linalg.norm(rt.run([x])[0].astype(np.float64) - run_ort_model(model, {"x": x})["y"]))
                   for x in inputs)

    plain = lower(g, LowerOptions(mode="w8a8"), ranges)
    assert worst_euc(plain) > 15  # the int8 loss, in the output's units
    # the cosine threshold alone (0.5) moves nothing; a Euclidean threshold of 10 then decides alone
    logs = []
    prog, chosen, rows = auto_hybrid(g, LowerOptions(mode="w8a8"), ranges, samples, 0.5, log=logs.append,
                                     euc_thresh=10.0)
    assert {"dwconv", "hswish1"} <= set(chosen), chosen
    assert worst_euc(prog) < 10 and _worst_cos(prog, model, inputs) > 0.999
    assert "Euclidean threshold 10" in logs[-1], logs
    # the distance is absolute, as in rknn-toolkit2: with 50, the first convolution (outputs up to ~1e3,
    # single cosine 0.99995 but distance ~290) and the producer-side table move, the depthwise layer
    # (distance ~27) stays, and the output (distance ~20 < 50) passes
    by = {r.node: r for r in rows}
    assert by["conv1"].single_cos > 0.999 and by["conv1"].single_euc > 50 > by["dwconv"].single_euc
    _, chosen50, _ = auto_hybrid(g, LowerOptions(mode="w8a8"), ranges, samples, 0.5, euc_thresh=50.0)
    assert set(chosen50) == {"conv1", "hswish1"}, chosen50
    # a threshold nothing exceeds moves nothing
    _, none, _ = auto_hybrid(g, LowerOptions(mode="w8a8"), ranges, samples, 0.5, euc_thresh=1e9)
    assert none == {}


# --- the cfg file -------------------------------------------------------------------------------------


def test_cfg_round_trip_and_yaml_agreement(tmp_path, compiled):
    g, ranges = compiled
    path = tmp_path / "m.quantization.cfg"
    names = ["c1", "h1", "c2", "y"]
    layers = {"dwconv": "float16", "odd: name #1": "float16"}
    write_cfg(path, layers, ranges, names)
    got_layers, got_ranges = read_cfg(path)
    assert got_layers == layers
    assert set(got_ranges) == set(names)
    for t in names:
        assert got_ranges[t] == pytest.approx(ranges.get8(t), rel=0, abs=0)
    yaml = pytest.importorskip("yaml")  # an independent reader of the same text
    doc = yaml.safe_load(path.read_text())
    assert doc["custom_quantize_layers"] == layers
    for t in names:
        p = doc["quantize_parameters"][t]
        assert (p["min"][0], p["max"][0]) == got_ranges[t]
        assert p["dtype"] == "int8" and p["qmethod"] == "layer"
    # empty layers are written as {}
    write_cfg(path, {}, ranges, names)
    assert read_cfg(path)[0] == {}
    assert yaml.safe_load(path.read_text())["custom_quantize_layers"] == {}


@pytest.mark.parametrize(
    "text,msg",
    [
        ("custom_quantize_layers:\n\tx: float16\n", "tabs"),
        ("custom_quantize_layers:\n    x float16\n", r":2: expected 'name: value'"),
        ("layers:\n    x: float16\n", "unknown section"),
        ("custom_quantize_layers:\n    x: float16\n    x: float16\n", "given twice"),
        ("quantize_parameters:\n    t:\n        min: [1.0]\n", "needs min and max"),
        ("quantize_parameters:\n    t:\n        min: [2.0]\n        max: [1.0]\n", "min 2.0 > max 1.0"),
        ("quantize_parameters:\n    t:\n        min: [a]\n        max: [1.0]\n", "lists hold numbers"),
        ("quantize_parameters:\n    t:\n        min: [0, 1]\n        max: [1, 2]\n", "one-element lists"),
        ("quantize_parameters:\n    t:\n        dtype: int16\n        min: [0]\n        max: [1]\n", "only int8"),
        ('custom_quantize_layers:\n    "unterminated: float16\n', "expected ':'"),
    ],
)
def test_bad_cfg_files_name_the_problem(tmp_path, text, msg):
    p = tmp_path / "bad.cfg"
    p.write_text(text)
    with pytest.raises(CfgError, match=msg):
        read_cfg(p)


# --- the RKNN facade ------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, model, inputs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outlier.onnx").write_bytes(model.SerializeToString())
    lines = []
    for i, x in enumerate(inputs):
        np.save(tmp_path / f"s{i}.npy", x)
        lines.append(f"s{i}.npy")
    (tmp_path / "dataset.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def _rknn(project):
    r = RKNN()
    assert r.config(target_platform="rk3588") == 0
    assert r.load_onnx(str(project / "outlier.onnx")) == 0
    return r


def _err(capsys) -> str:
    c = capsys.readouterr()
    return c.out + c.err


def test_build_auto_hybrid_via_the_facade(project, model, inputs, capsys):
    r = _rknn(project)
    assert r.config(target_platform="rk3588", auto_hybrid_cos_thresh=0.99) == 0
    assert r.build(do_quantization=True, dataset="dataset.txt", auto_hybrid=True) == 0
    out = _err(capsys)
    assert "auto_hybrid:" in out and "layers in float16" in out
    assert r.init_runtime() == 0
    for x in inputs:
        y = r.inference([x], data_format="nchw")[0]
        assert cosine(y, run_ort_model(model, {"x": x})["y"]) >= 0.99
    assert "dwconv" in r._build_info["auto_hybrid_layers"]
    # the hybrid model exports and reloads bit-identically
    assert r.export_rknn("hyb.npuemu") == 0
    from npuemu import RKNNLite

    lite = RKNNLite()
    assert lite.load_rknn("hyb.npuemu") == 0 and lite.init_runtime() == 0
    for x in inputs:
        assert np.array_equal(lite.inference([x], data_format="nchw")[0], r.inference([x], data_format="nchw")[0])
    # auto_hybrid needs quantization
    assert r.build(do_quantization=False, auto_hybrid=True) == -1
    assert "needs do_quantization=True" in _err(capsys)
    # the Euclidean threshold alone (the cosine one set low) chooses the depthwise layer
    assert r.config(target_platform="rk3588", auto_hybrid_cos_thresh=0.5, auto_hybrid_euc_thresh=10.0) == 0
    assert r.build(dataset="dataset.txt", auto_hybrid=True) == 0
    assert "Euclidean threshold 10" in _err(capsys)
    assert "dwconv" in r._build_info["auto_hybrid_layers"]
    assert r.config(target_platform="rk3588", auto_hybrid_cos_thresh=0.5) == 0
    assert r.build(dataset="dataset.txt", auto_hybrid=True) == 0
    assert r._build_info["auto_hybrid_layers"] == []


def test_two_step_hybrid_flow(project, model, inputs, capsys):
    r = _rknn(project)
    assert r.hybrid_quantization_step1(dataset="dataset.txt") == 0
    for f in ("outlier.model", "outlier.data", "outlier.quantization.cfg"):
        assert (project / f).is_file(), f
    assert not [p for p in os.listdir(project) if ".tmp" in p]
    cfg = project / "outlier.quantization.cfg"
    layers, rng = read_cfg(cfg)
    assert layers == {} and {"c1", "h1", "c2"} <= set(rng)
    # step 2 with the cfg as written: the plain w8a8 model
    r2 = RKNN()
    assert r2.hybrid_quantization_step2("outlier.model", "outlier.data", str(cfg)) == 0
    assert r2.init_runtime() == 0
    plain = min(cosine(r2.inference([x], data_format="nchw")[0], run_ort_model(model, {"x": x})["y"]) for x in inputs)
    assert plain < 0.95
    # the user moves two layers to float16 (by output tensor names, as the analysis lists them) and
    # widens one int8 range by hand
    text = cfg.read_text().replace("custom_quantize_layers: {}",
                                   "custom_quantize_layers:\n    c2: float16\n    h1: float16  # by hand")
    lo, hi = rng["y"]
    text = re.sub(r"(    y:\n(?:        .*\n)*?        max: )\[[^\]]*\]", rf"\g<1>[{hi * 2!r}]", text)
    cfg.write_text(text)
    r3 = RKNN()
    assert r3.hybrid_quantization_step2("outlier.model", "outlier.data", str(cfg)) == 0
    prog = r3._program
    assert "conv:float16" in _kinds(prog) and "lut:float16" in _kinds(prog)
    ys = [t for t, v in prog.meta["values"].items() if v == "y" and prog.tensors[t].dtype == "int8"]
    from npuemu.compiler.quantize import activation_qparams

    assert all(prog.tensors[t].scale == pytest.approx(activation_qparams(lo, hi * 2)[0]) for t in ys)
    assert r3.init_runtime() == 0
    fixed = min(cosine(r3.inference([x], data_format="nchw")[0], run_ort_model(model, {"x": x})["y"]) for x in inputs)
    assert fixed > 0.999
    # proposal=True fills the cfg with auto_hybrid's choice
    r4 = _rknn(project)
    assert r4.config(target_platform="rk3588", auto_hybrid_cos_thresh=0.99) == 0
    assert r4.hybrid_quantization_step1(dataset="dataset.txt", proposal=True, proposal_dataset_size=2) == 0
    assert "dwconv" in read_cfg(cfg)[0]
    # and with the Euclidean threshold: 50 takes the first convolution (large values), not the depthwise one
    assert r4.config(target_platform="rk3588", auto_hybrid_cos_thresh=0.5, auto_hybrid_euc_thresh=50.0) == 0
    assert r4.hybrid_quantization_step1(dataset="dataset.txt", proposal=True, proposal_dataset_size=2) == 0
    assert set(read_cfg(cfg)[0]) == {"conv1", "hswish1"}


def test_custom_hybrid_puts_the_subgraph_in_float16(project, model, inputs, capsys):
    """custom_hybrid=[[input, output]]: the layers on the paths between the two tensors go to the cfg in
    float16 (the input's producer not, the output's yes), and step 2 builds them so."""
    from npuemu.compiler.hybrid import subgraph_layers

    g = prepare_graph(import_onnx(model))
    assert subgraph_layers(g, [["c1", "c2"]]) == {"hswish1": "float16", "dwconv": "float16"}
    assert subgraph_layers(g, [["x", "h1"], ["c2_shape4", "y"]]) == {
        "conv1": "float16", "hswish1": "float16", "pwconv": "float16"}
    # a convolution with a fused residual Add (the QDQ pass makes that form) reads its ``_add`` operand too:
    # y = conv_b(x) + a, where a reaches y only as the fused operand
    rng = np.random.default_rng(0)
    res = prepare_graph(import_onnx(make_model(
        [helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1], name="conv_a"),
         helper.make_node("Conv", ["x", "wb"], ["y"], pads=[1, 1, 1, 1], name="conv_b")],
        {"x": ([1, 3, 8, 8], np.float32)}, ["y", "a"], {"wa": conv_weights(rng, 4, 3), "wb": conv_weights(rng, 4, 3)})))
    next(n for n in res.nodes if n.name == "conv_b").attrs["_add"] = "a"
    assert subgraph_layers(res, [["a", "y"]]) == {"conv_b": "float16"}
    r = _rknn(project)
    assert r.hybrid_quantization_step1(dataset="dataset.txt", custom_hybrid=[["x", "c2"]]) == 0
    cfg = project / "outlier.quantization.cfg"
    layers, _ = read_cfg(cfg)
    assert layers == {"conv1": "float16", "hswish1": "float16", "dwconv": "float16"}
    assert "custom_hybrid: 3 layers" in cfg.read_text()
    r2 = RKNN()
    assert r2.hybrid_quantization_step2("outlier.model", "outlier.data", str(cfg)) == 0
    assert "(3 layers in float16)" in _err(capsys)
    assert r2.init_runtime() == 0
    worst = min(cosine(r2.inference([x], data_format="nchw")[0], run_ort_model(model, {"x": x})["y"]) for x in inputs)
    assert worst > 0.999  # the plain w8a8 build of this model is under 0.95 (test_two_step_hybrid_flow)
    # with proposal=True, auto_hybrid starts from the custom_hybrid layers
    r3 = _rknn(project)
    assert r3.hybrid_quantization_step1(dataset="dataset.txt", custom_hybrid=[["c2", "y"]], proposal=True) == 0
    assert {"pwconv"} <= set(read_cfg(cfg)[0])


def test_two_step_hybrid_keeps_rknn_batch_size(project, inputs, capsys):
    r = _rknn(project)
    assert r.hybrid_quantization_step1(dataset="dataset.txt", rknn_batch_size=2) == 0
    r2 = RKNN()
    assert r2.hybrid_quantization_step2("outlier.model", "outlier.data", "outlier.quantization.cfg") == 0
    assert "rknn_batch_size 2" in _err(capsys)
    assert r2._program.meta["rknn_batch_size"] == 2
    assert _rknn(project).hybrid_quantization_step1(dataset="dataset.txt") == 0  # the same, one sample
    r1 = RKNN()
    assert r1.hybrid_quantization_step2("outlier.model", "outlier.data", "outlier.quantization.cfg") == 0
    assert r2.init_runtime() == 0 and r1.init_runtime() == 0
    pair = np.concatenate(inputs[:2])
    one = [r1.inference([x], data_format="nchw")[0] for x in inputs[:2]]
    assert np.array_equal(r2.inference([pair], data_format="nchw")[0], np.concatenate(one))


def test_hybrid_errors_give_minus_one(project, capsys):
    r = RKNN()
    assert r.hybrid_quantization_step1(dataset="dataset.txt") == -1
    assert "call load_onnx() first" in _err(capsys)
    r = _rknn(project)
    for bad, msg in [("c1", "must be a non-empty list of [input tensor, output tensor] pairs, got 'c1'"),
                     ([], "must be a non-empty list"),
                     ([["c1"]], "entries are [input tensor, output tensor] pairs of names, got ['c1']"),
                     ([["c1", 2]], "pairs of names, got ['c1', 2]"),
                     ([["c1", "zz"]], "pair ['c1', 'zz']: no tensor 'zz' in the compiled graph"),
                     ([["h1", "x"]], "'x' is a model input, not a layer output"),
                     ([["c2", "h1"]], "pair ['c2', 'h1']: 'h1' is not computed from 'c2'")]:
        assert r.hybrid_quantization_step1(dataset="dataset.txt", custom_hybrid=bad) == -1
        assert msg in _err(capsys), bad
    assert r.hybrid_quantization_step1(dataset="missing.txt") == -1
    assert "does not exist" in _err(capsys)
    assert r.hybrid_quantization_step1(dataset="dataset.txt") == 0
    assert r.hybrid_quantization_step2("outlier.model", "nope.data", "outlier.quantization.cfg") == -1
    assert "data_input 'nope.data' is not a file" in _err(capsys)
    assert r.hybrid_quantization_step2("outlier.model", "outlier.model", "outlier.quantization.cfg") == -1
    assert "E hybrid_quantization_step2" in _err(capsys)
    cfg = project / "outlier.quantization.cfg"
    cfg.write_text(cfg.read_text().replace("custom_quantize_layers: {}", "custom_quantize_layers:\n    zz: float16"))
    assert r.hybrid_quantization_step2("outlier.model", "outlier.data", str(cfg)) == -1
    assert "unknown layer(s): 'zz'" in _err(capsys)
    cfg.write_text("custom_quantize_layers:\n    c2 float16\n")
    assert r.hybrid_quantization_step2("outlier.model", "outlier.data", str(cfg)) == -1
    assert "quantization.cfg:2: expected 'name: value'" in _err(capsys)


def test_accuracy_analysis_writes_the_report(project, model, inputs, capsys):
    r = _rknn(project)
    assert r.accuracy_analysis(["s0.npy"]) == -1
    assert "call load_onnx() and build() first" in _err(capsys)
    assert r.build(dataset="dataset.txt") == 0
    _err(capsys)
    assert r.accuracy_analysis(["s0.npy"], output_dir="snap") == 0
    printed = _err(capsys)
    assert "[Conv] c2" in printed and "single" in printed
    snap = project / "snap"
    table = (snap / "error_analysis.txt").read_text()
    rows = [ln for ln in table.splitlines() if ln.startswith("[")]
    assert [ln.split()[1] for ln in rows] == ["c1", "h1", "c2", "y"]
    mapping = dict(ln.split() for ln in (snap / "map_name_to_file.txt").read_text().splitlines())
    gold = np.load(snap / "golden" / mapping["y"])
    sim = np.load(snap / "simulator" / mapping["y"])
    x = inputs[0]
    assert np.allclose(gold, run_ort_model(model, {"x": x})["y"], rtol=1e-4, atol=1e-4)
    assert r.init_runtime() == 0
    assert np.allclose(sim, r.inference([x], data_format="nchw")[0], rtol=0, atol=1e-6)
    # the output row's entire cosine is the cosine of the two files
    ycos = float(rows[-1].split()[3])
    assert ycos == pytest.approx(cosine(sim, gold), abs=1e-5)
    # arrays are accepted as for inference (NHWC by default for 4-D)
    assert r.accuracy_analysis([np.ascontiguousarray(x.transpose(0, 2, 3, 1))], output_dir="snap2") == 0
    assert (project / "snap2" / "error_analysis.txt").read_text().splitlines()[4:] == table.splitlines()[4:]
    # bad inputs
    assert r.accuracy_analysis(["s0.npy", "s1.npy"]) == -1
    assert "inputs must be a list of 1 input" in _err(capsys)
    assert r.accuracy_analysis(["none.npy"]) == -1
    assert "sample file 'none.npy' not found" in _err(capsys)
    assert r.accuracy_analysis(["s0.npy"], target="rk3566") == -1
    assert "use target=None" in _err(capsys)
    assert r.export_rknn("m.npuemu") == 0
    lite_like = RKNN()
    assert lite_like.load_rknn("m.npuemu") == 0
    assert lite_like.accuracy_analysis(["s0.npy"]) == -1
    assert "no float graph" in _err(capsys)
