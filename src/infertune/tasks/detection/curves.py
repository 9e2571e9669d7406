"""A detector's precision–recall curves, as COCOeval draws them: at each recall threshold
0, .01, …, 1 the interpolated precision (the best precision at that recall or beyond; 0
past the highest recall reached), averaged over the classes with ground truth. At IoU .5
the curve's mean is AP50; averaged over IoU .50:.05:.95 as well its mean is mAP@[.5:.95].

The matching is `resample.MapResampler`'s (COCOeval's rules), the one the search scores
with, so a curve and the mAP beside it in the report come from the same matches. Pure
numpy over typed records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .records import DetectionSample, Detections
from .resample import ALL_IOUS, AP50, RECALL_THRESHOLDS, MapResampler

IOU_LABELS = {AP50: "0.5", ALL_IOUS: "0.5:0.95"}


@dataclass(frozen=True)
class PrCurve:
    """One model's precision at COCO's 101 recall thresholds.

    Attributes:
        iou: the IoU threshold(s) a match needs, "0.5" or "0.5:0.95" (averaged).
        recall: (101,) the recall thresholds. precision: (101,) fractions.
        classes: how many classes (those with ground truth) were averaged.
    """

    iou: str
    recall: np.ndarray
    precision: np.ndarray
    classes: int

    @property
    def ap(self) -> float:
        """The area under the curve as COCO takes it: AP50 or mAP@[.5:.95]."""
        return float(self.precision.mean())


def pr_curves(samples: Sequence[DetectionSample], predictions: Sequence[Detections],
              classes: int) -> tuple[PrCurve, PrCurve]:
    """The curves at IoU .5 and averaged over IoU .50:.95 of `predictions` (one Detections
    per sample, same order) against `samples`' boxes."""
    if len(samples) != len(predictions):
        raise ValueError(f"{len(samples)} samples but {len(predictions)} predictions")
    matched = MapResampler(samples, predictions, classes)
    out = []
    for ious in (AP50, ALL_IOUS):
        precision, averaged = matched.precision_curve(ious)
        out.append(PrCurve(IOU_LABELS[ious], RECALL_THRESHOLDS.copy(), precision, averaged))
    return out[0], out[1]
