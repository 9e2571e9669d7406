"""COCO detection JSON: `images`, `annotations` (bbox = x, y, w, h in pixels), `categories`.

Category ids (1..90 in COCO) become contiguous indices 0..K−1 in increasing id order; the
names follow. `iscrowd` annotations are kept as crowd regions (matched, never a miss).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from .data import check_box, image_size, inside
from .records import DetectionSample, DetectionSet


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno}", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ({type(exc).__name__})", path=str(path)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("categories"), list):
        raise DataError("not a COCO detection file: needs 'images' and 'categories' lists",
                        path=str(path))
    return doc


def _categories(doc: dict[str, Any], where: str) -> tuple[dict[int, int], tuple[str, ...]]:
    try:
        cats = sorted((int(c["id"]), str(c["name"])) for c in doc["categories"])
    except (KeyError, TypeError, ValueError):
        raise DataError("every category needs an integer 'id' and a 'name'", path=where) from None
    if not cats or len({i for i, _ in cats}) != len(cats):
        raise DataError("categories must be non-empty with unique ids", path=where)
    return {cid: k for k, (cid, _) in enumerate(cats)}, tuple(name for _, name in cats)


def _image_root(path: Path) -> Path:
    beside = path.parent / "images"
    return beside if beside.is_dir() else path.parent


def _images(doc: dict[str, Any], path: Path) -> dict[int, tuple[Path, tuple[int, int]]]:
    root, where, out = _image_root(path), str(path), {}
    for entry in doc["images"]:
        try:
            image_id, name = int(entry["id"]), str(entry["file_name"])
        except (KeyError, TypeError, ValueError):
            raise DataError("every image needs an integer 'id' and a 'file_name'", path=where) from None
        file = inside(root, name, where)
        if not file.is_file():
            raise DataError(f"image {image_id}: {file} not found", path=where)
        hw = (int(entry.get("height") or 0), int(entry.get("width") or 0))
        out[image_id] = (file, hw if min(hw) > 0 else image_size(file))
    return out


def read_coco(path: Path) -> DetectionSet:
    """A DetectionSet from a COCO JSON file."""
    doc, where = _load(path), str(path)
    index, names = _categories(doc, where)
    images = _images(doc, path)
    boxes: dict[int, list] = {i: [] for i in images}
    for ann in doc.get("annotations") or []:
        _add(ann, images, index, boxes, where)
    samples = []
    for image_id, (file, hw) in images.items():
        rows = boxes[image_id]
        samples.append(DetectionSample(
            image=file, image_hw=hw, image_id=image_id,
            boxes=np.array([r[0] for r in rows]).reshape(-1, 4),
            classes=np.array([r[1] for r in rows], dtype=np.int64),
            crowd=np.array([r[2] for r in rows], dtype=bool)))
    return DetectionSet(tuple(samples), names, where, "coco")


def _add(ann: Any, images, index: dict[int, int], boxes: dict[int, list], where: str) -> None:
    ident = ann.get("id", "?") if isinstance(ann, dict) else "?"
    at = f"{where}: annotation {ident}"
    try:
        image_id, cat = int(ann["image_id"]), int(ann["category_id"])
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (KeyError, TypeError, ValueError):
        raise DataError("needs image_id, category_id and a bbox of 4 numbers", path=at) from None
    if image_id not in images:
        raise DataError(f"image_id {image_id} is not in 'images'", path=at)
    if cat not in index:
        raise DataError(f"category_id {cat} is not in 'categories'", path=at)
    box = check_box((x, y, x + w, y + h), images[image_id][1], at)
    boxes[image_id].append((box, index[cat], bool(ann.get("iscrowd", 0))))
