"""quantized_algorithm='kl_divergence' (compiler/quantize.py: choose_kl, kl_divergence).

Oracle: onnxruntime's own entropy calibration (TensorRT's KL method, onnxruntime.quantization.calibrate.
HistogramCollector with method='entropy', 2048 bins, 256 quantized bins) on the same data: npuemu's clipping
threshold must be within a factor 1.5 of onnxruntime's on distributions that need clipping (outliers) and
on ones that do not (uniform, Gaussian), so a method that never clips or always clips fails. The whole flow
(RKNN.config(quantized_algorithm='kl_divergence') + build) is checked in test_toolkit_api.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from npuemu.compiler.quantize import _BINS, _KL_SHRINK, kl_divergence

pytest.importorskip("onnxruntime")


def _ours(x: np.ndarray) -> "tuple[float, float]":
    lo, hi = float(x.min()), float(x.max())
    h, _ = np.histogram(x[x != 0], bins=_BINS, range=(lo, hi))  # as choose_kl: exact zeros left out
    kls = [kl_divergence(h, lo, hi, f) for f in _KL_SHRINK]
    best = int(np.argmin(kls))
    f = _KL_SHRINK[best] if kls[best] < kls[0] else 1.0
    return lo * f, hi * f


def _onnxruntime(x: np.ndarray) -> "tuple[float, float]":
    try:
        from onnxruntime.quantization.calibrate import HistogramCollector

        c = HistogramCollector(method="entropy", symmetric=False, num_bins=2048, num_quantized_bins=256,
                               percentile=99.99, scenario="same")
        c.collect({"t": [x]})
        r = c.compute_collection_result()["t"]
    except (ImportError, TypeError, AttributeError) as e:  # an onnxruntime whose calibrator API differs
        pytest.skip(f"onnxruntime's HistogramCollector is not usable here: {e}")
    return float(r[0]), float(r[1])


def _dists(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = 200_000
    return {
        "gaussian+outliers": np.concatenate([rng.standard_normal(n), [50, -50, 45]]),
        "relu+outlier": np.concatenate([np.maximum(rng.standard_normal(n), 0), [40]]),
        "uniform": rng.uniform(-3, 3, n),
        "gaussian": rng.standard_normal(n),
        "laplace": rng.laplace(0, 1, n),
    }


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dist", list(_dists(0)))
def test_threshold_agrees_with_onnxruntime_entropy_calibration(dist, seed):
    x = _dists(seed)[dist].astype(np.float32)
    lo, hi = _ours(x)
    olo, ohi = _onnxruntime(x)
    assert x.min() <= lo <= 0 <= hi <= x.max()
    assert 1 / 1.5 <= hi / ohi <= 1.5, (hi, ohi)
    if dist.endswith("outlier") or dist.endswith("outliers"):
        assert hi < 0.2 * x.max() and ohi < 0.2 * x.max()  # both clip the outliers away
    if dist == "uniform":
        assert hi >= 0.99 * x.max() and lo <= 0.99 * x.min()  # nothing to clip


def test_divergence_is_zero_only_when_int8_loses_nothing():
    # one value per int8 level, nothing outside: Q == P
    lo, hi = -1.0, 1.0
    h = np.zeros(_BINS, np.int64)
    h[:: _BINS // 256] = 5
    assert kl_divergence(h, lo, hi, 1.0) == pytest.approx(0.0, abs=1e-12)
    # clipping away mass that exists costs divergence; clipping an empty tail costs nothing more
    g = np.histogram(np.random.default_rng(0).standard_normal(100_000), bins=_BINS, range=(-8, 8))[0]
    assert kl_divergence(g, -8, 8, 0.5) < kl_divergence(g, -8, 8, 1.0)  # +-4: resolution gained, tails ~empty
    assert kl_divergence(g, -8, 8, 0.25) > 10 * kl_divergence(g, -8, 8, 0.5)  # +-2: 4.6% of the mass clipped
    assert kl_divergence(g, -8, 8, 0.125) > kl_divergence(g, -8, 8, 0.25)  # +-1: a third
