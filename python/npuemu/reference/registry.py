"""Op registry of the float32 golden executor: one numpy implementation per ONNX op type.

An implementation is ``fn(node, inputs) -> list[np.ndarray]`` (a single array is accepted too) where
``inputs`` holds one array per entry of ``node.inputs`` (None for an absent optional input). It works on
the canonical form of the op (see :mod:`npuemu.ir`) and never writes into its inputs.

``versions=(first, last)`` are the ONNX schema versions (``since_version``) whose semantics the
implementation, together with the frontend's rewrite of older forms, covers; :func:`supported_ops`
turns them into model-opset ranges.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

# Lowest model opset considered; what a model may use is decided op by op from the schema versions each
# implementation declares (e.g. Add before opset 7 had legacy broadcast attributes and is refused).
MIN_OPSET = 1


@dataclass(frozen=True)
class OpImpl:
    op_type: str
    domain: str
    fn: Callable
    versions: "tuple[int, int]"


_REGISTRY: "dict[tuple[str, str], OpImpl]" = {}


def register(op_type: str, versions: "tuple[int, int]", domain: str = ""):
    """Decorator registering ``fn`` as the implementation of ``op_type`` for schema versions
    ``versions[0]..versions[1]``."""

    def deco(fn):
        key = (domain, op_type)
        if key in _REGISTRY:
            raise RuntimeError(f"op {op_type!r} registered twice")
        _REGISTRY[key] = OpImpl(op_type, domain, fn, (int(versions[0]), int(versions[1])))
        return fn

    return deco


def register_many(op_types, versions: "tuple[int, int]", make):
    """Registers ``make(op_type)`` for each op type (families of one-line ops)."""
    for op in op_types:
        register(op, versions)(make(op))


# Checks of a node's attributes against its input shapes that need no input values, by op type: the
# importer runs them on every such node, also where onnx's shape inference already gave the output shapes
# (the implementation, which would check them too, then does not run at import).
_STATIC_CHECKS: "dict[str, Callable]" = {}


def static_check(*op_types: str):
    """Decorator registering ``fn(node, input_shapes)`` (raises ValueError) for default-domain op types."""

    def deco(fn):
        for op in op_types:
            _STATIC_CHECKS[op] = fn
        return fn

    return deco


def lookup_static_check(op_type: str, domain: str = "") -> "Callable | None":
    return _STATIC_CHECKS.get(op_type) if domain in ("", "ai.onnx") else None


def lookup(op_type: str, domain: str = "") -> "OpImpl | None":
    return _REGISTRY.get(("" if domain == "ai.onnx" else domain, op_type))


def implementations() -> "list[OpImpl]":
    return sorted(_REGISTRY.values(), key=lambda i: (i.domain, i.op_type))


@functools.lru_cache(maxsize=None)
def schema_version(op_type: str, opset: int, domain: str = "") -> "int | None":
    """The since_version of the ONNX schema of ``op_type`` that a model of ``opset`` uses (None if the
    op does not exist at that opset)."""
    import onnx.defs

    try:
        return onnx.defs.get_schema(op_type, int(opset), domain).since_version
    except Exception:  # onnx raises SchemaError (not exported under one name across versions)
        return None


@functools.lru_cache(maxsize=None)
def opset_range(op_type: str, versions: "tuple[int, int]", domain: str = "") -> "tuple[int, int] | None":
    """The model opsets (>= MIN_OPSET, <= the installed onnx's newest) whose schema of ``op_type`` lies in
    ``versions``."""
    import onnx.defs

    latest = onnx.defs.onnx_opset_version()
    ok = [
        o
        for o in range(MIN_OPSET, latest + 1)
        if (v := schema_version(op_type, o, domain)) is not None and versions[0] <= v <= versions[1]
    ]
    return (min(ok), max(ok)) if ok else None
