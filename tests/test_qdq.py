"""QDQ models keep their quantization (python/npuemu/compiler/qdq.py).

QDQ models are made by onnxruntime's ``quantize_static`` (QuantFormat.QDQ; per-channel and per-tensor
weights, QInt8 and QUInt8 activations, symmetric QInt8 weights) from small float CNNs built with onnx.helper
and from the 'light' SqueezeNet of the onnx wheel, calibrated on a few random inputs. The oracles are the
model file itself and onnxruntime:

1. Parameters, read from the QDQ model's initializers: every tensor a QuantizeLinear / DequantizeLinear pair
   quantizes is an int8 tensor of the compiled program with exactly the pair's scale and zero point (uint8
   zero point z as int8 z - 128); every Conv / Gemm / MatMul step's int8 weights and scales are the model's
   int8 initializers and scales, its int32 bias the model's int32 initializer.
2. Outputs against onnxruntime running the QDQ model, with its graph optimizations (QDQ fused into int8
   kernels: QLinearConv, ...) and with ``ORT_DISABLE_ALL`` (the Q / DQ nodes executed as float ops).
   Tolerance: 3 output quantization steps at most, 0.5 steps on average (measured: 0 or 1 step at most,
   0.2 on average). Both quantize every tensor the model quantizes to the same grid (the lowering keeps
   each such tensor: it fuses nothing across one, see frontend/passes._single_reader, and tables round
   intermediates the model rounds); they differ only in how an accumulator is rounded to the grid: the
   NPU's fixed-point output stage rounds twice (half up, then half away from zero; docs/arithmetic.md
   section 3) where onnxruntime rounds ``acc * scale`` once, half to even, in float32. That moves some
   0.1-1 % of an int8 tensor by one step, and a step can propagate through later layers. onnxruntime's
   two modes differ from each other in the same way. A wrong scale or zero point anywhere moves outputs by
   many steps (mutation-checked).
3. The compiled program is bit-exact with the numpy reference executor (runtime/reference_exec.py) and the
   C++ runtime for several core masks (check_program of test_compiled_bitexact).
4. The RKNN facade builds a QDQ model with ``do_quantization=True`` and no dataset; a float model without a
   dataset still gets -1 and a message.
5. What an int8 NPU cannot keep is refused by name (asymmetric weights out of int8, int16 activations,
   blocked and per-input-channel weight scales; int4 tensors at import), and asymmetric weights whose
   ``w - zero_point`` fits int8 are kept exactly.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from graph_builders import conv_weights, make_model
from npuemu.compiler import LowerOptions, compile_graph, prepare_graph
from npuemu.errors import ModelError, UnsupportedOpError
from npuemu.frontend import import_onnx
from npuemu.runtime.executor import Runtime

ort = pytest.importorskip("onnxruntime")
oq = pytest.importorskip("onnxruntime.quantization")

F32 = np.float32
node = helper.make_node
MAX_STEPS = 3
MEAN_STEPS = 0.5


# ------------------------------------------------------------------------------------------------------
# float models and their QDQ versions


def _cnn(rng):
    """Conv+Relu, depthwise Conv+Relu, residual Add, MaxPool, 1x1 Conv, Concat, GlobalAveragePool, Flatten,
    Gemm (transB)."""
    return make_model(
        [node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]), node("Relu", ["c1"], ["r1"]),
         node("Conv", ["r1", "wd", "bd"], ["c2"], pads=[1, 1, 1, 1], group=8), node("Relu", ["c2"], ["r2"]),
         node("Add", ["r1", "r2"], ["s"]), node("MaxPool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
         node("Conv", ["p", "w3"], ["c3"]), node("Concat", ["p", "c3"], ["cat"], axis=1),
         node("GlobalAveragePool", ["cat"], ["g"]), node("Flatten", ["g"], ["f"]),
         node("Gemm", ["f", "wg", "bg"], ["y"], transB=1)],
        {"x": ([1, 3, 12, 12], F32)}, ["y"],
        {"w1": conv_weights(rng, 8, 3), "b1": (rng.standard_normal(8) * 0.1).astype(F32),
         "wd": conv_weights(rng, 8, 1), "bd": (rng.standard_normal(8) * 0.1).astype(F32),
         "w3": conv_weights(rng, 4, 8, 1), "wg": (rng.standard_normal((10, 12)) * 0.3).astype(F32),
         "bg": (rng.standard_normal(10) * 0.1).astype(F32)},
        opset=13,
    )  # fmt: skip


def _mlp(rng):
    """MatMul + bias Add + Relu, MatMul, x * sigmoid(x) (a lookup table with fixed output quantization)."""
    return make_model(
        [node("MatMul", ["x", "w1"], ["m1"]), node("Add", ["m1", "b1"], ["a1"]), node("Relu", ["a1"], ["r1"]),
         node("MatMul", ["r1", "w2"], ["m2"]), node("Sigmoid", ["m2"], ["sg"]), node("Mul", ["m2", "sg"], ["y"])],
        {"x": ([4, 16], F32)}, ["y"],
        {"w1": (rng.standard_normal((16, 32)) * 0.3).astype(F32), "b1": (rng.standard_normal(32) * 0.1).astype(F32),
         "w2": (rng.standard_normal((32, 8)) * 0.2).astype(F32)},
        opset=13,
    )  # fmt: skip


def _light_squeezenet(rng):
    """The onnx wheel's light SqueezeNet with seeded random weights (test_frontend_models._randomised), its
    initializers taken out of the graph inputs and the opset raised to 13 for quantize_static."""
    import onnx.version_converter

    import test_frontend_models as tfm

    model, _ = tfm._randomised(onnx.load(os.path.join(tfm.LIGHT_DIR, "light_squeezenet.onnx")), rng)
    inits = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.ir_version = 8
    return onnx.version_converter.convert_version(model, 13)


FLOAT_MODELS = {"cnn": _cnn, "mlp": _mlp, "squeezenet": _light_squeezenet}


def _input_shape(model) -> "tuple[int, ...]":
    return tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds):
        self.it = iter(feeds)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):  # pragma: no cover - not used by MinMax calibration
        pass


_CACHE: dict = {}


def qdq_model(tmp_path_factory, kind: str, per_channel: bool, act: str, weight: str = "QInt8") -> str:
    """Path of the QDQ model quantize_static makes of FLOAT_MODELS[kind] (cached per session)."""
    key = (kind, per_channel, act, weight)
    if key not in _CACHE:
        d = tmp_path_factory.mktemp("qdq")
        rng = np.random.default_rng(7)
        model = FLOAT_MODELS[kind](rng)
        fpath, qpath = str(d / "float.onnx"), str(d / "qdq.onnx")
        onnx.save(model, fpath)
        name, shape = model.graph.input[0].name, _input_shape(model)
        feeds = [{name: rng.standard_normal(shape).astype(F32)} for _ in range(4)]
        oq.quantize_static(fpath, qpath, _Reader(feeds), quant_format=oq.QuantFormat.QDQ, per_channel=per_channel,
                           activation_type=getattr(oq.QuantType, act), weight_type=getattr(oq.QuantType, weight))
        _CACHE[key] = qpath
    return _CACHE[key]


# ------------------------------------------------------------------------------------------------------
# the model's own parameters, read from its initializers (independent of npuemu)


def _inits(model) -> dict:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def model_activation_qparams(model) -> "dict[str, tuple[float, int]]":
    """Tensor -> (scale, int8 zero point) of every activation QuantizeLinear; the tensor is named as the
    pair's DequantizeLinear output where that is a graph output."""
    inits = _inits(model)
    outputs = {o.name for o in model.graph.output}
    res = {}
    for n in model.graph.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in inits:
            continue
        s, z = inits[n.input[1]], inits[n.input[2]]
        zp = int(z) - 128 if z.dtype == np.uint8 else int(z)
        name = n.input[0]
        for m in model.graph.node:
            if m.op_type == "DequantizeLinear" and m.input[0] == n.output[0] and m.output[0] in outputs:
                name = m.output[0]
        res[name] = (float(s), zp)
    return res


def model_weights(model) -> "dict[str, tuple]":
    """Conv / Gemm / MatMul node name (an unnamed node is '<op type>_<index>', as the importer names it) ->
    (int8 weights ``q - zero_point`` as the step holds them (Gemm transB: transposed), scales, int32 bias or
    None)."""
    inits = _inits(model)
    dq = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    res = {}
    for i, n in enumerate(model.graph.node):
        if n.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        d = dq[n.input[1]]
        q, z = inits[d.input[0]].astype(np.int64), inits[d.input[2]].astype(np.int64)
        axis = next((a.i for a in d.attribute if a.name == "axis"), 1)
        if z.size > 1:
            z = z.reshape([-1 if k == axis % q.ndim else 1 for k in range(q.ndim)])
        w = q - z
        assert -128 <= w.min() and w.max() <= 127
        w = w.astype(np.int8)
        if n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute):
            w = w.T
        bias = None
        if len(n.input) > 2 and n.input[2]:
            bias = inits[dq[n.input[2]].input[0]]
            assert bias.dtype == np.int32
        res[n.name or f"{n.op_type}_{i}"] = (w, inits[d.input[1]].reshape(-1), bias)
    return res


def _identity_source(model, name: str) -> "str | None":
    """The tensor before the Q / DQ pair feeding the Identity / Dropout that writes ``name``, if it does."""
    by_out = {o: n for n in model.graph.node for o in n.output}
    n = by_out.get(name)
    if n is None or n.op_type not in ("Identity", "Dropout"):
        return None
    dq = by_out.get(n.input[0])
    q = by_out.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
    return q.input[0] if q is not None and q.op_type == "QuantizeLinear" else None


def compile_qdq(path: str, samples=None, mode: str = "w8a8"):
    return compile_graph(import_onnx(path), LowerOptions(mode=mode), samples)


def run_ort(path: str, feeds: dict, optimized: bool) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not optimized:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


# (float model, per-channel weights, activation type, weight type). onnxruntime's per-channel QUInt8 weights
# have w - zero_point inside int8 (kept exactly); its per-tensor QUInt8 weights do not (refused, see below).
CASES = [(k, pc, act, "QInt8") for k in ("cnn", "mlp") for pc in (True, False) for act in ("QInt8", "QUInt8")]
CASES += [("cnn", True, "QUInt8", "QUInt8"), ("squeezenet", True, "QUInt8", "QInt8"),
          ("squeezenet", False, "QInt8", "QInt8")]


def _id(c):
    return f"{c[0]}-{'channel' if c[1] else 'tensor'}-{c[2]}" + ("" if c[3] == "QInt8" else f"-w{c[3]}")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_program_carries_the_models_parameters(tmp_path_factory, case):
    path = qdq_model(tmp_path_factory, *case)
    model = onnx.load(path)
    prog = compile_qdq(path)  # no calibration samples
    assert prog.summary()["CPU"] == 0, [s.op_type for s in prog.steps if s.target == "CPU"]
    assert not any(s.op_type in ("QuantizeLinear", "DequantizeLinear") for s in prog.steps)
    # activations: every pair's tensor is an int8 program tensor with exactly the pair's (scale, zp)
    expect = model_activation_qparams(model)
    for name, (s, z) in expect.items():
        t = prog.tensors.get(name)
        if t is None:
            # only the output of an identity (SqueezeNet's Dropout), the same as its input, or an intermediate
            # of a lookup table (the sigmoid of x * sigmoid(x): the table rounds it to this grid, which the
            # exact agreement with onnxruntime below shows)
            src = _identity_source(model, name)
            producer = {o: n for n in model.graph.node for o in n.output}[name].op_type
            tables = {op for st in prog.steps if st.kind == "lut" for op in st.op_type.split("+")}
            assert (src is not None and expect[src] == (s, z)) or producer in tables, name
            continue
        assert t.dtype == "int8", (name, t)
        assert (t.scale, t.zero_point) == (s, z), (name, (t.scale, t.zero_point), (s, z))
    # weights, scales, biases: the model's initializers
    weights = model_weights(model)
    steps = [s for s in prog.steps if s.kind in ("conv", "matmul")]
    assert len(steps) == len(weights)
    for s in steps:
        w, ws, b = weights[s.name]
        np.testing.assert_array_equal(prog.consts[s.inputs[1]], w, err_msg=s.name)
        assert prog.consts[s.inputs[1]].dtype == np.int8
        np.testing.assert_array_equal(prog.consts[s.inputs[2]], ws.astype(F32), err_msg=s.name)
        if b is not None:  # the int32 bias of onnxruntime (scale x_scale * w_scale)
            np.testing.assert_array_equal(prog.consts[s.inputs[3]], b, err_msg=s.name)


def _steps(y, ref, scale) -> "tuple[float, float]":
    d = np.abs(y.astype(np.float64) - ref.astype(np.float64)) / scale
    return float(d.max()), float(d.mean())


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_outputs_match_onnxruntime(tmp_path_factory, case):
    path = qdq_model(tmp_path_factory, *case)
    model = onnx.load(path)
    prog = compile_qdq(path)
    out = model.graph.output[0].name
    scale = model_activation_qparams(model)[out][0]
    name, shape = model.graph.input[0].name, _input_shape(model)
    rng = np.random.default_rng(11)
    rt = Runtime(prog)
    worst = {True: (0.0, 0.0), False: (0.0, 0.0)}
    for _ in range(4):
        x = rng.standard_normal(shape).astype(F32)
        y = rt.run([x])[0]
        for optimized in (True, False):
            ref = run_ort(path, {name: x}, optimized)
            mx, mean = _steps(y, ref, scale)
            worst[optimized] = (max(worst[optimized][0], mx), max(worst[optimized][1], mean))
    print(f"\n[qdq] {_id(case)}: max / mean difference in output steps: vs onnxruntime optimized "
          f"{worst[True][0]:.0f} / {worst[True][1]:.3f}, vs ORT_DISABLE_ALL {worst[False][0]:.0f} / {worst[False][1]:.3f}")
    for optimized in (True, False):
        assert worst[optimized][0] <= MAX_STEPS + 1e-3 and worst[optimized][1] <= MEAN_STEPS, (optimized, worst)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] != "squeezenet"] + [CASES[-2]], ids=_id)
def test_compiled_qdq_program_bitexact(tmp_path_factory, case):
    from test_compiled_bitexact import check_program

    path = qdq_model(tmp_path_factory, *case)
    model = onnx.load(path)
    prog = compile_qdq(path)
    x = np.random.default_rng(3).standard_normal(_input_shape(model)).astype(F32)
    check_program(prog, [x], masks=(1, 7), probe_mask=7)


def test_qdq_with_a_dataset_keeps_the_models_parameters(tmp_path_factory):
    """Calibration samples do not override what the model fixes."""
    path = qdq_model(tmp_path_factory, "cnn", True, "QUInt8")
    rng = np.random.default_rng(1)
    samples = [{"x": (rng.standard_normal((1, 3, 12, 12)) * 5).astype(F32)} for _ in range(2)]
    prog = compile_qdq(path, samples)
    for name, (s, z) in model_activation_qparams(onnx.load(path)).items():
        assert (prog.tensors[name].scale, prog.tensors[name].zero_point) == (s, z), name


def strip_qdq(model) -> onnx.ModelProto:
    """The float network a QDQ model quantizes, written here independently of npuemu: every activation
    QuantizeLinear -> DequantizeLinear pair becomes a wire, every DequantizeLinear of an initializer its float
    value ``(q - zero_point) * scale`` (numpy)."""
    inits = _inits(model)
    g = model.graph
    wire, nodes, new_inits = {}, [], []
    q_in = {n.output[0]: n.input[0] for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            q, s, z = (inits[n.input[k]] for k in range(3))
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            shape = [-1 if k == axis % q.ndim else 1 for k in range(q.ndim)] if s.size > 1 else []
            v = (q.astype(np.int64) - z.reshape(shape)).astype(F32) * s.reshape(shape)
            new_inits.append(numpy_helper.from_array(v.astype(F32), n.output[0]))
        elif n.op_type == "DequantizeLinear" and n.input[0] in q_in:
            wire[n.output[0]] = q_in[n.input[0]]
        elif not (n.op_type == "QuantizeLinear" and n.output[0] in q_in):
            nodes.append(n)
    for n in nodes:
        for k, x in enumerate(n.input):
            n.input[k] = wire.get(x, x)
    nodes += [node("Identity", [wire[o.name]], [o.name]) for o in g.output if o.name in wire]
    used = {x for n in nodes for x in n.input}
    keep = [t for t in g.initializer if t.name in used and t.dtype == onnx.TensorProto.FLOAT]
    graph = helper.make_graph(nodes, "stripped", list(g.input), list(g.output), keep + new_inits)
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=8)


def test_float_build_of_a_qdq_model(tmp_path_factory, tmp_path):
    """A float16 build runs the float network the QDQ model quantizes (pairs dropped, weights dequantized)
    on the NPU, as onnxruntime runs that network (float16 tolerance: rtol 1e-2, atol 1e-2 of the range)."""
    path = qdq_model(tmp_path_factory, "cnn", True, "QInt8")
    prog = compile_qdq(path, mode="float16")
    assert prog.summary()["CPU"] == 0
    stripped = str(tmp_path / "stripped.onnx")
    onnx.save(strip_qdq(onnx.load(path)), stripped)
    x = np.random.default_rng(2).standard_normal((1, 3, 12, 12)).astype(F32)
    y = Runtime(prog).run([x])[0]
    ref = run_ort(stripped, {"x": x}, False)
    np.testing.assert_allclose(y, ref, rtol=1e-2, atol=1e-2 * float(np.abs(ref).max()))


# ------------------------------------------------------------------------------------------------------
# the RKNN facade


def test_rknn_builds_qdq_model_without_dataset(tmp_path_factory, capsys):
    from npuemu import RKNN

    path = qdq_model(tmp_path_factory, "cnn", True, "QUInt8")
    r = RKNN()
    assert r.config(target_platform="rk3588") == 0
    assert r.load_onnx(path) == 0
    assert r.build(do_quantization=True) == 0, capsys.readouterr().err
    assert r.init_runtime() == 0
    x = np.random.default_rng(4).standard_normal((1, 3, 12, 12)).astype(F32)
    y = r.inference(inputs=[x], data_format="nchw")[0]
    ref = run_ort(path, {"x": x}, False)
    scale = model_activation_qparams(onnx.load(path))["y"][0]
    assert _steps(y, ref, scale)[0] <= MAX_STEPS
    r.release()


def test_rknn_float_model_without_dataset_fails(tmp_path, capsys):
    from npuemu import RKNN

    path = str(tmp_path / "float.onnx")
    onnx.save(_cnn(np.random.default_rng(0)), path)
    r = RKNN()
    r.config(target_platform="rk3588")
    assert r.load_onnx(path) == 0
    assert r.build(do_quantization=True) == -1
    err = capsys.readouterr().err
    assert "dataset" in err and "QDQ" in err
    assert r.build(do_quantization=False) == 0  # float builds need none


def test_rknn_refused_qdq_model_fails_with_reason(tmp_path_factory, capsys):
    from npuemu import RKNN

    path = qdq_model(tmp_path_factory, "cnn", False, "QUInt8", weight="QUInt8")
    r = RKNN()
    r.config(target_platform="rk3588")
    assert r.load_onnx(path) == 0
    assert r.build(do_quantization=True) == -1
    err = capsys.readouterr().err
    assert "zero point" in err and "symmetric" in err


# ------------------------------------------------------------------------------------------------------
# what is kept, what stays, what is refused (hand-made QDQ models)


def _qdq_conv(w_q, w_scale, w_zp=None, x_type=np.uint8, opset=13, extra_nodes=(), outputs=("y",)):
    """x -> Q/DQ -> Conv(DQ(w_q)) -> Q/DQ -> y (plus ``extra_nodes``)."""
    xz = np.array(128 if x_type == np.uint8 else 0, x_type)
    yz = np.array(100 if x_type == np.uint8 else -20, x_type)
    inits = {"xs": np.array(0.02, F32), "xz": xz, "ys": np.array(0.05, F32), "yz": yz, "w": w_q, "ws": w_scale}
    wdq = ["w", "ws"]
    if w_zp is not None:
        inits["wz"] = w_zp
        wdq.append("wz")
    nodes = [node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             node("DequantizeLinear", wdq, ["wd"], axis=0), node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
             node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]), node("DequantizeLinear", ["cq", "ys", "yz"], ["y"]),
             *extra_nodes]  # fmt: skip
    return make_model(nodes, {"x": ([1, 3, 6, 6], F32)}, list(outputs), inits, opset=opset)


def _save(tmp_path, model, name="m.onnx") -> str:
    p = str(tmp_path / name)
    onnx.save(model, p)
    return p


def test_asymmetric_weights_that_fit_int8_are_kept_exactly(tmp_path):
    rng = np.random.default_rng(5)
    w = rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)
    zp = np.array([3, -7, 0, 20], np.int8)
    path = _save(tmp_path, _qdq_conv(w, np.array([0.01, 0.02, 0.015, 0.005], F32), zp))
    prog = compile_qdq(path)
    (conv,) = [s for s in prog.steps if s.kind == "conv"]
    np.testing.assert_array_equal(prog.consts[conv.inputs[1]], (w.astype(int) - zp.reshape(4, 1, 1, 1)).astype(np.int8))
    x = rng.standard_normal((1, 3, 6, 6)).astype(F32)
    mx, _ = _steps(Runtime(prog).run([x])[0], run_ort(path, {"x": x}, False), 0.05)
    assert mx <= 1


def test_asymmetric_weights_out_of_int8_are_refused(tmp_path):
    w = np.full((4, 3, 3, 3), -100, np.int8)
    w[1, 0, 0, 0] = 100
    path = _save(tmp_path, _qdq_conv(w, np.full(4, 0.01, F32), np.array([0, 30, 0, 0], np.int8)))
    with pytest.raises(UnsupportedOpError, match=r"DequantizeLinear_2.*zero point \[0, 30\].*\[-130, 70\]"):
        compile_qdq(path)
    assert compile_qdq(path, mode="float16").summary()["NPU"] > 0  # float builds run the float values


def test_onnxruntime_asymmetric_uint8_weights_are_refused(tmp_path_factory):
    """Per-tensor QUInt8 weights: onnxruntime's zero point leaves w - z outside int8."""
    path = qdq_model(tmp_path_factory, "cnn", False, "QUInt8", weight="QUInt8")
    with pytest.raises(UnsupportedOpError, match=r"w1_DequantizeLinear.*zero point.*outside int8.*more such"):
        compile_qdq(path)


def test_int16_activations_are_refused(tmp_path):
    rng = np.random.default_rng(6)
    w = rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)
    path = _save(tmp_path, _qdq_conv(w, np.full(4, 0.01, F32), x_type=np.int16, opset=21))
    with pytest.raises(UnsupportedOpError, match=r"QuantizeLinear_0.*int16 activation quantization of 'x'"):
        compile_qdq(path)
    # a float32 build keeps the int16 Q / DQ as CPU ops: onnxruntime's result
    x = rng.standard_normal((1, 3, 6, 6)).astype(F32)
    y = Runtime(compile_qdq(path, mode="float32")).run([x])[0]
    np.testing.assert_allclose(y, run_ort(path, {"x": x}, False), rtol=0, atol=1e-6)


def test_int16_weights_blocked_and_per_input_channel_scales_are_refused(tmp_path):
    rng = np.random.default_rng(8)
    w16 = rng.integers(-1000, 1000, (4, 3, 3, 3)).astype(np.int16)
    with pytest.raises(UnsupportedOpError, match=r"weight 'wd': int16 weights"):
        compile_qdq(_save(tmp_path, _qdq_conv(w16, np.full(4, 0.001, F32), opset=21)))

    wb = rng.integers(-100, 100, (32, 8)).astype(np.int8)
    blocked = make_model([node("DequantizeLinear", ["w", "ws"], ["wd"], axis=0, block_size=16),
                          node("MatMul", ["x", "wd"], ["y"])],
                         {"x": ([2, 32], F32)}, ["y"], {"w": wb, "ws": np.full((2, 8), 0.01, F32)}, opset=21)
    x = rng.standard_normal((2, 32)).astype(F32)
    with pytest.raises(UnsupportedOpError, match=r"blocked quantization \(block_size=16\)"):
        compile_qdq(_save(tmp_path, blocked, "b.onnx"), [{"x": x}])

    per_k = make_model([node("DequantizeLinear", ["w", "ws"], ["wd"], axis=0), node("MatMul", ["x", "wd"], ["y"])],
                       {"x": ([2, 32], F32)}, ["y"], {"w": wb, "ws": np.full(32, 0.01, F32)}, opset=13)
    with pytest.raises(UnsupportedOpError, match=r"axis 0 .* output-channel axis 1 of MatMul"):
        compile_qdq(_save(tmp_path, per_k, "k.onnx"), [{"x": x}])


def test_int4_weights_are_refused_at_import():
    from onnx import TensorProto

    w4 = helper.make_tensor("w", TensorProto.INT4, [4, 3, 1, 1], list(range(-6, 6)))
    g = helper.make_graph(
        [node("DequantizeLinear", ["w", "ws"], ["wd"], axis=0), node("Conv", ["x", "wd"], ["y"])], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w4, numpy_helper.from_array(np.full(4, 0.1, F32), "ws")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    with pytest.raises(ModelError, match="int4"):
        import_onnx(m)


def test_lone_quantize_at_the_output_stays_a_cpu_op(tmp_path):
    """A QuantizeLinear writing a uint8 graph output has no DequantizeLinear: it stays an op (on the CPU);
    its input takes its parameters, so the CPU op gets the NPU's integers back unchanged."""
    rng = np.random.default_rng(9)
    w = rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)
    extra = [node("Relu", ["y"], ["r"]), node("QuantizeLinear", ["r", "rs", "rz"], ["rq"])]
    m = _qdq_conv(w, np.full(4, 0.01, F32), extra_nodes=extra, outputs=())
    m.graph.initializer.extend([numpy_helper.from_array(np.array(0.04, F32), "rs"),
                                numpy_helper.from_array(np.array(0, np.uint8), "rz")])
    m.graph.output.append(helper.make_tensor_value_info("rq", onnx.TensorProto.UINT8, None))
    path = _save(tmp_path, m)
    prog = compile_qdq(path)
    assert [s.op_type for s in prog.steps if s.target == "CPU" and s.kind == "eval"] == ["QuantizeLinear"]
    (q,) = [s for s in prog.steps if s.op_type == "QuantizeLinear"]
    assert (prog.tensors[q.inputs[0]].scale, prog.tensors[q.inputs[0]].zero_point) == (np.float32(0.04), -128)
    x = rng.standard_normal((1, 3, 6, 6)).astype(F32)
    y = Runtime(prog).run([x])[0]
    ref = run_ort(path, {"x": x}, False)
    assert y.dtype == np.uint8 and ref.dtype == np.uint8
    assert np.abs(y.astype(int) - ref.astype(int)).max() <= 1


def test_tensor_left_open_needs_a_dataset(tmp_path):
    """A Conv output no pair quantizes: without calibration samples the build names it."""
    rng = np.random.default_rng(10)
    w = rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)
    m = make_model([node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
                    node("DequantizeLinear", ["w", "ws"], ["wd"], axis=0), node("Conv", ["xd", "wd"], ["y"])],
                   {"x": ([1, 3, 6, 6], F32)}, ["y"],
                   {"xs": np.array(0.02, F32), "xz": np.array(0, np.int8), "w": w, "ws": np.full(4, 0.01, F32)})
    path = _save(tmp_path, m)
    with pytest.raises(ModelError, match="tensor 'y' has no quantization"):
        compile_qdq(path)
    samples = [{"x": rng.standard_normal((1, 3, 6, 6)).astype(F32)} for _ in range(2)]
    prog = compile_qdq(path, samples)
    assert (prog.tensors["x"].scale, prog.tensors["x"].zero_point) == (np.float32(0.02), 0)
    (conv,) = [s for s in prog.steps if s.kind == "conv"]
    np.testing.assert_array_equal(prog.consts[conv.inputs[1]], w)


def test_pass_removes_every_pair_of_onnxruntime_models(tmp_path_factory):
    path = qdq_model(tmp_path_factory, "cnn", False, "QInt8")
    g = prepare_graph(import_onnx(path))
    assert not {"QuantizeLinear", "DequantizeLinear"} & set(g.op_types())
    assert g.outputs == ["y"] and set(g.quant.activations) >= set(model_activation_qparams(onnx.load(path)))
    assert not g.quant.refused


def test_int32_bias_kept_where_float32_cannot_carry_it(tmp_path):
    """A bias beyond 2^24 in magnitude is not exact in float32, so re-quantizing the folded float bias would
    change it: the model's int32 values are kept (its scale is x_scale * w_scale as the NPU accumulates)."""
    rng = np.random.default_rng(12)
    w = rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)
    ws = np.array([0.01, 0.02, 0.015, 0.005], F32)
    b = np.array([2**25 + 1, -(2**25) - 3, 12345, -7], np.int32)
    bs = (np.float32(0.02) * ws).astype(F32)  # onnxruntime's bias scale: the float32 product
    m = make_model(
        [node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
         node("DequantizeLinear", ["w", "ws"], ["wd"], axis=0), node("DequantizeLinear", ["b", "bs"], ["bd"], axis=0),
         node("Conv", ["xd", "wd", "bd"], ["c"]), node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
         node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])],
        {"x": ([1, 3, 5, 5], F32)}, ["y"],
        {"xs": np.array(0.02, F32), "xz": np.array(0, np.int8), "w": w, "ws": ws, "b": b, "bs": bs,
         "ys": np.array(0.5, F32), "yz": np.array(0, np.int8)},
    )  # fmt: skip
    path = _save(tmp_path, m)
    prog = compile_qdq(path)
    (conv,) = [s for s in prog.steps if s.kind == "conv"]
    np.testing.assert_array_equal(prog.consts[conv.inputs[3]], b)
    x = rng.standard_normal((1, 3, 5, 5)).astype(F32)
    assert _steps(Runtime(prog).run([x])[0], run_ort(path, {"x": x}, False), 0.5)[0] <= 1


def test_table_rounds_intermediates_like_the_model(tmp_path):
    """x * sigmoid(x) with the sigmoid quantized on a coarse grid (16 steps over [0, 1]): the lookup table
    rounds the sigmoid as the model does. Checked on all 256 input codes against onnxruntime."""
    xs, xz = np.float32(0.05), np.int8(0)
    m = make_model(
        [node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
         node("Sigmoid", ["xd"], ["sg"]), node("QuantizeLinear", ["sg", "ss", "sz"], ["sq"]),
         node("DequantizeLinear", ["sq", "ss", "sz"], ["sd"]), node("Mul", ["xd", "sd"], ["y0"]),
         node("QuantizeLinear", ["y0", "ys", "yz"], ["yq"]), node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])],
        {"x": ([1, 256], F32)}, ["y"],
        {"xs": np.array(xs), "xz": np.array(xz), "ss": np.array(1 / 16, F32), "sz": np.array(-128, np.int8),
         "ys": np.array(0.03, F32), "yz": np.array(-100, np.int8)},
    )  # fmt: skip
    path = _save(tmp_path, m)
    prog = compile_qdq(path)
    assert [s.kind for s in prog.steps] == ["input", "lut", "output"]
    codes = np.arange(-128, 128, dtype=np.float32)
    x = ((codes - np.float32(xz)) * xs).astype(F32).reshape(1, 256)  # every int8 code, exactly
    y = Runtime(prog).run([x])[0]
    for optimized in (True, False):
        assert _steps(y, run_ort(path, {"x": x}, optimized), 0.03)[0] == 0, optimized


def test_requantization_after_maxpool_stays(tmp_path):
    """MaxPool keeps its input's quantization in the int8 program; a pair after it with other parameters
    (clipping the range to half) is a requantization: it stays (CPU ops) and the result is onnxruntime's."""
    rng = np.random.default_rng(13)
    m = make_model(
        [node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]), node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
         node("MaxPool", ["xd"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
         node("QuantizeLinear", ["p", "ps", "pz"], ["pq"]), node("DequantizeLinear", ["pq", "ps", "pz"], ["pd"]),
         node("Add", ["pd", "pd"], ["a"]), node("QuantizeLinear", ["a", "as", "az"], ["aq"]),
         node("DequantizeLinear", ["aq", "as", "az"], ["y"])],
        {"x": ([1, 2, 6, 6], F32)}, ["y"],
        {"xs": np.array(0.02, F32), "xz": np.array(0, np.int8), "ps": np.array(0.01, F32),
         "pz": np.array(0, np.int8), "as": np.array(0.02, F32), "az": np.array(0, np.int8)},
    )  # fmt: skip
    path = _save(tmp_path, m)
    prog = compile_qdq(path)
    assert [s.op_type for s in prog.steps if s.target == "CPU" and s.kind == "eval"] == ["QuantizeLinear",
                                                                                          "DequantizeLinear"]
    assert (prog.tensors["p"].scale, prog.tensors["p"].zero_point) == (np.float32(0.02), 0)
    x = (rng.standard_normal((1, 2, 6, 6)) * 2).astype(F32)
    y = Runtime(prog).run([x])[0]
    assert _steps(y, run_ort(path, {"x": x}, False), 0.02)[0] == 0
