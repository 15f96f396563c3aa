"""npuemu's model file (npuemu.runtime.modelfile): exact round trips, the documented byte layout (checked by an
independent reader/writer transcribed from docs/model-format.md), zero-copy mmap, and hostile files: truncation at
every byte, bit flips, fuzzed headers with valid checksums, foreign files. Every bad file must give ModelFileError,
never another exception type and never a dead process."""

from __future__ import annotations

import gc
import hashlib
import json
import math
import mmap
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from npuemu.errors import NpuError
from npuemu.runtime import modelfile as mf
from npuemu.runtime.modelfile import FORMAT_VERSION, MAGIC, ModelFileError

# ------------------------------------------------------------------ independent transcription of the layout
# docs/model-format.md: 64-byte fixed header "<8sIIQQQ24s", header JSON at 64, data section at a 64-aligned
# offset, arrays at 64-aligned offsets relative to it, SHA-256 of everything before the 32-byte trailer.
FIXED = struct.Struct("<8sIIQQQ24s")
DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64"]


def split(blob: bytes) -> dict:
    magic, version, flags, hlen, doff, dlen, reserved = FIXED.unpack_from(blob)
    return {
        "magic": magic,
        "version": version,
        "flags": flags,
        "header_len": hlen,
        "data_offset": doff,
        "data_len": dlen,
        "reserved": reserved,
        "json": blob[64 : 64 + hlen],
        "data": blob[doff : doff + dlen],
    }


def assemble(hjson: bytes, data: bytes, **fixed) -> bytes:
    """A file with the given header JSON and data section, a consistent fixed header (fields overridable)
    and a correct checksum."""
    doff = (64 + len(hjson) + 63) // 64 * 64
    f = {
        "magic": MAGIC,
        "version": FORMAT_VERSION,
        "flags": 0,
        "header_len": len(hjson),
        "data_offset": doff,
        "data_len": len(data),
        "reserved": bytes(24),
    }
    f.update(fixed)
    body = FIXED.pack(
        f["magic"], f["version"], f["flags"], f["header_len"], f["data_offset"], f["data_len"], f["reserved"]
    )
    body += hjson + bytes(doff - 64 - len(hjson)) + data
    return body + hashlib.sha256(body).digest()


def reassemble(blob: bytes, header=None, *, hjson=None, data=None, **fixed) -> bytes:
    p = split(blob)
    if header is not None:
        hjson = json.dumps(header).encode()
    return assemble(p["json"] if hjson is None else hjson, p["data"] if data is None else data, **fixed)


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


# --------------------------------------------------------------------------------------------- fixtures

META = {
    "floats": [
        0.1,
        1 / 3,
        5e-324,
        1e308,
        -0.0,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        123456789.12345679,
        -7.5e-10,
    ],
    "big_int": 2**70,
    "neg": -5,
    "flags": [True, False, None],
    "text": '名前 \u00e4 \ud800 \U0001f600 "quoted" \\ \n',
    "nested": {"a": {"b": [[], {}, [1, [2, [3.25]]]]}, "": "empty key"},
}


def small_arrays(rng) -> dict:
    return {
        "conv.w": rng.integers(-128, 128, (8, 3, 3, 3), dtype=np.int8),
        "conv.b": rng.integers(-(2**31), 2**31, (8,), dtype=np.int32),
        "scale": rng.standard_normal(8).astype(np.float32),
        "lut": rng.standard_normal((16, 16)).astype(np.float32),
        "mask": rng.random(5) < 0.5,
        "zero_d": np.array(2.5),
        "empty": np.zeros((0, 3), np.float16),
        "名前/ä b": np.arange(3, dtype=np.uint8),
    }


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def small_file(tmp_path, rng):
    path = tmp_path / "small.npuemu"
    mf.save(path, META, small_arrays(rng), producer="npuemu test")
    return path


# ----------------------------------------------------------------------------------------- round trips


def all_kinds(rng) -> dict:
    arrays = {}
    shapes = [(), (0,), (0, 3), (7,), (2, 3, 4), (1, 2, 1, 2, 1, 2, 1, 2), (5, 1, 0)]
    for dt in DTYPES:
        for i, shape in enumerate(shapes):
            if dt == "bool":
                a = rng.random(shape) < 0.5
            elif dt.startswith("float"):
                a = (rng.standard_normal(shape) * 1e3).astype(dt)
                if a.size >= 3:
                    a.flat[:3] = [np.nan, np.inf, -0.0]  # arrays may hold any float; only meta refuses them
            else:
                info = np.iinfo(dt)
                a = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
            arrays[f"{dt}/{i}"] = a
    arrays["transposed"] = np.arange(12, dtype=np.int16).reshape(3, 4).T  # not C-contiguous
    arrays["strided"] = np.arange(40, dtype=np.float64)[::3]
    arrays["big_endian"] = np.arange(-5, 5, dtype=">i4").reshape(2, 5)
    arrays["big_endian_f"] = np.linspace(-1, 1, 7, dtype=">f8")
    arrays["numpy_scalar"] = np.float32(3.25)
    for name in ["", " ", "名前", "\ud800", "\U0001f600", "a\x00b", "tab\tnew\nline", '"{}[]', "x" * 300]:
        arrays["name:" + name] = np.array([len(name)], np.int64)
    return arrays


@pytest.mark.parametrize("use_mmap", [True, False])
def test_round_trip_every_dtype_shape_and_name(tmp_path, rng, use_mmap):
    arrays = all_kinds(rng)
    path = tmp_path / "m.npuemu"
    written = mf.save(path, META, arrays, producer="npuemu 0.1.0")
    assert written == os.path.getsize(path)
    meta, got, info = mf.load(path, mmap=use_mmap)
    assert list(got) == list(arrays)  # table order is insertion order
    for name, a in arrays.items():
        b = got[name]
        a = np.asarray(a)
        assert b.dtype == np.dtype(a.dtype.name) and b.dtype.isnative, name
        assert b.shape == a.shape, name
        # bitwise equality (NaN payloads, -0.0), against the little-endian bytes of the input
        assert b.tobytes() == a.astype(a.dtype.newbyteorder("<")).tobytes(), name
        assert b.ctypes.data % 64 == 0, name  # 64-byte aligned in memory (map and private buffer alike)
        assert b.flags.writeable is (not use_mmap), name
    assert info == {
        "format_version": FORMAT_VERSION,
        "producer": "npuemu 0.1.0",
        "file_size": written,
        "sha256": hashlib.sha256(path.read_bytes()[:-32]).hexdigest(),
        "checksum_verified": True,
    }
    assert meta == META


def test_meta_round_trips_exactly(tmp_path):
    path = tmp_path / "m.npuemu"
    mf.save(path, META, {}, producer="p")
    meta, arrays, _ = mf.load(path)
    assert arrays == {}
    assert [float_bits(x) for x in meta["floats"]] == [float_bits(x) for x in META["floats"]]
    assert meta["floats"][2] == 5e-324 and meta["floats"][1] == 1 / 3
    assert type(meta["big_int"]) is int and meta["big_int"] == 2**70
    assert [type(x) for x in meta["flags"]] == [bool, bool, type(None)]  # True does not come back as 1
    assert meta["text"] == META["text"] and meta["nested"] == META["nested"]
    assert list(meta) == list(META)


def test_layout_matches_the_documented_bytes(small_file, rng):
    blob = small_file.read_bytes()
    p = split(blob)
    assert p["magic"] == b"NPUEMU\x00M" and p["version"] == FORMAT_VERSION == 1 and p["flags"] == 0
    assert p["reserved"] == bytes(24)
    assert p["data_offset"] % 64 == 0 and 64 + p["header_len"] <= p["data_offset"] < 64 + p["header_len"] + 64
    assert blob[64 + p["header_len"] : p["data_offset"]] == bytes(p["data_offset"] - 64 - p["header_len"])
    assert len(blob) == p["data_offset"] + p["data_len"] + 32
    assert blob[-32:] == hashlib.sha256(blob[:-32]).digest()
    header = json.loads(p["json"].decode("utf-8"))
    assert set(header) == {"producer", "meta", "arrays"} and header["producer"] == "npuemu test"
    arrays = small_arrays(np.random.default_rng(1234))
    assert [e["name"] for e in header["arrays"]] == list(arrays)
    for e in header["arrays"]:
        a = arrays[e["name"]]
        assert e["dtype"] == a.dtype.name and e["shape"] == list(a.shape) and e["nbytes"] == a.nbytes
        assert e["offset"] % 64 == 0
        assert p["data"][e["offset"] : e["offset"] + e["nbytes"]] == a.astype(a.dtype.newbyteorder("<")).tobytes()


def test_independently_assembled_file_loads(tmp_path):
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    b = np.array([1.5, -2.0], np.float32)
    data = a.tobytes() + bytes(64 - a.nbytes) + b.tobytes()
    header = {
        "producer": "hand",
        "meta": {"k": [1, 2.5]},
        "arrays": [
            {"name": "b", "dtype": "float32", "shape": [2], "offset": 64, "nbytes": 8},
            {"name": "a", "dtype": "int16", "shape": [3, 4], "offset": 0, "nbytes": 24},
        ],
    }
    path = tmp_path / "hand.bin"
    path.write_bytes(assemble(json.dumps(header).encode(), data))
    meta, arrays, info = mf.load(path)
    assert meta == {"k": [1, 2.5]} and info["producer"] == "hand" and list(arrays) == ["b", "a"]
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)


# --------------------------------------------------------------------------------------------- mmap


def mmap_of(a: np.ndarray):
    base = a
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else base.base
    return base


def test_mmap_arrays_are_read_only_zero_copy_views(small_file):
    meta, arrays, _ = mf.load(small_file, mmap=True)
    w = arrays["conv.w"]
    assert not w.flags.writeable and not w.flags.owndata
    with pytest.raises(ValueError):
        w[0, 0, 0, 0] = 1
    mm = mmap_of(w)
    assert isinstance(mm, mmap.mmap) and len(mm) == small_file.stat().st_size
    whole = np.frombuffer(mm, np.uint8)
    assert np.shares_memory(w, whole)
    for name, a in arrays.items():
        assert mmap_of(a) is mm, name  # one map for the whole file
        off = a.ctypes.data - whole.ctypes.data
        assert 0 <= off <= len(mm) - 32 and off % 64 == 0, name
        assert bytes(mm[off : off + a.nbytes]) == a.tobytes(), name
    del meta, whole, mm
    gc.collect()
    assert w.sum() == small_arrays(np.random.default_rng(1234))["conv.w"].sum()  # the views keep the map alive


def test_mmap_false_reads_private_writeable_copies(small_file):
    _, mapped, _ = mf.load(small_file, mmap=True)
    _, private, _ = mf.load(small_file, mmap=False)
    for name in mapped:
        np.testing.assert_array_equal(private[name], mapped[name])
        assert mmap_of(private[name]) is None and not np.shares_memory(private[name], mapped[name])
    private["lut"][0, 0] = 123.0
    assert mf.load(small_file, mmap=False)[1]["lut"][0, 0] != 123.0


def test_loads_do_not_leak_file_descriptors(small_file, tmp_path):
    blob = small_file.read_bytes()
    bad = tmp_path / "bad.npuemu"
    bad.write_bytes(reassemble(blob, hjson=b'{"producer": "x", "meta": {}, "arrays": 5}'))
    gc.collect()
    before = fd_count()
    for _ in range(50):
        for use_mmap in (True, False):
            with pytest.raises(ModelFileError):
                mf.load(bad, mmap=use_mmap, verify=False)
            mf.load(small_file, mmap=use_mmap)
    gc.collect()
    assert fd_count() == before


# --------------------------------------------------------------------------------------- hostile files


def expect_error(path, *, verify=True, use_mmap=True) -> str:
    try:
        mf.load(path, mmap=use_mmap, verify=verify)
    except ModelFileError as e:
        assert isinstance(e, NpuError) and isinstance(e, ValueError)
        return str(e)
    raise AssertionError(f"{path} loaded without error")


def big_file(tmp_path, rng):
    path = tmp_path / "big.npuemu"
    arrays = {f"layer{i}.w": rng.integers(-128, 128, (64, 64, 3, 3), dtype=np.int8) for i in range(8)}
    arrays["fc"] = rng.standard_normal((256, 100)).astype(np.float32)
    mf.save(path, {"layers": [{"i": i, "scale": 0.01 * i} for i in range(200)]}, arrays, producer="big")
    return path


def test_truncation_at_every_byte_offset(small_file, tmp_path):
    blob = small_file.read_bytes()
    assert 1500 < len(blob) < 4000
    cut = tmp_path / "cut.npuemu"
    cut.write_bytes(blob)
    for n in range(len(blob) - 1, -1, -1):
        os.truncate(cut, n)
        for use_mmap in (True, False):
            msg = expect_error(cut, use_mmap=use_mmap)
            if n == 0:
                assert "empty" in msg
            elif n < 96:
                assert "too short" in msg, msg
            else:
                assert f"is truncated: its header describes {len(blob)} bytes but the file has {n} bytes" in msg


def test_truncation_of_a_larger_file(tmp_path, rng):
    path = big_file(tmp_path, rng)
    blob = path.read_bytes()
    assert len(blob) > 300_000
    p = split(blob)
    points = set(rng.integers(0, len(blob), 150).tolist())
    points |= {1, 8, 63, 64, 65, p["data_offset"] - 1, p["data_offset"], len(blob) - 33, len(blob) - 32, len(blob) - 1}
    cut = tmp_path / "cut.npuemu"
    for n in sorted(points):
        cut.write_bytes(blob[:n])
        for use_mmap in (True, False):
            for verify in (True, False):
                expect_error(cut, use_mmap=use_mmap, verify=verify)


def test_trailing_bytes_are_refused(small_file):
    with open(small_file, "ab") as f:
        f.write(b"\0" * 10)
    assert "10 bytes after the end of the model" in expect_error(small_file)


def test_single_byte_changes_fail_the_checksum(small_file, tmp_path):
    blob = small_file.read_bytes()
    r = np.random.default_rng(7)
    out = tmp_path / "flip.npuemu"
    for _ in range(300):
        pos = int(r.integers(0, len(blob)))
        b = bytearray(blob)
        b[pos] ^= int(r.integers(1, 256))
        out.write_bytes(b)
        msg = expect_error(out, use_mmap=bool(r.integers(0, 2)))
        if pos >= 64:  # past the fixed header, only the checksum can tell
            assert "is corrupted: its SHA-256 checksum does not match" in msg


def mutated_headers(blob: bytes):
    """(label, header JSON bytes or dict, expected message fragment) with valid checksums."""
    base = json.loads(split(blob)["json"])

    def with_entry(i, **kv):
        h = json.loads(json.dumps(base))
        h["arrays"][i].update(kv)
        return h

    def without(key, i=None):
        h = json.loads(json.dumps(base))
        del (h if i is None else h["arrays"][i])[key]
        return h

    def top(**kv):
        h = json.loads(json.dumps(base))
        h.update(kv)
        return h

    dlen = split(blob)["data_len"]
    yield "offset negative", with_entry(0, offset=-64), "offset -64"
    yield "offset misaligned", with_entry(0, offset=8), "not a multiple of 64"
    yield "offset past the end", with_entry(0, offset=dlen // 64 * 64 + 64), "outside the data section"
    yield "offset huge", with_entry(0, offset=2**64), "outside the data section"
    yield "offset 10**30", with_entry(1, offset=10**30), "outside the data section"
    yield "offset float", with_entry(0, offset=0.0), "not non-negative integers"
    yield "offset bool", with_entry(0, offset=True), "not non-negative integers"
    yield "offset str", with_entry(0, offset="0"), "not non-negative integers"
    yield "overlap", with_entry(1, offset=0), "overlap"
    yield "huge shape", with_entry(0, shape=[2**40, 2**40], nbytes=2**80), "outside the data section"
    yield "huge shape mismatch", with_entry(0, shape=[2**62, 2**62]), "does not match shape"
    yield "negative dim", with_entry(0, shape=[-1, 216]), "negative dimension"
    yield "negative dims cancel", with_entry(0, shape=[-8, -27]), "negative dimension"
    yield "rank 9", with_entry(0, shape=[1] * 8 + [216]), "rank 9 exceeds 8"
    yield "shape not list", with_entry(0, shape="abc"), "not a list of integers"
    yield "shape float", with_entry(0, shape=[216.0]), "not a list of integers"
    yield "shape bool", with_entry(0, shape=[True]), "not a list of integers"
    yield "shape dict", with_entry(0, shape={"a": 1}), "not a list of integers"
    yield "nbytes mismatch", with_entry(0, nbytes=215), "does not match shape"
    yield "nbytes negative", with_entry(0, nbytes=-1), "not non-negative integers"
    yield "dtype object", with_entry(0, dtype="object"), "dtype 'object' is not one of"
    yield "dtype byte order", with_entry(0, dtype="<f4"), "is not one of"
    yield "dtype float128", with_entry(0, dtype="float128"), "is not one of"
    yield "dtype pickle", with_entry(0, dtype="O"), "is not one of"
    yield "dtype int", with_entry(0, dtype=5), "is not one of"
    yield "dtype null", with_entry(0, dtype=None), "is not one of"
    yield "name int", with_entry(0, name=3), "the name is a int"
    yield "duplicate name", with_entry(1, name="conv.w"), "appears twice"
    yield "missing name", without("name", 0), "has no 'name'"
    yield "missing nbytes", without("nbytes", 2), "has no 'nbytes'"
    yield "entry not object", top(arrays=[1, 2]), "is a int, not an object"
    yield "arrays dict", top(arrays={}), "'arrays' is a dict, expected a list"
    yield "meta list", top(meta=[1]), "'meta' is a list, expected a dict"
    yield "meta int", top(meta=5), "'meta' is a int"
    yield "meta null", top(meta=None), "'meta' is a NoneType"
    yield "producer int", top(producer=1), "'producer' is a int"
    yield "no meta", without("meta"), "the key 'meta' is missing"
    yield "no arrays", without("arrays"), "the key 'arrays' is missing"
    yield "top-level list", b"[1, 2, 3]", "not an object"
    yield "not json", b"{this is not json", "not valid JSON"
    yield "empty json", b"", "not valid JSON"
    yield "truncated json", json.dumps(base).encode()[:-5], "not valid JSON"
    yield "invalid utf-8", b'{"producer": "\xff\xfe", "meta": {}, "arrays": []}', "not valid UTF-8"
    yield "deep nesting", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"
    yield "deep meta nesting", b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"
    yield "NaN", b'{"producer": "x", "meta": {"a": NaN}, "arrays": []}', "not valid JSON"
    yield "Infinity", b'{"producer": "x", "meta": {"a": -Infinity}, "arrays": []}', "not valid JSON"
    yield "huge integer literal", b'{"producer": "x", "meta": {"a": ' + b"9" * 10_000 + b'}, "arrays": []}', "JSON"
    yield "duplicate keys", b'{"producer": "x", "producer": "y", "meta": {}, "arrays": []}', "duplicate key"
    yield "bool bytes", None, "holds bytes other than 0 and 1"


N_HEADER_CASES = 50


@pytest.mark.parametrize("case", range(N_HEADER_CASES))
def test_fuzzed_header_with_valid_checksum(small_file, tmp_path, case):
    blob = small_file.read_bytes()
    cases = list(mutated_headers(blob))
    assert len(cases) == N_HEADER_CASES
    label, header, fragment = cases[case]
    if header is None:  # a bool array whose byte is 2: the data, not the header, is wrong
        p = split(blob)
        entry = next(e for e in json.loads(p["json"])["arrays"] if e["dtype"] == "bool")
        data = bytearray(p["data"])
        data[entry["offset"]] = 2
        fuzzed = reassemble(blob, data=bytes(data))
    elif isinstance(header, dict):
        fuzzed = reassemble(blob, header)
    else:
        fuzzed = reassemble(blob, hjson=header)
    path = tmp_path / "fuzz.npuemu"
    path.write_bytes(fuzzed)
    for verify in (True, False):  # the checksum is valid: only the header checks can catch these
        for use_mmap in (True, False):
            msg = expect_error(path, verify=verify, use_mmap=use_mmap)
            assert fragment in msg, (label, msg)


def test_fuzzed_fixed_header_fields(small_file, tmp_path):
    blob = small_file.read_bytes()
    p = split(blob)
    r = np.random.default_rng(11)
    path = tmp_path / "fixed.npuemu"
    cases = [
        {"header_len": 2**64 - 1},
        {"data_offset": 2**64 - 64},
        {"data_len": 2**64 - 1},
        {"data_offset": 0},
        {"data_offset": p["data_offset"] + 1},
        {"header_len": p["data_offset"]},
        {"header_len": 0},
        {"data_len": 0},
        {"data_len": p["data_len"] - 1},
        {"flags": 1},
        {"version": 0},
        {"reserved": b"\x01" + bytes(23)},
        {"magic": b"NPUEMU\x00N"},
    ]
    for _ in range(200):
        field = ["header_len", "data_offset", "data_len"][int(r.integers(0, 3))]
        value = int(r.integers(0, 2**63)) if r.random() < 0.3 else p[field] + int(r.integers(-100, 100))
        cases.append({field: max(value, 0)})
    raised = 0
    for fixed in cases:
        fuzzed = reassemble(blob, **fixed)
        path.write_bytes(fuzzed)
        if fuzzed == blob:
            continue
        expect_error(path, verify=False, use_mmap=bool(r.integers(0, 2)))
        raised += 1
    assert raised > 150


def test_random_header_byte_fuzz_never_raises_anything_else(small_file, tmp_path):
    """Random byte changes inside the header JSON, checksum recomputed, verify=False: the load either succeeds
    (a change inside a string) or raises ModelFileError."""
    blob = small_file.read_bytes()
    p = split(blob)
    r = np.random.default_rng(3)
    path = tmp_path / "jfuzz.npuemu"
    errors = 0
    evil = b'-0123456789e.,:[]{}"\\tfn \xff'
    for _ in range(400):
        j = bytearray(p["json"])
        for _ in range(int(r.integers(1, 4))):
            j[int(r.integers(0, len(j)))] = evil[int(r.integers(0, len(evil)))]
        path.write_bytes(reassemble(blob, hjson=bytes(j)))
        try:
            mf.load(path, verify=False, mmap=bool(r.integers(0, 2)))
        except ModelFileError:
            errors += 1
    assert errors > 200


def test_random_table_values_never_raise_anything_else(small_file, tmp_path):
    """Valid JSON, valid checksum, table fields and meta replaced by values drawn from a hostile pool."""
    blob = small_file.read_bytes()
    base = json.loads(split(blob)["json"])
    dlen = split(blob)["data_len"]
    pool = [
        -1,
        0,
        1,
        8,
        63,
        64,
        dlen,
        dlen + 64,
        2**31,
        2**63,
        2**64,
        2**200,
        -(2**63),
        0.5,
        1e300,
        True,
        None,
        "",
        "int8",
        "bool",
        "float64",
        "object",
        [],
        [0],
        [-1],
        [2**40, 2**40],
        [1] * 9,
        [2, 3, 4],
        {},
        {"a": 1},
    ]
    r = np.random.default_rng(21)
    path = tmp_path / "tfuzz.npuemu"
    outcome = {"ok": 0, "error": 0}
    for _ in range(300):
        h = json.loads(json.dumps(base))
        for _ in range(int(r.integers(1, 4))):
            if r.random() < 0.1:
                h[["meta", "arrays", "producer"][int(r.integers(0, 3))]] = pool[int(r.integers(0, len(pool)))]
            elif isinstance(h["arrays"], list) and h["arrays"]:
                e = h["arrays"][int(r.integers(0, len(h["arrays"])))]
                if isinstance(e, dict):
                    e[["name", "dtype", "shape", "offset", "nbytes"][int(r.integers(0, 5))]] = pool[
                        int(r.integers(0, len(pool)))
                    ]
        path.write_bytes(reassemble(blob, h))
        try:
            _, arrays, _ = mf.load(path, verify=bool(r.integers(0, 2)), mmap=bool(r.integers(0, 2)))
            for a in arrays.values():
                a.sum()
            outcome["ok"] += 1
        except ModelFileError:
            outcome["error"] += 1
    assert outcome["error"] > 250, outcome


def test_fuzzed_loads_in_a_subprocess_never_kill_the_process(small_file, tmp_path):
    script = textwrap.dedent(
        """
        import hashlib, json, sys
        import numpy as np
        from npuemu.runtime import modelfile as mf
        src, out = sys.argv[1], sys.argv[2]
        blob = open(src, "rb").read()
        r = np.random.default_rng(99)
        counts = {"ok": 0, "ModelFileError": 0}
        for i in range(200):
            b = bytearray(blob[:-32])
            for _ in range(int(r.integers(1, 6))):
                b[int(r.integers(0, len(b)))] = int(r.integers(0, 256))
            b += hashlib.sha256(b).digest()          # valid checksum: the header checks are on their own
            if i % 10 == 0:
                b = b[: int(r.integers(0, len(b)))]  # and some truncations
            open(out, "wb").write(b)
            try:
                meta, arrays, info = mf.load(out, verify=bool(i % 2), mmap=bool(i % 3))
                for a in arrays.values():
                    a.sum()                           # touch the data: a bad view would fault here
                counts["ok"] += 1
            except mf.ModelFileError:
                counts["ModelFileError"] += 1
        print(json.dumps(counts))
        """
    )
    env = dict(os.environ)
    python_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(mf.__file__))))
    env["PYTHONPATH"] = os.pathsep.join([python_dir] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    res = subprocess.run(
        [sys.executable, "-c", script, str(small_file), str(tmp_path / "sub.npuemu")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    counts = json.loads(res.stdout.strip().splitlines()[-1])
    assert counts["ok"] + counts["ModelFileError"] == 200 and counts["ModelFileError"] > 50


# ------------------------------------------------------------------------------------------ foreign files


def test_onnx_file_is_recognised(tmp_path):
    from onnx import TensorProto, helper, save_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8, producer_name="test")
    for name in ("model.onnx", "model.rknn", "model.bin"):  # the content is recognised, not just the suffix
        save_model(model, tmp_path / name)
        msg = expect_error(tmp_path / name)
        assert "not an npuemu model file" in msg and "looks like an ONNX model" in msg and "load_onnx" in msg, msg


def test_rockchip_rknn_file_is_recognised(tmp_path):
    path = tmp_path / "yolo.rknn"
    path.write_bytes(b"RKNN\x00\x00\x00\x00\x06\x00\x00\x00" + bytes(range(256)) * 4)
    msg = expect_error(path)
    assert "not an npuemu model file" in msg and "Rockchip .rknn" in msg and "cannot run" in msg
    path.write_bytes(b"RKNN")
    assert "Rockchip .rknn" in expect_error(path)


def test_random_bytes_empty_directory_missing(tmp_path):
    r = np.random.default_rng(5)
    path = tmp_path / "random.bin"
    for n in (1, 7, 50, 4096):
        data = r.integers(0, 256, n, dtype=np.uint8).tobytes()
        if MAGIC.startswith(data[:8]):
            continue
        path.write_bytes(data)
        msg = expect_error(path)
        assert "is not an npuemu model file (it does not start with b'NPUEMU\\x00M')" in msg, msg
        assert "Rockchip" not in msg and "ONNX" not in msg
    path.write_bytes(b"")
    assert "is empty (0 bytes)" in expect_error(path)
    path.write_bytes(MAGIC[:5])
    assert "too short for an npuemu model file (5 bytes" in expect_error(path)
    assert "is a directory" in expect_error(tmp_path)
    assert "no such file" in expect_error(tmp_path / "missing.npuemu")
    assert "no such file" in expect_error(tmp_path / "no" / "folder" / "m.npuemu")
    assert "no such file" in expect_error(path / "below_a_file.npuemu")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "is not a regular file" in expect_error(fifo)  # and does not block waiting for a writer


def test_newer_format_version_is_refused_with_both_versions(small_file):
    blob = small_file.read_bytes()
    small_file.write_bytes(reassemble(blob, version=FORMAT_VERSION + 1))
    msg = expect_error(small_file)
    assert f"format version {FORMAT_VERSION + 1}, newer than this npuemu reads (version {FORMAT_VERSION})" in msg
    small_file.write_bytes(reassemble(blob, version=0))
    assert "invalid format version 0" in expect_error(small_file)
    small_file.write_bytes(reassemble(blob, flags=4))
    assert "unknown flags 0x4" in expect_error(small_file)


def test_module_executes_nothing_from_the_file():
    import ast

    with open(mf.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported, called = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            fn = node.func
            called.add(fn.id if isinstance(fn, ast.Name) else ast.unparse(fn))
    assert not imported & {"pickle", "marshal", "shelve", "dill", "cloudpickle", "importlib"}, imported
    assert not called & {"eval", "exec", "compile", "__import__", "np.load", "numpy.load", "pickle.loads"}, called
    assert "json.loads" in called


# ------------------------------------------------------------------------------------------------ save


def tmp_leftovers(folder) -> list:
    return [n for n in os.listdir(folder) if ".tmp-" in n]


@pytest.mark.parametrize("failure", ["object dtype", "replace", "fsync", "interrupt"])
def test_failed_save_leaves_the_destination_untouched(tmp_path, monkeypatch, failure):
    path = tmp_path / "model.npuemu"
    path.write_bytes(b"old content")
    arrays = {"w": np.arange(10, dtype=np.int8), "x": np.ones((3, 3), np.float32)}
    if failure == "object dtype":
        arrays["bad"] = np.array([object()], dtype=object)
        with pytest.raises(TypeError, match="array 'bad' has dtype object"):
            mf.save(path, {}, arrays, producer="p")
    else:
        seen = []

        def boom(*args, **kwargs):
            seen.append(tmp_leftovers(tmp_path))  # the temp file exists at this point
            raise (KeyboardInterrupt if failure == "interrupt" else OSError("disk on fire"))

        monkeypatch.setattr(os, "replace" if failure in ("replace", "interrupt") else "fsync", boom)
        with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
            mf.save(path, {}, arrays, producer="p")
        assert seen and seen[0] == [f"model.npuemu.tmp-{os.getpid()}"]
    assert path.read_bytes() == b"old content"
    assert tmp_leftovers(tmp_path) == []


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "model.npuemu"
    path.write_bytes(b"old")
    mf.save(str(path), {"v": 1}, {"a": np.zeros(3, np.int8)}, producer="p")
    assert mf.load(path)[0] == {"v": 1} and tmp_leftovers(tmp_path) == []


def test_save_refuses_bad_paths_and_values(tmp_path):
    ok = {"a": np.zeros(2, np.int8)}
    with pytest.raises(ModelFileError, match="is a directory"):
        mf.save(tmp_path, {}, ok, producer="p")
    with pytest.raises(ModelFileError, match="does not exist"):
        mf.save(tmp_path / "nope" / "m.npuemu", {}, ok, producer="p")
    target = tmp_path / "m.npuemu"
    cases = [
        ({"a": {"b": [1.0, math.nan]}}, ok, ValueError, r"meta\['a'\]\['b'\]\[1\] is nan"),
        ({"x": math.inf}, ok, ValueError, "NaN and infinities"),
        ({"t": (1, 2)}, ok, TypeError, r"meta\['t'\] is a builtins.tuple \(use a list\)"),
        ({1: "x"}, ok, TypeError, "key 1 is a int"),
        ({"n": np.float32(1.0)}, ok, TypeError, "numpy.float32"),
        ({"s": {1, 2}}, ok, TypeError, "builtins.set"),
        ({}, {"s": np.array(["abc"])}, TypeError, "array 's' has dtype <U3"),
        ({}, {"r": np.zeros(2, dtype=[("a", "i4"), ("b", "f4")])}, TypeError, "array 'r' has dtype"),
        ({}, {"c": np.zeros(2, np.complex64)}, TypeError, "array 'c' has dtype complex64"),
        ({}, {"u": np.zeros(2, np.uint16)}, TypeError, "array 'u' has dtype uint16"),
        ({}, {"l": [1, 2]}, TypeError, "array 'l' is a list, not a numpy array"),
        ({}, {5: np.zeros(1)}, TypeError, "array names must be str"),
        ({}, {"r9": np.zeros([1] * 9)}, ValueError, "rank 9"),
    ]
    for meta, arrays, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            mf.save(target, meta, arrays, producer="p")
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        mf.save(target, {"loop": loop}, ok, producer="p")
    with pytest.raises(TypeError, match="producer"):
        mf.save(target, {}, ok, producer=None)
    assert not target.exists() and tmp_leftovers(tmp_path) == []
