"""Single-core speed of the direct convolution kernels on ResNet-50 layer shapes (GMAC/s = MACs per ns).

    PYTHONPATH=python python bench/direct_rates.py [--isa avx2] [--repeat 5] [--families int8,int16,fp16]

The "model rate" column (MACs / (time - modelled memory passes - 2 us), see DirectKernel::cost and
conv_memory_cost_ns) feeds the `rate` arguments of the NPUEMU_DIRECT_KERNEL lines in csrc/kernels/conv/direct.cpp
(MACs per ns on one core for algo='auto'). Timing: best of `repeat` runs of a prepared op, core_mask=1.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import npuemu
from npuemu import ops

# (name, ic, oc, k, stride, hw)
LAYERS = [
    ("64->64 3x3 @56", 64, 64, 3, 1, 56),
    ("64->256 1x1 @56", 64, 256, 1, 1, 56),
    ("256->256 3x3 @14", 256, 256, 3, 1, 14),
    ("512->512 3x3 @7", 512, 512, 3, 1, 7),
]


def make_op(family, kernel, ic, oc, k, s, hw, rng):
    pads = (k // 2,) * 4
    kw = dict(strides=(s, s), pads=pads, kernel=kernel)
    if family == "int8":
        w = rng.integers(-127, 128, (oc, ic, k, k)).astype(np.int8)
        x = rng.integers(-128, 128, (1, ic, hw, hw)).astype(np.int8)
        ws = rng.uniform(0.002, 0.02, oc).astype(np.float32)
        op = ops.QLinearConv(x.shape, "int8", 0.05, 1, w, ws, 0, 0.4, np.int8(-3), **kw)
    elif family == "int16":
        w = rng.integers(-32767, 32768, (oc, ic, k, k)).astype(np.int16)
        x = rng.integers(-32768, 32768, (1, ic, hw, hw)).astype(np.int16)
        ws = rng.uniform(1e-4, 1e-3, oc).astype(np.float32)
        op = ops.QLinearConv(x.shape, "int16", 0.001, 0, w, ws, 0, 50.0, np.int16(3), **kw)
    else:
        w = (rng.standard_normal((oc, ic, k, k)) * 0.1).astype(np.float16)
        x = rng.standard_normal((1, ic, hw, hw)).astype(np.float16)
        op = ops.Conv(x.shape, w, **kw)
    return op, x


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--isa", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--families", default="int8,int16,fp16")
    ap.add_argument("--kernels", default="", help="comma-separated kernel names (default: direct kernels of the ISA)")
    args = ap.parse_args()
    if args.isa:
        npuemu.set_isa(args.isa)
    rng = np.random.default_rng(0)
    want = [k for k in args.kernels.split(",") if k]
    for fam in args.families.split(","):
        order = ["scalar", "avx2", "avx512vnni"]
        active = order.index(npuemu.isa_info()["active"])
        kernels = want or [k["name"] for k in npuemu.list_kernels() if k["available"] and fam in k["families"]
                           and order.index(k["isa"]) <= active
                           and k["algo"] == "direct" and k["name"].startswith(f"conv2d_{fam}_")
                           and not k["name"].endswith("_scalar")]
        for kern in kernels:
            if not kern.startswith(f"conv2d_{fam}_"):
                continue
            for name, ic, oc, k, s, hw in LAYERS:
                op, x = make_op(fam, kern, ic, oc, k, s, hw, rng)
                y = op(x, core_mask=1)
                best = float("inf")
                for _ in range(args.repeat):
                    t0 = time.perf_counter_ns()
                    op(x, core_mask=1, out=y)
                    best = min(best, time.perf_counter_ns() - t0)
                # the cost model's MAC rate: time less its modelled memory passes and fixed 2 us
                mem = 0.15 * ic * (hw + 2 * (k // 2)) ** 2 + 0.25 * oc * (hw // s) ** 2 + 2000.0
                print(f"{kern:<34} {name:<18} {op.macs / best:7.1f} GMAC/s  ({best / 1e6:.2f} ms)  "
                      f"model rate {op.macs / (best - mem):6.1f}", flush=True)


if __name__ == "__main__":
    main()
