"""Functional API of the emulated NPU, with ONNX semantics so every result can be checked against
onnxruntime.

Layouts follow ONNX: activations NCHW, convolution weights OIHW, ``pads`` = (top, left, bottom, right).
Arrays are used in place: a C-contiguous array of the right dtype is never copied; anything else raises
``TypeError`` / ``ValueError`` naming the problem. Every op takes ``out=`` and writes into it.

Integer results are bit-exact and follow ``docs/arithmetic.md``. ``core_mask`` selects emulated NPU
cores with RKNN's values (0 auto = one core, 1/2/4 single cores, 3, 7, 0xffff all); results are
bit-identical for every mask.

``algo`` picks the implementation: ``'auto'`` (the cheapest by the kernels' cost model), ``'direct'``
(the MAC-array kernels), ``'winograd'`` (3x3, stride 1, dilation 1 only: bit-exact for integers within
the channel limit of docs/arithmetic.md section 6, within the stated tolerance for float16; anything
else raises ``ValueError`` naming the reason) or ``'reference'``; ``kernel=`` forces one registered
kernel by name (:func:`npuemu.list_kernels`).

Each functional call reuses the prepared operator of an identical earlier call (weights compared by
value), so repeated calls neither re-pack weights nor allocate. The classes (:class:`ConvInteger`,
:class:`QLinearConv`, :class:`Conv`) prepare explicitly for one input shape.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _args as A
from . import _core

__all__ = [
    "conv_integer",
    "qlinear_conv",
    "conv",
    "ConvInteger",
    "QLinearConv",
    "Conv",
]

_ALGOS = ("auto", "direct", "winograd", "reference")
_ROUNDINGS = ("fixed_point", "float")


def _int_dtype(name: str, arr: np.ndarray, override: Optional[str], allowed) -> str:
    dt = override if override is not None else arr.dtype.name
    if override == "int4" and arr.dtype != np.int8:
        raise TypeError(f"{name} with dtype 'int4' must be passed as an int8 array, got {arr.dtype}")
    if dt not in allowed:
        raise TypeError(f"{name} dtype must be one of {', '.join(allowed)}; got {dt}")
    return dt


def _conv_args(
    x_shape,
    x_dtype: str,
    w: np.ndarray,
    w_dtype: str,
    strides,
    pads,
    dilations,
    group,
    *,
    x_zero_point=0,
    w_zero_point=0,
    bias=None,
    requant=False,
    x_scale=1.0,
    w_scale=1.0,
    y_scale=1.0,
    y_zero_point=0,
    y_dtype="int32",
    rounding="fixed_point",
    activation=None,
    algo="auto",
    kernel=None,
) -> dict:
    kind, lo, hi, alpha = A.activation(activation)
    if bias is not None:
        bias = A.as_array("bias", bias)
    if not isinstance(group, (int, np.integer)):
        raise TypeError(f"group must be an int, got {group!r}")
    return dict(
        x_shape=[int(d) for d in x_shape],
        x_dtype=x_dtype,
        w=w,
        w_dtype=w_dtype,
        strides=list(A.pair("strides", strides)),
        pads=list(A.pads4(pads)),
        dilations=list(A.pair("dilations", dilations)),
        group=int(group),
        x_zero_point=A.scalar_int("x_zero_point", x_zero_point),
        w_zero_point=A.int_list("w_zero_point", w_zero_point),
        bias=bias,
        requant=requant,
        x_scale=A.scalar_float("x_scale", x_scale),
        w_scale=A.float_list("w_scale", w_scale),
        y_scale=A.scalar_float("y_scale", y_scale),
        y_zero_point=A.scalar_int("y_zero_point", y_zero_point),
        y_dtype=y_dtype,
        rounding=A.check_choice("rounding", rounding, _ROUNDINGS),
        activation=kind,
        act_lo=lo,
        act_hi=hi,
        act_alpha=alpha,
        algo=A.check_choice("algo", algo, _ALGOS),
        kernel=kernel or "",
    )


def _run(op, x: np.ndarray, out, core_mask) -> np.ndarray:
    y = A.out_array(out, op.y_shape, op.y_dtype)
    op.run(x, y, A.core_mask(core_mask))
    return y


# ---------------------------------------------------------------------------------------------------
# Convolution


def _integer_conv_args(x, w, x_zero_point, w_zero_point, x_dtype, w_dtype, strides, pads, dilations, group, **kw):
    x = A.as_array("x", x)
    w = A.as_array("w", w)
    xd = _int_dtype("x", x, x_dtype, ("uint8", "int8", "int4", "int16"))
    wd = _int_dtype("w", w, w_dtype, ("uint8", "int8", "int4", "int16"))
    return x, _conv_args(x.shape, xd, w, wd, strides, pads, dilations, group, x_zero_point=x_zero_point,
                         w_zero_point=w_zero_point, **kw)


def conv_integer(
    x: np.ndarray,
    w: np.ndarray,
    x_zero_point: Any = 0,
    w_zero_point: Any = 0,
    *,
    strides=(1, 1),
    pads=(0, 0, 0, 0),
    dilations=(1, 1),
    group: int = 1,
    x_dtype: Optional[str] = None,
    w_dtype: Optional[str] = None,
    algo: str = "auto",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """ONNX ConvInteger: ``sum((x - x_zero_point) * (w - w_zero_point))`` as int32 (int64 when x or w is
    int16). x: uint8/int8/int16 NCHW; w: uint8/int8/int16 OIHW, or int8 holding int4 values with
    ``w_dtype='int4'`` (range-checked, packed two per byte inside). ``w_zero_point`` may be per output
    channel. The int32 accumulator wraps on overflow (see docs/arithmetic.md for when that can happen).
    """
    x, args = _integer_conv_args(x, w, x_zero_point, w_zero_point, x_dtype, w_dtype, strides, pads, dilations,
                                 group, algo=algo, kernel=kernel)
    return _run(_core.conv_cached(**args), x, out, core_mask)


def _qlinear_args(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias, x_dtype,
                  w_dtype, y_dtype, strides, pads, dilations, group, activation, rounding, algo, kernel):
    xa = A.as_array("x", x)
    yd = y_dtype if y_dtype is not None else A.zp_dtype("y_zero_point", y_zero_point,
                                                       "int8" if xa.dtype.name == "int8" else xa.dtype.name)
    if yd not in ("uint8", "int8", "int4", "int16"):
        raise TypeError(f"output dtype must be uint8, int8, int4 or int16; got {yd}")
    return _integer_conv_args(xa, w, x_zero_point, w_zero_point, x_dtype, w_dtype, strides, pads, dilations, group,
                              bias=bias, requant=True, x_scale=x_scale, w_scale=w_scale, y_scale=y_scale,
                              y_zero_point=y_zero_point, y_dtype=yd, rounding=rounding, activation=activation,
                              algo=algo, kernel=kernel)


def qlinear_conv(
    x: np.ndarray,
    x_scale: Any,
    x_zero_point: Any,
    w: np.ndarray,
    w_scale: Any,
    w_zero_point: Any,
    y_scale: Any,
    y_zero_point: Any,
    bias: Optional[np.ndarray] = None,
    *,
    strides=(1, 1),
    pads=(0, 0, 0, 0),
    dilations=(1, 1),
    group: int = 1,
    activation=None,
    rounding: str = "fixed_point",
    x_dtype: Optional[str] = None,
    w_dtype: Optional[str] = None,
    y_dtype: Optional[str] = None,
    algo: str = "auto",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """ONNX QLinearConv with the NPU's output stage: int32 accumulation (+ int32 bias), fused activation
    (None, 'relu', 'relu6', ('clip', lo, hi), ('leaky_relu', alpha)) and requantization to
    int8/uint8/int4/int16 (dtype of ``y_zero_point``, or ``y_dtype``).

    ``rounding='fixed_point'`` (NPU default): Q31 multiplier + shift with gemmlowp rounding.
    ``rounding='float'``: ``saturate(round_half_even(acc * (x_scale*w_scale/y_scale)) + y_zero_point)``
    in float32, as onnxruntime computes QLinearConv.
    """
    x, args = _qlinear_args(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias,
                            x_dtype, w_dtype, y_dtype, strides, pads, dilations, group, activation, rounding, algo,
                            kernel)
    return _run(_core.conv_cached(**args), x, out, core_mask)


def _fp16_conv_args(x, w, bias, strides, pads, dilations, group, dtype, activation, algo, kernel):
    A.check_choice("dtype", dtype, ("float16",))
    x = A.as_array("x", x)
    w = A.as_array("w", w)
    if x.dtype != np.float16 or w.dtype != np.float16:
        raise TypeError(f"conv(dtype='float16') needs float16 x and w, got x {x.dtype} and w {w.dtype}")
    return x, _conv_args(x.shape, "float16", w, "float16", strides, pads, dilations, group, bias=bias,
                         activation=activation, algo=algo, kernel=kernel)


def conv(
    x: np.ndarray,
    w: np.ndarray,
    bias: Optional[np.ndarray] = None,
    *,
    strides=(1, 1),
    pads=(0, 0, 0, 0),
    dilations=(1, 1),
    group: int = 1,
    dtype: str = "float16",
    activation=None,
    algo: str = "auto",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """ONNX Conv on the NPU's FP16 path: float16 x, w, bias and output, fp32 accumulation, one rounding
    to float16 (round to nearest even) after the fused activation."""
    x, args = _fp16_conv_args(x, w, bias, strides, pads, dilations, group, dtype, activation, algo, kernel)
    return _run(_core.conv_cached(**args), x, out, core_mask)


class _Prepared:
    """A convolution prepared once for one input shape (weights packed, constants derived)."""

    def __init__(self, x_shape, args: dict):
        self._x_shape = tuple(x_shape)
        self._op = _core.ConvOp(**args)

    @property
    def kernel_name(self) -> str:
        """The registered kernel chosen for this shape."""
        return self._op.kernel_name

    @property
    def output_shape(self):
        return tuple(self._op.y_shape)

    @property
    def macs(self) -> int:
        return self._op.macs

    @property
    def packed_bytes(self) -> int:
        return self._op.packed_bytes

    @property
    def candidate_costs(self) -> list:
        """``(kernel name, modelled ns on one core)`` of every kernel ``algo='auto'`` could pick for this
        shape, cheapest first (the cost model behind the automatic choice)."""
        return [(name, float(cost)) for name, cost in self._op.candidate_costs]

    def __call__(self, x: np.ndarray, *, core_mask: int = 0, out: Optional[np.ndarray] = None) -> np.ndarray:
        return _run(self._op, A.as_array("x", x), out, core_mask)


def _shape_stub(x_shape, dtype):
    shape = tuple(int(d) for d in x_shape)
    if len(shape) != 4:
        raise ValueError(f"x_shape must be 4-D NCHW, got {shape}")
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=dtype), shape=shape, strides=(0,) * 4)


class ConvInteger(_Prepared):
    """Prepared :func:`conv_integer` for inputs of shape ``x_shape`` and dtype ``x_dtype``."""

    def __init__(self, x_shape, x_dtype, w, x_zero_point=0, w_zero_point=0, *, strides=(1, 1), pads=(0, 0, 0, 0),
                 dilations=(1, 1), group=1, w_dtype=None, algo="auto", kernel=None):
        w = A.as_array("w", w)
        xd = _int_dtype("x", np.empty(0, np.int8 if x_dtype == "int4" else x_dtype), x_dtype,
                        ("uint8", "int8", "int4", "int16"))
        wd = _int_dtype("w", w, w_dtype, ("uint8", "int8", "int4", "int16"))
        super().__init__(x_shape, _conv_args(x_shape, xd, w, wd, strides, pads, dilations, group,
                                             x_zero_point=x_zero_point, w_zero_point=w_zero_point, algo=algo,
                                             kernel=kernel))


class QLinearConv(_Prepared):
    """Prepared :func:`qlinear_conv` for inputs of shape ``x_shape`` and dtype ``x_dtype``."""

    def __init__(self, x_shape, x_dtype, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
                 bias=None, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, activation=None,
                 rounding="fixed_point", w_dtype=None, y_dtype=None, algo="auto", kernel=None):
        stub = np.zeros((1,), np.int8 if x_dtype in ("int4", "int8") else x_dtype)
        shape = tuple(int(d) for d in x_shape)
        xa = np.zeros(1, stub.dtype)
        _, args = _qlinear_args(xa, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, bias,
                                x_dtype, w_dtype, y_dtype, strides, pads, dilations, group, activation, rounding, algo,
                                kernel)
        args["x_shape"] = list(shape)
        super().__init__(shape, args)


class Conv(_Prepared):
    """Prepared float16 :func:`conv` for inputs of shape ``x_shape``."""

    def __init__(self, x_shape, w, bias=None, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
                 dtype="float16", activation=None, algo="auto", kernel=None):
        xa = np.zeros(1, np.float16)
        _, args = _fp16_conv_args(xa, w, bias, strides, pads, dilations, group, dtype, activation, algo, kernel)
        args["x_shape"] = [int(d) for d in x_shape]
        super().__init__(x_shape, args)
