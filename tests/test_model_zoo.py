"""The real-model helpers (tests/model_zoo.py) against independent oracles: the numpy resize against
onnxruntime's Resize, the region labelling against a literal flood fill, CTC decoding and NMS on
hand-made cases; and, when the models are fetched (tools/fetch_models.py) and Pillow is installed,
the fp32 onnxruntime answers against what the drawn inputs show."""

from __future__ import annotations

import numpy as np
import pytest

import model_zoo as mz


def _ort_resize_linear(x: np.ndarray, out_hw) -> np.ndarray:
    """onnxruntime Resize(linear, half_pixel, no antialias) to `sizes` (roi and scales absent)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    sizes = numpy_helper.from_array(np.array(x.shape[:2] + tuple(out_hw), np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                            coordinate_transformation_mode="half_pixel")
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [sizes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("shape,out_hw", [((7, 9, 3), (20, 5)), ((40, 33, 3), (13, 61)), ((5, 6), (5, 6)),
                                          ((64, 48, 3), (31, 24)), ((3, 1, 3), (8, 4))])
def test_resize_matches_onnx_resize_linear_half_pixel(rng, shape, out_hw):
    img = rng.integers(0, 256, shape).astype(np.uint8)
    got = mz.resize_bilinear_f32(img, *out_hw)
    x = img.astype(np.float32)
    nchw = x.transpose(2, 0, 1)[None] if x.ndim == 3 else x[None, None]
    ref = _ort_resize_linear(nchw, out_hw)
    ref = ref[0].transpose(1, 2, 0) if x.ndim == 3 else ref[0, 0]
    # float32 coordinates in onnxruntime vs float64 here: ~1e-6 relative, i.e. < 1e-3 on 0..255.
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)
    u8 = mz.resize_bilinear(img, *out_hw)
    assert u8.dtype == np.uint8 and np.array_equal(u8, np.floor(got + 0.5).clip(0, 255).astype(np.uint8))


def _flood_fill_boxes(mask):
    """Literal 8-connected flood fill, regions ordered by their first pixel in raster order."""
    seen = np.zeros_like(mask, bool)
    h, w = mask.shape
    out = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                stack, pts = [(y, x)], []
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    pts.append((cy, cx))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                                seen[ny, nx] = True
                                stack.append((ny, nx))
                ys, xs = zip(*pts)
                out.append((min(ys), min(xs), max(ys), max(xs)))
    return out


@pytest.mark.parametrize("density", [0.05, 0.3, 0.55])
def test_regions_8_matches_flood_fill(rng, density):
    for _ in range(20):
        mask = rng.random((int(rng.integers(1, 30)), int(rng.integers(1, 30)))) < density
        assert mz.regions_8(mask) == _flood_fill_boxes(mask)
    # Diagonal contact joins regions; a one-pixel gap does not.
    m = np.zeros((4, 6), bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True
    m[0, 4] = m[2, 4] = True
    assert mz.regions_8(m) == [(0, 0, 2, 2), (0, 4, 0, 4), (2, 4, 2, 4)]


def test_ctc_greedy_merges_repeats_and_drops_blank():
    charset = ["a", "b", "c"]  # indices 1..3; 4 is ' '
    seq = [0, 1, 1, 0, 1, 2, 2, 4, 3, 0, 0]
    probs = np.full((len(seq), 5), 0.01, np.float32)
    probs[np.arange(len(seq)), seq] = 0.96
    text, conf = mz.ctc_greedy(probs, charset)
    assert text == "aab c"
    assert conf == pytest.approx(0.96)
    assert mz.ctc_greedy(np.eye(5, dtype=np.float32)[[0, 0]], charset) == ("", 0.0)


def test_same_answer_boxes():
    ref = {"boxes": [("text", 0.9, [0, 0, 100, 20]), ("title", 0.8, [0, 30, 50, 60])]}
    moved = {"boxes": [("title", 0.7, [1, 31, 50, 60]), ("text", 0.95, [0, 0, 101, 21])]}
    assert mz.same_answer("detection", moved, ref)
    assert not mz.same_answer("detection", {"boxes": ref["boxes"][:1]}, ref)
    relabel = {"boxes": [("text", 0.9, [0, 0, 100, 20]), ("text", 0.8, [0, 30, 50, 60])]}
    assert not mz.same_answer("detection", relabel, ref)
    shifted = {"boxes": [("text", 0.9, [20, 0, 120, 20]), ("title", 0.8, [0, 30, 50, 60])]}
    assert not mz.same_answer("detection", shifted, ref)
    assert mz.same_answer("classification", {"label": "90"}, {"label": "90"})
    assert not mz.same_answer("ocr_recognition", {"text": "a"}, {"text": "b"})


def test_ddddocr_nms_keeps_best_of_overlapping():
    # Two anchors decode to nearly the same box, a third elsewhere: NMS keeps the best two.
    pred = np.zeros((1, 3549, 6), np.float32)
    pred[0, :, 4] = 0.0
    pred[0, [0, 1, 100], 4] = [0.9, 0.8, 0.7]
    pred[0, [0, 1, 100], 5] = 1.0
    pred[0, 1, 0] = -0.95  # anchor 1 = grid (1,0) moved back to x=0.4: overlaps anchor 0
    out = mz.answer_ddddocr_det([pred], {"ratio": 1.0, "src_hw": (416, 416)})
    assert [round(s, 3) for _, s, _ in out["boxes"]] == [0.9, 0.7]


def _fetched_cases():
    pytest.importorskip("onnxruntime")
    try:
        import PIL  # noqa: F401
    except ImportError:
        pytest.skip("Pillow draws the model test inputs")
    have = mz.available()
    if not have:
        pytest.skip(f"no models in {mz.cache_dir()} (python tools/fetch_models.py)")
    try:
        return mz.cases(have)
    except ImportError as e:
        pytest.skip(str(e))


def test_fp32_answers_match_the_drawn_inputs():
    for c in _fetched_cases():
        ans = c.answer(mz.run_ort(c.model, c.feeds))
        if c.truth is None:
            continue
        if c.task == "classification":
            assert ans["label"] == c.truth, c.name
        elif c.task == "ocr_recognition":
            assert ans["text"] == c.truth, c.name
        else:
            assert len(ans["boxes"]) == c.truth, (c.model, c.name, ans)
