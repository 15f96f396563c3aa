"""Command line: ``npuemu info``, ``npuemu selfcheck`` and ``npuemu demo``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import _core, isa_info, list_kernels, ops


def cmd_info(_args) -> int:
    info = isa_info()
    from . import __version__

    print(f"npuemu {__version__}")
    print(f"CPU kernel tier: detected {info['detected']}, active {info['active']}")
    if "warning" in info:
        print("warning:", info["warning"])
    print(f"emulated NPU cores: {_core.num_cores()}")
    for op, title in (("conv2d", "convolution"), ("eltwise", "element-wise"), ("pool", "pooling")):
        print(f"registered {title} kernels:")
        for k in list_kernels(op):
            avail = "yes" if k["available"] else "no (needs " + k["isa"] + ")"
            print(f"  {k['name']:<34} families={','.join(k['families']):<15} available={avail}")
    return 0


def cmd_selfcheck(args) -> int:
    """Runs every available kernel on ResNet-style layers and checks it bit for bit against the
    reference kernel; prints each kernel's speed."""
    rng = np.random.default_rng(0)
    layers = [(64, 64, 3, 1, 28), (64, 128, 1, 2, 28), (32, 32, 3, 1, 14)]
    failures = 0
    for ic, oc, k, s, hw in layers:
        x = rng.integers(-128, 128, (1, ic, hw, hw)).astype(np.int8)
        w = rng.integers(-127, 128, (oc, ic, k, k)).astype(np.int8)
        ws = rng.uniform(0.002, 0.02, oc).astype(np.float32)
        args_ = dict(pads=k // 2, strides=s)
        ref = ops.qlinear_conv(x, 0.05, 1, w, ws, 0, 0.4, np.int8(-3), kernel="conv2d_any_reference_scalar", **args_)
        for kinfo in list_kernels():
            if not kinfo["available"] or "int8" not in kinfo["families"] or kinfo["algo"] == "reference":
                continue
            try:
                op = ops.QLinearConv(x.shape, "int8", 0.05, 1, w, ws, 0, 0.4, np.int8(-3), kernel=kinfo["name"],
                                     **args_)
            except ValueError as e:
                if "does not support" not in str(e):
                    raise
                continue  # e.g. Winograd kernels on a 1x1 layer
            y = op(x)
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                op(x, out=y)
            dt = (time.perf_counter() - t0) / args.repeat
            ok = np.array_equal(y, ref)
            failures += not ok
            print(f"{ic:>4}->{oc:<4} k{k} s{s} {hw}x{hw}  {kinfo['name']:<34} {'bit-exact' if ok else 'MISMATCH':<9} "
                  f"{op.macs / dt / 1e9:8.1f} GMAC/s")
    print("selfcheck:", "OK" if failures == 0 else f"{failures} FAILURES")
    return 1 if failures else 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(core_mask=args.core_mask, verbose=args.verbose)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="npuemu", description="Bit-exact RKNPU emulator")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info", help="CPU tier, emulated cores and registered kernels")
    p = sub.add_parser("selfcheck", help="check every kernel bit-exactly against the reference and time it")
    p.add_argument("--repeat", type=int, default=5)
    p = sub.add_parser("demo", help="the RKNN flow on the bundled digits CNN: fp32 / fp16 / int8 accuracy, cosine, "
                                    "timing, export and RKNNLite")
    p.add_argument("--core-mask", type=int, default=0, help="RKNN core mask (0 auto, 1, 2, 4, 3, 7)")
    p.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        return {"info": cmd_info, "selfcheck": cmd_selfcheck, "demo": cmd_demo}[args.cmd](args)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
