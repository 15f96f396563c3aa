"""Host-side (CPU) pieces shared by the runtime and the reference executor: input normalization, float
conversions around CPU-fallback ops, data-movement ops on stored values, and the float32 golden ops.

These are the parts a real board also runs on its CPU; they are numpy float32 with fixed operation order,
so both executors produce identical bits from identical inputs by construction. What the reference
executor checks independently is everything the NPU computes (convolution, matmul, element-wise,
pooling, requantization): see :mod:`npuemu.runtime.reference_exec`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from ..ir import Node
from .program import Program, Step, TensorSpec, dequantize_f32, quantize_f32

_F32 = np.dtype(np.float32)
_U8 = np.dtype(np.uint8)


def decode_attr(v: Any, consts: "dict[str, np.ndarray]") -> Any:
    if isinstance(v, dict):
        if "__const__" in v:
            try:
                return consts[v["__const__"]]
            except KeyError:
                raise ModelError(f"attribute refers to a missing constant {v['__const__']!r}") from None
        if "__float__" in v:
            return float(v["__float__"])
        raise ModelError(f"malformed attribute {v!r}")
    if isinstance(v, list):
        return [decode_attr(x, consts) for x in v]
    return v


def step_node(step: Step, consts: "dict[str, np.ndarray]") -> Node:
    """The ONNX node of an ``eval`` / ``move`` step, attributes decoded."""
    a = step.attrs
    n_in = int(a.get("n_inputs", len(step.inputs)))
    attrs = {k: decode_attr(v, consts) for k, v in (a.get("node_attrs") or {}).items()}
    if "_act" in attrs and isinstance(attrs["_act"], list):
        attrs["_act"] = tuple(attrs["_act"])
    ins = [f"in{i}" if x else "" for i, x in enumerate(step.inputs[:n_in])]
    outs = [f"out{i}" if y else "" for i, y in enumerate(step.outputs)]
    return Node(str(a["op_type"]), step.name, ins, outs, attrs)


def normalize(x: np.ndarray, mean, std) -> np.ndarray:
    """``(x - mean) / std`` in float32, per channel (axis 1) for inputs of rank >= 2, as the RKNN runtime
    does; ``mean`` / ``std``: None, one value, or one per channel. Calibration normalizes the dataset with
    the same function, so the ranges it records are those of the values the runtime quantizes."""
    v = np.asarray(x)
    if v.dtype != np.float32:
        v = v.astype(np.float32)
    if mean is None and std is None:
        return v
    shape = [1] * v.ndim
    if v.ndim >= 2:
        shape[1] = -1
    if mean is not None:
        m = np.asarray(mean, np.float32)
        v = v - (m.reshape(shape) if m.size > 1 else m.reshape(()))
    if std is not None:
        s = np.asarray(std, np.float32)
        v = v / (s.reshape(shape) if s.size > 1 else s.reshape(()))
    return v.astype(np.float32, copy=False)


def normalize_input(x: np.ndarray, step: Step) -> np.ndarray:
    """The ``input`` step's normalization (its attrs hold mean / std)."""
    return normalize(x, step.attrs.get("mean"), step.attrs.get("std"))


def normalize_store_args(mean, std, spec: TensorSpec, out: np.ndarray) -> "tuple | None":
    """The arguments after ``x`` of ``_core.normalize_store(x, mean, std, scale, zero_point, out)``, the
    one-pass form of ``store(normalize(x, mean, std), spec, out)`` (bit-identical to it for float32 / uint8
    ``x`` of ``out``'s shape, C-contiguous), or None where it does not apply: ``out`` other than int8 /
    int16 quantized or float16 / float32, a zero point outside the dtype, mean / std neither one value nor
    one per channel (the numpy path then does what it does)."""
    dt = out.dtype
    if spec.quantized:
        if dt not in (np.int8, np.int16):
            return None
        info = np.iinfo(dt)
        zp = int(spec.zero_point)
        if not info.min <= zp <= info.max:
            return None
        scale: "float | None" = float(np.float32(spec.scale))
    elif dt in (np.float16, np.float32):
        scale, zp = None, None
    else:
        return None
    if not out.flags.c_contiguous:
        return None
    channels = out.shape[1] if out.ndim >= 2 else 1
    args = []
    for a in (mean, std):
        if a is None:
            args.append(None)
            continue
        a = np.ascontiguousarray(np.asarray(a, np.float32).reshape(-1))
        if a.size != 1 and (a.size != channels or out.ndim < 2):
            return None
        args.append(a)
    return (args[0], args[1], scale, zp, out)


def _fast_or(numpy_path: "Callable[[np.ndarray], None]", fast: "tuple | None") -> "Callable[[np.ndarray], None]":
    # ``_core.normalize_store(x, *fast)`` for the float32 / uint8 C-contiguous arrays of out's shape it is
    # bit-identical on, ``numpy_path(x)`` for anything else
    if fast is None:
        return numpy_path
    from .. import _core

    core = _core.normalize_store
    shape = fast[-1].shape

    def put(x: np.ndarray) -> None:
        if type(x) is np.ndarray and (x.dtype == _F32 or x.dtype == _U8) and x.shape == shape and \
                x.flags.c_contiguous:
            try:
                core(x, *fast)
                return
            except ValueError:  # x overlaps out: the numpy path copes
                pass
        numpy_path(x)

    return put


def input_storer(mean, std, spec: TensorSpec, out: np.ndarray) -> "Callable[[np.ndarray], None]":
    """``lambda x: store(normalize(x, mean, std), spec, out)`` (the ``input`` step), in one pass of the
    core where it applies."""
    return _fast_or(lambda x: store(normalize(x, mean, std), spec, out),
                    normalize_store_args(mean, std, spec, out))


def storer(spec: TensorSpec, out: np.ndarray) -> "Callable[[np.ndarray], None]":
    """``lambda v: store(v, spec, out)``, in one pass of the core where it applies."""
    return _fast_or(lambda v: store(v, spec, out), normalize_store_args(None, None, spec, out))


def to_f32(a: np.ndarray, spec: "TensorSpec | None") -> np.ndarray:
    """A stored value as the golden ops take it: int8 dequantized, float16 widened, others unchanged."""
    if spec is not None and spec.quantized:
        return dequantize_f32(a, spec.scale, spec.zero_point)
    if a.dtype == np.float16 or a.dtype == np.float64:
        return a.astype(np.float32)
    return a


def store(v: np.ndarray, spec: TensorSpec, out: np.ndarray) -> None:
    """Writes a float32 (or integer) result into ``out`` in the tensor's storage form."""
    if spec.quantized:
        quantize_f32(np.asarray(v, np.float32), spec.scale, spec.zero_point, out=out)
    elif tuple(np.shape(v)) != tuple(out.shape):
        raise ModelError(f"tensor {spec.name!r}: the op produced shape {np.shape(v)}, the model says {out.shape}")
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # float16 overflow is inf, as the NPU rounds
            np.copyto(out, v, casting="unsafe")


def const_f32(c: np.ndarray) -> np.ndarray:
    if c.dtype.kind == "f" and c.dtype != np.float32:
        return c.astype(np.float32)
    return c


def run_eval(step: Step, node: Node, ins: "list[np.ndarray | None]", prog: Program) -> "list[np.ndarray]":
    from ..reference import run_node

    n_in = len(node.inputs)
    addend = ins[n_in] if len(ins) > n_in else None
    return run_node(node, ins[:n_in], addend)


def run_move(node: Node, ins: "list[np.ndarray | None]") -> "list[np.ndarray]":
    """A data-movement op on stored values (int8 / float16 arrays as they are)."""
    from ..reference import lookup

    impl = lookup(node.op_type)
    if impl is None:
        raise ModelError(f"no implementation of {node.op_type}")
    outs = impl.fn(node, ins)
    if isinstance(outs, np.ndarray):
        outs = [outs]
    return list(outs)


def resize_nearest(x: np.ndarray, ih: np.ndarray, iw: np.ndarray, out: np.ndarray) -> None:
    out[...] = x[:, :, ih[:, None], iw[None, :]]
