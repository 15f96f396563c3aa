"""The calibration dataset file of ``RKNN.build(dataset='dataset.txt')``.

Format (as rknn-toolkit2): a text file, one sample per line; a line holds the paths of that sample's inputs,
separated by whitespace, one per model input in the model's input order. Blank lines and lines whose first
non-blank character is ``#`` are skipped. A relative path is looked up in the dataset file's folder first, then
in the current directory (vendor examples write both forms). Paths cannot contain spaces.

Sample files:

- ``.npy`` (``np.load(allow_pickle=False)``, any bool/int/uint/float dtype, converted to float32). The array must
  have the input's shape; without the leading batch dim of 1 is accepted too. For a 4-D input ``(1, C, H, W)`` an
  NHWC array ``(1, H, W, C)`` or ``(H, W, C)`` is accepted as well, and transposed to NCHW, but only when that
  shape is not also a valid NCHW reading (NCHW wins, so a (1, 3, 3, 3) input takes its array as NCHW).
- images ``.jpg .jpeg .png .bmp`` (needs Pillow) for 4-D inputs with 1 or 3 channels: read as RGB ('L' for one
  channel), resized with bilinear interpolation to the input's H, W when they differ (reported once through
  ``log``), channels swapped to BGR when ``rgb2bgr`` is set for that input (images only), then HWC -> NCHW float32
  with the 0..255 values unchanged (mean/std are applied by the model).
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import NpuError

__all__ = ["DatasetError", "load_dataset", "iter_dataset", "load_files", "IMAGE_EXTENSIONS", "SUPPORTED_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SUPPORTED_EXTENSIONS = (".npy",) + IMAGE_EXTENSIONS

InputSpec = Sequence[Tuple[str, Tuple[int, ...]]]
Sample = List[np.ndarray]


class DatasetError(NpuError):
    """The dataset file or one of its samples cannot be used; the message names the file and line."""


def _check_inputs(inputs: InputSpec) -> List[Tuple[str, Tuple[int, ...]]]:
    out = []
    try:
        items = list(inputs)
    except TypeError:
        raise DatasetError(f"inputs must be a list of (name, shape) pairs, got {inputs!r}") from None
    if not items:
        raise DatasetError("inputs must name at least one model input, got an empty list")
    for item in items:
        try:
            name, shape = item
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise DatasetError(f"inputs must be a list of (name, shape) pairs, got item {item!r}") from None
        if any(d < 1 for d in shape):
            raise DatasetError(f"input {name!r} needs a static shape of positive dims, got {shape}")
        out.append((str(name), shape))
    return out


def _check_rgb2bgr(rgb2bgr: Union[bool, Sequence[bool]], n: int) -> List[bool]:
    if isinstance(rgb2bgr, (bool, np.bool_)):
        return [bool(rgb2bgr)] * n
    try:
        flags = list(rgb2bgr)
    except TypeError:
        raise DatasetError(f"rgb2bgr must be True, False or a list of them (one per input), got {rgb2bgr!r}") from None
    if len(flags) != n or not all(isinstance(f, (bool, np.bool_)) for f in flags):
        raise DatasetError(f"rgb2bgr must be True, False or a list of {n} bools (one per model input), got {rgb2bgr!r}")
    return [bool(f) for f in flags]


def _resolve(token: str, base_dir: str) -> Optional[str]:
    if os.path.isabs(token):
        return token if os.path.isfile(token) else None
    for cand in (os.path.join(base_dir, token), token):
        if os.path.isfile(cand):
            return cand
    return None


def _fit_npy(arr: np.ndarray, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """The array in the input's shape, or None when no accepted layout matches (see module docstring)."""
    if arr.shape == shape:
        return arr
    if len(shape) >= 1 and shape[0] == 1 and arr.shape == shape[1:]:
        return arr.reshape(shape)
    if len(shape) == 4:
        n, c, h, w = shape
        if arr.shape == (n, h, w, c):
            return arr.transpose(0, 3, 1, 2)
        if n == 1 and arr.shape == (h, w, c):
            return arr.transpose(2, 0, 1)[None]
    return None


def _load_npy(path: str, where: str, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    try:
        with open(path, "rb") as fh:  # our own handle: an .npz under a .npy name is closed here too
            arr = np.load(fh, allow_pickle=False)
    except Exception as e:  # OSError, ValueError (pickled objects, bad header), EOFError, ...
        raise DatasetError(f"{where}: cannot read {path!r} as .npy ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive saved under a .npy name
        raise DatasetError(f"{where}: {path!r} is not a single .npy array (got {type(arr).__name__})")
    if arr.dtype.kind not in "biuf":
        raise DatasetError(
            f"{where}: {path!r} has dtype {arr.dtype}, not numeric; use a bool, int, uint or float array"
        )
    fitted = _fit_npy(arr, shape)
    if fitted is None:
        layouts = "NCHW, CHW or NHWC" if len(shape) == 4 else "that shape, or without its batch dim of 1"
        raise DatasetError(
            f"{where}: {os.path.basename(path)} has shape {arr.shape}, input {name!r} expects {shape} ({layouts})"
        )
    return np.ascontiguousarray(fitted, dtype=np.float32)


def _load_image(
    path: str, where: str, name: str, shape: Tuple[int, ...], swap: bool, note: Callable[[str], None]
) -> np.ndarray:
    if len(shape) != 4 or shape[0] != 1 or shape[1] not in (1, 3):
        raise DatasetError(
            f"{where}: image {os.path.basename(path)} cannot feed input {name!r} of shape {shape}: images feed "
            f"4-D inputs (1, C, H, W) with C = 1 or 3; give a .npy file"
        )
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError(
            f"{where}: reading image {path!r} needs Pillow: install it (pip install Pillow) or give the sample "
            f"as a .npy file"
        ) from None
    _, c, h, w = shape
    try:
        with Image.open(path) as im:
            im = im.convert("L" if c == 1 else "RGB")
            if im.size != (w, h):
                note(
                    f"resizing {os.path.basename(path)} from {im.size[0]}x{im.size[1]} to {w}x{h} (WxH, bilinear) "
                    f"for input {name!r}"
                )
                resample = getattr(Image, "Resampling", Image).BILINEAR
                im = im.resize((w, h), resample=resample)
            hwc = np.asarray(im, dtype=np.uint8)
    except DatasetError:
        raise
    except Exception as e:  # PIL.UnidentifiedImageError, OSError on truncated files
        raise DatasetError(f"{where}: cannot read image {path!r} ({type(e).__name__}: {e})") from None
    if hwc.ndim == 2:
        hwc = hwc[:, :, None]
    if swap and c == 3:
        hwc = hwc[:, :, ::-1]  # RGB -> BGR
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)[None], dtype=np.float32)


def iter_dataset(
    path: Union[str, os.PathLike],
    inputs: InputSpec,
    *,
    rgb2bgr: Union[bool, Sequence[bool]] = False,
    max_samples: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
) -> Iterator[Sample]:
    """Yields the samples of the dataset file one at a time (each a list of float32 NCHW arrays, one per input).

    The arguments and the dataset file's existence are checked at the call; each line is read and checked when
    its sample is reached, and an empty dataset raises at the end of the iteration.
    """
    specs = _check_inputs(inputs)
    swaps = _check_rgb2bgr(rgb2bgr, len(specs))
    if max_samples is not None and (
        isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 1
    ):
        raise DatasetError(f"max_samples must be None or a positive int, got {max_samples!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetError(
            f"dataset file {path!r} does not exist" if not os.path.exists(path) else f"dataset {path!r} is not a file"
        )
    return _iterate(path, specs, swaps, max_samples, log)


def _load_sample(tokens, specs, swaps, base_dir: str, where: str, note) -> Sample:
    """One sample: the files ``tokens`` (one per input; relative paths against ``base_dir``, then the
    working folder), each checked and fitted to its input's shape."""
    sample = []
    for tok, (name, shape), swap in zip(tokens, specs, swaps):
        ext = os.path.splitext(tok)[1].lower()
        if ext not in SUPPORTED_EXTENSIONS:
            raise DatasetError(
                f"{where}: {tok!r} has an unsupported extension {ext or '(none)'!r}; supported: "
                f"{', '.join(SUPPORTED_EXTENSIONS)}"
            )
        resolved = _resolve(tok, base_dir)
        if resolved is None:
            tried = tok if os.path.isabs(tok) else f"{os.path.join(base_dir, tok)} and {tok} in {os.getcwd()}"
            raise DatasetError(f"{where}: sample file {tok!r} not found (looked for {tried})")
        if ext == ".npy":
            sample.append(_load_npy(resolved, where, name, shape))
        else:
            sample.append(_load_image(resolved, where, name, shape, swap, note))
    return sample


def load_files(
    paths: Sequence[Union[str, os.PathLike]], inputs: InputSpec, *, rgb2bgr: Union[bool, Sequence[bool]] = False
) -> Sample:
    """One sample from files given directly (one path per model input), loaded as a dataset line's."""
    specs = _check_inputs(inputs)
    swaps = _check_rgb2bgr(rgb2bgr, len(specs))
    tokens = [os.fspath(p) for p in paths]
    if len(tokens) != len(specs):
        raise DatasetError(f"{len(tokens)} input file(s) for a model with {len(specs)} input(s) "
                           f"({', '.join(repr(n) for n, _ in specs)})")
    return _load_sample(tokens, specs, swaps, os.getcwd(), "input files", lambda msg: None)


def _iterate(path: str, specs, swaps, max_samples, log) -> Iterator[Sample]:
    base_dir = os.path.dirname(os.path.abspath(path))
    noted = [False]

    def note(msg: str) -> None:
        if log is not None and not noted[0]:
            noted[0] = True
            log(msg + " (further resizes are not reported)")

    count = 0
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"cannot open dataset file {path!r}: {e}") from None
    with f:
        try:
            for lineno, line in enumerate(f, start=1):
                if max_samples is not None and count >= max_samples:
                    break
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                where = f"{path} line {lineno}"
                tokens = text.split()
                if len(tokens) != len(specs):
                    raise DatasetError(
                        f"{path}: line {lineno} has {len(tokens)} path{'s' if len(tokens) != 1 else ''}, the model "
                        f"has {len(specs)} input{'s' if len(specs) != 1 else ''} "
                        f"({', '.join(repr(n) for n, _ in specs)}): {text!r}"
                    )
                count += 1
                yield _load_sample(tokens, specs, swaps, base_dir, where, note)
        except UnicodeDecodeError as e:
            raise DatasetError(f"dataset file {path!r} is not UTF-8 text ({e}); it must list sample paths") from None
    if count == 0:
        raise DatasetError(f"dataset file {path!r} holds no samples (only blank or '#' lines)")


def load_dataset(
    path: Union[str, os.PathLike],
    inputs: InputSpec,
    *,
    rgb2bgr: Union[bool, Sequence[bool]] = False,
    max_samples: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
) -> List[Sample]:
    """All samples of the dataset file (at most ``max_samples``): one list per sample holding one float32 array
    per model input, in the input's NCHW shape. ``inputs`` is the model's ``[(name, shape), ...]``."""
    return list(iter_dataset(path, inputs, rgb2bgr=rgb2bgr, max_samples=max_samples, log=log))
