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
    "matmul_integer",
    "qlinear_matmul",
    # element-wise (DPU) and pooling (PPU)
    "add",
    "mul",
    "max_pool",
    "avg_pool",
    "global_average_pool",
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
    to float16 (round to nearest even) after the fused activation (None, 'relu', 'relu6', ('clip', lo,
    hi), ('leaky_relu', alpha) or 'hard_swish', all in float32)."""
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
    def int4_weights(self) -> bytes:
        """int4 weights as stored: two per byte, element 2i in the low nibble (empty unless w_dtype='int4')."""
        return self._op.int4_weights

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


# ---------------------------------------------------------------------------------------------------
# Matmul: the same MAC array, as a 1x1 convolution over channels-last rows (A's rows are pixels, K is
# the input-channel axis, B's columns are output channels).


def _matmul_plan(a: np.ndarray, b: np.ndarray):
    """ONNX MatMul shapes: returns (a as [..., M, K], b, output shape, squeeze flags)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs at least 1-D operands, got a {a.shape} and b {b.shape}")
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: a's last dimension {a2.shape[-1]} != b's first matrix dimension {b2.shape[-2]} "
                         f"(a {a.shape}, b {b.shape})")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of a {a.shape} and b {b.shape} do not broadcast") from None
    out_shape = tuple(batch) + (a2.shape[-2], b2.shape[-1])
    if a.ndim == 1:
        out_shape = out_shape[:-2] + out_shape[-1:]
    if b.ndim == 1:
        out_shape = out_shape[:-1]
    return a2, b2, tuple(batch), out_shape


def _matmul(a, b, conv_kwargs: dict, out, core_mask, y_dtype) -> np.ndarray:
    a = A.as_array("a", a)
    b = A.as_array("b", b)
    a2, b2, batch, out_shape = _matmul_plan(a, b)
    out = A.out_array(out, out_shape, y_dtype)
    k, n = b2.shape[-2], b2.shape[-1]
    mask = A.core_mask(core_mask)
    if b2.ndim == 2:
        # every row of A (all batch dimensions flattened) against the same B: one 1x1 convolution
        m_total = a2.size // k
        args = dict(conv_kwargs, x_shape=[1, 1, m_total, k], w=b2, nhwc=True, w_transposed=True)
        op = _core.conv_cached(**args)
        op.run(a2.reshape(1, 1, m_total, k), out.reshape(1, 1, m_total, n), mask)
        return out
    # batched B: one plan per matrix (B is data here, so it is packed per call)
    m = a2.shape[-2]
    ab = np.broadcast_to(a2, batch + a2.shape[-2:])
    bb = np.broadcast_to(b2, batch + b2.shape[-2:])
    ob = out.reshape(batch + (m, n))
    for idx in np.ndindex(*batch):
        ai = np.ascontiguousarray(ab[idx])
        bi = np.ascontiguousarray(bb[idx])
        op = _core.ConvOp(**dict(conv_kwargs, x_shape=[1, 1, m, k], w=bi, nhwc=True, w_transposed=True))
        res = np.empty((1, 1, m, n), y_dtype)
        op.run(ai.reshape(1, 1, m, k), res, mask)
        ob[idx] = res.reshape(m, n)
    return out


def matmul_integer(
    a: np.ndarray,
    b: np.ndarray,
    a_zero_point: Any = 0,
    b_zero_point: Any = 0,
    *,
    a_dtype: Optional[str] = None,
    b_dtype: Optional[str] = None,
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """ONNX MatMulInteger: ``(a - a_zero_point) @ (b - b_zero_point)`` as int32 (int64 with int16
    operands), with numpy broadcasting of batch dimensions. ``b_zero_point`` may be per column;
    ``a_zero_point`` must be a scalar (per-row zero points are not supported)."""
    a_arr = A.as_array("a", a)
    b_arr = A.as_array("b", b)
    if np.asarray(a_zero_point).size != 1:
        raise ValueError("a_zero_point must be a scalar: per-row zero points of A are not supported")
    ad = _int_dtype("a", a_arr, a_dtype, ("uint8", "int8", "int4", "int16"))
    bd = _int_dtype("b", b_arr, b_dtype, ("uint8", "int8", "int4", "int16"))
    kw = _conv_args([1, 1, 1, 1], ad, b_arr, bd, 1, 0, 1, 1, x_zero_point=a_zero_point, w_zero_point=b_zero_point,
                    kernel=kernel)
    y_dtype = np.int64 if "int16" in (ad, bd) else np.int32
    return _matmul(a_arr, b_arr, {k: v for k, v in kw.items() if k not in ("x_shape", "w")}, out, core_mask, y_dtype)


def qlinear_matmul(
    a: np.ndarray,
    a_scale: Any,
    a_zero_point: Any,
    b: np.ndarray,
    b_scale: Any,
    b_zero_point: Any,
    y_scale: Any,
    y_zero_point: Any,
    *,
    bias: Optional[np.ndarray] = None,
    activation=None,
    rounding: str = "fixed_point",
    a_dtype: Optional[str] = None,
    b_dtype: Optional[str] = None,
    y_dtype: Optional[str] = None,
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """ONNX QLinearMatMul on the NPU's MAC array and output stage (see :func:`qlinear_conv` for the
    roundings and activations). ``b_scale`` / ``b_zero_point`` may be per column. ``bias`` (int32, one
    per column, scale a_scale * b_scale) is an npuemu extension for fully connected layers."""
    a_arr = A.as_array("a", a)
    b_arr = A.as_array("b", b)
    if np.asarray(a_zero_point).size != 1:
        raise ValueError("a_zero_point must be a scalar: per-row zero points of A are not supported")
    ad = _int_dtype("a", a_arr, a_dtype, ("uint8", "int8", "int4", "int16"))
    bd = _int_dtype("b", b_arr, b_dtype, ("uint8", "int8", "int4", "int16"))
    yd = y_dtype if y_dtype is not None else A.zp_dtype("y_zero_point", y_zero_point,
                                                       "int8" if a_arr.dtype.name == "int8" else a_arr.dtype.name)
    if yd not in ("uint8", "int8", "int4", "int16"):
        raise TypeError(f"output dtype must be uint8, int8, int4 or int16; got {yd}")
    kw = _conv_args([1, 1, 1, 1], ad, b_arr, bd, 1, 0, 1, 1, x_zero_point=a_zero_point, w_zero_point=b_zero_point,
                    bias=bias, requant=True, x_scale=a_scale, w_scale=b_scale, y_scale=y_scale,
                    y_zero_point=y_zero_point, y_dtype=yd, rounding=rounding, activation=activation, kernel=kernel)
    np_y = np.int8 if yd == "int4" else np.dtype(yd)
    return _matmul(a_arr, b_arr, {k: v for k, v in kw.items() if k not in ("x_shape", "w")}, out, core_mask, np_y)


# ---------------------------------------------------------------------------------------------------
# Element-wise ops (the DPU): Add, Mul
#
# Quantized int8 / uint8 with onnxruntime's com.microsoft QLinearAdd / QLinearMul semantics, float16
# without scales. Both operands broadcast like numpy / ONNX (multidirectional). docs/arithmetic.md,
# section 7, gives the formulas.

def _quant_zp(name: str, value, dtype: str) -> int:
    if value is None:
        return 0
    declared = A.zp_dtype(name, value, dtype)
    if declared != dtype:
        raise TypeError(f"{name} must have the dtype of the data ({dtype}), got {declared}")
    return A.scalar_int(name, value)


def _required_scale(name: str, value, what: str) -> float:
    if value is None:
        raise TypeError(f"{what} needs {name} (a positive float)")
    return A.scalar_float(name, value)


def _eltwise(op: str, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, activation,
             rounding, core_mask, out, kernel) -> np.ndarray:
    a = A.as_array("a", a)
    if b is None:
        raise TypeError(f"{op} needs b")
    b = A.as_array("b", b)
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: a and b must have the same dtype, got a {a.dtype} and b {b.dtype}")
    dt = a.dtype.name
    if dt not in ("int8", "uint8", "float16"):
        raise TypeError(f"{op} needs int8 or uint8 (quantized) or float16 a and b; got {dt}")
    kind, lo, hi, _ = A.activation(activation)
    A.check_choice("rounding", rounding, _ROUNDINGS)
    quant_args = (a_scale, a_zero_point, b_scale, b_zero_point, y_scale, y_zero_point)
    if dt == "float16":
        if any(v is not None for v in quant_args):
            raise ValueError(f"float16 {op} takes no scales or zero points (a_scale, a_zero_point, ... must be None)")
        scales, zps, quantized = (1.0, 1.0, 1.0), (0, 0, 0), False
    else:
        what = f"{op} of {dt}"
        scales = (_required_scale("a_scale", a_scale, what), _required_scale("b_scale", b_scale, what),
                  _required_scale("y_scale", y_scale, what))
        zps = (_quant_zp("a_zero_point", a_zero_point, dt), _quant_zp("b_zero_point", b_zero_point, dt),
               _quant_zp("y_zero_point", y_zero_point, dt))
        quantized = True
    eop = _core.eltwise_cached(op=op, dtype=dt, a_shape=list(a.shape), b_shape=list(b.shape), quantized=quantized,
                               a_scale=scales[0], b_scale=scales[1], y_scale=scales[2], a_zero_point=zps[0],
                               b_zero_point=zps[1], y_zero_point=zps[2], rounding=rounding, activation=kind,
                               act_lo=lo, act_hi=hi, kernel=kernel or "")
    y = A.out_array(out, eop.y_shape, eop.y_dtype)
    eop.run(a, b, y, A.core_mask(core_mask))
    return y


def add(
    a: np.ndarray,
    a_scale: Any = None,
    a_zero_point: Any = None,
    b: Optional[np.ndarray] = None,
    b_scale: Any = None,
    b_zero_point: Any = None,
    y_scale: Any = None,
    y_zero_point: Any = None,
    *,
    activation=None,
    rounding: str = "fixed_point",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """com.microsoft QLinearAdd on the NPU's DPU: ``y = quantize(dequantize(a) + dequantize(b))`` for
    int8 / uint8 a and b (same dtype, also the output's), broadcast like numpy; optional fused activation
    None, 'relu', 'relu6', ('clip', lo, hi) (bounds quantized with y_scale, as the convolutions do).

    ``rounding='fixed_point'`` (NPU default): TFLite's integer Add -- inputs shifted left by 20, scaled by
    Q31 multipliers, summed, one output multiplier (gemmlowp rounding). ``rounding='float'``: what
    onnxruntime's x86 QLinearAdd computes, bit for bit: ``a*(sa/sy) + b*(sb/sy)`` plus a precomputed
    zero-point term with fused multiply-adds, rounded half to even (docs/arithmetic.md section 7.1).

    float16 a and b (no scales or zero points, e.g. ``add(a, b=b)``): the sum in float32, rounded once
    to float16 -- exactly IEEE binary16 addition. ``out`` may be ``a`` or ``b`` itself (in place).
    """
    return _eltwise("add", a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, activation,
                    rounding, core_mask, out, kernel)


def mul(
    a: np.ndarray,
    a_scale: Any = None,
    a_zero_point: Any = None,
    b: Optional[np.ndarray] = None,
    b_scale: Any = None,
    b_zero_point: Any = None,
    y_scale: Any = None,
    y_zero_point: Any = None,
    *,
    activation=None,
    rounding: str = "fixed_point",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """com.microsoft QLinearMul on the DPU, with the arguments and broadcasting of :func:`add`.

    ``rounding='fixed_point'``: TFLite's integer Mul, ``(a-za)*(b-zb)`` (exact) times one Q31 multiplier
    ``sa*sb/sy``. ``rounding='float'``: onnxruntime's x86 QLinearMul, ``float((a-za)*(b-zb)) * (sa*sb/sy)
    + zy`` in float32, rounded half to even. float16: the product in float32, rounded once (exactly IEEE
    binary16 multiplication).
    """
    return _eltwise("mul", a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point, activation,
                    rounding, core_mask, out, kernel)


# ---------------------------------------------------------------------------------------------------
# Pooling (the PPU): MaxPool, AveragePool, GlobalAveragePool on NCHW


def _pool(op: str, x, kernel_shape, strides, pads, dilations, ceil_mode, count_include_pad, x_scale, x_zero_point,
          y_scale, y_zero_point, rounding, core_mask, out, kernel) -> np.ndarray:
    x = A.as_array("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D NCHW, got shape {x.shape}")
    dt = x.dtype.name
    if dt not in ("int8", "uint8", "int16", "float16"):
        raise TypeError(f"{op} needs int8, uint8, int16 or float16 x; got {dt}")
    A.check_choice("rounding", rounding, _ROUNDINGS)
    quant_args = (x_scale, x_zero_point, y_scale, y_zero_point)
    quantized = any(v is not None for v in quant_args)
    xs = ys = 1.0
    xz = yz = 0
    if quantized:
        if dt not in ("int8", "uint8"):
            raise ValueError(f"{op} of {dt} takes no scales or zero points")
        what = f"{op} of {dt}"
        xs = _required_scale("x_scale", x_scale, what)
        ys = _required_scale("y_scale", y_scale, what)
        xz = _quant_zp("x_zero_point", x_zero_point, dt)
        yz = _quant_zp("y_zero_point", y_zero_point, dt)
    if not isinstance(ceil_mode, (bool, np.bool_, int)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if not isinstance(count_include_pad, (bool, np.bool_, int)):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    pop = _core.pool_cached(op=op, dtype=dt, x_shape=list(x.shape), kernel_shape=list(kernel_shape),
                            strides=list(strides), pads=list(pads), dilations=list(dilations),
                            ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad), quantized=quantized,
                            x_scale=xs, x_zero_point=xz, y_scale=ys, y_zero_point=yz, rounding=rounding,
                            kernel=kernel or "")
    y = A.out_array(out, pop.y_shape, pop.y_dtype)
    pop.run(x, y, A.core_mask(core_mask))
    return y


def max_pool(
    x: np.ndarray,
    kernel_shape,
    *,
    strides=None,
    pads=0,
    dilations=(1, 1),
    ceil_mode: bool = False,
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """ONNX MaxPool on the NPU's PPU for int8, uint8, int16 and float16 NCHW x. Padding never wins;
    a float16 NaN never wins (as onnxruntime and onnx.reference ignore it) and +0 > -0. ``pads`` is
    (top, left, bottom, right), an (h, w) pair or an int; ``strides`` defaults to 1; with ``ceil_mode`` a
    last window starting in the end padding is dropped (onnxruntime's output size)."""
    strides = (1, 1) if strides is None else strides
    return _pool("max", x, A.pair("kernel_shape", kernel_shape), A.pair("strides", strides), A.pads4(pads),
                 A.pair("dilations", dilations), ceil_mode, False, None, None, None, None, "fixed_point", core_mask,
                 out, kernel)


def avg_pool(
    x: np.ndarray,
    kernel_shape,
    *,
    x_scale: Any = None,
    x_zero_point: Any = None,
    y_scale: Any = None,
    y_zero_point: Any = None,
    strides=None,
    pads=0,
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    rounding: str = "fixed_point",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """Average pooling on the PPU. int8 / uint8 x with scales: com.microsoft QLinearAveragePool (input
    and output scales may differ; ``count_include_pad`` divides by kh*kw). float16 x without scales: ONNX
    AveragePool (``count_include_pad`` counts the window's positions inside the padded input), the window
    summed in float32 in (h, w) order, divided, rounded once to float16.

    ``rounding='fixed_point'`` (NPU): the exact integer sum of (x - x_zp), requantized by
    x_scale / (y_scale * count) with one Q31 multiplier per distinct count. ``rounding='float'``:
    onnxruntime's float formula (docs/arithmetic.md, section 7)."""
    strides = (1, 1) if strides is None else strides
    return _pool("avg", x, A.pair("kernel_shape", kernel_shape), A.pair("strides", strides), A.pads4(pads), (1, 1),
                 ceil_mode, count_include_pad, x_scale, x_zero_point, y_scale, y_zero_point, rounding, core_mask, out,
                 kernel)


def global_average_pool(
    x: np.ndarray,
    *,
    x_scale: Any = None,
    x_zero_point: Any = None,
    y_scale: Any = None,
    y_zero_point: Any = None,
    rounding: str = "fixed_point",
    core_mask: int = 0,
    out: Optional[np.ndarray] = None,
    kernel: Optional[str] = None,
) -> np.ndarray:
    """GlobalAveragePool: the average over H*W of every plane, output (N, C, 1, 1). int8 / uint8 with
    scales: com.microsoft QLinearGlobalAveragePool; float16: ONNX GlobalAveragePool. Same arithmetic as
    :func:`avg_pool` with the window = the whole plane."""
    x = A.as_array("x", x)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D NCHW, got shape {x.shape}")
    return _pool("global_avg", x, (x.shape[2], x.shape[3]), (1, 1), (0, 0, 0, 0), (1, 1), False, False, x_scale,
                 x_zero_point, y_scale, y_zero_point, rounding, core_mask, out, kernel)
