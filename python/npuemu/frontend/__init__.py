"""ONNX frontend: import into npuemu's IR (:mod:`npuemu.ir`) and graph passes (:mod:`.passes`)."""

from __future__ import annotations

from . import passes
from .onnx_import import CONTRACT_OPSETS, import_onnx, supported_ops

__all__ = ["import_onnx", "supported_ops", "passes", "CONTRACT_OPSETS"]
