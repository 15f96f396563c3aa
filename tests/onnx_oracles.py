"""Independent oracles: run one ONNX node with onnxruntime or onnx.reference.ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
from onnx import helper


def make_node_model(op_type: str, inputs: dict, out_dtype, attrs=None, opset: int = 13, domain: str = ""):
    """A one-node model whose graph inputs are `inputs` (name -> array) and one output 'y'."""
    names = list(inputs)
    node = helper.make_node(op_type, names, ["y"], domain=domain or None, **(attrs or {}))
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.asarray(v).shape)
        for n, v in inputs.items()
    ]
    out = helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype)), None)
    graph = helper.make_graph([node], op_type.lower(), graph_inputs, [out])
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    # IR version 8 keeps the model loadable by every onnxruntime release the test extra accepts.
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def run_ort(op_type: str, inputs: dict, out_dtype, attrs=None, opset: int = 13, domain: str = ""):
    import onnxruntime as ort

    model = make_node_model(op_type, inputs, out_dtype, attrs, opset, domain)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {n: np.asarray(v) for n, v in inputs.items()}
    return sess.run(None, feeds)[0]


def run_reference(op_type: str, inputs: dict, out_dtype, attrs=None, opset: int = 13):
    from onnx.reference import ReferenceEvaluator

    model = make_node_model(op_type, inputs, out_dtype, attrs, opset)
    return ReferenceEvaluator(model).run(None, {n: np.asarray(v) for n, v in inputs.items()})[0]
