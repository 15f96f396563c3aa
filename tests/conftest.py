"""Shared fixtures: seeded random data, registered kernels, ISA tiers and independent oracles
(onnxruntime and onnx.reference on single-node ONNX models)."""

from __future__ import annotations

import numpy as np
import pytest

import npuemu


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)


_ISA_ORDER = ["scalar", "avx2", "avx512vnni"]


def runnable(k: dict) -> bool:
    """Whether a listed kernel can run now: this CPU has its ISA and the active tier (NPUEMU_ISA) allows it."""
    return k["available"] and _ISA_ORDER.index(k["isa"]) <= _ISA_ORDER.index(npuemu.isa_info()["active"])


def available_kernels(family: str, algo: str | None = None, op: str = "conv2d") -> list:
    """Names of the registered kernels of a family that can run under the active ISA tier (the test matrix)."""
    return [
        k["name"]
        for k in npuemu.list_kernels(op)
        if runnable(k) and family in k["families"] and (algo is None or k["algo"] == algo)
    ]


def call_or_skip(fn, kernel):
    """Runs fn(kernel); skips the test when the kernel does not implement this problem (e.g. a
    depthwise-only kernel given a dense convolution)."""
    try:
        return fn(kernel)
    except ValueError as e:
        if "does not support" in str(e):
            pytest.skip(f"{kernel}: {e}")
        raise


def available_isas() -> list:
    return _ISA_ORDER[: _ISA_ORDER.index(npuemu.isa_info()["detected"]) + 1]


@pytest.fixture
def isa_cap():
    """Yields a setter that caps the ISA tier; restores the cap afterwards."""
    before = npuemu.isa_info()["active"]

    def set_cap(name: str) -> None:
        npuemu.set_isa(name)

    yield set_cap
    npuemu.set_isa("avx512vnni" if before == "avx512vnni" else before)
