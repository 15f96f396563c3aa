"""Convolution, matrix products and pooling in float32.

Conv and ConvTranspose go through im2col / col2im around one ``np.matmul`` per group so that the BLAS
does the multiply-accumulate (float32 accumulation, BLAS summation order); depthwise layers use one
strided multiply-add per kernel tap instead (a K=1 matmul per channel would be slower).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .registry import register, static_check


def _a(node, name, default):
    return node.attrs.get(name, default)


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def check_window(op: str, n_sp: int, **attrs) -> None:
    """Refuses window attributes (kernel_shape, strides, dilations: one value >= 1 per spatial axis;
    output_padding: one value >= 0 per axis) that ONNX does not allow, naming the attribute, before any
    work is sized by them."""
    for name, v in attrs.items():
        if v is None:
            continue
        v = [int(x) for x in v]
        if len(v) != n_sp:
            raise ValueError(f"{op}: {name} {v} has {len(v)} values; the input has {n_sp} spatial axes")
        least = 0 if name == "output_padding" else 1
        if any(x < least for x in v):
            raise ValueError(f"{op}: {name} {v} must be >= {least} on every axis")


def conv_pads(in_sp, k, s, d, pads, auto_pad) -> "list[tuple[int, int]]":
    """(begin, end) padding per spatial axis for Conv / pooling (auto_pad resolved)."""
    n = len(in_sp)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(n):
            o = -(-in_sp[i] // s[i])
            total = max((o - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_sp[i], 0)
            small = total // 2
            out.append((small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small))
        return out
    if auto_pad == "VALID" or pads is None:
        return [(0, 0)] * n
    if auto_pad not in ("NOTSET", "", None):
        raise ValueError(f"auto_pad {auto_pad!r} is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    pads = [int(v) for v in pads]
    if len(pads) != 2 * n:
        raise ValueError(f"pads {pads} must have {2 * n} values")
    if any(v < 0 for v in pads):
        raise ValueError(f"pads {pads} must be >= 0")
    return [(pads[i], pads[i + n]) for i in range(n)]


def _window_view(xp: np.ndarray, k, s, d, out) -> np.ndarray:
    """[N, C, *k, *out] view of the windows of a padded [N, C, *sp] array."""
    st = xp.strides
    n = len(k)
    shape = xp.shape[:2] + tuple(k) + tuple(out)
    strides = st[:2] + tuple(st[2 + i] * d[i] for i in range(n)) + tuple(st[2 + i] * s[i] for i in range(n))
    return as_strided(xp, shape, strides, writeable=False)


def _pad_spatial(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    if not any(b or e for b, e in pads):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads], mode="constant", constant_values=value)


def _tap_slices(k_idx, s, d, out):
    return tuple(slice(ki * di, ki * di + si * (oi - 1) + 1, si) for ki, si, di, oi in zip(k_idx, s, d, out))


def conv_geometry(x_shape, w_shape, strides, pads, dilations, group, auto_pad, kernel_shape=None):
    """(pads as (begin, end) per axis, output spatial shape) of an ONNX Conv; raises ValueError naming the
    attribute for any that ONNX does not allow or that does not agree with the input and weight shapes."""
    n_sp = len(x_shape) - 2
    k = list(w_shape[2:])
    if kernel_shape is not None and tuple(kernel_shape) != tuple(k):
        raise ValueError(f"Conv kernel_shape {list(kernel_shape)} does not match the weight {tuple(w_shape)}")
    s = list(strides or [1] * n_sp)
    d = list(dilations or [1] * n_sp)
    check_window("Conv", n_sp, kernel_shape=k, strides=s, dilations=d)
    C, M = x_shape[1], w_shape[0]
    if group < 1 or C != w_shape[1] * group or M % group:
        raise ValueError(f"Conv: input channels {C}, weight {tuple(w_shape)} and group {group} do not agree")
    p = conv_pads(x_shape[2:], k, s, d, pads, auto_pad)
    padded = [x_shape[2 + i] + p[i][0] + p[i][1] for i in range(n_sp)]
    out = [(padded[i] - (k[i] - 1) * d[i] - 1) // s[i] + 1 for i in range(n_sp)]
    if any(o <= 0 for o in out):
        raise ValueError(f"Conv: kernel {tuple(k)} (dilation {d}) is larger than the padded input {tuple(padded)}")
    return p, out


def conv2d_nchw(x, w, b=None, strides=None, pads=None, dilations=None, group=1, auto_pad="NOTSET",
                kernel_shape=None):
    """ONNX Conv on float32 arrays of any spatial rank (``kernel_shape``, when given, must be the weight's)."""
    x, w = _f32(x), _f32(w)
    n_sp = x.ndim - 2
    k = w.shape[2:]
    s = list(strides or [1] * n_sp)
    d = list(dilations or [1] * n_sp)
    N, C = x.shape[:2]
    M = w.shape[0]
    p, out = conv_geometry(x.shape, w.shape, s, pads, d, group, auto_pad, kernel_shape)
    xp = _pad_spatial(x, p)
    P = int(np.prod(out))
    cg, mg = C // group, M // group
    if cg == 1 and group > 1:
        # depthwise: one strided multiply-add per tap, channel multiplier mg
        xr = np.repeat(xp, mg, axis=1) if mg > 1 else xp
        y = np.zeros((N, M) + tuple(out), dtype=np.float32)
        wk = w.reshape(M, -1)
        for t, k_idx in enumerate(itertools.product(*[range(kk) for kk in k])):
            y += xr[(slice(None), slice(None)) + _tap_slices(k_idx, s, d, out)] * wk[:, t].reshape((1, M) + (1,) * n_sp)
    else:
        if all(kk == 1 for kk in k) and all(ss == 1 for ss in s):
            cols = xp.reshape(N, group, cg, P)
        else:
            cols = _window_view(xp, k, s, d, out).reshape(N, group, cg * int(np.prod(k)), P)
        wg = w.reshape(group, mg, -1)
        if N == 1 and group == 1:
            y = (wg[0] @ cols[0, 0]).reshape((1, M) + tuple(out))
        else:
            y = np.matmul(wg[None], cols).reshape((N, M) + tuple(out))
    if b is not None:
        y += _f32(b).reshape((1, M) + (1,) * n_sp)
    return y


@register("Conv", (1, 22))
def _conv(node, ins):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    return [
        conv2d_nchw(
            x,
            w,
            b,
            _a(node, "strides", None),
            _a(node, "pads", None),
            _a(node, "dilations", None),
            _a(node, "group", 1),
            _a(node, "auto_pad", "NOTSET"),
            _a(node, "kernel_shape", None),
        )
    ]


@static_check("Conv")
def _check_conv(node, shapes) -> None:
    conv_geometry(shapes[0], shapes[1], _a(node, "strides", None), _a(node, "pads", None),
                  _a(node, "dilations", None), _a(node, "group", 1), _a(node, "auto_pad", "NOTSET"),
                  _a(node, "kernel_shape", None))


def conv_transpose_geometry(in_sp, k, s, d, out_pad, pads, auto_pad, output_shape):
    """(pads as (begin, end) per axis, output spatial shape) of ONNX ConvTranspose."""
    n = len(in_sp)
    full = [s[i] * (in_sp[i] - 1) + out_pad[i] + (k[i] - 1) * d[i] + 1 for i in range(n)]
    if pads is None and (output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER")):
        target = list(output_shape)[-n:] if output_shape is not None else [in_sp[i] * s[i] for i in range(n)]
        p = []
        for i in range(n):
            total = full[i] - target[i]
            half = total // 2
            p.append((half, total - half) if auto_pad == "SAME_UPPER" else (total - half, half))
        return p, target
    if pads is None or auto_pad == "VALID":
        p = [(0, 0)] * n
    else:
        p = [(pads[i], pads[i + n]) for i in range(n)]
    if output_shape is not None:
        return p, list(output_shape)[-n:]
    return p, [full[i] - p[i][0] - p[i][1] for i in range(n)]


def _conv_transpose_check(x_shape, w_shape, s, d, out_pad, group) -> None:
    check_window("ConvTranspose", len(x_shape) - 2, kernel_shape=w_shape[2:], strides=s, dilations=d,
                 output_padding=out_pad)
    C = x_shape[1]
    if group < 1 or C != w_shape[0] or C % group:
        raise ValueError(f"ConvTranspose: input channels {C}, weight {tuple(w_shape)} and group {group} do not agree")


@static_check("ConvTranspose")
def _check_conv_transpose(node, shapes) -> None:
    x_shape, w_shape = shapes[0], shapes[1]
    n_sp = len(x_shape) - 2
    ks = _a(node, "kernel_shape", None)
    if ks is not None and tuple(ks) != tuple(w_shape[2:]):
        raise ValueError(f"ConvTranspose kernel_shape {list(ks)} does not match the weight {tuple(w_shape)}")
    _conv_transpose_check(x_shape, w_shape, list(_a(node, "strides", None) or [1] * n_sp),
                          list(_a(node, "dilations", None) or [1] * n_sp),
                          list(_a(node, "output_padding", None) or [0] * n_sp), _a(node, "group", 1))


def conv_transpose_nchw(
    x,
    w,
    b=None,
    strides=None,
    pads=None,
    dilations=None,
    group=1,
    auto_pad="NOTSET",
    output_padding=None,
    output_shape=None,
):
    x, w = _f32(x), _f32(w)
    n_sp = x.ndim - 2
    k = list(w.shape[2:])
    s = list(strides or [1] * n_sp)
    d = list(dilations or [1] * n_sp)
    op = list(output_padding or [0] * n_sp)
    N, C = x.shape[:2]
    _conv_transpose_check(x.shape, w.shape, s, d, op, group)
    cg, mg = C // group, w.shape[1]
    M = mg * group
    in_sp = list(x.shape[2:])
    p, out = conv_transpose_geometry(in_sp, k, s, d, op, pads, auto_pad, output_shape)
    P = int(np.prod(in_sp))
    kk = int(np.prod(k))
    # cols[n, g, mg*kk, P] = W_g^T @ X_g
    wg = w.reshape(group, cg, mg * kk).transpose(0, 2, 1)
    xg = x.reshape(N, group, cg, P)
    cols = np.matmul(wg[None], xg).reshape((N, M) + tuple(k) + tuple(in_sp))
    # col2im into a buffer that covers the un-cropped output and the requested window
    begin = [pi[0] for pi in p]
    full = [max(s[i] * (in_sp[i] - 1) + (k[i] - 1) * d[i] + 1, begin[i] + out[i]) for i in range(n_sp)]
    off = [max(-bi, 0) for bi in begin]  # negative pads grow the output at the front
    buf = np.zeros((N, M) + tuple(f + o for f, o in zip(full, off)), dtype=np.float32)
    for k_idx in itertools.product(*[range(kx) for kx in k]):
        sl = tuple(
            slice(off[i] + k_idx[i] * d[i], off[i] + k_idx[i] * d[i] + s[i] * (in_sp[i] - 1) + 1, s[i])
            for i in range(n_sp)
        )
        buf[(slice(None), slice(None)) + sl] += cols[(slice(None), slice(None)) + tuple(k_idx)]
    crop = tuple(slice(off[i] + begin[i], off[i] + begin[i] + out[i]) for i in range(n_sp))
    y = np.ascontiguousarray(buf[(slice(None), slice(None)) + crop])
    if b is not None:
        y += _f32(b).reshape((1, M) + (1,) * n_sp)
    return y


@register("ConvTranspose", (1, 22))
def _conv_transpose(node, ins):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    return [
        conv_transpose_nchw(
            x,
            w,
            b,
            _a(node, "strides", None),
            _a(node, "pads", None),
            _a(node, "dilations", None),
            _a(node, "group", 1),
            _a(node, "auto_pad", "NOTSET"),
            _a(node, "output_padding", None),
            _a(node, "output_shape", None),
        )
    ]


@register("MatMul", (1, 13))
def _matmul(node, ins):
    a, b = ins[0], ins[1]
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return [np.matmul(_f32(a), _f32(b))]
    return [np.matmul(a, b)]


@register("Gemm", (7, 13))
def _gemm(node, ins):
    a, b = _f32(ins[0]), _f32(ins[1])
    c = ins[2] if len(ins) > 2 else None
    if _a(node, "transA", 0):
        a = a.T
    if _a(node, "transB", 0):
        b = b.T
    y = a @ b
    alpha, beta = _a(node, "alpha", 1.0), _a(node, "beta", 1.0)
    if alpha != 1.0:
        y *= np.float32(alpha)
    if c is not None:
        y = y + (_f32(c) * np.float32(beta) if beta != 1.0 else _f32(c))
    return [y]


# ------------------------------------------------------------------------------------------------------
# pooling


def pool_geometry(in_sp, k, s, d, pads, auto_pad, ceil_mode):
    """(pads (begin, end), output shape, extra end padding for ceil_mode windows) per spatial axis."""
    n = len(in_sp)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        p = conv_pads(in_sp, k, s, d, None, auto_pad)
        out = [-(-in_sp[i] // s[i]) for i in range(n)]
    else:
        p = conv_pads(in_sp, k, s, d, pads, auto_pad)
        out = []
        for i in range(n):
            span = in_sp[i] + p[i][0] + p[i][1] - ((k[i] - 1) * d[i] + 1)
            if ceil_mode:
                o = -(-span // s[i]) + 1
                # the last window must start inside the input or the left padding
                if (o - 1) * s[i] >= in_sp[i] + p[i][0]:
                    o -= 1
            else:
                o = span // s[i] + 1
            out.append(o)
    extra = [max((out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - (in_sp[i] + p[i][0] + p[i][1]), 0) for i in range(n)]
    return p, out, extra


@static_check("MaxPool", "AveragePool")
def _check_pool(node, shapes):
    """(kernel, strides, dilations, pads, output shape, extra ceil_mode padding) of a MaxPool /
    AveragePool on an input of shapes[0]; raises ValueError naming a bad attribute."""
    in_sp = list(shapes[0][2:])
    n_sp = len(in_sp)
    if "kernel_shape" not in node.attrs:
        raise ValueError(f"{node.op_type}: the kernel_shape attribute is required")
    k = list(node.attrs["kernel_shape"])
    s = list(_a(node, "strides", None) or [1] * n_sp)
    d = list(_a(node, "dilations", None) or [1] * n_sp)
    check_window(node.op_type, n_sp, kernel_shape=k, strides=s, dilations=d)
    p, out, extra = pool_geometry(in_sp, k, s, d, _a(node, "pads", None), _a(node, "auto_pad", "NOTSET"),
                                  _a(node, "ceil_mode", 0))
    if any(o <= 0 for o in out):
        raise ValueError(f"{node.op_type}: kernel {k} (dilation {d}) is larger than the padded input {in_sp} "
                         f"(pads {[list(v) for v in p]})")
    return k, s, d, p, out, extra


def _pool(node, x, kind):
    x = _f32(x) if x.dtype.kind == "f" else x
    n_sp = x.ndim - 2
    k, s, d, p, out, extra = _check_pool(node, [x.shape])
    full = [(b, e + x_) for (b, e), x_ in zip(p, extra)]
    taps = list(itertools.product(*[range(kk) for kk in k]))
    if kind == "max":
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = _pad_spatial(x, full, lowest)
        y = None
        for k_idx in taps:
            v = xp[(slice(None), slice(None)) + _tap_slices(k_idx, s, d, out)]
            y = v.copy() if y is None else np.maximum(y, v)
        return y, (xp, full, taps, s, d, out)
    xp = _pad_spatial(x, full, 0.0)
    acc = np.zeros(x.shape[:2] + tuple(out), dtype=np.float32)
    for k_idx in taps:
        acc += xp[(slice(None), slice(None)) + _tap_slices(k_idx, s, d, out)]
    # divisor: the taps on real input (count_include_pad=0) or on input + explicit pads (=1); never the
    # extra ceil_mode area beyond the explicit end padding
    mask = np.zeros([1, 1] + [x.shape[2 + i] + full[i][0] + full[i][1] for i in range(n_sp)], np.float32)
    if _a(node, "count_include_pad", 0):
        mask[(0, 0) + tuple(slice(0, x.shape[2 + i] + p[i][0] + p[i][1]) for i in range(n_sp))] = 1
    else:
        mask[(0, 0) + tuple(slice(p[i][0], p[i][0] + x.shape[2 + i]) for i in range(n_sp))] = 1
    cnt = np.zeros([1, 1] + out, np.float32)
    for k_idx in taps:
        cnt += mask[(slice(None), slice(None)) + _tap_slices(k_idx, s, d, out)]
    return acc / cnt, None


@register("MaxPool", (1, 22))
def _max_pool(node, ins):
    x = ins[0]
    y, (xp, full, taps, s, d, out) = _pool(node, x, "max")
    res = [y]
    if len(node.outputs) > 1 and node.outputs[1]:
        # Indices: flat index into the unpadded input (row-major, or spatially column-major with
        # storage_order=1) of the first maximum in each window.
        n_sp = x.ndim - 2
        stack = np.stack([xp[(slice(None), slice(None)) + _tap_slices(k_idx, s, d, out)] for k_idx in taps])
        best = np.argmax(stack, axis=0)
        taps_arr = np.array(taps).reshape(len(taps), n_sp)
        grids = np.meshgrid(*[np.arange(o) for o in out], indexing="ij")
        coords = [grids[i] * s[i] + taps_arr[best, i] * d[i] - full[i][0] for i in range(n_sp)]
        sp = x.shape[2:]
        if _a(node, "storage_order", 0):
            flat = np.zeros_like(coords[0])
            mul = 1
            for i in range(n_sp):
                flat = flat + coords[i] * mul
                mul *= sp[i]
        else:
            flat = np.zeros_like(coords[0])
            for i in range(n_sp):
                flat = flat * sp[i] + coords[i]
        nc = (np.arange(x.shape[0])[:, None] * x.shape[1] + np.arange(x.shape[1])[None, :]) * int(np.prod(sp))
        res.append((flat + nc.reshape(nc.shape + (1,) * n_sp)).astype(np.int64))
    return res


@register("AveragePool", (7, 22))
def _average_pool(node, ins):
    return [_pool(node, ins[0], "avg")[0]]


@register("GlobalAveragePool", (1, 22))
def _global_average_pool(node, ins):
    x = _f32(ins[0])
    return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=np.float32)]


@register("GlobalMaxPool", (1, 22))
def _global_max_pool(node, ins):
    x = ins[0]
    return [x.max(axis=tuple(range(2, x.ndim)), keepdims=True)]


@register("LpNormalization", (1, 22))
def _lp_normalization(node, ins):
    x = _f32(ins[0])
    axis, p = _a(node, "axis", -1), _a(node, "p", 2)
    if p == 1:
        norm = np.abs(x).sum(axis=axis, keepdims=True)
    elif p == 2:
        norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=axis, keepdims=True)).astype(np.float32)
    else:
        raise ValueError(f"LpNormalization p must be 1 or 2, got {p}")
    with np.errstate(all="ignore"):
        return [np.where(norm == 0, np.float32(0), x / norm)]
