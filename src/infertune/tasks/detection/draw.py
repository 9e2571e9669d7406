"""An image with its detections drawn on it (Pillow): a box and a "class score" label per
detection, one colour per class. Written atomically; the format follows the file suffix."""
from __future__ import annotations

import colorsys
from pathlib import Path

from ..._atomic import atomic_path
from .records import Detections

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}


def class_colour(index: int) -> tuple[int, int, int]:
    """A bright colour per class, spread around the hue circle (golden-ratio steps)."""
    r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: Path, dets: Detections, names: list[str] | None, out: Path) -> None:
    """Draws `dets` on `image` and writes the result to `out` (PNG unless its suffix says)."""
    from PIL import Image

    with Image.open(image) as src:
        canvas = src.convert("RGB")
    draw_boxes(canvas, dets, names)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format=FORMATS.get(Path(out).suffix.lower(), "PNG"))


def draw_boxes(canvas, dets: Detections, names: list[str] | None, scale: float = 1.0) -> None:
    """Draws `dets` on the RGB PIL image `canvas` in place; `scale`: canvas pixels per pixel
    of the image the boxes are in."""
    from PIL import ImageDraw

    pen = ImageDraw.Draw(canvas)
    width = max(2, round(min(canvas.size) / 200))
    for box, score, cls in zip(dets.boxes, dets.scores, dets.classes):
        colour = class_colour(int(cls))
        label = names[cls] if names and 0 <= cls < len(names) else str(int(cls))
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        text = f"{label} {score:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), text)
        lift = bottom - top + 2
        pen.rectangle([x1, y1 - lift, x1 + right - left + 4, y1], fill=colour)
        pen.text((x1 + 2, y1 - lift), text, fill=(0, 0, 0))
