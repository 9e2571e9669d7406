"""COCO box metrics of a detector: mAP@[.5:.95], AP50, AP75, per-class AP (faster-coco-eval,
the C++ reimplementation of pycocotools' COCOeval, cross-checked against pycocotools in the
tests), and precision / recall / F1 at a stated score threshold (greedy matching at IoU .5,
as COCOeval matches).

Inputs are typed records: the ground truth as DetectionSamples, the predictions as one
Detections per sample (same order). Class k is COCO category k + 1 inside this module.
Every AP is a fraction in [0, 1]; a class with no ground truth has AP NaN (COCO's −1).
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .records import DetectionSample, Detections, iou_matrix

MAX_DETS = 100  # COCO's per-image cap (the highest-scoring 100 count)
PR_IOU = 0.5


@dataclass(frozen=True)
class CocoScores:
    """COCO box metrics on a set of images.

    Attributes:
        map / ap50 / ap75: AP averaged over IoU .50:.05:.95, at .50, at .75 (all areas, 100 dets).
        per_class_ap: AP@[.5:.95] per class name (NaN: no ground truth of that class).
        precision / recall / f1: at `score_threshold`, matching at IoU .5.
        images, ground_truth, detections: counts (crowd/difficult regions excluded from GT).
    """

    map: float
    ap50: float
    ap75: float
    per_class_ap: dict[str, float]
    precision: float
    recall: float
    f1: float
    score_threshold: float
    images: int
    ground_truth: int
    detections: int

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("map", "ap50", "ap75", "precision", "recall", "f1",
                                            "score_threshold", "images", "ground_truth",
                                            "detections")}
        d["per_class_ap"] = {k: (None if math.isnan(v) else v) for k, v in self.per_class_ap.items()}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_ground_truth(samples: Sequence[DetectionSample], classes: int) -> dict:
    """A COCO ground-truth dict; images numbered by position (so a sample may repeat)."""
    images, annotations = [], []
    for i, s in enumerate(samples):
        images.append({"id": i + 1, "height": int(s.image_hw[0]), "width": int(s.image_hw[1])})
        for box, cls, crowd in zip(s.boxes, s.classes, s.crowd):
            xywh = _xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": int(cls) + 1, "bbox": xywh,
                                "area": xywh[2] * xywh[3], "iscrowd": int(crowd)})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k + 1, "name": str(k)} for k in range(classes)]}


def coco_detections(predictions: Sequence[Detections]) -> list[dict]:
    return [{"image_id": i + 1, "category_id": int(c) + 1, "bbox": _xywh(b), "score": float(s)}
            for i, d in enumerate(predictions) for b, s, c in zip(d.boxes, d.scores, d.classes)]


def run_cocoeval(gt: dict, dets: list[dict], backend: str = "faster_coco_eval"):
    """Runs COCOeval (bbox) and returns the evaluator after accumulate(); None without any
    detection (every AP is then 0). `backend`: "faster_coco_eval" or "pycocotools"."""
    if not dets:
        return None
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    with contextlib.redirect_stdout(io.StringIO()):  # both print progress
        ground = COCO()
        ground.dataset = gt
        ground.createIndex()
        evaluator = Eval(ground, ground.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _ap(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else float("nan")


def ap_triplet(evaluator) -> tuple[float, float, float]:
    """(mAP@[.5:.95], AP50, AP75) from an accumulated evaluator (0 when it is None)."""
    if evaluator is None:
        return 0.0, 0.0, 0.0
    stats = evaluator.stats
    return tuple(max(float(v), 0.0) for v in stats[:3])  # type: ignore[return-value]


def per_class(evaluator, samples: Sequence[DetectionSample], names: Sequence[str]) -> dict:
    """AP@[.5:.95] per class: precision[T, R, K, area=all, maxDets=100] averaged."""
    has_gt = np.zeros(len(names), bool)
    for s in samples:
        has_gt[s.classes[~s.crowd]] = True
    if evaluator is None:
        return {n: (0.0 if has_gt[k] else float("nan")) for k, n in enumerate(names)}
    precision = np.asarray(evaluator.eval["precision"])
    out = {}
    for k, name in enumerate(names):
        out[name] = _ap(precision[:, :, k, 0, -1]) if has_gt[k] else float("nan")
        if has_gt[k] and math.isnan(out[name]):
            out[name] = 0.0
    return out


def precision_recall(samples: Sequence[DetectionSample], predictions: Sequence[Detections],
                     threshold: float, iou: float = PR_IOU) -> tuple[int, int, int]:
    """(true positives, false positives, ground truth) at score ≥ `threshold`: per image and
    class, detections best first each take the unmatched box of highest IoU ≥ `iou`; one
    that only overlaps a crowd/difficult region is neither right nor wrong."""
    tp = fp = total = 0
    for sample, dets in zip(samples, predictions):
        keep = dets.scores >= threshold
        boxes, scores, classes = dets.boxes[keep], dets.scores[keep], dets.classes[keep]
        total += int((~sample.crowd).sum())
        for cls in np.unique(np.concatenate([classes, sample.classes])):
            gt = sample.boxes[(sample.classes == cls) & ~sample.crowd]
            crowd = sample.boxes[(sample.classes == cls) & sample.crowd]
            mine = np.flatnonzero(classes == cls)
            mine = mine[np.argsort(-scores[mine], kind="stable")]
            a, b = _greedy(boxes[mine], gt, crowd, iou)
            tp, fp = tp + a, fp + b
    return tp, fp, total


def _greedy(dets: np.ndarray, gt: np.ndarray, crowd: np.ndarray, iou: float) -> tuple[int, int]:
    used = np.zeros(len(gt), bool)
    ious = iou_matrix(dets, gt) if len(gt) else np.zeros((len(dets), 0))
    crowd_hit = (iou_matrix(dets, crowd) >= iou).any(axis=1) if len(crowd) else \
        np.zeros(len(dets), bool)
    tp = fp = 0
    for i in range(len(dets)):
        free = np.where(used, -1.0, ious[i])
        j = int(np.argmax(free)) if len(free) else -1
        if j >= 0 and free[j] >= iou:
            used[j] = True
            tp += 1
        elif not crowd_hit[i]:
            fp += 1
    return tp, fp


def coco_scores(samples: Sequence[DetectionSample], predictions: Sequence[Detections],
                names: Sequence[str], *, score_threshold: float = 0.25,
                backend: str = "faster_coco_eval") -> CocoScores:
    """Every COCO box metric of `predictions` (one Detections per sample, same order)."""
    if len(samples) != len(predictions):
        raise ValueError(f"{len(samples)} samples but {len(predictions)} predictions")
    gt = coco_ground_truth(samples, len(names))
    evaluator = run_cocoeval(gt, coco_detections(predictions), backend)
    m, a50, a75 = ap_triplet(evaluator)
    tp, fp, total = precision_recall(samples, predictions, score_threshold)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / total if total else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return CocoScores(m, a50, a75, per_class(evaluator, samples, names), precision, recall,
                      f1, score_threshold, len(samples), total,
                      int(sum(len(d) for d in predictions)))

