#!/usr/bin/env python3
"""Turns a pytest-benchmark JSON file from bench/bench_conv.py into the markdown tables of
docs/performance.md (minimum times; speed-ups are ratios measured in the same run).

    python tools/bench_report.py bench.json             # bench/bench_conv.py
    python tools/bench_report.py --models models.json   # bench/bench_models.py (whole models)"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict


def load(path: str):
    data = json.load(open(path))
    rows = defaultdict(dict)  # (net, layer) -> variant -> info
    machine = data.get("machine_info", {})
    for b in data["benchmarks"]:
        e = b["extra_info"]
        rows[(e["net"], e["layer"])][e["variant"]] = dict(t=b["stats"]["min"], **e)
    return rows, machine


def us(t):
    return f"{t * 1e6:,.0f}"


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def main(path: str) -> None:
    rows, machine = load(path)
    any_row = next(iter(next(iter(rows.values())).values()))
    p8, pf = any_row["peak_int8_gmacs"], any_row["peak_fp32_gmacs"]
    cpu = machine.get("cpu", {}).get("brand_raw", "?")
    print(f"Machine: {cpu}; measured one-core peaks: int8 dot product {p8:.1f} GMAC/s, fp32 FMA {pf:.1f} GMAC/s.\n")

    for net in ("resnet50", "mobilenet_v2", "yolov5s_640"):
        layers = [(k, v) for k, v in rows.items() if k[0] == net]
        if not layers:
            continue
        print(f"### {net}: INT8 (requantized, fused ReLU, fixed-point rounding) vs onnxruntime\n")
        print("| layer | MMAC | ORT fp32 us | ORT int8 us | npuemu INT8 us | GMAC/s | % int8 peak | vs ORT fp32 | vs ORT int8 | kernel |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        sp_f, sp_i = [], []
        for (_, layer), v in layers:
            if "int8" not in v or "ort_fp32" not in v:
                continue
            i8, of, oi = v["int8"], v["ort_fp32"], v.get("ort_int8")
            sp_f.append(of["t"] / i8["t"])
            if oi:
                sp_i.append(oi["t"] / i8["t"])
            print(f"| {layer} | {i8['macs'] / 1e6:.1f} | {us(of['t'])} | {us(oi['t']) if oi else '-'} | {us(i8['t'])} | "
                  f"{i8['gmacs']:.1f} | {100 * i8['gmacs'] / p8:.0f}% | {of['t'] / i8['t']:.2f}x | "
                  f"{(oi['t'] / i8['t']) if oi else float('nan'):.2f}x | {i8['kernel']} |")
        print(f"\nGeometric mean speed-up of npuemu INT8: {geomean(sp_f):.2f}x vs ORT fp32, {geomean(sp_i):.2f}x vs ORT int8.\n")

    print("### FP16 and INT8: Winograd vs direct on 3x3 stride-1 layers\n")
    print("| layer | shape | FP16 direct us | FP16 Winograd us | speed-up | FP16 auto picks | INT8 direct us | INT8 Winograd us | speed-up | INT8 auto picks |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for (net, layer), v in rows.items():
        if "fp16_direct" not in v or ("fp16_winograd" not in v and "int8_winograd" not in v):
            continue
        fd, fw, id_, iw = v["fp16_direct"], v.get("fp16_winograd"), v.get("int8_direct"), v.get("int8_winograd")
        print(f"| {net}/{layer} | {fd['shape']} | {us(fd['t'])} | {us(fw['t']) if fw else '-'} | "
              f"{(fd['t'] / fw['t']) if fw else float('nan'):.2f}x | {v['fp16']['kernel'] if 'fp16' in v else '-'} | "
              f"{us(id_['t']) if id_ else '-'} | {us(iw['t']) if iw else '-'} | "
              f"{(id_['t'] / iw['t']) if (id_ and iw) else float('nan'):.2f}x | {v['int8']['kernel'] if 'int8' in v else '-'} |")
    print()

    print("### Every dtype (minimum us; GMAC/s; % of the int8 dot-product peak, and for fp16 of the fp32 FMA peak)\n")
    variants = ["ort_fp32", "ort_int8", "int8", "int4", "int16", "fp16"]
    print("| net/layer | " + " | ".join(variants) + " |")
    print("|---|" + "---:|" * len(variants))

    def cell(k, e):
        text = f"{us(e['t'])} ({e['gmacs']:.0f}"
        if not k.startswith("ort"):
            text += f", {100 * e['gmacs'] / p8:.0f}%"
            if k == "fp16":
                text += f" / {100 * e['gmacs'] / pf:.0f}%"
        return text + ")"

    for (net, layer), v in rows.items():
        cells = [cell(k, v[k]) if k in v else "-" for k in variants]
        print(f"| {net}/{layer} | " + " | ".join(cells) + " |")


def models(path: str) -> None:
    """The "Whole models" table: median and minimum of each variant, ratios against onnxruntime fp32."""
    data = json.load(open(path))
    rows: "dict[str, dict]" = defaultdict(dict)
    for b in data["benchmarks"]:
        e = b["extra_info"]
        if "variant" in e:
            rows[e["model"]][e["variant"]] = dict(med=b["stats"]["median"], min=b["stats"]["min"], **e)
    ms = lambda t: f"{t * 1e3:.2f}"  # noqa: E731
    print("| model | input | ORT fp32 ms | INT8 ms | INT8 speed-up | FP16 ms | FP16 / ORT | NPU / CPU ops (int8) |")
    print("|---|---|---|---|---|---|---|---|")
    for model, v in rows.items():
        o, i8, f16 = v.get("ort_fp32"), v.get("npuemu_int8"), v.get("npuemu_fp16")
        if not (o and i8 and f16):
            continue
        shape = "x".join(map(str, i8["input_shape"]))
        print(f"| {model} | {shape} | {ms(o['med'])} | {ms(i8['med'])} | {o['med'] / i8['med']:.2f}x "
              f"(min {o['min'] / i8['min']:.2f}x) | {ms(f16['med'])} | {f16['med'] / o['med']:.2f}x "
              f"(min {f16['min'] / o['min']:.2f}x) | {i8['npu_ops']} / {i8['cpu_ops']} |")
    hyb = {m: v for m, v in rows.items() if "npuemu_hybrid" in v and "ort_fp32" in v}
    if hyb:
        print("\n| model | ORT fp32 ms | w8a8 + auto_hybrid ms | speed-up | float16 layers | INT8 ms | FP16 ms |")
        print("|---|---|---|---|---|---|---|")
        for model, v in hyb.items():
            o, h = v["ort_fp32"], v["npuemu_hybrid"]
            cell = lambda k: ms(v[k]["med"]) if k in v else "-"  # noqa: E731
            print(f"| {model} | {ms(o['med'])} | {ms(h['med'])} | {o['med'] / h['med']:.2f}x "
                  f"(min {o['min'] / h['min']:.2f}x) | {h['float16_layers']} of {h['layers']} | "
                  f"{cell('npuemu_int8')} | {cell('npuemu_fp16')} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--models":
        models(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "bench.json")
