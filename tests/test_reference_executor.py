"""The float32 golden executor (npuemu.reference): run_graph's contract, fused post-ops, erf without scipy,
and the CNN workhorses (Conv, ConvTranspose, pooling, Resize) on configurations beyond the ONNX node
cases, against onnxruntime on one-node models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

from graph_builders import make_model, run_ort_model
from npuemu.errors import ExecutionError, ModelError, ShapeError, UnsupportedOpError
from npuemu.frontend import import_onnx
from npuemu.ir import Graph, Node, Value
from npuemu.reference import run_graph, supported_ops
from npuemu.reference.ops_elementwise import erf

F32 = np.float32
n = helper.make_node


def _chain():
    model = make_model(
        [n("Relu", ["x"], ["a"]), n("Neg", ["a"], ["b"]), n("Exp", ["b"], ["y"])], {"x": ([2, 3], F32)}, ["y"]
    )
    return import_onnx(model)


def test_run_graph_outputs_keep_and_feeds(rng):
    g = _chain()
    x = rng.standard_normal((2, 3))
    out = run_graph(g, {"x": x})  # float64 feed: computed in float32
    assert set(out) == {"y"} and out["y"].dtype == np.float32
    np.testing.assert_allclose(out["y"], np.exp(-np.maximum(x.astype(F32), 0)), rtol=1e-6)
    every = run_graph(g, {"x": x}, keep=True)
    assert {"x", "a", "b", "y"} <= set(every)
    some = run_graph(g, {"x": x}, keep={"a"})
    assert set(some) == {"y", "a"}
    with pytest.raises(ModelError, match="missing feed for graph input 'x'"):
        run_graph(g, {})
    with pytest.raises(ModelError, match="not graph inputs"):
        run_graph(g, {"x": x, "z": x})
    with pytest.raises(ShapeError, match=r"input 'x' has shape \(3, 2\), the graph expects \(2, 3\)"):
        run_graph(g, {"x": x.T})
    with pytest.raises(TypeError, match="dict"):
        run_graph(g, [x])


def test_integer_tensors_keep_their_dtype():
    model = make_model([n("Add", ["x", "x"], ["y"])], {"x": ([3], np.int32)}, {"y": np.int32})
    y = run_graph(import_onnx(model), {"x": np.array([1, 2, 2**30], np.int32)})["y"]
    assert y.dtype == np.int32 and y.tolist() == [2, 4, -(2**31)]  # wraps as two's complement


def test_float16_values_are_rounded_to_half_precision():
    model = make_model([n("Cast", ["x"], ["h"], to=10), n("Cast", ["h"], ["y"], to=1)], {"x": ([1], F32)}, ["y"])
    y = run_graph(import_onnx(model), {"x": np.array([1.0001], F32)})["y"]
    assert y[0] == F32(np.float16(1.0001))


def test_fused_add_and_activation_post_ops(rng):
    w = rng.standard_normal((4, 4, 3, 3)).astype(F32)
    values = {
        "x": Value("x", (1, 4, 5, 5), F32),
        "z": Value("z", (1, 4, 5, 5), F32),
        "w": Value("w", None, F32, w),
        "y": Value("y", (1, 4, 5, 5), F32),
        "y_plain": Value("y_plain", (1, 4, 5, 5), F32),
    }
    conv = dict(pads=[1, 1, 1, 1])
    fused = Node("Conv", "c", ["x", "w"], ["y"], {**conv, "_add": "z", "_act": ("clip", -0.5, 0.75)})
    plain = Node("Conv", "p", ["x", "w"], ["y_plain"], dict(conv))
    g = Graph([fused, plain], ["x", "z"], ["y", "y_plain"], values, 17, "t")
    g.validate()
    assert [c.name for c in g.consumers()["z"]] == ["c"]
    feeds = {"x": rng.standard_normal((1, 4, 5, 5)).astype(F32), "z": rng.standard_normal((1, 4, 5, 5)).astype(F32)}
    out = run_graph(g, feeds)
    np.testing.assert_array_equal(out["y"], np.clip(out["y_plain"] + feeds["z"], F32(-0.5), F32(0.75)))


def test_executor_errors_name_the_node():
    g = Graph(
        [Node("NoSuchOp", "bad", ["x"], ["y"])],
        ["x"],
        ["y"],
        {"x": Value("x", (2,), F32), "y": Value("y", (2,), F32)},
        17,
        "t",
    )
    with pytest.raises(UnsupportedOpError, match=r"NoSuchOp \(node 'bad'\)"):
        run_graph(g, {"x": np.zeros(2, F32)})
    g2 = Graph(
        [Node("Reshape", "rs", ["x", "s"], ["y"])],
        ["x"],
        ["y"],
        {"x": Value("x", (2, 3), F32), "s": Value("s", None, np.int64, np.array([4, 4])), "y": Value("y", (4, 4), F32)},
        17,
        "t",
    )
    with pytest.raises(ExecutionError, match=r"Reshape node 'rs': Reshape: input \(2, 3\)"):
        run_graph(g2, {"x": np.zeros((2, 3), F32)})


def test_erf_matches_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, -0.0, 2.4999999, 2.5, 2.5000001, 1e-30, -1e-8, 40.0, -40.0]])
    ref = np.array([math.erf(v) for v in x])
    got = erf(x)
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)
    assert rel.max() < 1e-12, (x[rel.argmax()], got[rel.argmax()], ref[rel.argmax()])
    assert np.isnan(erf(np.array([np.nan]))[0]) and erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]


def test_supported_ops_lists_opset_ranges():
    ops = supported_ops()
    assert ops["Conv"][0] == 1 and ops["Softmax"] == (1, ops["Softmax"][1])
    assert all(r is not None and r[0] <= r[1] for r in ops.values())


# ------------------------------------------------------------------------------------------------------
# Conv / ConvTranspose / pooling / Resize configurations vs onnxruntime


def _one_node_vs_ort(node, inputs: dict, inits: dict, rng, opset=17, rtol=1e-4, atol=1e-5, outs=("y",)):
    pytest.importorskip("onnxruntime")
    model = make_model([node], {k: (list(v.shape), v.dtype) for k, v in inputs.items()}, list(outs), inits, opset)
    g = import_onnx(model)
    ours = run_graph(g, inputs)
    ref = run_ort_model(model, inputs)
    for o in outs:
        assert ours[o].shape == ref[o].shape, (ours[o].shape, ref[o].shape)
        np.testing.assert_allclose(ours[o], ref[o], rtol=rtol, atol=atol)


_CONV = [
    # (C, M, group, kernel, strides, dilations, pads, auto_pad, spatial)
    (6, 12, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), None, (9, 8)),
    (6, 12, 3, (3, 3), (2, 2), (1, 1), (0, 1, 2, 1), None, (9, 11)),
    (8, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), None, (7, 7)),  # depthwise
    (4, 8, 4, (5, 5), (2, 1), (2, 2), (4, 4, 4, 4), None, (10, 9)),  # depthwise x2 multiplier, dilated
    (3, 5, 1, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), None, (7, 6)),  # strided 1x1
    (4, 6, 2, (2, 3), (3, 2), (1, 1), None, "SAME_UPPER", (10, 7)),
    (4, 6, 1, (3, 2), (2, 2), (1, 1), None, "SAME_LOWER", (9, 7)),
    (4, 6, 1, (3, 3), (2, 2), (1, 1), None, "VALID", (9, 7)),
    (3, 4, 1, (3,), (2,), (2,), (1, 1), None, (13,)),  # 1-D
    (2, 4, 2, (2, 3, 2), (1, 2, 1), (1, 1, 1), (0, 1, 1, 1, 0, 0), None, (4, 5, 3)),  # 3-D grouped
]


@pytest.mark.parametrize("C,M,group,k,s,d,pads,auto_pad,sp", _CONV)
def test_conv_configurations(rng, C, M, group, k, s, d, pads, auto_pad, sp):
    x = rng.standard_normal((2, C) + sp).astype(F32)
    w = rng.standard_normal((M, C // group) + k).astype(F32)
    b = rng.standard_normal(M).astype(F32)
    attrs = dict(group=group, strides=list(s), dilations=list(d), kernel_shape=list(k))
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = list(pads)
    _one_node_vs_ort(n("Conv", ["x", "w", "b"], ["y"], **attrs), {"x": x}, {"w": w, "b": b}, rng)


_CONVT = [
    # (C, M/g, group, kernel, strides, dilations, pads, output_padding, output_shape, auto_pad, spatial)
    (4, 3, 1, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), None, None, (5, 4)),
    (4, 2, 2, (4, 4), (2, 2), (1, 1), (1, 1, 1, 1), None, None, None, (6, 6)),  # YOLO / OCR-style x2 upsample
    (6, 1, 6, (3, 3), (1, 1), (2, 2), (0, 1, 2, 0), None, None, None, (5, 5)),  # depthwise, dilated
    (3, 2, 1, (3, 2), (3, 2), (1, 1), None, None, (10, 8), None, (4, 4)),  # output_shape
    (3, 2, 1, (3, 3), (2, 2), (1, 1), None, None, None, "SAME_UPPER", (4, 5)),
    (2, 3, 1, (3,), (2,), (1,), (0, 1), (1,), None, None, (6,)),  # 1-D
]


@pytest.mark.parametrize("C,mg,group,k,s,d,pads,opad,oshape,auto_pad,sp", _CONVT)
def test_conv_transpose_configurations(rng, C, mg, group, k, s, d, pads, opad, oshape, auto_pad, sp):
    x = rng.standard_normal((1, C) + sp).astype(F32)
    w = rng.standard_normal((C, mg) + k).astype(F32)
    b = rng.standard_normal(mg * group).astype(F32)
    attrs = dict(group=group, strides=list(s), dilations=list(d))
    for key, v in (("pads", pads), ("output_padding", opad), ("output_shape", oshape), ("auto_pad", auto_pad)):
        if v is not None:
            attrs[key] = list(v) if not isinstance(v, str) else v
    _one_node_vs_ort(n("ConvTranspose", ["x", "w", "b"], ["y"], **attrs), {"x": x}, {"w": w, "b": b}, rng)


_POOL = [
    # (op, kernel, strides, pads, ceil_mode, count_include_pad, dilations, auto_pad)
    ("MaxPool", (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, None, None),
    ("MaxPool", (3, 3), (2, 2), (0, 0, 0, 0), 1, 0, None, None),
    ("MaxPool", (2, 3), (2, 1), (1, 0, 0, 1), 1, 0, (2, 1), None),
    ("MaxPool", (5, 5), (1, 1), (2, 2, 2, 2), 0, 0, None, None),  # YOLO SPPF
    ("MaxPool", (3, 3), (2, 2), None, 0, 0, None, "SAME_UPPER"),
    ("AveragePool", (3, 3), (2, 2), (1, 1, 1, 1), 0, 0, None, None),
    ("AveragePool", (3, 3), (2, 2), (1, 1, 1, 1), 0, 1, None, None),
    ("AveragePool", (3, 3), (2, 2), (0, 1, 1, 0), 1, 0, None, None),
    ("AveragePool", (3, 3), (2, 2), (1, 1, 1, 1), 1, 1, None, None),
    ("AveragePool", (2, 2), (2, 2), None, 0, 0, None, "SAME_LOWER"),
]


@pytest.mark.parametrize("op,k,s,pads,ceil,cip,d,auto_pad", _POOL)
def test_pool_configurations(rng, op, k, s, pads, ceil, cip, d, auto_pad):
    x = rng.standard_normal((2, 3, 11, 10)).astype(F32)
    attrs = dict(kernel_shape=list(k), strides=list(s), ceil_mode=ceil)
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = list(pads)
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    if d:
        attrs["dilations"] = list(d)
    _one_node_vs_ort(n(op, ["x"], ["y"], **attrs), {"x": x}, {}, rng, opset=19)


def test_maxpool_indices_vs_onnxruntime(rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(F32)
    _one_node_vs_ort(
        n("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        {"x": x},
        {},
        rng,
        outs=("y",),
    )
    model = make_model(
        [n("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        {"x": ([2, 3, 9, 8], F32)},
        {"y": F32, "i": np.int64},
    )
    pytest.importorskip("onnxruntime")
    ours = run_graph(import_onnx(model), {"x": x})
    ref = run_ort_model(model, {"x": x})
    np.testing.assert_array_equal(ours["i"], ref["i"])


_RESIZE = [
    # (mode, coordinate_transformation_mode, nearest_mode, scales or sizes)
    ("nearest", "asymmetric", "floor", ("scales", [1, 1, 2, 2])),
    ("nearest", "half_pixel", "round_prefer_floor", ("scales", [1, 1, 1.7, 0.6])),
    ("nearest", "pytorch_half_pixel", "round_prefer_ceil", ("sizes", [2, 3, 13, 5])),
    # align_corners with a fractional scale * length: the ONNX node cases (test_resize_*_align_corners,
    # passed in test_frontend_conformance) divide by scale * length, onnxruntime by the integer length;
    # npuemu follows the node cases, so only integral output lengths are compared with onnxruntime here.
    ("nearest", "align_corners", "ceil", ("scales", [1, 1, 2, 1.5])),
    ("nearest", "tf_half_pixel_for_nn", "round_prefer_floor", ("scales", [1, 1, 2, 3])),
    ("linear", "half_pixel", "round_prefer_floor", ("scales", [1, 1, 2, 2])),
    ("linear", "half_pixel", "round_prefer_floor", ("scales", [1, 1, 0.5, 0.75])),
    ("linear", "pytorch_half_pixel", "round_prefer_floor", ("sizes", [2, 3, 1, 17])),
    ("linear", "align_corners", "round_prefer_floor", ("sizes", [2, 3, 15, 4])),
    ("linear", "asymmetric", "round_prefer_floor", ("scales", [1, 1, 3, 1.25])),
    ("cubic", "half_pixel", "round_prefer_floor", ("scales", [1, 1, 2, 0.8])),
]


@pytest.mark.parametrize("mode,ctm,nm,size", _RESIZE)
def test_resize_configurations(rng, mode, ctm, nm, size):
    x = rng.standard_normal((2, 3, 7, 6)).astype(F32)
    kind, vals = size
    if kind == "scales":
        ins, inits = ["x", "", "scales"], {"scales": np.array(vals, F32)}
    else:
        ins, inits = ["x", "", "", "sizes"], {"sizes": np.array(vals, np.int64)}
    node = n("Resize", ins, ["y"], mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nm)
    _one_node_vs_ort(node, {"x": x}, inits, rng, opset=13)
