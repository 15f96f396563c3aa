"""The compiler: an imported graph -> NPU-ready graph passes -> calibration -> lowering to a program.

>>> prog = compile_graph(graph, LowerOptions(mode="w8a8"), samples=[{"x": x0}, {"x": x1}])
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..config import QUANTIZED_ALGORITHMS_IMPLEMENTED
from ..frontend import passes as P
from ..ir import Graph
from ..runtime.program import Program
from .lower import DEFAULT_LIMITS, MODES, LowerOptions, lower
from .qdq import QuantParams, fold_qdq, has_fixed_quantization
from .quantize import Ranges, calibrate, choose_kl, choose_mmse

ALGORITHMS = QUANTIZED_ALGORITHMS_IMPLEMENTED  # quantized_algorithm values the compiler runs

__all__ = [
    "prepare_graph", "compile_graph", "calibrate_ranges", "LowerOptions", "DEFAULT_LIMITS", "MODES", "Ranges",
    "calibrate", "fold_qdq", "QuantParams", "has_fixed_quantization",
]

# activations the output stage of the MAC array and of the DPU's Add apply in the integer domain
_OUTPUT_STAGE_ACTS = {"relu", "clip", "leaky_relu"}


def prepare_graph(graph: Graph) -> Graph:
    """The graph passes for the NPU: QuantizeLinear / DequantizeLinear patterns (:func:`fold_qdq`: first,
    while weights are still int8; ``graph.quant`` then holds the quantization the model fixes), constant
    folding, Identity removal, decomposed LayerNorm -> LayerNormalization, BatchNorm and per-channel affine
    folding, SiLU / HardSwish patterns, Relu / Clip / LeakyRelu fused into Conv / Gemm / MatMul (and Relu /
    Clip into Add), dead-node removal. Other activations stay separate nodes (the lowering turns them into
    lookup tables)."""
    g = _sum_to_add(P.fold_constants(fold_qdq(graph)))
    g = P.remove_identities(g)
    g = P.fuse_layer_norm(g)
    g = P.fold_batchnorm(g)
    g = P.fold_channel_affine(g)
    g = P.fuse_silu(g)
    g = P.fuse_activations(g, kinds=_OUTPUT_STAGE_ACTS, targets=("Conv", "Gemm", "MatMul"))
    g = P.fuse_activations(g, kinds={"relu", "clip"}, targets=("Add",))
    return P.eliminate_dead_nodes(g)


def _sum_to_add(graph: Graph) -> Graph:
    """Sum of two tensors is Add (older Caffe2 exports write residual connections as Sum)."""
    g = graph.copy()
    for n in g.nodes:
        if n.op_type == "Sum" and not n.domain and len(n.inputs) == 2:
            n.op_type = "Add"
    return g


def compile_graph(
    graph: Graph,
    opts: LowerOptions,
    samples: "Iterable[dict[str, np.ndarray]] | None" = None,
    n_samples: "int | None" = None,
    log: "Callable[[str], None] | None" = None,
    prepared: bool = False,
    algorithm: str = "normal",
) -> Program:
    """Compiles ``graph`` for ``opts.mode``. ``samples`` (graph input name -> normalized float32 array)
    calibrate a w8a8 build; a QDQ model whose pairs fix the quantization of its tensors builds without
    (tensors the pairs leave open then have no quantization: the lowering names the first)."""
    g = graph if prepared else prepare_graph(graph)
    if opts.mode == "float16" and not opts.layer_modes:
        # the float16 output stage applies HardSwish in float32 before its one rounding to float16 (integer
        # builds keep it a lookup table from int16, and hybrid builds keep their layers' tables)
        g = P.fuse_activations(P.fuse_hard_swish_arith(g), kinds={"hard_swish"}, targets=("Conv",))
    ranges = None
    if opts.mode == "w8a8":
        if algorithm not in ALGORITHMS:
            raise ValueError(f"quantized_algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
        if isinstance(g.quant, QuantParams):
            g.quant.check_w8a8()
            if log is not None and has_fixed_quantization(g):
                log(f"QDQ model: {len(g.quant.activations)} activation quantizations, {len(g.quant.weights)} int8 "
                    f"weights and {len(g.quant.biases)} int32 biases kept from the model")
        if samples is None:
            if has_fixed_quantization(g):
                return lower(g, opts, None, log)
            raise ValueError("a w8a8 build needs calibration samples (the model has no QuantizeLinear / "
                             "DequantizeLinear pairs fixing the quantization of its activations)")
        ranges = calibrate_ranges(g, samples, n_samples, log, algorithm)
    return lower(g, opts, ranges, log)


def calibrate_ranges(
    graph: Graph,
    samples: "Iterable[dict[str, np.ndarray]]",
    n_samples: "int | None" = None,
    log: "Callable[[str], None] | None" = None,
    algorithm: str = "normal",
) -> Ranges:
    """The activation ranges of the prepared ``graph`` over ``samples`` by ``algorithm`` ('normal': min /
    max; 'mmse': clipped where that lowers the int8 round-trip error; 'kl_divergence': clipped where that
    lowers the KL divergence between the tensor's distribution and its int8 form)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"quantized_algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if algorithm != "normal":
        samples = list(samples)
    ranges = calibrate(graph, samples, n_samples, log)
    if ranges.samples == 0:
        raise ValueError("the calibration dataset has no samples")
    if algorithm == "mmse":
        choose_mmse(graph, samples, ranges, log)
    elif algorithm == "kl_divergence":
        choose_kl(graph, samples, ranges, log)
    return ranges

