"""npuemu: a bit-exact, fast emulator of Rockchip-style NPUs (RKNPU) on x86-64 CPUs.

``npuemu.ops`` holds the functional API of the emulated NPU (convolution, matmul, element-wise,
pooling) with ONNX semantics; see docs/arithmetic.md for the arithmetic contract.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import _core, ops  # noqa: E402
from .api import RKNN  # noqa: E402
from .lite import RKNNLite  # noqa: E402

__all__ = ["RKNN", "RKNNLite", "ops", "isa_info", "set_isa", "list_kernels", "num_cores", "set_num_cores", "__version__"]


def isa_info() -> dict:
    """The CPU's best kernel tier, the active tier (after NPUEMU_ISA / set_isa) and the valid names."""
    import os

    env = os.environ.get("NPUEMU_ISA")
    info = {"detected": _core.detected_isa(), "active": _core.active_isa(), "choices": ["scalar", "avx2", "avx512vnni"]}
    if env and env not in ("scalar", "avx2", "avx512vnni", "avx512"):
        info["warning"] = f"NPUEMU_ISA={env!r} is not a valid ISA name and was ignored"
    return info


def set_isa(name: str) -> None:
    """Caps the kernel tier: 'scalar', 'avx2' or 'avx512vnni' (never above what the CPU supports)."""
    _core.set_isa(name)


def list_kernels(op: str = "conv2d") -> list:
    """Registered kernels of ``op`` ('conv2d', 'eltwise' or 'pool') with their families, algorithm, ISA
    tier and availability on this CPU."""
    listing = {"conv2d": _core.list_conv_kernels, "eltwise": _core.list_eltwise_kernels,
               "pool": _core.list_pool_kernels}
    if op not in listing:
        raise ValueError(f"op must be 'conv2d', 'eltwise' or 'pool', got {op!r}")
    return sorted(listing[op](), key=lambda k: k["name"])


def num_cores() -> int:
    """Number of emulated NPU cores (3, as RK3588, unless changed)."""
    return _core.num_cores()


def set_num_cores(n: int) -> None:
    """Sets the number of emulated NPU cores (1..16); core masks are validated against it."""
    _core.set_num_cores(int(n))
