"""The emulated chips (``target_platform`` profiles): one table, read by the config, the compiler and the
performance model.

Figures come from /work/shared/docs/npu-facts.md sections 1 and 5. Numbers marked ``# inferred`` are readings of
tile sizes in public headers or copies of the rk3588 figure, not vendor statements: they are model parameters,
and this table is the only place they live.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Mapping, Tuple

from .errors import NpuError

__all__ = [
    "PlatformError",
    "Limits",
    "Platform",
    "PLATFORMS",
    "PLATFORM_NAMES",
    "DEFAULT_PLATFORM",
    "VENDOR_ONLY_PLATFORMS",
    "CORE_MASK_NAMES",
    "get_platform",
]


class PlatformError(NpuError):
    """An unknown target platform, or a value (core mask, ...) that the chip does not have."""


# RKNN.NPU_CORE_* values of rknn-toolkit2 (init_runtime(core_mask=...)).
CORE_MASK_NAMES: Mapping[int, str] = types.MappingProxyType(
    {
        0: "NPU_CORE_AUTO",
        1: "NPU_CORE_0",
        2: "NPU_CORE_1",
        4: "NPU_CORE_2",
        3: "NPU_CORE_0_1",
        7: "NPU_CORE_0_1_2",
        0xFFFF: "NPU_CORE_ALL",
    }
)


@dataclass(frozen=True)
class Limits:
    """Attribute ranges an op must fit to run on the NPU (inclusive ``(min, max)``); beyond them the vendor
    compiler sends the op to the CPU. Facts section 5 gives the rk3588 numbers."""

    conv_kernel: Tuple[int, int] = (1, 31)  # kernel h and w
    conv_stride: Tuple[int, int] = (1, 7)
    conv_pad: Tuple[int, int] = (0, 15)  # each of top/left/bottom/right
    conv_dilation: Tuple[int, int] = (1, 31)
    depthwise_kernel: Tuple[int, int] = (1, 8)
    pool_kernel: Tuple[int, int] = (1, 7)
    pool_stride: Tuple[int, int] = (1, 8)
    pool_ceil_mode: bool = False  # ceil_mode=1 pooling is not an NPU op


_RK3588_LIMITS = Limits()


@dataclass(frozen=True)
class Platform:
    """One chip's NPU. ``int8_macs_per_cycle`` and ``sram_kb`` are per core; the peak rate of the whole NPU
    in ops/s is ``npu_cores * int8_macs_per_cycle * 2 * clock_hz`` (a MAC counts as 2 ops)."""

    name: str
    npu_cores: int
    int8_macs_per_cycle: int
    fp16_macs_per_cycle: int  # 0: no float16 convolution on this chip
    int16_macs_per_cycle: int
    clock_hz: float
    # NC1HWC2 channel block per dtype ('int8', 'fp16', 'int16'); C1 = ceil(C / C2).
    c2: Mapping[str, int] = field(hash=False)
    sram_kb: int  # internal buffer (CBUF) per core
    dtypes: Tuple[str, ...]  # quantized_dtype values the vendor toolkit accepts for this chip
    core_masks: Tuple[int, ...]  # init_runtime(core_mask=...) values valid on this chip
    limits: Limits = _RK3588_LIMITS

    @property
    def fp16(self) -> bool:
        """Whether float16 builds (build(do_quantization=False) with float_dtype='float16') are possible."""
        return self.fp16_macs_per_cycle > 0

    @property
    def peak_int8_ops(self) -> float:
        """INT8 peak of all cores in ops/s (rk3588: 3 * 1024 * 2 * 1e9 = 6.144e12, the marketed '6 TOPS')."""
        return self.npu_cores * self.int8_macs_per_cycle * 2 * self.clock_hz

    def check_core_mask(self, mask: object) -> int:
        """Returns ``mask`` as an int when the chip has it, else raises PlatformError listing the valid ones."""
        if isinstance(mask, bool) or not isinstance(mask, int):
            raise PlatformError(f"core_mask must be an int, got {mask!r} ({type(mask).__name__})")
        if mask not in self.core_masks:
            valid = ", ".join(
                f"{CORE_MASK_NAMES[m]}={m:#x}" if m == 0xFFFF else f"{CORE_MASK_NAMES[m]}={m}" for m in self.core_masks
            )
            raise PlatformError(
                f"core_mask {mask!r} is not valid on {self.name} ({self.npu_cores} NPU core"
                f"{'s' if self.npu_cores > 1 else ''}); choose one of {valid}"
            )
        return int(mask)


def _c2(int8: int, fp16: int, int16: int) -> Mapping[str, int]:
    return types.MappingProxyType({"int8": int8, "fp16": fp16, "int16": int16})


_SINGLE_CORE_MASKS = (0, 1, 0xFFFF)

_TABLE = (
    Platform(
        name="rk3588",
        npu_cores=3,
        int8_macs_per_cycle=1024,
        fp16_macs_per_cycle=512,  # inferred: 1/2 of int8
        int16_macs_per_cycle=512,  # inferred: 1/2 of int8
        clock_hz=1.0e9,
        c2=_c2(16, 8, 8),
        sram_kb=384,  # TRM
        dtypes=("w8a8",),
        core_masks=(0, 1, 2, 4, 3, 7, 0xFFFF),
    ),
    Platform(
        name="rk3576",
        npu_cores=2,
        # inferred; the chip is marketed as 6 TOPS, which 2 x 1024 x 2 x 1 GHz (4.1 TOPS) does not reach: unresolved.
        int8_macs_per_cycle=1024,
        fp16_macs_per_cycle=512,  # inferred
        int16_macs_per_cycle=512,  # inferred
        clock_hz=1.0e9,
        c2=_c2(16, 8, 8),  # inferred: rk3588 values
        sram_kb=384,  # inferred: rk3588 value
        dtypes=("w8a8", "w4a16"),
        core_masks=(0, 1, 2, 3, 0xFFFF),
    ),
    Platform(
        name="rk3566",
        npu_cores=1,
        int8_macs_per_cycle=512,  # inferred ("up to 1 TOPS")
        fp16_macs_per_cycle=128,  # inferred: 1/4 of int8 (weak FP16)
        int16_macs_per_cycle=128,  # inferred: 1/4 of int8
        clock_hz=1.0e9,
        c2=_c2(8, 4, 4),
        sram_kb=384,  # inferred: rk3588 value
        dtypes=("w8a8",),
        core_masks=_SINGLE_CORE_MASKS,
    ),
    Platform(
        name="rk3568",
        npu_cores=1,
        int8_macs_per_cycle=512,  # inferred ("up to 1 TOPS")
        fp16_macs_per_cycle=128,  # inferred: 1/4 of int8 (weak FP16)
        int16_macs_per_cycle=128,  # inferred: 1/4 of int8
        clock_hz=1.0e9,
        c2=_c2(8, 4, 4),
        sram_kb=384,  # inferred: rk3588 value
        dtypes=("w8a8",),
        core_masks=_SINGLE_CORE_MASKS,
    ),
    Platform(
        name="rk3562",
        npu_cores=1,
        int8_macs_per_cycle=512,  # inferred
        fp16_macs_per_cycle=256,  # inferred: 1/2 of int8
        int16_macs_per_cycle=256,  # inferred: 1/2 of int8
        clock_hz=1.0e9,
        c2=_c2(16, 8, 8),
        sram_kb=384,  # inferred: rk3588 value
        dtypes=("w8a8", "w8a16"),
        core_masks=_SINGLE_CORE_MASKS,
    ),
    # rv1103 / rv1106: conv is int8 only (no float16 build); marketed 0.5 TOPS, while the facts' 256 MAC/cycle at
    # 0.5 GHz gives 0.256 TOPS: both numbers are kept as the facts state them.
    Platform(
        name="rv1103",
        npu_cores=1,
        int8_macs_per_cycle=256,  # inferred
        fp16_macs_per_cycle=0,
        int16_macs_per_cycle=128,  # inferred: 1/2 of int8 (w16a16i)
        clock_hz=0.5e9,
        c2=_c2(16, 8, 8),  # inferred: rv1106 values
        sram_kb=384,  # inferred: rk3588 value
        dtypes=("w8a8", "w16a16i", "w16a16i_dfp"),
        core_masks=_SINGLE_CORE_MASKS,
    ),
    Platform(
        name="rv1106",
        npu_cores=1,
        int8_macs_per_cycle=256,  # inferred
        fp16_macs_per_cycle=0,
        int16_macs_per_cycle=128,  # inferred: 1/2 of int8 (w16a16i)
        clock_hz=0.5e9,
        c2=_c2(16, 8, 8),
        sram_kb=384,  # inferred: rk3588 value
        dtypes=("w8a8", "w16a16i", "w16a16i_dfp"),
        core_masks=_SINGLE_CORE_MASKS,
    ),
)

PLATFORMS: Mapping[str, Platform] = types.MappingProxyType({p.name: p for p in _TABLE})
PLATFORM_NAMES: Tuple[str, ...] = tuple(sorted(PLATFORMS))
DEFAULT_PLATFORM = "rk3588"  # what config(target_platform=None) means

# Chips rknn-toolkit2 2.5.0 accepts that npuemu does not emulate (no public figures gathered for them yet).
VENDOR_ONLY_PLATFORMS: Tuple[str, ...] = ("rk2118", "rv1103b", "rv1106b", "rv1126b")


def get_platform(name: str) -> Platform:
    """The profile of ``name`` (case-insensitive). ``None`` is not accepted here: the caller picks a default."""
    if not isinstance(name, str):
        raise PlatformError(
            f"target_platform must be a str, got {name!r} ({type(name).__name__}); "
            f"choose one of {', '.join(PLATFORM_NAMES)}"
        )
    key = name.strip().lower()
    if key in PLATFORMS:
        return PLATFORMS[key]
    if key in VENDOR_ONLY_PLATFORMS:
        raise PlatformError(
            f"target_platform {name!r} is a vendor platform not emulated by npuemu yet; "
            f"choose one of {', '.join(PLATFORM_NAMES)}"
        )
    raise PlatformError(f"target_platform {name!r} is not supported; choose one of {', '.join(PLATFORM_NAMES)}")
