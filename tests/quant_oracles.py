"""Literal Python transcriptions of the fixed-point arithmetic (gemmlowp, TFLite) with exact integers:
the oracles the native requantization is checked against. Nothing here calls npuemu."""

from __future__ import annotations

import math

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm_gemmlowp(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul, literally (int64 product, sign-dependent nudge,
    C++ truncating division)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return trunc_div(ab + nudge, 1 << 31)


def rdbpot_gemmlowp(x: int, e: int) -> int:
    """gemmlowp RoundingDivideByPOT, literally (two's-complement masks)."""
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def mbqm(acc: int, m0: int, shift: int) -> int:
    """gemmlowp MultiplyByQuantizedMultiplier with an exact (non-saturating) left shift."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot_gemmlowp(srdhm_gemmlowp(acc * (1 << left), m0), right)


def quantize_multiplier_tflite(m: float, min_shift: int = -31):
    """TFLite's QuantizeMultiplier, literally: frexp, TfLiteRound (half away from zero) of the Q31
    mantissa, renormalisation at 2^31; exponents below min_shift flushed to a zero multiplier (TFLite:
    -31; npuemu keeps exponents down to -62, docs/arithmetic.md section 3)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    q_fixed = int(math.floor(abs(q) * 2**31 + 0.5)) * (1 if q > 0 else -1)
    if abs(q_fixed) == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < min_shift:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier(m: float):
    """npuemu's quantize_multiplier (docs/arithmetic.md section 3)."""
    return quantize_multiplier_tflite(m, min_shift=-62)
