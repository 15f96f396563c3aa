"""Shape and data-movement ops (canonical forms: axes, pads, split sizes, starts/ends are inputs)."""

from __future__ import annotations

import numpy as np

from .registry import register, static_check


def _a(node, name, default):
    return node.attrs.get(name, default)


def _axis(axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def _ints(x) -> "list[int]":
    return [int(v) for v in np.asarray(x).reshape(-1)]


@register("Shape", (1, 25))
def _shape(node, ins):
    shape = np.array(ins[0].shape, dtype=np.int64)
    r = len(shape)
    start, end = _a(node, "start", 0), _a(node, "end", None)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = r if end is None else min(max(end + r if end < 0 else end, 0), r)
    return [shape[start:end]]


@register("Size", (1, 25))
def _size(node, ins):
    return [np.array(ins[0].size, dtype=np.int64)]


def reshape_target(in_shape, shape, allowzero=0) -> "tuple[int, ...]":
    shape = _ints(shape)
    out = []
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise ValueError(f"Reshape: 0 at position {i} copies a dimension the input {tuple(in_shape)} lacks")
            out.append(in_shape[i])
        else:
            out.append(d)
    if out.count(-1) > 1:
        raise ValueError(f"Reshape: more than one -1 in {shape}")
    total = int(np.prod(in_shape, dtype=np.int64))
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ValueError(f"Reshape: cannot infer -1 in {shape} for input {tuple(in_shape)}")
        out[out.index(-1)] = total // known
    if int(np.prod(out, dtype=np.int64)) != total:
        raise ValueError(f"Reshape: input {tuple(in_shape)} ({total} elements) cannot take shape {shape}")
    return tuple(out)


@register("Reshape", (5, 25))
def _reshape(node, ins):
    return [ins[0].reshape(reshape_target(ins[0].shape, ins[1], _a(node, "allowzero", 0)))]


@register("Flatten", (1, 25))
def _flatten(node, ins):
    x = ins[0]
    axis = _a(node, "axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        raise ValueError(f"Flatten axis {_a(node, 'axis', 1)} out of range for rank {x.ndim}")
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(lead, -1) if lead else x.reshape(0, int(np.prod(x.shape[axis:], dtype=np.int64)))]


@register("Squeeze", (1, 25))
def _squeeze(node, ins):
    x = ins[0]
    axes = ins[1] if len(ins) > 1 else None
    if axes is None:
        return [x.reshape([d for d in x.shape if d != 1])]
    ax = sorted({_axis(a, x.ndim) for a in _ints(axes)})
    for a in ax:
        if x.shape[a] != 1:
            raise ValueError(f"Squeeze axis {a} has size {x.shape[a]}, not 1 (input {x.shape})")
    return [x.reshape([d for i, d in enumerate(x.shape) if i not in ax])]


@register("Unsqueeze", (1, 25))
def _unsqueeze(node, ins):
    x = ins[0]
    axes = _ints(ins[1])
    r = x.ndim + len(axes)
    ax = sorted(_axis(a, r) for a in axes)
    if len(set(ax)) != len(ax):
        raise ValueError(f"Unsqueeze axes {axes} repeat an axis")
    shape = list(x.shape)
    for a in ax:
        shape.insert(a, 1)
    return [x.reshape(shape)]


@register("Transpose", (1, 25))
def _transpose(node, ins):
    perm = _a(node, "perm", None)
    return [np.transpose(ins[0], perm)]


@register("Concat", (4, 13))
def _concat(node, ins):
    xs = [x for x in ins if x is not None]
    return [np.concatenate(xs, axis=_axis(node.attrs["axis"], xs[0].ndim))]


def split_sizes(dim: int, split, n_out: int, chunked: bool = False) -> "list[int]":
    """The sizes of a Split's n_out outputs: the ``split`` input, else n_out chunks of ceil(dim / n_out)
    (the last smaller) when ``chunked`` (the num_outputs attribute, which must equal n_out: onnx and
    onnxruntime read fewer outputs differently), else n_out equal parts."""
    if split is not None:
        sizes = _ints(split)
        if any(v < 0 for v in sizes) or sum(sizes) != dim:
            raise ValueError(f"Split sizes {sizes} must be >= 0 and add up to the axis size {dim}")
        if len(sizes) != n_out:
            raise ValueError(f"Split has {len(sizes)} sizes {sizes} for {n_out} outputs")
        return sizes
    if chunked:
        chunk = -(-dim // n_out)
    else:
        if dim % n_out:
            raise ValueError(f"Split: axis size {dim} is not divisible by {n_out} outputs")
        chunk = dim // n_out
    return [min(chunk, max(dim - i * chunk, 0)) for i in range(n_out)]


@static_check("Split")
def _check_split(node, shapes) -> None:
    num_outputs = _a(node, "num_outputs", None)
    if num_outputs is not None and num_outputs != len(node.outputs):
        raise ValueError(f"Split: num_outputs {num_outputs} is not the node's {len(node.outputs)} outputs")


@register("Split", (2, 18))
def _split(node, ins):
    x = ins[0]
    axis = _axis(_a(node, "axis", 0), x.ndim)
    split = ins[1] if len(ins) > 1 else None
    _check_split(node, None)
    sizes = split_sizes(x.shape[axis], split, len(node.outputs), _a(node, "num_outputs", None) is not None)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return [np.take(x, np.arange(b, b + n), axis=axis) for b, n in zip(starts, sizes)]


def slice_index(shape, starts, ends, axes=None, steps=None) -> tuple:
    """The tuple of Python slices of ONNX Slice (clamping per the spec; negative steps allowed)."""
    starts, ends = _ints(starts), _ints(ends)
    r = len(shape)
    axes = list(range(len(starts))) if axes is None else [_axis(a, r) for a in _ints(axes)]
    steps = [1] * len(starts) if steps is None else _ints(steps)
    sl = [slice(None)] * r
    for s, e, a, st in zip(starts, ends, axes, steps):
        d = shape[a]
        if st == 0:
            raise ValueError("Slice step must not be 0")
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
        else:
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
        sl[a] = slice(s, None if e < 0 else e, st)
    return tuple(sl)


@register("Slice", (1, 13))
def _slice(node, ins):
    x = ins[0]
    axes = ins[3] if len(ins) > 3 else None
    steps = ins[4] if len(ins) > 4 else None
    return [x[slice_index(x.shape, ins[1], ins[2], axes, steps)]]


def _norm_indices(idx, dim, what):
    idx = np.asarray(idx).astype(np.int64)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise ValueError(f"{what} index out of range [{-dim}, {dim - 1}]")
    return np.where(idx < 0, idx + dim, idx)


@register("Gather", (1, 13))
def _gather(node, ins):
    x = ins[0]
    axis = _axis(_a(node, "axis", 0), x.ndim)
    return [np.take(x, _norm_indices(ins[1], x.shape[axis], "Gather"), axis=axis)]


@register("GatherElements", (11, 13))
def _gather_elements(node, ins):
    x = ins[0]
    axis = _axis(_a(node, "axis", 0), x.ndim)
    return [np.take_along_axis(x, _norm_indices(ins[1], x.shape[axis], "GatherElements"), axis=axis)]


@register("GatherND", (11, 13))
def _gather_nd(node, ins):
    x, idx = ins[0], np.asarray(ins[1]).astype(np.int64)
    b = _a(node, "batch_dims", 0)
    k = idx.shape[-1]
    batch = x.shape[:b]
    nb = int(np.prod(batch, dtype=np.int64))
    xb = x.reshape((nb,) + x.shape[b:])
    ib = idx.reshape((nb, -1, k))
    dims = np.array(x.shape[b : b + k])
    ib = np.where(ib < 0, ib + dims, ib)
    out = [xb[i][tuple(ib[i].T)] for i in range(nb)]
    res = np.stack(out) if out else np.empty((0,) + x.shape[b + k :], x.dtype)
    return [res.reshape(idx.shape[:-1] + x.shape[b + k :])]


_REDUCERS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@register("ScatterND", (11, 18))
def _scatter_nd(node, ins):
    x, idx, upd = ins[0], np.asarray(ins[1]).astype(np.int64), ins[2]
    out = x.copy()
    red = _a(node, "reduction", "none")
    k = idx.shape[-1]
    flat_idx = idx.reshape(-1, k)
    flat_idx = np.where(flat_idx < 0, flat_idx + np.array(x.shape[:k]), flat_idx)
    flat_upd = upd.reshape((-1,) + x.shape[k:])
    for i in range(flat_idx.shape[0]):
        t = tuple(flat_idx[i])
        out[t] = flat_upd[i] if red == "none" else _REDUCERS[red](out[t], flat_upd[i])
    return [out]


@register("ScatterElements", (11, 18))
def _scatter_elements(node, ins):
    x, upd = ins[0], ins[2]
    axis = _axis(_a(node, "axis", 0), x.ndim)
    idx = _norm_indices(ins[1], x.shape[axis], "ScatterElements")
    out = x.copy()
    red = _a(node, "reduction", "none")
    full = list(np.indices(idx.shape, sparse=True))
    full[axis] = idx
    if red == "none":
        out[tuple(full)] = upd
    else:
        _REDUCERS[red].at(out, tuple(np.broadcast_arrays(*full)), upd)
    return [out]


@register("Expand", (8, 13))
def _expand(node, ins):
    x = ins[0]
    shape = np.broadcast_shapes(x.shape, tuple(_ints(ins[1])))
    return [np.broadcast_to(x, shape).copy()]


@register("Tile", (6, 13))
def _tile(node, ins):
    return [np.tile(ins[0], _ints(ins[1]))]


@register("ConstantOfShape", (9, 25))
def _constant_of_shape(node, ins):
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return [np.full(tuple(_ints(ins[0])), value.reshape(-1)[0], dtype=value.dtype)]


@register("Range", (11, 27))
def _range(node, ins):
    start, limit, delta = (np.asarray(v).reshape(()) for v in ins[:3])
    n = max(int(np.ceil((limit - start) / delta)), 0) if delta != 0 else 0
    # ONNX defines element i as start + i * delta (no accumulated rounding)
    return [(start + np.arange(n, dtype=np.int64).astype(start.dtype) * delta).astype(start.dtype)]


@register("Constant", (1, 25))
def _constant(node, ins):
    return [np.asarray(node.attrs["value"])]


@register("Pad", (2, 25))
def _pad(node, ins):
    x = ins[0]
    pads = _ints(ins[1])
    value = ins[2] if len(ins) > 2 and ins[2] is not None and np.asarray(ins[2]).size else None
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else None
    r = x.ndim
    axes = list(range(r)) if axes is None else [_axis(a, r) for a in _ints(axes)]
    if len(pads) != 2 * len(axes):
        raise ValueError(f"Pad: {len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * r, [0] * r
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[i + len(axes)]
    # negative pads crop first
    crop = tuple(slice(max(-b, 0), x.shape[a] - max(-e, 0)) for a, (b, e) in enumerate(zip(begin, end)))
    x = x[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    mode = _a(node, "mode", "constant")
    if mode == "constant":
        cv = np.asarray(value).reshape(-1)[0] if value is not None else 0
        return [np.pad(x, width, mode="constant", constant_values=cv)]
    if mode not in ("reflect", "edge", "wrap"):
        raise ValueError(f"Pad mode {mode!r} is not one of constant, reflect, edge, wrap")
    return [np.pad(x, width, mode=mode)]


@register("DepthToSpace", (1, 28))
def _depth_to_space(node, ins):
    x = ins[0]
    b = int(node.attrs["blocksize"])
    n, c, h, w = x.shape
    if _a(node, "mode", "DCR") == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return [y.reshape(n, c // (b * b), h * b, w * b)]


@register("SpaceToDepth", (1, 28))
def _space_to_depth(node, ins):
    x = ins[0]
    b = int(node.attrs["blocksize"])
    n, c, h, w = x.shape
    if _a(node, "mode", "DCR") == "DCR":
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    else:
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 1, 3, 5, 2, 4)
    return [y.reshape(n, c * b * b, h // b, w // b)]


@register("Trilu", (14, 14))
def _trilu(node, ins):
    k = int(np.asarray(ins[1]).reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None else 0
    f = np.triu if _a(node, "upper", 1) else np.tril
    return [f(ins[0], k)]


@register("OneHot", (9, 28))
def _one_hot(node, ins):
    idx, depth, values = np.asarray(ins[0]), int(np.asarray(ins[1]).reshape(-1)[0]), np.asarray(ins[2])
    axis = _a(node, "axis", -1)
    r = idx.ndim + 1
    axis = _axis(axis, r)
    idx = np.where(idx < 0, idx + depth, idx).astype(np.int64)
    hot = np.arange(depth).reshape([-1 if i == axis else 1 for i in range(r)]) == np.expand_dims(idx, axis)
    return [np.where(hot, values[1], values[0]).astype(values.dtype)]


@register("CumSum", (11, 14))
def _cumsum(node, ins):
    x = ins[0]
    axis = _axis(int(np.asarray(ins[1]).reshape(-1)[0]), x.ndim)
    rev, excl = _a(node, "reverse", 0), _a(node, "exclusive", 0)
    y = np.flip(x, axis) if rev else x
    c = np.cumsum(y, axis=axis, dtype=x.dtype)
    if excl:
        c = np.concatenate(
            [np.zeros_like(np.take(c, [0], axis=axis)), np.take(c, np.arange(c.shape[axis] - 1), axis=axis)], axis=axis
        )
    return [np.flip(c, axis) if rev else c]


def _arg(node, ins, largest):
    x = ins[0]
    axis = _axis(_a(node, "axis", 0), x.ndim)
    keep = _a(node, "keepdims", 1)
    last = _a(node, "select_last_index", 0)
    xa = np.flip(x, axis) if last else x
    idx = np.argmax(xa, axis=axis) if largest else np.argmin(xa, axis=axis)
    if last:
        idx = x.shape[axis] - 1 - idx
    idx = idx.astype(np.int64)
    return [np.expand_dims(idx, axis) if keep else idx]


register("ArgMax", (11, 13))(lambda node, ins: _arg(node, ins, True))
register("ArgMin", (11, 13))(lambda node, ins: _arg(node, ins, False))


@register("TopK", (1, 24))
def _topk(node, ins):
    x = ins[0]
    k = int(np.asarray(ins[1]).reshape(-1)[0])
    axis = _axis(_a(node, "axis", -1), x.ndim)
    largest = _a(node, "largest", 1)
    if not 0 <= k <= x.shape[axis]:
        raise ValueError(f"TopK k={k} out of range for axis size {x.shape[axis]}")
    key = x.astype(np.float64)
    # stable sort of the negated key: equal values keep the lower index first, as ONNX asks
    order = np.argsort(-key if largest else key, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


@register("Einsum", (12, 28))
def _einsum(node, ins):
    eq = node.attrs["equation"].replace(" ", "")
    return [np.einsum(eq, *ins)]


@register("Dropout", (7, 22))
def _dropout(node, ins):
    training = len(ins) > 2 and ins[2] is not None and bool(np.asarray(ins[2]).reshape(-1)[0])
    ratio = float(np.asarray(ins[1]).reshape(-1)[0]) if len(ins) > 1 and ins[1] is not None else 0.5
    if training and ratio > 0:
        raise ValueError("Dropout in training mode (random masks) is not supported by the inference executor")
    outs = [ins[0]]
    if len(node.outputs) > 1:
        outs.append(np.ones(ins[0].shape, dtype=bool))
    return outs
