"""Graph passes over npuemu's IR. Every pass returns a new graph (the argument is left as it was) whose
outputs equal the original ones up to float32 rounding (weight folding reassociates products).

- :func:`fold_constants`: runs the golden executor on nodes whose inputs are all constant, and on
  Shape / Size of statically shaped tensors, so shape-computing subgraphs collapse to constants.
  QuantizeLinear / DequantizeLinear are kept by default: their structure carries quantization parameters.
- :func:`remove_identities`: drops Identity and inference-mode Dropout.
- :func:`fold_batchnorm`: folds inference BatchNormalization into the preceding Conv / ConvTranspose /
  Gemm, or turns it into a per-channel Mul + Add when there is none.
- :func:`fold_channel_affine`: folds Mul / Div / Add / Sub by per-channel constants into the preceding
  Conv / ConvTranspose / Gemm, and merges chains of such constant affine ops into one Mul + Add.
- :func:`fuse_silu`: Mul(x, Sigmoid(x)) -> Swish (alpha 1, i.e. SiLU), Mul(x, Sigmoid(Mul(x, beta))) with a
  scalar beta (PaddlePaddle's swish export) -> Swish (alpha beta); Mul(x, HardSigmoid(x, 1/6, 1/2))
  -> HardSwish.
- :func:`fuse_hard_swish_arith`: x * Clip(x + 3, 0, 6) / 6 (or * 1/6; PaddlePaddle's export; the Clip may
  already be fused into the Add) -> HardSwish. Not in :func:`optimize`: the compiler applies it where one
  HardSwish op is cheaper than the chain (float16 builds fuse it into the convolution).
- :func:`fuse_layer_norm`: the decomposed LayerNorm of exporters without the op (ReduceMean, Sub, Pow 2 or
  Mul, ReduceMean, Add eps, Sqrt, Div or Mul by Reciprocal, then optionally Mul gamma and Add beta, over
  the trailing axes) -> LayerNormalization (opset 17 semantics): one op computed in float32, instead of
  nine whose intermediates (the squared deviations above all) would each be rounded to the storage dtype.
- :func:`fuse_conv_add`: Conv whose only reader is an Add (or 2-input Sum) with a same-shape tensor ->
  ``conv.attrs['_add'] = that tensor``.
- :func:`fuse_activations`: activation after Conv / ConvTranspose / Gemm / MatMul whose output has that
  single reader -> ``node.attrs['_act']`` (see :mod:`npuemu.ir`).
- :func:`eliminate_dead_nodes`: drops nodes nothing needed reads.
- :func:`optimize`: all of the above in that order.

A node is only rewritten when the tensor being absorbed has exactly one reader and is not a graph output
(nor a tensor a QDQ model quantizes), so every graph output and every tensor that stays visible keeps its
value.
"""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node

__all__ = [
    "fold_constants",
    "remove_identities",
    "fold_batchnorm",
    "fold_channel_affine",
    "fuse_silu",
    "fuse_hard_swish_arith",
    "fuse_layer_norm",
    "fuse_conv_add",
    "fuse_activations",
    "eliminate_dead_nodes",
    "optimize",
    "is_foldable",
    "fold_node",
    "shape_dependent_inputs",
]

# ops never folded: random generators (values differ per run) and, by default, Q/DQ (kept for the
# quantizer)
_NONDETERMINISTIC = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}
_QDQ = {"QuantizeLinear", "DequantizeLinear"}

# input positions whose values (not only shapes) determine the output shape
_SHAPE_INPUTS = {
    "Reshape": {1},
    "Expand": {1},
    "Tile": {1},
    "ConstantOfShape": {0},
    "Range": {0, 1, 2},
    "Slice": {1, 2, 3, 4},
    "Pad": {1, 3},
    "Resize": {2, 3},
    "Upsample": {1},
    "Squeeze": {1},
    "Unsqueeze": {1},
    "Split": {1},
    "TopK": {1},
    "OneHot": {1},
    "ReduceSum": {1},
    "ReduceMean": {1},
    "ReduceMax": {1},
    "ReduceMin": {1},
    "ReduceProd": {1},
    "ReduceL1": {1},
    "ReduceL2": {1},
    "ReduceLogSum": {1},
    "ReduceLogSumExp": {1},
    "ReduceSumSquare": {1},
    "CumSum": set(),
    "NonZero": {0},
    "Compress": {1},
}


def shape_dependent_inputs(node: Node) -> "set[int]":
    return _SHAPE_INPUTS.get(node.op_type, set())


# ------------------------------------------------------------------------------------------------------
# helpers


def _consumers(graph: Graph) -> "dict[str, list[Node]]":
    return graph.consumers()


def _visible(graph: Graph, name: str) -> bool:
    """Whether tensor ``name`` must stay a tensor: a graph output, or a tensor whose quantization a QDQ model
    fixes (``graph.quant``, compiler/qdq.py): the model rounds and saturates there, and the int8 build keeps
    that tensor to do the same."""
    fixed = getattr(graph.quant, "activations", None) or {}
    return name in graph.outputs or name in fixed


def _single_reader(graph: Graph, name: str, cons) -> bool:
    """Whether a pass may absorb tensor ``name`` into its only reader (see :func:`_visible`)."""
    return not _visible(graph, name) and len(cons.get(name, [])) == 1


def _rename_refs(graph: Graph, old: str, new: str) -> None:
    for n in graph.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
        if n.attrs.get("_add") == old:
            n.attrs["_add"] = new
    graph.outputs = [new if o == old else o for o in graph.outputs]


def _remove(graph: Graph, dead: "set[int]") -> None:
    graph.nodes = [n for n in graph.nodes if id(n) not in dead]
    graph.prune_values()


def _fused(node: Node) -> bool:
    return "_act" in node.attrs or "_add" in node.attrs


# ------------------------------------------------------------------------------------------------------
# constant folding


def is_foldable(graph: Graph, node: Node, keep_qdq: bool = True) -> bool:
    from ..reference.registry import lookup

    if node.op_type in _NONDETERMINISTIC or (keep_qdq and node.op_type in _QDQ) or _fused(node):
        return False
    if lookup(node.op_type, node.domain) is None:
        return False
    if node.op_type in ("Shape", "Size") and not node.domain:
        v = graph.values.get(node.inputs[0])
        return v is not None and v.shape is not None
    return all(graph.is_const(i) for i in node.inputs if i)


def fold_node(graph: Graph, node: Node) -> None:
    """Evaluates a foldable node and turns its outputs into constants (the node itself is not removed)."""
    from ..reference.executor import run_node

    ins = []
    for i in node.inputs:
        if not i:
            ins.append(None)
        elif graph.is_const(i):
            ins.append(graph.const(i))
        else:  # Shape / Size of a non-constant: only the shape is read
            v = graph.values[i]
            dt = v.dtype if v.dtype.kind in "iubf" else np.float32
            ins.append(np.broadcast_to(np.zeros((), dt), v.shape))
    declared = [graph.values[o].dtype if o in graph.values else None for o in node.outputs]
    outs = run_node(node, ins, None, declared)
    for name, arr in zip(node.outputs, outs):
        if name:
            arr = np.asarray(arr)
            # a fresh result (or a read-only view of a constant): freeze it in place rather than copy it
            if arr.flags.writeable and arr.base is None:
                arr.flags.writeable = False
            graph.set_const(name, arr)


def fold_constants(graph: Graph, *, keep_qdq: bool = True, max_elements: "int | None" = None) -> Graph:
    """Folds every foldable node (see module docs); ``max_elements`` leaves nodes whose outputs would be
    larger as nodes."""
    g = graph.copy()
    kept = []
    for n in g.nodes:
        if is_foldable(g, n, keep_qdq):
            if max_elements is not None:
                sizes = [g.values[o].size for o in n.outputs if o and o in g.values]
                if any(s is None or s > max_elements for s in sizes):
                    kept.append(n)
                    continue
            fold_node(g, n)
        else:
            kept.append(n)
    g.nodes = kept
    return eliminate_dead_nodes(g)


def eliminate_dead_nodes(graph: Graph) -> Graph:
    """Drops nodes none of whose outputs lead to a graph output."""
    g = graph.copy()
    live = set(g.outputs)
    keep = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs if o):
            keep.append(n)
            live.update(n.refs)
    g.nodes = list(reversed(keep))
    g.prune_values()
    return g


# ------------------------------------------------------------------------------------------------------
# Identity / Dropout


def remove_identities(graph: Graph) -> Graph:
    g = graph.copy()
    producers = g.producers()
    cons = _consumers(g)
    dead = set()
    for n in g.nodes:
        if n.op_type not in ("Identity", "Dropout") or n.domain:
            continue
        if n.op_type == "Dropout":
            training = n.input(2)
            if training and not (g.is_const(training) and not bool(np.asarray(g.const(training)).reshape(-1)[0])):
                continue  # training mode possible: not an identity
            mask = n.outputs[1] if len(n.outputs) > 1 else ""
            if mask and (mask in g.outputs or cons.get(mask)):
                continue  # the mask is used
        x, y = n.inputs[0], n.outputs[0]
        if y in g.outputs:
            # keep the graph output's name: rename the producer's output instead, if that is legal
            p = producers.get(x)
            if p is None or x in g.outputs or x in g.inputs:
                continue
            p.outputs = [y if o == x else o for o in p.outputs]
            for m in g.nodes:
                if m is not n:
                    m.inputs = [y if i == x else i for i in m.inputs]
                    if m.attrs.get("_add") == x:
                        m.attrs["_add"] = y
            producers[y] = p
            dead.add(id(n))
            g.values[y].shape = g.values[x].shape
            continue
        dead.add(id(n))
        _rename_refs(g, y, x)
    _remove(g, dead)
    return g


# ------------------------------------------------------------------------------------------------------
# BatchNormalization and per-channel affine folding


def _channel_vector(c: np.ndarray, out_shape, channels: int) -> "np.ndarray | None":
    """The per-channel vector of a constant that broadcasts against ``out_shape`` along axis 1 only
    (or is a scalar); None otherwise."""
    c = np.asarray(c)
    r = len(out_shape)
    if c.size == 1:
        if c.ndim > r:
            return None
        return np.full(channels, c.reshape(()), dtype=np.float64)
    if c.ndim > r or r < 2:
        return None
    full = (1,) * (r - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1) or full[1] != channels:
        return None
    return c.reshape(-1).astype(np.float64)


def _scale_output_channels(graph: Graph, p: Node, a: np.ndarray, b: np.ndarray) -> bool:
    """Rewrites producer ``p`` (Conv / ConvTranspose / Gemm with constant weights) so that its output
    becomes ``y * a + b`` per output channel. Returns False (nothing changed) when it cannot."""
    w_name = p.input(1)
    w = graph.const(w_name)
    if w is None or (p.input(2) and not graph.is_const(p.input(2))):
        return False
    if np.asarray(w).dtype.kind != "f":
        return False
    w64 = np.asarray(w, np.float64)
    bias = graph.const(p.input(2)) if p.input(2) else None
    if p.op_type == "Conv":
        m = w.shape[0]
        if a.size != m:
            return False
        w_new = w64 * a.reshape((m,) + (1,) * (w.ndim - 1))
        b_old = np.zeros(m) if bias is None else np.asarray(bias, np.float64)
        b_new = b_old * a + b
    elif p.op_type == "ConvTranspose":
        group = p.attrs.get("group", 1)
        c_in, mg = w.shape[0], w.shape[1]
        m = mg * group
        if a.size != m:
            return False
        a_cj = a.reshape(group, mg)[np.arange(c_in) // (c_in // group)]
        w_new = w64 * a_cj.reshape(a_cj.shape + (1,) * (w.ndim - 2))
        b_old = np.zeros(m) if bias is None else np.asarray(bias, np.float64)
        b_new = b_old * a + b
    elif p.op_type == "Gemm":
        trans_b = p.attrs.get("transB", 0)
        m = w.shape[0] if trans_b else w.shape[1]
        if a.size != m or w.ndim != 2:
            return False
        w_new = w64 * (a.reshape(m, 1) if trans_b else a.reshape(1, m))
        beta = p.attrs.get("beta", 1.0)
        c = np.zeros(m) if bias is None else np.asarray(bias, np.float64) * beta
        if c.ndim > 1 and c.shape[-1] not in (1, m):
            return False
        b_new = c * a + b
        if b_new.ndim == 0:
            b_new = np.full(m, b_new)
        p.attrs["beta"] = 1.0
    else:
        return False
    dt = np.asarray(w).dtype
    p.inputs[1] = graph.add_const(f"{w_name}/folded", w_new.astype(dt))
    bias_name = graph.add_const(f"{p.name}/bias_folded", b_new.astype(dt))
    if len(p.inputs) > 2:
        p.inputs[2] = bias_name
    else:
        p.inputs.append(bias_name)
    return True


_WEIGHTED = ("Conv", "ConvTranspose", "Gemm")


def fold_batchnorm(graph: Graph) -> Graph:
    g = graph.copy()
    producers = g.producers()
    cons = _consumers(g)
    dead = set()
    new_nodes = []
    for n in g.nodes:
        if (
            n.op_type != "BatchNormalization"
            or n.domain
            or n.attrs.get("training_mode", 0)
            or any(o for o in n.outputs[1:])
        ):
            new_nodes.append(n)
            continue
        x = n.inputs[0]
        params = [g.const(i) for i in n.inputs[1:5]]
        if any(p is None for p in params):
            new_nodes.append(n)
            continue
        scale, bias, mean, var = (np.asarray(p, np.float64) for p in params)
        a = scale / np.sqrt(var + n.attrs.get("epsilon", 1e-5))
        b = bias - mean * a
        p = producers.get(x)
        if (
            p is not None
            and p.op_type in _WEIGHTED
            and not p.domain
            and not _fused(p)
            and _single_reader(g, x, cons)
            and _scale_output_channels(g, p, a, b)
        ):
            p.outputs = [n.outputs[0] if o == x else o for o in p.outputs]
            g.values[n.outputs[0]].shape = g.values[x].shape
            dead.add(id(n))
            continue
        # no weighted producer: y = x * a + b per channel (axis 1)
        shape = g.values[x].shape
        r = len(shape) if shape is not None else 4
        cshape = (-1,) + (1,) * (r - 2) if r >= 2 else (-1,)
        dt = g.values[x].dtype if g.values[x].dtype.kind == "f" else np.dtype(np.float32)
        mid = g.unique_name(f"{n.outputs[0]}/scaled")
        from ..ir import Value

        g.values[mid] = Value(mid, shape, g.values[x].dtype)
        mul = Node(
            "Mul",
            g.unique_name(f"{n.name}/scale"),
            [x, g.add_const(f"{n.name}/a", a.reshape(cshape).astype(dt))],
            [mid],
        )
        add = Node("Add", n.name, [mid, g.add_const(f"{n.name}/b", b.reshape(cshape).astype(dt))], [n.outputs[0]])
        new_nodes.extend([mul, add])
    g.nodes = new_nodes
    _remove(g, dead)
    return g


def _const_operand(g: Graph, n: Node) -> "tuple[str, np.ndarray] | None":
    """(non-constant input, constant) of a binary Mul/Add/Sub/Div with exactly one constant input; for Sub
    and Div only the ``x op c`` order qualifies."""
    if n.op_type not in ("Mul", "Add", "Sub", "Div") or n.domain or len(n.inputs) != 2:
        return None
    a, b = n.inputs
    ca, cb = g.const(a), g.const(b)
    if cb is not None and ca is None:
        return a, cb
    if ca is not None and cb is None and n.op_type in ("Mul", "Add"):
        return b, ca
    return None


def _affine_of(n: Node, c: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    c = np.asarray(c, np.float64)
    if n.op_type == "Mul":
        return c, np.zeros_like(c)
    if n.op_type == "Div":
        return 1.0 / c, np.zeros_like(c)
    if n.op_type == "Add":
        return np.ones_like(c), c
    return np.ones_like(c), -c  # Sub


def _affine_step(g: Graph, n: Node) -> "tuple[str, np.ndarray, np.ndarray] | None":
    """(input, scale, shift) of a float Mul/Div/Add/Sub by a constant that keeps its input's shape."""
    pc = _const_operand(g, n)
    if pc is None:
        return None
    x, c = pc
    xv, yv = g.values[x], g.values[n.outputs[0]]
    if xv.dtype.kind != "f" or xv.shape is None or xv.shape != yv.shape:
        return None
    s, b = _affine_of(n, c)
    return x, s, b


def fold_channel_affine(graph: Graph) -> Graph:
    """Collapses each chain of constant Mul/Div/Add/Sub (every link read only by the next) into the
    preceding Conv / ConvTranspose / Gemm when the result is per output channel, else into at most one
    Mul and one Add (only when that shortens the chain)."""
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        producers = g.producers()
        cons = _consumers(g)
        for n in g.nodes:
            step = _affine_step(g, n)
            if step is None:
                continue
            out = n.outputs[0]
            nxt = cons.get(out, [])
            if _single_reader(g, out, cons) and _affine_step(g, nxt[0]) is not None:
                continue  # not the end of its chain
            chain = [n]
            x, S, B = step
            while True:
                p = producers.get(x)
                if p is None or not _single_reader(g, x, cons):
                    break
                st = _affine_step(g, p)
                if st is None:
                    break
                chain.insert(0, p)
                x, s0, b0 = st
                S, B = s0 * S, b0 * S + B  # (x*s0 + b0)*S + B
            xv = g.values[x]
            try:
                if np.broadcast_shapes(xv.shape, S.shape, B.shape) != tuple(xv.shape):
                    continue
            except ValueError:
                continue
            p = producers.get(x)
            if (
                p is not None
                and p.op_type in _WEIGHTED
                and not p.domain
                and not _fused(p)
                and _single_reader(g, x, cons)
                and len(xv.shape) >= 2
            ):
                ch = xv.shape[1]
                sv, bv = _channel_vector(S, xv.shape, ch), _channel_vector(B, xv.shape, ch)
                if sv is not None and bv is not None and _scale_output_channels(g, p, sv, bv):
                    p.outputs = [out if o == x else o for o in p.outputs]
                    _remove(g, {id(c) for c in chain})
                    changed = True
                    break
            emit_mul, emit_add = not np.all(S == 1), not np.all(B == 0)
            n_emit = max(int(emit_mul) + int(emit_add), 1)  # an identity chain still leaves one node
            if n_emit >= len(chain):
                continue
            dt = xv.dtype
            nodes = []
            cur = x
            if emit_mul:
                mid = out if not emit_add else g.unique_name(f"{out}/scaled")
                if mid != out:
                    from ..ir import Value

                    g.values[mid] = Value(mid, xv.shape, dt)
                nodes.append(
                    Node("Mul", g.unique_name(f"{n.name}/mul"), [cur, g.add_const(f"{n.name}/s", S.astype(dt))], [mid])
                )
                cur = mid
            if emit_add or not nodes:
                nodes.append(
                    Node("Add", g.unique_name(f"{n.name}/add"), [cur, g.add_const(f"{n.name}/b", B.astype(dt))], [out])
                )
            idx = g.nodes.index(n)
            g.nodes[idx : idx + 1] = nodes
            _remove(g, {id(c) for c in chain if c is not n})
            changed = True
            break
    return g


# ------------------------------------------------------------------------------------------------------
# SiLU / HardSwish patterns


def fuse_silu(graph: Graph) -> Graph:
    g = graph.copy()
    producers = g.producers()
    cons = _consumers(g)
    dead = set()
    for n in g.nodes:
        if n.op_type != "Mul" or n.domain or len(n.inputs) != 2:
            continue
        for i in (0, 1):
            x, s = n.inputs[i], n.inputs[1 - i]
            p = producers.get(s)
            if p is None or p.domain or not _single_reader(g, s, cons) or id(p) in dead:
                continue
            if g.values[x].shape != g.values[n.outputs[0]].shape:
                continue  # x is broadcast by the Mul: not the element-wise pattern
            scaled = _scaled_by_scalar(g, p.inputs[0], x, producers, cons) if p.op_type == "Sigmoid" else None
            if scaled is not None and id(scaled[0]) not in dead:
                # x * Sigmoid(beta * x): PaddlePaddle exports swish with its beta, 1.0 by default
                q, beta = scaled
                n.op_type, n.attrs, n.inputs = "Swish", {"alpha": beta}, [x]
                dead.update((id(p), id(q)))
                break
            if p.inputs[:1] != [x]:
                continue
            if p.op_type == "Sigmoid":
                n.op_type, n.attrs = "Swish", {"alpha": 1.0}
            elif (
                p.op_type == "HardSigmoid"
                and abs(p.attrs.get("alpha", 0.2) - 1 / 6) < 1e-6
                and abs(p.attrs.get("beta", 0.5) - 0.5) < 1e-6
            ):
                n.op_type, n.attrs = "HardSwish", {}
            else:
                continue
            n.inputs = [x]
            dead.add(id(p))
            break
    _remove(g, dead)
    return g


def _scaled_by_scalar(g: Graph, name: str, x: str, producers, cons) -> "tuple[Node, float] | None":
    """(the node, c) when tensor ``name`` is Mul(x, c) or Mul(c, x) with a scalar float constant c, of the
    shape of x, read only by one node; None otherwise."""
    q = producers.get(name)
    if q is None or q.op_type != "Mul" or q.domain or len(q.inputs) != 2 or x not in q.inputs:
        return None
    c = _scalar_const(g, q.inputs[1 - q.inputs.index(x)])
    if c is None or g.values[name].shape != g.values[x].shape or not _single_reader(g, name, cons):
        return None
    return q, c


def _scalar_const(g: Graph, name: str) -> "float | None":
    if not name or not g.is_const(name):
        return None
    v = np.asarray(g.const(name))
    return float(v.reshape(-1)[0]) if v.size == 1 and v.dtype.kind == "f" else None


def fuse_hard_swish_arith(graph: Graph) -> Graph:
    """x * Clip(x + 3, 0, 6) / 6 (or * 1/6) -> HardSwish(x), the Clip a node or fused into the Add
    (``_act = ('clip', 0, 6)``); every intermediate has that single reader and keeps x's shape."""
    g = graph.copy()
    producers = g.producers()
    cons = _consumers(g)
    dead: "set[int]" = set()
    shape = lambda t: g.values[t].shape  # noqa: E731

    def only(t: str, op: str) -> "Node | None":
        p = producers.get(t)
        ok = p is not None and p.op_type == op and not p.domain and id(p) not in dead and _single_reader(g, t, cons)
        return p if ok else None

    for d in g.nodes:
        if d.domain or len(d.inputs) != 2 or id(d) in dead:
            continue
        c = _scalar_const(g, d.inputs[1])
        if not ((d.op_type == "Div" and c == 6.0) or (d.op_type == "Mul" and c is not None and abs(c - 1 / 6) < 1e-7)):
            continue
        m = only(d.inputs[0], "Mul")
        if m is None or len(m.inputs) != 2:
            continue
        for i in (0, 1):
            x, r = m.inputs[i], m.inputs[1 - i]
            clip = only(r, "Clip")
            if clip is not None:
                if _activation_tuple(g, clip) != ("clip", 0.0, 6.0):
                    continue
                add = only(clip.inputs[0], "Add")
                if add is None or "_act" in add.attrs:
                    continue
            else:
                add = only(r, "Add")
                if add is None or tuple(add.attrs.get("_act", ())) != ("clip", 0.0, 6.0):
                    continue
            if len(add.inputs) != 2 or "_add" in add.attrs:
                continue
            if not any(add.inputs[j] == x and _scalar_const(g, add.inputs[1 - j]) == 3.0 for j in (0, 1)):
                continue
            if not (shape(x) == shape(add.outputs[0]) == shape(m.outputs[0]) == shape(d.outputs[0])):
                continue
            d.op_type, d.inputs, d.attrs = "HardSwish", [x], {}
            dead.update({id(m), id(add)} | ({id(clip)} if clip is not None else set()))
            break
    _remove(g, dead)
    return g


# ------------------------------------------------------------------------------------------------------
# LayerNorm pattern


def _reduce_axes(g: Graph, n: Node, rank: int) -> "tuple[int, ...] | None":
    """The axes (normalized, sorted) of a ReduceMean that keeps its dims, None otherwise."""
    if n.op_type != "ReduceMean" or n.domain or int(n.attrs.get("keepdims", 1)) != 1:
        return None
    a = n.input(1)
    if not a or not g.is_const(a):
        return None  # no axes: all of them (or none with noop_with_empty_axes); not a LayerNorm
    axes = sorted({int(v) % rank for v in np.asarray(g.const(a)).reshape(-1)})
    return tuple(axes) or None


def _trailing_param(g: Graph, name: str, x_shape, axis: int) -> "np.ndarray | None":
    """A constant that broadcasts over the normalized dims only, as a float32 array of x_shape[axis:]."""
    c = g.const(name)
    if c is None or c.dtype.kind != "f" or c.ndim > len(x_shape):
        return None
    full = (1,) * (len(x_shape) - c.ndim) + tuple(c.shape)
    if any(d != 1 for d in full[:axis]):
        return None
    try:
        return np.ascontiguousarray(np.broadcast_to(c.reshape(full[axis:]), tuple(x_shape[axis:])), np.float32)
    except ValueError:
        return None


def fuse_layer_norm(graph: Graph) -> Graph:
    """ReduceMean / Sub / Pow (or Mul) / ReduceMean / Add eps / Sqrt / Div (or Mul by Reciprocal) over the
    trailing axes, then optionally Mul by gamma and Add of beta (constants over those axes) ->
    LayerNormalization(axis, epsilon). Every intermediate is read only inside the pattern (the deviation
    x - mean by the square and the division, the others once)."""
    g = graph.copy()
    producers = g.producers()
    cons = _consumers(g)
    dead: "set[int]" = set()

    def only(t: str, *ops: str) -> "Node | None":
        p = producers.get(t)
        ok = p is not None and p.op_type in ops and not p.domain and id(p) not in dead and not _fused(p)
        return p if ok and _single_reader(g, t, cons) else None

    for n in g.nodes:
        if n.op_type not in ("Div", "Mul") or n.domain or len(n.inputs) != 2 or id(n) in dead or _fused(n):
            continue
        d_name, s_name = n.inputs
        if n.op_type == "Mul":  # d * Reciprocal(sqrt)
            found = None
            for i in (0, 1):
                rec = only(n.inputs[1 - i], "Reciprocal")
                if rec is not None:
                    found = (n.inputs[i], rec)
                    break
            if found is None:
                continue
            d_name, rec = found
            s_name, extra = rec.inputs[0], [rec]
        else:
            extra = []
        sub = producers.get(d_name)
        if sub is None or sub.op_type != "Sub" or sub.domain or _fused(sub) or id(sub) in dead:
            continue
        x, mean_name = sub.inputs
        xs = g.values[x].shape
        if xs is None or g.values[x].dtype.kind != "f" or xs != g.values[n.outputs[0]].shape:
            continue
        rank = len(xs)
        mean = only(mean_name, "ReduceMean")
        if mean is None or mean.inputs[0] != x:
            continue
        axes = _reduce_axes(g, mean, rank)
        if axes is None or axes != tuple(range(axes[0], rank)):
            continue
        sqrt = only(s_name, "Sqrt")
        if sqrt is None:
            continue
        add = only(sqrt.inputs[0], "Add")
        if add is None or len(add.inputs) != 2:
            continue
        eps, var_name = None, None
        for j in (0, 1):
            e = _scalar_const(g, add.inputs[1 - j])
            if e is not None and e >= 0:
                eps, var_name = e, add.inputs[j]
        if eps is None:
            continue
        var = only(var_name, "ReduceMean")
        if var is None or _reduce_axes(g, var, rank) != axes:
            continue
        sq = only(var.inputs[0], "Pow", "Mul")
        if sq is None:
            continue
        if sq.op_type == "Pow":
            if sq.inputs[0] != d_name or _scalar_const(g, sq.input(1)) != 2.0:
                continue
        elif sq.inputs != [d_name, d_name]:
            continue
        # the deviation is read by the square and the division only
        if _visible(g, d_name) or {id(c) for c in cons.get(d_name, [])} != {id(sq), id(n)}:
            continue
        axis = axes[0]
        scale, bias, chain = np.ones(xs[axis:], np.float32), None, [n]
        # optional gamma, then beta: constants over the normalized dims, the output keeping x's shape
        for op in ("Mul", "Add"):
            t = chain[-1].outputs[0]
            if not _single_reader(g, t, cons):
                continue
            rd = cons[t]
            if rd[0].op_type != op or rd[0].domain or _fused(rd[0]):
                continue
            other = [i for i in rd[0].inputs if i != t]
            c = _trailing_param(g, other[0], xs, axis) if len(other) == 1 and len(rd[0].inputs) == 2 else None
            if c is None or g.values[rd[0].outputs[0]].shape != xs:
                continue
            if op == "Mul":
                scale = c
            else:
                bias = c
            chain.append(rd[0])
        last = chain[-1]
        base = last.name or "layer_norm"
        inputs = [x, g.add_const(f"{base}_scale", scale)]
        if bias is not None:
            inputs.append(g.add_const(f"{base}_bias", bias))
        dead.update(id(p) for p in [mean, sub, sq, var, add, sqrt, *extra, *chain[:-1]])
        last.op_type, last.domain, last.inputs = "LayerNormalization", "", inputs
        last.attrs = {"axis": int(axis), "epsilon": float(eps), "stash_type": 1}
    _remove(g, dead)
    return g


# ------------------------------------------------------------------------------------------------------
# Conv + Add


def fuse_conv_add(graph: Graph) -> Graph:
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        producers = g.producers()
        cons = _consumers(g)
        pos = {id(n): i for i, n in enumerate(g.nodes)}
        for n in g.nodes:
            if n.domain or not ((n.op_type == "Add") or (n.op_type == "Sum" and len(n.inputs) == 2)):
                continue
            a, b = n.inputs
            out_shape = g.values[n.outputs[0]].shape
            cands = []
            for y, z in ((a, b), (b, a)):
                p = producers.get(y)
                if (
                    p is None
                    or p.op_type != "Conv"
                    or p.domain
                    or _fused(p)
                    or not _single_reader(g, y, cons)
                    or y == z
                ):
                    continue
                if g.is_const(z) or g.values[z].shape != out_shape or g.values[y].shape != out_shape:
                    continue
                if g.values[z].dtype != g.values[y].dtype:
                    continue
                cands.append((pos[id(p)], p, y, z))
            if not cands:
                continue
            _, p, y, z = max(cands, key=lambda t: t[0])
            p.attrs["_add"] = z
            p.outputs = [n.outputs[0] if o == y else o for o in p.outputs]
            # p now reads z, which may be produced after p: move p to where the Add was
            g.nodes.remove(p)
            g.nodes[g.nodes.index(n)] = p
            g.prune_values()
            changed = True
            break
    return g


# ------------------------------------------------------------------------------------------------------
# activations


def _activation_tuple(g: Graph, n: Node) -> "tuple | None":
    op = n.op_type
    if n.domain:
        return None
    if op == "Relu":
        return ("relu",)
    if op == "Clip":
        lo = n.input(1)
        hi = n.input(2)
        if (lo and not g.is_const(lo)) or (hi and not g.is_const(hi)):
            return None
        lo_v = float(np.asarray(g.const(lo)).reshape(-1)[0]) if lo else float("-inf")
        hi_v = float(np.asarray(g.const(hi)).reshape(-1)[0]) if hi else float("inf")
        if lo_v == 0.0 and hi_v == float("inf"):
            return ("relu",)
        return ("clip", lo_v, hi_v)
    if op == "LeakyRelu":
        return ("leaky_relu", float(n.attrs.get("alpha", 0.01)))
    if op == "Sigmoid":
        return ("sigmoid",)
    if op == "Tanh":
        return ("tanh",)
    if op == "HardSigmoid":
        return ("hard_sigmoid", float(n.attrs.get("alpha", 0.2)), float(n.attrs.get("beta", 0.5)))
    if op == "HardSwish":
        return ("hard_swish",)
    if op == "Swish" and float(n.attrs.get("alpha", 1.0)) == 1.0:
        return ("silu",)
    if op == "Mish":
        return ("mish",)
    return None


_FUSE_TARGETS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def fuse_activations(graph: Graph, *, kinds: "set[str] | None" = None, targets=_FUSE_TARGETS) -> Graph:
    """Fuses activations into their producer; ``kinds`` limits the activation kinds fused (None: all) and
    ``targets`` the producer op types."""
    g = graph.copy()
    producers = g.producers()
    cons = _consumers(g)
    dead = set()
    for n in g.nodes:
        act = _activation_tuple(g, n)
        if act is None or (kinds is not None and act[0] not in kinds):
            continue
        x = n.inputs[0]
        p = producers.get(x)
        if (
            p is None
            or p.op_type not in targets
            or p.domain
            or "_act" in p.attrs
            or not _single_reader(g, x, cons)
            or g.values[x].dtype.kind != "f"
        ):
            continue
        p.attrs["_act"] = act
        p.outputs = [n.outputs[0] if o == x else o for o in p.outputs]
        producers[n.outputs[0]] = p
        dead.add(id(n))
    _remove(g, dead)
    return g


def optimize(graph: Graph) -> Graph:
    """The standard pipeline: constants, Identity/Dropout, LayerNorm pattern, BatchNorm, per-channel affine
    folding, SiLU / HardSwish patterns, Conv+Add, activation fusion, dead nodes."""
    g = fold_constants(graph)
    g = remove_identities(g)
    g = fuse_layer_norm(g)
    g = fold_batchnorm(g)
    g = fold_channel_affine(g)
    g = fuse_silu(g)
    g = fuse_conv_add(g)
    g = fuse_activations(g)
    return eliminate_dead_nodes(g)
