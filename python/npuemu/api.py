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
from .lite import ModelRunner, RKNNLite, _api, check_batch_inputs, checked_batch_size

__all__ = ["RKNN"]

_NOT_YET = "is not implemented yet in npuemu"
# auto_hybrid checks the model's outputs on the first samples of the dataset
_AUTO_HYBRID_SAMPLES = 4


class RKNN(RKNNLite):
    """rknn-toolkit2's ``RKNN`` (see the module docstring)."""

    def __init__(self, verbose: bool = False, verbose_file: "str | None" = None):
        super().__init__(verbose, verbose_file)
        self._config: Config = make_config()
        self._config_set = False
        self._graph = None
        self._build_info: dict = {}
        self._onnx_bytes: "bytes | None" = None
        self._load_args: "dict | None" = None

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
        self._onnx_bytes = _onnx_bytes(model)
        self._load_args = {
            "inputs": inputs,
            "input_size_list": [[int(d) for d in s] for s in input_size_list] if input_size_list else None,
            "outputs": outputs,
        }
        if input_initial_val is not None:
            self._load_args = None  # frozen input values are not kept in the hybrid data file
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

    def _lower_options(self, mode: str, layer_modes: "dict | None" = None):
        from .compiler import LowerOptions

        cfg = self._config
        means, stds = self._norm(self._graph)
        limits = cfg.platform.limits
        return LowerOptions(
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
            layer_modes=dict(layer_modes or {}),
            op_targets=dict(cfg.op_target or {}),
        )

    def _graph_feeds(self, sample: "list[np.ndarray]") -> "dict[str, np.ndarray]":
        """The graph's inputs for one sample of program inputs: mean / std applied (host.normalize)."""
        from .runtime.host import normalize

        g = self._graph
        means, stds = self._norm(g)
        return {name: normalize(x, m, s) for name, x, m, s in zip(g.inputs, sample, means, stds)}

    def _dataset_samples(self, dataset):
        """(iterator of (program inputs, graph feeds) per sample, sample count) of a dataset file."""
        from .dataset import iter_dataset

        if dataset is None:
            raise NpuError("a w8a8 build needs dataset='dataset.txt' (one calibration sample per line: .npy or "
                           "image paths)")
        if not isinstance(dataset, (str, os.PathLike)):
            raise TypeError(f"dataset must be the path of a dataset file, got {type(dataset).__name__}")
        specs = self._input_specs(self._graph)
        rgb = [self._config.rgb2bgr_for(i) for i in range(len(specs))]
        # checks the file; the samples are then read one at a time (the line count gives progress as i/n)
        raw = iter_dataset(dataset, specs, rgb2bgr=rgb, log=lambda m: self._log.info(m, always=True))
        n = sum(1 for _ in _sample_lines(dataset))
        return ((sample, self._graph_feeds(sample)) for sample in raw), n

    def _calibrate(self, gp, dataset, keep: int = 0):
        """Calibration ranges of the prepared graph over the dataset (the configured algorithm), and the
        first ``keep`` samples as (program inputs, graph feeds) pairs."""
        from .compiler import calibrate_ranges

        pairs, n = self._dataset_samples(dataset)
        kept: list = []

        def feeds():
            for raw, norm in pairs:
                if len(kept) < keep:
                    kept.append((raw, norm))
                yield norm

        ranges = calibrate_ranges(gp, feeds(), n, log=lambda m: self._log.info(m, always=True),
                                  algorithm=self._config.quantized_algorithm)
        return ranges, kept

    def _batch_size(self, rknn_batch_size) -> int:
        """``rknn_batch_size`` (None: 1) checked, and for more than 1 that the loaded model's inputs have
        batch 1 (build, hybrid_quantization_step1 and step2)."""
        if rknn_batch_size is None:
            return 1
        batch = checked_batch_size(rknn_batch_size)
        if batch > 1:
            check_batch_inputs({n: self._graph.values[n].shape for n in self._graph.inputs}, batch)
        return batch

    def _finish_build(self, prog, mode: str, t0: float, extra: "dict | None" = None, batch: int = 1) -> None:
        if batch > 1:
            prog.meta["rknn_batch_size"] = batch
            extra = {**(extra or {}), "rknn_batch_size": batch}
        summary = prog.summary()
        dt = time.perf_counter() - t0
        self._program = prog
        self._runner = None
        self._build_info = {"mode": mode, "platform": self._config.platform.name, "seconds": round(dt, 3),
                            **summary, **(extra or {})}
        hybrid = len(prog.meta.get("layer_modes") or {})
        self._log.info(
            f"build: {mode} for {self._config.platform.name}"
            + (f" ({hybrid} layers in float16)" if hybrid else "")
            + (f", rknn_batch_size {batch}" if batch > 1 else "")
            + f", {summary['NPU']} ops on the NPU, {summary['CPU']} on the CPU"
            + (f" ({', '.join(_cpu_ops(prog))})" if summary["CPU"] else "")
            + f", {dt:.1f} s",
            always=True,
        )

    @_api()
    def build(self, do_quantization: bool = True, dataset=None, rknn_batch_size=None, auto_hybrid: bool = False,
              **kwargs) -> int:
        """Compiles the loaded model: w8a8 with ``do_quantization=True`` (calibrated on ``dataset``; a QDQ
        model, whose QuantizeLinear / DequantizeLinear pairs fix its quantization, needs none), else
        float16 (or float32 with ``config(float_dtype='float32')``). ``auto_hybrid=True`` moves the layers
        whose cosine falls under ``config(auto_hybrid_cos_thresh=...)``, or whose Euclidean distance exceeds
        ``config(auto_hybrid_euc_thresh=...)`` when it is set, to float16 (see
        :mod:`npuemu.compiler.hybrid`)."""
        from .compiler import compile_graph, has_fixed_quantization, prepare_graph
        from .compiler.hybrid import auto_hybrid as choose
        from .compiler.lower import lower

        if kwargs:
            raise TypeError(f"build got unexpected arguments {sorted(kwargs)}; it takes do_quantization, dataset, "
                            f"rknn_batch_size, auto_hybrid")
        if self._graph is None:
            raise NpuError("no model: call load_onnx() first")
        if not isinstance(do_quantization, bool):
            raise TypeError(f"do_quantization must be True or False, got {do_quantization!r}")
        if not isinstance(auto_hybrid, bool):
            raise TypeError(f"auto_hybrid must be True or False, got {auto_hybrid!r}")
        batch = self._batch_size(rknn_batch_size)
        cfg = self._config
        if auto_hybrid and not do_quantization:
            raise NpuError("auto_hybrid=True mixes float16 into a w8a8 build: it needs do_quantization=True")
        if not do_quantization:
            cfg.check_float_build()
        mode = "w8a8" if do_quantization else cfg.float_dtype
        t0 = time.perf_counter()
        opts = self._lower_options(mode)
        gp = prepare_graph(self._graph)
        log = lambda m: self._log.info(m, always=True)  # noqa: E731
        extra = {}
        if mode == "w8a8" and gp.quant is not None:
            gp.quant.check_w8a8()  # what an int8 NPU cannot keep of a QDQ model, before asking for a dataset
        if mode == "w8a8" and dataset is None and not has_fixed_quantization(gp):
            raise NpuError("build(do_quantization=True) needs dataset='dataset.txt' (one calibration sample per "
                           "line: .npy or image paths); only QDQ models (QuantizeLinear / DequantizeLinear pairs) "
                           "build without one")
        if auto_hybrid and dataset is None:
            raise NpuError("auto_hybrid=True needs dataset='dataset.txt': it checks its choice on the samples")
        if mode != "w8a8" or dataset is None:
            prog = compile_graph(gp, opts, prepared=True, log=log)
        else:
            ranges, kept = self._calibrate(gp, dataset, keep=_AUTO_HYBRID_SAMPLES if auto_hybrid else 0)
            if auto_hybrid:
                prog, chosen, _ = choose(gp, opts, ranges, kept, cfg.auto_hybrid_cos_thresh, log=log,
                                         euc_thresh=cfg.auto_hybrid_euc_thresh)
                extra["auto_hybrid_layers"] = sorted(chosen)
            else:
                prog = lower(gp, opts, ranges, log)
        self._finish_build(prog, mode, t0, extra, batch)
        return 0

    # --- hybrid quantization -----------------------------------------------------------------------------
    @_api()
    def hybrid_quantization_step1(self, dataset=None, rknn_batch_size=None, proposal: bool = False,
                                  proposal_dataset_size: int = 1, custom_hybrid=None, **kwargs) -> int:
        """Calibrates on ``dataset`` and writes, in the current folder, ``<model>.model`` (the ONNX model),
        ``<model>.data`` (load options, config and calibration ranges; npuemu's model-file container) and
        ``<model>.quantization.cfg`` (edit ``custom_quantize_layers`` to put layers in float16; with
        ``custom_hybrid=[[input tensor, output tensor], ...]`` npuemu fills it with the layers between each
        pair, and with ``proposal=True`` with the layers auto_hybrid would choose, starting from those)."""
        from .compiler import prepare_graph
        from .compiler.hybrid import auto_hybrid as choose, subgraph_layers, write_cfg
        from .runtime import modelfile

        if kwargs:
            raise TypeError(f"hybrid_quantization_step1 got unexpected arguments {sorted(kwargs)}")
        if self._graph is None or self._onnx_bytes is None:
            raise NpuError("no model: call load_onnx() first")
        if self._load_args is None:
            raise NotImplementedError(f"hybrid quantization of a model loaded with input_initial_val {_NOT_YET}")
        batch = self._batch_size(rknn_batch_size)
        if not isinstance(proposal, bool):
            raise TypeError(f"proposal must be True or False, got {proposal!r}")
        if isinstance(proposal_dataset_size, bool) or not isinstance(proposal_dataset_size, int) or \
                proposal_dataset_size < 1:
            raise ValueError(f"proposal_dataset_size must be an int >= 1, got {proposal_dataset_size!r}")
        gp = prepare_graph(self._graph)
        chosen: dict = {} if custom_hybrid is None else subgraph_layers(gp, custom_hybrid)
        ranges, kept = self._calibrate(gp, dataset, keep=proposal_dataset_size if proposal else 0)
        if proposal:
            # auto_hybrid starts from the custom_hybrid layers and adds what the threshold still needs
            _, chosen, _ = choose(gp, self._lower_options("w8a8", chosen), ranges, kept,
                                  self._config.auto_hybrid_cos_thresh, log=lambda m: self._log.info(m, always=True),
                                  euc_thresh=self._config.auto_hybrid_euc_thresh)
        stem = self._model_stem()
        tensors = [o for n in gp.nodes for o in n.outputs if o and not gp.is_const(o)]
        data = {
            "kind": "npuemu hybrid quantization data",
            "load": self._load_args,
            "config": self._config.to_dict(),
            "ranges": {k: [ranges.lo[k], ranges.hi[k]] for k in ranges.lo},
            "clip": {k: list(v) for k, v in ranges.clip.items()},
            "samples": ranges.samples,
            "rknn_batch_size": batch,
        }
        modelfile.atomic_write(stem + ".model", self._onnx_bytes)
        modelfile.save(stem + ".data", _jsonable(data), {}, producer=f"npuemu {__version__}")
        write_cfg(stem + ".quantization.cfg", chosen, ranges, tensors,
                  note=f"written by npuemu {__version__} hybrid_quantization_step1"
                  + (" (proposal: the layers auto_hybrid chose)" if proposal else "")
                  + (f" (custom_hybrid: {len(chosen)} layers)" if custom_hybrid is not None and not proposal
                     else ""))
        self._log.info(f"wrote {stem}.model, {stem}.data, {stem}.quantization.cfg; edit the cfg, then call "
                       f"hybrid_quantization_step2", always=True)
        return 0

    @_api()
    def hybrid_quantization_step2(self, model_input, data_input, model_quantization_cfg, **kwargs) -> int:
        """Builds the w8a8 model with the float16 layers and int8 ranges of the (edited) cfg; the model and
        data files come from hybrid_quantization_step1. No calibration runs."""
        from .compiler import prepare_graph
        from .compiler.hybrid import read_cfg
        from .compiler.lower import lower
        from .compiler.quantize import Ranges
        from .config import make_config
        from .frontend import import_onnx
        from .runtime import modelfile

        if kwargs:
            raise TypeError(f"hybrid_quantization_step2 got unexpected arguments {sorted(kwargs)}")
        for what, p in (("model_input", model_input), ("data_input", data_input),
                        ("model_quantization_cfg", model_quantization_cfg)):
            if not isinstance(p, (str, os.PathLike)) or not os.path.isfile(p):
                raise NpuError(f"{what} {p!r} is not a file (hybrid_quantization_step1 writes it)")
        t0 = time.perf_counter()
        meta, _, _ = modelfile.load(data_input, mmap=False)
        if not isinstance(meta, dict) or meta.get("kind") != "npuemu hybrid quantization data":
            raise NpuError(f"{os.fspath(data_input)!r} is not a data file written by hybrid_quantization_step1")
        layers, user_ranges = read_cfg(model_quantization_cfg)
        load = meta.get("load") or {}
        cfg = make_config(**meta.get("config", {}))
        g = import_onnx(os.fspath(model_input), **load)
        self._config, self._graph = cfg, g
        self._onnx_bytes, self._load_args = None, load
        ranges = Ranges()
        for k, (lo, hi) in meta["ranges"].items():
            ranges.lo[k], ranges.hi[k] = float(lo), float(hi)
        ranges.clip = {k: (float(v[0]), float(v[1])) for k, v in meta.get("clip", {}).items()}
        ranges.samples = int(meta.get("samples", 1))
        unknown = sorted(set(user_ranges) - set(ranges.lo))
        if unknown:
            raise NpuError(f"the cfg gives quantize_parameters for unknown tensors {unknown[:5]}")
        for k, (lo, hi) in user_ranges.items():
            if ranges.get8(k) != (lo, hi):
                ranges.clip[k] = (lo, hi)
        gp = prepare_graph(g)
        prog = lower(gp, self._lower_options("w8a8", layers), ranges, lambda m: self._log.info(m, always=True))
        self._finish_build(prog, "w8a8", t0, {"hybrid_layers": sorted(layers)},
                           self._batch_size(meta.get("rknn_batch_size")))
        return 0

    def _model_stem(self) -> str:
        p = getattr(self, "_model_path", None)
        base = os.path.splitext(os.path.basename(p))[0] if p else "model"
        return base or "model"

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
        buffers), other (inputs and outputs, of every sample of an ``rknn_batch_size`` batch), total."""
        if self._runner is None:
            raise NpuError("call init_runtime() first")
        prog = self._program
        weight = int(sum(a.nbytes for a in prog.consts.values()))
        internal = int(self._runner.runtime.arena_bytes)
        other = 0
        for n in list(prog.inputs) + list(prog.outputs):
            t = prog.tensors[n]
            other += int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize * self._runner.batch
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

    @_api()
    def accuracy_analysis(self, inputs, output_dir: str = "./snapshot", target=None, device_id=None,
                          **kwargs) -> int:
        """Per-layer error of the built model against the float32 golden graph on one input (``inputs``: one
        path per model input, .npy NCHW or an image, or numpy arrays as for inference). Writes
        ``output_dir/error_analysis.txt`` (``[OpType] name | entire: cos, euc | single: cos, euc``),
        ``golden/`` and ``simulator/`` (one .npy per layer) and ``map_name_to_file.txt``; prints the table."""
        from .analysis import format_table, layer_errors, write_report
        from .compiler import prepare_graph

        if kwargs:
            raise TypeError(f"accuracy_analysis got unexpected arguments {sorted(kwargs)}")
        if self._program is None or self._graph is None:
            raise NpuError("accuracy_analysis needs the ONNX model and its build: call load_onnx() and build() "
                           "first (a model loaded with load_rknn has no float graph to compare with)")
        plat = self._platform()
        if target is not None and (not isinstance(target, str) or target.lower() != plat):
            raise NpuError(f"target {target!r}: npuemu analyses on its emulator of {plat}; use target=None")
        if device_id is not None:
            raise NpuError("device_id is for boards; npuemu's emulator takes device_id=None")
        if not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"output_dir must be a folder path, got {type(output_dir).__name__}")
        raw = self._analysis_inputs(inputs)
        feeds = self._graph_feeds(raw)
        gp = prepare_graph(self._graph)
        t0 = time.perf_counter()
        rows, gold, sim = layer_errors(gp, self._program, raw, feeds, core_mask=1,
                                       log=lambda m: self._log.info(m, always=True))
        mode = self._build_info.get("mode", "?")
        head = (f"npuemu {__version__} accuracy analysis: {mode} build for {plat}, {len(rows)} layers; "
                f"golden = float32 reference graph\n"
                f"entire: the layer's output in the quantized run; single: the layer fed golden inputs")
        path = write_report(output_dir, rows, gold, sim, list(gp.outputs), header=head)
        print(format_table(rows))
        self._log.info(f"accuracy analysis written to {path} ({time.perf_counter() - t0:.1f} s)", always=True)
        return 0

    def _analysis_inputs(self, inputs) -> "list[np.ndarray]":
        from .dataset import load_files

        g = self._graph
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(g.inputs):
            raise NpuError(f"inputs must be a list of {len(g.inputs)} input(s) (file paths or arrays), one per "
                           f"model input {list(g.inputs)}")
        if all(isinstance(x, (str, os.PathLike)) for x in inputs):
            rgb = [self._config.rgb2bgr_for(i) for i in range(len(inputs))]
            return load_files(inputs, self._input_specs(g), rgb2bgr=rgb)
        if all(isinstance(x, np.ndarray) for x in inputs):
            return ModelRunner(self._program, 1, one_sample=True).prepare_inputs(list(inputs), None)
        raise NpuError("inputs must be all file paths or all numpy arrays")

    def get_sdk_version(self):
        return f"npuemu {__version__} (emulator)"

    @_api()
    def release(self) -> int:
        self._runner = None
        self._program = None
        self._graph = None
        return 0


def _onnx_bytes(model) -> bytes:
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            return f.read()
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    return model.SerializeToString()


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
