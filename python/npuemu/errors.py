"""Errors raised by the npuemu Python layers (frontend, graph passes, golden executor).

Every class derives from :class:`NpuError`, which is a :class:`ValueError`: all of them describe a problem
with the model or the data given, and their messages name the op type, node and value involved.
"""

from __future__ import annotations

__all__ = ["NpuError", "ModelError", "ShapeError", "UnsupportedOpError", "ExecutionError"]


class NpuError(ValueError):
    """Base class of npuemu's Python errors."""


class ModelError(NpuError):
    """The model itself is malformed or outside what npuemu accepts (opset, unknown tensor names,
    bad attributes)."""


class ShapeError(NpuError):
    """A shape is dynamic where a static one is needed, or shapes do not agree."""


class UnsupportedOpError(NpuError):
    """An op type (or one version of it) that npuemu does not implement."""

    def __init__(self, op_type: str, node_name: str, detail: str = "", domain: str = ""):
        self.op_type = op_type
        self.node_name = node_name
        self.domain = domain
        qualified = f"{domain}::{op_type}" if domain else op_type
        msg = f"unsupported op {qualified!s} (node {node_name!r})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


class ExecutionError(NpuError):
    """An op of the golden executor failed on the values it was given."""

    def __init__(self, op_type: str, node_name: str, detail: str):
        self.op_type = op_type
        self.node_name = node_name
        super().__init__(f"{op_type} node {node_name!r}: {detail}")
