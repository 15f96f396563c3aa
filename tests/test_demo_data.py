"""The demo model and data shipped in npuemu/data (made by tools/make_demo_model.py): the model is a valid
opset-13 ONNX CNN, onnxruntime reproduces its recorded float32 accuracy on the shipped test set, and the
npz has the documented keys, dtypes, shapes and input convention."""

from __future__ import annotations

import ast
from importlib import resources

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

DATA = resources.files("npuemu") / "data"
N_TEST, N_CALIB = 360, 50
KEYS = {  # key: (dtype, shape)
    "test_images": (np.uint8, (N_TEST, 1, 8, 8)),
    "test_labels": (np.int64, (N_TEST,)),
    "test_indices": (np.int64, (N_TEST,)),
    "calib_images": (np.uint8, (N_CALIB, 1, 8, 8)),
    "calib_labels": (np.int64, (N_CALIB,)),
    "calib_indices": (np.int64, (N_CALIB,)),
    "mean_values": (np.float32, (1, 1)),
    "std_values": (np.float32, (1, 1)),
    "fp32_accuracy": (np.float64, ()),
}
# digits' 0..16 scaled by 255/16, rounded half to even: the only pixel values the data may hold.
PIXEL_LEVELS = np.rint(np.arange(17) * (255.0 / 16.0)).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    with resources.as_file(DATA / "digits_cnn.onnx") as p:
        return onnx.load(str(p))


@pytest.fixture(scope="module")
def data():
    with resources.as_file(DATA / "digits_test.npz") as p, np.load(p) as z:
        return {k: z[k] for k in z.files}


def model_input(images, data):
    """The documented convention: float32 (pixel - mean) / std, per channel (one channel here)."""
    mean = data["mean_values"].reshape(1, -1, 1, 1)
    std = data["std_values"].reshape(1, -1, 1, 1)
    return ((images.astype(np.float32) - mean) / std).astype(np.float32)


def test_model_is_valid_opset13_cnn(model):
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    g = model.graph
    inits = {t.name for t in g.initializer}
    (inp,) = [i for i in g.input if i.name not in inits]
    (out,) = g.output
    dims = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    assert (inp.name, inp.type.tensor_type.elem_type, dims(inp)) == ("input", onnx.TensorProto.FLOAT, [1, 1, 8, 8])
    assert (out.name, out.type.tensor_type.elem_type, dims(out)) == ("logits", onnx.TensorProto.FLOAT, [1, 10])
    ops = [n.op_type for n in g.node]
    # The passes the demo is meant to exercise: BN folding, Clip (ReLU6) fusion, depthwise, residual Add.
    for op in ("Conv", "BatchNormalization", "Relu", "Clip", "Add", "GlobalAveragePool", "Flatten", "Gemm"):
        assert op in ops, op
    groups = [a.i for n in g.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert 64 in groups, "no depthwise convolution"
    for t in g.initializer:
        assert np.all(np.isfinite(numpy_helper.to_array(t))), t.name


def test_npz_keys_dtypes_shapes(data):
    assert set(data) == set(KEYS)
    for k, (dt, shape) in KEYS.items():
        assert data[k].dtype == dt and data[k].shape == shape, (k, data[k].dtype, data[k].shape)
    assert data["mean_values"].tolist() == [[0.0]] and data["std_values"].tolist() == [[255.0]]
    for split, n in (("test", N_TEST), ("calib", N_CALIB)):
        assert np.isin(data[f"{split}_images"], PIXEL_LEVELS).all()
        assert data[f"{split}_images"].max() == 255 and data[f"{split}_images"].min() == 0
        # Balanced over the ten classes.
        assert np.bincount(data[f"{split}_labels"], minlength=10).tolist() == [n // 10] * 10


def test_metadata_matches_npz(model, data):
    props = {p.key: p.value for p in model.metadata_props}
    assert ast.literal_eval(props["mean_values"]) == data["mean_values"].tolist()
    assert ast.literal_eval(props["std_values"]) == data["std_values"].tolist()
    assert props["input_layout"] == "NCHW"
    assert abs(float(props["fp32_test_accuracy"]) - float(data["fp32_accuracy"])) < 1e-6


def test_calibration_and_test_are_disjoint(data):
    t, c = data["test_indices"], data["calib_indices"]
    assert len(np.unique(t)) == N_TEST and len(np.unique(c)) == N_CALIB
    assert not np.intersect1d(t, c).size
    assert t.min() >= 0 and max(t.max(), c.max()) < 1797  # rows of load_digits()


def test_onnxruntime_accuracy_matches_record(model, data):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = model_input(data["test_images"], data)
    logits = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(N_TEST)])
    correct = int((logits.argmax(axis=1) == data["test_labels"]).sum())
    assert correct / N_TEST >= 0.95
    assert abs(correct - round(float(data["fp32_accuracy"]) * N_TEST)) <= 1

    # A second oracle: a float64 numpy transcription of the graph. (onnx.reference is no oracle here: its
    # BatchNormalization-9 applies the schema's default momentum 0.9 in inference mode, onnx PR #8442.)
    np.testing.assert_allclose(numpy_forward(model, x), logits, rtol=1e-4, atol=1e-4)


def numpy_forward(model, x):
    """The model's 13 nodes written out in float64 numpy, node by node, checked against the graph."""
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    assert [n.op_type for n in model.graph.node] == ["Conv", "BatchNormalization", "Relu", "Conv", "Relu", "Conv",
                                                    "Clip", "Conv", "Add", "Relu", "GlobalAveragePool", "Flatten",
                                                    "Gemm"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in model.graph.node]

    def conv(x, weight, bias, a):
        s, p, group = a.get("strides", [1, 1])[0], a.get("pads", [0] * 4)[0], a.get("group", 1)
        n, _, h, wd = x.shape
        o, cg, kh, kw = weight.shape
        oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        y = np.zeros((n, o, oh, ow))
        og = o // group
        for g in range(group):
            for i in range(kh):
                for j in range(kw):
                    tap = xp[:, g * cg:(g + 1) * cg, i:i + s * oh:s, j:j + s * ow:s]
                    y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", tap, weight[g * og:(g + 1) * og, :, i, j])
        return y + (0 if bias is None else bias[None, :, None, None])

    assert attrs[11].get("axis", 1) == 1 and attrs[12].get("transB") == 1 and not attrs[12].get("transA", 0)
    ch = lambda v: v[None, :, None, None]  # noqa: E731
    x = x.astype(np.float64)
    y = conv(x, w["conv1.weight"], None, attrs[0])
    y = ch(w["bn1.scale"]) * (y - ch(w["bn1.mean"])) / np.sqrt(ch(w["bn1.var"]) + attrs[1]["epsilon"]) \
        + ch(w["bn1.bias"])
    r2 = np.maximum(conv(np.maximum(y, 0), w["conv2.weight"], w["conv2.bias"], attrs[3]), 0)
    y = np.clip(conv(r2, w["dwconv.weight"], w["dwconv.bias"], attrs[5]), w["relu6.min"], w["relu6.max"])
    y = np.maximum(conv(y, w["pwconv.weight"], w["pwconv.bias"], attrs[7]) + r2, 0)
    return y.mean(axis=(2, 3)) @ w["fc.weight"].T + w["fc.bias"]


def test_samples_are_load_digits_rows(data):
    """Provenance: the shipped images and labels are the stated rows of scikit-learn's digits under the
    documented scaling (needs scikit-learn, which npuemu does not depend on)."""
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    for split in ("test", "calib"):
        idx = data[f"{split}_indices"]
        np.testing.assert_array_equal(data[f"{split}_images"][:, 0], PIXEL_LEVELS[d.images[idx].astype(np.int64)])
        np.testing.assert_array_equal(data[f"{split}_labels"], d.target[idx])
