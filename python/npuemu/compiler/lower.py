"""Lowering of an optimized graph to a :class:`~npuemu.runtime.program.Program` for the emulated NPU.

Each node becomes one step (or none, when it is absorbed into a lookup table), placed on the NPU when the
op is one the NPU runs and its attributes are inside the platform's limits, else on the CPU where it runs
in float32 through the golden implementation. Tensors get a storage form per consumer need: int8
(w8a8 builds), float16 (FP16 builds) or float32 (CPU ops, float32 builds); the conversions between forms
are explicit steps.

w8a8 specifics:
- Conv / Gemm / MatMul with constant weights: int8 weights per channel or per tensor, int32 bias, the
  fused Relu / Clip / LeakyRelu in the output stage.
- Element-wise chains with one variable input and scalar constants (activations, ``x * clip(x + 3, 0, 6) / 6``
  HardSwish, ``x * sigmoid(x)``, scalar Add / Mul / Div, ...) are one 256-entry lookup table from the
  int8 input to the int8 output: the chain is evaluated in float32 on the 256 input values. Intermediate
  tensors of the chain are never quantized.
- Data movement (Reshape, Transpose, Slice, Split, Resize nearest, MaxPool, ...) keeps the input's
  quantization; Concat requantizes inputs whose quantization differs from the output's with a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Container

import numpy as np

from ..config import OP_TARGETS
from ..errors import ModelError, UnsupportedOpError
from ..ir import Graph, Node
from ..reference import lookup, run_node
from ..runtime.program import Program, Step, TensorSpec
from ..runtime.program import codes as table_index
from ..runtime.program import dequantize_f32, quantize_f32
from .qdq import QuantParams, bias_int32, has_fixed_quantization, weight_int8
from .quantize import Ranges, activation_qparams

__all__ = ["LowerOptions", "lower", "DEFAULT_LIMITS", "MODES"]

MODES = ("w8a8", "float16", "float32")

# rk3588 limits (docs/npu-facts.md section 5); the facade passes the platform's
DEFAULT_LIMITS = {
    "conv_kernel": 31,
    "conv_stride": 7,
    "conv_pad": 15,
    "conv_dilation": 31,
    "dw_kernel": 8,
    "pool_kernel": 7,
    "pool_stride": 8,
}

# ops whose output is an element-wise function of the inputs (shape = broadcast of the inputs)
_ELEMENTWISE = {
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Clip", "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Swish", "Tanh", "Exp", "Log", "Neg", "Abs", "Erf", "Gelu", "Elu", "Selu", "Softplus", "Softsign", "Mish",
    "Max", "Min", "Reciprocal", "Celu", "ThresholdedRelu", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign",
}  # fmt: skip
# ops run by the NPU's DPU as a table when applied to one tensor (activation functions and scalar arithmetic)
_LUT_OK = _ELEMENTWISE

# float16 builds make tables of activation chains only (the DPU's LUT); other arithmetic on float16 values
# (Pow, Sqrt, Exp, ...) runs op by op with a float16 result each, as the DPU computes it
_FP16_TABLE_OK = {"Add", "Sub", "Mul", "Div", "Clip", "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish",
                  "Swish", "Tanh", "Mish", "Elu", "Selu", "Softplus", "Gelu", "Max", "Min"}

# data movement: output elements are input elements (quantization kept)
_MOVE = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Slice", "Split", "Gather",
         "Tile", "Expand", "DepthToSpace", "SpaceToDepth"}  # fmt: skip
# op types with an NPU lowering in int8 builds (others run on the CPU)
_NPU_OPS_BASE = {"Conv", "Gemm", "MatMul", "Add", "Mul", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat"}
_ALIAS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}  # a view of the input buffer

# ops the NPU runs as data movement when they read a stored (int8 / float16) tensor
_NPU_MOVE = _MOVE | {"Resize"}
_NPU_OPS = _NPU_OPS_BASE | _NPU_MOVE


@dataclass
class LowerOptions:
    mode: str = "w8a8"  # 'w8a8' | 'float16' | 'float32'
    per_channel: bool = True
    limits: "dict[str, int]" = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    means: "list[np.ndarray | None]" = field(default_factory=list)  # per graph input, float32 per channel
    stds: "list[np.ndarray | None]" = field(default_factory=list)
    # hybrid quantization (w8a8 builds): layer -> 'float16' (or 'w8a8'); a layer is named by its node name
    # or by one of its output tensors
    layer_modes: "dict[str, str]" = field(default_factory=dict)
    # config(op_target=...): layer -> 'cpu' (run it on the CPU in float32) or 'npu' (it must run on the NPU);
    # layers named as in layer_modes
    op_targets: "dict[str, str]" = field(default_factory=dict)


def _enc(v: Any, consts: dict, prefix: str) -> Any:
    """JSON encoding of a node attribute (arrays go to consts)."""
    if isinstance(v, np.ndarray):
        name = f"{prefix}"
        consts[name] = np.ascontiguousarray(v)
        return {"__const__": name}
    if isinstance(v, (list, tuple)):
        return [_enc(x, consts, f"{prefix}.{i}") for i, x in enumerate(v)]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if not np.isfinite(f):
            return {"__float__": repr(f)}
        return f
    if isinstance(v, (int, str, bool)) or v is None:
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    raise ModelError(f"attribute value of type {type(v).__name__} cannot be compiled ({prefix})")


class _Lowerer:
    def __init__(self, graph: Graph, opts: LowerOptions, ranges: "Ranges | None", log: "Callable[[str], None]"):
        self.g = graph
        self.o = opts
        self.ranges = ranges
        self.log = log
        self.base_mode = opts.mode
        self.mode = opts.mode  # the mode of the node being lowered (hybrid builds mix w8a8 and float16)
        self.region_mode: "dict[str, str]" = {}
        self.tensors: "dict[str, TensorSpec]" = {}
        self.steps: "list[Step]" = []
        self.consts: "dict[str, np.ndarray]" = {}
        # graph value -> {'q': int8 tensor, 'h': float16 tensor, 'f': float32 tensor, 'i': other (ints)}
        self.rep: "dict[str, dict[str, str]]" = {}
        # unary regions: value -> (root value, list of absorbed nodes producing it, in order)
        self.region: "dict[str, str]" = {}
        self.absorbed: "dict[str, Node]" = {}
        self.producers = graph.producers()
        self.consumers: "dict[str, list[Node]]" = {}
        for n in graph.nodes:
            for r in n.refs:
                self.consumers.setdefault(r, []).append(n)
        self.qp_override: "dict[str, tuple[float, int]]" = {}
        self.skip: "set[int]" = set()  # nodes folded into an earlier step
        self.tensors_const_qp: "dict[str, tuple[float, int]]" = {}  # quantized constant operands of add / mul
        # quantization a QDQ model fixes (compiler/qdq.py): activations' (scale, zp) win over calibration
        self.quant: "QuantParams | None" = graph.quant if isinstance(graph.quant, QuantParams) else None
        self.fixed_qp: "dict[str, tuple[float, int]]" = self.quant.activations if self.quant else {}
        # op_target: node -> 'cpu' / 'npu' (names checked and resolved by check_op_targets)
        self.layers = _layers(graph)
        self.target: "dict[int, str]" = {id(self.layers[k]): v for k, v in opts.op_targets.items()}

    # --- tensors --------------------------------------------------------------------------------------
    def shape(self, v: str) -> "tuple[int, ...]":
        s = self.g.values[v].shape
        if s is None:
            raise ModelError(f"tensor {v!r} has no static shape; give the input sizes (input_size_list)")
        return tuple(s)

    def qparams(self, v: str) -> "tuple[float, int]":
        if v in self.qp_override:
            return self.qp_override[v]
        if v in self.fixed_qp:
            return self.fixed_qp[v]
        r = self.ranges.get8(v) if self.ranges is not None else None
        if r is None and self.ranges is None:
            raise ModelError(f"tensor {v!r} has no quantization: the model's QuantizeLinear / DequantizeLinear pairs "
                             "do not fix it and no calibration dataset was given")
        if r is None:
            raise ModelError(f"no calibration range for tensor {v!r}")
        return activation_qparams(*r)

    def wide_qparams(self, v: str) -> "tuple[float, int]":
        r = self.ranges.get(v) if self.ranges is not None else None
        if r is None:
            raise ModelError(f"no calibration range for tensor {v!r}")
        return wide_qparams(*r)

    def new_tensor(self, name: str, shape, dtype: str, qp=None) -> str:
        if name in self.tensors:
            raise ModelError(f"internal: tensor {name!r} defined twice")
        self.tensors[name] = TensorSpec(name, tuple(int(d) for d in shape), dtype, *(qp if qp else (None, None)))
        return name

    def const(self, name: str, arr: np.ndarray) -> str:
        self.consts[name] = np.ascontiguousarray(arr)
        return name

    def add_step(self, kind, node_name, inputs, outputs, attrs=None, target="NPU", op_type=""):
        self.steps.append(Step(kind, node_name, list(inputs), list(outputs), attrs or {}, target, op_type))

    def set_rep(self, v: str, form: str, tname: str) -> None:
        self.rep.setdefault(v, {})[form] = tname

    def need(self, v: str, form: str) -> str:
        """A program tensor holding graph value ``v`` in ``form`` ('q' int8, 'h' float16, 'f' float32),
        inserting a conversion step if needed."""
        if v in self.region and v not in self.rep:
            self.materialize(v)
        reps = self.rep.get(v)
        if reps is None:
            raise ModelError(f"internal: value {v!r} used before it is produced")
        if form in reps:
            return reps[form]
        shape = self.shape(v)
        if form == "q" and "w" in reps:
            ys, yz = self.qparams(v)
            t = self.requant(reps["w"], ys, yz, v)
        elif form == "q":
            src = reps.get("f") or reps.get("h")
            qp = self.qparams(v)
            t = self.new_tensor(v + "#q", shape, "int8", qp)
            self.add_step("quantize", v, [src], [t], target="NPU", op_type="Quantize")
        elif form == "w":  # int16 from float (hybrid builds: a float16 layer's output read by tables)
            src = reps.get("f") or reps.get("h")
            t = self.new_tensor(v + "#w", shape, "int16", self.wide_qparams(v))
            self.add_step("quantize", v, [src], [t], target="NPU", op_type="Quantize")
        elif form == "h":
            src = reps.get("f") or reps.get("q") or reps.get("w")
            t = self.new_tensor(v + "#h", shape, "float16")
            self.add_step("cast", v, [src], [t], target="NPU", op_type="Cast")
        elif form == "f":
            src = reps.get("h") or reps.get("q") or reps.get("w") or reps.get("i")
            t = self.new_tensor(v + "#f", shape, "float32")
            self.add_step("cast", v, [src], [t], target="CPU", op_type="Dequantize")
        else:
            raise ModelError(f"internal: form {form!r}")
        self.set_rep(v, form, t)
        return t

    def stored_form(self, v: str) -> "str | None":
        """The NPU-side form of v if it has one ('q' or 'h')."""
        if v in self.region and v not in self.rep:
            return "h" if self.region_mode[v] == "float16" else "q"
        reps = self.rep.get(v, {})
        for f in ("q", "h", "w"):
            if f in reps:
                return f
        return None

    def npu_form(self) -> str:
        return {"w8a8": "q", "float16": "h", "float32": "f"}[self.mode]

    def node_mode(self, n: Node) -> str:
        """The build mode of node n: the base mode unless hybrid quantization names the node or an output."""
        lm = self.o.layer_modes
        if not lm:
            return self.base_mode
        m = lm.get(n.name)
        for o in n.outputs:
            if m is None and o:
                m = lm.get(o)
        return m or self.base_mode

    def out_tensor(self, v: str, form: str, qp=None) -> str:
        dt = {"q": "int8", "h": "float16", "f": "float32", "w": "int16"}[form]
        if form == "f" and self.g.values[v].dtype.kind != "f":
            dt = self.g.values[v].dtype.name
            form = "i"
        if form == "q" and qp is None:
            qp = self.qparams(v)
        if form == "w" and qp is None:
            qp = self.wide_qparams(v)
        name = v if v not in self.tensors else v + "#" + form
        self.new_tensor(name, self.shape(v), dt, qp)
        self.set_rep(v, form, name)
        return name

    # --- entry ----------------------------------------------------------------------------------------
    def run(self) -> Program:
        g = self.g
        for i, name in enumerate(g.inputs):
            v = g.values[name]
            if v.dtype.kind != "f":
                form = "f"
            else:
                form = self.npu_form()
            shape = self.shape(name)
            user = name + "#in"
            self.new_tensor(user, shape, "float32")
            mean = self.o.means[i] if i < len(self.o.means) else None
            std = self.o.stds[i] if i < len(self.o.stds) else None
            attrs = {"dtype_declared": v.dtype.name}
            if mean is not None:
                attrs["mean"] = [float(x) for x in np.asarray(mean, np.float32).reshape(-1)]
            if std is not None:
                attrs["std"] = [float(x) for x in np.asarray(std, np.float32).reshape(-1)]
            t = self.out_tensor(name, form)
            self.add_step("input", name, [user], [t], attrs, target="NPU" if form != "f" else "CPU", op_type="Input")
        for n in g.nodes:
            self.mode = self.node_mode(n)
            self.lower_node(n)
        self.mode = self.base_mode
        self.check_npu_targets()
        outs = []
        for name in g.outputs:
            if g.is_const(name):
                c = self.const(name + "#const", np.asarray(g.const(name)))
                t = self.new_tensor(name + "#out", np.shape(g.const(name)), "float32")
                self.add_step("output", name, [c], [t], target="CPU", op_type="Output")
                outs.append(t)
                continue
            reps = self.rep.get(name) or {}
            if name in self.region and not reps:
                self.materialize(name)
                reps = self.rep[name]
            src = reps.get("f") or reps.get("i") or reps.get("q") or reps.get("w") or reps.get("h")
            dt = "float32" if g.values[name].dtype.kind == "f" else g.values[name].dtype.name
            t = self.new_tensor(name + "#out", self.shape(name), dt)
            self.add_step("output", name, [src], [t], target="CPU", op_type="Output")
            outs.append(t)
        prog = Program(
            self.tensors,
            self.steps,
            self.consts,
            [n + "#in" for n in g.inputs],
            outs,
            {
                "input_names": list(g.inputs),
                "output_names": list(g.outputs),
                # program tensor -> the graph value it holds (accuracy analysis, reports)
                "values": {t: v for v, reps in self.rep.items() for t in reps.values()},
                "layer_modes": {k: v for k, v in sorted(self.o.layer_modes.items())},
                **({"op_target": dict(sorted(self.o.op_targets.items()))} if self.o.op_targets else {}),
            },
        )
        prog.validate()
        return prog

    def check_npu_targets(self) -> None:
        """op_target 'npu' is a request the lowering must have met: the layer is one of an NPU step's, inside
        an NPU lookup table, or folded into an NPU step."""
        on_npu = {s.name for s in self.steps if s.target == "NPU" and s.kind not in ("cast", "quantize")}
        for k, v in self.o.op_targets.items():
            n = self.layers[k]
            if v != "npu" or id(n) in self.skip or n.outputs[0] in self.region or (n.name and n.name in on_npu):
                continue
            raise ValueError(
                f"op_target asks for {k!r} ({n.op_type}) on the NPU, but npuemu runs it on the CPU in this "
                f"{self.base_mode} build (the op has no NPU form here or is outside the platform's limits); "
                f"valid for it: 'cpu'"
            )

    # --- nodes ----------------------------------------------------------------------------------------
    def is_const(self, v: str) -> bool:
        return bool(v) and self.g.is_const(v)

    def lower_node(self, n: Node) -> None:
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(n.op_type, n.name, "custom-domain ops are not supported", n.domain)
        if lookup(n.op_type, n.domain) is None:
            raise UnsupportedOpError(n.op_type, n.name, "npuemu has no implementation of this op")
        op = n.op_type
        if id(n) in self.skip:
            return
        if self.mode != "float32" and not self.on_cpu(n):
            if self.try_absorb(n):
                return
            if op == "Conv" and self.lower_conv(n):
                return
            if op in ("Gemm", "MatMul") and self.lower_matmul(n):
                return
            if op in ("Add", "Mul") and self.lower_eltwise(n):
                return
            if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool") and self.lower_pool(n):
                return
            if op == "Concat" and self.lower_concat(n):
                return
            if op in _NPU_MOVE and self.lower_move(n):
                return
            if self.mode == "float16" and op in _ELEMENTWISE and self.lower_fp16_elementwise(n):
                return
        self.lower_eval(n, target="CPU")

    # eval: the golden implementation in float32 ---------------------------------------------------------
    def node_attrs(self, n: Node, prefix: str) -> dict:
        return {k: _enc(v, self.consts, f"{prefix}@{k}") for k, v in n.attrs.items()}

    def step_inputs(self, n: Node, variable: "Callable[[str], str]") -> "list[str]":
        """The program tensors of n's inputs: '' for an absent one, the constant's tensor, else ``variable(x)``."""
        return ["" if not x else self.const_ref(x) if self.is_const(x) else variable(x) for x in n.inputs]

    def eval_inputs(self, n: Node) -> "list[str]":
        def stored(x: str) -> str:  # any stored form: the CPU step converts it
            reps = self.rep.get(x) or {}
            if x in self.region and not reps:
                self.materialize(x)
                reps = self.rep[x]
            return reps.get("f") or reps.get("i") or reps.get("q") or reps.get("w") or reps.get("h")

        return self.step_inputs(n, stored)

    def const_ref(self, x: str) -> str:
        name = x + "#c"
        if name not in self.consts:
            self.const(name, np.asarray(self.g.const(x)))
        return name

    def lower_eval(self, n: Node, target: str, form: str = "f") -> None:
        if any(isinstance(v, Graph) for v in n.attrs.values()):
            raise UnsupportedOpError(n.op_type, n.name, "ops with subgraphs (If, Loop, Scan) are not supported")
        ins = self.eval_inputs(n)
        add = n.attrs.get("_add")
        if add:
            ins.append(self.eval_inputs(Node("X", "x", [add], []))[0])
        outs = [self.out_tensor(o, form) if o else "" for o in n.outputs]
        attrs = {"op_type": n.op_type, "node_attrs": self.node_attrs(n, n.name), "n_inputs": len(n.inputs)}
        self.add_step("eval", n.name, ins, outs, attrs, target=target, op_type=n.op_type)

    # unary regions (w8a8) -------------------------------------------------------------------------------
    def try_absorb(self, n: Node) -> bool:
        if n.op_type not in _LUT_OK or "_add" in n.attrs or len(n.outputs) != 1:
            return False
        root = None
        for x in n.inputs:
            if not x:
                continue
            if self.is_const(x):
                if np.asarray(self.g.const(x)).size != 1:
                    return False
                continue
            r = self.region.get(x, x)
            if r != x and x not in self.region:
                return False
            if root is None:
                root = r
            elif root != r:
                return False
        if root is None:
            return False
        y = n.outputs[0]
        if self.g.values[y].dtype.kind != "f" or self.shape(y) != self.shape(root):
            return False
        if root in self.region:
            return False
        # a root op_target put on the CPU: the table reads its float32 result stored back for the NPU
        stored = self.stored_form(root) or ("h" if self.cpu_target(root) else None)
        if self.mode == "float16":
            # a float16 table reads float16; in a hybrid build the root may be int8 / int16 (then cast)
            if stored not in ("h", "q", "w") or n.op_type not in _FP16_TABLE_OK:
                return False
        elif stored is None or (
            y not in self.fixed_qp and (self.ranges is None or self.ranges.get(y) is None)
        ):
            return False
        self.region[y] = root
        self.region_mode[y] = self.mode
        self.absorbed[y] = n
        return True

    def materialize(self, v: str) -> None:
        """Emits the lookup table root -> v of the unary region containing v."""
        root = self.region[v]
        chain: "list[Node]" = []
        seen = set()

        def visit(t: str) -> None:
            if t == root or t in seen or t not in self.absorbed:
                return
            seen.add(t)
            node = self.absorbed[t]
            for x in node.inputs:
                if x and not self.is_const(x):
                    visit(x)
            chain.append(node)

        visit(v)
        reps = self.rep.get(root, {})
        fp16 = self.region_mode[v] == "float16"
        if fp16:
            src = self.need(root, "h")
        else:
            if "q" not in reps and ("w" in reps or "h" in reps):
                src = self.need(root, "w")  # the table reads 16 bits (a float16 root: hybrid builds)
            else:
                src = self.need(root, "q")
        xs, xz = self.tensors[src].scale, self.tensors[src].zero_point
        codes = table_index(self.tensors[src].dtype)  # table index = the stored value's bit pattern
        if fp16:
            env = {root: codes.astype(np.float32)}
        else:
            env = {root: ((codes.astype(np.float32) - np.float32(xz)) * np.float32(xs)).astype(np.float32)}
        for node in chain:
            ins = []
            for x in node.inputs:
                if not x:
                    ins.append(None)
                elif self.is_const(x):
                    c = np.asarray(self.g.const(x)).reshape(())  # scalar constants only (try_absorb)
                    ins.append(c.astype(np.float32) if c.dtype.kind == "f" else c)
                else:
                    ins.append(env[x])
            env[node.outputs[0]] = run_node(node, ins)[0].astype(np.float32).reshape(codes.size)
            if node.outputs[0] != v and node.outputs[0] in self.fixed_qp and not fp16:
                s_, z_ = self.fixed_qp[node.outputs[0]]  # a QDQ model rounds this intermediate: so does the table
                env[node.outputs[0]] = dequantize_f32(quantize_f32(env[node.outputs[0]], s_, z_), s_, z_)
        if fp16:
            # float16 -> float16: the chain in float32 on every float16 value, rounded once to float16
            tname = self.out_tensor(v, "h")
            with np.errstate(over="ignore", invalid="ignore"):  # beyond 65504: inf, as IEEE rounding gives
                table = env[v].astype(np.float16)
        elif self.leaves_npu(v) and v not in self.fixed_qp:
            ys, yz = self.wide_qparams(v)
            table = quantize_f32(env[v], ys, yz, dtype=np.int16)
            tname = self.out_tensor(v, "w", (ys, yz))
        else:
            ys, yz = self.qparams(v)
            table = quantize_f32(env[v], ys, yz)
            tname = self.out_tensor(v, "q", (ys, yz))
        ops = "+".join(n.op_type for n in chain)
        tab = self.const(tname + "#lut", table)
        self.add_step("lut", chain[-1].name, [src, tab], [tname], {"chain": ops}, target="NPU", op_type=ops)

    # conv ------------------------------------------------------------------------------------------------
    def conv_on_npu(self, n: Node, w: np.ndarray) -> "tuple[bool, str]":
        L = self.o.limits
        k = w.shape[2:]
        if len(k) != 2:
            return False, "not 2-D"
        strides = n.attrs.get("strides", [1, 1])
        dil = n.attrs.get("dilations", [1, 1])
        pads = n.attrs.get("pads", [0, 0, 0, 0])
        group = int(n.attrs.get("group", 1))
        x_c = self.shape(n.inputs[0])[1]
        depthwise = group == x_c and group > 1 and w.shape[1] == 1
        kmax = L["dw_kernel"] if depthwise else L["conv_kernel"]
        if max(k) > kmax:
            return False, f"kernel {tuple(k)} > {kmax}"
        if max(strides) > L["conv_stride"]:
            return False, f"stride {tuple(strides)} > {L['conv_stride']}"
        if max(pads) > L["conv_pad"]:
            return False, f"pads {tuple(pads)} > {L['conv_pad']}"
        if max(dil) > L["conv_dilation"]:
            return False, f"dilation {tuple(dil)} > {L['conv_dilation']}"
        if n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
            return False, "auto_pad"
        return True, ""

    def activation(self, n: Node):
        act = n.attrs.get("_act")
        if act is None:
            return None
        kind = act[0]
        if kind == "relu":
            return "relu"
        if kind == "clip":
            return ("clip", float(act[1]), float(act[2]))
        if kind == "leaky_relu":
            return ("leaky_relu", float(act[1]))
        if kind == "hard_swish" and self.mode == "float16":
            return "hard_swish"  # the float16 output stage's (docs/arithmetic.md section 5)
        return False  # not an output-stage activation

    def lower_conv(self, n: Node) -> bool:
        x, w = n.inputs[0], n.input(1)
        b = n.input(2)
        if not self.is_const(w) or (b and not self.is_const(b)) or "_add" in n.attrs:
            return False
        if len(self.shape(x)) != 4:
            return False
        wv = np.asarray(self.g.const(w), np.float32)
        act = self.activation(n)
        if act is False:
            return False
        ok, _why = self.conv_on_npu(n, wv)
        if not ok:
            return False
        form = self.npu_form()
        y = n.outputs[0]
        attrs = {
            "strides": [int(s) for s in n.attrs.get("strides", [1, 1])],
            "pads": [int(p) for p in n.attrs.get("pads", [0, 0, 0, 0])],
            "dilations": [int(d) for d in n.attrs.get("dilations", [1, 1])],
            "group": int(n.attrs.get("group", 1)),
            "activation": act,
        }
        # ONNX pads (top, left, bottom, right) are [x1_begin, x2_begin, x1_end, x2_end]: the same order
        bias = np.asarray(self.g.const(b), np.float32) if b else None
        xin = self.need(x, form)
        if form == "q":
            xs = self.tensors[xin].scale
            wq, ws = weight_int8(self.quant, w, wv, self.o.per_channel, axis=0, log=self.log)
            bq = bias_int32(self.quant, b, bias, xs, ws, wv.shape[0])
            yt = self.out_tensor(y, "w" if self.wide_output(y) else "q")
            ins = [xin, self.const(n.name + "#w", wq), self.const(n.name + "#ws", ws)]
            ins.append(self.const(n.name + "#b", bq) if bq is not None else "")
        else:
            yt = self.out_tensor(y, "h")
            ins = [xin, self.const(n.name + "#w", wv.astype(np.float16))]
            ins += ["", self.const(n.name + "#b", bias.astype(np.float16)) if bias is not None else ""]
        self.add_step("conv", n.name, ins, [yt], attrs, target="NPU", op_type="Conv")
        return True

    # matmul / gemm ---------------------------------------------------------------------------------------
    def lower_matmul(self, n: Node) -> bool:
        a, bname = n.inputs[0], n.input(1)
        if not self.is_const(bname) or "_add" in n.attrs:
            return False
        B = np.asarray(self.g.const(bname), np.float32)
        bias = None
        if n.op_type == "Gemm":
            if int(n.attrs.get("transA", 0)):
                return False
            if len(self.shape(a)) != 2:
                return False
            if int(n.attrs.get("transB", 0)):
                B = B.T
            B = B * np.float32(n.attrs.get("alpha", 1.0))
            c = n.input(2)
            if c:
                if not self.is_const(c):
                    return False
                cv = np.asarray(self.g.const(c), np.float32) * np.float32(n.attrs.get("beta", 1.0))
                if cv.size not in (1, B.shape[1]) or (cv.ndim == 2 and cv.shape[0] != 1):
                    return False
                bias = np.broadcast_to(cv.reshape(-1), (B.shape[1],)).astype(np.float32)
        if B.ndim != 2 or len(self.shape(a)) < 2:
            return False
        act = self.activation(n)
        if act is False:
            return False
        form = self.npu_form()
        y = n.outputs[0]
        ain = self.need(a, form)
        y, bias, act = self.absorb_bias(n, y, bias, act, B.shape[1])
        attrs = {"activation": act}
        if form == "q":
            xs = self.tensors[ain].scale
            wq, ws = weight_int8(self.quant, bname, B, self.o.per_channel, axis=1,
                                 transpose=n.op_type == "Gemm" and bool(int(n.attrs.get("transB", 0))), log=self.log)
            bq = bias_int32(self.quant, n.input(2) if n.op_type == "Gemm" else "", bias, xs, ws, B.shape[1])
            yt = self.out_tensor(y, "w" if self.wide_output(y) else "q")
            ins = [ain, self.const(n.name + "#w", wq), self.const(n.name + "#ws", ws)]
            ins.append(self.const(n.name + "#b", bq) if bq is not None else "")
        else:
            yt = self.out_tensor(y, "h")
            ins = [ain, self.const(n.name + "#w", np.ascontiguousarray(B.astype(np.float16))), ""]
            ins.append(self.const(n.name + "#b", bias.astype(np.float16)) if bias is not None else "")
            self.add_step("matmul", n.name, ins, [yt], attrs, target="NPU", op_type=n.op_type)
            return True
        self.add_step("matmul", n.name, ins, [yt], attrs, target="NPU", op_type=n.op_type)
        return True

    def wide_output(self, y: str) -> bool:
        """Whether an int8 build keeps y in int16: its readers are lookup tables (activations see the
        accumulator at 16-bit precision, as the NPU applies fused activations before the final int8), or it
        leaves the NPU (a graph output, or read only by CPU ops) where int8 would only lose precision. Not
        when the model fixes y's int8 quantization (QDQ): its author chose it."""
        if y in self.fixed_qp or self.ranges is None or self.ranges.get(y) is None:
            return False
        return self.leaves_npu(y) or self.feeds_tables(y) or self.feeds_float16(y)

    def feeds_float16(self, y: str) -> bool:
        """In a hybrid build, y is read by a float16 layer: int16 keeps its precision until the cast."""
        return bool(self.o.layer_modes) and any(
            self.node_mode(c) == "float16" for c in self.consumers.get(y, [])
        )

    def leaves_npu(self, y: str, depth: int = 0) -> bool:
        """y is a graph output, or read only by CPU ops, or only moved (reshaped, transposed, sliced) into
        such tensors."""
        if y in self.g.outputs:
            return True
        cons = self.consumers.get(y, [])
        if not cons or depth > 16:
            return False
        for c in cons:
            if c.op_type in _MOVE and c.inputs[0] == y and self.g.values[c.outputs[0]].dtype.kind == "f":
                if not all(self.leaves_npu(o, depth + 1) for o in c.outputs if o):
                    return False
            elif not self.cpu_only(c):
                return False
        return True

    def on_cpu(self, n: Node) -> bool:
        """Whether op_target puts node n on the CPU."""
        return self.target.get(id(n)) == "cpu"

    def cpu_target(self, v: str) -> bool:
        """Whether v is the output of a layer op_target puts on the CPU."""
        p = self.producers.get(v)
        return p is not None and self.on_cpu(p)

    def cpu_only(self, n: Node) -> bool:
        """Ops the lowering never puts on the NPU in an int8 build."""
        op = n.op_type
        if self.on_cpu(n):
            return True
        if op in _LUT_OK:
            # element-wise with two variable inputs other than Add / Mul
            variables = [x for x in n.inputs if x and not self.is_const(x)]
            return op not in ("Add", "Mul") and len(set(variables)) > 1
        if op == "MatMul":
            return not self.is_const(n.input(1))
        return op not in _NPU_OPS

    def feeds_tables(self, y: str) -> bool:
        """Whether every reader of y is an element-wise function the DPU can apply as a table: then the MAC
        array's output stage writes y in int16 and the table maps int16 -> int8 (the activation sees the
        accumulator at 16-bit precision, as the NPU applies fused activations before the final int8)."""
        if y in self.g.outputs or self.ranges is None or self.ranges.get(y) is None:
            return False
        cons = self.consumers.get(y, [])
        if not cons:
            return False
        derived = {y} | {o for c in cons for o in c.outputs}  # y and functions of it (x * sigmoid(x))
        for c in cons:
            if c.op_type not in _LUT_OK or "_add" in c.attrs or len(c.outputs) != 1 or self.on_cpu(c):
                return False
            if any(x and not self.is_const(x) and x not in derived for x in c.inputs):
                return False
            for x in c.inputs:
                if x and self.is_const(x) and np.asarray(self.g.const(x)).size != 1:
                    return False
            if self.shape(c.outputs[0]) != self.shape(y):
                return False
        return True

    def absorb_bias(self, n: Node, y: str, bias, act, cols: int):
        """MatMul followed by an Add of a constant row vector (the bias of a linear layer): the Add is
        folded into the matmul's bias (and its fused Relu / Clip into the output stage)."""
        if n.op_type != "MatMul" or act is not None or y in self.g.outputs or y in self.fixed_qp:
            return y, bias, act  # (a QDQ model's own quantization of y: the Add reads y rounded, as there)
        cons = self.consumers.get(y, [])
        if len(cons) != 1 or cons[0].op_type != "Add" or "_add" in cons[0].attrs:
            return y, bias, act
        add = cons[0]
        if self.on_cpu(add):
            return y, bias, act
        other = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
        if not self.is_const(other) or self.shape(add.outputs[0]) != self.shape(y):
            return y, bias, act
        c = np.asarray(self.g.const(other), np.float32)
        if c.size != cols or c.shape[-1] != cols:
            return y, bias, act
        add_act = self.activation(add)
        if add_act is False or (isinstance(add_act, tuple) and add_act[0] == "leaky_relu"):
            return y, bias, act
        self.skip.add(id(add))
        b = c.reshape(-1) if bias is None else bias + c.reshape(-1)
        return add.outputs[0], b, add_act

    # add / mul -------------------------------------------------------------------------------------------
    def lower_eltwise(self, n: Node) -> bool:
        if "_add" in n.attrs:
            return False
        act = self.activation(n)
        if act is False or (isinstance(act, tuple) and act[0] == "leaky_relu"):
            return False
        if len(n.inputs) != 2 or self.g.values[n.outputs[0]].dtype.kind != "f":
            return False
        form = self.npu_form()
        ins = []
        for x in n.inputs:
            if self.is_const(x):
                c = np.asarray(self.g.const(x), np.float32)
                if form == "q":
                    s, z = activation_qparams(float(c.min()), float(c.max()))
                    from ..runtime.program import quantize_f32

                    cq = quantize_f32(c, s, z)
                    name = self.const(n.name + f"#k{len(ins)}", cq)
                    self.tensors_const_qp[name] = (s, z)
                    ins.append(name)
                else:
                    ins.append(self.const(n.name + f"#k{len(ins)}", c.astype(np.float16)))
            else:
                ins.append(self.need(x, form))
        yt = self.out_tensor(n.outputs[0], form)
        attrs = {"activation": act}
        if form == "q":
            attrs["qparams"] = [list(self.qp_of(t)) for t in ins]
        self.add_step(n.op_type.lower(), n.name, ins, [yt], attrs, target="NPU", op_type=n.op_type)
        return True

    def qp_of(self, t: str) -> "tuple[float, int]":
        if t in self.tensors:
            return self.tensors[t].scale, self.tensors[t].zero_point
        return self.tensors_const_qp[t]

    # pools -----------------------------------------------------------------------------------------------
    def lower_pool(self, n: Node) -> bool:
        x = n.inputs[0]
        if len(self.shape(x)) != 4 or len(n.outputs) != 1 or n.outputs[0] == "" or "_act" in n.attrs:
            return False
        L = self.o.limits
        op = n.op_type
        form = self.npu_form()
        if op in ("MaxPool", "AveragePool"):
            k = [int(v) for v in n.attrs.get("kernel_shape", [])]
            s = [int(v) for v in n.attrs.get("strides", [1, 1])]
            if len(k) != 2 or max(k) > L["pool_kernel"] or max(s) > L["pool_stride"]:
                return False
            if int(n.attrs.get("ceil_mode", 0)) or n.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
                return False
            if op == "MaxPool" and len([o for o in n.outputs if o]) != 1:
                return False
            attrs = {
                "kernel_shape": k,
                "strides": s,
                "pads": [int(v) for v in n.attrs.get("pads", [0, 0, 0, 0])],
                "dilations": [int(v) for v in n.attrs.get("dilations", [1, 1])],
                "count_include_pad": int(n.attrs.get("count_include_pad", 0)),
            }
            if op == "AveragePool" and attrs["dilations"] != [1, 1]:
                return False
        elif op == "GlobalAveragePool":
            attrs = {"global": True}
        else:
            return False
        xin = self.need(x, form)
        if op == "MaxPool":
            qp = (self.tensors[xin].scale, self.tensors[xin].zero_point) if form == "q" else None
            yt = self.out_tensor(n.outputs[0], form, qp)
            self.add_step("maxpool", n.name, [xin], [yt], attrs, target="NPU", op_type=op)
        else:
            yt = self.out_tensor(n.outputs[0], form)
            self.add_step("avgpool", n.name, [xin], [yt], attrs, target="NPU", op_type=op)
        return True

    # concat ----------------------------------------------------------------------------------------------
    def lower_concat(self, n: Node) -> bool:
        if self.g.values[n.outputs[0]].dtype.kind != "f" or any(self.is_const(x) for x in n.inputs):
            return False
        form = self.npu_form()
        y = n.outputs[0]
        if form == "q":
            ys, yz = self.qparams(y)
        ins = []
        for x in n.inputs:
            t = self.need(x, form)
            if form == "q" and (self.tensors[t].scale != ys or self.tensors[t].zero_point != yz):
                t = self.requant(t, ys, yz, n.name)
            ins.append(t)
        yt = self.out_tensor(y, form, (ys, yz) if form == "q" else None)
        axis = int(n.attrs.get("axis", 0))
        self.add_step("concat", n.name, ins, [yt], {"axis": axis}, target="NPU", op_type="Concat")
        return True

    def requant(self, t: str, ys: float, yz: int, why: str) -> str:
        spec = self.tensors[t]
        codes = table_index(spec.dtype)
        table = quantize_f32(dequantize_f32(codes, spec.scale, spec.zero_point), ys, yz)
        name = self.new_tensor(f"{t}#r{len(self.steps)}", spec.shape, "int8", (ys, yz))
        tab = self.const(name + "#lut", table)
        self.add_step("lut", why, [t, tab], [name], {"chain": "Requantize"}, target="NPU", op_type="Requantize")
        return name

    # data movement ---------------------------------------------------------------------------------------
    def lower_move(self, n: Node) -> bool:
        x = n.inputs[0]
        form = self.stored_form(x)
        if form is None or self.mode == "float32":
            return False
        op = n.op_type
        if any(self.g.values[o].dtype.kind != "f" for o in n.outputs if o):
            return False
        attrs: dict = {"op_type": op}
        if op == "Resize":
            if n.attrs.get("mode", "nearest") != "nearest" or len(self.shape(x)) != 4:
                return False
            xs, ys = self.shape(x), self.shape(n.outputs[0])
            if xs[:2] != ys[:2]:
                return False
            idx = []
            for axis in (2, 3):
                probe_shape = [1, 1, 1, 1]
                probe_shape[axis] = xs[axis]
                probe = np.arange(xs[axis], dtype=np.float32).reshape(probe_shape)
                out_shape = [1, 1, 1, 1]
                out_shape[axis] = ys[axis]
                node = Node("Resize", n.name, ["p", "", "", "sizes"], ["o"], dict(n.attrs))
                got = run_node(node, [probe, None, None, np.array(out_shape, np.int64)])[0].reshape(-1)
                idx.append(got.astype(np.int64))
            attrs["op_type"] = "ResizeNearest"
            ins = [self.need(x, form), self.const(n.name + "#ih", idx[0]), self.const(n.name + "#iw", idx[1])]
        else:
            if any(x2 and not self.is_const(x2) for x2 in n.inputs[1:]):
                return False
            ins = [self.need(x, form)] + [self.const_ref(x2) if x2 else "" for x2 in n.inputs[1:]]
            attrs["node_attrs"] = self.node_attrs(n, n.name)
            attrs["alias"] = op in _ALIAS
        spec = self.tensors[ins[0]]
        qp = (spec.scale, spec.zero_point) if form == "q" else None
        outs = [self.out_tensor(o, form, qp) if o else "" for o in n.outputs]
        self.add_step("move", n.name, ins, outs, attrs, target="NPU", op_type=op)
        return True

    # float16 element-wise functions ----------------------------------------------------------------------
    def lower_fp16_elementwise(self, n: Node) -> bool:
        if any(self.g.values[o].dtype.kind != "f" for o in n.outputs if o) or "_add" in n.attrs:
            return False
        # on the NPU when an input is there (float16; int8 / int16 in a hybrid build, then cast)
        if not any(self.stored_form(x) is not None for x in n.inputs if x and not self.is_const(x)):
            return False
        ins = self.step_inputs(n, lambda x: self.need(x, "h"))
        outs = [self.out_tensor(o, "h") if o else "" for o in n.outputs]
        attrs = {"op_type": n.op_type, "node_attrs": self.node_attrs(n, n.name), "n_inputs": len(n.inputs)}
        self.add_step("eval", n.name, ins, outs, attrs, target="NPU", op_type=n.op_type)
        return True


LAYER_MODES = {"float16": "float16", "w8a8": "w8a8", "int8": "w8a8"}


def _layers(graph: Graph) -> "dict[str, Node]":
    """Layer name -> node: a layer is named by its node name or by one of its output tensors."""
    named: "dict[str, Node]" = {}
    for n in graph.nodes:
        for o in n.outputs:
            if o:
                named.setdefault(o, n)
        if n.name:
            named.setdefault(n.name, n)
    return named


def _unknown_layers(graph: Graph, what: str, unknown: "list[str]") -> ValueError:
    outs = [n.outputs[0] for n in graph.nodes if n.outputs and n.outputs[0]]
    return ValueError(
        f"{what} names {len(unknown)} unknown layer(s): {', '.join(map(repr, unknown[:5]))}; "
        f"layers are node names or output tensor names of the compiled graph, e.g. "
        f"{', '.join(map(repr, outs[:4]))} (accuracy_analysis lists them all; a tensor the graph passes fused "
        f"into a layer, such as a convolution's activation input, is not one)"
    )


def check_layer_modes(graph: Graph, opts: LowerOptions) -> None:
    """Validates hybrid quantization settings (names exist, modes known) and normalizes 'int8' to 'w8a8'."""
    if not opts.layer_modes:
        return
    if opts.mode != "w8a8":
        raise ValueError(f"per-layer modes (hybrid quantization) apply to w8a8 builds, not {opts.mode}")
    names = _layers(graph)
    unknown = sorted(k for k in opts.layer_modes if k not in names)
    if unknown:
        raise _unknown_layers(graph, "hybrid quantization", unknown)
    bad = sorted({str(v) for v in opts.layer_modes.values() if v not in LAYER_MODES})
    if bad:
        raise ValueError(f"hybrid layer dtype {bad[0]!r} is not supported; valid: float16, int8 (int16 layers are "
                         f"not implemented yet in npuemu)")
    opts.layer_modes = {k: LAYER_MODES[v] for k, v in opts.layer_modes.items()}


# rknn-toolkit2 names a tensor it reshapes to 4-D '<name>_shape4' (its accuracy analysis lists those names,
# and scripts copy them into op_target); npuemu keeps the tensor's own shape, so the suffix names the same layer
SHAPE4_SUFFIX = "_shape4"


def resolve_name(names: "Container[str]", k: str) -> "str | None":
    """``k`` if it is one of ``names``, else ``k`` without rknn-toolkit2's '_shape4' suffix if that is one."""
    if k in names:
        return k
    if k.endswith(SHAPE4_SUFFIX) and k[: -len(SHAPE4_SUFFIX)] in names:
        return k[: -len(SHAPE4_SUFFIX)]
    return None


def check_op_targets(graph: Graph, opts: LowerOptions) -> None:
    """Validates config(op_target=...) against the compiled graph and resolves each name to a layer name
    (a vendor '<name>_shape4' to '<name>')."""
    if not opts.op_targets:
        return
    names = _layers(graph)
    resolved: "dict[str, str]" = {}
    by_node: "dict[int, tuple[str, str]]" = {}
    unknown = []
    for k, v in opts.op_targets.items():
        if v not in OP_TARGETS:
            raise ValueError(f"op_target {k!r}: target {v!r} is not supported; valid: {', '.join(OP_TARGETS)}")
        name = resolve_name(names, k)
        if name is None:
            unknown.append(k)
            continue
        k = name
        first = by_node.setdefault(id(names[k]), (k, v))
        if first[1] != v:
            raise ValueError(f"op_target names layer {names[k].name or k!r} twice, as {first[0]!r} ({first[1]}) "
                             f"and as {k!r} ({v})")
        resolved[k] = v
    if unknown:
        raise _unknown_layers(graph, "op_target", sorted(unknown))
    if opts.mode == "float32" and "npu" in resolved.values():
        k = next(k for k, v in resolved.items() if v == "npu")
        raise ValueError(f"op_target asks for {k!r} on the NPU, but a float32 build (npuemu's golden path) runs "
                         f"every layer on the CPU; build float16 or w8a8 for NPU layers")
    opts.op_targets = resolved


def wide_qparams(lo: float, hi: float) -> "tuple[float, int]":
    """int16 asymmetric (scale, zero point) covering [lo, hi] and 0 (pre-activation tensors)."""
    lo = min(float(lo), 0.0)
    hi = max(float(hi), 0.0)
    scale = np.float32((hi - lo) / 65535.0)
    if not np.isfinite(scale) or scale < np.float32(1e-30):
        return 1.0 / 65535.0, 0
    scale = float(scale)
    zp = int(np.clip(np.round(-32768.0 - lo / scale), -32768, 32767))
    return scale, zp


def lower(
    graph: Graph, opts: LowerOptions, ranges: "Ranges | None" = None, log: "Callable[[str], None] | None" = None
) -> Program:
    """Lowers an optimized graph (see :func:`npuemu.compiler.prepare_graph`) to a program."""
    if opts.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {opts.mode!r}")
    if opts.mode == "w8a8" and ranges is None and not has_fixed_quantization(graph):
        raise ValueError("a w8a8 build needs calibration ranges (or a QDQ model fixing its quantization)")
    check_layer_modes(graph, opts)
    check_op_targets(graph, opts)
    lw = _Lowerer(graph, opts, ranges, log or (lambda s: None))
    return lw.run()
