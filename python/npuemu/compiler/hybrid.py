"""Hybrid quantization: some layers of a w8a8 build run in float16.

- :func:`auto_hybrid` chooses the layers (``build(auto_hybrid=True)`` and ``hybrid_quantization_step1
  (proposal=True)``): every layer whose own error (accuracy analysis, *single* cosine) is under the
  threshold moves to float16 together with the producers of its inputs (a layer's error comes mostly from
  the int8 quantization of what it reads, which the producer writes); then, while an output of the model
  is still under the threshold on the samples, the next-worst layers follow (2, 4, 8, ... per round).
  With a Euclidean threshold as well (``config(auto_hybrid_euc_thresh=...)``), a layer or an output also
  fails when its Euclidean distance to the float result (*single* for layers; in the units of the tensor)
  is above it: either test failing is enough.
- :func:`write_cfg` / :func:`read_cfg`: the ``<model>.quantization.cfg`` file of the two-step flow, in
  rknn-toolkit2's layout (YAML: ``custom_quantize_layers`` and ``quantize_parameters``). npuemu writes and
  reads the subset of YAML it needs (block mappings, quoted or plain keys, flow lists of numbers), so it
  needs no YAML library; anything else in the file is refused with its line number.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Callable

import numpy as np

from ..ir import Graph
from ..runtime.program import Program
from .lower import LowerOptions, lower
from .quantize import Ranges, activation_qparams

__all__ = ["auto_hybrid", "subgraph_layers", "write_cfg", "read_cfg", "CfgError"]


class CfgError(ValueError):
    """A quantization cfg file npuemu cannot read (the message names the line)."""


# --- automatic choice -----------------------------------------------------------------------------------


def _output_errors(graph: Graph, prog: Program, samples: list, golds: list) -> "tuple[float, float]":
    """The worst cosine and the worst Euclidean distance of any output on any sample against the golden
    outputs."""
    from ..analysis import cosine, euclidean
    from ..runtime.executor import Runtime

    rt = Runtime(prog, core_mask=1)
    cos, euc = 1.0, 0.0
    for (raw, _), gold in zip(samples, golds):
        got = rt.run(list(raw))
        cos = min([cos] + [cosine(a, gold[i]) for i, a in enumerate(got)])
        euc = max([euc] + [euclidean(a, gold[i]) for i, a in enumerate(got)])
    return cos, euc


def auto_hybrid(
    graph: Graph,
    opts: LowerOptions,
    ranges: Ranges,
    samples: "list[tuple[list, dict]]",
    thresh: float = 0.98,
    max_rounds: int = 7,
    log: "Callable[[str], None] | None" = None,
    euc_thresh: "float | None" = None,
) -> "tuple[Program, dict[str, str], list]":
    """Chooses float16 layers for a w8a8 build of the prepared ``graph`` (see the module docstring).
    ``samples``: (program inputs, graph feeds after mean / std) pairs; the layer errors come from the first,
    the output check from all. ``thresh``: the cosine threshold; ``euc_thresh``: the Euclidean one, or None.
    Returns the program, the chosen ``{node name: 'float16'}`` and the accuracy rows of the all-int8
    build."""
    from ..analysis import layer_errors
    from ..reference import run_graph

    if not samples:
        raise ValueError("auto_hybrid needs at least one sample")
    say = log or (lambda s: None)
    base = replace(opts, layer_modes=dict(opts.layer_modes))
    prog = lower(graph, base, ranges)
    rows, gold0, _ = layer_errors(graph, prog, samples[0][0], samples[0][1])
    golds = [[gold0[o] for o in graph.outputs]]
    for _, feeds in samples[1:]:
        out = run_graph(graph, feeds)
        golds.append([out[o] for o in graph.outputs])
    producer = graph.producers()
    by_name = {n.name: n for n in graph.nodes}
    # candidates: layers computed on the NPU in integers, worst own error first
    cand = sorted((r for r in rows if r.dtype in ("int8", "int16")), key=lambda r: r.single_cos)
    chosen: "dict[str, str]" = dict(base.layer_modes)

    def take(node_name: str) -> None:
        chosen[node_name] = "float16"
        for x in by_name[node_name].inputs:
            p = producer.get(x)
            if p is not None and not graph.is_const(x) and graph.values[x].dtype.kind == "f":
                chosen[p.name] = "float16"

    def fails(cos: float, euc: float) -> bool:
        return cos < thresh or (euc_thresh is not None and euc > euc_thresh)

    for r in cand:
        if fails(r.single_cos, r.single_euc):
            take(r.node)
    limits = f"threshold {thresh}" + ("" if euc_thresh is None else f", Euclidean threshold {euc_thresh:g}")
    k = 2
    for rnd in range(max_rounds + 1):
        if chosen:
            prog = lower(graph, replace(base, layer_modes=dict(chosen)), ranges)
        cos, euc = _output_errors(graph, prog, samples, golds)
        say(f"auto_hybrid: {len(chosen)} layers in float16, worst output cosine {cos:.5f}"
            + ("" if euc_thresh is None else f", Euclidean distance {euc:.4g}")
            + f" on {len(samples)} sample(s) ({limits})")
        if not fails(cos, euc) or rnd == max_rounds:
            break
        rest = [r for r in cand if r.node not in chosen]
        if not rest:
            break
        for r in rest[:k]:
            take(r.node)
        k *= 2
    return prog, chosen, rows


def subgraph_layers(graph: Graph, pairs) -> "dict[str, str]":
    """``hybrid_quantization_step1(custom_hybrid=[[input, output], ...])``: every layer of the prepared
    ``graph`` on a path from each pair's input tensor to its output tensor (the output's producer included,
    the input's not), as ``{node name: 'float16'}``. Tensors are named as in the graph (rknn-toolkit2's
    '<name>_shape4' resolves to '<name>')."""
    from .lower import resolve_name

    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(f"custom_hybrid must be a non-empty list of [input tensor, output tensor] pairs, got "
                         f"{pairs!r}")
    producer = graph.producers()
    tensors = set(producer) | set(graph.inputs)
    chosen: "dict[str, str]" = {}
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(t, str) for t in pair):
            raise ValueError(f"custom_hybrid entries are [input tensor, output tensor] pairs of names, got {pair!r}")
        start, end = (resolve_name(tensors, t) for t in pair)
        for given, got in zip(pair, (start, end)):
            if got is None:
                raise ValueError(f"custom_hybrid pair {list(pair)!r}: no tensor {given!r} in the compiled graph "
                                 f"(tensors are the model's inputs and layer outputs accuracy_analysis lists)")
        if end not in producer:
            raise ValueError(f"custom_hybrid pair {list(pair)!r}: {pair[1]!r} is a model input, not a layer output")
        # layers reading start, transitively, then those of them the end depends on
        after, reach = {start}, set()
        for n in graph.nodes:  # topological order; refs: a fused Add's operand is read too
            if any(x in after for x in n.refs):
                reach.add(id(n))
                after.update(o for o in n.outputs if o)
        if end not in after:
            raise ValueError(f"custom_hybrid pair {list(pair)!r}: {pair[1]!r} is not computed from {pair[0]!r}")
        need, todo = set(), [end]
        while todo:
            n = producer.get(todo.pop())
            if n is None or id(n) in need or id(n) not in reach:
                continue
            need.add(id(n))
            todo.extend(n.refs)
        for n in graph.nodes:
            if id(n) in need:
                chosen[n.name] = "float16"
    return chosen


# --- the cfg file ---------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")


def _key(s: str) -> str:
    return s if _PLAIN.match(s) and s not in ("true", "false", "null", "yes", "no", "on", "off") else json.dumps(s)


def _num(v: float) -> str:
    return repr(float(v))


def write_cfg(path, layer_modes: "dict[str, str]", ranges: Ranges, tensors: "list[str]", note: str = "") -> None:
    """Writes the cfg: the float16 layers and, per int8 activation tensor, its range and (scale, zero point)."""
    lines = [
        "# npuemu hybrid quantization config (rknn-toolkit2's layout).",
        "# custom_quantize_layers: the layers (output tensor or node names) to run in float16, one per line:",
        "#     <name>: float16",
        "# quantize_parameters: the int8 range of each activation tensor; an edited min / max is used as given",
        "# (scale and zero_point are derived from them).",
    ]
    if note:
        lines += [f"# {ln}" for ln in note.splitlines()]
    if layer_modes:
        lines.append("custom_quantize_layers:")
        lines += [f"    {_key(k)}: {v}" for k, v in layer_modes.items()]
    else:
        lines.append("custom_quantize_layers: {}")
    lines.append("quantize_parameters:")
    for t in tensors:
        r = ranges.get8(t)
        if r is None:
            continue
        s, z = activation_qparams(*r)
        lines += [
            f"    {_key(t)}:",
            "        qtype: asymmetric_quantized",
            "        qmethod: layer",
            "        dtype: int8",
            f"        min: [{_num(r[0])}]",
            f"        max: [{_num(r[1])}]",
            f"        scale: [{_num(s)}]",
            f"        zero_point: [{int(z)}]",
        ]
    from ..runtime.modelfile import atomic_write

    atomic_write(path, "\n".join(lines) + "\n")


def _strip_comment(s: str) -> str:
    out, q = [], None
    for ch in s:
        if q:
            out.append(ch)
            if ch == q:
                q = None
        elif ch in "\"'":
            q = ch
            out.append(ch)
        elif ch == "#":
            break
        else:
            out.append(ch)
    return "".join(out).rstrip()


def _parse_key(s: str, where: str) -> str:
    s = s.strip()
    if s.startswith('"'):
        try:
            return json.loads(s)
        except json.JSONDecodeError as e:
            raise CfgError(f"{where}: bad quoted name {s}: {e}") from None
    if s.startswith("'"):
        if len(s) < 2 or not s.endswith("'"):
            raise CfgError(f"{where}: bad quoted name {s}")
        return s[1:-1].replace("''", "'")
    if not s:
        raise CfgError(f"{where}: empty name")
    return s


def _parse_value(s: str, where: str):
    s = s.strip()
    if s == "{}":
        return {}
    if s.startswith("["):
        if not s.endswith("]"):
            raise CfgError(f"{where}: unterminated list {s}")
        body = s[1:-1].strip()
        try:
            return [float(x) for x in body.split(",")] if body else []
        except ValueError:
            raise CfgError(f"{where}: lists hold numbers, got {s}") from None
    if s.startswith(("'", '"')):
        return _parse_key(s, where)
    return s


def _split_key(s: str, where: str) -> "tuple[str, str]":
    """'key: value' with a quoted or plain key."""
    s = s.strip()
    if s[:1] in "\"'":
        q = s[0]
        i = 1
        while i < len(s):
            if s[i] == "\\" and q == '"':
                i += 2
                continue
            if s[i] == q:
                if q == "'" and s[i + 1: i + 2] == "'":
                    i += 2
                    continue
                break
            i += 1
        rest = s[i + 1:].lstrip()
        if not rest.startswith(":"):
            raise CfgError(f"{where}: expected ':' after {s[:i + 1]}")
        return _parse_key(s[: i + 1], where), rest[1:].strip()
    if ":" not in s:
        raise CfgError(f"{where}: expected 'name: value', got {s!r}")
    i = s.index(": ") if ": " in s else len(s) - 1 if s.endswith(":") else -1
    if i < 0:
        raise CfgError(f"{where}: expected 'name: value', got {s!r}")
    return _parse_key(s[:i], where), s[i + 1:].strip()


def read_cfg(path) -> "tuple[dict[str, str], dict[str, tuple[float, float]]]":
    """Reads a cfg: (layer -> dtype, tensor -> (min, max)). Raises :class:`CfgError` naming the line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise CfgError(f"{path}: not a text file") from None
    root: dict = {}
    stack: "list[tuple[int, dict]]" = [(-1, root)]
    for no, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{no}"
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise CfgError(f"{where}: indent with spaces, not tabs")
        line = _strip_comment(raw)
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip())
        while stack and ind <= stack[-1][0]:
            stack.pop()
        if not stack:
            raise CfgError(f"{where}: bad indentation")
        parent = stack[-1][1]
        if not isinstance(parent, dict):
            raise CfgError(f"{where}: unexpected nesting")
        k, v = _split_key(line, where)
        if k in parent:
            raise CfgError(f"{where}: {k!r} given twice")
        if v == "":
            d: dict = {}
            parent[k] = d
            stack.append((ind, d))
        else:
            parent[k] = _parse_value(v, where)
    unknown = sorted(set(root) - {"custom_quantize_layers", "quantize_parameters"})
    if unknown:
        raise CfgError(f"{path}: unknown section(s) {unknown}; a cfg has custom_quantize_layers and "
                       f"quantize_parameters")
    layers = root.get("custom_quantize_layers") or {}
    if not isinstance(layers, dict):
        raise CfgError(f"{path}: custom_quantize_layers must be a mapping 'name: float16'")
    for k, v in layers.items():
        if not isinstance(v, str):
            raise CfgError(f"{path}: layer {k!r}: the dtype must be a name (float16 or int8), got {v!r}")
    params = root.get("quantize_parameters") or {}
    if not isinstance(params, dict):
        raise CfgError(f"{path}: quantize_parameters must be a mapping")
    rng: "dict[str, tuple[float, float]]" = {}
    for t, p in params.items():
        if not isinstance(p, dict) or "min" not in p or "max" not in p:
            raise CfgError(f"{path}: tensor {t!r} needs min and max")
        lo, hi = p["min"], p["max"]
        if not (isinstance(lo, list) and isinstance(hi, list) and len(lo) == 1 and len(hi) == 1):
            raise CfgError(f"{path}: tensor {t!r}: min and max are one-element lists (per-tensor int8)")
        lo, hi = float(lo[0]), float(hi[0])
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
            raise CfgError(f"{path}: tensor {t!r}: min {lo} > max {hi} or not finite")
        if p.get("dtype", "int8") != "int8":
            raise CfgError(f"{path}: tensor {t!r}: dtype {p.get('dtype')!r}; only int8 activations are supported")
        rng[t] = (lo, hi)
    return dict(layers), rng
