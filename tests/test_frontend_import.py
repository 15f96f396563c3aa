"""ONNX import (npuemu.frontend.import_onnx): constants, static shapes, input sizes, graph cuts, opset and
op-support errors, and the rewrite of older op versions (checked against onnxruntime on the original
model)."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graph_builders import conv_weights, make_model, run_ort_model
from npuemu.errors import ModelError, NpuError, ShapeError, UnsupportedOpError
from npuemu.frontend import CONTRACT_OPSETS, import_onnx, supported_ops
from npuemu.reference import run_graph

F32 = np.float32
n = helper.make_node


def _static(g):
    for name, v in g.values.items():
        assert v.shape is not None and all(isinstance(d, int) for d in v.shape), name
        assert v.dtype != np.dtype("V1"), name


def _vs_ort(model, g, rng, feeds=None, rtol=1e-5, atol=1e-6):
    pytest.importorskip("onnxruntime")
    feeds = feeds or {k: rng.standard_normal(g.values[k].shape).astype(F32) for k in g.inputs}
    ours = run_graph(g, feeds)
    ref = run_ort_model(model, feeds)
    for k in g.outputs:
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=atol, err_msg=k)
        assert ours[k].shape == g.values[k].shape
    return ours


# ------------------------------------------------------------------------------------------------------
# constants and shapes


def test_constant_nodes_and_initializers_become_constants(rng):
    nodes = [
        n(
            "Constant",
            [],
            ["w"],
            value=helper.make_tensor(
                "w", TensorProto.FLOAT, [4, 3, 1, 1], rng.standard_normal(12).astype(F32).tolist()
            ),
        ),
        n("Constant", [], ["k"], value_float=0.5),
        n("Constant", [], ["sh"], value_ints=[1, -1]),
        n("Conv", ["x", "w", "b"], ["c"]),
        n("Mul", ["c", "k"], ["m"]),
        n("Reshape", ["m", "sh"], ["y"]),
    ]
    model = make_model(nodes, {"x": ([1, 3, 4, 4], F32)}, ["y"], {"b": rng.standard_normal(4).astype(F32)})
    g = import_onnx(model)
    assert "Constant" not in g.op_types()
    for name in ("w", "k", "b"):
        assert g.is_const(name) and not g.const(name).flags.writeable
    assert g.values["y"].shape == (1, 64)
    _static(g)
    _vs_ort(model, g, rng)


def test_model_from_path_bytes_and_proto(tmp_path, rng):
    model = make_model([n("Relu", ["x"], ["y"])], {"x": ([2, 3], F32)}, ["y"])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    for src in (model, str(path), path, model.SerializeToString()):
        g = import_onnx(src)
        assert g.op_types() == {"Relu": 1} and g.inputs == ["x"] and g.outputs == ["y"]
    with pytest.raises(TypeError, match="ModelProto"):
        import_onnx(42)
    with pytest.raises(ModelError, match="does not exist"):
        import_onnx(str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match="not a serialized ONNX model"):
        import_onnx(b"\x00garbage")


def test_dynamic_dims_fixed_by_input_size_list(rng):
    w = conv_weights(rng, 4, 3)
    model = make_model(
        [n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), n("Flatten", ["c"], ["y"])],
        {"x": (["N", 3, "H", "W"], F32)},
        ["y"],
        {"w": w},
    )
    g = import_onnx(model, input_size_list=[[2, 3, 8, 6]])
    assert g.values["x"].shape == (2, 3, 8, 6) and g.values["y"].shape == (2, 4 * 8 * 6)
    _static(g)
    _vs_ort(model, g, rng)
    with pytest.raises(ShapeError, match=r"input 'x' has a dynamic shape \[N, 3, H, W\].*input_size_list"):
        import_onnx(model)
    with pytest.raises(ShapeError, match="static shape"):
        import_onnx(model, input_size_list=[[2, 4, 8, 6]])  # C is 3 in the model
    with pytest.raises(ShapeError, match="rank"):
        import_onnx(model, input_size_list=[[2, 3, 8]])
    with pytest.raises(ShapeError, match="1 inputs"):
        import_onnx(model, input_size_list=[[2, 3, 8, 6], [1]])


def test_shape_inference_fallback_for_float_shape_arithmetic(rng):
    """onnx's shape inference cannot follow Shape -> Cast(float) -> Mul -> Cast(int64) into Reshape; the
    importer folds the chain and runs the op for the shape."""
    nodes = [
        n("Shape", ["x"], ["s"]),
        n("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        n("Mul", ["sf", "half"], ["h"]),
        n("Cast", ["h"], ["hi"], to=TensorProto.INT64),
        n("Slice", ["hi", "st", "en"], ["two"]),
        n("Concat", ["two", "m1"], ["shape"], axis=0),
        n("Reshape", ["x", "shape"], ["r"]),
        n("Relu", ["r"], ["y"]),
    ]
    inits = {
        "half": np.array([1.0, 1.0, 0.5, 1.0], F32),
        "st": np.array([0], np.int64),
        "en": np.array([3], np.int64),
        "m1": np.array([-1], np.int64),
    }
    model = make_model(nodes, {"x": ([2, 3, 4, 5], F32)}, ["y"], inits)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    r_info = [v for v in inferred.graph.value_info if v.name == "r"]
    assert not r_info or not all(d.HasField("dim_value") for d in r_info[0].type.tensor_type.shape.dim)
    g = import_onnx(model)
    assert g.values["y"].shape == (2, 3, 2, 10) and g.op_types() == {"Reshape": 1, "Relu": 1}
    _static(g)
    _vs_ort(model, g, rng)


def test_runtime_shape_input_refused_then_frozen(rng):
    model = make_model([n("Reshape", ["x", "shp"], ["y"])], {"x": ([2, 6], F32), "shp": ([2], np.int64)}, ["y"])
    with pytest.raises(ShapeError, match=r"Reshape node .*depends on the values of 'shp'"):
        import_onnx(model)
    g = import_onnx(model, input_initial_val=[None, np.array([3, 4])])
    assert g.inputs == ["x"] and g.values["y"].shape == (3, 4)
    x = rng.standard_normal((2, 6)).astype(F32)
    np.testing.assert_array_equal(run_graph(g, {"x": x})["y"], x.reshape(3, 4))
    with pytest.raises(ModelError, match="input_initial_val has 1 entries for 2 inputs"):
        import_onnx(model, input_initial_val=[None])


# ------------------------------------------------------------------------------------------------------
# cuts


def _chain_model(rng):
    nodes = [
        n("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        n("Relu", ["c"], ["r"]),
        n("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Softmax", ["p"], ["y"], axis=1),
    ]
    return make_model(nodes, {"x": ([1, 3, 8, 8], F32)}, ["y"], {"w": conv_weights(rng, 4, 3)})


def test_cut_at_outputs(rng):
    model = _chain_model(rng)
    g = import_onnx(model, outputs=["r"])
    assert g.outputs == ["r"] and g.op_types() == {"Conv": 1, "Relu": 1}
    g2 = import_onnx(model, outputs=["r", "y"])
    assert g2.outputs == ["r", "y"] and len(g2.nodes) == 4
    x = rng.standard_normal((1, 3, 8, 8)).astype(F32)
    np.testing.assert_array_equal(run_graph(g, {"x": x})["r"], run_graph(g2, {"x": x})["r"])
    with pytest.raises(ModelError, match=r"output 'rr' is not a tensor of the model; did you mean 'r'"):
        import_onnx(model, outputs=["rr"])


def test_cut_at_intermediate_inputs(rng):
    model = _chain_model(rng)
    g = import_onnx(model, inputs=["r"], input_size_list=[[1, 4, 8, 8]])
    assert g.inputs == ["r"] and g.op_types() == {"MaxPool": 1, "Softmax": 1}
    full = import_onnx(model, outputs=["r", "y"])
    x = rng.standard_normal((1, 3, 8, 8)).astype(F32)
    ref = run_graph(full, {"x": x})
    np.testing.assert_allclose(run_graph(g, {"r": ref["r"]})["y"], ref["y"], rtol=1e-6)
    # the intermediate's shape is known from inference: input_size_list may be left out
    assert import_onnx(model, inputs=["r"]).values["r"].shape == (1, 4, 8, 8)
    with pytest.raises(ModelError, match="depend on graph input 'x'"):
        import_onnx(model, inputs=["p"], outputs=["y", "c"])
    with pytest.raises(ModelError, match="initializer"):
        import_onnx(model, inputs=["w"])


# ------------------------------------------------------------------------------------------------------
# opsets and op support


def test_opset_out_of_range_and_missing_default_domain():
    model = make_model([n("Relu", ["x"], ["y"])], {"x": ([2], F32)}, ["y"])
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    with pytest.raises(ModelError, match=r"model opset \d+ is outside the supported range"):
        import_onnx(model)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(ModelError, match="no default-domain"):
        import_onnx(model)


def test_old_op_version_refused_with_its_version():
    # Add-6 (opset 6) still had the legacy broadcast attribute
    model = make_model([n("Add", ["x", "x"], ["y"])], {"x": ([2], F32)}, ["y"], opset=6)
    with pytest.raises(
        UnsupportedOpError,
        match=r"Add .*version 6 \(model opset 6\) is not supported; "
        r"supported model opsets: 7\.\.\d+",
    ):
        import_onnx(model)


def test_unknown_op_error_names_op_node_and_supported_ops():
    model = make_model([n("Relu", ["x"], ["r"]), n("FancyOp", ["r"], ["y"], name="fancy_1")], {"x": ([2], F32)}, ["y"])
    with pytest.raises(UnsupportedOpError) as e:
        import_onnx(model)
    assert e.value.op_type == "FancyOp" and e.value.node_name == "fancy_1"
    msg = str(e.value)
    assert "FancyOp" in msg and "fancy_1" in msg and "Conv" in msg and "Resize" in msg
    assert isinstance(e.value, NpuError) and isinstance(e.value, ValueError)


def test_custom_domain_op_refused():
    model = make_model([n("FusedConv", ["x"], ["y"], domain="com.microsoft", name="fc")], {"x": ([2], F32)}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpError, match=r"com\.microsoft::FusedConv \(node 'fc'\)"):
        import_onnx(model)


def test_cut_excludes_unsupported_tail(rng):
    """An unsupported post-processing op after the requested outputs does not matter."""
    model = make_model([n("Relu", ["x"], ["r"]), n("NonZero", ["r"], ["y"])], {"x": ([2, 3], F32)}, {"y": np.int64})
    with pytest.raises(UnsupportedOpError, match="NonZero"):
        import_onnx(model)
    assert import_onnx(model, outputs=["r"]).op_types() == {"Relu": 1}


def test_subgraph_ops_refused():
    then_g = helper.make_graph([n("Identity", ["x"], ["t"])], "t", [], [helper.make_tensor_value_info("t", 1, [2])])
    model = make_model(
        [n("If", ["c"], ["y"], then_branch=then_g, else_branch=then_g)], {"c": ([], np.bool_), "x": ([2], F32)}, ["y"]
    )
    with pytest.raises(UnsupportedOpError, match="subgraphs"):
        import_onnx(model)


def test_narrow_element_types_refused_by_name():
    model = make_model([n("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN)], {"x": ([2], F32)}, ["y"])
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT8E4M3FN
    with pytest.raises(ModelError, match="'y' has element type"):
        import_onnx(model)


def test_supported_ops_cover_the_contract_opsets():
    """The npu-facts section 5 ops (and the shape arithmetic folded at build time) import at every opset
    of the contract (11..21) from the opset that introduced them."""
    ops = supported_ops()
    introduced = {"LayerNormalization": 17, "Gelu": 20, "HardSwish": 14, "Mish": 18}
    section5 = [
        "Conv",
        "ConvTranspose",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Max",
        "Min",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Gemm",
        "MatMul",
        "Concat",
        "Split",
        "Slice",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Resize",
        "Pad",
        "Softmax",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceSum",
        "LayerNormalization",
        "InstanceNormalization",
        "BatchNormalization",
        "LRN",
        "DepthToSpace",
        "SpaceToDepth",
        "Gelu",
        "Erf",
        "Sigmoid",
        "HardSwish",
        "Elu",
        "Softplus",
        "Exp",
        "Log",
        "Sqrt",
        "Pow",
        "QuantizeLinear",
        "DequantizeLinear",
        "Relu",
        "Clip",
        "LeakyRelu",
        "PRelu",
        "Tanh",
        "HardSigmoid",
        "Mish",
        "Shape",
        "Gather",
        "Range",
        "Expand",
        "ConstantOfShape",
        "Cast",
        "Equal",
        "Where",
        "Identity",
        "Dropout",
    ]
    for op in section5:
        lo, hi = ops[op]
        assert lo <= max(CONTRACT_OPSETS[0], introduced.get(op, 0)) and hi >= CONTRACT_OPSETS[1], (op, lo, hi)


# ------------------------------------------------------------------------------------------------------
# older op versions, rewritten to the canonical form: compared with onnxruntime on the original model


def _legacy_cases():
    x4 = {"x": ([2, 3, 4, 5], F32)}
    return [
        ("softmax11_axis1", [n("Softmax", ["x"], ["y"], axis=1)], x4, {}, 11, None),
        ("logsoftmax11_axis2", [n("LogSoftmax", ["x"], ["y"], axis=2)], x4, {}, 11, None),
        ("softmax11_last", [n("Softmax", ["x"], ["y"], axis=-1)], x4, {}, 11, None),
        (
            "squeeze11",
            [n("Unsqueeze", ["x"], ["u"], axes=[0, 3]), n("Squeeze", ["u"], ["y"], axes=[0])],
            x4,
            {},
            11,
            None,
        ),
        (
            "split11",
            [
                n("Split", ["x"], ["a", "b"], axis=3, split=[2, 3]),
                n("Sub", ["b", "c"], ["y"]),
                n("Identity", ["a"], ["z"]),
            ],
            x4,
            {"c": np.ones((1, 1, 1, 3), F32)},
            11,
            ["y", "z"],
        ),
        ("reducemean11", [n("ReduceMean", ["x"], ["y"], axes=[1, 3], keepdims=0)], x4, {}, 11, None),
        ("reducesum11", [n("ReduceSum", ["x"], ["y"], axes=[-1])], x4, {}, 11, None),
        ("reducemax13", [n("ReduceMax", ["x"], ["y"], axes=[2], keepdims=1)], x4, {}, 13, None),
        ("clip10", [n("Clip", ["x"], ["y"], min=-0.5, max=0.25)], x4, {}, 10, None),
        ("pad10", [n("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 2, 1], value=1.5)], x4, {}, 10, None),
        ("pad10_reflect", [n("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 2, 1], mode="reflect")], x4, {}, 10, None),
        ("slice9", [n("Slice", ["x"], ["y"], starts=[1, -3], ends=[100, -1], axes=[2, 3])], x4, {}, 9, None),
        ("topk9", [n("TopK", ["x"], ["y", "i"], k=2, axis=-1)], x4, {}, 9, None),
        (
            "upsample9_nearest",
            [n("Upsample", ["x", "s"], ["y"], mode="nearest")],
            x4,
            {"s": np.array([1, 1, 2, 3], F32)},
            9,
            None,
        ),
        (
            "upsample7_linear",
            [n("Upsample", ["x"], ["y"], mode="linear", scales=[1.0, 1.0, 2.0, 2.0])],
            x4,
            {},
            7,
            None,
        ),
        (
            "resize10_nearest_up",
            [n("Resize", ["x", "s"], ["y"], mode="nearest")],
            x4,
            {"s": np.array([1, 1, 1.5, 2.5], F32)},
            10,
            None,
        ),
        (
            "resize10_nearest_down",
            [n("Resize", ["x", "s"], ["y"], mode="nearest")],
            x4,
            {"s": np.array([1, 1, 0.5, 0.6], F32)},
            10,
            None,
        ),
        (
            "resize10_linear",
            [n("Resize", ["x", "s"], ["y"], mode="linear")],
            x4,
            {"s": np.array([1, 1, 2, 1.5], F32)},
            10,
            None,
        ),
        ("dropout10", [n("Dropout", ["x"], ["y"], ratio=0.3)], x4, {}, 10, None),
        (
            "bn9",
            [n("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
            x4,
            {"s": np.array([1, 2, 3], F32), "b": np.zeros(3, F32), "m": np.ones(3, F32), "v": np.full(3, 4, F32)},
            9,
            None,
        ),
    ]


@pytest.mark.parametrize("name,nodes,inputs,inits,opset,outs", _legacy_cases(), ids=[c[0] for c in _legacy_cases()])
def test_legacy_op_versions_match_onnxruntime(rng, name, nodes, inputs, inits, opset, outs):
    outs = outs or [o for o in nodes[-1].output]
    out_types = {o: (np.int64 if o == "i" else F32) for o in outs}
    model = make_model(nodes, inputs, out_types, inits, opset=opset)
    g = import_onnx(model)
    _static(g)
    _vs_ort(model, g, rng)


def test_node_names_made_unique(rng):
    model = make_model(
        [n("Relu", ["x"], ["a"]), n("Relu", ["a"], ["b"]), n("Neg", ["b"], ["y"], name="Relu_0")],
        {"x": ([2], F32)},
        ["y"],
    )
    g = import_onnx(model)
    names = [x.name for x in g.nodes]
    assert len(set(names)) == 3


def test_output_that_is_an_initializer_or_a_graph_input(rng):
    model = make_model([n("Relu", ["x"], ["y"])], {"x": ([2, 3], F32)}, ["y"], {"w": np.ones(3, F32)})
    g = import_onnx(model, outputs=["y", "w", "x"])
    x = rng.standard_normal((2, 3)).astype(F32)
    out = run_graph(g, {"x": x})
    np.testing.assert_array_equal(out["w"], np.ones(3, F32))
    np.testing.assert_array_equal(out["x"], x)


# ------------------------------------------------------------------------------------------------------
# malformed nodes: refused by name, never a hang or an abort (found by mutating the onnx node test models)

_W = conv_weights(np.random.default_rng(0), 4, 3)  # 4 x 3 x 3 x 3
_MALFORMED = [
    # (id, nodes, input shape, initializers, opset, what the error names)
    ("pool_kernel_rank", [n("AveragePool", ["x"], ["y"], kernel_shape=[5, 5, 1 << 20], pads=[2, 2, 2, 2])],
     [1, 1, 5, 5], {}, 17, r"kernel_shape \[5, 5, 1048576\] has 3 values; the input has 2 spatial axes"),
    ("pool_kernel_too_large", [n("MaxPool", ["x"], ["y"], kernel_shape=[1 << 20, 3], pads=[2, 2, 2, 2])],
     [1, 3, 28, 28], {}, 17, r"kernel \[1048576, 3\] .* is larger than the padded input \[28, 28\]"),
    ("pool_stride_zero", [n("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[0, 1])],
     [1, 3, 8, 8], {}, 17, r"strides \[0, 1\] must be >= 1"),
    ("pool_negative_pads", [n("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[-2, 0, 0, 0])],
     [1, 3, 8, 8], {}, 17, r"pads \[-2, 0, 0, 0\] must be >= 0"),
    ("conv_dilation_zero", [n("Conv", ["x", "w"], ["y"], dilations=[0, 1])],
     [1, 3, 8, 8], {"w": _W}, 17, r"dilations \[0, 1\] must be >= 1"),
    ("conv_group_zero", [n("Conv", ["x", "w"], ["y"], group=0)],
     [1, 3, 8, 8], {"w": _W}, 17, r"group 0 do not agree"),
    # onnx's shape inference accepts these two (its output shape comes from the attribute): they used to
    # fail only when the runtime prepared the step
    ("conv_kernel_shape_vs_weight", [n("Conv", ["x", "w"], ["y"], kernel_shape=[2, 2])],
     [1, 3, 8, 8], {"w": _W}, 17, r"kernel_shape \[2, 2\] does not match the weight \(4, 3, 3, 3\)"),
    ("conv_group_negative", [n("Conv", ["x", "w"], ["y"], group=-1)],
     [1, 3, 8, 8], {"w": _W}, 17, r"group -1 do not agree"),
    ("convtranspose_output_padding", [n("ConvTranspose", ["x", "wt"], ["y"], output_padding=[-1, 0])],
     [1, 4, 8, 8], {"wt": _W}, 17, r"output_padding \[-1, 0\] must be >= 0"),
    # onnx's own shape inference (<= 1.23) indexes past a vector on this one and aborts the process
    ("split_outputs_over_num_outputs", [n("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=2)],
     [6], {}, 18, r"Split node .* has 3 outputs but num_outputs 2"),
    ("split_num_outputs_huge", [n("Split", ["x"], ["a", "b"], axis=0, num_outputs=1 << 62)],
     [7], {}, 18, r"num_outputs 4611686018427387904 is not the node's 2 outputs"),
    # fewer outputs than num_outputs: onnx infers the shapes, onnxruntime splits differently; refused at load
    ("split_fewer_outputs", [n("Relu", ["x"], ["r"]), n("Split", ["r"], ["a", "b"], axis=1, num_outputs=3)],
     [1, 7, 4, 4], {}, 18, r"num_outputs 3 is not the node's 2 outputs"),
    ("split_negative_sizes", [n("Split", ["x", "s"], ["a", "b"], axis=0)],
     [6], {"s": np.array([8, -2], np.int64)}, 18, r"Split sizes \[8, -2\] must be >= 0"),
]


def test_malformed_nodes_are_refused_by_name_without_hang_or_abort(tmp_path):
    """Each model goes through RKNN.load_onnx in a child process (an abort or a hang there must not take
    the test run with it): -1 with the problem named."""
    import json
    import os
    import subprocess
    import sys

    paths = []
    for name, nodes, shape, inits, opset, _ in _MALFORMED:
        outs = [o for nd in nodes for o in nd.output]
        model = make_model(nodes, {"x": (shape, F32)}, outs, inits, opset=opset)
        paths.append(str(tmp_path / f"{name}.onnx"))
        onnx.save(model, paths[-1])
    script = (
        "import contextlib, io, json, sys\n"
        "from npuemu import RKNN\n"
        "for p in sys.argv[1:]:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):\n"
        "        r = RKNN(); rc = r.load_onnx(p)\n"
        "        if rc == 0: rc = r.build(do_quantization=False)\n"
        "    print(json.dumps([rc, buf.getvalue()]), flush=True)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    results = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(results) == len(_MALFORMED)
    for (name, *_, msg), (rc, log) in zip(_MALFORMED, results):
        assert rc == -1 and re.search(msg, log), (name, log)
        assert "E load_onnx:" in log, (name, log)


def test_split_with_num_outputs_matches_onnxruntime(rng):
    """num_outputs chunks of ceil(dim / num_outputs), the last smaller, as onnxruntime computes them."""
    for dim, k in ((7, 3), (6, 3), (10, 4)):
        outs = [f"o{i}" for i in range(k)]
        model = make_model([n("Split", ["x"], outs, axis=0, num_outputs=k)], {"x": ([dim, 2], F32)}, outs, opset=18)
        _vs_ort(model, import_onnx(model), rng)


def test_fuzzed_models_never_end_the_process(tmp_path):
    """A short seeded run of tools/fuzz_import.py (mutated onnx node test models through load_onnx,
    build FP16 / w8a8 and inference, in child processes): every case is run or refused, none ends the
    process. Longer runs: docs/frontend.md."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parent.parent / "tools" / "fuzz_import.py"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.run([sys.executable, str(tool), "--seed", "3", "--cases", "400", "--keep", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "0 ended the process" in p.stdout
    ran = re.search(r"(\d+) ran in FP16 and (\d+) in w8a8", p.stdout)
    assert ran and int(ran.group(1)) > 100 and int(ran.group(2)) > 100, p.stdout  # the cases do reach inference


def test_load_arguments_of_the_wrong_kind_are_named():
    """inputs / outputs / input_size_list that are not lists of names / shapes: a TypeError naming the
    argument (they used to surface as "'int' object is not iterable" or "unhashable type")."""
    model = make_model([n("Relu", ["x"], ["y"])], {"x": ([1, 2], F32)}, ["y"])
    for kw, what in [({"inputs": "x"}, "inputs"), ({"outputs": 3}, "outputs"), ({"inputs": [["x"]]}, "inputs"),
                     ({"outputs": []}, "outputs"), ({"input_size_list": 0.5}, "input_size_list"),
                     ({"input_size_list": [1, 2]}, "input_size_list")]:
        with pytest.raises(TypeError, match=rf"^{what} must be None or a .*list of .*got {re.escape(repr(kw[what]))}$"):
            import_onnx(model, **kw)
    assert import_onnx(model, inputs=["x"], outputs=("y",), input_size_list=[[1, 2]]).outputs == ["y"]
