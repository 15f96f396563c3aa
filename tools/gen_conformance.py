#!/usr/bin/env python3
"""Regenerates docs/conformance.md: every ONNX node test case of every op the frontend claims, run through
npuemu.frontend.import_onnx + npuemu.reference.run_graph (see tests/conformance_cases.py).

Usage: PYTHONPATH=python python tools/gen_conformance.py [--check]
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
DOC = os.path.join(ROOT, "docs", "conformance.md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/conformance.md is stale")
    args = ap.parse_args()
    import conformance_cases

    text = conformance_cases.table_markdown()
    if args.check:
        with open(DOC) as f:
            stale = f.read() != text
        print("docs/conformance.md is " + ("STALE" if stale else "up to date"))
        return 1 if stale else 0
    with open(DOC, "w") as f:
        f.write(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
