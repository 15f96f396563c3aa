"""config(...) validation (npuemu.config) and the platform table (npuemu.platforms).

Expected values are transcribed from npu-facts sections 1-3 and rknn-toolkit2 2.5.0's RKNN.config signature,
not read back from the modules under test.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from npuemu.config import CONFIG_KEYWORDS, Config, ConfigError, ConfigNotImplementedError, make_config
from npuemu.errors import NpuError
from npuemu.platforms import (
    CORE_MASK_NAMES,
    DEFAULT_PLATFORM,
    PLATFORM_NAMES,
    PLATFORMS,
    Limits,
    Platform,
    PlatformError,
    get_platform,
)

# rknn-toolkit2 2.5.0 RKNN.config keywords and defaults (vendor signature).
VENDOR_DEFAULTS = {
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

# npu-facts section 1: platform -> (cores, int8 MAC/cycle/core, clock Hz, C2 int8/fp16/int16)
FACTS_PLATFORMS = {
    "rk3588": (3, 1024, 1.0e9, (16, 8, 8)),
    "rk3576": (2, 1024, 1.0e9, None),
    "rk3566": (1, 512, 1.0e9, (8, 4, 4)),
    "rk3568": (1, 512, 1.0e9, (8, 4, 4)),
    "rk3562": (1, 512, 1.0e9, (16, 8, 8)),
    "rv1103": (1, 256, 0.5e9, None),
    "rv1106": (1, 256, 0.5e9, (16, 8, 8)),
}


def raises(cls, *fragments, **kwargs):
    """make_config(**kwargs) raises exactly cls (not a subclass standing in for it) with every fragment in
    its message; returns the message."""
    with pytest.raises(cls) as ei:
        make_config(**kwargs)
    assert type(ei.value) is cls, f"{type(ei.value).__name__}: {ei.value}"
    msg = str(ei.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


# ---- platforms -------------------------------------------------------------------------------------------------


def test_platform_names_are_the_facts_list():
    assert PLATFORM_NAMES == tuple(sorted(FACTS_PLATFORMS))
    assert set(PLATFORMS) == set(FACTS_PLATFORMS)
    assert DEFAULT_PLATFORM == "rk3588"


@pytest.mark.parametrize("name", sorted(FACTS_PLATFORMS))
def test_platform_figures_match_facts(name):
    cores, macs, clock, c2 = FACTS_PLATFORMS[name]
    p = get_platform(name)
    assert isinstance(p, Platform) and p.name == name
    assert (p.npu_cores, p.int8_macs_per_cycle, p.clock_hz) == (cores, macs, clock)
    if c2 is not None:
        assert (p.c2["int8"], p.c2["fp16"], p.c2["int16"]) == c2
    assert set(p.c2) == {"int8", "fp16", "int16"}
    assert "w8a8" in p.dtypes  # w8a8 everywhere
    assert p.peak_int8_ops == cores * macs * 2 * clock
    # single-core chips: AUTO, CORE_0, ALL
    if cores == 1:
        assert p.core_masks == (0, 1, 0xFFFF)
    assert p.sram_kb > 0
    assert isinstance(p.limits, Limits)


def test_rk3588_profile():
    p = get_platform("rk3588")
    assert p.npu_cores == 3 and p.int8_macs_per_cycle == 1024 and p.clock_hz == 1e9
    assert p.peak_int8_ops == 6.144e12 and round(p.peak_int8_ops / 1e12) == 6  # "6 TOPS"
    assert p.sram_kb == 384
    assert sorted(p.core_masks) == [0, 1, 2, 3, 4, 7, 0xFFFF]
    assert p.fp16
    assert p.dtypes == ("w8a8",)


def test_platform_dtypes_and_fp16():
    assert set(get_platform("rk3576").dtypes) == {"w8a8", "w4a16"}
    assert set(get_platform("rk3562").dtypes) == {"w8a8", "w8a16"}
    for n in ("rv1103", "rv1106"):
        p = get_platform(n)
        assert set(p.dtypes) == {"w8a8", "w16a16i", "w16a16i_dfp"}
        assert not p.fp16 and p.fp16_macs_per_cycle == 0  # conv is int8 only
    for n in ("rk3588", "rk3576", "rk3566", "rk3568", "rk3562"):
        assert get_platform(n).fp16
    # rk3566/68: FP16 at 1/4 of INT8, elsewhere 1/2
    assert get_platform("rk3566").fp16_macs_per_cycle * 4 == get_platform("rk3566").int8_macs_per_cycle
    assert get_platform("rk3588").fp16_macs_per_cycle * 2 == get_platform("rk3588").int8_macs_per_cycle


def test_core_masks():
    assert sorted(get_platform("rk3576").core_masks) == [0, 1, 2, 3, 0xFFFF]
    assert dict(CORE_MASK_NAMES) == {
        0: "NPU_CORE_AUTO",
        1: "NPU_CORE_0",
        2: "NPU_CORE_1",
        4: "NPU_CORE_2",
        3: "NPU_CORE_0_1",
        7: "NPU_CORE_0_1_2",
        0xFFFF: "NPU_CORE_ALL",
    }
    assert get_platform("rk3588").check_core_mask(7) == 7
    assert get_platform("rk3566").check_core_mask(0xFFFF) == 0xFFFF
    with pytest.raises(PlatformError, match=r"core_mask 4 is not valid on rk3576.*NPU_CORE_0_1=3"):
        get_platform("rk3576").check_core_mask(4)
    with pytest.raises(PlatformError, match=r"core_mask 2 .* rk3566.*NPU_CORE_0=1"):
        get_platform("rk3566").check_core_mask(2)
    with pytest.raises(PlatformError, match="must be an int"):
        get_platform("rk3588").check_core_mask("1")
    with pytest.raises(PlatformError, match="must be an int"):
        get_platform("rk3588").check_core_mask(True)


def test_limits_are_facts_section5():
    lim = get_platform("rk3588").limits
    assert lim.conv_kernel == (1, 31) and lim.conv_stride == (1, 7) and lim.conv_pad == (0, 15)
    assert lim.conv_dilation == (1, 31) and lim.depthwise_kernel == (1, 8)
    assert lim.pool_kernel[1] == 7 and lim.pool_stride[1] == 8 and lim.pool_ceil_mode is False
    for name in PLATFORM_NAMES:
        assert get_platform(name).limits == lim


def test_get_platform_case_and_errors():
    assert get_platform("RK3588") is get_platform("rk3588")
    assert get_platform(" Rv1106 ").name == "rv1106"
    with pytest.raises(PlatformError) as ei:
        get_platform("rk9999")
    assert "'rk9999'" in str(ei.value) and "rk3562, rk3566" in str(ei.value)
    assert isinstance(ei.value, NpuError) and isinstance(ei.value, ValueError)
    with pytest.raises(PlatformError, match="not emulated"):
        get_platform("rv1126b")
    with pytest.raises(PlatformError, match="must be a str.*rk3588"):
        get_platform(None)


def test_platform_is_frozen():
    p = get_platform("rk3588")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.npu_cores = 4
    with pytest.raises(TypeError):
        p.c2["int8"] = 32
    hash(p)


# ---- config: defaults, keywords, serialisation ----------------------------------------------------------------


def test_defaults_are_vendor_defaults():
    c = make_config()
    assert set(CONFIG_KEYWORDS) == set(VENDOR_DEFAULTS)
    for k, v in VENDOR_DEFAULTS.items():
        assert getattr(c, k) == v, k
    assert c == Config()
    assert c.platform.name == "rk3588" and c.platform_is_default


def test_all_vendor_keywords_accepted_at_default():
    c = make_config(**VENDOR_DEFAULTS)
    assert c == make_config()


def test_unknown_keyword_suggests_closest():
    msg = raises(ConfigError, "'quantized_dypte'", "'quantized_dtype'", "target_platform", quantized_dypte="w8a8")
    assert "did you mean" in msg
    msg = raises(ConfigError, "'zzz'", "mean_values", zzz=1)
    assert "did you mean" not in msg


def test_hidden_vendor_keyword_is_not_implemented():
    raises(ConfigNotImplementedError, "'sram_prefer'", "not implemented yet", sram_prefer=True)


def test_to_dict_from_dict_round_trip():
    c = make_config(
        mean_values=[[0, 1, 2], [3]],
        std_values=[[255, 255, 255], [1.5]],
        target_platform="RK3576",
        quant_img_RGB2BGR=[True, False],
        optimization_level=2,
        custom_string="model=a;v=1",
        auto_hybrid_euc_thresh=0.5,
        float_dtype="float32",
        quantized_method="layer",
    )
    d = c.to_dict()
    text = json.dumps(d)
    c2 = Config.from_dict(json.loads(text))
    assert c2 == c
    assert d["mean_values"] == [[0.0, 1.0, 2.0], [3.0]] and d["target_platform"] == "rk3576"
    assert d["quant_img_RGB2BGR"] == [True, False]
    with pytest.raises(ConfigError, match="'bogus'"):
        Config.from_dict({**d, "bogus": 1})


def test_config_is_frozen_and_validates_direct_construction():
    c = make_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.quantized_dtype = "w4a16"
    hash(make_config(mean_values=[[1, 2, 3]]))
    with pytest.raises(ConfigError, match="'bogus'"):
        Config(quantized_algorithm="bogus")


# ---- mean / std ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ([[0, 0, 0]], ((0.0, 0.0, 0.0),)),
        ([0, 0, 0], ((0.0, 0.0, 0.0),)),  # flat = single input
        ((127.5, 127.5, 127.5), ((127.5, 127.5, 127.5),)),
        ([[1, 2, 3], [4]], ((1.0, 2.0, 3.0), (4.0,))),
        (np.array([[1, 2, 3]], dtype=np.float32), ((1.0, 2.0, 3.0),)),
        ([np.float64(1.5), np.int64(2)], ((1.5, 2.0),)),
        ([-5], ((-5.0,),)),
    ],
)
def test_mean_values_normalised(given, expected):
    c = make_config(mean_values=given)
    assert c.mean_values == expected
    assert all(type(v) is float for row in c.mean_values for v in row)


@pytest.mark.parametrize(
    "given, frag",
    [
        ("0,0,0", "'0,0,0'"),
        (5, "5"),
        ([], "must not be empty"),
        ([[]], "mean_values[0] is empty"),
        ([[0, "a", 0]], "'a'"),
        ([[0, None]], "None"),
        ([0, [1, 2]], "not a mix"),
        ([[0, float("nan")]], "nan"),
        ([[0, float("inf")]], "inf"),
        ([[True, 0, 0]], "True"),
    ],
)
def test_mean_values_invalid(given, frag):
    raises(ConfigError, "mean_values", frag, mean_values=given)


@pytest.mark.parametrize("bad", [[[0]], [[1, -1, 1]], [[float("inf")]], [[float("nan")]], [[1e-3, 0.0]]])
def test_std_values_must_be_positive_finite(bad):
    raises(ConfigError, "std_values", "> 0" if all(math.isfinite(v) for v in bad[0]) else "finite", std_values=bad)


def test_means_stds_for():
    c = make_config(mean_values=[[1, 2, 3], [7]], std_values=[[255]])
    m0 = c.means_for(0, 3)
    assert m0.dtype == np.float32 and m0.tolist() == [1.0, 2.0, 3.0]
    assert c.means_for(1, 4).tolist() == [7.0] * 4  # single value broadcast
    assert c.stds_for(0, 3).tolist() == [255.0] * 3
    d = make_config()
    assert d.means_for(0, 2).tolist() == [0.0, 0.0] and d.stds_for(5, 3).tolist() == [1.0, 1.0, 1.0]
    assert d.means_for(0, 2).dtype == np.float32
    with pytest.raises(ConfigError) as ei:
        c.means_for(0, 4, "images")
    assert (
        "mean_values[0] has 3 values" in str(ei.value) and "'images'" in str(ei.value) and "4 channels" in str(ei.value)
    )
    with pytest.raises(ConfigError, match=r"std_values has 1 entry .* input 1 \('b'\)"):
        c.stds_for(1, 3, "b")
    with pytest.raises(ConfigError, match="channels"):
        c.means_for(0, 0)


def test_check_input_count():
    c = make_config(mean_values=[[0, 0, 0]], quant_img_RGB2BGR=[True, False])
    with pytest.raises(ConfigError, match="mean_values has 1 entry but the model has 2 inputs"):
        c.check_input_count(2)
    with pytest.raises(ConfigError, match="quant_img_RGB2BGR has 2 entries but the model has 1 input"):
        c.check_input_count(1)
    make_config(mean_values=[[0], [1]], quant_img_RGB2BGR=True).check_input_count(2)


# ---- enumerated options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["w8a8", "asymmetric_quantized-8"])
def test_quantized_dtype_w8a8(given):
    assert make_config(quantized_dtype=given).quantized_dtype == "w8a8"


@pytest.mark.parametrize(
    "dtype",
    [
        "w4a16",
        "w8a16",
        "w16a16i",
        "w16a16i_dfp",
        "w4a8",
        "asymmetric_quantized-16",
        "dynamic_fixed_point-i8",
        "dynamic_fixed_point-i16",
    ],
)
def test_quantized_dtype_vendor_not_implemented(dtype):
    raises(ConfigNotImplementedError, f"'{dtype}'", "not implemented yet in npuemu", "w8a8", quantized_dtype=dtype)


@pytest.mark.parametrize("dtype", ["int8", "W8A8", "w8a4", ""])
def test_quantized_dtype_unknown(dtype):
    msg = raises(ConfigError, f"{dtype!r}", "w8a8", quantized_dtype=dtype)
    assert "not implemented" not in msg


def test_quantized_dtype_type():
    raises(ConfigError, "8", "w8a8", quantized_dtype=8)


def test_quantized_dtype_checked_against_platform():
    msg = raises(ConfigError, "'w4a16'", "rk3588", "w8a8", "rk3576", quantized_dtype="w4a16", target_platform="rk3588")
    assert "not implemented" not in msg
    raises(ConfigError, "'w8a16'", "rv1106", quantized_dtype="w8a16", target_platform="rv1106")
    # supported on the chip but not emulated yet
    raises(
        ConfigNotImplementedError, "'w4a16'", "not implemented yet", quantized_dtype="w4a16", target_platform="rk3576"
    )
    raises(ConfigNotImplementedError, "'w16a16i_dfp'", quantized_dtype="w16a16i_dfp", target_platform="rv1103")
    assert make_config(quantized_dtype="w8a8", target_platform="rv1103").quantized_dtype == "w8a8"


def test_quantized_algorithm():
    assert make_config(quantized_algorithm="normal").quantized_algorithm == "normal"
    assert make_config(quantized_algorithm="mmse").quantized_algorithm == "mmse"
    assert make_config(quantized_algorithm="kl_divergence").quantized_algorithm == "kl_divergence"
    for alg in ("gdq",):
        raises(ConfigNotImplementedError, f"'{alg}'", "not implemented yet", "normal", quantized_algorithm=alg)
    msg = raises(ConfigError, "'minmax'", "normal", "kl_divergence", quantized_algorithm="minmax")
    assert "not implemented" not in msg


def test_quantized_method():
    assert make_config(quantized_method="layer").quantized_method == "layer"
    assert make_config(quantized_method="channel").quantized_method == "channel"
    raises(ConfigNotImplementedError, "'group32'", "not implemented yet", "channel", quantized_method="group32")
    raises(ConfigNotImplementedError, "'group256'", quantized_method="group256")
    for bad in ("group48", "group512", "groupX", "tensor", "Channel"):
        msg = raises(ConfigError, f"'{bad}'", "channel, layer", quantized_method=bad)
        assert "not implemented" not in msg


def test_quantized_hybrid_level():
    assert make_config(quantized_hybrid_level=0).quantized_hybrid_level == 0
    raises(ConfigNotImplementedError, "quantized_hybrid_level 2", "not implemented yet", quantized_hybrid_level=2)
    raises(ConfigError, "0..3", "4", quantized_hybrid_level=4)
    raises(ConfigError, "0..3", quantized_hybrid_level="0")


def test_float_dtype():
    assert make_config(float_dtype="float16").float_dtype == "float16"
    assert make_config(float_dtype="float32").float_dtype == "float32"
    raises(ConfigNotImplementedError, "'bfloat16'", "not implemented yet", "float16", float_dtype="bfloat16")
    msg = raises(ConfigError, "'fp16'", "float16", "float32", float_dtype="fp16")
    assert "not implemented" not in msg


def test_float_build_check():
    make_config(target_platform="rk3588").check_float_build()
    make_config(target_platform="rv1106", float_dtype="float32").check_float_build()
    with pytest.raises(ConfigError, match=r"'float16' is not supported on rv1106.*rk3588"):
        make_config(target_platform="rv1106").check_float_build()


@pytest.mark.parametrize(
    "given, expected",
    [(None, None), ("rk3588", "rk3588"), ("RK3566", "rk3566"), ("Rv1103", "rv1103"), ("rk3562", "rk3562")],
)
def test_target_platform(given, expected):
    c = make_config(target_platform=given)
    assert c.target_platform == expected
    assert c.platform.name == (expected or "rk3588")


def test_target_platform_invalid():
    msg = raises(ConfigError, "'rk9999'", "rk3562", "rv1106", target_platform="rk9999")
    assert "not implemented" not in msg
    raises(ConfigError, "3588", "rk3588", target_platform=3588)
    raises(ConfigNotImplementedError, "'rv1106b'", "not implemented yet", "rk3588", target_platform="rv1106b")


@pytest.mark.parametrize("level", [0, 1, 2, 3, np.int64(2)])
def test_optimization_level_valid(level):
    c = make_config(optimization_level=level)
    assert c.optimization_level == int(level) and type(c.optimization_level) is int


@pytest.mark.parametrize("level", [-1, 4, 2.0, "3", True, None])
def test_optimization_level_invalid(level):
    raises(ConfigError, "optimization_level", repr(level), "0..3", optimization_level=level)


@pytest.mark.parametrize("v", [True, False, np.bool_(True)])
def test_single_core_mode_bool(v):
    assert make_config(single_core_mode=v).single_core_mode is bool(v)


@pytest.mark.parametrize("v", ["yes", 1, 0, None, "True"])
def test_single_core_mode_must_be_bool(v):
    raises(ConfigError, f"single_core_mode must be True or False, got {v!r}", single_core_mode=v)


def test_quant_img_rgb2bgr():
    assert make_config(quant_img_RGB2BGR=True).quant_img_RGB2BGR is True
    c = make_config(quant_img_RGB2BGR=[True, False])
    assert c.quant_img_RGB2BGR == (True, False)
    assert c.rgb2bgr_for(0) is True and c.rgb2bgr_for(1) is False
    assert make_config(quant_img_RGB2BGR=True).rgb2bgr_for(3) is True
    with pytest.raises(ConfigError, match="has 2 entries"):
        c.rgb2bgr_for(2)
    raises(ConfigError, "quant_img_RGB2BGR", "'yes'", quant_img_RGB2BGR="yes")
    raises(ConfigError, "quant_img_RGB2BGR[1] must be True or False, got 1", quant_img_RGB2BGR=[True, 1])
    raises(ConfigError, "non-empty", quant_img_RGB2BGR=[])


def test_custom_string():
    assert make_config(custom_string="a=1;b=2").custom_string == "a=1;b=2"
    assert make_config(custom_string="x" * 1023).custom_string == "x" * 1023
    raises(ConfigError, "1023 bytes", "1024 bytes", custom_string="x" * 1024)
    raises(ConfigError, "1023 bytes", custom_string="\u00e9" * 512)  # 1024 bytes of UTF-8
    raises(ConfigError, "custom_string", "42", custom_string=42)


@pytest.mark.parametrize(
    "name",
    [
        "remove_weight",
        "compress_weight",
        "model_pruning",
        "quantize_weight",
        "remove_reshape",
        "sparse_infer",
        "enable_flash_attention",
    ],
)
def test_pending_bool_options(name):
    assert getattr(make_config(**{name: False}), name) is False
    raises(ConfigNotImplementedError, f"{name}=True", "not implemented yet", f"{name}=False", **{name: True})
    raises(ConfigError, f"{name} must be True or False, got 'no'", **{name: "no"})


@pytest.mark.parametrize(
    "name, value",
    [
        ("inputs_yuv_fmt", ["nv12"]),
        ("dynamic_input", [[[1, 3, 224, 224]], [[1, 3, 160, 160]]]),
    ],
)
def test_pending_none_options(name, value):
    assert getattr(make_config(**{name: None}), name) is None
    raises(ConfigNotImplementedError, name, "not implemented yet", f"{name}=None", **{name: value})


def test_op_target_values():
    assert make_config(op_target=None).op_target is None
    assert make_config(op_target={}).op_target == {}
    cfg = make_config(op_target={"p2o.Add.235_shape4": "cpu", "conv1": " NPU "})
    assert cfg.op_target == {"p2o.Add.235_shape4": "cpu", "conv1": "npu"}
    assert Config.from_dict(cfg.to_dict()) == cfg
    raises(ConfigError, "op_target must be None or a dict", "'cpu'", op_target="cpu")
    raises(ConfigError, "op_target must be None or a dict", op_target=[("conv1", "cpu")])
    for key in ("", 3, None):
        raises(ConfigError, "op_target keys must be layer names", repr(key), op_target={key: "cpu"})
    for bad in ("gpu", "dsp", 1, None):
        raises(ConfigError, "op_target['conv1']", repr(bad), "cpu, npu", op_target={"conv1": bad})


def test_auto_hybrid_thresholds():
    assert make_config(auto_hybrid_cos_thresh=1).auto_hybrid_cos_thresh == 1.0
    assert make_config(auto_hybrid_cos_thresh=0.5).auto_hybrid_cos_thresh == 0.5
    for bad in (0, 0.0, -0.1, 1.01, float("nan"), "0.9", None, True):
        raises(ConfigError, "auto_hybrid_cos_thresh", "(0, 1]", repr(bad), auto_hybrid_cos_thresh=bad)
    assert make_config(auto_hybrid_euc_thresh=2).auto_hybrid_euc_thresh == 2.0
    for bad in (0, -1.0, float("inf"), "1"):
        raises(ConfigError, "auto_hybrid_euc_thresh", repr(bad), auto_hybrid_euc_thresh=bad)


def test_errors_are_npu_errors():
    assert issubclass(ConfigError, NpuError) and issubclass(ConfigError, ValueError)
    assert issubclass(ConfigNotImplementedError, ConfigError)
