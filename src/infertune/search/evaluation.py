"""Turns a candidate's logits into its accuracy, fidelity and drop against the baseline, and
a detector's detections into its mAP drop and detection metrics (tasks/detection/scoring).
Pure numpy over what the workers saved."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics.classification import classification_report
from ..metrics.fidelity import fidelity
from ..tasks.detection.records import DetectionSample, Detections
from ..tasks.detection.scoring import score_detections
from ..tasks.detection.store import load_detections
from . import select
from .candidate import DetectionEval, Drop, Estimate, Fidelity


@dataclass(frozen=True)
class Scores:
    """A candidate's drop, fidelity and (labelled, full evaluation) accuracy; or the reason
    there are none."""

    drop: Drop | None
    fidelity: Fidelity | None = None
    accuracy: dict[str, Any] | None = None
    reason: str | None = None
    detection: DetectionEval | None = None


DETECTION_METRICS = ("map", "fidelity_map")


def load_outputs(path: str | Path) -> np.ndarray | list[Detections]:
    """What a worker saved: logits (.npy) or a detector's detections (.npz)."""
    path = Path(path)
    return load_detections(path) if path.suffix == ".npz" else np.load(path)


def scores(base_logits, logits, labels, metric: str, confidence: float, seed: int, *,
           full: bool, classes: int | None = None, threshold: float = 0.25,
           groups: np.ndarray | None = None) -> Scores:
    """The drop, fidelity and accuracy of `logits` vs the baseline's on the same samples
    (a detector's: `detection_scores`, with its class count and deployed threshold).
    `groups`: the cluster of each sample (None: independent), for a classifier's drop."""
    if metric in DETECTION_METRICS:
        return detection_scores(base_logits, logits, labels, confidence, seed, full=full,
                                classes=classes, threshold=threshold)
    n = min(len(base_logits), len(logits))
    base, cand = base_logits[:n], logits[:n]
    if not np.all(np.isfinite(cand)):
        return Scores(None, reason="the candidate produced non-finite outputs (inf/NaN)")
    clusters = None if groups is None else np.asarray(groups)[:n]
    fid = fidelity(base, cand, confidence=confidence, groups=clusters)
    fid = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in fid.items()}
    fid["top1_agreement_ci"] = tuple(fid["top1_agreement_ci"]) if fid.get("top1_agreement_ci") \
        else None
    if metric == "top1":
        drop = select.drop_top1(base, cand, labels[:n], confidence=confidence, groups=clusters)
    else:
        drop = select.drop_agreement(base, cand, confidence=confidence, groups=clusters)
    acc = accuracy(cand, labels[:n], confidence, clusters) if full and labels is not None \
        else None
    return Scores(drop, Fidelity.from_json(fid), acc)


def accuracy(logits: np.ndarray, labels: np.ndarray, confidence: float,
             groups: np.ndarray | None = None) -> dict[str, Any]:
    """Top-1/top-5 with Wilson intervals, macro precision/recall/F1 (metrics.classification;
    `groups`: the samples' clusters, which widen the intervals by their design effect)."""
    rep = classification_report(logits, labels, confidence=confidence, n_boot=200,
                                groups=groups)
    out: dict[str, Any] = {}
    for key in ("top1", "top5"):
        lo, hi = rep[f"{key}_ci"]
        out[key] = {"value": 100 * rep[key], "low": 100 * lo, "high": 100 * hi}
    for key in ("precision", "recall", "f1"):
        lo, hi = rep[f"{key}_macro_ci"]
        out[key] = {"value": 100 * rep[f"{key}_macro"], "low": 100 * lo, "high": 100 * hi,
                    "average": "macro"}
    out["confusion_matrix"] = {"labels": rep["labels"], "matrix": rep["confusion"]}
    return out


def baseline_beats_chance(base_logits: np.ndarray, labels: np.ndarray | None) -> tuple[bool, str]:
    """Whether the labels mean anything to this model: its top-1 must be at least twice the
    majority-class rate, and the labels within its outputs (a random-weight zoo model shown
    digits does not predict them; its drops would compare two chance levels)."""
    if labels is None:
        return False, "the data has no labels"
    if labels.max() >= base_logits.shape[1]:
        return False, f"labels go up to {labels.max()}, the model has {base_logits.shape[1]} outputs"
    top1 = float((base_logits.argmax(axis=1) == labels).mean())
    chance = float(np.bincount(labels).max() / len(labels))
    if top1 < 2 * chance:
        return False, (f"the original model's top-1 on these labels is {100 * top1:.1f}%, "
                       f"not above chance ({100 * chance:.1f}%)")
    return True, f"the original model's top-1 is {100 * top1:.1f}% on these labels"


def detection_scores(base: list[Detections], cand: list[Detections],
                     truth: list[DetectionSample] | None, confidence: float, seed: int, *,
                     full: bool, classes: int | None, threshold: float) -> Scores:
    """A detector's mAP drop (points; on `truth`, else fidelity mAP on the baseline's own
    detections) with its paired bootstrap interval, and in full its DetectionEval."""
    if classes is None:
        raise ValueError("detection scoring needs the class count")
    if any(not np.all(np.isfinite(d.scores)) or not np.all(np.isfinite(d.boxes)) for d in cand):
        return Scores(None, reason="the candidate produced non-finite outputs (inf/NaN)")
    sc = score_detections(truth, base, cand, classes, threshold=threshold,
                          confidence=confidence, seed=seed, full=full)
    drop = Drop(metric=sc.metric, value=100 * sc.drop.value, low=100 * sc.drop.low,
                high=100 * sc.drop.high, n=sc.images, method=sc.method,
                baseline_pct=100 * sc.baseline, candidate_pct=100 * sc.candidate,
                confidence=confidence)
    if not full:
        return Scores(drop)
    points = {k: _points(v) for k, v in sc.aps.items()}
    det = DetectionEval(basis="labels" if sc.metric == "map" else "fidelity", **points,
                        fidelity_map=_points(sc.fidelity), score_shift=_finite(sc.shift.to_dict()),
                        images=sc.images, score_threshold=threshold)
    return Scores(drop, detection=det)


def _points(interval) -> Estimate:
    return Estimate(100 * interval.value, 100 * interval.low, 100 * interval.high)


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """NaN (no matched detections) as None: report.json is strict JSON."""
    def fix(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return [fix(x) for x in v] if isinstance(v, list) else v
    return {k: fix(v) for k, v in d.items()}
