"""npuemu's own model file format: what ``RKNN.export_rknn`` writes and ``load_rknn`` reads.

This is NOT Rockchip's .rknn format: npuemu cannot read Rockchip's files and Rockchip's tools cannot read
these. The file holds data only (a JSON header and raw little-endian arrays, closed by a SHA-256); nothing
in it is executed: no pickle, no eval, JSON is parsed with ``json.loads`` under a size limit.

Layout (docs/model-format.md has the full table)::

    [0, 64)                   fixed header: magic, format version u32, flags u32, header-JSON length u64,
                              data-section offset u64, data-section length u64, 24 reserved zero bytes
    [64, 64 + json_len)       header JSON (ASCII / UTF-8): {"producer", "meta", "arrays": [table entries]}
    ... zero padding          up to data_offset (a multiple of 64)
    [data_offset, + data_len) data section; each array at a 64-byte aligned offset (relative to data_offset)
    [-32:]                    SHA-256 of every byte before it

``save`` writes atomically (temp file in the same folder, fsync, ``os.replace``). ``load`` checks the file
step by step and raises :class:`ModelFileError` (a ``ValueError``) saying what is wrong in user terms.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import mmap as _mmap
import os
import stat
import struct

import numpy as np

from ..errors import NpuError

__all__ = ["ALLOWED_DTYPES", "FORMAT_VERSION", "MAGIC", "ModelFileError", "load", "save"]

MAGIC = b"NPUEMU\x00M"
FORMAT_VERSION = 1
ALIGN = 64
# magic, version, flags, header-JSON length, data offset, data length, 24 reserved bytes: 64 bytes.
_FIXED = struct.Struct("<8sIIQQQ24s")
FIXED_SIZE = _FIXED.size
TRAILER_SIZE = 32  # SHA-256 digest
MIN_FILE_SIZE = FIXED_SIZE + TRAILER_SIZE
MAX_HEADER_BYTES = 64 << 20  # 64 MiB of header JSON: far above any real model, bounds json.loads
MAX_RANK = 8
_HASH_CHUNK = 16 << 20

# The stored dtypes, by the name written in the array table; always little-endian in the file.
ALLOWED_DTYPES = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("bool", "int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64")
}

_RKNN_MAGIC = b"RKNN"
# Tags that can follow ModelProto.ir_version (field 1, varint) in a serialized ONNX model: fields 2-8
# (producer_name ... opset_import), 14 (metadata_props), 15 (training_info).
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0x7A}


class ModelFileError(NpuError):
    """The model file is missing, foreign, truncated, corrupted or malformed; the message says which."""


@contextlib.contextmanager
def atomic_file(path, durable: bool = False):
    """A binary file opened for writing under a temporary name in the same folder and renamed over ``path``
    when the block ends: readers see the old file or the whole new one. On any failure the temporary file
    is removed and the error re-raised. ``durable``: fsync the file before the rename and the folder after."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        with contextlib.suppress(OSError):  # make the rename durable; not possible everywhere
            dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def atomic_write(path, data: "bytes | str") -> None:
    """Writes a whole file atomically (:func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ----------------------------------------------------------------------------------------------- save


def _check_meta(obj, where: str, stack: set) -> None:
    """Only what JSON round-trips exactly: str/int/float(finite)/bool/None, lists, dicts with str keys."""
    if obj is None or isinstance(obj, (bool, str)):
        return
    if isinstance(obj, int):
        return
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"meta{where} is {obj!r}: NaN and infinities cannot be stored in a model file")
        return
    if isinstance(obj, (list, dict)):
        if id(obj) in stack:
            raise ValueError(f"meta{where}: circular reference")
        stack.add(id(obj))
        if isinstance(obj, list):
            for i, v in enumerate(obj):
                _check_meta(v, f"{where}[{i}]", stack)
        else:
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise TypeError(f"meta{where}: key {k!r} is a {type(k).__name__}; keys must be str")
                _check_meta(v, f"{where}[{k!r}]", stack)
        stack.discard(id(obj))
        return
    hint = " (use a list)" if isinstance(obj, tuple) else ""
    raise TypeError(
        f"meta{where} is a {type(obj).__module__}.{type(obj).__qualname__}{hint}; meta may hold only "
        "str, int, float, bool, None, lists and dicts with str keys"
    )


def _prepare_array(name, a) -> np.ndarray:
    if not isinstance(name, str):
        raise TypeError(f"array names must be str, got {name!r} ({type(name).__name__})")
    if not isinstance(a, (np.ndarray, np.generic)):
        raise TypeError(f"array {name!r} is a {type(a).__name__}, not a numpy array")
    dt = a.dtype
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.name not in ALLOWED_DTYPES:
        raise TypeError(
            f"array {name!r} has dtype {dt!s}, which a model file cannot hold (allowed: {', '.join(ALLOWED_DTYPES)})"
        )
    target = ALLOWED_DTYPES[dt.name]
    # C order, little-endian (a big-endian array is byte-swapped); np.ascontiguousarray would turn 0-d into 1-d.
    a = np.asarray(a, dtype=target, order="C")
    if a.ndim > MAX_RANK:
        raise ValueError(f"array {name!r} has rank {a.ndim}; a model file holds ranks up to {MAX_RANK}")
    return a


def save(path, meta: dict, arrays: dict, *, producer: str) -> int:
    """Writes ``meta`` (JSON-able dict) and ``arrays`` (name -> numpy array) to ``path``; returns the file size.

    Atomic: the file is written to ``path + ".tmp-<pid>"`` in the same folder, fsync'ed and renamed over
    ``path``; on any failure the temp file is removed and the error re-raised, so ``path`` is either its old
    self or the complete new file. Raises ``TypeError`` for values that cannot be stored (object, string or
    structured dtypes, non-JSON meta), ``ValueError`` for NaN/inf in meta, :class:`ModelFileError` for a
    path that is a directory or whose folder does not exist.
    """
    path = os.fsdecode(os.fspath(path))
    if os.path.isdir(path):
        raise ModelFileError(f"cannot save the model to {path!r}: it is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ModelFileError(f"cannot save the model to {path!r}: the folder {parent!r} does not exist")
    if not isinstance(producer, str):
        raise TypeError(f"producer must be a str, got {type(producer).__name__}")
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    _check_meta(meta, "", set())
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict name -> numpy array, got {type(arrays).__name__}")

    prepared = []
    table = []
    end = 0
    for name, a in arrays.items():
        a = _prepare_array(name, a)
        offset = _align(end)
        table.append(
            {"name": name, "dtype": a.dtype.name, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes}
        )
        prepared.append((offset, a))
        end = offset + a.nbytes
    data_len = end

    header = {"producer": producer, "meta": meta, "arrays": table}
    # ensure_ascii: any str (even lone surrogates) survives; repr floats: every finite float round-trips.
    hjson = json.dumps(header, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    if len(hjson) > MAX_HEADER_BYTES:
        raise ValueError(f"the header JSON is {len(hjson)} bytes; the limit is {MAX_HEADER_BYTES} (meta too large)")
    data_offset = _align(FIXED_SIZE + len(hjson))
    fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, 0, len(hjson), data_offset, data_len, bytes(24))
    total = data_offset + data_len + TRAILER_SIZE

    with atomic_file(path, durable=True) as f:
        h = hashlib.sha256()

        def put(b) -> None:
            h.update(b)
            f.write(b)

        put(fixed)
        put(hjson)
        put(bytes(data_offset - FIXED_SIZE - len(hjson)))
        pos = 0
        for offset, a in prepared:
            put(bytes(offset - pos))
            if a.nbytes:
                put(memoryview(a.reshape(-1).view(np.uint8)))
            pos = offset + a.nbytes
        f.write(h.digest())
    return total


# ----------------------------------------------------------------------------------------------- load


def _foreign_hint(head: bytes, path: str) -> str:
    if head.startswith(_RKNN_MAGIC):
        return (
            "; it starts with b'RKNN' and looks like a Rockchip .rknn model, which npuemu cannot run "
            "(npuemu builds its models from ONNX: RKNN.load_onnx, RKNN.build, then RKNN.export_rknn)"
        )
    onnx_like = len(head) >= 3 and head[0] == 0x08 and 0 < head[1] < 0x80 and head[2] in _ONNX_NEXT_TAGS
    if onnx_like or path.lower().endswith(".onnx"):
        return "; it looks like an ONNX model: use RKNN.load_onnx(model=...) and RKNN.build to compile it"
    return ""


def _reject_constant(name):
    raise ValueError(f"the number {name} is not allowed")


def _unique_pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_header(raw: np.ndarray, header_len: int, data_len: int, where: str):
    def bad(detail):
        return ModelFileError(f"{where}: damaged header: {detail}")

    try:
        text = raw[FIXED_SIZE : FIXED_SIZE + header_len].tobytes().decode("utf-8")
        header = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs)
    except RecursionError:
        raise bad("the header JSON is nested too deeply") from None
    except UnicodeDecodeError as e:
        raise bad(f"the header is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except ValueError as e:  # json.JSONDecodeError, over-long integers, NaN/Infinity, duplicate keys
        raise bad(f"the header is not valid JSON ({e})") from None

    if not isinstance(header, dict):
        raise bad(f"the header JSON is a {type(header).__name__}, not an object")
    for key, typ in (("producer", str), ("meta", dict), ("arrays", list)):
        if key not in header:
            raise bad(f"the key {key!r} is missing")
        if not isinstance(header[key], typ):
            raise bad(f"{key!r} is a {type(header[key]).__name__}, expected a {typ.__name__}")

    entries = []
    names = set()
    for i, e in enumerate(header["arrays"]):
        if not isinstance(e, dict):
            raise bad(f"array table entry {i} is a {type(e).__name__}, not an object")
        for key in ("name", "dtype", "shape", "offset", "nbytes"):
            if key not in e:
                raise bad(f"array table entry {i} has no {key!r}")
        name, dtype, shape, offset, nbytes = e["name"], e["dtype"], e["shape"], e["offset"], e["nbytes"]
        label = f"array table entry {i}"
        if not isinstance(name, str):
            raise bad(f"{label}: the name is a {type(name).__name__}, not a str")
        label = f"array {name!r}"
        if name in names:
            raise bad(f"{label} appears twice")
        names.add(name)
        if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
            raise bad(f"{label}: dtype {dtype!r} is not one of {', '.join(ALLOWED_DTYPES)}")
        if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
            raise bad(f"{label}: the shape {shape!r} is not a list of integers")
        if len(shape) > MAX_RANK:
            raise bad(f"{label}: rank {len(shape)} exceeds {MAX_RANK}")
        if any(d < 0 for d in shape):
            raise bad(f"{label}: negative dimension in shape {shape}")
        if not _is_int(offset) or not _is_int(nbytes) or offset < 0 or nbytes < 0:
            raise bad(f"{label}: offset {offset!r} / nbytes {nbytes!r} are not non-negative integers")
        expected = math.prod(shape) * ALLOWED_DTYPES[dtype].itemsize  # Python ints: no overflow
        if nbytes != expected:
            raise bad(f"{label}: nbytes {nbytes} does not match shape {shape} x {dtype} = {expected} bytes")
        if offset % ALIGN:
            raise bad(f"{label}: offset {offset} is not a multiple of {ALIGN}")
        if offset + nbytes > data_len:
            raise bad(f"{label}: bytes [{offset}, {offset + nbytes}) lie outside the data section ({data_len} bytes)")
        entries.append((offset, nbytes, name, dtype, shape))

    prev_end, prev_name = 0, None
    for offset, nbytes, name, _, _ in sorted(entries, key=lambda t: (t[0], t[1])):
        if nbytes and offset < prev_end:
            raise bad(f"arrays {prev_name!r} and {name!r} overlap")
        if nbytes:
            prev_end, prev_name = offset + nbytes, name
    return header, entries


def load(path, *, mmap: bool = True, verify: bool = True):
    """Reads a model file written by :func:`save`; returns ``(meta, arrays, info)``.

    ``mmap=True``: the arrays are read-only, zero-copy views of a read-only memory map of the file (the map
    lives as long as any array does; do not modify the file meanwhile). ``mmap=False``: the file is read
    into one private, 64-byte aligned buffer and the arrays are writeable views of it. ``verify``: check the
    SHA-256 trailer (one pass over the file). ``info``: format_version, producer, file_size, sha256 (hex of
    the stored checksum), checksum_verified. Every problem raises :class:`ModelFileError`.
    """
    path = os.fsdecode(os.fspath(path))
    where = repr(path)
    try:
        # stat first: opening a FIFO or a device for reading could block or read endlessly
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ModelFileError(f"{where} is a directory, not an npuemu model file")
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{where} is not a regular file")
        f = open(path, "rb")  # noqa: SIM115 (closed by the `with f:` below; opening errors are mapped here)
    except (FileNotFoundError, NotADirectoryError):
        raise ModelFileError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{where} is a directory, not an npuemu model file") from None
    except OSError as e:
        raise ModelFileError(f"{where} cannot be opened: {e.strerror or e}") from None
    with f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise ModelFileError(f"{where} is a directory, not an npuemu model file")
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{where} is not a regular file")
        size = st.st_size
        if size == 0:
            raise ModelFileError(f"{where} is empty (0 bytes): not an npuemu model file")
        head = f.read(FIXED_SIZE)
        if not head.startswith(MAGIC[: len(head)]):
            raise ModelFileError(
                f"{where} is not an npuemu model file (it does not start with {MAGIC!r})" + _foreign_hint(head, path)
            )
        if size < MIN_FILE_SIZE:
            raise ModelFileError(
                f"{where} is too short for an npuemu model file ({size} bytes; the smallest has "
                f"{MIN_FILE_SIZE}): truncated"
            )
        _, version, flags, header_len, data_offset, data_len, reserved = _FIXED.unpack(head)
        if version > FORMAT_VERSION:
            raise ModelFileError(
                f"{where} has model file format version {version}, newer than this npuemu reads "
                f"(version {FORMAT_VERSION}): upgrade npuemu, or export the model again with this version"
            )
        if version == 0:
            raise ModelFileError(f"{where}: invalid format version 0 (damaged file)")
        if flags != 0:
            raise ModelFileError(f"{where}: unknown flags 0x{flags:x} (written by a newer npuemu, or damaged)")
        if reserved != bytes(len(reserved)):
            raise ModelFileError(f"{where}: the reserved header bytes are not zero (damaged file)")
        if data_offset % ALIGN or data_offset < FIXED_SIZE + header_len:
            raise ModelFileError(
                f"{where}: damaged header: data offset {data_offset} does not follow the "
                f"{header_len}-byte header JSON on a {ALIGN}-byte boundary"
            )
        expected = data_offset + data_len + TRAILER_SIZE
        if expected > size:
            raise ModelFileError(
                f"{where} is truncated: its header describes {expected} bytes but the file has {size} bytes"
            )
        if expected < size:
            raise ModelFileError(
                f"{where} has {size - expected} bytes after the end of the model ({expected} bytes expected, "
                f"{size} found): damaged or appended to"
            )
        if header_len > MAX_HEADER_BYTES:
            raise ModelFileError(f"{where}: damaged header: header JSON length {header_len} exceeds the limit")

        # The whole file as a uint8 array: a read-only map, or a private 64-byte aligned buffer.
        mm = None
        if mmap:
            mm = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
            if len(mm) != size:
                mm.close()
                raise ModelFileError(f"{where} changed size while being loaded")
            raw = np.frombuffer(mm, dtype=np.uint8)
        else:
            f.seek(0)
            backing = np.empty(size + ALIGN, dtype=np.uint8)
            start = -backing.ctypes.data % ALIGN
            raw = backing[start : start + size]
            got = f.readinto(memoryview(raw))
            if got != size:
                raise ModelFileError(f"{where} changed size while being loaded ({got} of {size} bytes read)")

    try:
        body_end = size - TRAILER_SIZE
        stored = raw[body_end:].tobytes()
        if verify:
            h = hashlib.sha256()
            data = raw.data
            for i in range(0, body_end, _HASH_CHUNK):
                h.update(data[i : min(i + _HASH_CHUNK, body_end)])
            if h.digest() != stored:
                raise ModelFileError(
                    f"{where} is corrupted: its SHA-256 checksum does not match its content "
                    f"(stored {stored.hex()[:16]}..., computed {h.hexdigest()[:16]}...)"
                )
        header, entries = _parse_header(raw, header_len, data_len, where)
        out = {}
        for offset, nbytes, name, dtype, shape in sorted(entries, key=lambda t: t[0]):
            start = data_offset + offset
            a = raw[start : start + nbytes].view(ALLOWED_DTYPES[dtype]).reshape(shape)
            if dtype == "bool" and nbytes and int(raw[start : start + nbytes].max()) > 1:
                raise ModelFileError(f"{where}: damaged data: bool array {name!r} holds bytes other than 0 and 1")
            out[name] = a
    except BaseException:
        out = a = data = raw = None  # drop every view so that the map can be closed now
        if mm is not None:
            with contextlib.suppress(BufferError):
                mm.close()
        raise
    arrays = {e["name"]: out[e["name"]] for e in header["arrays"]}  # the file's table order
    info = {
        "format_version": version,
        "producer": header["producer"],
        "file_size": size,
        "sha256": stored.hex(),
        "checksum_verified": bool(verify),
    }
    return header["meta"], arrays, info
