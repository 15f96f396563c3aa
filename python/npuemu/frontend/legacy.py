"""Rewrites of older ONNX op versions into the canonical (newest) form the IR uses.

``canonicalize(graph, node, since)`` gets a freshly converted node and the since_version of its schema
and returns the node(s) replacing it. Attribute-borne parameters that later versions take as inputs
(axes, split, starts/ends, pads, clip bounds, k) become constant inputs; Softmax-family ops before
opset 13 (softmax over the flattened trailing dimensions) become Reshape + op + Reshape when the axis is
not the last one; Upsample and Resize-10 become Resize-11+ with their fixed coordinate semantics.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir import Graph, Node, Value

# ops the frontend imports by rewriting them into others: op -> (first, last) schema version
FRONTEND_ONLY = {"Upsample": (7, 10)}

_REDUCE_AXES_INPUT_SINCE = {"ReduceSum": 13}  # the other Reduce* take axes as an input from 18


def _const(graph: Graph, node: Node, what: str, array) -> str:
    return graph.add_const(f"{node.name}/{what}", np.asarray(array))


def _attr_to_input(graph: Graph, node: Node, attr: str, pos: int, dtype=np.int64) -> None:
    """Moves attribute ``attr`` into input position ``pos`` (as a constant)."""
    if attr in node.attrs:
        name = _const(graph, node, attr, np.asarray(node.attrs.pop(attr), dtype=dtype))
        inputs = list(node.inputs) + [""] * (pos + 1 - len(node.inputs))
        inputs[pos] = name
        node.inputs = inputs


def canonicalize(graph: Graph, node: Node, since: "int | None") -> "list[Node]":
    op = node.op_type
    if node.domain or since is None:
        return [node]
    for legacy_attr in ("consumed_inputs", "is_test"):
        node.attrs.pop(legacy_attr, None)

    if op in ("Squeeze", "Unsqueeze") and since < 13:
        _attr_to_input(graph, node, "axes", 1)
    elif op.startswith("Reduce") and since < _REDUCE_AXES_INPUT_SINCE.get(op, 18):
        _attr_to_input(graph, node, "axes", 1)
    elif op == "Split" and since < 13:
        _attr_to_input(graph, node, "split", 1)
    elif op == "Slice" and since < 10:
        starts, ends = node.attrs.pop("starts"), node.attrs.pop("ends")
        node.inputs = node.inputs[:1] + [
            _const(graph, node, "starts", np.array(starts, np.int64)),
            _const(graph, node, "ends", np.array(ends, np.int64)),
        ]
        if "axes" in node.attrs:
            node.inputs.append(_const(graph, node, "axes", np.array(node.attrs.pop("axes"), np.int64)))
    elif op == "Pad" and since < 11:
        x_dtype = graph.values[node.inputs[0]].dtype if node.inputs[0] in graph.values else np.float32
        pads = node.attrs.pop("pads")
        value = node.attrs.pop("value", 0.0)
        node.inputs = node.inputs[:1] + [
            _const(graph, node, "pads", np.array(pads, np.int64)),
            _const(graph, node, "value", np.array(value, _value_dtype(x_dtype))),
        ]
    elif op == "Clip" and since < 11:
        x_dtype = _value_dtype(graph.values[node.inputs[0]].dtype)
        lo = node.attrs.pop("min", None)
        hi = node.attrs.pop("max", None)
        node.inputs = node.inputs[:1] + [
            _const(graph, node, "min", np.array(lo, x_dtype)) if lo is not None else "",
            _const(graph, node, "max", np.array(hi, x_dtype)) if hi is not None else "",
        ]
    elif op == "TopK" and since < 10:
        node.inputs = node.inputs[:1] + [_const(graph, node, "k", np.array([node.attrs.pop("k")], np.int64))]
    elif op == "BatchNormalization" and since < 9:
        if node.attrs.pop("spatial", 1) != 1:
            raise UnsupportedOpError(op, node.name, "spatial=0 (per-activation statistics) is not supported")
    elif op == "Dropout" and since < 12:
        node.attrs.pop("ratio", None)
    elif op in ("Softmax", "LogSoftmax", "Hardmax") and since < 13:
        return _coerced_softmax(graph, node)
    elif op == "Upsample":
        return [_upsample(graph, node, since)]
    elif op == "Resize" and since < 11:
        return [_upsample(graph, node, since)]
    return [node]


def _value_dtype(dt) -> np.dtype:
    dt = np.dtype(dt)
    return np.dtype(np.float32) if dt.kind in "fV" else dt


def _coerced_softmax(graph: Graph, node: Node) -> "list[Node]":
    """Opset < 13: the op works on the input viewed as 2-D [prod(shape[:axis]), prod(shape[axis:])]."""
    x = node.inputs[0]
    shape = graph.values[x].shape
    axis = node.attrs.pop("axis", 1)
    if shape is None:
        raise ModelError(f"{node.op_type} node {node.name!r} (opset < 13) needs the rank of {x!r}, which is unknown")
    r = len(shape)
    axis = axis + r if axis < 0 else axis
    if axis == r - 1:
        node.attrs["axis"] = -1
        return [node]
    lead = int(np.prod(shape[:axis], dtype=np.int64))
    flat = graph.unique_name(f"{x}/flat2d")
    y2 = graph.unique_name(f"{node.outputs[0]}/2d")
    dtype = graph.values[x].dtype
    graph.values[flat] = Value(flat, (lead, int(np.prod(shape[axis:], dtype=np.int64))), dtype)
    graph.values[y2] = Value(y2, graph.values[flat].shape, dtype)
    to2d = Node(
        "Reshape",
        graph.unique_name(f"{node.name}/to2d"),
        [x, _const(graph, node, "shape2d", np.array(graph.values[flat].shape, np.int64))],
        [flat],
    )
    back = Node(
        "Reshape",
        graph.unique_name(f"{node.name}/back"),
        [y2, _const(graph, node, "shape", np.array(shape, np.int64))],
        [node.outputs[0]],
    )
    core = Node(node.op_type, node.name, [flat], [y2], {"axis": -1})
    return [to2d, core, back]


def _upsample(graph: Graph, node: Node, since: int) -> Node:
    """Upsample-7/9/10 and Resize-10 -> Resize-11+: coordinates x_in = x_out / scale ('asymmetric');
    nearest picks floor(x_in) when enlarging and ceil(x_in) when shrinking, as onnxruntime's
    implementation of these versions (scales that enlarge some axes and shrink others are refused)."""
    mode = node.attrs.pop("mode", "nearest")
    if mode == "bilinear":
        mode = "linear"
    if mode not in ("nearest", "linear"):
        raise UnsupportedOpError(node.op_type, node.name, f"mode {mode!r} is not nearest or linear")
    if "scales" in node.attrs:  # Upsample-7
        scales = np.array(node.attrs.pop("scales"), np.float32)
        scales_name = _const(graph, node, "scales", scales)
    else:
        scales_name = node.inputs[1]
        scales = graph.const(scales_name)
    if scales is None:
        raise UnsupportedOpError(node.op_type, node.name, "scales must be a constant")
    scales = np.asarray(scales).reshape(-1)
    if np.any(scales < 1) and np.any(scales > 1):
        raise UnsupportedOpError(node.op_type, node.name, f"scales {scales.tolist()} both enlarge and shrink")
    nearest_mode = "ceil" if np.any(scales < 1) else "floor"
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric", "nearest_mode": nearest_mode}
    return Node("Resize", node.name, [node.inputs[0], "", scales_name], list(node.outputs), attrs)
