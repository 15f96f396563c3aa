"""Float32 golden executor: numpy implementations of ONNX ops run over npuemu's IR.

>>> from npuemu.reference import run_graph, supported_ops
"""

from __future__ import annotations

from . import ops_elementwise, ops_nn, ops_norm, ops_quant, ops_resize, ops_shape  # noqa: F401  (registration)
from .executor import run_graph, run_node, supported_ops
from .registry import MIN_OPSET, lookup, register

__all__ = ["run_graph", "run_node", "supported_ops", "register", "lookup", "MIN_OPSET"]
