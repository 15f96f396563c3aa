"""The arithmetic primitives against independent definitions: gemmlowp's fixed-point functions written
literally with Python integers, the real-valued multiplier, and numpy's float16 conversion."""

from __future__ import annotations


import numpy as np
import pytest

from npuemu import _core

from quant_oracles import INT32_MAX, INT32_MIN, mbqm, quantize_multiplier, rdbpot_gemmlowp, srdhm_gemmlowp


def test_srdhm_and_rdbpot_match_gemmlowp(rng):
    vals = [INT32_MIN, INT32_MIN + 1, -(2**30), -3, -2, -1, 0, 1, 2, 3, 2**30, INT32_MAX - 1, INT32_MAX]
    vals += [int(v) for v in rng.integers(INT32_MIN, INT32_MAX, 200, dtype=np.int64)]
    for a in vals:
        for b in vals[::7]:
            assert _core.srdhm(a, b) == srdhm_gemmlowp(a, b), (a, b)
    for x in vals:
        for e in range(0, 32):
            assert _core.rounding_divide_by_pot(x, e) == rdbpot_gemmlowp(x, e), (x, e)


@pytest.mark.parametrize("e", [1, 2, 5, 13])
def test_rdbpot_ties_round_away_from_zero(e):
    half = 1 << (e - 1)
    for k in range(-4, 5):
        x = k * (1 << e) + half  # exactly k + 0.5
        expect = k + 1 if x > 0 else k  # away from zero
        assert _core.rounding_divide_by_pot(x, e) == expect
        assert _core.rounding_divide_by_pot(-x, e) == -expect


def test_srdhm_rounds_half_up():
    # a * b / 2^31 exactly x.5: SRDHM (VQRDMULH) rounds toward +infinity
    assert _core.srdhm(1 << 15, 1 << 15) == 1  # 2^30 / 2^31 = 0.5 -> 1
    assert _core.srdhm(-(1 << 15), 1 << 15) == 0  # -0.5 -> 0
    assert _core.srdhm(-3 * (1 << 15), 1 << 15) == -1  # -1.5 -> -1


@pytest.mark.parametrize(
    "m", [1e-12, 2.0**-40, 3.1e-5, 0.000123, 0.25, 0.5, 0.75, 0.999999999, 1.0, 1.5, 7.3, 12345.678, 2.0**29]
)
def test_quantize_multiplier(m):
    m0, shift = _core.quantize_multiplier(m)
    if m < 2.0**-62:
        assert (m0, shift) == (0, 0)
        return
    assert 2**30 <= m0 < 2**31
    assert abs(m0 * 2.0 ** (shift - 31) - m) <= m * 2.0**-31
    assert (m0, shift) == quantize_multiplier(m)


def test_quantize_multiplier_rejects_huge_and_nonfinite():
    with pytest.raises(ValueError, match="too large"):
        _core.quantize_multiplier(2.0**31)
    with pytest.raises(ValueError, match="finite"):
        _core.quantize_multiplier(float("nan"))


@pytest.mark.parametrize("m", [0.0037, 0.5, 0.99, 3.5, 2.0**-20, 2.0**-33, -0.012])
def test_requantize_formula_matches_gemmlowp_and_real_value(rng, m):
    m0, shift = _core.quantize_multiplier(m)
    accs = [0, 1, -1, INT32_MIN, INT32_MAX, 2**30, -(2**30)]
    accs += [int(v) for v in rng.integers(INT32_MIN, INT32_MAX, 3000, dtype=np.int64)]
    accs += [int(v) for v in rng.integers(-5000, 5000, 3000)]
    # accumulators whose exact product lands on a rounding tie at either stage
    if shift <= 0 and m0:
        accs += [k * (1 << 20) for k in range(-40, 40)]
    got = _core.multiply_by_quantized_multiplier(np.array(accs, np.int64), m0, shift)
    for acc, g in zip(accs, got.tolist()):
        assert g == mbqm(acc, m0, shift), (acc, m0, shift)
        assert abs(g - acc * m) <= 1.0 + abs(acc) * abs(m) * 2.0**-30, (acc, m)


def test_int64_accumulators_requantize_exactly(rng):
    # the int16 family requantizes int64 accumulators; compare with exact Python integers
    m0, shift = _core.quantize_multiplier(3.7e-7)
    accs = [int(v) for v in rng.integers(-(2**50), 2**50, 2000, dtype=np.int64)]
    got = _core.multiply_by_quantized_multiplier(np.array(accs, np.int64), m0, shift)
    for acc, g in zip(accs, got.tolist()):
        assert g == mbqm(acc, m0, shift)


def test_fp16_roundtrip_all_values():
    bits = np.arange(65536, dtype=np.uint16)
    f32 = _core.fp16_bits_to_fp32(bits)
    ref = bits.view(np.float16).astype(np.float32)
    finite = np.isfinite(ref)
    assert np.array_equal(f32[finite].view(np.uint32), ref[finite].view(np.uint32))
    assert np.all(np.isnan(f32[np.isnan(ref)]))
    back = _core.fp32_to_fp16_bits(f32)
    assert np.array_equal(back[finite], bits[finite])


def test_fp32_to_fp16_matches_numpy_rne(rng):
    # random values over the whole fp16 range, subnormals, overflow, and exact ties between fp16 values
    vals = [rng.standard_normal(100000).astype(np.float32) * np.float32(2.0) ** rng.integers(-30, 18, 100000)]
    h = np.arange(0, 0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)
    mids = ((h[:-1] + h[1:]) / 2).astype(np.float32)  # ties (exact in fp32)
    vals += [mids, -mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(0))]
    vals += [np.array([65504, 65519.996, 65520, 65536, 1e30, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0001, 2.0**-26, 0.0, -0.0,
                       np.inf, -np.inf], np.float32)]
    x = np.concatenate(vals).astype(np.float32)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).view(np.uint16)
    assert np.array_equal(_core.fp32_to_fp16_bits(x), ref)


def test_fp32_to_fp16_nan_is_quiet_nan_with_payload():
    x = np.array([np.nan, -np.nan], np.float32)
    x = np.concatenate([x, np.array([0x7F800001, 0x7FC01234, 0xFFA00000], np.uint32).view(np.float32)])
    out = _core.fp32_to_fp16_bits(x)
    assert np.all((out & 0x7C00) == 0x7C00) and np.all((out & 0x3FF) != 0)
    u = x.view(np.uint32)
    assert np.array_equal(out, ((u >> 16) & 0x8000) | 0x7E00 | ((u >> 13) & 0x3FF))


def test_int4_nibble_order(rng):
    v = rng.integers(-8, 8, 257).astype(np.int8)
    packed = _core.pack_int4(v)
    assert packed.size == 129
    assert (packed[0] & 0xF) == (v[0] & 0xF) and (packed[0] >> 4) == (v[1] & 0xF)  # low nibble first
    assert np.array_equal(_core.unpack_int4(packed, 257), v)
    assert (packed[-1] >> 4) == 0
