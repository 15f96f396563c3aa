"""npuemu's graph IR: plain dataclasses, no ONNX protos.

- :class:`Value`: a named tensor with a static shape and a dtype; ``const`` holds the data of a constant
  (an initializer, a Constant node or a folded result). Constant arrays are read-only and shared between
  copies of a graph: replace them, never write into them.
- :class:`Node`: one op in ONNX terms (``op_type``, ``domain``, ``inputs``, ``outputs``, ``attrs``); an empty
  input name is an absent optional input. ``attrs`` hold plain Python values (int, float, str, lists,
  ``np.ndarray`` for tensor attributes). Attributes whose name starts with ``_`` are npuemu's fused
  post-ops, applied after the op in this order:

  * ``_add``: the name of a tensor of the output's shape added to the result (Conv+Add fusion);
  * ``_act``: an activation tuple applied last: ``('relu',)``, ``('clip', lo, hi)``, ``('leaky_relu', a)``,
    ``('sigmoid',)``, ``('tanh',)``, ``('hard_sigmoid', a, b)``, ``('hard_swish',)``, ``('silu',)``,
    ``('mish',)``.

- :class:`Graph`: nodes in topological order, graph input and output names, every value by name, the model's
  default-domain opset, and (``quant``) the quantization parameters a QDQ model fixes. Nodes are in the
  canonical (newest) form of their op: axes, pads, split sizes, clip bounds and the like are inputs, never
  attributes (the frontend rewrites older forms).
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

__all__ = ["Value", "Node", "Graph", "ACTIVATIONS"]

# Fused activation kinds and their number of float parameters (see Node docs above).
ACTIVATIONS = {
    "relu": 0,
    "clip": 2,
    "leaky_relu": 1,
    "sigmoid": 0,
    "tanh": 0,
    "hard_sigmoid": 2,
    "hard_swish": 0,
    "silu": 0,
    "mish": 0,
}


def _freeze(a: np.ndarray) -> np.ndarray:
    # A writeable array could still be changed through the caller's reference: keep a private copy.
    a = np.asarray(a)
    if a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


@dataclass
class Value:
    name: str
    shape: "tuple[int, ...] | None"
    dtype: np.dtype
    const: "np.ndarray | None" = None

    def __post_init__(self) -> None:
        self.dtype = np.dtype(self.dtype)
        if self.shape is not None:
            self.shape = tuple(int(d) for d in self.shape)
        if self.const is not None:
            self.const = _freeze(self.const)
            self.shape = tuple(self.const.shape)
            self.dtype = self.const.dtype

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def size(self) -> "int | None":
        return None if self.shape is None else int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self) -> str:
        kind = "const " if self.const is not None else ""
        return f"Value({self.name!r}, {kind}{self.dtype}{list(self.shape) if self.shape is not None else '?'})"


@dataclass
class Node:
    op_type: str
    name: str
    inputs: "list[str]"
    outputs: "list[str]"
    attrs: "dict[str, Any]" = field(default_factory=dict)
    domain: str = ""

    @property
    def refs(self) -> "list[str]":
        """Every value this node reads: its present inputs plus a fused ``_add`` operand."""
        r = [n for n in self.inputs if n]
        add = self.attrs.get("_add")
        if add:
            r.append(add)
        return r

    def input(self, i: int) -> str:
        """Name of input ``i``, or "" when absent."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def __repr__(self) -> str:
        return f"Node({self.op_type} {self.name!r}: {self.inputs} -> {self.outputs})"


@dataclass
class Graph:
    nodes: "list[Node]"
    inputs: "list[str]"
    outputs: "list[str]"
    values: "dict[str, Value]"
    opset: int = 17
    name: str = "graph"
    # quantization the model itself fixes (npuemu.compiler.qdq.QuantParams, set by the QDQ pass; None for
    # float models); copies share it (it is not edited after the pass)
    quant: Any = None

    # --- queries -----------------------------------------------------------------------------------
    def producers(self) -> "dict[str, Node]":
        """Output name -> the node producing it."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> "dict[str, list[Node]]":
        """Value name -> the nodes reading it (inputs and fused ``_add`` operands), in graph order."""
        cons: "dict[str, list[Node]]" = {}
        for n in self.nodes:
            for r in dict.fromkeys(n.refs):
                cons.setdefault(r, []).append(n)
        return cons

    def const(self, name: str) -> "np.ndarray | None":
        """The data of a constant value, None for a non-constant (or absent) one."""
        v = self.values.get(name) if name else None
        return None if v is None else v.const

    def is_const(self, name: str) -> bool:
        return self.const(name) is not None

    def shape(self, name: str) -> "tuple[int, ...] | None":
        return self.values[name].shape

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}")

    def op_types(self) -> "dict[str, int]":
        counts: "dict[str, int]" = {}
        for n in self.nodes:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        return counts

    def __iter__(self) -> "Iterator[Node]":
        return iter(self.nodes)

    # --- construction ------------------------------------------------------------------------------
    def copy(self) -> "Graph":
        """A copy whose nodes, attrs and values can be edited freely (constant arrays are shared; they are
        read-only)."""
        nodes = [
            Node(n.op_type, n.name, list(n.inputs), list(n.outputs), _copy.copy(n.attrs), n.domain) for n in self.nodes
        ]
        values = {k: Value(v.name, v.shape, v.dtype, v.const) for k, v in self.values.items()}
        return Graph(nodes, list(self.inputs), list(self.outputs), values, self.opset, self.name, self.quant)

    def unique_name(self, base: str) -> str:
        taken = set(self.values) | {n.name for n in self.nodes}
        if base not in taken:
            return base
        i = 1
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def add_const(self, base: str, array: np.ndarray) -> str:
        """Adds a constant value under a fresh name derived from ``base``; returns the name."""
        name = self.unique_name(base)
        self.values[name] = Value(name, None, np.asarray(array).dtype, np.asarray(array))
        return name

    def set_const(self, name: str, array: np.ndarray) -> None:
        """Turns ``name`` into a constant holding ``array``."""
        self.values[name] = Value(name, None, np.asarray(array).dtype, np.asarray(array))

    def prune_values(self) -> None:
        """Drops values nothing refers to any more."""
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.refs)
            used.update(o for o in n.outputs if o)
        for k in [k for k in self.values if k not in used]:
            del self.values[k]

    def validate(self) -> None:
        """Checks names and the topological order; raises ModelError naming the first problem."""
        from .errors import ModelError

        defined = set(self.inputs) | {k for k, v in self.values.items() if v.const is not None}
        for name in self.inputs:
            if name not in self.values:
                raise ModelError(f"graph input {name!r} has no Value")
        seen_nodes = set()
        for n in self.nodes:
            if n.name in seen_nodes:
                raise ModelError(f"two nodes are named {n.name!r}")
            seen_nodes.add(n.name)
            for r in n.refs:
                if r not in defined:
                    raise ModelError(f"{n.op_type} node {n.name!r} reads {r!r} before it is produced")
            for o in n.outputs:
                if not o:
                    continue
                if o in defined:
                    raise ModelError(f"{n.op_type} node {n.name!r} writes {o!r}, which is already defined")
                if o not in self.values:
                    raise ModelError(f"{n.op_type} node {n.name!r} output {o!r} has no Value")
                defined.add(o)
        for o in self.outputs:
            if o not in defined:
                raise ModelError(f"graph output {o!r} is never produced")

    def summary(self) -> str:
        lines = [f"graph {self.name!r} (opset {self.opset}): {len(self.nodes)} nodes"]
        for name in self.inputs:
            lines.append(f"  input  {self.values[name]!r}")
        for n in self.nodes:
            extra = {k: v for k, v in n.attrs.items() if k.startswith("_")}
            lines.append(f"  {n.op_type:<20} {n.name}: {n.inputs} -> {n.outputs}{' ' + str(extra) if extra else ''}")
        for name in self.outputs:
            lines.append(f"  output {self.values[name]!r}")
        return "\n".join(lines)
