"""int16 -> int8 HardSwish tables evaluated as their float32 formula (kernels/lut/formula.h).

Oracle: onnx.reference.ReferenceEvaluator running ONNX's HardSwish (and PaddlePaddle's Add / Clip / Mul /
Div form) in float32 on the dequantized codes, quantized by numpy (divide, round half to even, add the
zero point, saturate). The runtime uses the formula only where it equals the compiled table on all
65,536 codes; a compiled model gives the same bits either way, on every ISA tier."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import npuemu
from graph_builders import conv_weights, make_model
from npuemu import _core
from npuemu.compiler import LowerOptions, compile_graph, prepare_graph
from npuemu.frontend import import_onnx
from npuemu.runtime.executor import Runtime

F32 = np.float32
CODES = np.arange(65536, dtype=np.uint16).view(np.int16)
ISAS = [i for i in ("scalar", "avx2", "avx512vnni") if i in ("scalar", "avx2", _core.detected_isa())]


@pytest.fixture(params=ISAS)
def isa(request):
    before = _core.active_isa()
    npuemu.set_isa(request.param)
    yield request.param
    npuemu.set_isa(before)


def _onnx_chain(formula: str):
    n = helper.make_node
    if formula == "hard_swish":
        nodes, inits = [n("HardSwish", ["x"], ["y"])], []
    else:
        nodes = [n("Add", ["x", "three"], ["a"]), n("Clip", ["a", "zero", "six"], ["c"]), n("Mul", ["x", "c"], ["m"]),
                 n("Div", ["m", "six"], ["y"])]
        inits = [helper.make_tensor(k, TensorProto.FLOAT, [], [v]) for k, v in (("three", 3), ("zero", 0), ("six", 6))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]))


def _oracle(formula, xs, xz, ys, yz):
    v = (CODES.astype(F32) - F32(xz)) * F32(xs)
    h = _onnx_chain(formula).run(None, {"x": v})[0].astype(F32)
    q = np.clip(np.rint(h / F32(ys)) + F32(yz), -128, 127)
    return q.astype(np.int8)


PARAMS = [(0.0005, 0, 0.03, -90), (0.00031, -1234, 0.0471, -120), (1e-6, 32767, 1e-4, 0), (0.01, -32768, 0.9, 127),
          (2.5e-4, 511, 0.011, -3)]


@pytest.mark.parametrize("formula", ["hard_swish", "hard_swish_arith"])
@pytest.mark.parametrize("xs,xz,ys,yz", PARAMS)
def test_formula_equals_onnx_on_every_code(isa, formula, xs, xz, ys, yz):
    got = np.empty(65536, np.int8)
    _core.lut_formula(formula, CODES, got, x_scale=xs, x_zero_point=xz, y_scale=ys, y_zero_point=yz)
    want = _oracle(formula, xs, xz, ys, yz)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} codes differ"


def test_bad_arguments():
    x = np.zeros(4, np.int16)
    y = np.zeros(4, np.int8)
    with pytest.raises(ValueError, match="formula must be"):
        _core.lut_formula("sigmoid", x, y, 1.0, 0, 1.0, 0)
    with pytest.raises(TypeError, match="x must be int16"):
        _core.lut_formula("hard_swish", x.astype(np.int32), y, 1.0, 0, 1.0, 0)
    with pytest.raises(TypeError, match="y must be int8"):
        _core.lut_formula("hard_swish", x, y.astype(np.uint8), 1.0, 0, 1.0, 0)
    with pytest.raises(ValueError, match="elements"):
        _core.lut_formula("hard_swish", x, y[:3], 1.0, 0, 1.0, 0)


def _model(rng, paddle_form: bool):
    n = helper.make_node
    if paddle_form:
        act = [n("Add", ["c1", "three"], ["a"]), n("Clip", ["a", "zero", "six"], ["cl"]), n("Mul", ["c1", "cl"], ["m"]),
               n("Div", ["m", "six"], ["h"])]
    else:
        act = [n("HardSwish", ["c1"], ["h"])]
    nodes = [n("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]), *act, n("Conv", ["h", "w2"], ["y"], pads=[1, 1, 1, 1])]
    inits = {"w1": conv_weights(rng, 16, 3), "w2": conv_weights(rng, 8, 16), "three": np.array(3, F32),
             "zero": np.array(0, F32), "six": np.array(6, F32)}
    return make_model(nodes, {"x": ([1, 3, 20, 20], F32)}, ["y"], inits, opset=14)


@pytest.mark.parametrize("paddle_form", [False, True])
def test_compiled_model_same_bits_with_formula_or_table(rng, isa, paddle_form):
    g = prepare_graph(import_onnx(_model(rng, paddle_form)))
    xs = [(rng.standard_normal((1, 3, 20, 20)) * 2).astype(F32) for _ in range(3)]
    prog = compile_graph(g, LowerOptions(mode="w8a8"), [{"x": x} for x in xs], 3, prepared=True)
    [lut] = [s for s in prog.steps if s.kind == "lut"]
    assert prog.tensors[lut.inputs[0]].dtype == "int16" and prog.tensors[lut.outputs[0]].dtype == "int8"
    fast = Runtime(prog, core_mask=1)
    assert (fast._table_formula(lut, fast._arr(lut.inputs[0]), fast._arr(lut.inputs[1]), fast._arr(lut.outputs[0]))
            is not None) == (isa != "scalar")
    try:
        Runtime.use_table_formulas = False
        table = Runtime(prog, core_mask=1)
    finally:
        Runtime.use_table_formulas = True
    for x in xs:
        assert np.array_equal(fast.run([x])[0], table.run([x])[0])


def test_a_table_the_formula_does_not_reproduce_is_looked_up(rng):
    g = prepare_graph(import_onnx(_model(rng, False)))
    x = rng.standard_normal((1, 3, 20, 20)).astype(F32)
    prog = compile_graph(g, LowerOptions(mode="w8a8"), [{"x": x}], 1, prepared=True)
    [lut] = [s for s in prog.steps if s.kind == "lut"]
    prog.consts[lut.inputs[1]] = prog.consts[lut.inputs[1]].copy()
    prog.consts[lut.inputs[1]].reshape(-1)[12345] ^= 1  # one entry off: no longer the formula
    rt = Runtime(prog, core_mask=1)
    assert rt._table_formula(lut, rt._arr(lut.inputs[0]), rt._arr(lut.inputs[1]), rt._arr(lut.outputs[0])) is None
