"""Normalisations, softmax family and reductions.

Statistics (means, variances, sums of squares, log-sum-exp) are accumulated in float64 and the results
rounded to float32 once, so the golden values do not depend on numpy's float32 summation order.
"""

from __future__ import annotations

import numpy as np

from .registry import register


def _a(node, name, default):
    return node.attrs.get(name, default)


def _axes(axes, rank) -> "tuple[int, ...]":
    out = []
    for a in np.asarray(axes).reshape(-1):
        a = int(a)
        if not -rank <= a < max(rank, 1):
            raise ValueError(f"axis {a} is out of range for rank {rank}")
        out.append(a % rank if rank else 0)
    return tuple(sorted(set(out)))


def _bcast(v, ndim, axis=1):
    v = np.asarray(v, dtype=np.float64)
    return v.reshape((1,) * axis + (-1,) + (1,) * (ndim - axis - 1))


@register("BatchNormalization", (7, 15))
def _batch_norm(node, ins):
    x, scale, bias, mean, var = ins[:5]
    eps = _a(node, "epsilon", 1e-5)
    x64 = np.asarray(x, dtype=np.float64)
    if _a(node, "training_mode", 0):
        # batch statistics (population variance); running stats blended with momentum
        mom = _a(node, "momentum", 0.9)
        red = tuple(i for i in range(x.ndim) if i != 1)
        bm, bv = x64.mean(axis=red), x64.var(axis=red)
        y = (x64 - _bcast(bm, x.ndim)) / np.sqrt(_bcast(bv, x.ndim) + eps) * _bcast(scale, x.ndim) + _bcast(
            bias, x.ndim
        )
        outs = [y.astype(np.float32)]
        if len(node.outputs) > 1:
            outs.append((np.asarray(mean, np.float64) * mom + bm * (1 - mom)).astype(np.float32))
        if len(node.outputs) > 2:
            outs.append((np.asarray(var, np.float64) * mom + bv * (1 - mom)).astype(np.float32))
        return outs
    a = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    b = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * a
    y = np.asarray(x, np.float32) * _bcast(a, x.ndim).astype(np.float32) + _bcast(b, x.ndim).astype(np.float32)
    return [y]


@register("InstanceNormalization", (6, 22))
def _instance_norm(node, ins):
    x, scale, bias = ins
    eps = _a(node, "epsilon", 1e-5)
    x64 = np.asarray(x, np.float64)
    red = tuple(range(2, x.ndim))
    m = x64.mean(axis=red, keepdims=True)
    v = x64.var(axis=red, keepdims=True)
    y = (x64 - m) / np.sqrt(v + eps) * _bcast(scale, x.ndim) + _bcast(bias, x.ndim)
    return [y.astype(np.float32)]


@register("LayerNormalization", (17, 17))
def _layer_norm(node, ins):
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    eps = _a(node, "epsilon", 1e-5)
    axis = _a(node, "axis", -1)
    axis = axis % x.ndim
    red = tuple(range(axis, x.ndim))
    x64 = np.asarray(x, np.float64)
    m = x64.mean(axis=red, keepdims=True)
    v = ((x64 - m) ** 2).mean(axis=red, keepdims=True)
    inv = 1.0 / np.sqrt(v + eps)
    y = (x64 - m) * inv * np.asarray(scale, np.float64)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    outs = [y.astype(np.float32)]
    if len(node.outputs) > 1:
        outs.append(m.astype(np.float32))
    if len(node.outputs) > 2:
        outs.append(inv.astype(np.float32))
    return outs


@register("GroupNormalization", (18, 21))
def _group_norm(node, ins):
    x, scale, bias = ins
    g = int(node.attrs["num_groups"])
    eps = _a(node, "epsilon", 1e-5)
    n, c = x.shape[:2]
    if c % g:
        raise ValueError(f"GroupNormalization: {c} channels are not divisible by num_groups={g}")
    xg = np.asarray(x, np.float64).reshape(n, g, -1)
    m = xg.mean(axis=2, keepdims=True)
    v = xg.var(axis=2, keepdims=True)
    y = ((xg - m) / np.sqrt(v + eps)).reshape(x.shape)
    scale, bias = np.asarray(scale, np.float64).reshape(-1), np.asarray(bias, np.float64).reshape(-1)
    if scale.size == g and g != c:  # opset 18: one scale / bias per group
        scale, bias = np.repeat(scale, c // g), np.repeat(bias, c // g)
    y = y * _bcast(scale, x.ndim) + _bcast(bias, x.ndim)
    return [y.astype(np.float32)]


@register("LRN", (1, 13))
def _lrn(node, ins):
    x = np.asarray(ins[0], np.float64)
    size = int(node.attrs["size"])
    alpha, beta, bias = _a(node, "alpha", 1e-4), _a(node, "beta", 0.75), _a(node, "bias", 1.0)
    c = x.shape[1]
    sq = x * x
    # window over channels [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to the tensor
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    csum = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
    idx_hi = np.minimum(np.arange(c) + hi + 1, c)
    idx_lo = np.maximum(np.arange(c) - lo, 0)
    win = np.take(csum, idx_hi, axis=1) - np.take(csum, idx_lo, axis=1)
    return [(x / (bias + alpha / size * win) ** beta).astype(np.float32)]


@register("Softmax", (1, 13))
def _softmax(node, ins):
    x = np.asarray(ins[0], np.float64)
    axis = _a(node, "axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]


@register("LogSoftmax", (1, 13))
def _log_softmax(node, ins):
    x = np.asarray(ins[0], np.float64)
    axis = _a(node, "axis", -1)
    z = x - x.max(axis=axis, keepdims=True)
    return [(z - np.log(np.exp(z).sum(axis=axis, keepdims=True))).astype(np.float32)]


@register("Hardmax", (1, 13))
def _hardmax(node, ins):
    x = ins[0]
    axis = _a(node, "axis", -1) % x.ndim
    idx = np.expand_dims(np.argmax(x, axis=axis), axis)
    y = np.zeros_like(x)
    np.put_along_axis(y, idx, 1, axis=axis)
    return [y]


# ------------------------------------------------------------------------------------------------------
# reductions (canonical: axes as the optional second input)


def _reduce(kind):
    def fn(node, ins):
        x = ins[0]
        axes_in = ins[1] if len(ins) > 1 else None
        keep = bool(_a(node, "keepdims", 1))
        if axes_in is None or np.asarray(axes_in).size == 0:
            if _a(node, "noop_with_empty_axes", 0):
                return [x]
            axes = tuple(range(x.ndim))
        else:
            axes = _axes(axes_in, x.ndim)
        is_float = x.dtype.kind == "f"
        work = np.asarray(x, np.float64) if is_float else x
        empty = any(x.shape[a] == 0 for a in axes)
        if kind == "sum":
            y = work.sum(axis=axes, keepdims=keep)
        elif kind == "mean":
            y = work.mean(axis=axes, keepdims=keep)
        elif kind == "prod":
            y = work.prod(axis=axes, keepdims=keep)
        elif kind in ("max", "min"):
            if empty:
                if x.dtype.kind == "b":
                    fill = kind == "min"
                elif is_float:
                    fill = -np.inf if kind == "max" else np.inf
                else:
                    info = np.iinfo(x.dtype)
                    fill = info.min if kind == "max" else info.max
                f = np.max if kind == "max" else np.min
                y = f(work, axis=axes, keepdims=keep, initial=fill)
            else:
                y = (work.max if kind == "max" else work.min)(axis=axes, keepdims=keep)
        elif kind == "l1":
            y = np.abs(work).sum(axis=axes, keepdims=keep)
        elif kind == "l2":
            y = np.sqrt((np.asarray(work, np.float64) ** 2).sum(axis=axes, keepdims=keep))
        elif kind == "sumsquare":
            y = (work * work).sum(axis=axes, keepdims=keep)
        elif kind == "logsum":
            y = np.log(np.asarray(work, np.float64).sum(axis=axes, keepdims=keep))
        elif kind == "logsumexp":
            w = np.asarray(work, np.float64)
            if empty:
                y = np.log(np.exp(w).sum(axis=axes, keepdims=keep))
            else:
                m = w.max(axis=axes, keepdims=True)
                m = np.where(np.isfinite(m), m, 0.0)
                y = np.log(np.exp(w - m).sum(axis=axes, keepdims=True)) + m
                if not keep:
                    y = np.squeeze(y, axis=axes)
        else:  # pragma: no cover
            raise AssertionError(kind)
        y = np.asarray(y)
        return [y.astype(np.float32) if is_float else y.astype(x.dtype)]

    return fn


for _op, _kind, _vers in [
    ("ReduceSum", "sum", (1, 13)),
    ("ReduceMean", "mean", (1, 18)),
    ("ReduceMax", "max", (1, 20)),
    ("ReduceMin", "min", (1, 20)),
    ("ReduceProd", "prod", (1, 18)),
    ("ReduceL1", "l1", (1, 18)),
    ("ReduceL2", "l2", (1, 18)),
    ("ReduceSumSquare", "sumsquare", (1, 18)),
    ("ReduceLogSum", "logsum", (1, 28)),
    ("ReduceLogSumExp", "logsumexp", (1, 28)),
]:
    register(_op, _vers)(_reduce(_kind))
