"""The calibration dataset loader (npuemu.dataset): rknn-toolkit2's dataset.txt format.

Arrays are written with numpy and images with Pillow in tmp_path; expected tensors are built independently
(numpy transposes, Pillow's own resize) rather than read back from the loader.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from npuemu.dataset import DatasetError, iter_dataset, load_dataset
from npuemu.errors import NpuError

X = ("x", (1, 3, 4, 5))


def write(tmp_path, text, name="dataset.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def npy(tmp_path, name, arr):
    np.save(tmp_path / name, arr)
    return name


def expect_error(path, inputs, *fragments, **kw):
    with pytest.raises(DatasetError) as ei:
        load_dataset(path, inputs, **kw)
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


# ---- .npy ------------------------------------------------------------------------------------------------------


def test_npy_nchw_chw_nhwc(tmp_path, rng):
    a = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    npy(tmp_path, "nchw.npy", a)
    npy(tmp_path, "chw.npy", a[0])
    npy(tmp_path, "nhwc.npy", np.transpose(a, (0, 2, 3, 1)).copy())
    npy(tmp_path, "hwc.npy", np.transpose(a[0], (1, 2, 0)).copy())
    ds = write(tmp_path, "nchw.npy\nchw.npy\nnhwc.npy\nhwc.npy\n")
    samples = load_dataset(ds, [X])
    assert len(samples) == 4
    for s in samples:
        assert len(s) == 1 and s[0].dtype == np.float32 and s[0].shape == (1, 3, 4, 5)
        assert s[0].flags.c_contiguous
        np.testing.assert_array_equal(s[0], a)


def test_npy_ambiguous_layout_is_nchw(tmp_path):
    # (1, 3, 3, 3): an array of that shape reads as NCHW, never transposed
    a = np.arange(27, dtype=np.float32).reshape(1, 3, 3, 3)
    npy(tmp_path, "a.npy", a)
    (s,) = load_dataset(write(tmp_path, "a.npy\n"), [("x", (1, 3, 3, 3))])
    np.testing.assert_array_equal(s[0], a)


def test_npy_dtypes_converted(tmp_path):
    for dt in (np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float64, np.bool_):
        a = (np.arange(60) % 7).astype(dt).reshape(1, 3, 4, 5)
        npy(tmp_path, "a.npy", a)
        (s,) = load_dataset(write(tmp_path, "a.npy"), [X])
        assert s[0].dtype == np.float32
        np.testing.assert_array_equal(s[0], a.astype(np.float64))


def test_npy_non_4d_inputs(tmp_path, rng):
    v = rng.standard_normal(10).astype(np.float32)
    npy(tmp_path, "v.npy", v)
    npy(tmp_path, "v2.npy", v[None])
    ds = write(tmp_path, "v.npy\nv2.npy\n")
    for s in load_dataset(ds, [("v", (1, 10))]):
        assert s[0].shape == (1, 10)
        np.testing.assert_array_equal(s[0][0], v)
    # no transposes for non-4-D shapes
    m = rng.standard_normal((2, 3)).astype(np.float32)
    npy(tmp_path, "m.npy", m.T.copy())
    expect_error(write(tmp_path, "m.npy"), [("m", (1, 2, 3))], "m.npy has shape (3, 2)", "(1, 2, 3)")


def test_multi_input_relative_absolute_comments(tmp_path, rng):
    sub = tmp_path / "data"
    sub.mkdir()
    a = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal((1, 8)).astype(np.float32)
    np.save(sub / "a0.npy", a)
    np.save(sub / "b0.npy", b)
    np.save(sub / "a1.npy", a * 2)
    np.save(sub / "b1.npy", b * 2)
    text = (
        "# calibration set\n"
        "\n"
        "a0.npy   b0.npy\n"
        "   # indented comment\n"
        f"\t{sub / 'a1.npy'} b1.npy  \n"  # absolute + relative, tab and trailing spaces
        "\n"
    )
    ds = sub / "dataset.txt"
    ds.write_text(text)
    samples = load_dataset(ds, [("a", (1, 3, 4, 5)), ("b", (1, 8))])
    assert len(samples) == 2
    np.testing.assert_array_equal(samples[0][0], a)
    np.testing.assert_array_equal(samples[0][1], b)
    np.testing.assert_array_equal(samples[1][0], a * 2)
    np.testing.assert_array_equal(samples[1][1], b * 2)


def test_relative_to_cwd_fallback(tmp_path, rng, monkeypatch):
    a = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    (tmp_path / "model").mkdir()
    np.save(tmp_path / "model" / "a.npy", a)
    ds = tmp_path / "model" / "dataset.txt"
    ds.write_text("model/a.npy\n")  # relative to the working directory, as some vendor scripts write it
    monkeypatch.chdir(tmp_path)
    (s,) = load_dataset("model/dataset.txt", [X])
    np.testing.assert_array_equal(s[0], a)


def test_pathlike_and_max_samples(tmp_path):
    for i in range(5):
        npy(tmp_path, f"s{i}.npy", np.full((1, 3, 4, 5), i, np.float32))
    ds = write(tmp_path, "".join(f"s{i}.npy\n" for i in range(5)))
    assert [s[0][0, 0, 0, 0] for s in load_dataset(ds, [X])] == [0, 1, 2, 3, 4]
    assert [s[0][0, 0, 0, 0] for s in load_dataset(str(ds), [X], max_samples=2)] == [0, 1]
    assert len(load_dataset(ds, [X], max_samples=99)) == 5
    for bad in (0, -1, 1.5, True, "2"):
        expect_error(ds, [X], "max_samples", repr(bad), max_samples=bad)


def test_max_samples_stops_reading(tmp_path):
    npy(tmp_path, "s.npy", np.zeros((1, 3, 4, 5), np.float32))
    ds = write(tmp_path, "s.npy\nmissing.npy\n")
    assert len(load_dataset(ds, [X], max_samples=1)) == 1
    expect_error(ds, [X], "line 2", "missing.npy")


def test_iter_dataset_is_lazy(tmp_path):
    npy(tmp_path, "s.npy", np.ones((1, 3, 4, 5), np.float32))
    ds = write(tmp_path, "s.npy\ns.npy\nbroken.npy\n")
    it = iter_dataset(ds, [X])
    assert next(it)[0].sum() == 60
    assert next(it)[0].sum() == 60
    with pytest.raises(DatasetError, match="line 3"):
        next(it)
    # a missing dataset file is reported at the call, not at the first next()
    with pytest.raises(DatasetError, match="does not exist"):
        iter_dataset(tmp_path / "nope.txt", [X])


# ---- error paths -----------------------------------------------------------------------------------------------


def test_missing_dataset_file(tmp_path):
    expect_error(tmp_path / "nope.txt", [X], "nope.txt", "does not exist")
    expect_error(tmp_path, [X], "is not a file")


def test_empty_dataset(tmp_path):
    expect_error(write(tmp_path, ""), [X], "dataset.txt", "no samples")
    expect_error(write(tmp_path, "# only a comment\n\n   \n"), [X], "no samples")
    it = iter_dataset(write(tmp_path, "\n"), [X])
    with pytest.raises(DatasetError, match="no samples"):
        next(it)


def test_wrong_path_count(tmp_path):
    npy(tmp_path, "s.npy", np.zeros((1, 3, 4, 5), np.float32))
    ds = write(tmp_path, "s.npy\n# c\ns.npy s.npy\n")
    expect_error(ds, [X], "line 3 has 2 paths, the model has 1 input")
    ds = write(tmp_path, "s.npy\n")
    expect_error(ds, [X, ("y", (1, 3, 4, 5))], "line 1 has 1 path, the model has 2 inputs", "'x', 'y'")


def test_missing_sample_file(tmp_path):
    expect_error(write(tmp_path, "\n\nghost.npy\n"), [X], "line 3", "'ghost.npy'", "not found")


def test_unreadable_npy(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"this is not numpy")
    expect_error(write(tmp_path, "bad.npy"), [X], "line 1", "bad.npy", "cannot read")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect_error(write(tmp_path, "obj.npy"), [X], "obj.npy", "cannot read")
    np.savez(tmp_path / "z.npz", a=np.zeros(3))
    os.replace(tmp_path / "z.npz", tmp_path / "z.npy")
    expect_error(write(tmp_path, "z.npy"), [X], "z.npy", "not a single .npy array")


def test_wrong_shape(tmp_path):
    npy(tmp_path, "x.npy", np.zeros((3, 32, 32), np.float32))
    msg = expect_error(
        write(tmp_path, "x.npy"),
        [("x", (1, 1, 28, 28))],
        "line 1",
        "x.npy has shape (3, 32, 32), input 'x' expects (1, 1, 28, 28)",
    )
    assert "NHWC" in msg
    # same number of elements is not enough
    npy(tmp_path, "flat.npy", np.zeros(60, np.float32))
    expect_error(write(tmp_path, "flat.npy"), [X], "flat.npy has shape (60,)")


@pytest.mark.parametrize(
    "arr", [np.array(["a", "b"]), np.zeros(3, np.complex64), np.array([b"x"]), np.zeros(2, "datetime64[s]")]
)
def test_non_numeric_npy(tmp_path, arr):
    np.save(tmp_path / "s.npy", arr)
    expect_error(write(tmp_path, "s.npy"), [("x", (1, arr.shape[0]))], "s.npy", str(arr.dtype), "not numeric")


@pytest.mark.parametrize("name", ["a.txt", "a.tiff", "noext", "a.npz"])
def test_unknown_extension(tmp_path, name):
    (tmp_path / name).write_bytes(b"0")
    expect_error(write(tmp_path, name), [X], f"'{name}'", ".npy", ".jpg", ".png", "line 1")


def test_bad_arguments(tmp_path):
    ds = write(tmp_path, "s.npy\n")
    expect_error(ds, [], "at least one")
    expect_error(ds, [("x",)], "(name, shape)")
    expect_error(ds, [("x", (1, -1, 4, 4))], "static shape")
    expect_error(ds, [X], "rgb2bgr", rgb2bgr=[True, False])
    expect_error(ds, [X], "rgb2bgr", rgb2bgr="yes")


def test_errors_are_npu_errors():
    assert issubclass(DatasetError, NpuError) and issubclass(DatasetError, ValueError)


# ---- images (Pillow) -------------------------------------------------------------------------------------------


def coloured(h, w):
    """HWC uint8 image with distinct R, G, B planes."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 200
    img[..., 1] = np.arange(w, dtype=np.uint8)[None, :] * 10
    img[..., 2] = np.arange(h, dtype=np.uint8)[:, None] * 7
    return img


@pytest.mark.parametrize("ext", [".png", ".bmp"])
def test_image_rgb_to_nchw(tmp_path, ext):
    Image = pytest.importorskip("PIL.Image")
    img = coloured(4, 5)
    Image.fromarray(img, "RGB").save(tmp_path / f"a{ext}")
    (s,) = load_dataset(write(tmp_path, f"a{ext}"), [X])
    assert s[0].dtype == np.float32 and s[0].shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(s[0][0, 0], img[..., 0])  # channel 0 = R
    np.testing.assert_array_equal(s[0][0, 1], img[..., 1])
    np.testing.assert_array_equal(s[0][0, 2], img[..., 2])


def test_image_jpeg_extensions(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    img = np.full((4, 5, 3), (10, 120, 240), np.uint8)
    Image.fromarray(img, "RGB").save(tmp_path / "a.jpg")
    Image.fromarray(img, "RGB").save(tmp_path / "b.JPEG", format="JPEG")
    samples = load_dataset(write(tmp_path, "a.jpg\nb.JPEG\n"), [X])
    for s in samples:
        # JPEG is lossy: a flat colour comes back within a few levels
        assert np.abs(s[0][0].transpose(1, 2, 0) - img).max() <= 4


def test_image_rgb2bgr_swaps_channels(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    img = coloured(4, 5)
    Image.fromarray(img, "RGB").save(tmp_path / "a.png")
    npy(tmp_path, "n.npy", np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5))
    ds = write(tmp_path, "a.png n.npy\n")
    inputs = [X, ("n", (1, 3, 4, 5))]
    (plain,) = load_dataset(ds, inputs)
    (swapped,) = load_dataset(ds, inputs, rgb2bgr=True)
    np.testing.assert_array_equal(swapped[0][0], plain[0][0, ::-1])
    np.testing.assert_array_equal(swapped[0][0, 0], img[..., 2])  # channel 0 = B
    assert not np.array_equal(swapped[0], plain[0])
    # .npy samples are never swapped
    np.testing.assert_array_equal(swapped[1], plain[1])
    # per-input flags
    (per,) = load_dataset(ds, inputs, rgb2bgr=[False, True])
    np.testing.assert_array_equal(per[0], plain[0])


def test_image_resized_bilinear_and_logged(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    img = coloured(8, 10)
    Image.fromarray(img, "RGB").save(tmp_path / "big.png")
    Image.fromarray(img, "RGB").save(tmp_path / "big2.png")
    notes = []
    samples = load_dataset(write(tmp_path, "big.png\nbig2.png\n"), [X], log=notes.append)
    expected = np.asarray(Image.fromarray(img, "RGB").resize((5, 4), Image.BILINEAR)).transpose(2, 0, 1)
    for s in samples:
        np.testing.assert_array_equal(s[0][0], expected)
    assert len(notes) == 1 and "10x8" in notes[0] and "5x4" in notes[0] and "bilinear" in notes[0]
    # no note when sizes agree
    notes.clear()
    Image.fromarray(coloured(4, 5), "RGB").save(tmp_path / "ok.png")
    load_dataset(write(tmp_path, "ok.png\n"), [X], log=notes.append)
    assert notes == []


def test_image_single_channel(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    img = coloured(4, 5)
    Image.fromarray(img, "RGB").save(tmp_path / "c.png")
    (s,) = load_dataset(write(tmp_path, "c.png"), [("g", (1, 1, 4, 5))], rgb2bgr=True)
    expected = np.asarray(Image.fromarray(img, "RGB").convert("L"))
    assert s[0].shape == (1, 1, 4, 5)
    np.testing.assert_array_equal(s[0][0, 0], expected)
    # a grey image feeds a 3-channel input as three equal planes
    Image.fromarray(expected, "L").save(tmp_path / "g.png")
    (s,) = load_dataset(write(tmp_path, "g.png"), [X])
    for ch in range(3):
        np.testing.assert_array_equal(s[0][0, ch], expected)


def test_image_for_unsuitable_input(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(coloured(4, 5), "RGB").save(tmp_path / "a.png")
    ds = write(tmp_path, "a.png")
    expect_error(ds, [("v", (1, 60))], "image a.png", "'v'", "(1, 60)", ".npy")
    expect_error(ds, [("x4", (1, 4, 4, 5))], "C = 1 or 3")


def test_unreadable_image(tmp_path):
    pytest.importorskip("PIL.Image")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    expect_error(write(tmp_path, "x\n".replace("x", "bad.png")), [X], "line 1", "bad.png", "cannot read image")


def test_image_without_pillow(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now raises ImportError
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    expect_error(write(tmp_path, "a.png"), [X], "line 1", "a.png", "Pillow", ".npy")
