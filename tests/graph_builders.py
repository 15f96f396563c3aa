"""Small ONNX models built with onnx.helper for the frontend / passes tests, and an onnxruntime runner for
whole models (the independent oracle)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes, inputs: dict, outputs, inits: "dict | None" = None, opset: int = 17, value_info=None):
    """``inputs``: name -> (shape, numpy dtype) (a shape may hold strings for dynamic dims);
    ``outputs``: names (element type and shape left to inference) or name -> numpy dtype."""
    g_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), shape)
        for n, (shape, dt) in inputs.items()
    ]
    if isinstance(outputs, dict):
        g_outputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(dt)), None)
            for n, dt in outputs.items()
        ]
    else:
        g_outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
    g_inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()]
    graph = helper.make_graph(nodes, "test", g_inputs, g_outputs, g_inits, value_info=value_info or [])
    # IR version 8 keeps the model loadable by every onnxruntime release the test extra accepts.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def run_ort_model(model, feeds: dict) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def conv_weights(rng, m, c, k=3):
    return (rng.standard_normal((m, c, k, k)) * np.sqrt(2.0 / (c * k * k))).astype(np.float32)
