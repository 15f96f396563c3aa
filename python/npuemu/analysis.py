"""Per-layer accuracy of a compiled program against the float32 golden graph (``RKNN.accuracy_analysis``).

For every layer (a node of the compiled graph whose output the program stores) two errors are measured on
one input, as rknn-toolkit2 reports them:

- *entire*: the program runs normally; the layer's stored output (dequantized) against the golden value.
  The error accumulated through every quantized layer before it.
- *single*: every step reads the golden values of its inputs (quantized to the step's input form), so
  the error is the layer's own.

Both use cosine similarity and Euclidean distance of the flattened tensors, in float64. The golden
values come from the float32 reference executor on the prepared graph (:func:`npuemu.reference.run_graph`),
an implementation independent of the core's kernels.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ir import Graph
from .runtime.modelfile import atomic_write
from .runtime.host import store
from .runtime.program import Program, TensorSpec

__all__ = ["LayerError", "layer_errors", "write_report", "format_table", "cosine"]


@dataclass
class LayerError:
    op_type: str
    name: str  # the layer's output tensor (graph value)
    node: str  # node name
    dtype: str  # storage of the output: int8, int16, float16, float32
    entire_cos: float
    entire_euc: float
    single_cos: float
    single_euc: float


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0 or not (np.isfinite(na) and np.isfinite(nb)):
        return 0.0
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def euclidean(a: np.ndarray, b: np.ndarray) -> float:
    d = np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()
    return float(np.sqrt(d @ d))


def _to_float(a: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.quantized:
        return (a.astype(np.float64) - spec.zero_point) * spec.scale
    return a.astype(np.float64)


def layer_errors(
    graph: Graph,
    prog: Program,
    raw_inputs: "list[np.ndarray]",
    golden_feeds: "dict[str, np.ndarray]",
    core_mask: int = 1,
    single: bool = True,
    log: "Callable[[str], None] | None" = None,
) -> "tuple[list[LayerError], dict[str, np.ndarray], dict[str, np.ndarray]]":
    """Per-layer errors of ``prog`` (compiled from the prepared ``graph``) on one sample: ``raw_inputs`` are
    the program's inputs (NCHW, before mean / std), ``golden_feeds`` the graph's (after). Returns the rows in
    graph order, the golden values and the program's values (float, by graph value name)."""
    from .reference import run_graph
    from .runtime.executor import Runtime

    values_of: "dict[str, str]" = prog.meta.get("values") or {}
    if not values_of:
        raise ValueError("the program has no tensor -> value map (compiled by an older npuemu); rebuild it")
    gold = run_graph(graph, golden_feeds, keep=True)
    if log:
        log("accuracy analysis: golden values computed")
    rt = Runtime(prog, core_mask=core_mask, keep_all=True)
    rt.run(list(raw_inputs))
    # the tensor each layer's output was first stored in (the form the layer produced)
    first: "dict[str, str]" = {}
    for t, v in values_of.items():
        first.setdefault(v, t)
    entire = {v: _to_float(rt.tensor(t), prog.tensors[t]) for v, t in first.items() if v in gold}
    if log:
        log("accuracy analysis: entire run done")
    single_vals: "dict[str, np.ndarray]" = {}
    if single:
        def feed_golden(s) -> None:
            for t in s.inputs:
                v = values_of.get(t)
                if v is not None and v in gold and t not in prog.consts and t not in prog.inputs:
                    buf = rt.tensor(t)
                    store(gold[v].reshape(buf.shape), prog.tensors[t], buf)

        def read_output(s) -> None:
            for t in s.outputs:
                v = values_of.get(t)
                if t and v is not None and first.get(v) == t and v not in single_vals:
                    single_vals[v] = _to_float(rt.tensor(t), prog.tensors[t])

        # the same runtime: the entire values are already copied out
        rt.run_stepwise(list(raw_inputs), feed_golden, read_output)
        if log:
            log("accuracy analysis: single-layer run done")
    rows: "list[LayerError]" = []
    for n in graph.nodes:
        for o in n.outputs:
            if not o or o not in entire or o not in gold or gold[o].dtype.kind != "f":
                continue
            g = gold[o]
            e = entire[o]
            sv = single_vals.get(o, e)
            rows.append(LayerError(n.op_type, o, n.name, prog.tensors[first[o]].dtype,
                                   cosine(e, g), euclidean(e, g), cosine(sv, g), euclidean(sv, g)))
    return rows, gold, entire


def format_table(rows: "list[LayerError]") -> str:
    """rknn-toolkit2's error table: ``[OpType] name | entire: cos, euc | single: cos, euc`` per layer."""
    w = max([len(f"[{r.op_type}] {r.name}") for r in rows] + [20])
    head = f"{'layer_name':<{w}}  {'dtype':<8} {'entire':>22}   {'single':>22}"
    sub = f"{'':<{w}}  {'':<8} {'cos':>10} {'euc':>11}   {'cos':>10} {'euc':>11}"
    lines = [head, sub, "-" * len(sub)]
    for r in rows:
        lines.append(f"{f'[{r.op_type}] {r.name}':<{w}}  {r.dtype:<8} {r.entire_cos:>10.5f} {r.entire_euc:>11.4g}   "
                     f"{r.single_cos:>10.5f} {r.single_euc:>11.4g}")
    return "\n".join(lines)


def _file_name(i: int, name: str) -> str:
    return f"{i:04d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:80]}.npy"


def write_report(output_dir: "str | os.PathLike", rows: "list[LayerError]", gold: dict, sim: dict,
                 outputs: "list[str]", header: str = "") -> str:
    """Writes ``error_analysis.txt``, ``golden/`` and ``simulator/`` (one .npy per layer, float32) and
    ``map_name_to_file.txt`` under ``output_dir``; returns the table's path. Files are written whole
    (temporary name, then rename)."""
    out = os.fspath(output_dir)
    for sub in ("golden", "simulator"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    mapping = []
    for i, r in enumerate(rows):
        fn = _file_name(i, r.name)
        mapping.append(f"{r.name} {fn}")
        for sub, src in (("golden", gold), ("simulator", sim)):
            buf = io.BytesIO()
            np.save(buf, np.asarray(src[r.name], np.float32))
            atomic_write(os.path.join(out, sub, fn), buf.getvalue())
    atomic_write(os.path.join(out, "map_name_to_file.txt"), "\n".join(mapping) + "\n")
    outs = [r for r in rows if r.name in outputs]
    text = (header + "\n\n" if header else "") + format_table(rows)
    if outs:
        text += "\n\noutputs (entire cos):\n" + "\n".join(f"  {r.name}: {r.entire_cos:.6f}" for r in outs)
    path = os.path.join(out, "error_analysis.txt")
    atomic_write(path, text + "\n")
    return path
