"""``RKNN.config(...)``: the validated, normalised build options.

:func:`make_config` takes exactly the keywords of rknn-toolkit2 2.5.0's ``RKNN.config`` and returns a frozen
:class:`Config`. Values npuemu cannot honour yet raise :class:`ConfigNotImplementedError` ("not implemented yet in
npuemu"), values the vendor toolkit would not accept either raise plain :class:`ConfigError`; both messages name
the bad value and list the valid choices.

Normalisation:

- ``mean_values`` / ``std_values``: ``None`` or a tuple with one tuple of floats per model input. A flat list of
  numbers is the single-input form (``[0, 0, 0]`` == ``[[0, 0, 0]]``). An entry of one number is broadcast over
  the input's channels by :meth:`Config.means_for` / :meth:`Config.stds_for`, which also check the lengths against
  the model.
- ``quantized_dtype='asymmetric_quantized-8'`` becomes ``'w8a8'``; ``target_platform`` becomes lower-case
  (``None`` stays ``None`` and means rk3588, see :attr:`Config.platform`).
- ``quant_img_RGB2BGR``: a bool, or a tuple of bools (one per input).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import NpuError
from .platforms import DEFAULT_PLATFORM, PLATFORM_NAMES, VENDOR_ONLY_PLATFORMS, Platform, PlatformError, get_platform

__all__ = ["ConfigError", "ConfigNotImplementedError", "Config", "make_config", "CONFIG_KEYWORDS"]


class ConfigError(NpuError):
    """A config() argument that is unknown, of the wrong type or out of range."""


class ConfigNotImplementedError(ConfigError):
    """A valid rknn-toolkit2 config() value that npuemu does not implement yet."""


_NOT_IMPL = "not implemented yet in npuemu"

QUANTIZED_DTYPES_IMPLEMENTED = ("w8a8",)
_QUANTIZED_DTYPE_ALIASES = {"asymmetric_quantized-8": "w8a8"}
# Vendor values (2.5.0, plus the announced w4a8 and the 1.x-era names) that npuemu does not implement yet.
QUANTIZED_DTYPES_PENDING = (
    "w4a16",
    "w8a16",
    "w16a16i",
    "w16a16i_dfp",
    "w4a8",
    "asymmetric_quantized-16",
    "dynamic_fixed_point-i8",
    "dynamic_fixed_point-i16",
)
QUANTIZED_ALGORITHMS_IMPLEMENTED = ("normal", "mmse", "kl_divergence")
QUANTIZED_ALGORITHMS_PENDING = ("gdq",)
QUANTIZED_METHODS = ("channel", "layer")  # vendor 'group{32,64,...,256}' is pending
FLOAT_DTYPES_IMPLEMENTED = ("float16", "float32")  # float32: npuemu extension, runs the float golden path
FLOAT_DTYPES_PENDING = ("bfloat16",)
CUSTOM_STRING_MAX_BYTES = 1023  # rknn_api.h: rknn_custom_string { char string[1024]; } with the NUL

# Keyword -> default, in the vendor signature's order (rknn-toolkit2 2.5.0 rknn/api/rknn.py RKNN.config).
_DEFAULTS: Dict[str, Any] = {
    "mean_values": None,
    "std_values": None,
    "quantized_dtype": "w8a8",
    "quantized_algorithm": "normal",
    "quantized_method": "channel",
    "quantized_hybrid_level": 0,
    "target_platform": None,
    "quant_img_RGB2BGR": False,
    "float_dtype": "float16",
    "optimization_level": 3,
    "custom_string": None,
    "remove_weight": False,
    "compress_weight": False,
    "inputs_yuv_fmt": None,
    "single_core_mode": False,
    "dynamic_input": None,
    "model_pruning": False,
    "op_target": None,
    "quantize_weight": False,
    "remove_reshape": False,
    "sparse_infer": False,
    "enable_flash_attention": False,
    "auto_hybrid_cos_thresh": 0.98,
    "auto_hybrid_euc_thresh": None,
}
CONFIG_KEYWORDS: Tuple[str, ...] = tuple(_DEFAULTS)

# Undocumented keywords the vendor's config(**kwargs) also takes (listed in its own error message).
_VENDOR_HIDDEN_KEYWORDS = (
    "output_optimize",
    "set_op_attr",
    "sram_prefer",
    "nbuf_prefer",
    "check_data",
    "stream_op",
    "disable_rules",
    "enable_rnn_loop",
)

# Options accepted only at their default value (any other value is pending); bool ones are type-checked first.
_PENDING_BOOL_OPTIONS = (
    "remove_weight",
    "compress_weight",
    "model_pruning",
    "quantize_weight",
    "remove_reshape",
    "sparse_infer",
    "enable_flash_attention",
)
_PENDING_NONE_OPTIONS = ("inputs_yuv_fmt", "dynamic_input")
OP_TARGETS = ("cpu", "npu")  # config(op_target={layer: target})

Values = Optional[Tuple[Tuple[float, ...], ...]]


def _choices(values: Sequence[str]) -> str:
    return ", ".join(values)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check_bool(name: str, value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ConfigError(f"{name} must be True or False, got {value!r}")


def _check_choice(name: str, value: Any, implemented: Sequence[str], pending: Sequence[str] = ()) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a str, got {value!r}; choose one of {_choices(implemented)}")
    if value in implemented:
        return value
    if value in pending:
        raise ConfigNotImplementedError(f"{name} {value!r} is {_NOT_IMPL}; implemented: {_choices(implemented)}")
    raise ConfigError(f"{name} {value!r} is unknown; choose one of {_choices(tuple(implemented) + tuple(pending))}")


def _check_op_target(value: Any) -> Optional[Dict[str, str]]:
    """op_target: None or {layer name: 'cpu' | 'npu'} (the names are checked against the model at build)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"op_target must be None or a dict {{layer name: 'cpu' or 'npu'}}, got {value!r}")
    out: Dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k:
            raise ConfigError(f"op_target keys must be layer names (non-empty str), got {k!r}")
        t = v.strip().lower() if isinstance(v, str) else v
        if t not in OP_TARGETS:
            raise ConfigError(f"op_target[{k!r}] = {v!r} is not a target npuemu has; choose one of "
                              f"{_choices(OP_TARGETS)}")
        out[k] = t
    return out


def _normalise_values(name: str, value: Any, positive: bool) -> Values:
    """mean_values / std_values -> tuple (per input) of tuples of floats."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"{name} must be None or a list with one list of numbers per model input (e.g. [[0, 0, 0]]), got {value!r}"
        )
    if len(value) == 0:
        raise ConfigError(f"{name} must not be empty, got {value!r}; use None for the default")
    entries = [v.tolist() if isinstance(v, np.ndarray) else v for v in value]
    if all(_is_number(v) for v in entries):
        entries = [entries]  # the single-input form [m0, m1, m2]
    elif not all(isinstance(v, (list, tuple)) for v in entries):
        raise ConfigError(
            f"{name} must be a list of numbers (one input) or a list of lists of numbers (one per input), "
            f"not a mix: got {value!r}"
        )
    out = []
    for i, entry in enumerate(entries):
        if len(entry) == 0:
            raise ConfigError(f"{name}[{i}] is empty; give one number per channel, or one number for all channels")
        row = []
        for v in entry:
            if not _is_number(v):
                raise ConfigError(f"{name}[{i}] must hold numbers, got {v!r} in {list(entry)!r}")
            f = float(v)
            if not math.isfinite(f):
                raise ConfigError(f"{name}[{i}] must hold finite numbers, got {v!r} in {list(entry)!r}")
            if positive and f <= 0.0:
                raise ConfigError(f"{name}[{i}] must hold numbers > 0, got {v!r} in {list(entry)!r}")
            row.append(f)
        out.append(tuple(row))
    return tuple(out)


@dataclass(frozen=True)
class Config:
    """The normalised arguments of ``RKNN.config``. Build one with :func:`make_config` (or ``Config(...)``
    directly: both validate); the fields have the vendor keyword names and defaults."""

    mean_values: Values = None
    std_values: Values = None
    quantized_dtype: str = "w8a8"
    quantized_algorithm: str = "normal"
    quantized_method: str = "channel"
    quantized_hybrid_level: int = 0
    target_platform: Optional[str] = None
    quant_img_RGB2BGR: Union[bool, Tuple[bool, ...]] = False
    float_dtype: str = "float16"
    optimization_level: int = 3
    custom_string: Optional[str] = None
    remove_weight: bool = False
    compress_weight: bool = False
    inputs_yuv_fmt: Any = None
    single_core_mode: bool = False
    dynamic_input: Any = None
    model_pruning: bool = False
    op_target: Any = None
    quantize_weight: bool = False
    remove_reshape: bool = False
    sparse_infer: bool = False
    enable_flash_attention: bool = False
    auto_hybrid_cos_thresh: float = 0.98
    auto_hybrid_euc_thresh: Optional[float] = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("mean_values", _normalise_values("mean_values", self.mean_values, positive=False))
        put("std_values", _normalise_values("std_values", self.std_values, positive=True))

        # target_platform first: quantized_dtype is checked against it.
        tp = self.target_platform
        if tp is not None:
            if not isinstance(tp, str):
                raise ConfigError(
                    f"target_platform must be None or a str, got {tp!r}; choose one of {_choices(PLATFORM_NAMES)}"
                )
            key = tp.strip().lower()
            if key in VENDOR_ONLY_PLATFORMS:
                raise ConfigNotImplementedError(
                    f"target_platform {tp!r} is {_NOT_IMPL}; choose one of {_choices(PLATFORM_NAMES)}"
                )
            try:
                tp = get_platform(key).name
            except PlatformError as e:
                raise ConfigError(str(e)) from None
            put("target_platform", tp)

        qd = self.quantized_dtype
        if isinstance(qd, str):
            qd = _QUANTIZED_DTYPE_ALIASES.get(qd, qd)
            if tp is not None and qd in QUANTIZED_DTYPES_IMPLEMENTED + QUANTIZED_DTYPES_PENDING:
                plat = get_platform(tp)
                if qd not in plat.dtypes and not qd.startswith(("asymmetric", "dynamic")):
                    others = [p for p in PLATFORM_NAMES if qd in get_platform(p).dtypes]
                    where = f" ({qd} is a dtype of {_choices(others)})" if others else ""
                    raise ConfigError(
                        f"quantized_dtype {qd!r} is not supported on {tp}; choose one of {_choices(plat.dtypes)}{where}"
                    )
        put(
            "quantized_dtype",
            _check_choice("quantized_dtype", qd, QUANTIZED_DTYPES_IMPLEMENTED, QUANTIZED_DTYPES_PENDING),
        )

        put(
            "quantized_algorithm",
            _check_choice(
                "quantized_algorithm",
                self.quantized_algorithm,
                QUANTIZED_ALGORITHMS_IMPLEMENTED,
                QUANTIZED_ALGORITHMS_PENDING,
            ),
        )

        qm = self.quantized_method
        if isinstance(qm, str) and qm.startswith("group"):
            # vendor: 'group{SIZE}', SIZE a multiple of 32 in 32..256
            size = qm[len("group") :]
            if size.isdigit() and int(size) % 32 == 0 and 32 <= int(size) <= 256:
                raise ConfigNotImplementedError(
                    f"quantized_method {qm!r} is {_NOT_IMPL}; implemented: {_choices(QUANTIZED_METHODS)}"
                )
            raise ConfigError(
                f"quantized_method {qm!r} is unknown; choose one of {_choices(QUANTIZED_METHODS)} "
                f"(or group32, group64, ..., group256: SIZE a multiple of 32 in 32..256)"
            )
        put("quantized_method", _check_choice("quantized_method", qm, QUANTIZED_METHODS))

        qhl = self.quantized_hybrid_level
        if isinstance(qhl, bool) or not isinstance(qhl, (int, np.integer)) or not 0 <= qhl <= 3:
            raise ConfigError(f"quantized_hybrid_level must be an int in 0..3, got {qhl!r}")
        if qhl != 0:
            raise ConfigNotImplementedError(f"quantized_hybrid_level {int(qhl)} is {_NOT_IMPL}; implemented: 0")
        put("quantized_hybrid_level", 0)

        rgb = self.quant_img_RGB2BGR
        if isinstance(rgb, (list, tuple)):
            if len(rgb) == 0:
                raise ConfigError("quant_img_RGB2BGR must be True, False or a non-empty list of them (one per input)")
            put("quant_img_RGB2BGR", tuple(_check_bool(f"quant_img_RGB2BGR[{i}]", v) for i, v in enumerate(rgb)))
        else:
            if not isinstance(rgb, (bool, np.bool_)):
                raise ConfigError(
                    f"quant_img_RGB2BGR must be True or False (or a list of them, one per input), got {rgb!r}"
                )
            put("quant_img_RGB2BGR", bool(rgb))

        put(
            "float_dtype",
            _check_choice("float_dtype", self.float_dtype, FLOAT_DTYPES_IMPLEMENTED, FLOAT_DTYPES_PENDING),
        )

        ol = self.optimization_level
        if isinstance(ol, bool) or not isinstance(ol, (int, np.integer)) or not 0 <= ol <= 3:
            raise ConfigError(f"optimization_level must be an int in 0..3 (0, 1, 2, 3), got {ol!r}")
        put("optimization_level", int(ol))

        cs = self.custom_string
        if cs is not None:
            if not isinstance(cs, str):
                raise ConfigError(f"custom_string must be None or a str, got {cs!r}")
            n = len(cs.encode("utf-8"))
            if n > CUSTOM_STRING_MAX_BYTES or "\0" in cs:
                raise ConfigError(
                    f"custom_string must be at most {CUSTOM_STRING_MAX_BYTES} bytes of UTF-8 without NUL "
                    f"characters, got {n} bytes starting {cs[:40]!r}"
                )

        put("single_core_mode", _check_bool("single_core_mode", self.single_core_mode))

        for name in _PENDING_BOOL_OPTIONS:
            v = _check_bool(name, getattr(self, name))
            if v:
                raise ConfigNotImplementedError(f"{name}=True is {_NOT_IMPL}; only {name}=False is accepted")
            put(name, v)
        for name in _PENDING_NONE_OPTIONS:
            v = getattr(self, name)
            if v is not None:
                raise ConfigNotImplementedError(f"{name}={v!r} is {_NOT_IMPL}; only {name}=None is accepted")

        put("op_target", _check_op_target(self.op_target))

        cos = self.auto_hybrid_cos_thresh
        if not _is_number(cos) or not 0.0 < float(cos) <= 1.0:
            raise ConfigError(f"auto_hybrid_cos_thresh must be a number in (0, 1], got {cos!r}")
        put("auto_hybrid_cos_thresh", float(cos))
        euc = self.auto_hybrid_euc_thresh
        if euc is not None:
            if not _is_number(euc) or not math.isfinite(float(euc)) or float(euc) <= 0.0:
                raise ConfigError(f"auto_hybrid_euc_thresh must be None or a finite number > 0, got {euc!r}")
            put("auto_hybrid_euc_thresh", float(euc))

    # ---- derived values -------------------------------------------------------------------------------------

    @property
    def platform(self) -> Platform:
        """The target chip; target_platform=None means rk3588 (as the vendor toolkit's default)."""
        return get_platform(self.target_platform or DEFAULT_PLATFORM)

    @property
    def platform_is_default(self) -> bool:
        """True when target_platform was not given (the facade may note that rk3588 is assumed)."""
        return self.target_platform is None

    def _per_input(
        self, name: str, values: Values, default: float, input_index: int, channels: int, input_name: Optional[str]
    ) -> np.ndarray:
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ConfigError(f"channels must be a positive int, got {channels!r}")
        label = f"input {input_index}" + (f" ({input_name!r})" if input_name else "")
        if values is None:
            return np.full(channels, default, dtype=np.float32)
        if not 0 <= input_index < len(values):
            raise ConfigError(
                f"{name} has {len(values)} entr{'y' if len(values) == 1 else 'ies'} (one per model input) "
                f"but the model has {label}; give one list per input"
            )
        entry = values[input_index]
        if len(entry) == 1:
            return np.full(channels, entry[0], dtype=np.float32)
        if len(entry) != channels:
            raise ConfigError(
                f"{name}[{input_index}] has {len(entry)} values but {label} has {channels} channels; "
                f"give {channels} values or 1"
            )
        return np.asarray(entry, dtype=np.float32)

    def means_for(self, input_index: int, channels: int, input_name: Optional[str] = None) -> np.ndarray:
        """float32 means of one input, one per channel (zeros when mean_values is None)."""
        return self._per_input("mean_values", self.mean_values, 0.0, input_index, channels, input_name)

    def stds_for(self, input_index: int, channels: int, input_name: Optional[str] = None) -> np.ndarray:
        """float32 stds of one input, one per channel (ones when std_values is None)."""
        return self._per_input("std_values", self.std_values, 1.0, input_index, channels, input_name)

    def check_input_count(self, n_inputs: int) -> None:
        """mean_values, std_values and a per-input quant_img_RGB2BGR must have one entry per model input."""
        for name in ("mean_values", "std_values", "quant_img_RGB2BGR"):
            v = getattr(self, name)
            if isinstance(v, tuple) and len(v) != n_inputs:
                raise ConfigError(
                    f"{name} has {len(v)} entr{'y' if len(v) == 1 else 'ies'} but the model has {n_inputs} "
                    f"input{'s' if n_inputs != 1 else ''}; give one per input"
                )

    def rgb2bgr_for(self, input_index: int) -> bool:
        """Whether calibration images of this input get their channels swapped."""
        v = self.quant_img_RGB2BGR
        if isinstance(v, bool):
            return v
        if not 0 <= input_index < len(v):
            raise ConfigError(f"quant_img_RGB2BGR has {len(v)} entries but the model has input {input_index}")
        return v[input_index]

    def check_float_build(self) -> None:
        """Raises ConfigError when build(do_quantization=False) cannot run on the platform (float16 on a chip
        without float16 convolution, e.g. rv1106)."""
        plat = self.platform
        if self.float_dtype == "float16" and not plat.fp16:
            fp16_chips = [p for p in PLATFORM_NAMES if get_platform(p).fp16]
            raise ConfigError(
                f"float_dtype 'float16' is not supported on {plat.name} (its convolution is int8 only); build with "
                f"do_quantization=True, float_dtype='float32' (npuemu golden path), or a platform with float16: "
                f"{_choices(fp16_chips)}"
            )

    # ---- serialisation --------------------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serialisable dict of every field (keyword names); ``Config.from_dict(c.to_dict()) == c``."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("mean_values", "std_values") and v is not None:
                v = [list(row) for row in v]
            elif f.name == "quant_img_RGB2BGR" and isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict` (validates again; unknown keys raise ConfigError)."""
        if not isinstance(d, dict):
            raise ConfigError(f"Config.from_dict needs a dict, got {type(d).__name__}")
        return make_config(**d)


def make_config(**kwargs: Any) -> Config:
    """Validates ``RKNN.config(**kwargs)`` (rknn-toolkit2 2.5.0 keywords) into a :class:`Config`."""
    for key in kwargs:
        if key in _DEFAULTS:
            continue
        if key in _VENDOR_HIDDEN_KEYWORDS:
            raise ConfigNotImplementedError(
                f"config keyword {key!r} (an undocumented rknn-toolkit2 option) is {_NOT_IMPL}; "
                f"accepted keywords: {_choices(CONFIG_KEYWORDS)}"
            )
        close = difflib.get_close_matches(key, CONFIG_KEYWORDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown config keyword {key!r}{hint}; accepted keywords: {_choices(CONFIG_KEYWORDS)}")
    return Config(**kwargs)
