"""The compiled model: what ``RKNN.build`` produces, ``export_rknn`` writes and ``RKNNLite`` runs.

A :class:`Program` is a list of :class:`Step` over named tensors. Every tensor has a static shape and a
storage dtype; int8 tensors carry their quantization (``real = scale * (q - zero_point)``, docs/arithmetic.md
section 1). Constants (weights, biases, lookup tables, shape operands) live in ``consts`` as numpy arrays.
Nothing here is executable content: a program is plain data (JSON-able ``meta`` + arrays), see
:meth:`Program.to_parts`.

Step kinds (``Step.kind``), with ``target`` 'NPU' or 'CPU' as the emulated chip would run them:

========== ===================================================================================================
input      user array (NCHW, float32 or uint8 ...) -> ``(x - mean) / std`` in float32 -> the tensor's dtype
conv       Conv on the MAC array: int8 (QLinearConv, fixed-point output stage) or float16
matmul     MatMul / Gemm with constant B on the MAC array (a 1x1 convolution), int8 or float16
add, mul   element-wise on the DPU, broadcasting: int8 (QLinearAdd / QLinearMul, fixed point) or float16
maxpool    MaxPool on the PPU (any storage dtype; no requantization)
avgpool    AveragePool / GlobalAveragePool on the PPU, int8 (requantized) or float16
lut        int8 -> int8 through a 256-entry table: activations, requantization, fused element-wise chains
concat     Concat of tensors that share the output's quantization
move       a data-movement op (Reshape, Transpose, Slice, Split, Resize nearest, ...) on stored values as
           they are: the output keeps the input's dtype and quantization
eval       any op by the float32 golden implementation: inputs dequantized / widened to float32, outputs
           converted to their tensor's dtype (quantized with round half to even and saturation, or rounded to
           float16). CPU fallback ops, and the NPU's float16 element-wise functions.
quantize   float32 / float16 -> int8 / int16; cast: int8 / int16 / float32 -> float16 or float32 (dequantized,
           widened or rounded); output: any -> float32 for the user
========== ===================================================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError

__all__ = ["TensorSpec", "Step", "Program", "quantize_f32", "dequantize_f32", "codes", "PROGRAM_VERSION"]

PROGRAM_VERSION = 1

STEP_KINDS = (
    "input",
    "conv",
    "matmul",
    "add",
    "mul",
    "maxpool",
    "avgpool",
    "lut",
    "concat",
    "move",
    "eval",
    "quantize",
    "cast",
    "output",
)

_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64", "bool")


@dataclass
class TensorSpec:
    name: str
    shape: "tuple[int, ...]"
    dtype: str
    scale: "float | None" = None  # int8 tensors: float32 scale and zero point
    zero_point: "int | None" = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def to_json(self) -> dict:
        d = {"shape": list(self.shape), "dtype": self.dtype}
        if self.scale is not None:
            d["scale"] = float(self.scale)
            d["zero_point"] = int(self.zero_point)
        return d

    @staticmethod
    def from_json(name: str, d: dict) -> "TensorSpec":
        return TensorSpec(name, tuple(int(v) for v in d["shape"]), str(d["dtype"]), d.get("scale"), d.get("zero_point"))


@dataclass
class Step:
    kind: str
    name: str  # the ONNX node(s) it comes from
    inputs: "list[str]"
    outputs: "list[str]"
    attrs: "dict[str, Any]" = field(default_factory=dict)
    target: str = "NPU"
    op_type: str = ""  # the ONNX op type shown in reports

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "op_type": self.op_type,
            "target": self.target,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "attrs": self.attrs,
        }

    @staticmethod
    def from_json(d: dict) -> "Step":
        return Step(
            str(d["kind"]),
            str(d["name"]),
            [str(x) for x in d["inputs"]],
            [str(x) for x in d["outputs"]],
            dict(d["attrs"]),
            str(d["target"]),
            str(d.get("op_type", "")),
        )


@dataclass
class Program:
    """A compiled model. ``inputs`` / ``outputs`` name the user-facing tensors: each input has an ``input``
    step reading the user's array (graph input name) into the first internal tensor; each output name is
    produced by an ``output`` step as float32."""

    tensors: "dict[str, TensorSpec]"
    steps: "list[Step]"
    consts: "dict[str, np.ndarray]"
    inputs: "list[str]"
    outputs: "list[str]"
    meta: "dict[str, Any]" = field(default_factory=dict)

    # --- queries -----------------------------------------------------------------------------------
    def input_shapes(self) -> "list[tuple[int, ...]]":
        return [self.tensors[n].shape for n in self.inputs]

    def summary(self) -> "dict[str, int]":
        """Number of steps per target, not counting the host-side conversions."""
        out = {"NPU": 0, "CPU": 0}
        for s in self.steps:
            if s.kind not in ("input", "output", "quantize", "cast"):
                out[s.target] = out.get(s.target, 0) + 1
        return out

    # --- serialisation (plain JSON + arrays; see runtime.modelfile) ----------------------------------
    def to_parts(self) -> "tuple[dict, dict[str, np.ndarray]]":
        meta = {
            "program_version": PROGRAM_VERSION,
            "tensors": {k: v.to_json() for k, v in self.tensors.items()},
            "steps": [_plain(s.to_json()) for s in self.steps],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "meta": self.meta,
            "consts": sorted(self.consts),
        }
        json.dumps(meta, allow_nan=False)  # fail early on anything that is not plain JSON
        return meta, dict(self.consts)

    @staticmethod
    def from_parts(meta: dict, arrays: "dict[str, np.ndarray]") -> "Program":
        try:
            if not isinstance(meta, dict):
                raise TypeError("the header is not an object")
            ver = meta.get("program_version")
            if ver != PROGRAM_VERSION:
                raise ModelError(
                    f"the model file holds a program of version {ver!r}; this npuemu reads version {PROGRAM_VERSION}"
                )
            tensors = {str(k): TensorSpec.from_json(str(k), v) for k, v in meta["tensors"].items()}
            steps = [Step.from_json(d) for d in meta["steps"]]
            names = [str(c) for c in meta["consts"]]
            missing = [c for c in names if c not in arrays]
            if missing:
                raise ModelError(f"the model file lacks the constant arrays {missing[:5]}")
            p = Program(
                tensors,
                steps,
                {c: arrays[c] for c in names},
                [str(x) for x in meta["inputs"]],
                [str(x) for x in meta["outputs"]],
                dict(meta.get("meta") or {}),
            )
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"the model file's program is malformed: {type(e).__name__}: {e}") from None
        p.validate()
        return p

    def validate(self) -> None:
        """Checks that every step reads tensors that exist before it and writes tensors with specs, and that
        every dtype and kind is known (a model file from elsewhere can hold anything)."""
        for n, t in self.tensors.items():
            if t.dtype not in _DTYPES:
                raise ModelError(f"tensor {n!r} has unknown dtype {t.dtype!r}")
            if any(d < 0 for d in t.shape) or len(t.shape) > 8:
                raise ModelError(f"tensor {n!r} has an invalid shape {t.shape}")
            if t.scale is not None and not (isinstance(t.scale, float) and np.isfinite(t.scale) and t.scale > 0):
                raise ModelError(f"tensor {n!r} has an invalid scale {t.scale!r}")
        known = set(self.consts)
        for name in self.inputs:
            if name not in self.tensors:
                raise ModelError(f"input {name!r} has no tensor spec")
        user_inputs = set(self.inputs)
        for i, s in enumerate(self.steps):
            if s.kind not in STEP_KINDS:
                raise ModelError(f"step {i} ({s.name!r}) has unknown kind {s.kind!r}; known: {', '.join(STEP_KINDS)}")
            for x in s.inputs:
                if x and x not in known and not (s.kind == "input" and x in user_inputs):
                    raise ModelError(f"step {i} ({s.kind} {s.name!r}) reads {x!r} before it is produced")
            for y in s.outputs:
                if y and y not in self.tensors:
                    raise ModelError(f"step {i} ({s.kind} {s.name!r}) writes {y!r}, which has no tensor spec")
                known.add(y)
        for name in self.outputs:
            if name not in known:
                raise ModelError(f"output {name!r} is never produced")


def _plain(v: Any) -> Any:
    """Tuples as lists (JSON has no tuples; the model file refuses them)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


# --- host-side conversions shared by the runtime and the reference executor ----------------------------
# These run on the CPU in both the emulator and on a real board (the RKNN runtime's input conversion and
# output dequantization); they are numpy float32 with round half to even, as ONNX QuantizeLinear.


def quantize_f32(
    x: np.ndarray, scale: float, zero_point: int, out: "np.ndarray | None" = None, dtype=np.int8
) -> np.ndarray:
    """``saturate(round_half_even(x / scale) + zero_point)`` computed in float32, saturated to the integer
    dtype (``out``'s, else ``dtype``: int8, or int16 for 16-bit tensors); NaN gives the zero point."""
    dt = np.dtype(out.dtype if out is not None else dtype)
    info = np.iinfo(dt)
    v = np.array(x, dtype=np.float32)  # a copy, also for 0-d inputs
    np.true_divide(v, np.float32(scale), out=v)
    np.rint(v, out=v)
    v += np.float32(zero_point)
    np.clip(v, info.min, info.max, out=v)
    v[np.isnan(v)] = zero_point
    if out is None:
        return v.astype(dt)
    np.copyto(out, v, casting="unsafe")
    return out


def codes(dtype) -> np.ndarray:
    """Every value of a 1- or 2-byte dtype (int8, uint8, int16, float16), ordered by its bit pattern: the
    index of a lookup table over that dtype (``table[i] = f(codes(dtype)[i])``)."""
    dt = np.dtype(dtype)
    if dt in (np.dtype(np.int8), np.dtype(np.uint8)):
        return np.arange(256, dtype=np.uint8).view(dt)
    if dt in (np.dtype(np.int16), np.dtype(np.float16)):
        return np.arange(65536, dtype=np.uint16).view(dt)
    raise ModelError(f"internal: no table index for {dt.name}")


def dequantize_f32(q: np.ndarray, scale: float, zero_point: int, out: "np.ndarray | None" = None) -> np.ndarray:
    """float32 ``(q - zero_point) * scale``."""
    if out is None:
        out = np.empty(q.shape, np.float32)
    np.subtract(q, np.float32(zero_point), out=out, dtype=np.float32)
    out *= np.float32(scale)
    return out
