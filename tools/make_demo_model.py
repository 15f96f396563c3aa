"""Builds the demo model and data shipped in python/npuemu/data/: a small CNN trained on scikit-learn's
digits (8x8 grayscale, 10 classes), written as ONNX, plus held-out test samples and a calibration set.

    pip install scikit-learn && python tools/make_demo_model.py [--out python/npuemu/data]

Needs numpy, onnx and scikit-learn (only for the data set, which ships inside it: no download);
onnxruntime, when installed, checks the written model against the trainer's own forward pass. The
training is plain numpy (float64, Adam), seeded: on the same numpy/BLAS it gives the same bytes; another
BLAS may change the weights in the last bits and the accuracy by a sample or so. About 15 s on one core.

Input convention (RKNN-style): the data holds uint8 pixels 0..255 in NCHW (digits' 0..16 scaled by
255/16, rounded half to even); the ONNX model takes float32 x = (pixel - mean) / std with mean 0,
std 255, so `config(mean_values=[[0]], std_values=[[255]])` reproduces the model's input.

Network (NCHW, batch 1 in the ONNX model):
    input 1x1x8x8 -> Conv3x3 16 (no bias) -> BatchNormalization -> Relu          8x8
                  -> Conv3x3 stride 2, 64 -> Relu = r2                           4x4
                  -> depthwise Conv3x3 (group 64) -> Clip(0, 6)                  4x4
                  -> Conv1x1 64 -> Add(r2) -> Relu                               4x4
                  -> GlobalAveragePool -> Flatten -> Gemm(transB=1) 10 = logits
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One BLAS thread: the matrices are tiny (threads only add contention: 16 s instead of 100 s on a
# loaded 2-core machine) and a single-threaded BLAS sums in a fixed order, so the bytes repeat.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SEED = 20240603
N_TEST = 360          # held-out test samples (20 % of the 1797), stratified by class
N_CALIB = 50          # calibration samples from the training split, 5 per class
MEAN, STD = 0.0, 255.0
EPOCHS, BATCH, LR, WD = 40, 32, 3e-3, 1e-4
BN_EPS = 1e-5
C1, C2 = 16, 64


# ---------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------
def load_split(rng):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("tools/make_demo_model.py needs scikit-learn for the digits data: pip install scikit-learn")

    d = load_digits()
    v = d.images.astype(np.float64)                       # (1797, 8, 8), integers 0..16
    assert v.min() == 0 and v.max() == 16
    pixels = np.rint(v * (255.0 / 16.0)).astype(np.uint8)[:, None]  # NCHW uint8, 16 -> 255
    labels = d.target.astype(np.int64)
    # Stratified split by hand (no dependence on scikit-learn's splitter across versions).
    test_idx, train_idx = [], []
    per_class = N_TEST // 10
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test_idx.append(idx[:per_class])
        train_idx.append(idx[per_class:])
    test_idx = np.sort(np.concatenate(test_idx))
    train_idx = np.sort(np.concatenate(train_idx))
    calib_idx = np.sort(np.concatenate(
        [rng.choice(train_idx[labels[train_idx] == c], N_CALIB // 10, replace=False) for c in range(10)]))
    return pixels, labels, train_idx, test_idx, calib_idx


def normalise(pixels):
    return (pixels.astype(np.float64) - MEAN) / STD


# ---------------------------------------------------------------------------------------------------
# Layers (float64 numpy, forward + backward). Convolution as a sum over the kernel taps of strided
# slices of the zero-padded input: tiny tensors, 9 taps, no im2col buffers.
# ---------------------------------------------------------------------------------------------------
def conv_fwd(x, w, b, stride, pad, depthwise=False):
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            s = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            if depthwise:
                y += s * w[:, 0, i, j][None, :, None, None]
            else:
                y += np.einsum("nchw,oc->nohw", s, w[:, :, i, j], optimize=True)
    if b is not None:
        y += b[None, :, None, None]
    return y, xp


def conv_bwd(dy, xp, w, stride, pad, depthwise=False):
    kh, kw = w.shape[2:]
    oh, ow = dy.shape[2:]
    dw = np.zeros_like(w)
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            sl = (slice(None), slice(None), slice(i, i + stride * oh, stride), slice(j, j + stride * ow, stride))
            s = xp[sl]
            if depthwise:
                dw[:, 0, i, j] = np.einsum("nchw,nchw->c", dy, s, optimize=True)
                dxp[sl] += dy * w[:, 0, i, j][None, :, None, None]
            else:
                dw[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, s, optimize=True)
                dxp[sl] += np.einsum("nohw,oc->nchw", dy, w[:, :, i, j], optimize=True)
    db = dy.sum(axis=(0, 2, 3))
    h, wd = xp.shape[2] - 2 * pad, xp.shape[3] - 2 * pad
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw, db


def init_params(rng):
    def he(shape, fan_in):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)

    return {
        "conv1.w": he((C1, 1, 3, 3), 9),
        "bn1.gamma": np.ones(C1), "bn1.beta": np.zeros(C1),
        "conv2.w": he((C2, C1, 3, 3), 9 * C1), "conv2.b": np.zeros(C2),
        "dw.w": he((C2, 1, 3, 3), 9), "dw.b": np.zeros(C2),
        "pw.w": he((C2, C2, 1, 1), C2) * 0.5, "pw.b": np.zeros(C2),
        "fc.w": rng.normal(0.0, np.sqrt(1.0 / C2), (10, C2)), "fc.b": np.zeros(10),
    }


def forward(p, x, bn_stats=None):
    """Logits and the cache for backward. bn_stats=None: training mode (batch statistics);
    otherwise (mean, var) as ONNX BatchNormalization uses them."""
    c = {}
    z1, c["xp1"] = conv_fwd(x, p["conv1.w"], None, 1, 1)
    if bn_stats is None:
        mu, var = z1.mean(axis=(0, 2, 3)), z1.var(axis=(0, 2, 3))
    else:
        mu, var = bn_stats
    inv = 1.0 / np.sqrt(var + BN_EPS)
    xhat = (z1 - mu[None, :, None, None]) * inv[None, :, None, None]
    y1 = p["bn1.gamma"][None, :, None, None] * xhat + p["bn1.beta"][None, :, None, None]
    a1 = np.maximum(y1, 0.0)
    z2, c["xp2"] = conv_fwd(a1, p["conv2.w"], p["conv2.b"], 2, 1)
    a2 = np.maximum(z2, 0.0)
    z3, c["xp3"] = conv_fwd(a2, p["dw.w"], p["dw.b"], 1, 1, depthwise=True)
    a3 = np.clip(z3, 0.0, 6.0)
    z4, c["xp4"] = conv_fwd(a3, p["pw.w"], p["pw.b"], 1, 0)
    s = z4 + a2
    a4 = np.maximum(s, 0.0)
    g = a4.mean(axis=(2, 3))
    logits = g @ p["fc.w"].T + p["fc.b"]
    c.update(z1=z1, inv=inv, xhat=xhat, y1=y1, z2=z2, z3=z3, s=s, g=g, hw=a4.shape[2] * a4.shape[3])
    return logits, c


def backward(p, c, logits, labels):
    n = logits.shape[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(prob[np.arange(n), labels]).mean()
    dl = prob
    dl[np.arange(n), labels] -= 1.0
    dl /= n
    gr = {"fc.w": dl.T @ c["g"], "fc.b": dl.sum(axis=0)}
    dg = dl @ p["fc.w"]
    ds = np.broadcast_to(dg[:, :, None, None] / c["hw"], c["s"].shape) * (c["s"] > 0)
    da3, gr["pw.w"], gr["pw.b"] = conv_bwd(ds, c["xp4"], p["pw.w"], 1, 0)
    dz3 = da3 * ((c["z3"] > 0) & (c["z3"] < 6))
    da2, gr["dw.w"], gr["dw.b"] = conv_bwd(dz3, c["xp3"], p["dw.w"], 1, 1, depthwise=True)
    da2 = da2 + ds                                        # residual branch
    dz2 = da2 * (c["z2"] > 0)
    da1, gr["conv2.w"], gr["conv2.b"] = conv_bwd(dz2, c["xp2"], p["conv2.w"], 2, 1)
    dy1 = da1 * (c["y1"] > 0)
    gr["bn1.gamma"] = (dy1 * c["xhat"]).sum(axis=(0, 2, 3))
    gr["bn1.beta"] = dy1.sum(axis=(0, 2, 3))
    dxhat = dy1 * p["bn1.gamma"][None, :, None, None]
    m = dy1.shape[0] * dy1.shape[2] * dy1.shape[3]
    # Batch-norm backward with batch statistics (training mode).
    dz1 = (c["inv"][None, :, None, None] / m) * (
        m * dxhat - dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - c["xhat"] * (dxhat * c["xhat"]).sum(axis=(0, 2, 3))[None, :, None, None])
    _, gr["conv1.w"], _ = conv_bwd(dz1, c["xp1"], p["conv1.w"], 1, 1)
    return loss, gr


def bn_population_stats(p, x):
    """BatchNormalization's mean/var for inference: the exact statistics of conv1's output over the
    whole training set (instead of a running average)."""
    z1, _ = conv_fwd(x, p["conv1.w"], None, 1, 1)
    return z1.mean(axis=(0, 2, 3)), z1.var(axis=(0, 2, 3))


def train(x, y, rng, log=print):
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(w) for k, w in p.items()}
    b1, b2, t = 0.9, 0.999, 0
    steps_per_epoch = int(np.ceil(len(x) / BATCH))
    total = EPOCHS * steps_per_epoch
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * BATCH:(s + 1) * BATCH]
            logits, cache = forward(p, x[idx])
            loss, gr = backward(p, cache, logits, y[idx])
            losses.append(loss)
            t += 1
            lr = LR * 0.5 * (1.0 + np.cos(np.pi * (t - 1) / total))   # cosine decay to 0
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * gr[k]
                v[k] = b2 * v[k] + (1 - b2) * gr[k] ** 2
                mh, vh = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
                p[k] -= lr * (mh / (np.sqrt(vh) + 1e-8) + WD * p[k])   # decoupled weight decay (AdamW)
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            log(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}")
    return p


# ---------------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------------
def to_onnx(p32, bn_mean, bn_var, accuracy):
    init = [numpy_helper.from_array(np.asarray(a, np.float32), name) for name, a in [
        ("conv1.weight", p32["conv1.w"]),
        ("bn1.scale", p32["bn1.gamma"]), ("bn1.bias", p32["bn1.beta"]),
        ("bn1.mean", bn_mean), ("bn1.var", bn_var),
        ("conv2.weight", p32["conv2.w"]), ("conv2.bias", p32["conv2.b"]),
        ("dwconv.weight", p32["dw.w"]), ("dwconv.bias", p32["dw.b"]),
        ("pwconv.weight", p32["pw.w"]), ("pwconv.bias", p32["pw.b"]),
        ("fc.weight", p32["fc.w"]), ("fc.bias", p32["fc.b"]),
        ("relu6.min", np.float32(0.0)), ("relu6.max", np.float32(6.0)),
    ]]
    mk = helper.make_node
    nodes = [
        mk("Conv", ["input", "conv1.weight"], ["conv1"], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        mk("BatchNormalization", ["conv1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], ["bn1"], "bn1",
           epsilon=BN_EPS),
        mk("Relu", ["bn1"], ["relu1"], "relu1"),
        mk("Conv", ["relu1", "conv2.weight", "conv2.bias"], ["conv2"], "conv2", kernel_shape=[3, 3],
           pads=[1, 1, 1, 1], strides=[2, 2]),
        mk("Relu", ["conv2"], ["relu2"], "relu2"),
        mk("Conv", ["relu2", "dwconv.weight", "dwconv.bias"], ["dwconv"], "dwconv", kernel_shape=[3, 3],
           pads=[1, 1, 1, 1], group=C2),
        mk("Clip", ["dwconv", "relu6.min", "relu6.max"], ["relu6"], "relu6"),
        mk("Conv", ["relu6", "pwconv.weight", "pwconv.bias"], ["pwconv"], "pwconv", kernel_shape=[1, 1]),
        mk("Add", ["pwconv", "relu2"], ["add"], "add"),
        mk("Relu", ["add"], ["relu3"], "relu3"),
        mk("GlobalAveragePool", ["relu3"], ["gap"], "gap"),
        mk("Flatten", ["gap"], ["flatten"], "flatten", axis=1),
        mk("Gemm", ["flatten", "fc.weight", "fc.bias"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8,
                              producer_name="npuemu tools/make_demo_model.py", producer_version="1",
                              doc_string="CNN classifier for scikit-learn's digits (8x8, 10 classes). Input: "
                                         "float32 NCHW = uint8 pixel / 255. Output: logits.")
    helper.set_model_props(model, {
        "mean_values": "[[0]]", "std_values": "[[255]]",
        "input_layout": "NCHW", "fp32_test_accuracy": f"{accuracy:.6f}",
    })
    onnx.checker.check_model(model, full_check=True)
    return model


def predict_numpy(p32, bn_mean, bn_var, x):
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    logits, _ = forward(p64, x, (bn_mean.astype(np.float64), bn_var.astype(np.float64)))
    return logits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "python" / "npuemu" / "data")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    pixels, labels, train_idx, test_idx, calib_idx = load_split(rng)
    print(f"digits: {len(labels)} samples; train {len(train_idx)}, test {len(test_idx)}, "
          f"calibration {len(calib_idx)} (from train)")
    xtr, ytr = normalise(pixels[train_idx]), labels[train_idx]
    p = train(xtr, ytr, rng)

    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    bn_mean, bn_var = (a.astype(np.float32) for a in bn_population_stats(
        {k: v.astype(np.float64) for k, v in p32.items()}, xtr))
    train_acc = float((predict_numpy(p32, bn_mean, bn_var, xtr).argmax(1) == ytr).mean())
    test_logits = predict_numpy(p32, bn_mean, bn_var, normalise(pixels[test_idx]))
    test_pred = test_logits.argmax(1)
    n_correct = int((test_pred == labels[test_idx]).sum())
    acc = n_correct / len(test_idx)
    print(f"float32 weights, numpy float64 forward: train accuracy {train_acc:.4f}, "
          f"test accuracy {acc:.4f} ({n_correct}/{len(test_idx)})")

    model = to_onnx(p32, bn_mean, bn_var, acc)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path, npz_path = args.out / "digits_cnn.onnx", args.out / "digits_test.npz"
    onnx.save(model, onnx_path)
    np.savez_compressed(
        npz_path,
        test_images=pixels[test_idx], test_labels=labels[test_idx], test_indices=test_idx,
        calib_images=pixels[calib_idx], calib_labels=labels[calib_idx], calib_indices=calib_idx,
        mean_values=np.array([[MEAN]], np.float32), std_values=np.array([[STD]], np.float32),
        fp32_accuracy=np.float64(acc),
    )

    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: skipped the onnxruntime check")
    else:
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        xt = normalise(pixels[test_idx]).astype(np.float32)
        ort_logits = np.concatenate([sess.run(None, {"input": xt[i:i + 1]})[0] for i in range(len(xt))])
        ort_pred = ort_logits.argmax(1)
        print(f"onnxruntime: test accuracy {(ort_pred == labels[test_idx]).mean():.4f}, "
              f"{int((ort_pred != test_pred).sum())} predictions differ from numpy, "
              f"max |logit diff| {np.abs(ort_logits - test_logits).max():.2e}")
        if (ort_pred != test_pred).sum() > 1:
            print("error: onnxruntime disagrees with the trainer's forward pass", file=sys.stderr)
            return 1
    for f in (onnx_path, npz_path):
        print(f"wrote {f} ({f.stat().st_size} bytes)")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
