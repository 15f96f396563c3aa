"""Argument normalisation shared by :mod:`npuemu.ops` (private).

Every function here raises ``TypeError`` / ``ValueError`` whose message names the argument and the
value; nothing is silently converted in a way that copies user data.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

_INT_DTYPES = {"uint8", "int8", "int16", "int32", "int64"}


def as_array(name: str, value: Any) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray), got strides {value.strides}")
    return value


def pair(name: str, value: Any) -> Tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        vals = [int(v) for v in value]
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of 2 ints, got {value!r}") from None
    if len(vals) != 2:
        raise ValueError(f"{name} must have 2 values (h, w), got {tuple(vals)}")
    return vals[0], vals[1]


def pads4(value: Any) -> Tuple[int, int, int, int]:
    """ONNX order (top, left, bottom, right); an int or (h, w) pair means symmetric padding."""
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return v, v, v, v
    try:
        vals = [int(v) for v in value]
    except TypeError:
        raise TypeError(f"pads must be an int or a sequence of 2 or 4 ints, got {value!r}") from None
    if len(vals) == 2:
        return vals[0], vals[1], vals[0], vals[1]
    if len(vals) == 4:
        return vals[0], vals[1], vals[2], vals[3]
    raise ValueError(f"pads must have 2 (h, w) or 4 (top, left, bottom, right) values, got {tuple(vals)}")


def scalar_int(name: str, value: Any) -> int:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{name} must be a scalar or a 1-element array, got shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer, got dtype {arr.dtype}")
    return int(arr.reshape(-1)[0])


def scalar_float(name: str, value: Any) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{name} must be a scalar or a 1-element array, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a float, got dtype {arr.dtype}")
    return float(arr.reshape(-1)[0])


def int_list(name: str, value: Any) -> list:
    arr = np.asarray(value)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    return [int(v) for v in arr.reshape(-1)]


def float_list(name: str, value: Any) -> list:
    arr = np.asarray(value)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be floats, got dtype {arr.dtype}")
    return [float(v) for v in arr.reshape(-1).astype(np.float32)]


def zp_dtype(name: str, value: Any, default: str) -> str:
    """The dtype a zero point declares (numpy scalars/arrays carry one; Python ints do not)."""
    if isinstance(value, (np.ndarray, np.generic)):
        name_ = np.asarray(value).dtype.name
        if name_ not in _INT_DTYPES:
            raise TypeError(f"{name} must have an integer dtype, got {name_}")
        return name_
    return default


def activation(value: Any) -> Tuple[str, float, float, float]:
    """None | 'relu' | 'relu6' | ('clip', min, max) | ('leaky_relu', alpha) | 'hard_swish' (float16
    convolutions only) -> (kind, lo, hi, alpha)."""
    if value is None or value == "none":
        return "none", 0.0, 0.0, 0.0
    if value in ("relu", "hard_swish"):
        return value, 0.0, 0.0, 0.0
    if value == "relu6":
        return "clip", 0.0, 6.0, 0.0
    if isinstance(value, tuple) and value and value[0] == "clip" and len(value) == 3:
        return "clip", float(value[1]), float(value[2]), 0.0
    if isinstance(value, tuple) and value and value[0] == "leaky_relu" and len(value) == 2:
        return "leaky_relu", 0.0, 0.0, float(value[1])
    raise ValueError(
        f"activation must be None, 'relu', 'relu6', ('clip', min, max), ('leaky_relu', alpha) or 'hard_swish' "
        f"(float16 convolutions), got {value!r}"
    )


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def core_mask(value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"core_mask must be an int (0 auto, 1/2/4 single cores, 3, 7, 0xffff all), got {value!r}")
    if value < 0:
        raise ValueError(f"core_mask must be >= 0, got {value}")
    return int(value)


def out_array(out: Optional[np.ndarray], shape, dtype) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != np.dtype(dtype):
        raise TypeError(f"out must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {tuple(out.shape)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous array")
    return out
