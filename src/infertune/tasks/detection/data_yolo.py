"""YOLO txt folders: `images/<name>.<ext>` and `labels/<name>.txt`, one line per box:
`class cx cy w h`, the last four normalised to the image (0..1). An image without a label
file has no objects (a background image). Class names come from `classes.txt`, `obj.names`
or `<anything>.names` in the folder (one per line), else are the numbers 0..K−1.
Sub-folders of images/ (train/, val/) are mirrored in labels/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from .data import IMAGE_SUFFIXES, check_box, check_class, image_size
from .records import DetectionSample, DetectionSet


def _names(root: Path) -> tuple[str, ...] | None:
    candidates = [root / "classes.txt", root / "obj.names", *sorted(root.glob("*.names"))]
    for file in candidates:
        if file.is_file():
            lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
            while lines and not lines[-1]:
                lines.pop()
            return tuple(lines)
    return None


def _parse_line(text: str, where: str) -> tuple[int, tuple[float, float, float, float]]:
    parts = text.split()
    if len(parts) != 5:
        raise DataError(f"expected 'class cx cy w h', got {len(parts)} fields", path=where)
    try:
        cls, values = int(parts[0]), tuple(float(v) for v in parts[1:])
    except ValueError:
        raise DataError(f"not numbers: {text.strip()!r}", path=where) from None
    if any(v < 0 or v > 1 for v in values):
        raise DataError(f"cx cy w h must be normalised to 0..1, got {' '.join(parts[1:])}",
                        path=where)
    return cls, values  # type: ignore[return-value]


def _read_labels(file: Path, hw: tuple[int, int], classes: int | None):
    boxes, ids = [], []
    if not file.is_file():
        return boxes, ids
    h, w = hw
    for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        where = f"{file}:{number}"
        cls, (cx, cy, bw, bh) = _parse_line(text, where)
        if classes is not None:
            check_class(cls, classes, where)
        elif cls < 0:
            raise DataError(f"class {cls} is negative", path=where)
        boxes.append(check_box(((cx - bw / 2) * w, (cy - bh / 2) * h,
                                (cx + bw / 2) * w, (cy + bh / 2) * h), hw, where))
        ids.append(cls)
    return boxes, ids


def read_yolo(root: Path) -> DetectionSet:
    """A DetectionSet from a YOLO folder (module docstring)."""
    images_dir = root / "images"
    files = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError("no images in images/ (JPEG, PNG or BMP)", path=str(root))
    names = _names(root)
    samples, highest = [], -1
    for image_id, file in enumerate(files):
        hw = image_size(file)
        label = (root / "labels" / file.relative_to(images_dir)).with_suffix(".txt")
        boxes, ids = _read_labels(label, hw, len(names) if names is not None else None)
        highest = max([highest, *ids])
        samples.append(DetectionSample(image=file, image_hw=hw, image_id=image_id,
                                       boxes=np.array(boxes).reshape(-1, 4),
                                       classes=np.array(ids, dtype=np.int64)))
    if names is None:
        names = tuple(str(i) for i in range(highest + 1))
    return DetectionSet(tuple(samples), names, str(root), "yolo")
