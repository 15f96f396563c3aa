"""Runs every fetched real model with onnxruntime fp32 on its test inputs and prints the task
answers (the reference the emulator is compared with), plus what the frontend must support: op
types, opsets, IR version and dynamic input dimensions.

    python tools/fetch_models.py                       # once
    python tools/check_models_ort.py [--only ID ...] [--json OUT.json]

Test inputs, preprocessing and post-processing: tests/model_zoo.py (needs Pillow to draw the
inputs). Exit status 1 when an answer differs from what the input shows (rendered text, rotation,
number of lines or glyphs), 2 when no model is fetched.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import model_zoo as mz  # noqa: E402


def graph_facts(path: Path) -> dict:
    import onnx

    m = onnx.load(str(path))
    g = m.graph
    inits = {t.name for t in g.initializer}
    n_params = sum(int(np.prod(t.dims)) for t in g.initializer)
    # Paddle exports keep their weights in Constant nodes, not initializers.
    n_params += sum(int(np.prod(a.t.dims)) for n in g.node if n.op_type == "Constant"
                    for a in n.attribute if a.name == "value")

    def dims(vi):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            return None
        return [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim]

    inputs = [{"name": i.name, "shape": dims(i),
               "elem_type": onnx.TensorProto.DataType.Name(i.type.tensor_type.elem_type)}
              for i in g.input if i.name not in inits]
    outputs = [{"name": o.name, "shape": dims(o)} for o in g.output]
    dynamic = {i["name"]: [k for k, d in enumerate(i["shape"] or []) if not isinstance(d, int) or d <= 0]
               for i in inputs}
    ops = collections.Counter((n.domain or "ai.onnx", n.op_type) for n in g.node)
    return {
        "ir_version": m.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "nodes": len(g.node),
        "params": n_params,
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_input_dims": {k: v for k, v in dynamic.items() if v},
        "ops": {f"{op}" if dom == "ai.onnx" else f"{dom}::{op}": c for (dom, op), c in sorted(ops.items())},
        "metadata_keys": [p.key for p in m.metadata_props],
    }


# Post-processing with loosened thresholds: boxes that appear only here sit close to a threshold,
# where a small numeric change adds or drops them (flip risk for the quantized comparison).
LOOSE = {
    "ppocr_det": lambda o, c: mz.answer_ppocr_det(o, c, thresh=0.2, box_thresh=0.35),
    "layout_cdla": lambda o, c: mz.answer_layout_cdla(o, c, conf_thres=0.35),
    "ddddocr_det": lambda o, c: mz.answer_ddddocr_det(o, c, score_thr=0.05),
}


def truth_ok(case: mz.Case, ans: dict) -> bool | None:
    if case.truth is None:
        return None
    if case.task == "classification":
        return ans["label"] == case.truth
    if case.task == "ocr_recognition":
        return ans["text"] == case.truth
    return len(ans["boxes"]) == case.truth


def fmt_answer(task: str, ans: dict) -> list[str]:
    if task == "classification":
        return [f"class {ans['label']!r} (index {ans['index']}, p={ans['score']:.4f}, top1-top2 {ans['margin']:.4f})"]
    if task == "ocr_recognition":
        return [f"text {ans['text']!r} (mean p={ans['score']:.4f}, min step margin {ans['margin']:.4f})"]
    return [f"{lab:14s} {score:.3f} [{', '.join(f'{v:g}' for v in box)}]" for lab, score, box in ans["boxes"]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=None, help="model ids (default: every fetched model)")
    p.add_argument("--json", type=Path, default=None, help="write facts and answers to this JSON file")
    a = p.parse_args(argv)
    man = mz.manifest()
    if not man:
        print(f"no models in {mz.cache_dir()}: run `python tools/fetch_models.py` first", file=sys.stderr)
        return 2
    ids = a.only or mz.available()
    missing = [m for m in ids if m not in mz.available()]
    if missing:
        print(f"not fetched: {missing}; run `python tools/fetch_models.py`", file=sys.stderr)
        return 2
    import onnxruntime as ort

    report = {"onnxruntime": ort.__version__, "cache": str(mz.cache_dir()), "models": {}}
    union: collections.Counter = collections.Counter()
    bad = 0
    cases = mz.cases(ids)
    for mid in ids:
        e = man[mid]
        facts = graph_facts(mz.model_path(mid))
        union.update({op: 1 for op in facts["ops"]})
        print(f"== {mid}: {e['arch']}")
        print(f"   {e['package']}=={e['version']}:{e['member']} ({e['size'] / 1e6:.1f} MB, {e['license']})")
        print(f"   IR {facts['ir_version']}, opsets {facts['opsets']}, producer '{facts['producer']}', "
              f"{facts['nodes']} nodes, {facts['params'] / 1e6:.2f} M parameters")
        for i in facts["inputs"]:
            print(f"   input  {i['name']} {i['shape']} {i['elem_type']}")
        for o in facts["outputs"]:
            print(f"   output {o['name']} {o['shape']}")
        print(f"   dynamic input dims: {facts['dynamic_input_dims'] or 'none'}")
        print(f"   ops ({len(facts['ops'])}): " + ", ".join(f"{k} {v}" for k, v in facts["ops"].items()))
        results = []
        for c in (c for c in cases if c.model == mid):
            outs = mz.run_ort(mid, c.feeds)
            ans = c.answer(outs)
            ok = truth_ok(c, ans)
            bad += ok is False
            shapes = {k: list(v.shape) for k, v in c.feeds.items()}
            status = "" if ok is None else ("  [matches the input]" if ok else f"  [MISMATCH: input shows {c.truth!r}]")
            print(f"   -- {c.name} {shapes}{status}")
            for line in fmt_answer(c.task, ans):
                print(f"      {line}")
            risk = []
            if mid in LOOSE:
                loose = LOOSE[mid](outs, c.ctx)
                risk = [b for b in loose["boxes"] if not any(mz.iou(b[2], r[2]) > 0.5 and b[0] == r[0]
                                                             for r in ans["boxes"])]
                print(f"      near-threshold boxes (would appear at looser thresholds): {len(risk)}")
                for line in fmt_answer(c.task, {"boxes": risk}):
                    print(f"        {line}")
            results.append({"case": c.name, "input_shapes": shapes, "answer": ans, "truth": c.truth,
                            "truth_ok": ok, "near_threshold": risk})
        report["models"][mid] = {"manifest": e, "graph": facts, "results": results}
    print(f"== op types over {len(ids)} models ({len(union)}): " + ", ".join(sorted(union)))
    report["op_union"] = sorted(union)
    if a.json:
        a.json.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        print(f"wrote {a.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
