"""Calibration and quantization parameters (w8a8, ``quantized_algorithm='normal'``).

Activations: int8 asymmetric per tensor from the min / max seen over the calibration samples, the range
widened to contain 0 so that real zero is exactly representable (padding, ReLU):
``scale = (max - min) / 255``, ``zero_point = round(-128 - min / scale)`` clamped to [-128, 127].
Weights: int8 symmetric, ``scale = max|w| / 127`` per output channel (``quantized_method='channel'``) or
per tensor (``'layer'``), values ``clip(round_half_even(w / scale), -127, 127)``. Bias: int32 with scale
``x_scale * w_scale[c]``.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np

from ..ir import Graph
from ..reference import run_graph

__all__ = ["Ranges", "calibrate", "activation_qparams", "quantize_weights", "quantize_bias"]


class Ranges:
    """Running min / max of every float tensor of a graph."""

    def __init__(self) -> None:
        self.lo: "dict[str, float]" = {}
        self.hi: "dict[str, float]" = {}
        self.samples = 0

    def update(self, values: "dict[str, np.ndarray]") -> None:
        for k, v in values.items():
            if v.dtype.kind != "f" or v.size == 0:
                continue
            finite = v if np.isfinite(v).all() else v[np.isfinite(v)]
            if finite.size == 0:
                continue
            lo, hi = float(finite.min()), float(finite.max())
            if k in self.lo:
                self.lo[k] = min(self.lo[k], lo)
                self.hi[k] = max(self.hi[k], hi)
            else:
                self.lo[k], self.hi[k] = lo, hi
        self.samples += 1

        self.clip: "dict[str, tuple[float, float]]" = {}  # int8 ranges chosen by mmse

    def get(self, name: str) -> "tuple[float, float] | None":
        """The min / max seen (int16 tensors use it)."""
        if name not in self.lo:
            return None
        return self.lo[name], self.hi[name]

    def get8(self, name: str) -> "tuple[float, float] | None":
        """The range int8 quantization covers: the clipped range where mmse chose one, else min / max."""
        return self.clip.get(name) or self.get(name)


_BINS = 2048
_SHRINK = np.concatenate([np.linspace(1.0, 0.5, 26), np.linspace(0.48, 0.1, 20)])


def _histograms(graph: Graph, samples, ranges: Ranges, log, what: str, zeros: bool = True) -> "dict[str, np.ndarray]":
    """A second pass over the samples: every float tensor's histogram, _BINS bins over its min / max
    (without its exact zeros when ``zeros`` is False)."""
    hist: "dict[str, np.ndarray]" = {}
    t0 = time.perf_counter()
    for i, feeds in enumerate(samples):
        values = run_graph(graph, feeds, keep=True)
        for k, v in values.items():
            r = ranges.get(k)
            if r is None or graph.is_const(k) or v.dtype.kind != "f" or r[1] <= r[0]:
                continue
            h, _ = np.histogram(v[np.isfinite(v) & (zeros | (v != 0))], bins=_BINS, range=r)
            hist[k] = hist.get(k, 0) + h
        if log is not None:
            log(f"{what} histograms: {i + 1} samples, {time.perf_counter() - t0:.1f} s")
    return hist


def choose_mmse(graph: Graph, samples, ranges: Ranges, log=None) -> None:
    """quantized_algorithm='mmse': a second pass over the samples histograms every tensor (2048 bins over
    its min / max); for each tensor the int8 range is the one, among the min / max scaled by 46 factors
    from 1 down to 0.1 (both ends together), whose quantize -> dequantize round trip has the least squared
    error over the histogram. Outliers are then clipped when that costs less than the resolution gained."""
    for k, h in _histograms(graph, samples, ranges, log, "mmse").items():
        lo, hi = ranges.get(k)
        centers = lo + (np.arange(_BINS) + 0.5) * (hi - lo) / _BINS
        best, best_err = None, None
        w = h.astype(np.float64)
        for f in _SHRINK:
            s_, z_ = activation_qparams(lo * f, hi * f)
            q = np.clip(np.rint(centers / s_) + z_, -128, 127)
            err = float(np.sum(w * ((q - z_) * s_ - centers) ** 2))
            if best_err is None or err < best_err * (1 - 1e-9):
                best, best_err = f, err
        if best is not None and best < 1.0:
            ranges.clip[k] = (lo * best, hi * best)


# kl_divergence candidates: min / max scaled down to 1/8, where 256 of the 2048 bins remain for 256 levels
_KL_SHRINK = np.linspace(1.0, 0.125, 57)


def kl_divergence(h: np.ndarray, lo: float, hi: float, f: float) -> float:
    """KL(P || Q) of clipping a tensor with histogram ``h`` (_BINS bins over [lo, hi]) to the int8 range of
    [lo * f, hi * f] (TensorRT's entropy calibration, for asymmetric int8): P is the histogram inside the
    range with the mass outside added to its end bins; Q takes the same bins without that mass, sums them per
    int8 level (the level a bin's center quantizes to) and spreads each level's sum evenly over its bins
    that P does not leave empty. Both are normalized; Q is floored at 1e-12 where P is not zero."""
    s_, z_ = activation_qparams(lo * f, hi * f)
    centers = lo + (np.arange(h.size) + 0.5) * (hi - lo) / h.size
    inside = (centers >= lo * f - 1e-12 * abs(lo)) & (centers <= hi * f + 1e-12 * abs(hi))
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return float("inf")
    w = h.astype(np.float64)
    ref = w[idx].copy()
    ref[0] += w[: idx[0]].sum()
    ref[-1] += w[idx[-1] + 1 :].sum()
    level = np.clip(np.rint(centers[idx] / s_) + z_, -128, 127).astype(np.int64) + 128
    used = ref > 0
    total = np.bincount(level, weights=w[idx], minlength=256)
    count = np.bincount(level, weights=used.astype(np.float64), minlength=256)
    cand = np.where(used, total[level] / np.maximum(count[level], 1.0), 0.0)
    p = ref / ref.sum()
    qs = cand.sum()
    if qs <= 0:
        return float("inf")
    q = np.maximum(cand / qs, 1e-12)
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def choose_kl(graph: Graph, samples, ranges: Ranges, log=None) -> None:
    """quantized_algorithm='kl_divergence': a second pass histograms every tensor (2048 bins over its min /
    max); the int8 range is the one, among the min / max scaled by 57 factors from 1 down to 1/8 (both ends
    together), with the least :func:`kl_divergence` between the tensor's distribution and its int8 form. Exact
    zeros (ReLU's, padding's) are left out of the histograms: the zero point represents them exactly, and as
    one spike they would dominate the divergence of the level holding zero."""
    for k, h in _histograms(graph, samples, ranges, log, "kl_divergence", zeros=False).items():
        lo, hi = ranges.get(k)
        kls = [kl_divergence(h, lo, hi, f) for f in _KL_SHRINK]
        best = int(np.argmin(kls))
        if _KL_SHRINK[best] < 1.0 and kls[best] < kls[0]:
            ranges.clip[k] = (lo * _KL_SHRINK[best], hi * _KL_SHRINK[best])


def calibrate(
    graph: Graph,
    samples: "Iterable[dict[str, np.ndarray]]",
    total: "int | None" = None,
    log: "Callable[[str], None] | None" = None,
) -> Ranges:
    """Runs the float32 graph on every sample (graph input name -> array, after mean / std) and records
    the range of every float tensor. ``log`` receives progress lines."""
    r = Ranges()
    t0 = time.perf_counter()
    last = t0
    for i, feeds in enumerate(samples):
        values = run_graph(graph, feeds, keep=True)
        r.update({k: v for k, v in values.items() if not graph.is_const(k)})
        now = time.perf_counter()
        if log is not None and (now - last > 1.0 or i == 0 or (total is not None and i + 1 == total)):
            last = now
            n = f"{i + 1}/{total}" if total else f"{i + 1}"
            log(f"calibration: {n} samples, {now - t0:.1f} s")
    return r


def activation_qparams(lo: float, hi: float) -> "tuple[float, int]":
    """int8 asymmetric (scale, zero point) covering [lo, hi] and 0."""
    lo = min(float(lo), 0.0)
    hi = max(float(hi), 0.0)
    scale = np.float32((hi - lo) / 255.0)
    if not np.isfinite(scale) or scale <= 0 or scale < np.float32(1e-12):
        return 1.0 / 255.0, 0 if hi == lo == 0 else -128
    scale = float(scale)
    zp = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return scale, zp


def quantize_weights(w: np.ndarray, per_channel: bool, axis: int = 0) -> "tuple[np.ndarray, np.ndarray]":
    """Symmetric int8 weights: returns (int8 values, float32 scales: one per channel along ``axis``, or one)."""
    w = np.asarray(w, np.float32)
    if per_channel:
        red = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.max(np.abs(w), axis=red) if w.ndim > 1 else np.abs(w)
    else:
        amax = np.array([np.max(np.abs(w))], np.float32)
    scale = (amax.astype(np.float64) / 127.0).astype(np.float32)
    scale[~(scale > 0)] = np.float32(1.0)  # all-zero channel: any scale represents it
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def quantize_bias(b: "np.ndarray | None", x_scale: float, w_scale: np.ndarray, channels: int) -> "np.ndarray | None":
    """int32 bias with scale x_scale * w_scale[c], saturated to the int32 range."""
    if b is None:
        return None
    s = np.float64(np.float32(x_scale)) * np.broadcast_to(w_scale.astype(np.float64), (channels,))
    q = np.rint(np.asarray(b, np.float64).reshape(-1) / s)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)
