"""Speed of the float32 golden executor (npuemu.reference.run_graph) on light_resnet50 (ResNet-50 topology,
1x3x224x224, shipped in the onnx wheel), as imported and after the graph passes, next to onnxruntime.

    python -m pytest bench/bench_reference.py --benchmark-columns=min,median,max
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from npuemu.frontend import import_onnx, passes
from npuemu.reference import run_graph

MODEL = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_resnet50.onnx")


@pytest.fixture(scope="module")
def graphs():
    g = import_onnx(MODEL)
    return {"imported": g, "optimized": passes.optimize(g)}


@pytest.mark.parametrize("variant", ["imported", "optimized", "ort_fp32"])
def test_resnet50_inference(benchmark, graphs, variant):
    g = graphs["imported"]
    x = np.random.default_rng(0).standard_normal(g.values[g.inputs[0]].shape).astype(np.float32)
    feeds = {g.inputs[0]: x}
    if variant == "ort_fp32":
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
        run = lambda: sess.run(None, feeds)[0]  # noqa: E731
    else:
        graph = graphs[variant]
        run = lambda: run_graph(graph, feeds)[graph.outputs[0]]  # noqa: E731
    y = benchmark(run)
    np.testing.assert_allclose(y, run_graph(g, feeds)[g.outputs[0]], rtol=1e-3, atol=1e-7)
