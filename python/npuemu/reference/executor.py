"""The float32 golden executor: runs an :class:`npuemu.ir.Graph` node by node with numpy.

Float tensors are float32 throughout (float64 inputs and constants are rounded to float32; a value the
graph declares float16 / bfloat16 is rounded to that precision after the op that produces it, so Casts
and half-precision graphs keep their meaning); integer and bool tensors keep their dtype. IEEE
special values propagate silently (numpy floating-point warnings are off inside the executor).
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from ..errors import ExecutionError, ModelError, ShapeError, UnsupportedOpError
from ..ir import Graph, Node
from .ops_elementwise import apply_activation, round_to_bfloat16
from .registry import implementations, lookup


_BF16_CACHE: list = []


def _bfloat16_dtype():
    """onnx's numpy bfloat16 dtype, looked up only once onnx is imported: a bfloat16 array can only come
    from a model loaded through onnx, and the runtime (RKNNLite) must not import onnx itself."""
    if _BF16_CACHE:
        return _BF16_CACHE[0]
    if "onnx" not in sys.modules:
        return None
    try:
        from onnx.helper import tensor_dtype_to_np_dtype

        dt = np.dtype(tensor_dtype_to_np_dtype(16))
    except Exception:  # pragma: no cover - onnx without bfloat16 mapping
        dt = None
    _BF16_CACHE.append(dt)
    return dt


def _storage(a: np.ndarray, declared: "np.dtype | None" = None) -> np.ndarray:
    """Executor storage of an array: floats as float32 (rounded to the declared half precision)."""
    a = np.asarray(a)
    _BF16 = _bfloat16_dtype() if a.dtype.kind == "V" or declared is not None and declared.kind == "V" else None
    if a.dtype.kind == "f" or (_BF16 is not None and a.dtype == _BF16) or a.dtype.kind == "V":
        if a.dtype != np.float32:
            a = a.astype(np.float32)
        if declared is not None:
            if declared == np.float16:
                a = a.astype(np.float16).astype(np.float32)
            elif _BF16 is not None and declared == _BF16:
                a = round_to_bfloat16(a)
    return a


def supported_ops() -> "dict[str, tuple[int, int] | None]":
    """Op type -> (first, last) model opset the executor's implementation covers (domain-qualified
    names for non-default domains)."""
    from .registry import opset_range

    out = {}
    for impl in implementations():
        key = f"{impl.domain}::{impl.op_type}" if impl.domain else impl.op_type
        out[key] = opset_range(impl.op_type, impl.versions, impl.domain)
    return out


def prepare_node(node: Node) -> "Callable[[list[np.ndarray | None], np.ndarray | None], list[np.ndarray]]":
    """:func:`run_node`'s work for one node with its implementation looked up once: ``f(inputs, addend)``
    returns the node's outputs with the fused ``_add`` / ``_act`` post-ops applied, not yet in executor
    storage (:func:`storage`). Floating-point warnings are the caller's to silence (the runtime's eval
    steps run it per inference inside one ``np.errstate``)."""
    impl = lookup(node.op_type, node.domain)
    if impl is None:
        raise UnsupportedOpError(node.op_type, node.name, "the golden executor has no implementation", node.domain)
    fn = impl.fn

    def run(inputs: "list[np.ndarray | None]", addend: "np.ndarray | None" = None) -> "list[np.ndarray]":
        try:
            outs = fn(node, inputs)
        except (UnsupportedOpError, ExecutionError):
            raise
        except (ValueError, TypeError, IndexError, KeyError) as e:
            raise ExecutionError(node.op_type, node.name, str(e)) from e
        if isinstance(outs, np.ndarray):
            outs = [outs]
        outs = list(outs)
        if "_add" in node.attrs or "_act" in node.attrs:
            y = _storage(outs[0])
            if "_add" in node.attrs:
                if addend is None:
                    raise ExecutionError(node.op_type, node.name, f"fused operand {node.attrs['_add']!r} missing")
                if addend.shape != y.shape:
                    raise ExecutionError(
                        node.op_type, node.name, f"fused add operand shape {addend.shape} != output shape {y.shape}"
                    )
                y = y + addend
            if "_act" in node.attrs:
                y = apply_activation(tuple(node.attrs["_act"]), y)
            outs[0] = y
        return outs

    return run


def storage(a: np.ndarray) -> np.ndarray:
    """An op's output in executor storage (floats as float32), as :func:`run_node` returns it."""
    if type(a) is np.ndarray and a.dtype == np.float32:
        return a
    return _storage(a)


def run_node(
    node: Node,
    inputs: "list[np.ndarray | None]",
    addend: "np.ndarray | None" = None,
    declared: "list[np.dtype | None] | None" = None,
) -> "list[np.ndarray]":
    """Runs one node (and its fused ``_add`` / ``_act`` post-ops) on executor-storage arrays."""
    run = prepare_node(node)
    with np.errstate(all="ignore"):
        outs = run(inputs, addend)
    declared = declared or [None] * len(outs)
    return [_storage(o, d) for o, d in zip(outs, declared)]


def run_graph(
    graph: Graph, feeds: "dict[str, np.ndarray]", *, keep: "bool | set[str]" = False, check_shapes: bool = True
) -> "dict[str, np.ndarray]":
    """Runs ``graph`` on ``feeds`` (graph input name -> array) and returns its outputs by name.

    ``keep=True`` also returns every intermediate value (and the constants the nodes read); a set of
    names returns those in addition to the outputs. Intermediates that are not kept are freed once their
    last reader has run.
    """
    if not isinstance(feeds, dict):
        raise TypeError(f"feeds must be a dict of input name -> array, got {type(feeds).__name__}")
    unknown = [k for k in feeds if k not in graph.inputs]
    if unknown:
        raise ModelError(f"feeds name {unknown}, which are not graph inputs {graph.inputs}")
    env: "dict[str, np.ndarray]" = {}
    for name in graph.inputs:
        if name not in feeds:
            raise ModelError(f"missing feed for graph input {name!r} (inputs: {graph.inputs})")
        v = graph.values[name]
        a = np.asarray(feeds[name])
        if check_shapes and v.shape is not None and tuple(a.shape) != tuple(v.shape):
            raise ShapeError(f"input {name!r} has shape {tuple(a.shape)}, the graph expects {tuple(v.shape)}")
        if a.dtype.kind in "iub" and v.dtype.kind in "iub" and a.dtype != v.dtype:
            a = a.astype(v.dtype)
        env[name] = _storage(a, v.dtype)

    keep_all = keep is True
    keep_set = set(keep) if isinstance(keep, (set, frozenset, list, tuple)) else set()
    want = set(graph.outputs) | keep_set
    last_use: "dict[str, int]" = {}
    for i, n in enumerate(graph.nodes):
        for r in n.refs:
            last_use[r] = i

    const_cache: "dict[str, np.ndarray]" = {}

    def get(name: str) -> np.ndarray:
        if name in env:
            return env[name]
        c = graph.const(name)
        if c is not None:
            if name not in const_cache:
                const_cache[name] = _storage(c)
            return const_cache[name]
        raise ModelError(f"value {name!r} is read before it is produced")

    for i, node in enumerate(graph.nodes):
        ins = [get(n) if n else None for n in node.inputs]
        addend = get(node.attrs["_add"]) if node.attrs.get("_add") else None
        declared = [graph.values[o].dtype if o in graph.values else None for o in node.outputs]
        outs = run_node(node, ins, addend, declared)
        if len(outs) < len([o for o in node.outputs if o]):
            raise ExecutionError(
                node.op_type, node.name, f"produced {len(outs)} outputs, the node names {len(node.outputs)}"
            )
        for name, val in zip(node.outputs, outs):
            if name:
                env[name] = val
        if not keep_all:
            for r in node.refs:
                if last_use.get(r) == i and r not in want and r in env:
                    del env[r]

    result = {}
    names = list(graph.outputs)
    if keep_all:
        names += [k for k in env if k not in result] + [k for k in const_cache]
    else:
        names += [k for k in keep_set if k in env or graph.is_const(k)]
    for name in names:
        if name not in result:
            result[name] = get(name)
    return result
