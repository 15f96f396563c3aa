"""``RKNNLite``: the small runtime of rknn-toolkit-lite2, on the emulated NPU.

Loads a model file written by ``RKNN.export_rknn`` and runs it. It imports neither onnx nor the compiler,
so an application that only runs models needs numpy and npuemu's core.

>>> from npuemu import RKNNLite
>>> lite = RKNNLite()
>>> lite.load_rknn("model.npuemu")                   # 0 on success, -1 on failure (logged: E load_rknn: ...)
>>> lite.init_runtime(core_mask=RKNNLite.NPU_CORE_0_1_2)
>>> outputs = lite.inference(inputs=[img])           # list of float32 arrays (None on failure)
>>> lite.release()
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from typing import Any, Callable

import numpy as np

from .errors import ModelError, NpuError
from .runtime.program import Program

__all__ = ["RKNNLite", "ModelRunner"]

_FORMATS = ("nhwc", "nchw")


class _Log:
    """The vendor tools' log lines: ``I ...``, ``W ...``, ``E <method>: <reason>``, to stderr (and to
    ``verbose_file`` when given). Info lines show only with verbose=True, except the build summary."""

    def __init__(self, verbose: bool = False, verbose_file: "str | None" = None):
        self.verbose = bool(verbose)
        self.file = verbose_file

    def _emit(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        if self.file:
            try:
                with open(self.file, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError:
                pass

    def info(self, msg: str, always: bool = False) -> None:
        if self.verbose or always:
            self._emit(f"I {msg}")

    def warning(self, msg: str) -> None:
        self._emit(f"W {msg}")

    def error(self, method: str, msg: str) -> None:
        self._emit(f"E {method}: {msg}")


def _api(fail: Any = -1):
    """Wraps a public method: errors become ``E <method>: <reason>`` and the vendor's failure value."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except (NpuError, TypeError, ValueError, OSError, NotImplementedError, KeyError, IndexError) as e:
                self._log.error(fn.__name__, str(e) if str(e) else type(e).__name__)
                if self._log.verbose:
                    self._log._emit(traceback.format_exc())
                return fail
            except MemoryError:
                self._log.error(fn.__name__, "out of memory")
                return fail
            except Exception as e:  # a bug of npuemu: still never abort the caller's process
                self._log.error(fn.__name__, f"internal error ({type(e).__name__}: {e}); please report it")
                if self._log.verbose:
                    self._log._emit(traceback.format_exc())
                return fail

        return wrapper

    return deco


def checked_batch_size(v) -> int:
    """An ``rknn_batch_size`` value: an int >= 1 (not a bool)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"rknn_batch_size must be None or an int >= 1, got {v!r}")
    return int(v)


def check_batch_inputs(shapes: "dict[str, Any]", batch: int) -> None:
    """``rknn_batch_size=batch`` (> 1) needs every input (name -> shape) to have a first dimension of 1."""
    for n, shape in shapes.items():
        if shape is None or len(shape) == 0 or shape[0] != 1:
            raise NpuError(f"rknn_batch_size={batch} needs a model whose inputs have batch 1; input {n!r} has shape "
                           f"{None if shape is None else tuple(shape)} (load_onnx(inputs=..., input_size_list=...) "
                           f"can fix it)")


def batch_size(prog: Program) -> int:
    """The samples per inference of ``prog`` (1 unless built with ``rknn_batch_size``)."""
    try:
        v = checked_batch_size(prog.meta.get("rknn_batch_size", 1))
        if v > 1:
            check_batch_inputs({n: prog.tensors[n].shape for n in prog.inputs}, v)
    except ValueError as e:
        raise ModelError(f"the model file: {e}") from None
    return v


class ModelRunner:
    """A program prepared to run, with the user-facing input checks and layout conversion.

    A program built with ``rknn_batch_size=N`` takes N samples stacked on the first axis of every input
    and returns its outputs stacked the same way; the emulator runs the one-sample program on each
    sample in turn, so sample i's outputs are those of an inference on sample i alone."""

    def __init__(self, prog: Program, core_mask: int, one_sample: bool = False):
        from .runtime.executor import Runtime

        self.prog = prog
        self.batch = 1 if one_sample else batch_size(prog)
        self.runtime = Runtime(prog, core_mask)
        self.names = list(prog.meta.get("input_names") or prog.inputs)
        self.shapes = [(self.batch, *prog.tensors[n].shape[1:]) if self.batch > 1 else prog.tensors[n].shape
                       for n in prog.inputs]

    def prepare_inputs(self, inputs, data_format) -> "list[np.ndarray]":
        n = len(self.shapes)
        if isinstance(inputs, np.ndarray):
            raise TypeError("inputs must be a list of numpy arrays (one per model input), got one array; pass [array]")
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"inputs must be a list of numpy arrays, got {type(inputs).__name__}")
        if len(inputs) != n:
            raise ValueError(f"the model has {n} input{'s' if n != 1 else ''} ({', '.join(self.names)}), got {len(inputs)}")
        if data_format is None:
            fmts = ["nhwc"] * n
        elif isinstance(data_format, str):
            fmts = [data_format] * n
        elif isinstance(data_format, (list, tuple)) and len(data_format) == n:
            fmts = list(data_format)
        else:
            raise ValueError(f"data_format must be 'nhwc', 'nchw' or a list of them (one per input), got {data_format!r}")
        out = []
        for i, (a, fmt, shape, name) in enumerate(zip(inputs, fmts, self.shapes, self.names)):
            if not isinstance(fmt, str) or fmt.lower() not in _FORMATS:
                raise ValueError(f"data_format {fmt!r} is not valid; choose one of {', '.join(_FORMATS)}")
            fmt = fmt.lower()
            if not isinstance(a, np.ndarray):
                raise TypeError(f"input {i} ({name!r}) must be a numpy array, got {type(a).__name__}")
            if a.dtype.kind not in "uif" or a.dtype.itemsize > 8:
                raise TypeError(
                    f"input {i} ({name!r}) has dtype {a.dtype}; use uint8, int8, float16 or float32 (also int16/32, float64)"
                )
            if len(shape) == 4:
                want_nchw = tuple(shape)
                want = (shape[0], shape[2], shape[3], shape[1]) if fmt == "nhwc" else want_nchw
                arr = a
                if arr.ndim == 3 and shape[0] == 1 and self.batch == 1:
                    arr = arr[None]
                if tuple(arr.shape) != want:
                    raise ValueError(
                        f"input {i} ({name!r}) has shape {a.shape}; with data_format='{fmt}' the model expects "
                        f"{want} (NCHW {want_nchw})"
                    )
                if fmt == "nhwc":
                    arr = arr.transpose(0, 3, 1, 2)
            else:
                arr = a
                if tuple(arr.shape) != tuple(shape):
                    if self.batch == 1 and arr.size == int(np.prod(shape)) and arr.ndim == len(shape) + 1 and \
                            arr.shape[0] == 1:
                        arr = arr.reshape(shape)
                    else:
                        raise ValueError(f"input {i} ({name!r}) has shape {a.shape}, the model expects {tuple(shape)}")
            out.append(np.ascontiguousarray(arr))
        return out

    def run(self, inputs, data_format=None) -> "list[np.ndarray]":
        xs = self.prepare_inputs(inputs, data_format)
        if self.batch == 1:
            return self.runtime.run(xs)
        per_sample = [self.runtime.run([x[b:b + 1] for x in xs]) for b in range(self.batch)]
        return [np.concatenate([outs[k] for outs in per_sample], axis=0) if per_sample[0][k].ndim else
                np.stack([outs[k] for outs in per_sample]) for k in range(len(per_sample[0]))]


class RKNNLite:
    """rknn-toolkit-lite2's ``RKNNLite`` on the emulated NPU (see module docstring)."""

    NPU_CORE_AUTO = 0
    NPU_CORE_0 = 1
    NPU_CORE_1 = 2
    NPU_CORE_2 = 4
    NPU_CORE_0_1 = 3
    NPU_CORE_0_1_2 = 7
    NPU_CORE_ALL = 0xFFFF

    def __init__(self, verbose: bool = False, verbose_file: "str | None" = None):
        self._log = _Log(verbose, verbose_file)
        self._program: "Program | None" = None
        self._platform_name: "str | None" = None
        self._runner: "ModelRunner | None" = None
        self._model_path: "str | None" = None

    # --- context manager ---------------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # --- model file ----------------------------------------------------------------------------------------
    def _load_file(self, path) -> None:
        from .runtime import modelfile

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path, got {type(path).__name__}")
        meta, arrays, _info = modelfile.load(path)
        if not isinstance(meta, dict) or "program" not in meta:
            raise NpuError(f"{os.fspath(path)!r} is an npuemu file but holds no compiled model")
        prog = Program.from_parts(meta["program"], arrays)
        self._program = prog
        self._platform_name = str(meta.get("platform") or "rk3588")
        self._runner = None
        self._model_path = os.fspath(path)
        self._log.info(f"loaded {self._model_path}: {meta.get('build', {})} for {self._platform_name}")

    @_api()
    def load_rknn(self, path) -> int:
        """Loads a model file written by ``RKNN.export_rknn`` (npuemu's own format, not Rockchip's .rknn)."""
        self._load_file(path)
        return 0

    def _init_runtime(self, core_mask) -> None:
        from .platforms import get_platform

        if self._program is None:
            raise NpuError("no model: call load_rknn() first")
        plat = get_platform(self._platform_name or "rk3588")
        mask = plat.check_core_mask(core_mask)
        self._runner = ModelRunner(self._program, mask)

    @_api()
    def init_runtime(self, core_mask: int = NPU_CORE_AUTO, **kwargs) -> int:
        unknown = set(kwargs) - {"target", "device_id", "rknn2precompile"}
        if unknown:
            raise TypeError(f"init_runtime got unexpected arguments {sorted(unknown)}; RKNNLite takes core_mask")
        self._init_runtime(core_mask)
        return 0

    @_api(fail=None)
    def inference(self, inputs, data_format=None, inputs_pass_through=None):
        """Runs one inference; returns a list of float32 arrays (None on failure, as the vendor runtime)."""
        if self._runner is None:
            raise NpuError("the runtime is not initialized: call init_runtime() first")
        if inputs_pass_through is not None and any(inputs_pass_through):
            raise NotImplementedError("inputs_pass_through is not implemented yet in npuemu")
        return self._runner.run(inputs, data_format)

    @_api()
    def release(self) -> int:
        self._runner = None
        self._program = None
        return 0
