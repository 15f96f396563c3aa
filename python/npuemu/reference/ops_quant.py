"""QuantizeLinear / DequantizeLinear (per tensor, per axis, blocked) for 8/16-bit integer types.

QuantizeLinear divides in float32 (``x / scale``, IEEE round to nearest), rounds half to even, adds the
zero point and saturates to the output type, as the ONNX definition. Float8 / 4-bit types are refused.
"""

from __future__ import annotations

import numpy as np

from .registry import register

# TensorProto element type -> numpy integer type for output_dtype
_QTYPES = {2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32}


def _a(node, name, default):
    return node.attrs.get(name, default)


def _expand_param(p: np.ndarray, x_shape, axis: int, block_size: int, what: str) -> np.ndarray:
    """Broadcastable form of a scale / zero point: scalar, 1-D per-axis, or blocked (same rank as x)."""
    p = np.asarray(p)
    r = len(x_shape)
    if p.size == 1 and p.ndim <= 1 and not block_size:
        return p.reshape(())
    axis = axis % r if r else 0
    if block_size:
        if p.ndim != r:
            raise ValueError(f"{what} of blocked quantization must have rank {r}, got shape {p.shape}")
        rep = np.repeat(p, block_size, axis=axis)
        return np.take(rep, np.arange(x_shape[axis]), axis=axis)
    if p.ndim != 1 or p.shape[0] != x_shape[axis]:
        raise ValueError(f"{what} of shape {p.shape} does not match axis {axis} of input {tuple(x_shape)}")
    return p.reshape([-1 if i == axis else 1 for i in range(r)])


@register("QuantizeLinear", (10, 28))
def _quantize(node, ins):
    x, scale = np.asarray(ins[0], np.float32), np.asarray(ins[1], np.float32)
    zp = ins[2] if len(ins) > 2 else None
    out_dtype = _a(node, "output_dtype", 0)
    if zp is not None:
        qt = zp.dtype
    elif out_dtype:
        if out_dtype not in _QTYPES or out_dtype == 6:
            raise ValueError(f"QuantizeLinear output_dtype {out_dtype} is not an 8/16-bit integer type")
        qt = np.dtype(_QTYPES[out_dtype])
    else:
        qt = np.dtype(np.uint8)
    if qt.kind not in "iu" or qt.itemsize > 2:
        raise ValueError(f"QuantizeLinear to {qt} is not supported (8/16-bit integers only)")
    axis, block = _a(node, "axis", 1), _a(node, "block_size", 0)
    s = _expand_param(scale, x.shape, axis, block, "y_scale")
    q = np.rint(x / s).astype(np.float64)  # rint: round half to even
    if zp is not None:
        q = q + _expand_param(zp, x.shape, axis, block, "y_zero_point").astype(np.float64)
    info = np.iinfo(qt)
    return [np.clip(q, info.min, info.max).astype(qt)]


@register("DequantizeLinear", (10, 28))
def _dequantize(node, ins):
    x, scale = ins[0], np.asarray(ins[1], np.float32)
    zp = ins[2] if len(ins) > 2 else None
    if x.dtype.kind not in "iu":
        raise ValueError(f"DequantizeLinear of {x.dtype} input is not supported (integers only)")
    axis, block = _a(node, "axis", 1), _a(node, "block_size", 0)
    xi = x.astype(np.int64)
    if zp is not None:
        xi = xi - _expand_param(zp, x.shape, axis, block, "x_zero_point").astype(np.int64)
    return [(xi.astype(np.float32) * _expand_param(scale, x.shape, axis, block, "x_scale")).astype(np.float32)]
