"""ONNX model -> npuemu IR (:class:`npuemu.ir.Graph`) with static shapes.

What :func:`import_onnx` does, in order:

1. loads the model (a ``ModelProto``, a file path or serialized bytes) and checks the default-domain opset
   (``MIN_OPSET`` .. the installed onnx's newest; opsets 11-21 are the contract of the toolkit flow, older
   and newer ones work op by op as far as :func:`supported_ops` says); model-local functions are inlined;
2. cuts the graph: ``outputs`` names the tensors to return (any intermediate tensor), ``inputs`` the
   tensors fed by the caller (graph inputs or intermediate tensors); only the nodes between them stay;
3. fixes dynamic input dimensions from ``input_size_list`` and refuses any dimension that stays dynamic;
4. checks every remaining op against the supported set (:class:`UnsupportedOpError` names the op type,
   the node and the supported ops) and its schema version;
5. converts: initializers and Constant nodes become constant Values, attributes become Python values;
6. rewrites older op forms into the canonical (newest) form, folds constants (shape subgraphs included,
   since shapes are static) and gives every value a static shape: from ``onnx.shape_inference``, and for
   values it leaves open, by running the op on placeholder data of the known input shapes.
"""

from __future__ import annotations

import difflib
import os

import numpy as np

from ..errors import ExecutionError, ModelError, ShapeError, UnsupportedOpError
from ..ir import Graph, Node, Value
from ..reference.registry import MIN_OPSET, implementations, lookup, lookup_static_check, schema_version
from . import legacy
from .passes import eliminate_dead_nodes, fold_node, shape_dependent_inputs

__all__ = ["import_onnx", "supported_ops", "CONTRACT_OPSETS"]

# The opsets the toolkit flow is specified for (issue 3); others are accepted op by op.
CONTRACT_OPSETS = (11, 21)

# dtype placeholder of a value whose type onnx's inference left open (resolved before import returns)
_UNKNOWN = np.dtype("V1")


def supported_ops() -> "dict[str, tuple[int, int] | None]":
    """ONNX op type -> (first, last) model opset the frontend imports it for."""
    from ..reference.registry import opset_range

    out = {}
    for impl in implementations():
        key = f"{impl.domain}::{impl.op_type}" if impl.domain else impl.op_type
        out[key] = opset_range(impl.op_type, impl.versions, impl.domain)
    for op, vers in legacy.FRONTEND_ONLY.items():
        out[op] = opset_range(op, vers)
    return dict(sorted(out.items()))


def _versions(op_type: str, domain: str) -> "tuple[int, int] | None":
    if not domain and op_type in legacy.FRONTEND_ONLY:
        return legacy.FRONTEND_ONLY[op_type]
    impl = lookup(op_type, domain)
    return None if impl is None else impl.versions


# ------------------------------------------------------------------------------------------------------
# loading


def _load(model) -> "object":
    import onnx

    if isinstance(model, onnx.ModelProto):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        return m
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as e:
            raise ModelError(f"the bytes given are not a serialized ONNX model: {e}") from e
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ModelError(f"ONNX model file {path!r} does not exist")
        try:
            return onnx.load(path)
        except Exception as e:
            raise ModelError(f"cannot load ONNX model {path!r}: {e}") from e
    raise TypeError(f"model must be an onnx.ModelProto, a path or bytes, got {type(model).__name__}")


def _opsets(m) -> "dict[str, int]":
    import onnx.defs

    ops = {}
    for o in m.opset_import:
        ops["" if o.domain == "ai.onnx" else o.domain] = int(o.version)
    if "" not in ops:
        raise ModelError("the model imports no default-domain (ai.onnx) opset")
    lo, hi = MIN_OPSET, onnx.defs.onnx_opset_version()
    if not lo <= ops[""] <= hi:
        raise ModelError(
            f"model opset {ops['']} is outside the supported range {lo}..{hi} "
            f"(opsets {CONTRACT_OPSETS[0]}..{CONTRACT_OPSETS[1]} are the contract)"
        )
    return ops


# ------------------------------------------------------------------------------------------------------
# graph cut


def _closest(name: str, names) -> str:
    near = difflib.get_close_matches(name, list(names), n=3)
    return f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""


def _cut(g, inputs, outputs):
    """(kept nodes in order, input names, output names) of the subgraph between ``inputs`` and
    ``outputs``."""
    inits = {t.name for t in g.initializer}
    produced = {o: i for i, n in enumerate(g.node) for o in n.output if o}
    graph_inputs = [v.name for v in g.input if v.name not in inits]
    known = set(inits) | set(produced) | {v.name for v in g.input}

    if outputs is None:
        outputs = [v.name for v in g.output]
    else:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        for o in outputs:
            if o not in known:
                raise ModelError(f"output {o!r} is not a tensor of the model{_closest(o, known)}")
    if inputs is None:
        inputs = graph_inputs
        explicit = False
    else:
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        explicit = True
        for i in inputs:
            if i not in known:
                raise ModelError(f"input {i!r} is not a tensor of the model{_closest(i, known)}")
            if i in inits:
                raise ModelError(f"input {i!r} is an initializer (a constant), not a tensor to feed")
    stop = set(inputs) | inits
    need = set()
    stack = list(outputs)
    seen = set()
    while stack:
        v = stack.pop()
        if v in seen or not v:
            continue
        seen.add(v)
        if v in stop:
            continue
        if v in produced:
            idx = produced[v]
            if idx in need:
                continue
            need.add(idx)
            node = g.node[idx]
            stack.extend(node.input)
            for a in node.attribute:
                if a.g.node or a.graphs:
                    raise UnsupportedOpError(
                        node.op_type, node.name or f"#{idx}", "ops with subgraphs (If, Loop, Scan) are not supported"
                    )
        elif explicit:
            raise ModelError(
                f"the outputs {outputs} depend on graph input {v!r}, which is not among the given inputs {inputs}"
            )
        else:  # pragma: no cover - a graph input always stops the walk
            raise ModelError(f"tensor {v!r} has no producer")
    return [g.node[i] for i in sorted(need)], list(inputs), outputs


# ------------------------------------------------------------------------------------------------------
# shapes of the inputs


def _dims(type_proto) -> "list[int | str | None] | None":
    t = type_proto.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        elif d.HasField("dim_value") and d.dim_value == 0:
            out.append(0)
        else:
            out.append(None)
    return out


def _fix_input_shapes(names, declared, sizes):
    """Static shapes of the inputs from their declared dims and ``input_size_list``."""
    if sizes is not None:
        sizes = list(sizes)
        if len(sizes) != len(names):
            raise ShapeError(f"input_size_list has {len(sizes)} shapes for {len(names)} inputs {names}")
    out = {}
    for i, name in enumerate(names):
        dims = declared.get(name)
        given = None if sizes is None else sizes[i]
        if given is not None:
            try:
                given = [int(d) for d in given]
            except TypeError:
                raise ShapeError(
                    f"input_size_list[{i}] for input {name!r} must be a list of ints, got {given!r}"
                ) from None
            if any(d < 0 for d in given):
                raise ShapeError(f"input_size_list[{i}] = {given} for input {name!r} has negative dimensions")
            if dims is not None:
                if len(dims) != len(given):
                    raise ShapeError(
                        f"input {name!r} has rank {len(dims)} ({_fmt(dims)}), input_size_list gives {given}"
                    )
                for d, gv in zip(dims, given):
                    if isinstance(d, int) and d != gv:
                        raise ShapeError(
                            f"input {name!r} has the static shape {_fmt(dims)}; input_size_list gives {given}"
                        )
            out[name] = tuple(given)
        else:
            if dims is None or any(not isinstance(d, int) for d in dims):
                raise ShapeError(f"input {name!r} has a dynamic shape {_fmt(dims)}: give its size in input_size_list")
            out[name] = tuple(dims)
    return out


def _frozen_inputs(names, declared, vi_source, values) -> "dict[str, np.ndarray]":
    """input_initial_val: input name -> constant value (cast to the input's element type)."""
    if values is None:
        return {}
    values = list(values)
    if len(values) != len(names):
        raise ModelError(f"input_initial_val has {len(values)} entries for {len(names)} inputs {names}")
    out = {}
    for name, v in zip(names, values):
        if v is None:
            continue
        a = np.asarray(v)
        vi = vi_source.get(name)
        et = _elem_type(vi)
        if et:
            a = a.astype(_np_dtype(et))
        dims = declared.get(name)
        if dims is not None and (
            len(dims) != a.ndim or any(isinstance(d, int) and d != s for d, s in zip(dims, a.shape))
        ):
            raise ShapeError(f"input_initial_val for {name!r} has shape {a.shape}; the input is {_fmt(dims)}")
        out[name] = a
    return out


def _fmt(dims) -> str:
    if dims is None:
        return "[unknown rank]"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


# ------------------------------------------------------------------------------------------------------
# attributes and tensors


def _np_dtype(elem_type: int) -> np.dtype:
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception as e:
        raise ModelError(f"tensor element type {elem_type} has no numpy equivalent: {e}") from e


def _tensor(t) -> np.ndarray:
    from onnx import numpy_helper

    if t.data_type == 8:
        raise ModelError(f"string tensor {t.name!r} is not supported")
    a = numpy_helper.to_array(t)
    if a.flags.writeable and a.base is None:  # ours alone: freeze in place instead of letting Value copy it
        a.flags.writeable = False
    return a


def _attr_value(a, node_desc: str):
    from onnx import AttributeProto

    T = AttributeProto
    if a.type == T.FLOAT:
        return float(a.f)
    if a.type == T.INT:
        return int(a.i)
    if a.type == T.STRING:
        return a.s.decode("utf-8", errors="replace")
    if a.type == T.TENSOR:
        return _tensor(a.t)
    if a.type == T.FLOATS:
        return [float(v) for v in a.floats]
    if a.type == T.INTS:
        return [int(v) for v in a.ints]
    if a.type == T.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in a.strings]
    if a.type == T.SPARSE_TENSOR:
        from onnx import numpy_helper

        return numpy_helper.to_array(a.sparse_tensor)
    raise ModelError(f"{node_desc}: attribute {a.name!r} of type {a.type} (graphs, type protos) is not supported")


def _constant_value(node, desc: str) -> np.ndarray:
    attrs = {a.name: a for a in node.attribute}
    if "value" in attrs:
        return _tensor(attrs["value"].t)
    if "sparse_value" in attrs:
        from onnx import numpy_helper

        return numpy_helper.to_array(attrs["sparse_value"].sparse_tensor)
    if "value_float" in attrs:
        return np.array(attrs["value_float"].f, dtype=np.float32)
    if "value_floats" in attrs:
        return np.array(list(attrs["value_floats"].floats), dtype=np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"].i, dtype=np.int64)
    if "value_ints" in attrs:
        return np.array(list(attrs["value_ints"].ints), dtype=np.int64)
    raise ModelError(f"{desc}: Constant with {list(attrs)} (strings) is not supported")


# ------------------------------------------------------------------------------------------------------
# entry point


def import_onnx(
    model, inputs=None, input_size_list=None, outputs=None, *, input_initial_val=None, fold_constants: bool = True
) -> Graph:
    """Imports an ONNX model into npuemu's IR.

    Args:
        model: ``onnx.ModelProto``, a path to a ``.onnx`` file or the serialized bytes.
        inputs: names of the tensors to feed (default: the model's graph inputs). Intermediate tensors are
            allowed: the graph then starts there.
        input_size_list: one shape per input (in the order of ``inputs``) fixing dynamic dimensions; a
            static dimension must agree with it.
        outputs: names of the tensors to return (default: the model's outputs); the graph is cut there.
        input_initial_val: as RKNN's load_onnx: one entry per input (order of ``inputs``), None or an array;
            an input given an array becomes a constant with that value (for inputs that carry shapes,
            axes or sizes, which must be known when shapes are static). Its ``input_size_list`` entry is
            ignored.
        fold_constants: fold every node whose inputs are all constant (and Shape/Size of static tensors).
            Without it only what shape resolution needs is folded.

    Raises:
        ModelError, ShapeError, UnsupportedOpError (all ``ValueError``), TypeError for a wrong ``model``.
    """
    import onnx
    from onnx import shape_inference

    _check_load_args(inputs, input_size_list, outputs)
    m = _load(model)
    opsets = _opsets(m)
    if len(m.functions):
        try:
            from onnx import inliner

            m = inliner.inline_local_functions(m)
        except ImportError as e:  # pragma: no cover - onnx < 1.16
            raise ModelError("the model has local functions and this onnx has no inliner") from e
    g = m.graph
    _refuse_what_aborts_onnx(g)

    # Types and shapes of intermediate tensors are needed when the cut starts or ends inside the graph.
    cut_inside = inputs is not None or outputs is not None
    if cut_inside:
        try:
            full = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
            vi_source = {
                v.name: v for v in list(full.graph.value_info) + list(full.graph.input) + list(full.graph.output)
            }
        except Exception:
            vi_source = {}
    else:
        vi_source = {}
    vi_source.update({v.name: v for v in list(g.input) + list(g.output)})

    nodes, in_names, out_names = _cut(g, inputs, outputs)
    declared = {n: (_dims(vi_source[n].type) if n in vi_source else None) for n in in_names}
    frozen = _frozen_inputs(in_names, declared, vi_source, input_initial_val)
    if frozen:
        keep = [i for i, n in enumerate(in_names) if n not in frozen]
        if input_size_list is not None:
            if len(input_size_list) != len(in_names):
                raise ShapeError(
                    f"input_size_list has {len(input_size_list)} shapes for {len(in_names)} inputs {in_names}"
                )
            input_size_list = [input_size_list[i] for i in keep]
        in_names = [in_names[i] for i in keep]
    in_shapes = _fix_input_shapes(in_names, declared, input_size_list)

    # op support, before any conversion work
    node_names = _node_names(nodes)
    versions = {}
    for node, name in zip(nodes, node_names):
        versions[name] = _check_op(node, name, opsets)

    # element types of the inputs
    in_types = {}
    for n in in_names:
        vi = vi_source.get(n)
        if vi is None or not vi.type.tensor_type.elem_type:
            raise ModelError(f"the element type of input {n!r} is unknown")
        in_types[n] = vi.type.tensor_type.elem_type

    # a standalone model of the cut graph, with the fixed input shapes, for onnx's shape inference
    inits = {t.name: t for t in g.initializer}
    needed = {i for nd in nodes for i in nd.input} | set(out_names)
    sub = onnx.helper.make_graph(
        nodes,
        g.name or "graph",
        [onnx.helper.make_tensor_value_info(n, in_types[n], list(in_shapes[n])) for n in in_names],
        [onnx.helper.make_tensor_value_info(n, _elem_type(vi_source.get(n)), None) for n in out_names],
        [inits[i] for i in inits if i in needed and i not in in_shapes and i not in frozen]
        + [onnx.numpy_helper.from_array(v, k) for k, v in frozen.items()],
    )
    sub_model = onnx.helper.make_model(sub, opset_imports=list(m.opset_import), ir_version=max(m.ir_version, 4))
    try:
        inferred = shape_inference.infer_shapes(sub_model, strict_mode=False, data_prop=True)
    except Exception:
        inferred = sub_model
    info = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.output):
        if v.type.HasField("tensor_type"):
            info[v.name] = v.type

    values: "dict[str, Value]" = {}
    for n in in_names:
        values[n] = Value(n, in_shapes[n], _np_dtype(in_types[n]))
    for name, t in inits.items():
        if name in needed and name not in values and name not in frozen:
            values[name] = Value(name, None, np.float32, _tensor(t))
    for name, arr in frozen.items():
        values[name] = Value(name, None, arr.dtype, arr)

    ir_nodes = []
    for node, name in zip(nodes, node_names):
        desc = f"{node.op_type} node {name!r}"
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            values[node.output[0]] = Value(node.output[0], None, np.float32, _constant_value(node, desc))
            continue
        attrs = {a.name: _attr_value(a, desc) for a in node.attribute}
        attrs["_since"] = versions[name]  # consumed by the legacy rewrite below
        ir = Node(
            node.op_type,
            name,
            list(node.input),
            list(node.output),
            attrs,
            "" if node.domain == "ai.onnx" else node.domain,
        )
        for o in node.output:
            if not o:
                continue
            t = info.get(o)
            shape, dtype = None, None
            if t is not None:
                tt = t.tensor_type
                if tt.elem_type:
                    dtype = _np_dtype(tt.elem_type)
                dims = _dims(t)
                if dims is not None and all(isinstance(d, int) for d in dims):
                    shape = tuple(dims)
            values[o] = Value(o, shape, dtype if dtype is not None else _UNKNOWN)
        ir_nodes.append(ir)

    graph = Graph(ir_nodes, in_names, out_names, values, opsets[""], g.name or "graph")
    _check_dtypes(graph)
    graph = _resolve(graph, fold_constants)
    graph = eliminate_dead_nodes(graph)
    _check_dtypes(graph)
    graph.validate()
    return graph


def _supported_dtypes() -> "set[np.dtype]":
    from onnx import helper

    out = {
        np.dtype(t)
        for t in (
            np.bool_,
            np.float16,
            np.float32,
            np.float64,
            np.int8,
            np.int16,
            np.int32,
            np.int64,
            np.uint8,
            np.uint16,
            np.uint32,
            np.uint64,
        )
    }
    try:
        out.add(np.dtype(helper.tensor_dtype_to_np_dtype(16)))  # bfloat16
    except Exception:  # pragma: no cover
        pass
    return out


def _check_dtypes(graph: Graph) -> None:
    """float8 / float4 / float6 / int4 / int2 / string / complex tensors are refused by name."""
    ok = _supported_dtypes() | {_UNKNOWN}
    for name, v in graph.values.items():
        if v.dtype not in ok:
            raise ModelError(
                f"tensor {name!r} has element type {v.dtype}, which npuemu does not support "
                "(bool, 8-64-bit integers, float16, bfloat16, float32, float64)"
            )


def _elem_type(vi) -> int:
    if vi is None:
        return 0
    return vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0


def _node_names(nodes) -> "list[str]":
    names, taken = [], set()
    for i, n in enumerate(nodes):
        base = n.name or f"{n.op_type}_{i}"
        name, k = base, 1
        while name in taken:
            name = f"{base}_{k}"
            k += 1
        taken.add(name)
        names.append(name)
    return names


def _check_op(node, name: str, opsets: "dict[str, int]") -> int:
    """The resolved schema version of a node; UnsupportedOpError when npuemu lacks the op or version."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    if node.op_type == "Constant" and not domain:
        return schema_version("Constant", opsets[""]) or 1
    if domain not in opsets:
        raise UnsupportedOpError(node.op_type, name, f"domain {domain!r} is not imported by the model", domain)
    vers = _versions(node.op_type, domain)
    if vers is None:
        raise UnsupportedOpError(node.op_type, name, f"npuemu supports: {', '.join(supported_ops())}", domain)
    v = schema_version(node.op_type, opsets[domain], domain)
    if v is None:
        raise UnsupportedOpError(
            node.op_type, name, f"onnx defines no {node.op_type} at opset {opsets[domain]}", domain
        )
    if not vers[0] <= v <= vers[1]:
        from ..reference.registry import opset_range

        rng = opset_range(node.op_type, vers, domain)
        raise UnsupportedOpError(
            node.op_type,
            name,
            f"version {v} (model opset {opsets[domain]}) is not supported; supported model opsets: {rng[0]}..{rng[1]}"
            if rng
            else "no version supported",
            domain,
        )
    return v


# ------------------------------------------------------------------------------------------------------
# canonical forms, constant folding and static shapes


def _check_load_args(inputs, input_size_list, outputs) -> None:
    for what, names in (("inputs", inputs), ("outputs", outputs)):
        empty_ok = what == "inputs"  # a model may have no inputs (a graph of constants); none without outputs
        if names is not None and (not isinstance(names, (list, tuple)) or not all(isinstance(v, str) for v in names)
                                  or not (names or empty_ok)):
            raise TypeError(f"{what} must be None or a {'' if empty_ok else 'non-empty '}list of tensor names (str), "
                            f"got {names!r}")
    if input_size_list is not None and (
        not isinstance(input_size_list, (list, tuple)) or not all(isinstance(v, (list, tuple)) for v in input_size_list)
    ):
        raise TypeError(f"input_size_list must be None or a list of shapes (lists of ints), one per input, got "
                        f"{input_size_list!r}")


def _refuse_what_aborts_onnx(g) -> None:
    """Refuses the malformed nodes on which onnx's own C++ shape inference (called by the importer)
    reads past the end of a vector and aborts the whole process instead of raising: a Split with more
    outputs than its num_outputs attribute (onnx <= 1.23, fixed upstream in onnx/onnx#8255)."""
    for n in g.node:
        if n.op_type == "Split" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "num_outputs" and len(n.output) > a.i:
                    raise ModelError(f"Split node {n.name!r} has {len(n.output)} outputs but num_outputs {a.i}; "
                                     f"the two must be equal")


def _resolve(graph: Graph, fold_constants: bool) -> Graph:
    """Rewrites legacy forms, folds constants and fills in every missing shape, in one topological
    sweep."""
    out_nodes = []
    for node in graph.nodes:
        since = node.attrs.pop("_since", None)
        for n in legacy.canonicalize(graph, node, since):
            _static_check(graph, n)
            if _all_static(graph, n) and not _needs_fold(graph, n, fold_constants):
                out_nodes.append(n)
                continue
            if _foldable(graph, n) and (fold_constants or _needs_fold(graph, n, fold_constants)):
                fold_node(graph, n)
                continue
            _infer_by_running(graph, n)
            out_nodes.append(n)
    graph.nodes = out_nodes
    for name, v in graph.values.items():
        if v.const is None and (v.shape is None or v.dtype == _UNKNOWN):
            if any(name in n.outputs for n in graph.nodes) or name in graph.inputs:
                raise ShapeError(f"value {name!r} has no static shape")
    return graph


def _static_check(graph: Graph, node: Node) -> None:
    """The attribute checks that need only input shapes (window sizes, strides, groups...), run also where
    onnx's shape inference already gave the output shapes, so that a malformed node is refused here by
    name rather than later by the compiler or the runtime."""
    check = lookup_static_check(node.op_type, node.domain)
    if check is None:
        return
    shapes = [graph.values[i].shape if i else None for i in node.inputs]
    if any(s is None for s in shapes[:2]):
        return  # the implementation, run to infer the shapes, checks it
    try:
        check(node, shapes)
    except ValueError as e:
        raise ExecutionError(node.op_type, node.name, str(e)) from e


def _all_static(graph: Graph, node: Node) -> bool:
    for o in node.outputs:
        if o:
            v = graph.values[o]
            if v.shape is None or v.dtype == _UNKNOWN:
                return False
    return True


def _foldable(graph: Graph, node: Node) -> bool:
    from .passes import is_foldable

    return is_foldable(graph, node)


def _needs_fold(graph: Graph, node: Node, fold_constants: bool) -> bool:
    """Folding is required (even without fold_constants) when a consumer needs the value for its shape;
    we approximate this by folding shape-arithmetic producers whose results are small integer tensors."""
    if fold_constants:
        return _foldable(graph, node)
    if not _foldable(graph, node):
        return False
    for o in node.outputs:
        v = graph.values.get(o)
        if v is None or v.shape is None or v.dtype == _UNKNOWN:
            return True
        if v.dtype.kind in "iu" and (v.size or 0) <= 64:
            return True
    return node.op_type in ("Shape", "Size")


def _infer_by_running(graph: Graph, node: Node) -> None:
    """Fills output shapes / dtypes onnx left open by running the op on placeholder inputs."""
    from ..reference.executor import run_node

    if _all_static(graph, node):
        return
    dep = shape_dependent_inputs(node)
    ins = []
    for i, name in enumerate(node.inputs):
        if not name:
            ins.append(None)
            continue
        v = graph.values[name]
        if v.const is not None:
            ins.append(v.const)
            continue
        if i in dep:
            raise ShapeError(
                f"{node.op_type} node {node.name!r}: the shape of its output depends on the "
                f"values of {name!r}, which are only known at run time"
            )
        if v.shape is None or v.dtype == _UNKNOWN:
            raise ShapeError(f"{node.op_type} node {node.name!r}: input {name!r} has no static shape")
        ins.append(np.zeros(v.shape, dtype=v.dtype if v.dtype.kind in "iub" else np.float32))
    addend = None
    if node.attrs.get("_add"):
        v = graph.values[node.attrs["_add"]]
        addend = np.zeros(v.shape, np.float32)
    outs = run_node(node, ins, addend)
    for name, arr in zip(node.outputs, outs):
        if not name:
            continue
        v = graph.values[name]
        if v.shape is None:
            v.shape = tuple(arr.shape)
        if v.dtype == _UNKNOWN:
            v.dtype = arr.dtype
