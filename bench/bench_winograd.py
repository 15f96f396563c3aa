"""Winograd vs direct convolution: per-call time on one emulated core (core_mask=0) of prepared ops.

    PYTHONPATH=python python bench/bench_winograd.py            # ResNet-50 3x3 layers + auto check
    PYTHONPATH=python python bench/bench_winograd.py --isa avx2 # another kernel tier
    PYTHONPATH=python python bench/bench_winograd.py --calibrate  # fit the cost-model constants

Times are the calling thread's CPU time (time.thread_time_ns), the minimum over rounds of at least
--min-time seconds each: with one core every stage runs on the calling thread, and CPU time is robust
against other processes on a shared machine. GMAC/s counts the direct convolution's multiply-adds
(n * oc * oh * ow * ic * 9) for every kernel, so it compares wall speed, not work done.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import npuemu
from npuemu import ops

RESNET = [(64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7)]
EXTRA = [(32, 32, 112), (16, 16, 56), (1024, 1024, 7)]
# calibration grid (ic, oc, hw): channel counts and sizes around the ones networks use
GRID = [
    (8, 8, 56), (16, 16, 112), (16, 32, 56), (24, 24, 56), (32, 32, 56), (32, 64, 28), (48, 48, 28), (64, 64, 28),
    (64, 64, 112), (96, 96, 14), (128, 128, 14), (128, 128, 56), (192, 192, 14), (256, 256, 7), (256, 256, 28),
    (384, 384, 13), (512, 512, 14), (768, 768, 7), (64, 128, 27), (160, 160, 9), (2048, 2048, 7), (40, 40, 75),
]


def kernels(family: str, isa: str) -> dict:
    names = [k["name"] for k in npuemu.list_kernels() if k["available"] and family in k["families"]]
    out = {}
    for algo in ("direct", "winograd23", "winograd43"):
        n = f"conv2d_{family}_{algo}_{isa}"
        if n in names:
            out[algo] = n
    return out


def make_op(family: str, ic: int, oc: int, hw: int, rng, **sel):
    x = rng.integers(-128, 128, (1, ic, hw, hw)).astype(np.int8)
    w = rng.integers(-127, 128, (oc, ic, 3, 3)).astype(np.int8)
    if family == "fp16":
        x = x.astype(np.float16)
        return ops.Conv(x.shape, (w / 64).astype(np.float16), pads=1, **sel), x
    ws = np.full(oc, 0.004, np.float32)
    return ops.QLinearConv(x.shape, "int8", 0.05, 1, w, ws, 0, 0.4, np.int8(-3), pads=1, **sel), x


def time_op(op, x, min_time: float, rounds: int) -> float:
    """Minimum per-call thread CPU time in ns."""
    y = op(x)
    best = float("inf")
    for _ in range(rounds):
        n = 0
        t0 = time.thread_time_ns()
        while True:
            op(x, out=y)
            n += 1
            dt = time.thread_time_ns() - t0
            if dt >= min_time * 1e9:
                break
        best = min(best, dt / n)
    return best


def table(args) -> None:
    rng = np.random.default_rng(0)
    print(f"isa={npuemu.isa_info()['active']}, one core (core_mask=0); ms per call and GMAC/s (direct MACs)")
    for family in ("int8", "fp16"):
        ks = kernels(family, args.isa)
        hdr = f"{'layer':<17}" + "".join(f"{a:>22}" for a in ks) + f"{'best wino / direct':>20}  auto"
        print(f"\n{family}\n{hdr}")
        for ic, oc, hw in RESNET + EXTRA:
            row = f"{ic:>4}->{oc:<4} @{hw:<3}x{hw:<3}"
            t = {}
            for algo, name in ks.items():
                op, x = make_op(family, ic, oc, hw, rng, kernel=name)
                t[algo] = time_op(op, x, args.min_time, args.rounds)
                row += f"{t[algo] / 1e6:>10.3f} ms {op.macs / t[algo]:6.1f} G"
            wino = min(v for a, v in t.items() if a != "direct")
            ratio = f"{t['direct'] / wino:>19.2f}x" if "direct" in t else f"{'-':>20}"
            auto, _ = make_op(family, ic, oc, hw, rng)
            chosen = auto.kernel_name.split("_", 2)[2]
            fastest = min(t, key=t.get)
            algo = chosen.rsplit("_", 1)[0]
            flag = "" if algo == fastest or (algo in t and t[algo] <= 1.03 * t[fastest]) else "  (slower pick)"
            print(row + f"{ratio}  {chosen}{flag}")


def model_terms(family: str, algo: str, ic: int, oc: int, hw: int) -> dict:
    """The quantities of the C++ cost() models (direct.cpp, winograd.cpp) for one layer, batch 1."""
    icp, ocp = -(-ic // 16) * 16, -(-oc // 16) * 16
    terms = dict(outs=oc * hw * hw, mem=0.05 * ic * (hw + 2) ** 2 + 0.05 * oc * hw * hw)  # conv_memory_cost_ns
    if algo == "direct":
        terms["macs"] = hw * hw * icp * ocp * 9  # MACs / lane efficiency
        return terms
    m = 4 if algo == "winograd43" else 2
    tiles, npos = (-(-hw // m)) ** 2, (m + 2) ** 2
    u_bytes = npos * icp * ocp * (2 if family == "int8" else 4)
    terms.update(gemm=tiles * npos * icp * ocp, vm=tiles * npos * (icp + ocp), vec=tiles * npos * ocp / 16,
                 stream=max(0.0, u_bytes - 16 * 2**20) * 0.045)
    return terms


def calibrate(args) -> None:
    """Measures every kernel of the tier on GRID + the table's layers and fits the constants of its
    cost() model (relative least squares): direct `macs / R + 90 * outs / R + mem + 2000`, Winograd
    `max(gemm / R, stream) + tf * vm + vec_ns * vecs + mem + 2000`."""
    from scipy.optimize import least_squares

    rng = np.random.default_rng(0)
    for family in ("int8", "fp16"):
        for algo, name in kernels(family, args.isa).items():
            terms, ts = [], []
            for ic, oc, hw in GRID + RESNET + EXTRA:
                op, x = make_op(family, ic, oc, hw, rng, kernel=name)
                ts.append(time_op(op, x, args.min_time, args.rounds))
                terms.append(model_terms(family, algo, ic, oc, hw))
            t = np.array(ts)

            def model(p):
                if algo == "direct":
                    return np.array([(d["macs"] + 90 * d["outs"]) / p[0] + d["mem"] + 2000 for d in terms])
                return np.array([max(d["gemm"] / p[0], d["stream"]) + p[1] * d["vm"] + p[2] * d["vec"] + d["mem"]
                                 + 2000 for d in terms])

            p0 = [50.0] if algo == "direct" else [50.0, 0.1, 0.1]
            fit = least_squares(lambda p: model(p) / t - 1, p0, bounds=(0, np.inf))
            rel = model(fit.x) / t - 1
            consts = f"rate {fit.x[0]:.1f}"
            if algo != "direct":
                consts += f", tf_ns {fit.x[1]:.3f}, vec_ns {fit.x[2]:.3f}"
            print(f"{name}: {consts}  (relative error max {np.abs(rel).max():.2f}, rms {np.sqrt(np.mean(rel**2)):.3f})")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--isa", default="avx512vnni", choices=["scalar", "avx2", "avx512vnni"])
    p.add_argument("--min-time", type=float, default=0.1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calibrate", action="store_true")
    args = p.parse_args()
    npuemu.set_isa(args.isa)
    (calibrate if args.calibrate else table)(args)


if __name__ == "__main__":
    main()
