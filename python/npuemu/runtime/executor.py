"""The runtime: executes a :class:`~npuemu.runtime.program.Program` on the emulated NPU (the C++ core).

Everything is prepared once in :class:`Runtime`: the core's operators (weights packed, output stages
derived, kernels chosen), and the memory plan: every intermediate tensor gets a view into a buffer
shared with tensors whose lifetimes do not overlap (reshape-like moves are views of their input). An
inference then runs the steps in order with ``out=`` buffers: the NPU steps allocate nothing; CPU-fallback
steps run numpy and allocate their own temporaries; the outputs handed to the user are new arrays.
The host conversions (the input step's mean / std and quantization, quantize and cast steps, the stores
of CPU-fallback results) run in one pass of the core (``_core.normalize_store``), bit-identical to the
numpy path of :mod:`~npuemu.runtime.host` that the reference executor keeps (tests/test_host_fast.py); the
conversions between int8 / int16 and float16 (hybrid builds) as lookups through a table of that numpy path's
results over every stored value (tests/test_hybrid.py);
CPU-fallback ops run their golden implementation looked up once, inside one ``np.errstate`` per inference.
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np

from .. import _args as A
from .. import _core
from ..errors import ModelError, NpuError
from . import host
from .program import Program, Step, codes, dequantize_f32, quantize_f32

__all__ = ["Runtime"]

_F32 = np.dtype(np.float32)


def _conv_args(**kw) -> dict:
    # the argument dictionary of the core's ConvOp, validated like npuemu.ops does
    from ..ops import _conv_args as conv_args

    return conv_args(**kw)


class _Plan:
    """Liveness-based buffer assignment."""

    def __init__(self, prog: Program):
        self.prog = prog
        root: "dict[str, str]" = {}
        for s in prog.steps:
            if s.kind == "move" and s.attrs.get("alias"):
                root[s.outputs[0]] = root.get(s.inputs[0], s.inputs[0])
        self.root = root
        last: "dict[str, int]" = {}
        first: "dict[str, int]" = {}
        n = len(prog.steps)
        for i, s in enumerate(prog.steps):
            for x in s.inputs:
                if x in prog.tensors:
                    last[root.get(x, x)] = i
            for y in s.outputs:
                if y:
                    r = root.get(y, y)
                    first.setdefault(r, i)
                    last[r] = max(last.get(r, i), i)
        for o in prog.outputs:
            last[root.get(o, o)] = n
        self.first, self.last = first, last

    def allocate(self, reuse: bool = True) -> "tuple[dict[str, np.ndarray], int]":
        prog = self.prog
        free: "list[np.ndarray]" = []  # uint8 arenas
        views: "dict[str, np.ndarray]" = {}
        arena_of: "dict[str, np.ndarray]" = {}
        total = 0
        ends: "dict[int, list[str]]" = {}
        for r, i in self.last.items():
            ends.setdefault(i, []).append(r)
        user = set(prog.inputs) | set(prog.outputs)
        for i, s in enumerate(prog.steps):
            for y in s.outputs:
                if not y or y in user or y in self.root:
                    continue
                spec = prog.tensors[y]
                nbytes = int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize
                best = None
                for k, buf in enumerate(free):
                    if buf.nbytes >= nbytes and (best is None or buf.nbytes < free[best].nbytes):
                        best = k
                if best is None:
                    buf = np.empty(max(nbytes, 64), np.uint8)
                    total += buf.nbytes
                else:
                    buf = free.pop(best)
                arena_of[y] = buf
                views[y] = buf[:nbytes].view(spec.dtype).reshape(spec.shape)
            for r in ends.get(i, []) if reuse else ():
                if r in arena_of:
                    free.append(arena_of.pop(r))
        return views, total


lookup = _core.lookup_table  # y[i] = table[bit pattern of x[i]] (x, y and table of 1 or 2 bytes)


def _tabulable(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether an element-wise conversion x -> y can run as ``lookup``: 1- or 2-byte elements, C-contiguous."""
    return x.itemsize in (1, 2) and y.itemsize in (1, 2) and x.flags.c_contiguous and y.flags.c_contiguous


def _table(dtype, f: "Callable[[np.ndarray], np.ndarray]") -> np.ndarray:
    """``f`` (an element-wise function, applied as the steps' numpy path applies it) on every value of
    ``dtype``, in bit-pattern order: a lookup through it gives f's results bit for bit, in one pass of the
    core instead of numpy's float16 arithmetic (the conversions between the int8 / int16 and float16 layers
    of a hybrid build)."""
    with np.errstate(all="ignore"):  # NaN and infinity codes: as a run computes them (see Runtime.run)
        return np.ascontiguousarray(f(codes(dtype)))


class Runtime:
    """A program prepared for execution. ``core_mask`` uses RKNN's values (0 auto, 1/2/4, 3, 7, 0xffff)."""

    def __init__(self, prog: Program, core_mask: int = 0, keep_all: bool = False):
        """``keep_all=True`` gives every tensor its own buffer, so all of them can be read after a run
        (:meth:`tensor`); accuracy analysis uses it."""
        self.prog = prog
        self.core_mask = A.core_mask(core_mask)
        plan = _Plan(prog)
        self.buffers, self.arena_bytes = plan.allocate(reuse=not keep_all)
        self.root = plan.root
        self.consts = prog.consts
        self.fns: "list[Callable[[], None]]" = []
        self._user_in: "dict[str, np.ndarray]" = {}
        self._user_out: "dict[str, np.ndarray]" = {}
        for s in prog.steps:
            try:
                self.fns.append(self._prepare(s))
            except (ValueError, TypeError, KeyError, IndexError) as e:
                raise ModelError(f"cannot prepare step {s.kind} {s.name!r} ({s.op_type}): {e}") from e
        self.step_times: "np.ndarray | None" = None

    # --- values -----------------------------------------------------------------------------------------
    def _arr(self, name: str) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        if name in self.buffers:
            return self.buffers[name]
        if name in self.root:
            src = self._arr(self.root[name])
            spec = self.prog.tensors[name]
            v = src.reshape(spec.shape)
            self.buffers[name] = v
            return v
        raise ModelError(f"tensor {name!r} has no buffer")

    def _get(self, name: str) -> Callable[[], np.ndarray]:
        """Accessor (user inputs are bound at run time)."""
        if name in self.prog.inputs:
            d = self._user_in
            return lambda: d[name]
        a = self._arr(name)
        return lambda: a

    # --- steps ------------------------------------------------------------------------------------------
    def _prepare(self, s: Step) -> Callable[[], None]:
        P = self.prog
        mask = self.core_mask
        k = s.kind
        if k == "input":
            src = self._get(s.inputs[0])
            # host.store(host.normalize_input(x, s), ...): one pass of the core (bit-identical) for float32 /
            # uint8 inputs of the model's shape
            put = host.input_storer(s.attrs.get("mean"), s.attrs.get("std"), P.tensors[s.outputs[0]],
                                    self._arr(s.outputs[0]))
            return lambda: put(src())
        if k == "output":
            name = s.inputs[0]
            spec = P.tensors.get(name)
            x = self._get(name)
            out = self._user_out
            key = s.outputs[0]

            def run_output():
                a = x()
                if spec is not None and spec.quantized:
                    out[key] = dequantize_f32(a, spec.scale, spec.zero_point)
                else:
                    out[key] = a.astype(np.float32 if a.dtype.kind == "f" else a.dtype, copy=True)

            return run_output
        if k in ("conv", "matmul"):
            return self._prepare_conv(s)
        if k in ("add", "mul"):
            a, b = (self._arr(t) for t in s.inputs)
            y = self._arr(s.outputs[0])
            act = s.attrs.get("activation")
            kind, lo, hi, _ = A.activation(tuple(act) if isinstance(act, list) else act)
            if y.dtype == np.int8:
                (sa, za), (sb, zb) = s.attrs["qparams"]
                ys = P.tensors[s.outputs[0]]
                quant = dict(quantized=True, a_scale=sa, b_scale=sb, y_scale=ys.scale, a_zero_point=za,
                             b_zero_point=zb, y_zero_point=ys.zero_point)
            else:  # float16: no scales
                quant = dict(quantized=False, a_scale=1.0, b_scale=1.0, y_scale=1.0, a_zero_point=0,
                             b_zero_point=0, y_zero_point=0)
            eop = _core.eltwise_cached(op=k, dtype=y.dtype.name, a_shape=list(a.shape), b_shape=list(b.shape),
                                       rounding="fixed_point", activation=kind, act_lo=lo, act_hi=hi, kernel="",
                                       **quant)
            if tuple(eop.y_shape) != y.shape:
                raise ModelError(f"{k} {s.name!r}: output shape {tuple(eop.y_shape)} != {y.shape}")
            return lambda: eop.run(a, b, y, mask)
        if k in ("maxpool", "avgpool"):
            x = self._arr(s.inputs[0])
            y = self._arr(s.outputs[0])
            at = s.attrs
            xs, ys = P.tensors[s.inputs[0]], P.tensors[s.outputs[0]]
            quant = k == "avgpool" and xs.quantized
            if at.get("global"):
                op, ks, st, pads, dil = "global_avg", [x.shape[2], x.shape[3]], [1, 1], [0, 0, 0, 0], [1, 1]
            else:
                op = "max" if k == "maxpool" else "avg"
                ks, st, pads, dil = at["kernel_shape"], at["strides"], at["pads"], at["dilations"]
            pop = _core.pool_cached(op=op, dtype=x.dtype.name, x_shape=list(x.shape), kernel_shape=list(ks),
                                    strides=list(st), pads=list(pads), dilations=list(dil), ceil_mode=False,
                                    count_include_pad=bool(at.get("count_include_pad", 0)), quantized=quant,
                                    x_scale=xs.scale if quant else 1.0, x_zero_point=xs.zero_point if quant else 0,
                                    y_scale=ys.scale if quant else 1.0, y_zero_point=ys.zero_point if quant else 0,
                                    rounding="fixed_point", kernel="")
            if tuple(pop.y_shape) != y.shape:
                raise ModelError(f"{k} {s.name!r}: output shape {tuple(pop.y_shape)} != {y.shape}")
            return lambda: pop.run(x, y, mask)
        if k == "lut":
            x = self._arr(s.inputs[0])
            table = self._arr(s.inputs[1])
            y = self._arr(s.outputs[0])
            if table.size != (256 if x.itemsize == 1 else 65536):
                raise ModelError(f"lut {s.name!r}: a table of {table.size} entries for {x.dtype} input")
            return lambda: lookup(table, x, y)
        if k == "concat":
            xs = [self._arr(t) for t in s.inputs]
            y = self._arr(s.outputs[0])
            axis = int(s.attrs["axis"])
            return lambda: np.concatenate(xs, axis=axis, out=y)
        if k == "move":
            return self._prepare_move(s)
        if k == "eval":
            return self._prepare_eval(s)
        if k == "quantize":
            x = self._arr(s.inputs[0])
            y = self._arr(s.outputs[0])
            spec = P.tensors[s.outputs[0]]
            if x.dtype == _F32:
                return functools.partial(host.storer(spec, y), x)
            if x.dtype == np.float16 and _tabulable(x, y):  # float16 -> int8 / int16 (hybrid builds)
                table = _table(x.dtype, lambda v: quantize_f32(v.astype(np.float32), spec.scale, spec.zero_point,
                                                               dtype=y.dtype))
                return lambda: lookup(table, x, y)
            return lambda: quantize_f32(x.astype(np.float32, copy=False), spec.scale, spec.zero_point, out=y)
        if k == "cast":
            x = self._arr(s.inputs[0])
            y = self._arr(s.outputs[0])
            xs = P.tensors[s.inputs[0]]
            if xs.quantized and _tabulable(x, y):  # int8 / int16 -> float16 (hybrid builds)
                table = _table(x.dtype, lambda v: dequantize_f32(v, xs.scale, xs.zero_point,
                                                                 out=np.empty(v.shape, y.dtype)))
                return lambda: lookup(table, x, y)
            if xs.quantized:
                return lambda: dequantize_f32(x, xs.scale, xs.zero_point, out=y)
            ys = P.tensors[s.outputs[0]]
            if x.dtype == _F32 and not ys.quantized:  # float32 -> float16: host.store's cast
                return functools.partial(host.storer(ys, y), x)

            def run_cast():
                with np.errstate(over="ignore", invalid="ignore"):
                    np.copyto(y, x, casting="unsafe")

            return run_cast
        raise ModelError(f"unknown step kind {k!r}")

    def _eval_input(self, name: str) -> Callable[[], "np.ndarray | None"]:
        """An accessor of an eval step's input as the golden ops take it (host.to_f32 then host.const_f32),
        with what can be done once done at preparation: constants converted, buffers' conversion chosen."""
        if not name:
            return lambda: None
        spec = self.prog.tensors.get(name)
        if name in self.prog.inputs:
            get = self._get(name)
            return lambda: host.const_f32(host.to_f32(get(), spec))
        a = self._arr(name)
        if name in self.consts:
            c = host.const_f32(host.to_f32(a, spec))
            return lambda: c
        if spec is not None and spec.quantized:  # into a buffer of this step's
            buf = np.empty(a.shape, np.float32)
            return lambda: dequantize_f32(a, spec.scale, spec.zero_point, out=buf)
        if a.dtype.kind == "f" and a.dtype != _F32:
            return lambda: a.astype(np.float32)
        return lambda: a

    def _prepare_eval(self, s: Step) -> Callable[[], None]:
        """A CPU-fallback op: the golden implementation (reference.prepare_node: looked up once) on float32
        inputs, its results stored in the tensors' forms. Floating-point warnings are off for the whole
        inference (run / run_stepwise), not entered per step."""
        from ..reference.executor import prepare_node, storage

        node = host.step_node(s, self.consts)
        try:
            op = prepare_node(node)
        except NpuError:  # no implementation: fails when run, as the numpy path did
            getters = [self._eval_input(t) for t in s.inputs]
            return lambda: host.run_eval(s, node, [g() for g in getters], self.prog)
        n_in = len(node.inputs)
        getters = [self._eval_input(t) for t in s.inputs[:n_in]]
        addend = self._eval_input(s.inputs[n_in]) if len(s.inputs) > n_in else (lambda: None)
        puts = [host.storer(self.prog.tensors[t], self._arr(t)) if t else None for t in s.outputs]

        def run_eval():
            res = op([g() for g in getters], addend())
            for put, r in zip(puts, res):
                if put is not None:
                    put(storage(r))

        return run_eval

    def _prepare_conv(self, s: Step) -> Callable[[], None]:
        P = self.prog
        x = self._arr(s.inputs[0])
        w = self._arr(s.inputs[1])
        bias = self._arr(s.inputs[3]) if s.inputs[3] else None
        y = self._arr(s.outputs[0])
        at = s.attrs
        act = at.get("activation")
        if isinstance(act, list):
            act = tuple(act)
        if y.dtype in (np.int8, np.int16):
            xs, ys = P.tensors[s.inputs[0]], P.tensors[s.outputs[0]]
            ws = self._arr(s.inputs[2])
            q = dict(x_zero_point=xs.zero_point, w_zero_point=0, bias=bias, requant=True, x_scale=xs.scale,
                     w_scale=[float(v) for v in ws.reshape(-1)], y_scale=ys.scale, y_zero_point=ys.zero_point,
                     y_dtype=y.dtype.name, rounding="fixed_point", activation=act)
            dt = "int8"
        else:
            q = dict(bias=bias, activation=act)
            dt = "float16"
        mask = self.core_mask
        if s.kind == "conv":
            args = _conv_args(x_shape=x.shape, x_dtype=dt, w=w, w_dtype=dt, strides=at["strides"], pads=at["pads"],
                              dilations=at["dilations"], group=at["group"], **q)
            op = _core.ConvOp(**args)
            if tuple(op.y_shape) != y.shape:
                raise ModelError(f"conv {s.name!r}: output shape {tuple(op.y_shape)} != {y.shape}")
            return lambda: op.run(x, y, mask)
        kdim, n = w.shape
        m = x.size // kdim
        args = _conv_args(x_shape=[1, 1, m, kdim], x_dtype=dt, w=w, w_dtype=dt, strides=1, pads=0, dilations=1,
                          group=1, **q)
        args.update(nhwc=True, w_transposed=True)
        op = _core.ConvOp(**args)
        x4 = x.reshape(1, 1, m, kdim)
        y4 = y.reshape(1, 1, m, n)
        return lambda: op.run(x4, y4, mask)

    def _prepare_move(self, s: Step) -> Callable[[], None]:
        P = self.prog
        at = s.attrs
        if at.get("alias"):
            self._arr(s.outputs[0])  # the view exists
            return lambda: None
        if at["op_type"] == "ResizeNearest":
            x = self._arr(s.inputs[0])
            ih, iw = self._arr(s.inputs[1]), self._arr(s.inputs[2])
            y = self._arr(s.outputs[0])
            return lambda: host.resize_nearest(x, ih, iw, y)
        node = host.step_node(s, self.consts)
        getters = [self._get(t) if t else (lambda: None) for t in s.inputs]
        outs = [self._arr(t) if t else None for t in s.outputs]

        def run_move():
            res = host.run_move(node, [g() for g in getters])
            for o, r in zip(outs, res):
                if o is not None:
                    if r.shape != o.shape:
                        raise ModelError(f"{s.op_type} {s.name!r}: produced {r.shape}, expected {o.shape}")
                    np.copyto(o, r)

        del P
        return run_move

    def tensor(self, name: str) -> np.ndarray:
        """The buffer of an internal tensor (meaningful after a run with ``keep_all=True``)."""
        return self._arr(name)

    # --- running ----------------------------------------------------------------------------------------
    def _bind(self, inputs: "list[np.ndarray]") -> None:
        if len(inputs) != len(self.prog.inputs):
            raise ModelError(f"the model has {len(self.prog.inputs)} inputs, got {len(inputs)}")
        for name, a in zip(self.prog.inputs, inputs):
            self._user_in[name] = a

    def _unbind(self) -> None:
        self._user_in.clear()
        self._user_out.clear()

    def run(self, inputs: "list[np.ndarray]", profile: bool = False) -> "list[np.ndarray]":
        """Runs one inference on NCHW inputs (one array per program input, already of the model's shape)."""
        self._bind(inputs)
        try:
            with np.errstate(all="ignore"):  # IEEE special values propagate silently, as on the board
                if profile:
                    t = np.zeros(len(self.fns))
                    for i, f in enumerate(self.fns):
                        t0 = time.perf_counter()
                        f()
                        t[i] = time.perf_counter() - t0
                    self.step_times = t
                else:
                    for f in self.fns:
                        f()
            return [self._user_out.pop(o) for o in self.prog.outputs]
        finally:
            self._unbind()

    def run_stepwise(self, inputs: "list[np.ndarray]", before: "Callable[[Step], None]",
                     after: "Callable[[Step], None]") -> None:
        """Runs one inference calling ``before(step)`` and ``after(step)`` around every step (accuracy
        analysis overwrites a step's inputs and reads its outputs; with ``keep_all=True`` every tensor
        has its own buffer)."""
        self._bind(inputs)
        try:
            for s, f in zip(self.prog.steps, self.fns):
                before(s)
                with np.errstate(all="ignore"):
                    f()
                after(s)
        finally:
            self._unbind()
