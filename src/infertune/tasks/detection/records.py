"""The typed records of detection: a model's boxes on one image, and a labelled image.

Boxes are always (x1, y1, x2, y2) in pixels of the *original* image (continuous
coordinates: a box covering the whole W×H image is (0, 0, W, H)), whatever the format they
were read from or the network input they were predicted at.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def _boxes(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1, 4)
    return array


@dataclass(frozen=True)
class Detections:
    """A detector's output on one image, best score first.

    Attributes:
        boxes: (N, 4) float xyxy in pixels of the original image.
        scores: (N,) objectness × class probability (Darknet's `prob`).
        classes: (N,) class indices. A Darknet box above the threshold for two classes
            appears twice, once per class, as Darknet prints it.
        image_hw: (height, width) of the original image.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    image_hw: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _boxes(self.boxes))
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "classes", np.asarray(self.classes, dtype=np.int64).reshape(-1))
        if not len(self.boxes) == len(self.scores) == len(self.classes):
            raise ValueError("boxes, scores and classes must have the same length")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, image_hw: tuple[int, int]) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64), image_hw)

    def above(self, threshold: float) -> "Detections":
        """Only the detections scoring more than `threshold`."""
        keep = self.scores > threshold
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep], self.image_hw)

    def to_list(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """JSON-ready rows: class (name when known), class_id, score, box [x1, y1, x2, y2]."""
        rows = []
        for box, score, cls in zip(self.boxes, self.scores, self.classes):
            name = names[cls] if names is not None and 0 <= cls < len(names) else str(int(cls))
            rows.append({"class": name, "class_id": int(cls), "score": round(float(score), 6),
                         "box": [round(float(v), 2) for v in box]})
        return rows


@dataclass(frozen=True)
class DetectionSample:
    """One labelled image of a detection data set.

    Attributes:
        image: the image file. image_hw: its (height, width) as the labels assume it.
        boxes: (N, 4) float xyxy in pixels. classes: (N,) class indices into the set's names.
        image_id: a stable integer id (COCO's id, else the position in the set).
        crowd: (N,) bool, COCO `iscrowd` / VOC `difficult`: matched but never counted as a miss.
    """

    image: Path
    image_hw: tuple[int, int]
    boxes: np.ndarray
    classes: np.ndarray
    image_id: int
    crowd: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _boxes(self.boxes))
        object.__setattr__(self, "classes", np.asarray(self.classes, dtype=np.int64).reshape(-1))
        crowd = np.zeros(len(self.classes), bool) if self.crowd is None else self.crowd
        object.__setattr__(self, "crowd", np.asarray(crowd, dtype=bool).reshape(-1))
        if not len(self.boxes) == len(self.classes) == len(self.crowd):
            raise ValueError("boxes, classes and crowd must have the same length")


@dataclass(frozen=True)
class DetectionSet:
    """A labelled detection data set: samples and the class names their ids index.

    Attributes:
        samples: one per image. names: class names. source: where it was read from.
        format: "coco", "yolo" or "voc".
    """

    samples: tuple[DetectionSample, ...]
    names: tuple[str, ...]
    source: str
    format: str

    def __len__(self) -> int:
        return len(self.samples)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box of `a` with every one of `b` (0 where boxes do not overlap)."""
    a, b = _boxes(a), _boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)
