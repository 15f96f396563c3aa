"""Every registered convolution kernel against the reference kernel, bit for bit, over shapes with
the edge cases of the MAC array (channel counts off the 16-block, pads, strides, dilations, groups,
depthwise), dtype extremes and zero points at the ends of their ranges, and every core mask."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import available_kernels, call_or_skip
from conv_cases import SHAPES, conv_kwargs, int_data, fp16_data, shape_id, w_shape, x_shape
from npuemu import ops
from quant_oracles import mbqm, quantize_multiplier

REF = "conv2d_any_reference_scalar"


def same_bits(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def run_both(fn, kernel):
    try:
        got = fn(kernel)
    except ValueError as e:
        if "does not support" in str(e):
            pytest.skip(f"{kernel}: {e}")
        raise
    ref = fn(REF)
    assert same_bits(got, ref), f"{kernel}: {np.count_nonzero(got != ref)} of {got.size} elements differ"


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize(
    "xdt,wdt,x_zp",
    [("int8", "int8", -128), ("int8", "int8", 127), ("uint8", "int8", 0), ("uint8", "int8", 255),
     ("int8", "int4", 3), ("int4", "int4", -8), ("uint8", "uint8", 200)],
)
def test_int8_conv_integer_bit_exact(rng, s, kernel, xdt, wdt, x_zp):
    lim = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7)}
    x = int_data(rng, x_shape(s), *lim[xdt], np.uint8 if xdt == "uint8" else np.int8)
    w = int_data(rng, w_shape(s), *lim[wdt], np.uint8 if wdt == "uint8" else np.int8)
    w_zp = 0 if wdt != "uint8" else rng.integers(0, 256, w_shape(s)[0])
    kw = conv_kwargs(s)
    run_both(lambda k: ops.conv_integer(x, w, x_zp, w_zp, x_dtype=xdt if xdt == "int4" else None,
                                        w_dtype=wdt if wdt == "int4" else None, kernel=k, **kw), kernel)


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize("rounding", ["fixed_point", "float"])
@pytest.mark.parametrize(
    "activation,ydt", [(None, "int8"), ("relu", "uint8"), (("clip", -0.5, 3.0), "int8"), (("leaky_relu", 0.1), "int8"),
                       (None, "int4"), (None, "int16")]
)
def test_int8_qlinear_bit_exact(rng, s, kernel, rounding, activation, ydt):
    x = int_data(rng, x_shape(s), -128, 127, np.int8)
    w = int_data(rng, w_shape(s), -127, 127, np.int8)
    oc = w.shape[0]
    bias = rng.integers(-20000, 20000, oc).astype(np.int32)
    w_scale = rng.uniform(0.002, 0.02, oc).astype(np.float32)
    y_zp = {"int8": np.int8(-5), "uint8": np.uint8(7), "int4": np.int8(1), "int16": np.int16(-300)}[ydt]
    y_scale = {"int16": 0.002}.get(ydt, 0.35)
    kw = conv_kwargs(s)
    run_both(lambda k: ops.qlinear_conv(x, 0.04, 11, w, w_scale, 0, y_scale, y_zp, bias, activation=activation,
                                        rounding=rounding, y_dtype=ydt if ydt == "int4" else None, kernel=k, **kw),
             kernel)


@pytest.mark.parametrize("s", SHAPES[:6], ids=shape_id)
@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize("m", [3.0, 0.9999, 2.0**-12, 2.0**-33])
def test_int8_requant_multiplier_range(rng, s, kernel, m):
    """Multipliers >= 1 (left shifts), near 1, small, and below 2^-31 (everything rounds to zero)."""
    x = int_data(rng, x_shape(s), -128, 127, np.int8)
    w = int_data(rng, w_shape(s), -127, 127, np.int8)
    kw = conv_kwargs(s)
    run_both(lambda k: ops.qlinear_conv(x, 1.0, 0, w, m, 0, 1.0, np.int8(0), kernel=k, **kw), kernel)


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("kernel", available_kernels("int16"))
def test_int16_bit_exact(rng, s, kernel):
    x = int_data(rng, x_shape(s), -32768, 32767, np.int16)
    w = int_data(rng, w_shape(s), -32767, 32767, np.int16)
    kw = conv_kwargs(s)
    run_both(lambda k: ops.conv_integer(x, w, -32768, kernel=k, **kw), kernel)
    oc = w.shape[0]
    bias = rng.integers(-(2**40), 2**40, oc).astype(np.int64)
    w_scale = rng.uniform(1e-4, 1e-3, oc).astype(np.float32)
    run_both(lambda k: ops.qlinear_conv(x, 0.001, 17, w, w_scale, 0, 50.0,
                                        np.int16(3), bias, activation="relu", kernel=k, **kw), kernel)


@pytest.mark.parametrize("s", SHAPES, ids=shape_id)
@pytest.mark.parametrize("kernel", available_kernels("fp16", "direct") + available_kernels("fp16", "reference"))
@pytest.mark.parametrize("activation", [None, "relu", ("clip", -1.0, 2.5), ("leaky_relu", 0.2), "hard_swish"])
def test_fp16_direct_bit_exact(rng, s, kernel, activation):
    x = fp16_data(rng, x_shape(s))
    w = fp16_data(rng, w_shape(s))
    b = fp16_data(rng, (w.shape[0],))
    run_both(lambda k: ops.conv(x, w, b, activation=activation, kernel=k, **conv_kwargs(s)), kernel)


@pytest.mark.parametrize("kernel", available_kernels("fp16", "direct"))
def test_fp16_special_values_bit_exact(rng, kernel):
    """inf, nan, -0.0, subnormals and overflow to inf take the same path through every kernel."""
    s = SHAPES[3]
    x = fp16_data(rng, x_shape(s))
    w = fp16_data(rng, w_shape(s))
    flat = x.reshape(-1)
    flat[::7] = np.float16(0.0)
    flat[1::11] = np.float16(-0.0)
    flat[2::13] = np.float16(6e-8)
    flat[3::97] = np.float16(np.inf)
    flat[5::101] = np.float16(np.nan)
    w.reshape(-1)[::5] = np.float16(60000.0)
    b = np.full(w.shape[0], -0.0, np.float16)
    run_both(lambda k: ops.conv(x, w, b, kernel=k, **conv_kwargs(s)), kernel)


DW_EDGE_SHAPES = [  # output rows whose windows have whole kernel rows (or all of them) in the padding
    (1, 40, 2, 9, 40, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 40),  # 2 rows, 5x5: 3 of 5 kernel rows padded
    (1, 20, 3, 7, 20, (5, 5), (2, 1), (2, 1, 0, 2), (1, 1), 20),  # stride 2, asymmetric pads
    (1, 17, 5, 6, 17, (3, 3), (1, 1), (2, 0, 3, 1), (2, 2), 17),  # dilation 2, bottom pad wider
    (1, 16, 1, 4, 16, (3, 3), (1, 1), (4, 1, 4, 1), (1, 1), 16),  # windows wholly in the padding
]


@pytest.mark.parametrize("s", DW_EDGE_SHAPES, ids=shape_id)
@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize("x_zp", [-128, 0, 127])
def test_int8_depthwise_edge_rows_bit_exact(rng, s, kernel, x_zp):
    """The depthwise kernels skip kernel rows that lie in the padding and start from their contribution
    (x_zp * w); raw accumulators and requantized outputs equal the reference's."""
    x = int_data(rng, x_shape(s), -128, 127, np.int8)
    w = int_data(rng, w_shape(s), -128, 127, np.int8)
    kw = conv_kwargs(s)
    run_both(lambda k: ops.conv_integer(x, w, x_zp, 0, kernel=k, **kw), kernel)
    run_both(lambda k: ops.qlinear_conv(x, 0.02, x_zp, w, 0.01, 0, 0.5, np.int8(-3), activation="relu", kernel=k,
                                        **kw), kernel)


@pytest.mark.parametrize("kernel", available_kernels("fp16"))
def test_fp16_hard_swish_on_every_float16_value(kernel):
    """The fused HardSwish on all 65,536 float16 values (a 1x1 convolution with weight 1: the accumulator is
    the input) against ONNX's HardSwish evaluated by onnx.reference in float32, rounded once to float16."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    x = np.arange(65536, dtype=np.uint16).view(np.float16).reshape(1, 1, 256, 256)
    w = np.ones((1, 1, 1, 1), np.float16)
    b = np.array([-0.0], np.float16)  # -0 + x is x, signed zeros included
    got = call_or_skip(lambda k: ops.conv(x, w, b, activation="hard_swish", kernel=k), kernel)
    node = helper.make_node("HardSwish", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))
    with np.errstate(over="ignore", invalid="ignore"):
        want = ref.run(None, {"x": x.astype(np.float32)})[0].astype(np.float16)
    np.testing.assert_array_equal(got, want)  # NaN where ONNX gives NaN (x NaN or -inf)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_hard_swish_is_refused_by_integer_paths():
    x = np.zeros((1, 2, 3, 3), np.int8)
    w = np.ones((2, 2, 1, 1), np.int8)
    with pytest.raises(ValueError, match="hard_swish.*float16"):
        ops.qlinear_conv(x, 0.1, 0, w, 0.1, 0, 0.1, np.int8(0), activation="hard_swish")


@pytest.mark.parametrize("mask", [0, 1, 2, 4, 3, 5, 6, 7, 0xFFFF])
@pytest.mark.parametrize("kernel", available_kernels("int8") + available_kernels("fp16"))
@pytest.mark.parametrize("s", [SHAPES[9], SHAPES[7], SHAPES[14]], ids=shape_id)
def test_every_core_mask_is_bit_identical(rng, mask, kernel, s):
    """Every kernel splits its work over the selected emulated cores deterministically: each mask gives
    the single-core result, bit for bit, and repeated runs are identical."""
    kw = conv_kwargs(s)
    if kernel in available_kernels("int8"):
        x = int_data(rng, x_shape(s), -128, 127, np.int8)
        w = int_data(rng, w_shape(s), -127, 127, np.int8)
        f = lambda m: ops.qlinear_conv(x, 0.05, 1, w, 0.01, 0, 0.3, np.int8(2), core_mask=m, kernel=kernel,  # noqa: E731
                                       **kw)
    else:
        x = fp16_data(rng, x_shape(s))
        w = fp16_data(rng, w_shape(s))
        f = lambda m: ops.conv(x, w, core_mask=m, kernel=kernel, **kw)  # noqa: E731
    one = call_or_skip(lambda _: f(1), kernel)
    assert same_bits(f(mask), one)
    assert same_bits(f(mask), f(mask))


def test_int4_weights_are_stored_two_per_byte(rng):
    w = rng.integers(-8, 8, (6, 5, 3, 3)).astype(np.int8)  # 270 values
    op = ops.ConvInteger((1, 5, 7, 7), "int8", w, w_dtype="int4", pads=1)
    packed = np.frombuffer(op.int4_weights, np.uint8)
    assert packed.size == 135
    flat = w.reshape(-1)
    assert np.array_equal(packed & 0xF, flat[0::2].view(np.uint8) & 0xF)  # element 2i: low nibble
    assert np.array_equal(packed >> 4, flat[1::2].view(np.uint8) & 0xF)
    x = rng.integers(-128, 128, (1, 5, 7, 7)).astype(np.int8)
    np.testing.assert_array_equal(op(x), ops.conv_integer(x, w, pads=1, kernel=REF))


@pytest.mark.parametrize("kernel", available_kernels("int8"))
@pytest.mark.parametrize("rounding", ["fixed_point", "float"])
@pytest.mark.parametrize("shift", [1, 3, 7])
@pytest.mark.parametrize("depthwise", [False, True])
def test_requant_rounding_ties(kernel, rounding, shift, depthwise):
    """Every accumulator in [-2048, 2047] through a power-of-two multiplier: each rounding stage sees
    exact .5 ties, positive and negative. Checked against the reference and the written-out rule."""
    acc = np.arange(-2048, 2048)
    x = (acc.reshape(1, 1, 64, 64) // 16).astype(np.int8)  # x in [-128, 127]
    rem = (acc.reshape(1, 1, 64, 64) % 16).astype(np.int8)
    if depthwise:  # one channel, a 1x2 kernel over [x, rem] side by side: acc = 16 * x + rem
        xs = np.stack([x[0, 0], rem[0, 0]], axis=-1).reshape(1, 1, 64, 128)
        w = np.array([16, 1], np.int8).reshape(1, 1, 1, 2)
        kw = dict(strides=(1, 2))
    else:  # two input channels: acc = 16 * x + rem
        xs = np.concatenate([x, rem], axis=1)
        w = np.array([16, 1], np.int8).reshape(1, 2, 1, 1)
        kw = {}
    m = 2.0**-shift
    try:
        y = ops.qlinear_conv(xs, 1.0, 0, w, m, 0, 1.0, np.int16(0), y_dtype="int16", rounding=rounding, kernel=kernel,
                             **kw)
    except ValueError as e:
        if "does not support" in str(e):
            pytest.skip(f"{kernel}: {e}")
        raise
    ref = ops.qlinear_conv(xs, 1.0, 0, w, m, 0, 1.0, np.int16(0), y_dtype="int16", rounding=rounding, kernel=REF,
                           **kw)
    assert np.array_equal(y, ref)
    if rounding == "fixed_point":
        # gemmlowp's two roundings: SRDHM (half up) then RoundingDivideByPOT (half away from zero).
        # With m0 = 2^30 the first already rounds acc / 2, so e.g. acc = 3, m = 1/8 gives 1 (not 0).
        m0, sh = quantize_multiplier(m)
        expect = np.array([mbqm(int(a), m0, sh) for a in acc])
    else:  # float: round half to even
        expect = np.round(acc * m)
    assert np.array_equal(y.reshape(-1), expect.astype(np.int16))
