"""Element-wise ops: unary math, activations, broadcast binary and variadic ops, comparisons, logic, Cast.

Float math runs in float32 (the executor casts every float result to float32); a few functions whose
float32 numpy form loses accuracy (Erf, Softplus, Mish) are evaluated in float64 and rounded once.
Integer tensors keep their dtype; integer overflow wraps as in two's complement.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import register, register_many

# ------------------------------------------------------------------------------------------------------
# helpers


def _a(node, name, default):
    return node.attrs.get(name, default)


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 without scipy: Maclaurin series for |x| < 2.5 (45 terms: the last term is below
    2e-17 at |x| = 2.5, the largest term ~13 costs ~1e-15 of cancellation), a continued fraction for
    erfc beyond (evaluated bottom-up from depth 80: relative error < 1e-12 at |x| = 2.5, where
    erfc = 4e-4)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    ax = np.abs(x)
    small = ax < 2.5
    if small.any():
        xs = x[small]
        x2 = xs * xs
        term = xs.copy()
        acc = xs.copy()
        for n in range(1, 46):
            term *= -x2 / n
            acc += term / (2 * n + 1)
        out[small] = acc * (2.0 / math.sqrt(math.pi))
    big = ~small
    if big.any():
        xb = ax[big]
        f = xb.copy()
        for k in range(80, 0, -1):
            f = xb + (k / 2.0) / f
        erfc = np.exp(-xb * xb) / (math.sqrt(math.pi) * f)
        out[big] = np.copysign(1.0 - erfc, x[big])
    nan = np.isnan(x)
    if nan.any():
        out[nan] = np.nan
    return out


def _f32(x):
    return np.asarray(x, dtype=np.float32) if np.asarray(x).dtype.kind == "f" else np.asarray(x)


# ------------------------------------------------------------------------------------------------------
# unary math (float)

_UNARY = {
    "Abs": np.abs,
    "Neg": np.negative,
    "Reciprocal": lambda x: np.float32(1) / x if x.dtype.kind == "f" else 1 / x,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,  # half to even, as ONNX Round
    "Sqrt": np.sqrt,
    "Exp": np.exp,
    "Log": np.log,
    "Sin": np.sin,
    "Cos": np.cos,
    "Tan": np.tan,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Sinh": np.sinh,
    "Cosh": np.cosh,
    "Asinh": np.arcsinh,
    "Acosh": np.arccosh,
    "Atanh": np.arctanh,
    "Tanh": np.tanh,
    "Sign": np.sign,
    "Erf": lambda x: erf(x).astype(np.float32) if x.dtype.kind == "f" else erf(x).astype(x.dtype),
    "Relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "Sigmoid": lambda x: sigmoid(x),
    "Softsign": lambda x: x / (np.float32(1) + np.abs(x)),
    "Softplus": lambda x: softplus(x),
    "Mish": lambda x: mish(x),
    "IsNaN": np.isnan,
    "Not": np.logical_not,
    "Identity": lambda x: x,
}

_UNARY_VERSIONS = {
    "Abs": (6, 13),
    "Neg": (6, 13),
    "Reciprocal": (6, 13),
    "Floor": (6, 13),
    "Ceil": (6, 13),
    "Round": (11, 22),
    "Sqrt": (6, 13),
    "Exp": (6, 13),
    "Log": (6, 13),
    "Sin": (7, 22),
    "Cos": (7, 22),
    "Tan": (7, 22),
    "Asin": (7, 22),
    "Acos": (7, 22),
    "Atan": (7, 22),
    "Sinh": (9, 22),
    "Cosh": (9, 22),
    "Asinh": (9, 22),
    "Acosh": (9, 22),
    "Atanh": (9, 22),
    "Tanh": (6, 13),
    "Sign": (9, 13),
    "Erf": (9, 13),
    "Relu": (6, 14),
    "Sigmoid": (6, 13),
    "Softsign": (1, 22),
    "Softplus": (1, 22),
    "Mish": (18, 22),
    "IsNaN": (9, 20),
    "Not": (1, 1),
    "Identity": (1, 25),
}


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1/(1+exp(-x)) overflows harmlessly to 0 for x < -88 (exp -> inf); no NaN is produced.
    x = _f32(x)
    return np.float32(1) / (np.float32(1) + np.exp(-x))


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64)).astype(np.float32)


def mish(x: np.ndarray) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    return (x64 * np.tanh(np.logaddexp(0.0, x64))).astype(np.float32)


def _make_unary(op):
    f = _UNARY[op]

    def fn(node, ins):
        return [f(ins[0])]

    return fn


for _op, _vers in _UNARY_VERSIONS.items():
    register(_op, _vers)(_make_unary(_op))


@register("IsInf", (10, 20))
def _isinf(node, ins):
    x = ins[0]
    pos, neg = _a(node, "detect_positive", 1), _a(node, "detect_negative", 1)
    return [(np.isposinf(x) & bool(pos)) | (np.isneginf(x) & bool(neg))]


# ------------------------------------------------------------------------------------------------------
# parameterised activations


@register("LeakyRelu", (6, 16))
def _leaky_relu(node, ins):
    x = _f32(ins[0])
    a = np.float32(_a(node, "alpha", 0.01))
    return [np.where(x >= 0, x, x * a)]


@register("PRelu", (7, 16))
def _prelu(node, ins):
    x, slope = _f32(ins[0]), _f32(ins[1])
    return [np.where(x >= 0, x, x * slope)]


@register("Elu", (6, 22))
def _elu(node, ins):
    x = _f32(ins[0])
    a = np.float32(_a(node, "alpha", 1.0))
    return [np.where(x >= 0, x, a * np.expm1(x))]


@register("Celu", (12, 28))
def _celu(node, ins):
    x = _f32(ins[0])
    a = np.float32(_a(node, "alpha", 1.0))
    return [np.maximum(x, 0) + np.minimum(0, a * np.expm1(x / a))]


@register("Selu", (6, 22))
def _selu(node, ins):
    x = _f32(ins[0])
    a = np.float32(_a(node, "alpha", 1.67326319217681884765625))
    g = np.float32(_a(node, "gamma", 1.05070102214813232421875))
    return [np.where(x > 0, g * x, g * a * np.expm1(x))]


@register("ThresholdedRelu", (10, 22))
def _thresholded_relu(node, ins):
    x = _f32(ins[0])
    return [np.where(x > np.float32(_a(node, "alpha", 1.0)), x, np.float32(0))]


@register("HardSigmoid", (6, 22))
def _hard_sigmoid(node, ins):
    return [hard_sigmoid(ins[0], _a(node, "alpha", 0.2), _a(node, "beta", 0.5))]


def hard_sigmoid(x, alpha, beta):
    x = _f32(x)
    return np.clip(x * np.float32(alpha) + np.float32(beta), np.float32(0), np.float32(1))


def hard_swish(x):
    return _f32(x) * hard_sigmoid(x, 1.0 / 6.0, 0.5)


@register("HardSwish", (14, 22))
def _hard_swish(node, ins):
    return [hard_swish(ins[0])]


@register("Swish", (24, 24))
def _swish(node, ins):
    x = _f32(ins[0])
    alpha = _a(node, "alpha", 1.0)
    return [x * sigmoid(x * np.float32(alpha))]


@register("Gelu", (20, 20))
def _gelu(node, ins):
    x64 = np.asarray(ins[0], dtype=np.float64)
    if _a(node, "approximate", "none") == "tanh":
        y = 0.5 * x64 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)))
    else:
        y = 0.5 * x64 * (1.0 + erf(x64 / math.sqrt(2.0)))
    return [y.astype(np.float32)]


@register("Clip", (6, 13))
def _clip(node, ins):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo, dtype=x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi, dtype=x.dtype))
    return [y]


def apply_activation(act: tuple, y: np.ndarray) -> np.ndarray:
    """Applies a fused activation tuple (see :mod:`npuemu.ir`) to a float32 array."""
    kind = act[0]
    if kind == "relu":
        return np.maximum(y, np.float32(0))
    if kind == "clip":
        return np.clip(y, np.float32(act[1]), np.float32(act[2]))
    if kind == "leaky_relu":
        return np.where(y >= 0, y, y * np.float32(act[1]))
    if kind == "sigmoid":
        return sigmoid(y)
    if kind == "tanh":
        return np.tanh(y)
    if kind == "hard_sigmoid":
        return hard_sigmoid(y, act[1], act[2])
    if kind == "hard_swish":
        return hard_swish(y)
    if kind == "silu":
        return y * sigmoid(y)
    if kind == "mish":
        return mish(y)
    raise ValueError(f"unknown fused activation {act!r}")


# ------------------------------------------------------------------------------------------------------
# binary arithmetic (numpy broadcasting = ONNX multidirectional broadcasting)


def _int_div(a, b):
    # ONNX (C) integer division truncates toward zero; numpy's // floors.
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return q + fix.astype(q.dtype)


def _div(a, b):
    if a.dtype.kind in "iu":
        return _int_div(a, b)
    return a / b


def _pow(a, b):
    if a.dtype.kind == "f":
        return np.power(a, b.astype(a.dtype) if b.dtype.kind != "f" else b.astype(a.dtype))
    # integer base: compute in float64 (covers negative and fractional exponents), truncate to T.
    return np.power(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)


def _mod(node, a, b):
    # fmod=1: a - trunc(a/b)*b (C fmod); fmod=0: a - floor(a/b)*b, the sign of the divisor (Python %)
    return np.fmod(a, b) if _a(node, "fmod", 0) else np.mod(a, b)


_BINARY = {
    "Add": (lambda n, a, b: a + b, (7, 14)),
    "Sub": (lambda n, a, b: a - b, (7, 14)),
    "Mul": (lambda n, a, b: a * b, (7, 14)),
    "Div": (lambda n, a, b: _div(a, b), (7, 14)),
    "Pow": (lambda n, a, b: _pow(a, b), (7, 15)),
    "Mod": (lambda n, a, b: _mod(n, a, b), (10, 28)),
    "Equal": (lambda n, a, b: a == b, (7, 19)),
    "Greater": (lambda n, a, b: a > b, (7, 13)),
    "Less": (lambda n, a, b: a < b, (7, 13)),
    "GreaterOrEqual": (lambda n, a, b: a >= b, (12, 16)),
    "LessOrEqual": (lambda n, a, b: a <= b, (12, 16)),
    "And": (lambda n, a, b: np.logical_and(a, b), (7, 7)),
    "Or": (lambda n, a, b: np.logical_or(a, b), (7, 7)),
    "Xor": (lambda n, a, b: np.logical_xor(a, b), (7, 7)),
}


def _make_binary(op):
    f = _BINARY[op][0]

    def fn(node, ins):
        a, b = ins[0], ins[1]
        if op in ("Add", "Sub", "Mul", "Div") and a.dtype != b.dtype and a.dtype.kind == b.dtype.kind == "f":
            a, b = a.astype(np.float32), b.astype(np.float32)
        return [f(node, a, b)]

    return fn


for _op, (_f, _vers) in _BINARY.items():
    register(_op, _vers)(_make_binary(_op))


@register("Where", (9, 16))
def _where(node, ins):
    return [np.where(ins[0], ins[1], ins[2])]


# ------------------------------------------------------------------------------------------------------
# variadic


def _make_variadic(op):
    def fn(node, ins):
        xs = [x for x in ins if x is not None]
        if op == "Max":
            acc = xs[0]
            for x in xs[1:]:
                acc = np.maximum(acc, x)
        elif op == "Min":
            acc = xs[0]
            for x in xs[1:]:
                acc = np.minimum(acc, x)
        else:
            acc = xs[0]
            for x in xs[1:]:
                acc = acc + x
            if op == "Mean":
                acc = acc / np.float32(len(xs)) if acc.dtype.kind == "f" else acc // len(xs)
        return [np.broadcast_to(acc, np.broadcast_shapes(*[x.shape for x in xs])).copy() if len(xs) == 1 else acc]

    return fn


register_many(["Max", "Min", "Sum", "Mean"], (6, 13), _make_variadic)


# ------------------------------------------------------------------------------------------------------
# Cast (floats: float32 storage; FLOAT16 / BFLOAT16 targets round to that precision first)


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 precision, round to nearest even, kept in float32 (NaN stays NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    out = (rounded & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, out)


# TensorProto element type -> numpy dtype the executor stores it as.
_CAST_TARGETS = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    4: np.uint16,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float32,
    11: np.float32,
    12: np.uint32,
    13: np.uint64,
    16: np.float32,
}
_ELEM_NAMES = {
    8: "STRING",
    14: "COMPLEX64",
    15: "COMPLEX128",
    17: "FLOAT8E4M3FN",
    18: "FLOAT8E4M3FNUZ",
    19: "FLOAT8E5M2",
    20: "FLOAT8E5M2FNUZ",
    21: "UINT4",
    22: "INT4",
    23: "FLOAT4E2M1",
    24: "FLOAT8E8M0",
    25: "UINT2",
    26: "INT2",
}


def cast_to(x: np.ndarray, to: int) -> np.ndarray:
    if to not in _CAST_TARGETS:
        raise ValueError(
            f"Cast to element type {_ELEM_NAMES.get(to, to)} is not supported "
            "(the executor handles bool, 8/16/32/64-bit integers and float types)"
        )
    if x.dtype.kind in "OSU":
        raise ValueError(f"Cast from {x.dtype} tensors is not supported")
    if to == 9:
        return x != 0
    if to in (1, 10, 11, 16):
        y = x.astype(np.float32)
        if to == 10:
            y = y.astype(np.float16).astype(np.float32)
        elif to == 16:
            y = round_to_bfloat16(y)
        return y
    return x.astype(_CAST_TARGETS[to])


@register("Cast", (6, 28))
def _cast(node, ins):
    return [cast_to(ins[0], int(node.attrs["to"]))]


@register("CastLike", (15, 25))
def _cast_like(node, ins):
    like = ins[1].dtype
    if like == np.float16:
        return [cast_to(ins[0], 10)]
    return [ins[0].astype(like) if like.kind != "b" else ins[0] != 0]
