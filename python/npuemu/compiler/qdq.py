"""QDQ models: the QuantizeLinear / DequantizeLinear pairs of quantization-aware training exports and of
onnxruntime's ``quantize_static(quant_format=QuantFormat.QDQ)`` carry the quantization the model's author
chose; a w8a8 build keeps it instead of re-deriving it by calibration.

:func:`fold_qdq` is the first pass of :func:`npuemu.compiler.prepare_graph`. It runs before constant
folding because folding ``DequantizeLinear(W int8)`` would leave a float weight and lose its int8 values.
It rewrites the graph into the float graph the QDQ model describes and records what an int8 build keeps
in a :class:`QuantParams` attached to the graph (``graph.quant``; graph copies share it):

- **activation pairs** ``x -> QuantizeLinear(s, z) -> DequantizeLinear(s, z) -> y``, per tensor, int8 or
  uint8: the pair is removed, readers of ``y`` read ``x``, and ``x`` gets the fixed (scale, int8 zero point).
  A uint8 (s, z) is the int8 (s, z - 128): ``q_u8 - z == (q_u8 - 128) - (z - 128)`` and the saturation
  bounds [0, 255] shift to [-128, 127] alike, so every quantized and every dequantized value is the same.
  When ``y`` is a graph output, ``x`` is renamed ``y`` (output names stay the model's).
- **weights** ``DequantizeLinear(W int8 / uint8 constant, s, z [, axis])`` read as the weight (input 1) of
  Conv / Gemm / MatMul: folded to its float value, and the int8 values ``W - z`` with the scales recorded
  (:class:`FixedWeight`); the lowering uses them as they are (:func:`weight_int8`). ``W - z`` must fit int8
  (the NPU's weights are symmetric: zero point 0); scales per tensor, or per output channel.
- **biases** ``DequantizeLinear(int32 constant, s, 0)`` read as the bias of Conv / Gemm: folded, the int32
  values and scales recorded (:class:`FixedBias`); the lowering keeps them where the model's bias scale is
  the ``x_scale * w_scale`` the NPU accumulates at (:func:`bias_int32`).
- every other Q / DQ of constants is folded to its value (ONNX semantics, exact).
- Q / DQ nodes fitting no pattern (a lone QuantizeLinear at a graph output, a pair with different
  parameters on its two sides, a pair requantizing the output of data movement / MaxPool) stay nodes: the
  lowering runs them on the CPU in float32. Their int8 / uint8 parameters still fix the tensor they read
  (a lone Q: the CPU op then gets the NPU's integers back) or write (a DQ: its values are on the grid).
- what an int8 NPU cannot keep (16-bit or blocked quantization, per-axis activations, weights whose zero
  point pushes ``W - z`` out of int8, per-input-channel weight scales, invalid scales) is recorded as
  refused: :meth:`QuantParams.check_w8a8` raises UnsupportedOpError naming the node and why before a w8a8
  build (float builds run the folded float values and keep such activation pairs as CPU ops). 4-bit and
  float8 tensors are refused by the importer.

The later passes keep every tensor with fixed parameters (frontend/passes._single_reader: nothing is fused
across one), so the int8 program rounds and saturates wherever the model does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Node, Value

__all__ = ["FixedWeight", "FixedBias", "QuantParams", "fold_qdq", "has_fixed_quantization", "weight_int8", "bias_int32"]

_Q, _DQ = "QuantizeLinear", "DequantizeLinear"
# ONNX TensorProto element types of QuantizeLinear's output_dtype attribute
_OUTPUT_DTYPES = {2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16}
# ops whose int8 lowering writes its output with the input's quantization (data movement and MaxPool; see
# compiler/lower.py _NPU_MOVE): a pair after one of them with other parameters is a requantization that
# the lowering would not do, so it stays (see _keeps_input_quant)
_KEEPS_QUANT = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Slice", "Split", "Gather",
                "Tile", "Expand", "DepthToSpace", "SpaceToDepth", "Resize", "MaxPool"}  # fmt: skip


@dataclass(frozen=True)
class FixedWeight:
    """int8 weights fixed by the model: ``float weight == q * scale`` (scale broadcast along ``axis``)."""

    q: np.ndarray  # int8, in the layout of the model's initializer
    scale: np.ndarray  # float32, (1,) per tensor or one per index of ``axis``
    axis: "int | None"  # the per-channel axis of q; None: per tensor
    node: str  # the DequantizeLinear it came from

    def dequantized(self) -> np.ndarray:
        shape = [1] * self.q.ndim
        if self.axis is not None:
            shape[self.axis] = -1
        return (self.q.astype(np.float32) * self.scale.reshape(shape if self.axis is not None else ())).astype(
            np.float32
        )


@dataclass(frozen=True)
class FixedBias:
    """int32 bias fixed by the model: ``float bias == q * scale``."""

    q: np.ndarray  # int32, 1-D
    scale: np.ndarray  # float32, (1,) or one per element of q
    node: str


@dataclass
class QuantParams:
    """The quantization a QDQ model fixes (see the module docs)."""

    activations: "dict[str, tuple[float, int]]" = field(default_factory=dict)  # tensor -> (scale, int8 zp)
    weights: "dict[str, FixedWeight]" = field(default_factory=dict)  # float weight constant -> its int8 form
    biases: "dict[str, FixedBias]" = field(default_factory=dict)  # float bias constant -> its int32 form
    refused: "list[tuple[str, str, str]]" = field(default_factory=list)  # (op type, node name, why)

    def check_w8a8(self) -> None:
        """Raises UnsupportedOpError for the first refused pattern (the message counts the others)."""
        if self.refused:
            op, name, why = self.refused[0]
            more = len(self.refused) - 1
            raise UnsupportedOpError(op, name, why + (f" ({more} more such Q/DQ nodes)" if more else ""))


# ------------------------------------------------------------------------------------------------------
# the pass


def has_fixed_quantization(graph: Graph) -> bool:
    """Whether QuantizeLinear / DequantizeLinear pairs of the model fix some activation's quantization
    (after :func:`fold_qdq`)."""
    return isinstance(graph.quant, QuantParams) and bool(graph.quant.activations)


def fold_qdq(graph: Graph) -> Graph:
    """The QDQ pass (see the module docs). Returns a new graph; its ``quant`` holds what the model fixes
    (None when it has no Q / DQ)."""
    from ..reference.executor import run_node

    g = graph.copy()
    old = graph.quant
    params = QuantParams(
        dict(old.activations), dict(old.weights), dict(old.biases), list(old.refused)
    ) if isinstance(old, QuantParams) else QuantParams()
    dead: "set[int]" = set()

    # 1. Q / DQ of constants -> constants (QAT exports write weights as QuantizeLinear(float W) -> DQ)
    for n in g.nodes:
        if n.op_type in (_Q, _DQ) and not n.domain and all(g.is_const(x) for x in n.inputs if x):
            try:
                outs = run_node(n, [np.asarray(g.const(x)) if x else None for x in n.inputs])
            except ValueError:  # types the reference does not run (float8, ...): left to the lowering
                continue
            if n.op_type == _DQ:
                _record_constant(g, n, params)
            g.set_const(n.outputs[0], np.asarray(outs[0]))
            dead.add(id(n))

    # 2. activation pairs, in graph order (readers of a removed pair's output are renamed as they come)
    cons = g.consumers()
    producers = g.producers()
    alias: "dict[str, str]" = {}  # DQ output -> the tensor before its Q
    out_rename: "dict[str, str]" = {}  # tensor before a Q -> the graph output name it takes
    # tensors on the grid of a Q / DQ that stays: an int8 tensor with those parameters holds their values
    # exactly (a lone Q's input: the CPU QuantizeLinear then gets the same integers back); pairs win
    on_grid: "dict[str, tuple[float, int]]" = {}
    for n in g.nodes:
        if id(n) in dead:
            continue
        n.inputs = [alias.get(i, i) for i in n.inputs]
        if n.op_type not in (_Q, _DQ) or n.domain or g.is_const(n.inputs[0]):
            continue
        qp = _int8_params(g, n, params, record=False)
        if n.op_type == _DQ:  # a DQ whose Q was not removed (or that has none): its output is on the grid
            if qp is not None:
                on_grid.setdefault(n.outputs[0], qp)
            continue
        x, qy = n.inputs[0], n.outputs[0]
        dqs = cons.get(qy, [])
        p = _params_of(g, n)
        if (not dqs or qy in g.outputs or p is None
                or any(r.op_type != _DQ or r.domain or r.inputs[0] != qy for r in dqs)
                or any(_params_of(g, r) is None or not _same(p, _params_of(g, r)) for r in dqs)):
            if qp is not None:  # a lone Q (a quantized graph output, ...): stays a CPU op
                on_grid.setdefault(x, qp)
            continue
        qp = _int8_params(g, n, params, record=True)  # a pair: types the NPU has not are refused
        if qp is None:
            continue
        removable = not (x in params.activations and params.activations[x] != qp)  # x quantized twice
        removable = removable and not _keeps_input_quant(g, x, qp, params, producers, alias)
        outs = [d.outputs[0] for d in dqs if d.outputs[0] in g.outputs]
        if outs and (len(outs) > 1 or x in g.inputs or x in g.outputs or x in out_rename):
            removable = False  # the pair writes a graph output whose name x cannot take
        if not removable:  # the pair stays (CPU ops, exact)
            for d in dqs:
                on_grid.setdefault(d.outputs[0], qp)
            continue
        params.activations[x] = qp
        dead.add(id(n))
        for d in dqs:
            dead.add(id(d))
            alias[d.outputs[0]] = x
        if outs:
            out_rename[x] = outs[0]

    for x, y in out_rename.items():
        for n in g.nodes:
            n.inputs = [y if i == x else i for i in n.inputs]
            n.outputs = [y if o == x else o for o in n.outputs]
            if n.attrs.get("_add") == x:
                n.attrs["_add"] = y
        v = g.values[x]
        g.values[y] = Value(y, v.shape, v.dtype)
        params.activations[y] = params.activations.pop(x)
        if x in on_grid:
            on_grid[y] = on_grid.pop(x)
    for v, qp in on_grid.items():
        params.activations.setdefault(v, qp)
    g.nodes = [n for n in g.nodes if id(n) not in dead]
    g.prune_values()
    g.quant = params if (params.activations or params.weights or params.biases or params.refused) else None
    return g


def _const_param(g: Graph, n: Node, i: int) -> "np.ndarray | None":
    x = n.input(i)
    return None if not x else np.asarray(g.const(x)) if g.is_const(x) else None


def _qtype(g: Graph, n: Node) -> np.dtype:
    """The integer type of a Q's output / a DQ's input."""
    zp = _const_param(g, n, 2)
    if zp is not None:
        return zp.dtype
    if n.op_type == _DQ:
        return g.values[n.inputs[0]].dtype
    return np.dtype(_OUTPUT_DTYPES.get(int(n.attrs.get("output_dtype", 0) or 2), np.uint8))


def _params_of(g: Graph, n: Node):
    """(dtype, scale array, zero-point array, axis, block size) of a Q / DQ, None if not constant."""
    s = _const_param(g, n, 1)
    if s is None or (n.input(2) and not g.is_const(n.input(2))):
        return None
    dt = _qtype(g, n)
    zp = _const_param(g, n, 2)
    zp = np.zeros(s.shape, dt) if zp is None else zp
    return dt, s.astype(np.float32), zp, int(n.attrs.get("axis", 1)), int(n.attrs.get("block_size", 0))


def _same(a, b) -> bool:
    return (
        a[0] == b[0]
        and a[1].shape == b[1].shape
        and np.array_equal(a[1], b[1])
        and np.array_equal(a[2], b[2])
        and (a[1].size == 1 or a[3] == b[3])
        and a[4] == b[4]
    )


def _int8_params(g: Graph, n: Node, params: QuantParams, record: bool) -> "tuple[float, int] | None":
    """(scale, int8 zero point) of a per-tensor int8 / uint8 Q / DQ; None otherwise, then with ``record``
    the reason an int8 NPU cannot keep it is recorded as refused."""
    p = _params_of(g, n)
    if p is None:
        return None
    dt, s, zp, _axis, block = p
    x = n.inputs[0]
    why = None
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        why = (f"{dt} activation quantization of {x!r}: the NPU's w8a8 build runs int8 activations; quantize the "
               "model with 8-bit activations (onnxruntime: activation_type=QuantType.QInt8 or QUInt8) or build it "
               "without quantization")
    elif s.size != 1 or block:
        why = (f"per-axis or blocked activation quantization of {x!r} (scale shape {s.shape}): the NPU quantizes "
               "activations per tensor")
    elif not (np.isfinite(s.reshape(-1)[0]) and s.reshape(-1)[0] > 0):
        why = f"activation scale {s.reshape(-1)[0]} of {x!r} is not a positive finite number"
    if why:
        if record:
            params.refused.append((n.op_type, n.name, why))
        return None
    # uint8 (s, z) == int8 (s, z - 128): see the module docs
    return float(s.reshape(-1)[0]), int(zp.reshape(-1)[0]) - (128 if dt == np.dtype(np.uint8) else 0)


def _keeps_input_quant(g: Graph, x: str, qp, params: QuantParams, producers, alias) -> bool:
    """x is written by data movement / MaxPool (which keep their input's quantization in an int8 build)
    from a tensor whose fixed quantization differs from ``qp``: the pair requantizes, so it stays."""
    p = producers.get(x)
    if p is None or p.op_type not in _KEEPS_QUANT or p.domain or not p.inputs:
        return False
    src = alias.get(p.inputs[0], p.inputs[0])
    return src in params.activations and params.activations[src] != qp


def _record_constant(g: Graph, dq: Node, params: QuantParams) -> None:
    """Records the int8 weights / int32 bias of a DequantizeLinear of constants read by Conv / Gemm /
    MatMul (or the reason an int8 NPU cannot keep them)."""
    y = dq.outputs[0]
    readers = [(r, i) for r in g.nodes for i, v in enumerate(r.inputs) if v == y]
    if not readers or y in g.outputs:
        return
    p = _params_of(g, dq)
    if p is None:
        return
    q = np.asarray(g.const(dq.inputs[0]))
    if all(r.op_type in ("Conv", "Gemm", "MatMul") and not r.domain and i == 1 for r, i in readers):
        res = _fixed_weight(q, p, readers, dq.name)
        if isinstance(res, str):
            params.refused.append((_DQ, dq.name, f"weight {y!r}: {res}"))
        else:
            params.weights[y] = res
    elif all(r.op_type in ("Conv", "Gemm") and not r.domain and i == 2 for r, i in readers):
        _dt, s, zp, _axis, block = p
        if q.dtype == np.int32 and q.ndim == 1 and not block and not np.any(zp) and s.size in (1, q.size):
            params.biases[y] = FixedBias(q.astype(np.int32), s.reshape(-1).astype(np.float32), dq.name)


def _out_axis(r: Node, ndim: int) -> "int | None":
    """The output-channel axis of the weight input of Conv / Gemm / MatMul (None: the lowering does not
    take this weight rank on the NPU anyway)."""
    if r.op_type == "Conv":
        return 0
    if r.op_type == "Gemm":
        return 0 if int(r.attrs.get("transB", 0)) else 1
    return 1 if ndim == 2 else None


def _fixed_weight(q: np.ndarray, p, readers, node: str) -> "FixedWeight | str":
    _dt, s, zp, axis, block = p
    if q.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        return f"{q.dtype} weights: the NPU's w8a8 weights are int8 (quantize the weights to QInt8)"
    if block:
        return (f"blocked quantization (block_size={block}): the NPU scales weights per output channel or per "
                "tensor")
    sf = s.reshape(-1)
    if not np.all(np.isfinite(sf)) or np.any(sf < 0):
        return f"weight scales must be finite and >= 0, got {sf[~(np.isfinite(sf) & (sf >= 0))][:4].tolist()}"
    per_channel = s.size != 1  # the DQ itself checked that a 1-D scale matches q's ``axis``
    ax = axis % q.ndim if per_channel else None
    if per_channel:
        for r, _ in readers:
            want = _out_axis(r, q.ndim)
            if want is not None and want != ax:
                return (f"per-channel scales along axis {ax} of a {q.ndim}-D weight, which is not the output-channel "
                        f"axis {want} of {r.op_type} {r.name!r}: the NPU scales weights per output channel")
    shape = [1] * q.ndim
    if per_channel:
        shape[ax] = -1
    v = q.astype(np.int32) - zp.astype(np.int32).reshape(shape if per_channel else ())
    scale = sf.astype(np.float32).copy()
    zero = scale == 0  # a zero scale makes the whole channel 0: any int8 value with any scale keeps it
    if np.any(zero):
        mask = zero.reshape(shape) if per_channel else np.broadcast_to(zero.reshape(()), v.shape)
        v = np.where(mask, 0, v)
        scale[zero] = np.float32(1.0)
    lo, hi = int(v.min(initial=0)), int(v.max(initial=0))
    if lo < -128 or hi > 127:
        zps = np.unique(zp).tolist()
        return (f"zero point {zps[0] if len(zps) == 1 else zps[:4]} gives weight values w - z in [{lo}, {hi}], "
                "outside int8: the NPU's int8 weights are symmetric (zero point 0); quantize the weights "
                "symmetric (onnxruntime: weight_type=QuantType.QInt8)")
    return FixedWeight(v.astype(np.int8), scale, ax, node)


# ------------------------------------------------------------------------------------------------------
# used by the lowering


def weight_int8(
    quant: "QuantParams | None",
    name: str,
    w: np.ndarray,
    per_channel: bool,
    axis: int,
    transpose: bool = False,
    log: "Callable[[str], None] | None" = None,
) -> "tuple[np.ndarray, np.ndarray]":
    """(int8 weights, float32 scales) for the float weight ``w`` (constant ``name``, transposed from the
    model's layout when ``transpose``) with output channels along ``axis``: the model's own when it fixes
    them and ``w`` is still exactly their value, else derived symmetric by ``quantize_weights``."""
    from .quantize import quantize_weights

    fw = quant.weights.get(name) if quant is not None and name else None
    if fw is not None:
        q, ax = (fw.q.T, None if fw.axis is None else fw.q.ndim - 1 - fw.axis) if transpose else (fw.q, fw.axis)
        deq = fw.dequantized().T if transpose else fw.dequantized()
        if q.shape == w.shape and np.array_equal(deq, w) and (ax is None or ax == axis):
            return np.ascontiguousarray(q), fw.scale.copy()
        if log is not None:
            log(f"weights {name!r}: the graph passes changed them since {fw.node!r} (or they are scaled): "
                "int8 weights derived again")
    return quantize_weights(w, per_channel, axis=axis)


def bias_int32(
    quant: "QuantParams | None", name: str, bias: "np.ndarray | None", x_scale: float, w_scale: np.ndarray,
    channels: int,
) -> "np.ndarray | None":
    """int32 bias at ``x_scale * w_scale[c]``: the model's own int32 values when it fixes them at that scale
    (to float32 rounding of the product: onnxruntime computes it in float32) and ``bias`` is still their
    value, else ``quantize_bias`` of the float bias (which gives the same integers while |q| < 2^24)."""
    from .quantize import quantize_bias

    fb = quant.biases.get(name) if quant is not None and name and bias is not None else None
    if fb is not None and fb.q.size in (1, channels):
        s = np.float64(np.float32(x_scale)) * np.broadcast_to(w_scale.astype(np.float64), (channels,))
        qb = np.broadcast_to(fb.q, (channels,))
        sb = np.broadcast_to(fb.scale.astype(np.float64), (channels,))
        same_value = np.array_equal((qb.astype(np.float32) * sb.astype(np.float32)).astype(np.float32),
                                    np.asarray(bias, np.float32).reshape(-1))
        if same_value and np.all(np.abs(sb - s) <= 2.0**-20 * s):
            return np.ascontiguousarray(qb, dtype=np.int32)
    return quantize_bias(bias, x_scale, w_scale, channels)
