"""Measures how often npuemu's element-wise and pooling ops equal onnxruntime's, per op, dtype and
rounding (the numbers of docs/arithmetic.md section 7).

    PYTHONPATH=python python tools/ort_agreement.py [--seed N] [--trials N]

Random data (uniform with 15% extremes), random scales and zero points, shapes with broadcasting,
padding, strides and ceil_mode; every element counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from onnx_oracles import run_ort  # noqa: E402

from npuemu import ops  # noqa: E402

RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
ELT_SHAPES = [((2, 16, 28, 28), (2, 16, 28, 28)), ((1, 32, 14, 14), (32, 1, 1)), ((3, 1000), ()), ((), (4, 333)),
              ((64, 1), (1, 64)), ((3, 1, 77), (1, 5, 1))]
POOL_CASES = [((1, 16, 28, 28), (3, 3), (2, 2), (1, 1, 1, 1), False),
              ((1, 8, 27, 31), (3, 3), (2, 2), (1, 1, 1, 1), True),
              ((2, 8, 14, 14), (2, 2), (2, 2), (0, 0, 0, 0), False),
              ((1, 8, 17, 19), (5, 5), (1, 1), (2, 2, 2, 2), False),
              ((1, 4, 20, 45), (3, 5), (4, 3), (2, 4, 1, 0), True),
              ((1, 32, 7, 7), (7, 7), (1, 1), (0, 0, 0, 0), False)]


def data(rng, shape, dt):
    lo, hi = RANGE[dt]
    a = rng.integers(lo, hi + 1, shape, dtype=np.int64)
    m = rng.random(shape)
    a[m < 0.075] = lo
    a[m > 0.925] = hi
    return a.astype(dt)


class Tally:
    def __init__(self):
        self.n = self.exact = self.maxdiff = 0

    def add(self, got, ref):
        d = np.abs(got.astype(np.int64) - ref.astype(np.int64))
        self.n += d.size
        self.exact += int(np.count_nonzero(d == 0))
        self.maxdiff = max(self.maxdiff, int(d.max()))

    def __str__(self):
        return f"{self.exact / self.n:.6%} exact of {self.n} elements, max |diff| {self.maxdiff}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--trials", type=int, default=4)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    f32 = np.float32
    for op, ort_op in (("add", "QLinearAdd"), ("mul", "QLinearMul")):
        for dt in RANGE:
            tallies = {"float": Tally(), "fixed_point": Tally()}
            lo, hi = RANGE[dt]
            for sa_, sb_ in ELT_SHAPES:
                for _ in range(args.trials):
                    a, b = data(rng, sa_, dt), data(rng, sb_, dt)
                    sc = [float(v) for v in rng.uniform(0.002, 0.1, 3)]
                    if op == "mul":
                        sc[2] *= 0.2
                    zp = [int(v) for v in rng.integers(lo, hi + 1, 3)]
                    feeds = dict(a=a, a_scale=np.array(sc[0], f32), a_zero_point=np.array(zp[0], dt), b=b,
                                 b_scale=np.array(sc[1], f32), b_zero_point=np.array(zp[1], dt),
                                 y_scale=np.array(sc[2], f32), y_zero_point=np.array(zp[2], dt))
                    ref = run_ort(ort_op, feeds, np.dtype(dt), domain="com.microsoft")
                    for r, t in tallies.items():
                        t.add(getattr(ops, op)(a, sc[0], np.array(zp[0], dt), b, sc[1], np.array(zp[1], dt), sc[2],
                                               np.array(zp[2], dt), rounding=r), ref)
            for r, t in tallies.items():
                print(f"{op:<4} {dt:<5} rounding={r:<11} vs onnxruntime {ort_op}: {t}")
    for dt in RANGE:
        tallies = {"float": Tally(), "fixed_point": Tally()}
        gtallies = {"float": Tally(), "fixed_point": Tally()}
        lo, hi = RANGE[dt]
        for shape, k, s, pads, ceil in POOL_CASES:
            for cip in (False, True):
                for _ in range(args.trials):
                    x = data(rng, shape, dt)
                    xs, ys = (float(v) for v in rng.uniform(0.005, 0.1, 2))
                    xz, yz = (int(v) for v in rng.integers(lo, hi + 1, 2))
                    feeds = dict(x=x, x_scale=np.array(xs, f32), x_zero_point=np.array(xz, dt),
                                 y_scale=np.array(ys, f32), y_zero_point=np.array(yz, dt))
                    attrs = dict(kernel_shape=list(k), strides=list(s), pads=list(pads), ceil_mode=int(ceil),
                                 count_include_pad=int(cip))
                    ref = run_ort("QLinearAveragePool", feeds, np.dtype(dt), attrs, domain="com.microsoft")
                    q = dict(x_scale=xs, y_scale=ys, x_zero_point=np.array(xz, dt), y_zero_point=np.array(yz, dt))
                    for r, t in tallies.items():
                        t.add(ops.avg_pool(x, k, strides=s, pads=pads, ceil_mode=ceil, count_include_pad=cip,
                                           rounding=r, **q), ref)
                    if not cip:
                        gref = run_ort("QLinearGlobalAveragePool", feeds, np.dtype(dt), domain="com.microsoft")
                        for r, t in gtallies.items():
                            t.add(ops.global_average_pool(x, rounding=r, **q), gref)
        for r, t in tallies.items():
            print(f"avg_pool {dt:<5} rounding={r:<11} vs onnxruntime QLinearAveragePool: {t}")
        for r, t in gtallies.items():
            print(f"global_average_pool {dt:<5} rounding={r:<11} vs onnxruntime QLinearGlobalAveragePool: {t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
