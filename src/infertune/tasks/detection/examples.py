"""Example images for a run's report: the evaluation images where two detectors disagree
most, each drawn twice, one model's boxes beside the other's.

A run keeps its evaluation images only as network inputs (RUN_DIR/data/eval_x.npy), not the
files they came from, so an image is shown as the network saw it: the letterbox padding cut
away, the rest resized to the original aspect ratio with DISPLAY_PX on its longer side, and
the boxes (pixels of the original image) scaled to match. Only boxes above the deployed
score threshold are drawn, as a deployment would show them.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .compare import pseudo_labels
from .decode import letterbox_size
from .draw import draw_boxes
from .metrics import precision_recall
from .records import Detections

DISPLAY_PX = 320   # longer side of each shown copy: boxes and labels stay legible
HEADER_PX = 18     # the title strip above each copy
GAP_PX = 8


@dataclass(frozen=True)
class InputPixels:
    """How a run's evaluation inputs were made from its images (data/detection.json
    "eval_inputs"), so that they can be shown again.

    Attributes:
        letterboxed: Darknet's letterbox of the whole image, values in [0, 1] (detection
            data of a letterboxing detector); else the whole image at the network's size
            (a letter_box=0 detector's resize, or the run's preprocessing).
        mean / std: the normalisation applied after scaling to [0, 1] (None: none).
    """

    letterboxed: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"letterboxed": self.letterboxed,
                "mean": None if self.mean is None else [float(v) for v in self.mean],
                "std": None if self.std is None else [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "InputPixels":
        """A run written before this record: letterboxed pixels in [0, 1]."""
        if not data:
            return cls()
        mean, std = data.get("mean"), data.get("std")
        return cls(bool(data.get("letterboxed", True)), None if mean is None else tuple(mean),
                   None if std is None else tuple(std))

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """(C, H, W) network input → pixels in [0, 1]."""
        x = np.asarray(x, dtype=np.float32)
        if self.std is not None:
            x = x * np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        if self.mean is not None:
            x = x + np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        return np.clip(x, 0.0, 1.0)


def disagreement(reference: Detections, candidate: Detections, threshold: float) -> int:
    """Boxes above `threshold` of either model with no box of the same class at IoU ≥ .5
    among the other's (greedy, best first, as `metrics.precision_recall` matches)."""
    truth = pseudo_labels([reference], threshold)
    tp, fp, total = precision_recall(truth, [candidate.above(threshold)], 0.0)
    return fp + total - tp


def differing_images(reference: Sequence[Detections], candidate: Sequence[Detections],
                     threshold: float, count: int) -> list[int]:
    """The `count` images where the two models differ most (`disagreement`), in that order;
    ties: more boxes of the two models together first, then image order."""
    keys = []
    for i, (ref, cand) in enumerate(zip(reference, candidate)):
        boxes = len(ref.above(threshold)) + len(cand.above(threshold))
        keys.append((-disagreement(ref, cand, threshold), -boxes, i))
    return [i for *_, i in sorted(keys)[:count]]


def shown_image(x: np.ndarray, image_hw: tuple[int, int], pixels: InputPixels,
                longest: int = DISPLAY_PX):
    """(RGB PIL image, scale): the network input `x` (C, H, W) as the image it came from,
    and the shown pixels per pixel of the original image."""
    from PIL import Image

    unit = pixels.to_unit(x)
    _, net_h, net_w = unit.shape
    if pixels.letterboxed:  # the image sits centred in the letterbox (letterbox.py)
        new_h, new_w = letterbox_size(image_hw, (net_h, net_w))
        top, left = (net_h - new_h) // 2, (net_w - new_w) // 2
        unit = unit[:, top:top + new_h, left:left + new_w]
    rgb = unit[:3] if unit.shape[0] >= 3 else np.repeat(unit[:1], 3, axis=0)
    image = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0))
    h, w = image_hw
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.BILINEAR), scale


def side_by_side(x: np.ndarray, image_hw: tuple[int, int], pixels: InputPixels,
                 panels: Sequence[tuple[str, Detections]], names: list[str] | None,
                 threshold: float) -> bytes:
    """PNG bytes: the image once per (title, detections) in `panels`, left to right, each
    with its boxes above `threshold` (draw.py's colours per class) under its title."""
    from PIL import Image, ImageDraw

    base, scale = shown_image(x, image_hw, pixels)
    width, height = base.size
    sheet = Image.new("RGB", (len(panels) * (width + GAP_PX) - GAP_PX, height + HEADER_PX),
                      (255, 255, 255))
    pen = ImageDraw.Draw(sheet)
    for k, (title, dets) in enumerate(panels):
        copy = base.copy()
        draw_boxes(copy, dets.above(threshold), names, scale)
        left = k * (width + GAP_PX)
        sheet.paste(copy, (left, HEADER_PX))
        pen.text((left + 2, 3), _fit(pen, title, width - 4), fill=(0, 0, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def _fit(pen, text: str, width: float) -> str:
    """`text` (arrows as ASCII: the default font may lack them), cut with "..." to fit."""
    text = text.replace("→", "->")
    if pen.textlength(text) <= width:
        return text
    while text and pen.textlength(text + "...") > width:
        text = text[:-1]
    return text + "..."
