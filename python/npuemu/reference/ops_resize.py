"""Resize (opsets 11-19 semantics; Resize-10 and Upsample are rewritten to it by the frontend).

Resize is separable: each resized axis is processed on its own with a small tap table (for every output
position the input indices and weights of the interpolation kernel), which covers nearest, linear and
cubic, antialiasing, exclude_outside and tf_crop_and_resize's extrapolation with one code path.

Taps follow the ONNX definition: for a source coordinate x the window starts at ``x0 = ceil(x) - 1``
(so the fraction ``r = x - x0`` lies in (0, 1]), indices outside the input are clamped (edge padding), and
with ``exclude_outside`` their weights are zeroed and the rest renormalised.

Where a scale makes the output length fractional (``scale * length`` not an integer), align_corners,
pytorch_half_pixel and tf_crop_and_resize use that fractional length, as the ONNX reference implementation
and the ONNX node test cases do (onnxruntime uses the integer length there and fails those cases).
"""

from __future__ import annotations

import math

import numpy as np

from .registry import register

_MODES = ("nearest", "linear", "cubic")
_COORD = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coords(mode: str, out_len: int, in_len: int, scale: float, roi=(0.0, 1.0)):
    """Source coordinate of every output index along one axis, and the tf_crop_and_resize
    extrapolation mask (None for the other modes)."""
    o = np.arange(out_len, dtype=np.float64)
    out_f = scale * in_len  # the un-rounded output length
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        adjustment = out_len / out_f
        offset = in_len / 2.0 * (1 - adjustment)
        return offset + (o + 0.5) / scale - 0.5, None
    if mode == "pytorch_half_pixel":
        return ((o + 0.5) / scale - 0.5 if out_f != 1 else np.full(out_len, -0.5)), None
    if mode == "align_corners":
        return (o * (in_len - 1) / (out_f - 1) if out_f != 1 else np.zeros(out_len)), None
    if mode == "asymmetric":
        return o / scale, None
    if mode == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale, None
    if mode == "tf_crop_and_resize":
        start, end = roi
        if out_f != 1:
            x = start * (in_len - 1) + o * (end - start) * (in_len - 1) / (out_f - 1)
        else:
            x = np.full(out_len, start * (in_len - 1) + (end - start) * (in_len - 1) / 2)
        return x, (x < 0) | (x > in_len - 1)
    raise ValueError(f"Resize coordinate_transformation_mode {mode!r} is not one of {', '.join(_COORD)}")


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    w = np.zeros_like(t)
    m1 = t <= 1
    m2 = (t > 1) & (t < 2)
    w[m1] = ((a + 2) * t[m1] - (a + 3)) * t[m1] * t[m1] + 1
    w[m2] = ((a * t[m2] - 5 * a) * t[m2] + 8 * a) * t[m2] - 4 * a
    return w


def axis_taps(
    x: np.ndarray,
    in_len: int,
    scale: float,
    mode: str,
    nearest_mode: str,
    cubic_a: float,
    antialias: bool,
    exclude_outside: bool,
):
    """(indices [O, T] clamped into the input, weights [O, T]) for source coordinates ``x``."""
    x0 = np.ceil(x).astype(np.int64) - 1
    r = x - x0  # in (0, 1]
    if mode == "nearest":
        if nearest_mode == "round_prefer_floor":
            pick = r > 0.5
        elif nearest_mode == "round_prefer_ceil":
            pick = r >= 0.5
        elif nearest_mode == "floor":
            pick = r == 1.0
        elif nearest_mode == "ceil":
            pick = np.ones_like(r, dtype=bool)
        else:
            raise ValueError(f"Resize nearest_mode {nearest_mode!r} is not one of {', '.join(_NEAREST)}")
        offs = np.array([0, 1])
        w = np.stack([~pick, pick], axis=1).astype(np.float64)
    elif mode == "linear":
        if antialias and scale < 1:
            start = math.floor(-1 / scale) + 1
            offs = np.arange(start, 2 - start)
            w = np.clip(1 - np.abs((offs[None, :] - r[:, None]) * scale), 0, 1)
            w = w / w.sum(axis=1, keepdims=True)
        else:
            offs = np.array([0, 1])
            w = np.stack([1 - r, r], axis=1)
    elif mode == "cubic":
        if antialias and scale < 1:
            start = math.floor(-2 / scale) + 1
            offs = np.arange(start, 2 - start)
            w = _cubic((offs[None, :] - r[:, None]) * scale, cubic_a)
            w = w / w.sum(axis=1, keepdims=True)
        else:
            offs = np.array([-1, 0, 1, 2])
            w = _cubic(offs[None, :] - r[:, None], cubic_a)
    else:
        raise ValueError(f"Resize mode {mode!r} is not one of {', '.join(_MODES)}")
    idx = x0[:, None] + offs[None, :]
    if exclude_outside:
        w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
        s = w.sum(axis=1, keepdims=True)
        w = w / np.where(s == 0, 1.0, s)
    return np.clip(idx, 0, in_len - 1), w


def resize_plan(in_shape, roi, scales, sizes, axes=None, keep_aspect_ratio_policy="stretch"):
    """Per-axis (scale, output length, roi) of ONNX Resize."""
    r = len(in_shape)
    axes = list(range(r)) if axes is None else [int(a) % r for a in axes]
    scale = [1.0] * r
    out = list(in_shape)
    roi_full = [(0.0, 1.0)] * r
    if roi is not None and np.asarray(roi).size:
        roi = np.asarray(roi, np.float64).reshape(-1)
        na = len(axes)
        if roi.size != 2 * na:
            raise ValueError(f"Resize roi has {roi.size} values, expected {2 * na}")
        for i, a in enumerate(axes):
            roi_full[a] = (float(roi[i]), float(roi[na + i]))
    if sizes is not None and np.asarray(sizes).size:
        sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
        if len(sizes) != len(axes):
            raise ValueError(f"Resize sizes {sizes} do not match {len(axes)} axes")
        ratios = [sizes[i] / in_shape[a] for i, a in enumerate(axes)]
        if keep_aspect_ratio_policy in ("not_larger", "not_smaller"):
            s = min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)
            for a in axes:
                scale[a] = s
                out[a] = int(s * in_shape[a] + 0.5)  # round half up, as the spec's round_int
        elif keep_aspect_ratio_policy == "stretch":
            for i, a in enumerate(axes):
                scale[a], out[a] = ratios[i], sizes[i]
        else:
            raise ValueError(
                f"Resize keep_aspect_ratio_policy {keep_aspect_ratio_policy!r} is not stretch, "
                "not_larger or not_smaller"
            )
    elif scales is not None and np.asarray(scales).size:
        sc = [float(v) for v in np.asarray(scales).reshape(-1)]
        if len(sc) != len(axes):
            raise ValueError(f"Resize scales {sc} do not match {len(axes)} axes")
        for i, a in enumerate(axes):
            if sc[i] <= 0:
                raise ValueError(f"Resize scale {sc[i]} must be positive")
            scale[a] = sc[i]
            out[a] = int(math.floor(in_shape[a] * sc[i]))
    else:
        raise ValueError("Resize needs scales or sizes")
    return scale, out, roi_full


def resize(
    x: np.ndarray,
    roi=None,
    scales=None,
    sizes=None,
    *,
    mode="nearest",
    coordinate_transformation_mode="half_pixel",
    nearest_mode="round_prefer_floor",
    cubic_coeff_a=-0.75,
    exclude_outside=0,
    extrapolation_value=0.0,
    antialias=0,
    axes=None,
    keep_aspect_ratio_policy="stretch",
) -> np.ndarray:
    scale, out, roi_full = resize_plan(x.shape, roi, scales, sizes, axes, keep_aspect_ratio_policy)
    is_float = x.dtype.kind == "f"
    y = np.asarray(x, np.float64) if not (is_float and mode == "nearest") else x
    masks = []
    for a in range(x.ndim):
        if out[a] == x.shape[a] and scale[a] == 1.0 and roi_full[a] == (0.0, 1.0):
            continue
        src, mask = source_coords(coordinate_transformation_mode, out[a], x.shape[a], scale[a], roi_full[a])
        idx, w = axis_taps(
            src, x.shape[a], scale[a], mode, nearest_mode, cubic_coeff_a, bool(antialias), bool(exclude_outside)
        )
        if mode == "nearest":
            sel = idx[np.arange(out[a]), np.argmax(w, axis=1)]
            y = np.take(y, sel, axis=a)
        else:
            shape_w = [1] * y.ndim
            shape_w[a] = out[a]
            acc = None
            for t in range(idx.shape[1]):
                term = np.take(y, idx[:, t], axis=a) * w[:, t].reshape(shape_w)
                acc = term if acc is None else acc + term
            y = acc
        if mask is not None:
            shape_m = [1] * x.ndim
            shape_m[a] = out[a]
            masks.append(mask.reshape(shape_m))
    if masks:
        any_out = masks[0]
        for m in masks[1:]:
            any_out = any_out | m
        y = np.where(any_out, extrapolation_value, y)
    if is_float:
        return np.asarray(y, np.float32)
    info = np.iinfo(x.dtype)
    return np.clip(np.round(y), info.min, info.max).astype(x.dtype)


@register("Resize", (10, 19))
def _resize(node, ins):
    x = ins[0]
    roi = ins[1] if len(ins) > 1 else None
    scales = ins[2] if len(ins) > 2 else None
    sizes = ins[3] if len(ins) > 3 else None
    a = node.attrs
    return [
        resize(
            x,
            roi,
            scales,
            sizes,
            mode=a.get("mode", "nearest"),
            coordinate_transformation_mode=a.get("coordinate_transformation_mode", "half_pixel"),
            nearest_mode=a.get("nearest_mode", "round_prefer_floor"),
            cubic_coeff_a=a.get("cubic_coeff_a", -0.75),
            exclude_outside=a.get("exclude_outside", 0),
            extrapolation_value=a.get("extrapolation_value", 0.0),
            antialias=a.get("antialias", 0),
            axes=a.get("axes", None),
            keep_aspect_ratio_policy=a.get("keep_aspect_ratio_policy", "stretch"),
        )
    ]
