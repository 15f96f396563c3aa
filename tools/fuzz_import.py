"""Runs mutated ONNX models through the RKNN facade (load_onnx, build FP16 and w8a8, init_runtime,
inference) in child processes, and reports every case that kills, aborts or stalls the process.

    python tools/fuzz_import.py [--source node|models] [--seed 0] [--cases 500] [--keep DIR]

Sources: ``node``, the single-node models of the onnx node test cases (shipped in the onnx wheel) with an
attribute changed to an odd value, an attribute added, an input reshaped or an input made a constant;
``models``, the bundled digits CNN and, when fetched (tools/fetch_models.py), PP-OCR's direction
classifier, with node attributes, the input shape (and NaN / inf in its data) or an initializer's shape
changed. A case may be refused (-1 with a message, the expected outcome for most); it must not end the
process. Each case has ``--case-timeout`` seconds (a longer case is reported as stalled) and the child
2^33 bytes of address space (a huge allocation is a MemoryError, refused as well). Cases that fail are
written to ``--keep`` (model and inputs) for reproduction. Exit status 1 when any case failed.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ODD_INTS = [0, -1, -2, 1, 2, 3, 7, 64, 1 << 20, -(1 << 31), 1 << 62]
ODD_FLOATS = [0.0, -1.0, float("nan"), float("inf"), 1e30, 1e-30]
ADDED = ["group", "strides", "pads", "dilations", "kernel_shape", "axis", "axes", "perm", "keepdims", "ceil_mode",
         "auto_pad", "mode", "output_padding", "blocksize", "num_outputs"]

CHILD = r"""
import contextlib, faulthandler, io, os, resource, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
resource.setrlimit(resource.RLIMIT_AS, (1 << 33, 1 << 33))
from npuemu import RKNN
folder, start, n, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.chdir(folder)
for i in range(start, n):
    print("START", i, flush=True)
    faulthandler.dump_traceback_later(limit, exit=True)
    feeds = list(np.load(f"case{i}.npz").values())
    with open("ds.txt", "w") as f:
        f.write(" ".join(f"ds{i}_{j}.npy" for j in range(len(feeds))) + "\n")
    for j, x in enumerate(feeds):
        np.save(f"ds{i}_{j}.npy", x)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for quantize in (False, True):
            r = RKNN()
            if r.config(target_platform="rk3588") or r.load_onnx(f"case{i}.onnx"):
                break
            if r.build(do_quantization=quantize, dataset="ds.txt") == 0 and r.init_runtime() == 0:
                if r.inference(feeds, data_format="nchw") is not None:
                    print("RAN", i, int(quantize), file=sys.__stdout__, flush=True)
            r.release()
    faulthandler.cancel_dump_traceback_later()
    print("DONE", i, flush=True)
"""


def _set_dims(vi, shape) -> None:
    dims = vi.type.tensor_type.shape.dim
    del dims[:]
    for d in shape:
        dims.add().dim_value = int(d)


def _odd_attribute(rng: random.Random, a) -> None:
    import onnx
    from onnx import numpy_helper

    if a.type == onnx.AttributeProto.INT:
        a.i = rng.choice(ODD_INTS)
    elif a.type == onnx.AttributeProto.INTS:
        v = list(a.ints)
        if v and rng.random() < 0.7:
            v[rng.randrange(len(v))] = rng.choice(ODD_INTS)
        else:
            v = v[:-1] if len(v) > 1 and rng.random() < 0.5 else v + [rng.choice(ODD_INTS)]
        del a.ints[:]
        a.ints.extend(v)
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = rng.choice(ODD_FLOATS)
    elif a.type == onnx.AttributeProto.STRING:
        a.s = rng.choice([b"", b"bogus", b"NOTSET", b"SAME_UPPER", b"VALID", b"linear", b"cubic"])
    elif a.type == onnx.AttributeProto.TENSOR:
        t = numpy_helper.to_array(a.t).copy()
        if t.size:
            t.flat[rng.randrange(t.size)] = rng.choice(ODD_INTS[:9] if t.dtype.kind in "iu" else ODD_FLOATS)
        a.t.CopyFrom(numpy_helper.from_array(t, a.t.name))


def node_seeds() -> list:
    import warnings

    from onnx.backend.test.loader import load_node_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = load_node_model_tests()
    out = []
    for t in tests:
        if "_expanded" in t.name or not t.data_sets or len(t.model.graph.node) != 1:
            continue
        ins = t.data_sets[0][0]
        if all(isinstance(x, np.ndarray) and x.dtype == np.float32 for x in ins):
            out.append((t.model, list(ins)))
    return out


def model_seeds() -> list:
    import onnx

    here = Path(__file__).resolve().parent.parent
    cache = Path(os.environ.get("NPUEMU_MODEL_CACHE", Path.home() / ".cache" / "npuemu" / "models"))
    out = []
    for path, shape in [(here / "python" / "npuemu" / "data" / "digits_cnn.onnx", None),
                        (cache / "ppocr_cls" / "ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192])]:
        if not path.exists():
            continue
        m = onnx.load(str(path))
        inp = m.graph.input[0]
        shape = shape or [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        _set_dims(inp, shape)
        out.append((m, [np.random.default_rng(0).standard_normal(shape).astype(np.float32)]))
    return out


def mutate_node(rng: random.Random, model, ins):
    from onnx import helper, numpy_helper

    m, ins = copy.deepcopy(model), [x.copy() for x in ins]
    g, node = m.graph, m.graph.node[0]
    k = rng.randrange(6)
    if k <= 2 and node.attribute:
        _odd_attribute(rng, rng.choice(list(node.attribute)))
    elif k == 3:
        name = rng.choice(ADDED)
        if name in ("auto_pad", "mode"):
            value = rng.choice(["SAME_UPPER", "VALID", "SAME_LOWER", "x", "linear", "nearest", "cubic"])
        elif name in ("strides", "pads", "dilations", "kernel_shape", "axes", "perm", "output_padding"):
            value = [rng.choice(ODD_INTS) for _ in range(rng.randrange(1, 5))]
        else:
            value = rng.choice(ODD_INTS)
        node.attribute.append(helper.make_attribute(name, value))
    elif k == 4 and ins:
        j = rng.randrange(len(ins))
        shape = list(ins[j].shape)
        if shape and rng.random() < 0.6:
            shape[rng.randrange(len(shape))] = rng.choice([1, 2, 3, 5, 17])
        else:
            shape = shape[1:] if shape and rng.random() < 0.5 else [1] + shape
        if np.prod(shape) > 1e6:
            return None
        ins[j] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        _set_dims(g.input[j], shape)
    elif ins and len(ins) > 1:
        j = rng.randrange(len(ins))
        x = ins.pop(j)
        if rng.random() < 0.3 and x.size > 1:
            x = x.reshape(-1)
        g.initializer.append(numpy_helper.from_array(x, g.input[j].name))
        del g.input[j]
    else:
        return None
    return m, ins


def mutate_model(rng: random.Random, model, ins):
    from onnx import numpy_helper

    m, ins = copy.deepcopy(model), [x.copy() for x in ins]
    r = rng.random()
    if r < 0.25:  # another input shape, sometimes with NaN / inf in the data
        shape = list(ins[0].shape)
        shape[rng.randrange(len(shape))] = rng.choice([1, 2, 3, 5, 7, 33, 200])
        if np.prod(shape) > 3e6:
            return None
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        if rng.random() < 0.3:
            x.flat[0] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
        _set_dims(m.graph.input[0], shape)
        return m, [x]
    if r < 0.45 and len(m.graph.initializer):  # an initializer reshaped or cut short
        t = rng.choice(list(m.graph.initializer))
        a = numpy_helper.to_array(t).copy()
        if a.size > 1 and rng.random() < 0.5:
            a = a.reshape(-1)[: max(1, a.size // rng.choice([2, 3]))]
        elif a.ndim >= 2:
            a = a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])
        else:
            a = a.reshape(1, -1)
        t.CopyFrom(numpy_helper.from_array(a, t.name))
        return m, ins
    nodes = [n for n in m.graph.node if n.attribute]
    for _ in range(rng.choice([1, 1, 2])):
        _odd_attribute(rng, rng.choice(list(rng.choice(nodes).attribute)))
    return m, ins


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", choices=("node", "models"), default="node")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--case-timeout", type=int, default=60)
    ap.add_argument("--keep", default="fuzz_failures", help="folder for the failing cases")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    seeds = node_seeds() if args.source == "node" else model_seeds()
    mutate = mutate_node if args.source == "node" else mutate_model
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        while n < args.cases:
            got = mutate(rng, *rng.choice(seeds))
            if got is None:
                continue
            m, ins = got
            Path(tmp, f"case{n}.onnx").write_bytes(m.SerializeToString())
            np.savez(Path(tmp, f"case{n}.npz"), *ins)
            n += 1
        failures, ran, start = [], [0, 0], 0
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        while start < n:
            cmd = [sys.executable, "-c", CHILD, tmp, str(start), str(n), str(args.case_timeout)]
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = p.stdout.splitlines()
            for line in lines:
                if line.startswith("RAN"):
                    ran[int(line.split()[2])] += 1
            started = [int(s.split()[1]) for s in lines if s.startswith("START")]
            if p.returncode == 0:
                break
            bad = started[-1] if started else start
            why = "stalled" if "Timeout (" in p.stderr else f"exit status {p.returncode}"
            failures.append((bad, why, p.stderr[-2000:]))
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for ext in ("onnx", "npz"):
                (keep / f"seed{args.seed}_case{bad}.{ext}").write_bytes(Path(tmp, f"case{bad}.{ext}").read_bytes())
            print(f"case {bad}: {why}", flush=True)
            start = bad + 1
    print(f"{n} cases ({args.source}, seed {args.seed}): {ran[0]} ran in FP16 and {ran[1]} in w8a8 to inference, "
          f"the rest refused; {len(failures)} ended the process")
    for bad, why, err in failures:
        print(f"--- case {bad} ({why}), kept in {args.keep}/seed{args.seed}_case{bad}.onnx\n{err}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
