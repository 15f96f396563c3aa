"""FP16 builds fuse HardSwish (the op, or PaddlePaddle's x * clip(x + 3, 0, 6) / 6) into the preceding
convolution's output stage; the result stays within float16 rounding of onnxruntime fp32, and integer
builds keep it a lookup table."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from graph_builders import conv_weights, make_model, run_ort_model
from npuemu.compiler import LowerOptions, compile_graph, prepare_graph
from npuemu.frontend import import_onnx
from npuemu.runtime.executor import Runtime

pytest.importorskip("onnxruntime")
F32 = np.float32


def _model(rng, paddle_form: bool):
    n = helper.make_node
    if paddle_form:  # x * clip(x + 3, 0, 6) / 6
        act = [n("Add", ["c1", "three"], ["a"]), n("Clip", ["a", "zero", "six"], ["cl"]), n("Mul", ["c1", "cl"], ["m"]),
               n("Div", ["m", "six"], ["h"])]
    else:
        act = [n("HardSwish", ["c1"], ["h"])]
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), *act,
             n("Conv", ["h", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8), n("HardSwish", ["c2"], ["y"])]
    inits = {"w1": conv_weights(rng, 8, 3), "b1": rng.standard_normal(8).astype(F32),
             "w2": conv_weights(rng, 8, 1), "three": np.array(3, F32), "zero": np.array(0, F32),
             "six": np.array(6, F32)}
    return make_model(nodes, {"x": ([1, 3, 12, 12], F32)}, ["y"], inits, opset=14)


@pytest.mark.parametrize("paddle_form", [False, True])
def test_float16_build_fuses_hard_swish_into_the_convolution(rng, paddle_form):
    model = _model(rng, paddle_form)
    g = prepare_graph(import_onnx(model))
    x = (rng.standard_normal((1, 3, 12, 12)) * 2).astype(F32)
    prog = compile_graph(g, LowerOptions(mode="float16"), prepared=True)
    convs = [s for s in prog.steps if s.kind == "conv"]
    assert [s.attrs["activation"] for s in convs] == ["hard_swish", "hard_swish"]
    assert not any(s.kind == "lut" for s in prog.steps)
    got = Runtime(prog, core_mask=1).run([x])[0]
    want = run_ort_model(model, {"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=4e-3, atol=4e-3)  # a few float16 roundings of values <= ~40

    prog8 = compile_graph(g, LowerOptions(mode="w8a8"), [{"x": x}], 1, prepared=True)
    assert sum(s.kind == "lut" for s in prog8.steps) == 2  # int16 -> int8 tables
    assert all(s.attrs["activation"] is None for s in prog8.steps if s.kind == "conv")
