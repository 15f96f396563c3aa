"""``RKNN``: rknn-toolkit2's PC-side API on the emulated NPU.

Existing scripts run by changing one import (``from rknn.api import RKNN`` -> ``from npuemu import RKNN``).
Every method returns 0 on success and -1 on failure, logging ``E <method>: <reason>``; ``inference`` returns
the outputs (None on failure). No option combination aborts the process.

>>> rknn = RKNN()
>>> rknn.config(mean_values=[[0, 0, 0]], std_values=[[255, 255, 255]], target_platform="rk3588")
>>> rknn.load_onnx("model.onnx")
>>> rknn.build(do_quantization=True, dataset="dataset.txt")
>>> rknn.export_rknn("model.npuemu")             # npuemu's own model file, not Rockchip's .rknn
>>> rknn.init_runtime()                           # the emulator (target=None or the configured platform)
>>> outputs = rknn.inference(inputs=[img])        # img: NHWC uint8 or float32
>>> rknn.release()
"""

from __future__ import annotations

import os
import time

import numpy as np

from . import __version__
from .config import Config, make_config
from .errors import NpuError
from .lite import ModelRunner, RKNNLite, _api

__all__ = ["RKNN"]

_NOT_YET = "is not implemented yet in npuemu"


class RKNN(RKNNLite):
    """rknn-toolkit2's ``RKNN`` (see the module docstring)."""

    def __init__(self, verbose: bool = False, verbose_file: "str | None" = None):
        super().__init__(verbose, verbose_file)
        self._config: Config = make_config()
        self._config_set = False
        self._graph = None
        self._build_info: dict = {}

    # --- config ------------------------------------------------------------------------------------------
    @_api()
    def config(self, **kwargs) -> int:
        """Validates and stores the build options (rknn-toolkit2 keywords); -1 lists the valid values."""
        cfg = make_config(**kwargs)
        if self._graph is not None:
            cfg.check_input_count(len(self._graph.inputs))
        self._config = cfg
        self._config_set = True
        if cfg.platform_is_default:
            self._log.info("target_platform not given: rk3588 assumed")
        return 0

    # --- loading -----------------------------------------------------------------------------------------
    @_api()
    def load_onnx(self, model, inputs=None, input_size_list=None, input_initial_val=None, outputs=None) -> int:
        """Imports an ONNX model (path or ModelProto); ``inputs`` + ``input_size_list`` fix dynamic input
        shapes, ``outputs`` cuts the graph."""
        from .frontend import import_onnx

        g = import_onnx(model, inputs=inputs, input_size_list=input_size_list, outputs=outputs,
                        input_initial_val=input_initial_val)
        for name in g.inputs:
            shape = g.values[name].shape
            if shape is None or any(d is None or d < 1 for d in shape):
                raise NpuError(
                    f"input {name!r} has a dynamic shape {shape}; give its size with inputs=[...] and "
                    f"input_size_list=[[...]]"
                )
        self._config.check_input_count(len(g.inputs))
        self._graph = g
        self._program = None
        self._runner = None
        self._model_path = model if isinstance(model, str) else None
        self._log.info(f"loaded ONNX model: {len(g.nodes)} nodes, inputs {g.inputs}, outputs {g.outputs}")
        return 0

    def _unsupported_loader(self, what: str) -> int:
        self._log.error(f"load_{what}", f"load_{what} {_NOT_YET}; export the model to ONNX and use load_onnx")
        return -1

    def load_pytorch(self, *a, **k) -> int:
        return self._unsupported_loader("pytorch")

    def load_tflite(self, *a, **k) -> int:
        return self._unsupported_loader("tflite")

    def load_tensorflow(self, *a, **k) -> int:
        return self._unsupported_loader("tensorflow")

    def load_caffe(self, *a, **k) -> int:
        return self._unsupported_loader("caffe")

    def load_darknet(self, *a, **k) -> int:
        return self._unsupported_loader("darknet")

    def load_paddle(self, *a, **k) -> int:
        return self._unsupported_loader("paddle")

    # --- build -------------------------------------------------------------------------------------------
    def _input_specs(self, g) -> "list[tuple[str, tuple[int, ...]]]":
        return [(n, tuple(g.values[n].shape)) for n in g.inputs]

    def _norm(self, g) -> "tuple[list, list]":
        means, stds = [], []
        for i, name in enumerate(g.inputs):
            shape = g.values[name].shape
            ch = shape[1] if len(shape) >= 2 else 1
            if self._config.mean_values is None and self._config.std_values is None:
                means.append(None)
                stds.append(None)
                continue
            means.append(self._config.means_for(i, ch, name))
            stds.append(self._config.stds_for(i, ch, name))
        return means, stds

    @_api()
    def build(self, do_quantization: bool = True, dataset=None, rknn_batch_size=None, auto_hybrid: bool = False,
              **kwargs) -> int:
        """Compiles the loaded model: w8a8 with ``do_quantization=True`` (calibrated on ``dataset``; a QDQ
        model, whose QuantizeLinear / DequantizeLinear pairs fix its quantization, needs none), else
        float16 (or float32 with ``config(float_dtype='float32')``)."""
        from .compiler import LowerOptions, compile_graph, has_fixed_quantization, prepare_graph
        from .dataset import iter_dataset
        from .runtime.host import normalize

        if kwargs:
            raise TypeError(f"build got unexpected arguments {sorted(kwargs)}; it takes do_quantization, dataset, "
                            f"rknn_batch_size, auto_hybrid")
        if self._graph is None:
            raise NpuError("no model: call load_onnx() first")
        if not isinstance(do_quantization, bool):
            raise TypeError(f"do_quantization must be True or False, got {do_quantization!r}")
        if rknn_batch_size not in (None, 1):
            raise NotImplementedError(f"rknn_batch_size={rknn_batch_size!r} {_NOT_YET} (only None or 1)")
        if auto_hybrid:
            raise NotImplementedError(f"auto_hybrid {_NOT_YET}")
        cfg = self._config
        g = self._graph
        plat = cfg.platform
        if do_quantization:
            mode = "w8a8"
            if dataset is not None and not isinstance(dataset, (str, os.PathLike)):
                raise TypeError(f"dataset must be the path of a dataset file, got {type(dataset).__name__}")
        else:
            cfg.check_float_build()
            mode = cfg.float_dtype
        t0 = time.perf_counter()
        means, stds = self._norm(g)
        limits = plat.limits
        opts = LowerOptions(
            mode=mode,
            per_channel=cfg.quantized_method == "channel",
            limits={
                "conv_kernel": limits.conv_kernel[1],
                "conv_stride": limits.conv_stride[1],
                "conv_pad": limits.conv_pad[1],
                "conv_dilation": limits.conv_dilation[1],
                "dw_kernel": limits.depthwise_kernel[1],
                "pool_kernel": limits.pool_kernel[1],
                "pool_stride": limits.pool_stride[1],
            },
            means=means,
            stds=stds,
        )
        gp = prepare_graph(g)
        samples = None
        n = None
        if mode == "w8a8" and gp.quant is not None:
            gp.quant.check_w8a8()  # what an int8 NPU cannot keep of a QDQ model, before asking for a dataset
        if mode == "w8a8" and dataset is None and not has_fixed_quantization(gp):
            raise NpuError("build(do_quantization=True) needs dataset='dataset.txt' (one calibration sample per "
                           "line: .npy or image paths); only QDQ models (QuantizeLinear / DequantizeLinear pairs) "
                           "build without one")
        if mode == "w8a8" and dataset is not None:
            specs = self._input_specs(g)
            rgb = [cfg.rgb2bgr_for(i) for i in range(len(specs))]
            # checks the file; the samples are then read one at a time (the line count gives progress as i/n)
            raw = iter_dataset(dataset, specs, rgb2bgr=rgb, log=lambda m: self._log.info(m, always=True))
            n = sum(1 for _ in _sample_lines(dataset))
            samples = (
                {name: normalize(x, m, s) for (name, _), x, m, s in zip(specs, sample, means, stds)} for sample in raw
            )
        prog = compile_graph(gp, opts, samples, n, log=lambda m: self._log.info(m, always=True), prepared=True,
                             algorithm=cfg.quantized_algorithm)
        summary = prog.summary()
        dt = time.perf_counter() - t0
        self._program = prog
        self._runner = None
        self._build_info = {"mode": mode, "platform": plat.name, "seconds": round(dt, 3), **summary}
        self._log.info(
            f"build: {mode} for {plat.name}, {summary['NPU']} ops on the NPU, {summary['CPU']} on the CPU"
            + (f" ({', '.join(_cpu_ops(prog))})" if summary["CPU"] else "")
            + f", {dt:.1f} s",
            always=True,
        )
        return 0

    # --- export / load -----------------------------------------------------------------------------------
    @_api()
    def export_rknn(self, export_path, cpp_gen_cfg=None, **kwargs) -> int:
        """Writes the built model to ``export_path`` in npuemu's own format (docs/model-format.md): it is not
        Rockchip's .rknn and runs only on npuemu (RKNN.load_rknn or RKNNLite)."""
        from .runtime import modelfile

        if self._program is None:
            raise NpuError("no built model: call build() (or load_rknn()) first")
        if not isinstance(export_path, (str, os.PathLike)):
            raise TypeError(f"export_path must be a file path, got {type(export_path).__name__}")
        meta, arrays = self._program.to_parts()
        header = {
            "program": meta,
            "platform": self._platform(),
            "build": self._build_info,
            "config": self._config.to_dict(),
        }
        modelfile.save(export_path, _jsonable(header), arrays, producer=f"npuemu {__version__}")
        self._log.info(f"exported {os.fspath(export_path)}")
        return 0

    def _platform(self) -> str:
        return self._platform_name if (self._program is not None and not self._config_set and
                                       self._platform_name) else self._config.platform.name

    @_api()
    def load_rknn(self, path, load_model_in_npu: bool = False) -> int:
        """Loads a model file written by export_rknn; init_runtime() and inference() then run it."""
        self._load_file(path)
        self._graph = None
        self._config_set = False
        return 0

    # --- runtime -----------------------------------------------------------------------------------------
    @_api()
    def init_runtime(self, target=None, device_id=None, perf_debug: bool = False, eval_mem: bool = False,
                     async_mode: bool = False, core_mask: int = RKNNLite.NPU_CORE_AUTO, **kwargs) -> int:
        """Prepares the emulator for inference. ``target``: None or the configured platform (the emulated
        NPU); ``core_mask``: RKNN's values, checked against the platform's cores."""
        if kwargs:
            raise TypeError(f"init_runtime got unexpected arguments {sorted(kwargs)}")
        plat = self._platform()
        if target is not None:
            if not isinstance(target, str) or target.lower() != plat:
                raise NpuError(
                    f"target {target!r}: npuemu runs models on its emulator of {plat}; use target=None or "
                    f"target='{plat}' (no board connection)"
                )
        if device_id is not None:
            raise NpuError("device_id is for boards; npuemu's emulator takes device_id=None")
        if async_mode:
            raise NotImplementedError(f"async_mode {_NOT_YET}")
        if self._program is None:
            raise NpuError("no model: call build() or load_rknn() first")
        from .platforms import get_platform

        mask = get_platform(plat).check_core_mask(core_mask)
        self._runner = ModelRunner(self._program, mask)
        return 0

    # --- analysis ------------------------------------------------------------------------------------------
    @_api()
    def eval_memory(self, is_print: bool = True):
        """Memory of the prepared model in bytes: weights (constants), internal (planned intermediate
        buffers), other (inputs and outputs), total."""
        if self._runner is None:
            raise NpuError("call init_runtime() first")
        prog = self._program
        weight = int(sum(a.nbytes for a in prog.consts.values()))
        internal = int(self._runner.runtime.arena_bytes)
        other = 0
        for n in list(prog.inputs) + list(prog.outputs):
            t = prog.tensors[n]
            other += int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
        res = {"weight_memory": weight, "internal_memory": internal, "other_memory": other,
               "total_memory": weight + internal + other}
        if is_print:
            lines = ["=" * 44, " Memory Profile Info Dump", "=" * 44]
            lines += [f"{k:>16}: {v / 2**20:10.2f} MiB ({v} bytes)" for k, v in res.items()]
            print("\n".join(lines))
        return res

    def _not_yet(self, method: str) -> int:
        self._log.error(method, f"{method} {_NOT_YET}")
        return -1

    def eval_perf(self, is_print: bool = True, **kwargs):
        return self._not_yet("eval_perf")

    def accuracy_analysis(self, inputs, output_dir: str = "./snapshot", target=None, **kwargs):
        return self._not_yet("accuracy_analysis")

    def hybrid_quantization_step1(self, *a, **k):
        return self._not_yet("hybrid_quantization_step1")

    def hybrid_quantization_step2(self, *a, **k):
        return self._not_yet("hybrid_quantization_step2")

    def get_sdk_version(self):
        return f"npuemu {__version__} (emulator)"

    @_api()
    def release(self) -> int:
        self._runner = None
        self._program = None
        self._graph = None
        return 0


def _sample_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if s and not s.startswith("#"):
                yield s


def _cpu_ops(prog) -> "list[str]":
    from collections import Counter

    c = Counter(s.op_type for s in prog.steps if s.target == "CPU" and s.kind not in ("input", "output", "cast"))
    return [f"{k} x{v}" if v > 1 else k for k, v in sorted(c.items())]


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v
