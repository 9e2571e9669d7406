"""Pascal VOC folders: `Annotations/<name>.xml` (one per image) and `JPEGImages/`.

The XML is untrusted: it is parsed with defusedxml with document type declarations
forbidden, so entity expansion (billion laughs), external entities and external DTDs are
refused before anything is expanded or fetched — one line naming the file.

VOC's `bndbox` holds 1-based inclusive pixel indices; pixel i covers [i − 1, i] in continuous
coordinates, so the box is (xmin − 1, ymin − 1, xmax, ymax). `difficult` objects are kept as
ignore regions (the `crowd` flag). Class names: VOC's 20 in their usual order when every
name is one of them, else the names found, sorted.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from .data import check_box, inside
from .records import DetectionSample, DetectionSet

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


def parse_xml(path: Path):
    """The root element of an untrusted XML file; hostile or broken XML is a DataError."""
    import defusedxml
    from defusedxml import ElementTree as SafeTree

    try:
        return SafeTree.parse(str(path), forbid_dtd=True).getroot()
    except defusedxml.DefusedXmlException as exc:
        raise DataError(f"refused: the XML declares a document type or entities "
                        f"({type(exc).__name__}); VOC annotations need neither",
                        path=str(path)) from None
    except SafeTree.ParseError as exc:
        line = getattr(exc, "position", (0, 0))[0]
        raise DataError(f"not well-formed XML ({exc})", path=f"{path}:{line}") from None
    except OSError as exc:
        raise DataError(f"cannot read ({type(exc).__name__})", path=str(path)) from None


def _object_lines(path: Path) -> list[int]:
    """The line of each <object> element, in document order (for error messages)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"<object\b", text)]


def _number(element, tag: str, where: str) -> float:
    node = element.find(tag)
    try:
        return float(node.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise DataError(f"<{tag}> is missing or not a number", path=where) from None


def _read_one(path: Path, root: Path):
    xml = parse_xml(path)
    where = str(path)
    size = xml.find("size")
    if size is None:
        raise DataError("no <size> element", path=where)
    hw = (int(_number(size, "height", where)), int(_number(size, "width", where)))
    if min(hw) < 1:
        raise DataError(f"<size> {hw[1]}×{hw[0]} is not a positive size", path=where)
    name = (xml.findtext("filename") or f"{path.stem}.jpg").strip()
    image = inside(root / "JPEGImages", name, where)
    if not image.is_file():
        raise DataError(f"image {image} not found", path=where)
    lines = _object_lines(path)
    objects = []
    for k, obj in enumerate(xml.findall("object")):
        at = f"{path}:{lines[k] if k < len(lines) else '?'}"
        label = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not label or box is None:
            raise DataError("an <object> needs a <name> and a <bndbox>", path=at)
        x1, y1, x2, y2 = (_number(box, t, at) for t in ("xmin", "ymin", "xmax", "ymax"))
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        objects.append((label, check_box((x1 - 1, y1 - 1, x2, y2), hw, at), difficult))
    return image, hw, objects


def read_voc(root: Path) -> DetectionSet:
    """A DetectionSet from a Pascal VOC folder (module docstring)."""
    files = sorted((root / "Annotations").glob("*.xml"))
    if not files:
        raise DataError("no .xml files in Annotations/", path=str(root))
    parsed = [_read_one(file, root) for file in files]
    found = {label for _, _, objects in parsed for label, _, _ in objects}
    names = VOC_CLASSES if found <= set(VOC_CLASSES) else tuple(sorted(found))
    index = {name: k for k, name in enumerate(names)}
    samples = []
    for image_id, (image, hw, objects) in enumerate(parsed):
        samples.append(DetectionSample(
            image=image, image_hw=hw, image_id=image_id,
            boxes=np.array([b for _, b, _ in objects]).reshape(-1, 4),
            classes=np.array([index[label] for label, _, _ in objects], dtype=np.int64),
            crowd=np.array([d for _, _, d in objects], dtype=bool)))
    return DetectionSet(tuple(samples), names, str(root), "voc")
