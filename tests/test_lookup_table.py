"""The DPU's lookup table (``_core.lookup_table``: y[i] = table[bit pattern of x[i]]) against numpy fancy
indexing, for every index / entry size, lengths around the 16-element blocks, and its argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from npuemu import _core


@pytest.mark.parametrize("xdt,ydt", [(np.int8, np.int8), (np.uint8, np.uint8), (np.int16, np.int8),
                                     (np.int16, np.int16), (np.int8, np.int16), (np.float16, np.float16)])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 33, 1000, 65536 + 7])
def test_lookup_matches_numpy_indexing(rng, xdt, ydt, n):
    xs, ys = np.dtype(xdt).itemsize, np.dtype(ydt).itemsize
    table = rng.integers(0, 256 ** ys, 256 ** xs, dtype=np.uint32).astype(f"u{ys}").view(ydt)
    x = rng.integers(0, 256 ** xs, n, dtype=np.uint32).astype(f"u{xs}").view(xdt)
    if n >= 4:
        x.view(f"u{xs}")[:4] = [0, 256 ** xs - 1, 1, 256 ** xs - 2]  # the table's ends
    y = np.empty(n, ydt)
    _core.lookup_table(table, x, y)
    want = table[x.view(f"u{xs}").astype(np.int64)]
    assert np.array_equal(y.view(f"u{ys}"), want.view(f"u{ys}"))


def test_lookup_errors():
    x = np.zeros(8, np.int16)
    with pytest.raises(ValueError, match="65536 entries"):
        _core.lookup_table(np.zeros(256, np.int8), x, np.zeros(8, np.int8))
    with pytest.raises(ValueError, match="must match y"):
        _core.lookup_table(np.zeros(65536, np.int16), x, np.zeros(8, np.int8))
    with pytest.raises(ValueError, match="elements"):
        _core.lookup_table(np.zeros(65536, np.int8), x, np.zeros(7, np.int8))
    with pytest.raises(ValueError, match="1- or 2-byte"):
        _core.lookup_table(np.zeros(65536, np.int8), x.astype(np.int32), np.zeros(8, np.int8))
