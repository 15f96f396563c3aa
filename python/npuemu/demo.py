"""``npuemu demo``: the whole toolkit flow on the bundled digits CNN (python/npuemu/data).

config -> load_onnx -> build (float32 golden, FP16, w8a8 calibrated on 50 images) -> init_runtime ->
inference on the 360 test images -> accuracy, cosine against float32, latency -> export_rknn ->
RKNNLite.load_rknn in a fresh object -> bit-identical outputs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    d = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / d) if d > 0 else float(np.array_equal(a, b))


def run_demo(core_mask: int = 0, verbose: bool = False, out=print) -> int:
    from . import RKNN, RKNNLite

    d = np.load(DATA / "digits_test.npz")
    test_x, test_y = d["test_images"], d["test_labels"]
    calib = d["calib_images"]
    mean = [[float(v) for v in np.asarray(d["mean_values"]).reshape(-1)]]
    std = [[float(v) for v in np.asarray(d["std_values"]).reshape(-1)]]
    model = str(DATA / "digits_cnn.onnx")
    out(f"npuemu demo: digits CNN ({model}), {len(test_x)} test images 8x8 uint8, {len(calib)} calibration images")
    results = {}
    with tempfile.TemporaryDirectory(prefix="npuemu-demo-") as tmp:
        lines = []
        for i in range(len(calib)):
            np.save(os.path.join(tmp, f"calib_{i}.npy"), calib[i : i + 1])
            lines.append(f"calib_{i}.npy")
        dataset = os.path.join(tmp, "dataset.txt")
        Path(dataset).write_text("\n".join(lines) + "\n")

        builds = [("float32", False, "float32"), ("fp16", False, "float16"), ("int8 (w8a8)", True, "float16")]
        exported = os.path.join(tmp, "digits_int8.npuemu")
        for label, quant, float_dtype in builds:
            with RKNN(verbose=verbose) as rknn:
                steps = [
                    rknn.config(mean_values=mean, std_values=std, target_platform="rk3588", float_dtype=float_dtype),
                    rknn.load_onnx(model),
                ]
                t0 = time.perf_counter()
                steps.append(rknn.build(do_quantization=quant, dataset=dataset if quant else None))
                build_s = time.perf_counter() - t0
                steps.append(rknn.init_runtime(core_mask=core_mask))
                if any(s != 0 for s in steps):
                    out(f"{label}: the flow failed (see the E lines above)")
                    return 1
                outs = []
                t0 = time.perf_counter()
                for i in range(len(test_x)):
                    outs.append(rknn.inference(inputs=[test_x[i : i + 1]], data_format="nchw")[0])
                dt = (time.perf_counter() - t0) / len(test_x)
                if quant and rknn.export_rknn(exported) != 0:
                    return 1
            logits = np.concatenate(outs)
            results[label] = {"logits": logits, "ms": dt * 1e3, "build_s": build_s,
                              "acc": float(np.mean(np.argmax(logits, axis=1) == test_y))}

        lite = RKNNLite(verbose=verbose)
        if lite.load_rknn(exported) != 0 or lite.init_runtime(core_mask=core_mask) != 0:
            return 1
        lite_out = np.concatenate([lite.inference(inputs=[test_x[i : i + 1]], data_format="nchw")[0]
                                   for i in range(len(test_x))])
        lite.release()
        size = os.path.getsize(exported)

    ref = results["float32"]["logits"]
    out("")
    out(f"{'build':<13} {'accuracy':>9} {'cosine vs fp32':>15} {'argmax = fp32':>14} {'ms/inference':>13} {'build s':>8}")
    for label, r in results.items():
        same = float(np.mean(np.argmax(r["logits"], 1) == np.argmax(ref, 1)))
        cos = np.mean([_cos(a, b) for a, b in zip(r["logits"], ref)])
        out(f"{label:<13} {r['acc'] * 100:8.2f}% {cos:15.6f} {same * 100:13.1f}% {r['ms']:13.3f} {r['build_s']:8.2f}")
    identical = np.array_equal(lite_out, results["int8 (w8a8)"]["logits"])
    out("")
    out(f"export_rknn -> {size} bytes; RKNNLite.load_rknn + inference: outputs "
        f"{'bit-identical to' if identical else 'DIFFERENT from'} RKNN.inference")
    out(f"(fp32 accuracy recorded with onnxruntime when the data was made: {float(d['fp32_accuracy']) * 100:.2f}%)")
    return 0 if identical else 1
