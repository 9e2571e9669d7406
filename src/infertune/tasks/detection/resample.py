"""mAP@[.5:.95] for many resamplings of the same images, without re-running COCOeval.

COCOeval matches detections to ground truth per (image, class) — no image affects another —
and only its accumulation pools images. So the matching is done once here, with COCOeval's
rules (area "all", 100 detections per image and class, IoU thresholds .50:.05:.95, crowd
regions matched by intersection over the detection's area and never counted as misses), and
a bootstrap resample becomes a weight per image: how many times it was drawn. Weighted
cumulative sums give exactly the precision/recall curve of the resampled set (copies of one
detection sit next to each other in score order, which cannot change the interpolated
precision). The tests check the unweighted result against faster-coco-eval.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .records import DetectionSample, Detections

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
ALL_IOUS = tuple(range(len(IOU_THRESHOLDS)))
AP50, AP75 = (0,), (5,)  # indices of .50 and .75 in IOU_THRESHOLDS


def _ious(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """COCO's box IoU; for a crowd region, intersection over the detection's area."""
    lt = np.maximum(dets[:, None, :2], gts[None, :, :2])
    rb = np.minimum(dets[:, None, 2:], gts[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_d = np.prod(dets[:, 2:] - dets[:, :2], axis=1)[:, None]
    area_g = np.prod(gts[:, 2:] - gts[:, :2], axis=1)[None, :]
    union = np.where(crowd[None, :], area_d, area_d + area_g - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match(dets: np.ndarray, gts: np.ndarray, crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.evaluateImg for one image and class: (matched, ignored), each (T, D) bool,
    for detections already sorted best first and ground truth with crowd regions last."""
    T, D, G = len(IOU_THRESHOLDS), len(dets), len(gts)
    matched, ignored = np.zeros((T, D), bool), np.zeros((T, D), bool)
    if not D or not G:
        return matched, ignored
    ious = _ious(dets, gts, crowd)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(G, bool)
        for d in range(D):
            best, m = min(threshold, 1 - 1e-10), -1
            for g in np.flatnonzero(ious[d] >= best):
                if taken[g] and not crowd[g]:
                    continue
                if m > -1 and not crowd[m] and crowd[g]:
                    break
                if ious[d, g] >= best:
                    best, m = ious[d, g], g
            if m > -1:
                taken[m], matched[t, d], ignored[t, d] = True, True, crowd[m]
    return matched, ignored


class MapResampler:
    """Per-class detections of every image, matched once; `map(weights)` pools them."""

    def __init__(self, samples: Sequence[DetectionSample], predictions: Sequence[Detections],
                 classes: int):
        self.images = len(samples)
        per_class: list[list[tuple]] = [[] for _ in range(classes)]
        self.positives = np.zeros((classes, self.images))
        for i, (s, p) in enumerate(zip(samples, predictions)):
            for k in range(classes):
                self._add(per_class[k], k, i, s, p)
        self.curves = [self._pool(parts) for parts in per_class]

    def _add(self, parts: list, k: int, i: int, s: DetectionSample, p: Detections) -> None:
        in_class = s.classes == k
        order = np.argsort(s.crowd[in_class], kind="stable")  # crowd regions last
        gts, crowd = s.boxes[in_class][order], s.crowd[in_class][order]
        self.positives[k, i] = int((~crowd).sum())
        mine = np.flatnonzero(p.classes == k)
        mine = mine[np.argsort(-p.scores[mine], kind="mergesort")][:MAX_DETS]
        if len(mine):
            matched, ignored = match(p.boxes[mine], gts, crowd)
            parts.append((p.scores[mine], np.full(len(mine), i), matched, ignored))

    @staticmethod
    def _pool(parts: list):
        if not parts:
            return None
        scores = np.concatenate([x[0] for x in parts])
        order = np.argsort(-scores, kind="mergesort")
        image = np.concatenate([x[1] for x in parts])[order]
        matched = np.concatenate([x[2] for x in parts], axis=1)[:, order]
        ignored = np.concatenate([x[3] for x in parts], axis=1)[:, order]
        return image, matched & ~ignored, ~matched & ~ignored

    def map(self, weights: np.ndarray | None = None,
            ious: Sequence[int] = ALL_IOUS) -> float:
        """mAP with image i counted weights[i] times (default once each), averaged over the
        IoU thresholds IOU_THRESHOLDS[ious] (default all: mAP@[.5:.95]; (0,): AP50)."""
        w = np.ones(self.images) if weights is None else np.asarray(weights, dtype=np.float64)
        values = []
        for k, curve in enumerate(self.curves):
            positives = float(self.positives[k] @ w)
            if positives == 0:
                continue  # no ground truth of this class: COCO leaves it out (-1)
            values.append(0.0 if curve is None else
                          _average_precision(curve, w, positives, ious))
        return float(np.mean(values)) if values else 0.0

    def precision_curve(self, ious: Sequence[int] = ALL_IOUS) -> tuple[np.ndarray, int]:
        """COCOeval's PR curve: the interpolated precision at each of RECALL_THRESHOLDS,
        averaged over the IoU thresholds IOU_THRESHOLDS[ious] and over the classes with
        ground truth (its mean is `map(ious=ious)`); and how many classes were averaged."""
        rows = []
        for k, curve in enumerate(self.curves):
            positives = float(self.positives[k].sum())
            if positives == 0:
                continue  # no ground truth of this class: COCO leaves it out (-1)
            row = np.zeros(len(RECALL_THRESHOLDS))
            if curve is not None:
                tps, fps = np.cumsum(curve[1], axis=1), np.cumsum(curve[2], axis=1)
                for t in ious:
                    reached = _reached(tps[t], fps[t], positives)
                    row[:len(reached)] += reached
            rows.append(row / len(ious))
        return (np.mean(rows, axis=0) if rows else np.zeros(len(RECALL_THRESHOLDS))), len(rows)

    def map_of_draw(self, indices: np.ndarray, ious: Sequence[int] = ALL_IOUS) -> float:
        """mAP of the images `indices` (with repeats), e.g. one bootstrap draw."""
        return self.map(np.bincount(indices, minlength=self.images).astype(np.float64), ious)


def _average_precision(curve, w: np.ndarray, positives: float,
                       ious: Sequence[int] = ALL_IOUS) -> float:
    """COCOeval.accumulate for one class, averaged over the IoU thresholds `ious` (indices)
    and the recall thresholds."""
    image, tp, fp = curve
    weight = w[image]
    tps, fps = np.cumsum(tp * weight, axis=1), np.cumsum(fp * weight, axis=1)
    total = 0.0
    for t in ious:
        total += _reached(tps[t], fps[t], positives).sum()
    return total / (len(ious) * len(RECALL_THRESHOLDS))


def _reached(tps: np.ndarray, fps: np.ndarray, positives: float) -> np.ndarray:
    """COCOeval's interpolated precision (the best precision at this recall or beyond) at
    the recall thresholds the detections reach: a prefix of RECALL_THRESHOLDS, the rest
    count as 0."""
    recall = tps / positives
    precision = tps / (tps + fps + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    return envelope[at[at < len(envelope)]]
