"""Labelled detection data: COCO JSON, YOLO txt folders, Pascal VOC XML → DetectionSet.

`read_detection_data(path)` decides the format from what `path` is:
  * `digits-det:train` / `digits-det:val` — the built-in set (data_digits.py), a YOLO folder;
  * a `.json` file — COCO (images found beside it, or in an `images/` folder beside it);
  * a folder with `labels/` — YOLO txt (images in `images/`, `labels/<stem>.txt` each);
  * a folder with `Annotations/` — Pascal VOC (images in `JPEGImages/`).
Every box becomes xyxy in pixels (records.py). A malformed box is a DataError naming the
file and line (COCO: the annotation's id); images listed by the labels must exist inside
the data folder.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from ...errors import DataError
from .records import DetectionSet

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_detection_data(path: str | Path) -> DetectionSet:
    """The labelled detection set at `path` (format from its layout, module docstring)."""
    from .data_digits import is_digits_det, read_digits_det

    if is_digits_det(str(path)):
        return read_digits_det(str(path))
    root = Path(path)
    if root.is_file() and root.suffix.lower() == ".json":
        from .data_coco import read_coco

        return read_coco(root)
    if root.is_dir() and (root / "labels").is_dir():
        from .data_yolo import read_yolo

        return read_yolo(root)
    if root.is_dir() and (root / "Annotations").is_dir():
        from .data_voc import read_voc

        return read_voc(root)
    if not root.exists():
        raise DataError("no such file or folder", path=str(root))
    raise DataError("not a detection data set: expected a COCO .json file, a YOLO folder "
                    "(images/ + labels/) or a Pascal VOC folder (Annotations/ + JPEGImages/)",
                    path=str(root))


def inside(root: Path, relative: str, where: str) -> Path:
    """`root/relative`, refusing absolute paths and paths that leave `root`."""
    candidate = Path(relative)
    resolved = (root / candidate).resolve()
    if candidate.is_absolute() or not resolved.is_relative_to(root.resolve()):
        raise DataError(f"image path {relative!r} leaves the data folder", path=where)
    return root / candidate


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header (nothing decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return int(img.height), int(img.width)
    except Exception as exc:  # Pillow raises many types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read image header ({reason})", path=str(path)) from None


def check_box(box: Iterable[float], image_hw: tuple[int, int], where: str) -> tuple[float, ...]:
    """A finite xyxy box with x1 < x2, y1 < y2 inside the image (1 pixel of slack for rounding
    in the tools that wrote it); raises DataError naming `where` (file:line)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = image_hw
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise DataError(f"box {x1, y1, x2, y2} is not finite", path=where)
    if not (x1 < x2 and y1 < y2):
        raise DataError(f"box x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} has no area", path=where)
    if x1 < -1 or y1 < -1 or x2 > w + 1 or y2 > h + 1:
        raise DataError(f"box x1={x1:g} y1={y1:g} x2={x2:g} y2={y2:g} lies outside the "
                        f"{w}×{h} image", path=where)
    return max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))


def check_class(index: int, count: int, where: str) -> int:
    if not 0 <= index < count:
        raise DataError(f"class {index} is not one of the {count} classes", path=where)
    return index
