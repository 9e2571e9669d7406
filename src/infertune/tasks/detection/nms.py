"""Per-class NMS with Darknet's `do_nms_sort` semantics (and AlexeyAB's `diounms_sort`).

For each class k independently: drop boxes with objectness 0, order the rest by prob[k]
(best first), and walk them; a box whose prob[k] is still non-zero zeroes prob[k] of every
later box whose overlap with it is *above* the threshold. A box keeps its other classes when
it loses one. Overlap is Darknet's `box_iou` on centre-format boxes; AlexeyAB's
`greedynms` subtracts (d²/c²)^0.6 and `diounms` (d²/c²)^beta_nms from it (d: centre
distance, c: diagonal of the enclosing box).

Ties in prob[k] keep their input order (a stable sort; Darknet's qsort leaves it unspecified).
"""
from __future__ import annotations

import numpy as np

from .heads import NMS_KINDS


def _overlap(box: np.ndarray, others: np.ndarray, kind: str, beta: float) -> np.ndarray:
    """Darknet's box_iou (minus the DIoU term for AlexeyAB's kinds) of `box` with `others`,
    all (cx, cy, w, h)."""
    left = np.maximum(box[0] - box[2] / 2, others[:, 0] - others[:, 2] / 2)
    right = np.minimum(box[0] + box[2] / 2, others[:, 0] + others[:, 2] / 2)
    top = np.maximum(box[1] - box[3] / 2, others[:, 1] - others[:, 3] / 2)
    bottom = np.minimum(box[1] + box[3] / 2, others[:, 1] + others[:, 3] / 2)
    w, h = right - left, bottom - top
    inter = np.where((w < 0) | (h < 0), 0.0, w * h)
    union = box[2] * box[3] + others[:, 2] * others[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    if kind == "default":
        return iou
    exponent = 0.6 if kind == "greedynms" else beta
    cw = np.maximum(box[0] + box[2] / 2, others[:, 0] + others[:, 2] / 2) - \
        np.minimum(box[0] - box[2] / 2, others[:, 0] - others[:, 2] / 2)
    ch = np.maximum(box[1] + box[3] / 2, others[:, 1] + others[:, 3] / 2) - \
        np.minimum(box[1] - box[3] / 2, others[:, 1] - others[:, 3] / 2)
    c = cw * cw + ch * ch
    d = (box[0] - others[:, 0]) ** 2 + (box[1] - others[:, 1]) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c == 0, iou, iou - np.power(np.where(c == 0, 1.0, d / c), exponent))


def nms_sort(boxes: np.ndarray, objectness: np.ndarray, probs: np.ndarray, threshold: float,
             *, kind: str = "default", beta: float = 0.6) -> np.ndarray:
    """Darknet's do_nms_sort: returns a copy of `probs` (N, classes) with suppressed entries 0.

    Args:
        boxes: (N, 4) centre format, in any consistent units (IoU does not depend on them).
        objectness: (N,) rows with objectness 0 take no part (their probs come back 0).
        probs: (N, classes), already 0 where below the score threshold.
        threshold: suppress when the overlap is above it (0.45 in Darknet's detector).
        kind / beta: "default" (IoU), AlexeyAB's "greedynms" or "diounms" (with beta_nms).
    """
    if kind not in NMS_KINDS:
        raise ValueError(f"nms kind must be one of {NMS_KINDS}, not {kind!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.array(probs, dtype=np.float64, copy=True)
    out = out.reshape(len(boxes), out.shape[-1] if out.ndim == 2 else -1)
    out[np.asarray(objectness) == 0] = 0.0
    for k in range(out.shape[1]):
        alive = np.flatnonzero(out[:, k] > 0)
        order = alive[np.argsort(-out[alive, k], kind="stable")]
        for pos, i in enumerate(order):
            if out[i, k] == 0:
                continue
            later = order[pos + 1:]
            if len(later):
                hit = _overlap(boxes[i], boxes[later], kind, beta) > threshold
                out[later[hit], k] = 0.0
    return out
