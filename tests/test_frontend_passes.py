"""Graph passes (npuemu.frontend.passes): each rewrite keeps the graph outputs equal (float executor before
and after, on seeded random inputs) and the original model agrees with onnxruntime; fusions happen only
where legal (single reader, not a graph output, same shapes)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from graph_builders import conv_weights, make_model, run_ort_model
from npuemu.frontend import import_onnx, passes
from npuemu.reference import run_graph

F32 = np.float32


def _feeds(g, rng):
    return {n: rng.standard_normal(g.values[n].shape).astype(F32) for n in g.inputs}


def _check_equivalent(model, after, rng, rtol=1e-5, atol=1e-5, ort=True):
    """Runs the imported model before and after ``after(graph)``; returns (before graph, after graph)."""
    g = import_onnx(model)
    g2 = after(g)
    g2.validate()
    feeds = _feeds(g, rng)
    ref = run_graph(g, feeds)
    got = run_graph(g2, feeds)
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=rtol, atol=atol, err_msg=k)
    if ort:
        pytest.importorskip("onnxruntime")
        o = run_ort_model(model, feeds)
        for k in o:
            np.testing.assert_allclose(ref[k], o[k], rtol=1e-4, atol=1e-5, err_msg=f"{k} vs onnxruntime")
    return g, g2


def _bn_inits(rng, c, prefix="bn"):
    return {
        f"{prefix}_s": rng.uniform(0.5, 1.5, c).astype(F32),
        f"{prefix}_b": rng.standard_normal(c).astype(F32),
        f"{prefix}_m": rng.standard_normal(c).astype(F32),
        f"{prefix}_v": rng.uniform(0.5, 2, c).astype(F32),
    }


def _bn(x, y, prefix="bn", eps=1e-5):
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}_{k}" for k in "sbmv"], [y], epsilon=eps)


# ------------------------------------------------------------------------------------------------------
# constant folding


def _shape_arith_model():
    """x * w where w = Where(Equal(Range(0, C), 1), 2.0, Cast(Range)) broadcast to x's shape, and a Reshape
    of x whose target shape is computed from Shape(x) (Gather, Unsqueeze, Concat, ConstantOfShape, Expand)."""
    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["s"]),
        n("Gather", ["s", "i1"], ["c"], axis=0),  # C
        n("Range", ["zero", "c", "one"], ["r"]),  # [0..C)
        n("Equal", ["r", "one"], ["eq"]),
        n("Cast", ["r"], ["rf"], to=1),
        n("Where", ["eq", "two", "rf"], ["w1"]),
        n("Unsqueeze", ["c", "ax0"], ["c1"]),
        n("ConstantOfShape", ["c1"], ["ones"], value=helper.make_tensor("v", 1, [1], [1.0])),
        n("Add", ["w1", "ones"], ["w2"]),
        n("Concat", ["one1", "c1", "one1", "one1"], ["wshape"], axis=0),
        n("Reshape", ["w2", "wshape"], ["w"]),
        n("Expand", ["w", "s"], ["wx"]),
        n("Mul", ["x", "wx"], ["y0"]),
        n("Gather", ["s", "i0"], ["b"], axis=0),
        n("Unsqueeze", ["b", "ax0"], ["b1"]),
        n("Concat", ["b1", "minus1"], ["flat"], axis=0),
        n("Reshape", ["y0", "flat"], ["y"]),
    ]
    inits = {
        "i0": np.array(0, np.int64),
        "i1": np.array(1, np.int64),
        "zero": np.array(0, np.int64),
        "one": np.array(1, np.int64),
        "two": np.array(2.0, F32),
        "ax0": np.array([0], np.int64),
        "one1": np.array([1], np.int64),
        "minus1": np.array([-1], np.int64),
    }
    return make_model(nodes, {"x": ([2, 3, 4, 5], F32)}, ["y"], inits)


def test_import_folds_shape_subgraphs(rng):
    g = import_onnx(_shape_arith_model())
    assert g.op_types() == {"Mul": 1, "Reshape": 1}, g.summary()
    assert g.values["y"].shape == (2, 60)
    feeds = _feeds(g, rng)
    pytest.importorskip("onnxruntime")
    np.testing.assert_allclose(run_graph(g, feeds)["y"], run_ort_model(_shape_arith_model(), feeds)["y"], rtol=1e-6)


def test_fold_constants_pass_removes_constant_chains(rng):
    model = _shape_arith_model()
    g = import_onnx(model, fold_constants=False)
    # without fold_constants the importer folds only what static shapes need: the float chain stays
    assert {"ConstantOfShape", "Add", "Expand"} <= set(g.op_types()), g.summary()
    g2 = passes.fold_constants(g)
    assert g2.op_types() == {"Mul": 1, "Reshape": 1}, g2.summary()
    feeds = _feeds(g, rng)
    np.testing.assert_array_equal(run_graph(g2, feeds)["y"], run_graph(g, feeds)["y"])
    assert len(g.nodes) > len(g2.nodes)  # the argument graph is left as it was


def test_fold_constants_keeps_dequantize_linear():
    n = helper.make_node
    model = make_model(
        [n("DequantizeLinear", ["wq", "ws", "wz"], ["w"]), n("Conv", ["x", "w"], ["y"])],
        {"x": ([1, 2, 5, 5], F32)},
        ["y"],
        {"wq": np.ones((3, 2, 3, 3), np.int8), "ws": np.array(0.5, F32), "wz": np.array(0, np.int8)},
        opset=13,
    )
    g = passes.fold_constants(import_onnx(model))
    assert "DequantizeLinear" in g.op_types()
    g2 = passes.fold_constants(import_onnx(model), keep_qdq=False)
    assert "DequantizeLinear" not in g2.op_types()


# ------------------------------------------------------------------------------------------------------
# BatchNormalization


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_conv(rng, bias):
    n = helper.make_node
    inits = {"w": conv_weights(rng, 8, 4), **_bn_inits(rng, 8)}
    conv_in = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(8).astype(F32)
        conv_in.append("b")
    model = make_model(
        [n("Conv", conv_in, ["c"], pads=[1, 1, 1, 1]), _bn("c", "y")], {"x": ([2, 4, 7, 7], F32)}, ["y"], inits
    )
    _, g2 = _check_equivalent(model, passes.fold_batchnorm, rng)
    assert g2.op_types() == {"Conv": 1}
    assert g2.nodes[0].outputs == ["y"]


def test_fold_batchnorm_into_grouped_conv_transpose(rng):
    n = helper.make_node
    inits = {
        "w": rng.standard_normal((4, 3, 3, 3)).astype(F32),
        "b": rng.standard_normal(6).astype(F32),
        **_bn_inits(rng, 6),
    }
    model = make_model(
        [n("ConvTranspose", ["x", "w", "b"], ["c"], group=2, strides=[2, 2]), _bn("c", "y")],
        {"x": ([1, 4, 5, 5], F32)},
        ["y"],
        inits,
    )
    _, g2 = _check_equivalent(model, passes.fold_batchnorm, rng)
    assert g2.op_types() == {"ConvTranspose": 1}


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_c", [True, False])
def test_fold_batchnorm_into_gemm(rng, trans_b, with_c):
    n = helper.make_node
    w = rng.standard_normal((6, 5) if trans_b else (5, 6)).astype(F32)
    inits = {"w": w, **_bn_inits(rng, 6)}
    gin = ["x", "w"]
    if with_c:
        inits["c"] = rng.standard_normal(6).astype(F32)
        gin.append("c")
    model = make_model(
        [n("Gemm", gin, ["g"], transB=trans_b, alpha=0.5, beta=2.0), _bn("g", "y")], {"x": ([3, 5], F32)}, ["y"], inits
    )
    _, g2 = _check_equivalent(model, passes.fold_batchnorm, rng)
    assert g2.op_types() == {"Gemm": 1}


def test_batchnorm_without_weighted_producer_becomes_scale_shift(rng):
    n = helper.make_node
    model = make_model([n("Relu", ["x"], ["r"]), _bn("r", "y")], {"x": ([2, 5, 4, 4], F32)}, ["y"], _bn_inits(rng, 5))
    _, g2 = _check_equivalent(model, passes.fold_batchnorm, rng)
    assert g2.op_types() == {"Relu": 1, "Mul": 1, "Add": 1}


def test_batchnorm_not_folded_into_conv_read_twice(rng):
    n = helper.make_node
    inits = {"w": conv_weights(rng, 4, 4), **_bn_inits(rng, 4)}
    model = make_model(
        [n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), _bn("c", "y"), n("Relu", ["c"], ["z"])],
        {"x": ([1, 4, 6, 6], F32)},
        ["y", "z"],
        inits,
    )
    g, g2 = _check_equivalent(model, passes.fold_batchnorm, rng)
    assert g2.op_types() == {"Conv": 1, "Mul": 1, "Add": 1, "Relu": 1}
    conv = [x for x in g2.nodes if x.op_type == "Conv"][0]
    assert conv.inputs[1] == "w"  # weights untouched


# ------------------------------------------------------------------------------------------------------
# per-channel affine folding


def test_channel_affine_folds_into_conv(rng):
    n = helper.make_node
    inits = {
        "w": conv_weights(rng, 4, 3),
        "s": rng.uniform(0.5, 2, (4, 1, 1)).astype(F32),
        "t": rng.standard_normal((1, 4, 1, 1)).astype(F32),
        "d": np.array(3.0, F32),
    }
    model = make_model(
        [
            n("Conv", ["x", "w"], ["c"]),
            n("Mul", ["s", "c"], ["m"]),
            n("Sub", ["m", "t"], ["a"]),
            n("Div", ["a", "d"], ["y"]),
        ],
        {"x": ([1, 3, 6, 6], F32)},
        ["y"],
        inits,
    )
    _, g2 = _check_equivalent(model, passes.fold_channel_affine, rng)
    assert g2.op_types() == {"Conv": 1}


def test_channel_affine_not_folded_when_not_per_channel(rng):
    n = helper.make_node
    inits = {"w": conv_weights(rng, 4, 3), "s": rng.uniform(0.5, 2, (1, 1, 4, 4)).astype(F32)}
    model = make_model(
        [n("Conv", ["x", "w"], ["c"]), n("Mul", ["c", "s"], ["y"])], {"x": ([1, 3, 6, 6], F32)}, ["y"], inits
    )
    _, g2 = _check_equivalent(model, passes.fold_channel_affine, rng)
    assert g2.op_types() == {"Conv": 1, "Mul": 1}


def test_affine_chain_collapses_to_mul_add(rng):
    n = helper.make_node
    inits = {f"c{i}": rng.uniform(0.5, 2, (3, 1, 1)).astype(F32) for i in range(4)}
    model = make_model(
        [
            n("Mul", ["x", "c0"], ["a"]),
            n("Add", ["a", "c1"], ["b"]),
            n("Mul", ["b", "c2"], ["c"]),
            n("Add", ["c", "c3"], ["y"]),
        ],
        {"x": ([2, 3, 4, 4], F32)},
        ["y"],
        inits,
    )
    _, g2 = _check_equivalent(model, passes.fold_channel_affine, rng)
    assert g2.op_types() == {"Mul": 1, "Add": 1}


# ------------------------------------------------------------------------------------------------------
# activations


_ACTS = [
    ("Relu", {}, [], ("relu",)),
    ("Clip", {}, [("lo", 0.0), ("hi", 6.0)], ("clip", 0.0, 6.0)),
    ("LeakyRelu", {"alpha": 0.125}, [], ("leaky_relu", 0.125)),
    ("Sigmoid", {}, [], ("sigmoid",)),
    ("Tanh", {}, [], ("tanh",)),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.375}, [], ("hard_sigmoid", 0.25, 0.375)),
    ("HardSwish", {}, [], ("hard_swish",)),
    ("Mish", {}, [], ("mish",)),
]


@pytest.mark.parametrize("op,attrs,extra,act", _ACTS, ids=[a[0] for a in _ACTS])
@pytest.mark.parametrize("producer", ["Conv", "Gemm", "MatMul"])
def test_activation_fused_onto_single_reader_producer(rng, op, attrs, extra, act, producer):
    n = helper.make_node
    if producer == "Conv":
        inits = {"w": conv_weights(rng, 4, 3), "b": rng.standard_normal(4).astype(F32)}
        prod, shape = n("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), [1, 3, 5, 5]
    elif producer == "Gemm":
        inits = {"w": rng.standard_normal((4, 6)).astype(F32), "b": rng.standard_normal(4).astype(F32)}
        prod, shape = n("Gemm", ["x", "w", "b"], ["c"], transB=1), [2, 6]
    else:
        inits = {"w": rng.standard_normal((6, 4)).astype(F32)}
        prod, shape = n("MatMul", ["x", "w"], ["c"]), [2, 3, 6]
    for name, v in extra:
        inits[name] = np.array(v, F32)
    model = make_model(
        [prod, n(op, ["c"] + [e[0] for e in extra], ["y"], **attrs)], {"x": (shape, F32)}, ["y"], inits, opset=18
    )
    _, g2 = _check_equivalent(model, passes.fuse_activations, rng, ort=op != "Mish" or producer == "Conv")
    assert g2.op_types() == {producer: 1}
    assert g2.nodes[0].attrs["_act"] == act and g2.nodes[0].outputs == ["y"]


def test_activation_not_fused_when_output_read_twice_or_returned(rng):
    n = helper.make_node
    inits = {"w": conv_weights(rng, 4, 3)}
    two_readers = make_model(
        [n("Conv", ["x", "w"], ["c"]), n("Relu", ["c"], ["y"]), n("Neg", ["c"], ["z"])],
        {"x": ([1, 3, 5, 5], F32)},
        ["y", "z"],
        inits,
    )
    _, g2 = _check_equivalent(two_readers, passes.optimize, rng)
    assert "Relu" in g2.op_types() and "_act" not in g2.nodes[0].attrs
    returned = make_model(
        [n("Conv", ["x", "w"], ["c"]), n("Relu", ["c"], ["y"])], {"x": ([1, 3, 5, 5], F32)}, ["y", "c"], inits
    )
    _, g3 = _check_equivalent(returned, passes.optimize, rng)
    assert "Relu" in g3.op_types()


def test_clip_with_runtime_bound_not_fused(rng):
    n = helper.make_node
    model = make_model(
        [n("Conv", ["x", "w"], ["c"]), n("Clip", ["c", "lo"], ["y"])],
        {"x": ([1, 3, 5, 5], F32), "lo": ([], F32)},
        ["y"],
        {"w": conv_weights(rng, 4, 3)},
    )
    g = passes.fuse_activations(import_onnx(model))
    assert "Clip" in g.op_types()


# ------------------------------------------------------------------------------------------------------
# SiLU / HardSwish


@pytest.mark.parametrize("order", ["x_first", "sigmoid_first"])
def test_silu_pattern_becomes_one_node(rng, order):
    n = helper.make_node
    mul_in = ["x", "s"] if order == "x_first" else ["s", "x"]
    model = make_model([n("Sigmoid", ["x"], ["s"]), n("Mul", mul_in, ["y"])], {"x": ([2, 3, 4], F32)}, ["y"])
    _, g2 = _check_equivalent(model, passes.fuse_silu, rng)
    assert g2.op_types() == {"Swish": 1} and g2.nodes[0].attrs == {"alpha": 1.0}


def test_silu_after_conv_fuses_as_activation(rng):
    n = helper.make_node
    model = make_model(
        [n("Conv", ["x", "w"], ["c"]), n("Sigmoid", ["c"], ["s"]), n("Mul", ["c", "s"], ["y"])],
        {"x": ([1, 3, 6, 6], F32)},
        ["y"],
        {"w": conv_weights(rng, 8, 3)},
    )
    _, g2 = _check_equivalent(model, passes.optimize, rng)
    assert g2.op_types() == {"Conv": 1} and g2.nodes[0].attrs["_act"] == ("silu",)


@pytest.mark.parametrize("beta", [1.0, 1.702])
@pytest.mark.parametrize("order", ["x_first", "beta_first"])
def test_swish_with_beta_pattern_becomes_one_node(rng, beta, order):
    """PaddlePaddle exports swish as x * Sigmoid(x * beta), beta 1.0 by default: Swish(alpha beta)."""
    n = helper.make_node
    scale_in = ["x", "beta"] if order == "x_first" else ["beta", "x"]
    model = make_model(
        [n("Mul", scale_in, ["xb"]), n("Sigmoid", ["xb"], ["s"]), n("Mul", ["x", "s"], ["y"])],
        {"x": ([2, 3, 4], F32)},
        ["y"],
        {"beta": np.array([beta], F32)},
    )
    _, g2 = _check_equivalent(model, passes.fuse_silu, rng)
    assert g2.op_types() == {"Swish": 1} and g2.nodes[0].attrs == {"alpha": pytest.approx(beta)}
    assert g2.nodes[0].inputs == ["x"]


def test_swish_with_beta_after_conv_fuses_as_silu(rng):
    n = helper.make_node
    model = make_model(
        [n("Conv", ["x", "w"], ["c"]), n("Mul", ["c", "one"], ["cb"]), n("Sigmoid", ["cb"], ["s"]),
         n("Mul", ["c", "s"], ["y"])],
        {"x": ([1, 3, 6, 6], F32)},
        ["y"],
        {"w": conv_weights(rng, 8, 3), "one": np.array(1.0, F32)},
    )
    _, g2 = _check_equivalent(model, passes.optimize, rng)
    assert g2.op_types() == {"Conv": 1} and g2.nodes[0].attrs["_act"] == ("silu",)


def test_swish_with_beta_left_alone_when_not_the_pattern(rng):
    n = helper.make_node
    cases = {
        # the scaled tensor is read elsewhere too
        "shared": ([n("Mul", ["x", "beta"], ["xb"]), n("Sigmoid", ["xb"], ["s"]), n("Mul", ["x", "s"], ["y"]),
                    n("Neg", ["xb"], ["z"])], ["y", "z"], {"beta": np.array([2.0], F32)}),
        # a per-channel factor, not a scalar
        "vector": ([n("Mul", ["x", "beta"], ["xb"]), n("Sigmoid", ["xb"], ["s"]), n("Mul", ["x", "s"], ["y"])],
                   ["y"], {"beta": np.array([1.0, 2.0, 3.0, 4.0], F32)}),
        # Sigmoid of a scaled other tensor
        "other": ([n("Mul", ["v", "beta"], ["vb"]), n("Sigmoid", ["vb"], ["s"]), n("Mul", ["x", "s"], ["y"])],
                  ["y"], {"beta": np.array([1.0], F32)}),
    }
    for name, (nodes, outs, inits) in cases.items():
        model = make_model(nodes, {"x": ([2, 3, 4], F32), "v": ([2, 3, 4], F32)}, outs, inits)
        _, g2 = _check_equivalent(model, passes.fuse_silu, rng)
        assert "Swish" not in g2.op_types(), name


def test_silu_not_detected_when_sigmoid_is_read_elsewhere_or_inputs_differ(rng):
    n = helper.make_node
    shared = make_model(
        [n("Sigmoid", ["x"], ["s"]), n("Mul", ["x", "s"], ["y"]), n("Neg", ["s"], ["z"])],
        {"x": ([2, 3], F32)},
        ["y", "z"],
    )
    _, g2 = _check_equivalent(shared, passes.fuse_silu, rng)
    assert "Swish" not in g2.op_types()
    other = make_model(
        [n("Sigmoid", ["x"], ["s"]), n("Mul", ["v", "s"], ["y"])], {"x": ([2, 3], F32), "v": ([2, 3], F32)}, ["y"]
    )
    _, g3 = _check_equivalent(other, passes.fuse_silu, rng)
    assert "Swish" not in g3.op_types()


def test_hard_swish_pattern(rng):
    n = helper.make_node
    model = make_model(
        [n("HardSigmoid", ["x"], ["s"], alpha=1 / 6, beta=0.5), n("Mul", ["x", "s"], ["y"])],
        {"x": ([2, 3, 4], F32)},
        ["y"],
    )
    _, g2 = _check_equivalent(model, passes.fuse_silu, rng)
    assert g2.op_types() == {"HardSwish": 1}


@pytest.mark.parametrize("scale", ["div6", "mul_sixth"])
@pytest.mark.parametrize("swap", [False, True])
def test_hard_swish_arithmetic_pattern(rng, scale, swap):
    """PaddlePaddle writes HardSwish as x * Clip(x + 3, 0, 6) / 6."""
    n = helper.make_node
    tail = n("Div", ["m", "six"], ["y"]) if scale == "div6" else n("Mul", ["m", "sixth"], ["y"])
    model = make_model(
        [n("Add", ["three", "x"] if swap else ["x", "three"], ["a"]), n("Clip", ["a", "zero", "six"], ["c"]),
         n("Mul", ["c", "x"] if swap else ["x", "c"], ["m"]), tail],
        {"x": ([2, 3, 5], F32)},
        ["y"],
        {"three": np.array(3, F32), "zero": np.array(0, F32), "six": np.array(6, F32),
         "sixth": np.array(1 / 6, F32)},
    )
    _, g2 = _check_equivalent(model, passes.fuse_hard_swish_arith, rng)
    assert g2.op_types() == {"HardSwish": 1} and g2.nodes[0].inputs == ["x"]
    # the same after the Clip was fused into the Add (as prepare_graph does before the compiler sees it)
    _, g3 = _check_equivalent(model, lambda g: passes.fuse_hard_swish_arith(
        passes.fuse_activations(g, kinds={"clip"}, targets=("Add",))), rng)
    assert g3.op_types() == {"HardSwish": 1}


def test_hard_swish_arithmetic_pattern_needs_its_constants_and_single_readers(rng):
    n = helper.make_node
    inits = {"three": np.array(3, F32), "zero": np.array(0, F32), "six": np.array(6, F32),
             "five": np.array(5, F32)}
    wrong_bound = make_model(
        [n("Add", ["x", "three"], ["a"]), n("Clip", ["a", "zero", "five"], ["c"]), n("Mul", ["x", "c"], ["m"]),
         n("Div", ["m", "six"], ["y"])], {"x": ([2, 3], F32)}, ["y"], inits)
    _, g2 = _check_equivalent(wrong_bound, passes.fuse_hard_swish_arith, rng)
    assert "HardSwish" not in g2.op_types()
    clip_read_twice = make_model(
        [n("Add", ["x", "three"], ["a"]), n("Clip", ["a", "zero", "six"], ["c"]), n("Mul", ["x", "c"], ["m"]),
         n("Div", ["m", "six"], ["y"]), n("Neg", ["c"], ["z"])], {"x": ([2, 3], F32)}, ["y", "z"], inits)
    _, g3 = _check_equivalent(clip_read_twice, passes.fuse_hard_swish_arith, rng)
    assert "HardSwish" not in g3.op_types()


# ------------------------------------------------------------------------------------------------------
# LayerNorm pattern


def _layer_norm_model(rng, shape=(2, 5, 12), axes=(-1,), square="pow", divide="div", gamma="vec", beta=True,
                      opset=13, extra_reader=False):
    """PaddlePaddle's / older exporters' LayerNorm: ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div,
    Mul gamma, Add beta."""
    n = helper.make_node
    norm = tuple(shape[a] for a in axes)
    inits = {"eps": np.array(1e-5, F32), "two": np.array(2.0, F32),
             "g": rng.uniform(0.5, 1.5, norm).astype(F32), "b": rng.standard_normal(norm).astype(F32),
             "gc": rng.uniform(0.5, 1.5, (shape[1], 1)).astype(F32)}

    def mean(x, y):
        if opset >= 18:
            inits["axes"] = np.array(axes, np.int64)
            return n("ReduceMean", [x, "axes"], [y])
        return n("ReduceMean", [x], [y], axes=list(axes))

    nodes = [mean("x", "m"), n("Sub", ["x", "m"], ["d"]),
             n("Pow", ["d", "two"], ["sq"]) if square == "pow" else n("Mul", ["d", "d"], ["sq"]),
             mean("sq", "v"), n("Add", ["v", "eps"], ["ve"]), n("Sqrt", ["ve"], ["s"])]
    if divide == "div":
        nodes.append(n("Div", ["d", "s"], ["y0"]))
    else:
        nodes += [n("Reciprocal", ["s"], ["r"]), n("Mul", ["r", "d"], ["y0"])]
    last = "y0"
    if gamma:
        nodes.append(n("Mul", [last, "g" if gamma == "vec" else "gc"], ["y1"]))
        last = "y1"
    if beta:
        nodes.append(n("Add", ["b", last], ["y2"]))
        last = "y2"
    nodes.append(n("Identity", [last], ["y"]))
    outputs = ["y"]
    if extra_reader:
        nodes.append(n("Neg", ["d"], ["z"]))
        outputs.append("z")
    return make_model(nodes, {"x": (list(shape), F32)}, outputs, inits, opset=opset)


@pytest.mark.parametrize("square,divide,opset", [("pow", "div", 13), ("mul", "reciprocal", 13), ("pow", "div", 18)])
@pytest.mark.parametrize("gamma,beta", [("vec", True), (None, True), ("vec", False), (None, False)])
def test_layer_norm_pattern_becomes_one_op(rng, square, divide, opset, gamma, beta):
    model = _layer_norm_model(rng, square=square, divide=divide, opset=opset, gamma=gamma, beta=beta)
    _, g2 = _check_equivalent(model, lambda g: passes.fuse_layer_norm(passes.remove_identities(g)), rng)
    assert g2.op_types() == {"LayerNormalization": 1}
    ln = g2.nodes[0]
    assert ln.inputs[0] == "x" and ln.attrs["axis"] == 2 and ln.attrs["epsilon"] == pytest.approx(1e-5)
    assert len(ln.inputs) == (3 if beta else 2)


def test_layer_norm_pattern_over_two_trailing_axes(rng):
    model = _layer_norm_model(rng, shape=(2, 3, 4, 5), axes=(2, 3))
    _, g2 = _check_equivalent(model, lambda g: passes.fuse_layer_norm(passes.remove_identities(g)), rng)
    assert g2.op_types() == {"LayerNormalization": 1} and g2.nodes[0].attrs["axis"] == 2


def test_layer_norm_pattern_left_alone_where_it_is_not_one(rng):
    fuse = lambda g: passes.fuse_layer_norm(passes.remove_identities(g))  # noqa: E731
    # normalized over a leading axis: not LayerNormalization's trailing block
    _, g2 = _check_equivalent(_layer_norm_model(rng, axes=(1,), gamma=None, beta=False), fuse, rng)
    assert "LayerNormalization" not in g2.op_types()
    # the deviation x - mean is read outside the pattern too
    _, g3 = _check_equivalent(_layer_norm_model(rng, extra_reader=True), fuse, rng)
    assert "LayerNormalization" not in g3.op_types()
    # a gamma varying along a non-normalized axis stays a Mul after the LayerNormalization (and so does beta)
    _, g4 = _check_equivalent(_layer_norm_model(rng, gamma="per_row"), fuse, rng)
    assert g4.op_types() == {"LayerNormalization": 1, "Mul": 1, "Add": 1}


# ------------------------------------------------------------------------------------------------------
# Conv + Add


def _residual_block(rng, add_op="Add"):
    n = helper.make_node
    inits = {"w1": conv_weights(rng, 4, 4), "w2": conv_weights(rng, 4, 4), "b2": rng.standard_normal(4).astype(F32)}
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["r1"]),
        n("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        n(add_op, ["c2", "x"], ["s"]),
        n("Relu", ["s"], ["y"]),
    ]
    return make_model(nodes, {"x": ([1, 4, 6, 6], F32)}, ["y"], inits)


@pytest.mark.parametrize("add_op", ["Add", "Sum"])
def test_conv_add_fusion_on_residual_block(rng, add_op):
    _, g2 = _check_equivalent(_residual_block(rng, add_op), passes.optimize, rng)
    assert g2.op_types() == {"Conv": 2}
    c2 = g2.nodes[1]
    assert c2.attrs["_add"] == "x" and c2.attrs["_act"] == ("relu",) and c2.outputs == ["y"]
    assert "x" in g2.consumers() and c2 in g2.consumers()["x"]


def test_conv_add_fusion_moves_the_conv_after_the_operand(rng):
    """The conv is first in the graph; the added tensor is produced later: the fused conv must run after."""
    n = helper.make_node
    inits = {"w1": conv_weights(rng, 4, 4), "w2": conv_weights(rng, 4, 4)}
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Neg", ["x"], ["m"]),
        n("Relu", ["m"], ["z"]),
        n("Add", ["z", "c1"], ["y"]),
    ]
    model = make_model(nodes, {"x": ([1, 4, 6, 6], F32)}, ["y"], inits)
    _, g2 = _check_equivalent(model, passes.fuse_conv_add, rng)
    assert [x.op_type for x in g2.nodes] == ["Neg", "Relu", "Conv"] and g2.nodes[-1].attrs["_add"] == "z"


def test_conv_add_not_fused_for_broadcast_const_or_shared_output(rng):
    n = helper.make_node
    inits = {"w": conv_weights(rng, 4, 4), "t": rng.standard_normal((1, 4, 1, 1)).astype(F32)}
    bcast = make_model(
        [n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), n("Add", ["c", "v"], ["y"])],
        {"x": ([1, 4, 6, 6], F32), "v": ([1, 4, 1, 6], F32)},
        ["y"],
        inits,
    )
    _, g = _check_equivalent(bcast, passes.fuse_conv_add, rng)
    assert "Add" in g.op_types()
    const = make_model(
        [n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), n("Add", ["c", "t"], ["y"])],
        {"x": ([1, 4, 6, 6], F32)},
        ["y"],
        inits,
    )
    _, g = _check_equivalent(const, passes.fuse_conv_add, rng)
    assert "Add" in g.op_types()
    shared = make_model(
        [n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), n("Add", ["c", "x"], ["y"]), n("Relu", ["c"], ["z"])],
        {"x": ([1, 4, 6, 6], F32)},
        ["y", "z"],
        inits,
    )
    _, g = _check_equivalent(shared, passes.fuse_conv_add, rng)
    assert "Add" in g.op_types()


# ------------------------------------------------------------------------------------------------------
# Identity / Dropout / dead nodes


def test_identity_and_dropout_removed(rng):
    n = helper.make_node
    model = make_model(
        [
            n("Identity", ["x"], ["a"]),
            n("Dropout", ["a", "ratio"], ["b"]),
            n("Relu", ["b"], ["c"]),
            n("Identity", ["c"], ["y"]),
        ],
        {"x": ([2, 3], F32)},
        ["y"],
        {"ratio": np.array(0.3, F32)},
        opset=13,
    )
    _, g2 = _check_equivalent(model, passes.remove_identities, rng)
    assert g2.op_types() == {"Relu": 1} and g2.nodes[0].inputs == ["x"] and g2.nodes[0].outputs == ["y"]


def test_identity_between_graph_input_and_output_kept(rng):
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], {"x": ([2, 3], F32)}, ["y"])
    _, g2 = _check_equivalent(model, passes.remove_identities, rng)
    assert g2.op_types() == {"Identity": 1}


def test_dead_nodes_removed(rng):
    n = helper.make_node
    g = import_onnx(
        make_model([n("Relu", ["x"], ["y"]), n("Neg", ["x"], ["unused"])], {"x": ([2, 3], F32)}, ["y", "unused"])
    )
    g.outputs = ["y"]
    g2 = passes.eliminate_dead_nodes(g)
    assert g2.op_types() == {"Relu": 1} and "unused" not in g2.values


def test_optimize_keeps_every_output_of_a_mixed_graph(rng):
    """Residual blocks with BN, SiLU, a shared intermediate returned as a second output."""
    n = helper.make_node
    inits = {
        "w1": conv_weights(rng, 4, 4),
        "w2": conv_weights(rng, 4, 4),
        **_bn_inits(rng, 4, "p"),
        **_bn_inits(rng, 4, "q"),
    }
    nodes = [
        n("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        _bn("c1", "n1", "p"),
        n("Sigmoid", ["n1"], ["s1"]),
        n("Mul", ["n1", "s1"], ["a1"]),
        n("Conv", ["a1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        _bn("c2", "n2", "q"),
        n("Add", ["n2", "a1"], ["s"]),
        n("Relu", ["s"], ["y"]),
        n("Identity", ["a1"], ["z"]),
    ]
    model = make_model(nodes, {"x": ([2, 4, 8, 8], F32)}, ["y", "z"], inits)
    _, g2 = _check_equivalent(model, passes.optimize, rng, rtol=1e-4, atol=1e-5)
    assert g2.op_types() == {"Conv": 2, "Identity": 1} or g2.op_types() == {"Conv": 2}, g2.summary()
