"""The RKNN / RKNNLite facades end to end on the bundled digits CNN: build in every mode, accuracy against
onnxruntime, export and load in a fresh process, RKNNLite without onnx, core masks, steady-state
allocation, and every bad input giving -1 with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import npuemu
from npuemu import RKNN, RKNNLite, _core

DATA = Path(__file__).resolve().parents[1] / "python" / "npuemu" / "data"
MODEL = str(DATA / "digits_cnn.onnx")
ROOT = Path(__file__).resolve().parents[1]
# where the npuemu under test was imported from (the source tree with a dev build, or site-packages)
PKG_PARENT = str(Path(npuemu.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def digits():
    return np.load(DATA / "digits_test.npz")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("ds")
    (d / "calib").mkdir()
    lines = ["# digits calibration set", ""]
    for i in range(20):
        np.save(d / "calib" / f"{i}.npy", digits["calib_images"][i : i + 1])
        lines.append(f"calib/{i}.npy")
    (d / "dataset.txt").write_text("\n".join(lines) + "\n")
    return str(d / "dataset.txt")


def _built(dataset, quant=True, float_dtype="float16", core_mask=0, **cfg):
    r = RKNN()
    assert r.config(mean_values=[[0]], std_values=[[255]], target_platform="rk3588", float_dtype=float_dtype, **cfg) == 0
    assert r.load_onnx(MODEL) == 0
    assert r.build(do_quantization=quant, dataset=dataset if quant else None) == 0
    assert r.init_runtime(core_mask=core_mask) == 0
    return r


def _ort_logits(x_u8: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: (x_u8[i : i + 1].astype(np.float32) / 255)})[0]
                           for i in range(len(x_u8))])


def _infer_all(r, x, fmt="nchw"):
    return np.concatenate([r.inference(inputs=[x[i : i + 1]], data_format=fmt)[0] for i in range(len(x))])


@pytest.mark.parametrize("mode", ["w8a8", "float16", "float32"])
def test_build_modes_agree_with_onnxruntime(dataset, digits, mode):
    x, labels = digits["test_images"], digits["test_labels"]
    ref = _ort_logits(x)
    r = _built(dataset, quant=mode == "w8a8", float_dtype="float32" if mode == "float32" else "float16")
    got = _infer_all(r, x)
    r.release()
    assert got.dtype == np.float32 and got.shape == ref.shape
    agree = np.mean(np.argmax(got, 1) == np.argmax(ref, 1))
    acc = np.mean(np.argmax(got, 1) == labels)
    cos = np.mean([np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(got, ref)])
    if mode == "float32":
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    elif mode == "float16":
        assert cos > 0.9999 and agree == 1.0
    else:
        assert cos > 0.999 and agree >= 0.99 and acc >= 0.97


def test_nhwc_default_and_nchw_give_the_same(dataset, digits):
    r = _built(dataset)
    x = digits["test_images"][:5]
    a = _infer_all(r, x, "nchw")
    b = np.concatenate([r.inference(inputs=[x[i : i + 1].transpose(0, 2, 3, 1)])[0] for i in range(5)])
    c = np.concatenate([r.inference(inputs=[x[i].transpose(1, 2, 0)])[0] for i in range(5)])  # HWC, batch implied
    f = _infer_all(r, x.astype(np.float32))  # float32 input: same values, same result
    assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, f)


def test_core_masks_and_repeated_runs_are_bit_identical(dataset, digits):
    x = digits["test_images"][:40]
    outs = []
    for mask in (0, 1, 2, 4, 3, 7, 0xFFFF):
        r = _built(dataset, core_mask=mask)
        outs.append(_infer_all(r, x))
        outs.append(_infer_all(r, x))
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])


def test_steady_state_inference_allocates_nothing_natively(dataset, digits):
    r = _built(dataset)
    x = digits["test_images"][:1]
    r.inference(inputs=[x], data_format="nchw")
    before = _core.alloc_stats()
    for _ in range(20):
        r.inference(inputs=[x], data_format="nchw")
    assert _core.alloc_stats() == before


@pytest.mark.parametrize("quant", [True, False])
def test_rknn_batch_size_stacks_samples(tmp_path, dataset, digits, capsys, quant):
    """rknn_batch_size=N: N samples stacked on axis 0 in, outputs stacked out, each sample's outputs those of
    an inference on it alone (bit-identical); kept by export_rknn for RKNN.load_rknn and RKNNLite."""
    x = digits["test_images"][:12]
    one = _built(dataset, quant=quant)
    ref = _infer_all(one, x)
    r = RKNN()
    assert r.config(mean_values=[[0]], std_values=[[255]], target_platform="rk3588") == 0
    assert r.load_onnx(MODEL) == 0
    assert r.build(do_quantization=quant, dataset=dataset if quant else None, rknn_batch_size=4) == 0
    assert "rknn_batch_size 4" in _err(capsys)
    assert r.init_runtime(core_mask=7) == 0
    got = np.concatenate([r.inference(inputs=[x[i:i + 4]], data_format="nchw")[0] for i in range(0, 12, 4)])
    assert got.shape == ref.shape and np.array_equal(got, ref)
    nhwc = r.inference(inputs=[x[4:8].transpose(0, 2, 3, 1)])[0]
    assert np.array_equal(nhwc, ref[4:8])
    for wrong in (x[:1], x[:3], x[:5], x[0].transpose(1, 2, 0)):  # one sample (HWC too) is not 4
        assert r.inference(inputs=[wrong], data_format="nhwc" if wrong.ndim == 3 else "nchw") is None
        assert "(4, 1, 8, 8)" in _err(capsys)
    assert r.eval_memory(is_print=False)["other_memory"] == 4 * one.eval_memory(is_print=False)["other_memory"]
    path = str(tmp_path / "b4.rknn")
    assert r.export_rknn(path) == 0
    lite = RKNNLite()
    assert lite.load_rknn(path) == 0 and lite.init_runtime() == 0
    assert np.array_equal(lite.inference(inputs=[x[8:12]], data_format="nchw")[0], ref[8:12])
    r2 = RKNN()
    assert r2.load_rknn(path) == 0 and r2.init_runtime() == 0
    assert np.array_equal(r2.inference(inputs=[x[:4]], data_format="nchw")[0], ref[:4])


def test_model_file_with_a_bad_batch_size_gives_minus_one(tmp_path, dataset, capsys):
    """A well-formed file whose rknn_batch_size is not usable (written elsewhere): init_runtime refuses it."""
    from npuemu.runtime import modelfile

    r = _built(dataset)
    path = tmp_path / "m.npuemu"
    assert r.export_rknn(str(path)) == 0
    meta, arrays, _ = modelfile.load(path, mmap=False)
    for bad in ("4", 0, True, 2.5):
        meta["program"]["meta"]["rknn_batch_size"] = bad
        modelfile.save(tmp_path / "bad.npuemu", meta, arrays, producer="test")
        lite = RKNNLite()
        assert lite.load_rknn(str(tmp_path / "bad.npuemu")) == 0
        assert lite.init_runtime() == -1
        assert "rknn_batch_size" in _err(capsys)


def test_rknn_batch_size_needs_batch_one_inputs(tmp_path, dataset, capsys):
    m = onnx.load(MODEL)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 2
    path = str(tmp_path / "b2.onnx")
    onnx.save(m, path)
    r = RKNN()
    assert r.config(mean_values=[[0]], std_values=[[255]], target_platform="rk3588") == 0
    assert r.load_onnx(path) == 0
    assert r.build(do_quantization=True, dataset=dataset, rknn_batch_size=3) == -1
    assert "needs a model whose inputs have batch 1; input 'input' has shape (2, 1, 8, 8)" in _err(capsys)
    assert r.hybrid_quantization_step1(dataset=dataset, rknn_batch_size=3) == -1
    assert "needs a model whose inputs have batch 1" in _err(capsys)


def test_export_then_load_in_fresh_processes(tmp_path, dataset, digits):
    r = _built(dataset)
    x = digits["test_images"][:30]
    ref = _infer_all(r, x)
    path = tmp_path / "digits.npuemu"
    assert r.export_rknn(str(path)) == 0
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import sys, json, numpy as np
        kind = sys.argv[1]
        if kind == "lite":
            from npuemu.lite import RKNNLite as C
        else:
            from npuemu import RKNN as C
        x = np.load({str(tmp_path / 'x.npy')!r})
        r = C()
        assert r.load_rknn({str(path)!r}) == 0
        assert (r.init_runtime(core_mask=7) if kind == "lite" else r.init_runtime()) == 0
        y = np.concatenate([r.inference(inputs=[x[i:i+1]], data_format="nchw")[0] for i in range(len(x))])
        np.save({str(tmp_path)!r} + "/y_" + kind + ".npy", y)
        mods = sorted(m for m in sys.modules if m == "onnx" or m.startswith(("onnx.", "npuemu.compiler",
                                                                             "npuemu.frontend")))
        print(json.dumps(mods))
        """
    )
    env = dict(os.environ, PYTHONPATH=PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for kind in ("lite", "rknn"):
        p = subprocess.run([sys.executable, "-c", script, kind], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        mods = json.loads(p.stdout.strip().splitlines()[-1])
        if kind == "lite":
            assert mods == [], f"RKNNLite imported {mods}"
        assert np.array_equal(np.load(tmp_path / f"y_{kind}.npy"), ref)


def test_damaged_model_files_give_minus_one(tmp_path, dataset, capsys):
    r = _built(dataset)
    path = tmp_path / "m.npuemu"
    assert r.export_rknn(str(path)) == 0
    blob = path.read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.npuemu"
    cuts = sorted(set(rng.integers(0, len(blob), 40).tolist()) | {0, 1, 63, 64, len(blob) - 1})
    for cut in cuts:
        bad.write_bytes(blob[:cut])
        lite = RKNNLite()
        assert lite.load_rknn(str(bad)) == -1
        assert lite.inference(inputs=[np.zeros((1, 8, 8, 1), np.uint8)]) is None
    for _ in range(40):
        b = bytearray(blob)
        b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        bad.write_bytes(bytes(b))
        assert RKNNLite().load_rknn(str(bad)) == -1
    err = capsys.readouterr().err
    assert "E load_rknn:" in err and ("truncated" in err or "corrupt" in err)
    assert RKNNLite().load_rknn(MODEL) == -1
    assert "load_onnx" in capsys.readouterr().err


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_bad_inference_inputs(dataset, digits, capsys):
    r = _built(dataset)
    x = digits["test_images"][:1]
    cases = [
        ([x, x], "has 1 input"),
        ([x[:, :, :4]], "expects"),
        ([x.astype(np.complex64)], "dtype"),
        ([x.astype(object)], "dtype"),
        (x, "list"),
        ([x.tolist()], "numpy array"),
        ("x", "list"),
    ]
    for inputs, msg in cases:
        assert r.inference(inputs=inputs, data_format="nchw") is None
        e = _err(capsys)
        assert "E inference:" in e and msg in e, (msg, e)
    assert r.inference(inputs=[x], data_format="nchwc") is None
    assert "nhwc" in _err(capsys)
    assert r.inference(inputs=[x], data_format="nchw", inputs_pass_through=[1]) is None
    assert "not implemented yet" in _err(capsys)


def test_bad_config_and_build_arguments(tmp_path, dataset, capsys):
    r = RKNN()
    assert r.config(target_platform="rk9999") == -1
    assert "rk3588" in _err(capsys)
    assert r.config(quantized_dtype="w4a16") == -1
    assert "not implemented yet" in _err(capsys)
    assert r.config(quantized_algorithm="best") == -1
    assert "normal" in _err(capsys)
    assert r.config(mean_values=[[0]], std_values=[[0]]) == -1
    assert r.config(nonsense_option=1) == -1
    assert r.build(dataset=dataset) == -1  # no model loaded
    assert "load_onnx" in _err(capsys)
    assert r.init_runtime() == -1
    assert r.export_rknn(str(tmp_path / "x.npuemu")) == -1
    assert not (tmp_path / "x.npuemu").exists()
    assert r.load_onnx(str(tmp_path / "missing.onnx")) == -1
    assert r.config(mean_values=[[0, 0, 0]], std_values=[[255]]) == 0
    assert r.load_onnx(MODEL) == -1 or r.build(do_quantization=True, dataset=dataset) == -1  # 3 means, 1 channel
    assert "mean_values" in _err(capsys)
    assert r.config(mean_values=[[0]], std_values=[[255]]) == 0
    assert r.load_onnx(MODEL) == 0
    assert r.build(do_quantization=True, dataset=None) == -1
    assert "dataset" in _err(capsys)
    assert r.build(do_quantization=True, dataset=str(tmp_path / "nope.txt")) == -1
    assert "does not exist" in _err(capsys)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    assert r.build(do_quantization=True, dataset=str(empty)) == -1
    bad = tmp_path / "bad.txt"
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5, 5), np.float32))
    bad.write_text("wrong.npy\n")
    assert r.build(do_quantization=True, dataset=str(bad)) == -1
    assert "shape" in _err(capsys)
    for bad in (0, -2, 2.5, True, "4"):
        assert r.build(do_quantization=True, dataset=dataset, rknn_batch_size=bad) == -1
        assert "rknn_batch_size must be None or an int >= 1" in _err(capsys)
    assert r.build(do_quantization="yes", dataset=dataset) == -1
    assert r.build(do_quantization=True, dataset=dataset) == 0
    assert r.init_runtime(target="rk3566") == -1
    assert "target" in _err(capsys)
    assert r.init_runtime(core_mask=5) == -1
    assert "NPU_CORE_0_1_2" in _err(capsys)
    assert r.eval_perf() == -1 and "not implemented yet" in _err(capsys)
    assert r.init_runtime(target="RK3588") == 0
    mem = r.eval_memory(is_print=False)
    assert mem["total_memory"] == mem["weight_memory"] + mem["internal_memory"] + mem["other_memory"] > 0


def test_unsupported_op_names_the_op_and_node(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("MyCustomOp", ["x"], ["y"], name="weird_node", domain="com.example")
    m = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(m, str(path))
    r = RKNN()
    assert r.load_onnx(str(path)) == -1 or r.build(do_quantization=False) == -1
    e = _err(capsys)
    assert "MyCustomOp" in e and "weird_node" in e


def test_context_manager_releases(dataset):
    with RKNN() as r:
        assert r.config(mean_values=[[0]], std_values=[[255]]) == 0
        assert r.load_onnx(MODEL) == 0
    assert r.build(do_quantization=False) == -1  # released: the model is gone


def test_calibration_progress_and_summary_are_printed(dataset, capsys):
    _built(dataset)
    e = _err(capsys)
    assert "calibration: 20/20 samples" in e
    assert "ops on the NPU" in e and "on the CPU" in e


def test_demo_command_runs():
    env = dict(os.environ, PYTHONPATH=PKG_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "npuemu", "demo"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for word in ("float32", "fp16", "int8 (w8a8)", "cosine vs fp32", "ms/inference", "bit-identical"):
        assert word in out


@pytest.mark.parametrize("algorithm", ["mmse", "kl_divergence"])
def test_clipping_calibration_builds_keep_the_accuracy(dataset, digits, algorithm):
    x, labels = digits["test_images"], digits["test_labels"]
    r = RKNN()
    assert r.config(mean_values=[[0]], std_values=[[255]], quantized_algorithm=algorithm) == 0
    assert r.load_onnx(MODEL) == 0
    assert r.build(do_quantization=True, dataset=dataset) == 0
    assert r.init_runtime() == 0
    got = _infer_all(r, x)
    assert np.mean(np.argmax(got, 1) == labels) >= 0.97
