"""Independent oracles for what a number format costs a real model: onnxruntime running the same ONNX model

- after onnxruntime's own static int8 quantization (``onnxruntime.quantization.quantize_static``: QDQ
  format, int8 weights symmetric per output channel, int8 activations asymmetric per tensor, min / max
  calibration on the calibration samples given), i.e. w8a8 as another toolchain implements it;
- with every float tensor rounded to float16 where it is stored, the arithmetic of every op in float32, i.e.
  float16 storage as the FP16 NPU build has it: the graph after onnxruntime's basic optimizations
  (constant folding, BatchNormalization folded into Conv, as npuemu's compiler does), then each node's
  outputs and the graph's inputs through a Cast to float16 and back, float initializers rounded the same way.

Neither shares code with npuemu's quantizer, compiler or kernels, so where npuemu misses an accuracy bar
they say whether the format itself misses it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_FLOAT = TensorProto.FLOAT


def _fixed_model(path: "str | Path", input_name: str, shape) -> onnx.ModelProto:
    """The model with ``input_name`` fixed to ``shape``, at opset 13 or later (per-channel QDQ needs 13)."""
    m = onnx.load(str(path))
    for i in m.graph.input:
        if i.name == input_name:
            for dim, v in zip(i.type.tensor_type.shape.dim, shape):
                dim.ClearField("dim_param")
                dim.dim_value = int(v)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        from onnx import version_converter

        m = version_converter.convert_version(m, 13)
    return m


def _session(model: "onnx.ModelProto | str"):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    # no graph rewrites: the rounding points are the ones this module puts in the graph
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def ort_static_int8(path: "str | Path", input_name: str, shape, calib: "list[dict[str, np.ndarray]]"):
    """An onnxruntime session of the model quantized by onnxruntime's own static int8 quantizer."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calib)

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as d:
        fixed, pre, q = (os.path.join(d, n) for n in ("fixed.onnx", "pre.onnx", "q.onnx"))
        onnx.save(_fixed_model(path, input_name, shape), fixed)
        quant_pre_process(fixed, pre, skip_symbolic_shape=True)
        quantize_static(pre, q, _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        return _session(q)


def _basic_optimized(m: onnx.ModelProto) -> onnx.ModelProto:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "opt.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = out
        ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return onnx.load(out)


def float16_storage_model(path: "str | Path", input_name: str, shape) -> onnx.ModelProto:
    """The model with every float32 tensor rounded to float16 where it is stored (see the module doc)."""
    m = _basic_optimized(_fixed_model(path, input_name, shape))
    m = onnx.shape_inference.infer_shapes(m)
    g = m.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.output) + list(g.input)}
    for init in g.initializer:
        if init.data_type == _FLOAT:
            a = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(a, init.name))

    def round_trip(src: str, dst: str) -> list:
        return [helper.make_node("Cast", [src], [dst + "__f16"], to=TensorProto.FLOAT16),
                helper.make_node("Cast", [dst + "__f16"], [dst], to=_FLOAT)]

    nodes = []
    inits = {i.name for i in g.initializer}
    for inp in g.input:
        if inp.name not in inits and types.get(inp.name) == _FLOAT:
            rounded = inp.name + "__rounded"
            for n in g.node:
                n.input[:] = [rounded if x == inp.name else x for x in n.input]
            nodes += round_trip(inp.name, rounded)
    for n in g.node:
        outs = list(n.output)
        casts = []
        for j, o in enumerate(outs):
            if o and types.get(o) == _FLOAT:
                n.output[j] = o + "__f32"
                casts += round_trip(o + "__f32", o)
        nodes.append(n)
        nodes += casts
    del g.node[:]
    g.node.extend(nodes)
    return m


def ort_float16_storage(path: "str | Path", input_name: str, shape):
    """An onnxruntime session of :func:`float16_storage_model`."""
    return _session(float16_storage_model(path, input_name, shape))
