"""Convolution shapes and data generators shared by the convolution tests."""

from __future__ import annotations

import numpy as np

# (n, c, h, w, oc, (kh, kw), strides, pads (t, l, b, r), dilations, group)
SHAPES = [
    (1, 3, 7, 9, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # tiny, odd sizes, IC < block
    (1, 16, 5, 5, 16, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1, exact blocks
    (1, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1x1x1
    (2, 20, 11, 6, 33, (3, 3), (2, 1), (1, 0, 2, 1), (1, 1), 1),  # batch 2, stride 2x1, asymmetric pads
    (1, 17, 9, 13, 31, (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),  # strided 1x1, OC % 16 != 0
    (1, 32, 8, 10, 48, (5, 5), (2, 3), (2, 2, 2, 2), (2, 2), 1),  # dilation 2, stride 3 in w
    (1, 8, 6, 7, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),  # depthwise
    (1, 24, 9, 9, 48, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 24),  # depthwise, multiplier 2
    (1, 12, 7, 7, 18, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),  # groups
    (1, 64, 14, 14, 70, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # multi-block channels
    (1, 40, 5, 30, 64, (1, 7), (1, 1), (0, 3, 0, 3), (1, 1), 1),  # wide rows, 1x7
    (1, 7, 12, 5, 9, (7, 3), (3, 1), (3, 1, 0, 2), (1, 2), 1),  # tall kernel, pads larger than strides
    (1, 5, 4, 4, 6, (3, 3), (1, 1), (4, 4, 4, 4), (1, 1), 1),  # pads larger than the kernel
    (1, 19, 33, 37, 21, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),  # wide stride-2 rows (vector gather)
    (1, 16, 24, 40, 32, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # many full 16-pixel blocks
    (1, 33, 10, 50, 17, (3, 3), (3, 3), (0, 2, 1, 0), (1, 1), 1),  # stride 3, unread rows and phases
    # folded taps, one fixed move per kernel row: 3x7 rows of 21 channels (32 bytes int8, 64 bytes int16),
    # 5x5 rows of 10 (64 bytes float32)
    (1, 3, 10, 20, 7, (3, 7), (1, 2), (1, 3, 1, 3), (1, 1), 1),
    (1, 2, 9, 12, 5, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 1),
]


def shape_id(s) -> str:
    n, c, h, w, oc, k, st, p, d, g = s
    return f"n{n}c{c}h{h}w{w}-oc{oc}-k{k[0]}x{k[1]}-s{st[0]}x{st[1]}-p{''.join(map(str, p))}-d{d[0]}x{d[1]}-g{g}"


def conv_kwargs(s) -> dict:
    _, _, _, _, _, _, st, p, d, g = s
    return dict(strides=st, pads=p, dilations=d, group=g)


def x_shape(s):
    n, c, h, w = s[:4]
    return (n, c, h, w)


def w_shape(s):
    _, c, _, _, oc, k, _, _, _, g = s
    return (oc, c // g, k[0], k[1])


def int_data(rng, shape, lo: int, hi: int, dtype, extremes: float = 0.15) -> np.ndarray:
    """Uniform integers in [lo, hi] with a share of exact extremes (lo and hi)."""
    a = rng.integers(lo, hi + 1, shape, dtype=np.int64)
    m = rng.random(shape)
    a[m < extremes / 2] = lo
    a[m > 1 - extremes / 2] = hi
    return a.astype(dtype)


def fp16_data(rng, shape) -> np.ndarray:
    return (rng.standard_normal(shape) * 2).astype(np.float16)


def conv_fp64(x, w, b, s) -> np.ndarray:
    """Exact (float64) convolution, NCHW/OIHW, by explicit im2col: the fp16 oracle."""
    _, _, _, _, _, (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw), g = s
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    n, c, h, wd = x.shape
    oc = w.shape[0]
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    icg, ocg = c // g, oc // g
    y = np.zeros((n, oc, oh, ow))
    absy = np.zeros((n, oc, oh, ow))
    for gi in range(g):
        cols = np.empty((n, icg, kh, kw, oh, ow))
        for i in range(kh):
            for j in range(kw):
                cols[:, :, i, j] = xp[:, gi * icg : (gi + 1) * icg, i * dh : i * dh + (oh - 1) * sh + 1 : sh,
                                      j * dw : j * dw + (ow - 1) * sw + 1 : sw]
        wg = w[gi * ocg : (gi + 1) * ocg]
        y[:, gi * ocg : (gi + 1) * ocg] = np.einsum("ncijhw,ocij->nohw", cols, wg)
        absy[:, gi * ocg : (gi + 1) * ocg] = np.einsum("ncijhw,ocij->nohw", np.abs(cols), np.abs(wg))
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
        absy += np.abs(b.astype(np.float64))[None, :, None, None]
    return y, absy


# Winograd F(m x m, 3 x 3) matrices (docs/arithmetic.md section 6), as float64.
WINOGRAD = {
    2: dict(
        BT=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
        G=np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
        AT=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64),
        depth=8,  # roundings along the longest path besides the GEMM's icg (section 6)
    ),
    4: dict(
        BT=np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                     [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
        G=np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                    [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
        AT=np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64),
        depth=12,
    ),
}


def winograd_magnitude(x, w, b, s, m: int) -> np.ndarray:
    """S = |A^T| (sum_c |G||g_c||G|^T (.) |B^T||d_c||B|) |A| + |b| per output: the exact Winograd
    computation carried out on absolute values (float64), against which the fp32 rounding errors of
    F(m x m, 3 x 3) are bounded (docs/arithmetic.md section 6)."""
    _, _, _, _, _, (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw), g = s
    assert (kh, kw, sh, sw, dh, dw) == (3, 3, 1, 1, 1, 1)
    mats = WINOGRAD[m]
    BT, G, AT = np.abs(mats["BT"]), np.abs(mats["G"]), np.abs(mats["AT"])
    n, c, h, wd = x.shape
    oc = w.shape[0]
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    th, tw = -(-oh // m), -(-ow // m)
    xp = np.zeros((n, c, th * m + 2, tw * m + 2))
    xp[:, :, pt : pt + h, pl : pl + wd] = np.abs(x.astype(np.float64))
    a = m + 2
    tiles = np.lib.stride_tricks.sliding_window_view(xp, (a, a), axis=(2, 3))[:, :, ::m, ::m]  # n c th tw a a
    vabs = np.einsum("ai,nctwij,bj->nctwab", BT, tiles, BT)
    uabs = np.einsum("ai,ocij,bj->ocab", G, np.abs(w.astype(np.float64)), G)
    icg, ocg = c // g, oc // g
    mabs = np.concatenate(
        [np.einsum("nctwab,ocab->notwab", vabs[:, gi * icg : (gi + 1) * icg], uabs[gi * ocg : (gi + 1) * ocg])
         for gi in range(g)], axis=1)
    yabs = np.einsum("ka,notwab,lb->notkwl", AT, mabs, AT).reshape(n, oc, th * m, tw * m)[:, :, :oh, :ow]
    if b is not None:
        yabs = yabs + np.abs(b.astype(np.float64))[None, :, None, None]
    return yabs


def winograd_fp16_bound(x, w, b, s, m: int, y) -> np.ndarray:
    """The stated FP16 Winograd tolerance: 1/2 ulp_fp16 of the result plus gamma_{icg + depth} * S with
    gamma_n = n u / (1 - n u), u = 2^-24."""
    icg = w.shape[1]
    k = icg + WINOGRAD[m]["depth"]
    u = 2.0**-24
    gamma = k * u / (1 - k * u)
    exact, _ = conv_fp64(x, w, b, s)
    big = np.maximum(np.abs(exact), np.abs(y.astype(np.float64))).astype(np.float16)
    half_ulp = np.spacing(big).astype(np.float64) / 2
    return exact, half_ulp + gamma * winograd_magnitude(x, w, b, s, m)
