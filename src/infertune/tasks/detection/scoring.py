"""A candidate detector against the original one on the same images, as the search needs it.

The drop is mAP@[.5:.95](original) − mAP@[.5:.95](candidate) with a paired bootstrap
interval over images (both models scored on the same resampled images, `compare`). With
labels the mAP is on the labels ("map"); without, both models are scored against the
original's own detections above its deployed threshold ("fidelity_map": agreement with the
float model, not accuracy — the original scores 1 on it). The full evaluation adds the
candidate's mAP/AP50/AP75 with intervals, its fidelity mAP and the score shift.
Every value here is a fraction; the search records points.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .compare import (Interval, ScoreShift, bootstrap_aps, fidelity_map, paired_resampled,
                      pseudo_labels, score_shift)
from .records import DetectionSample, Detections
from .resample import MapResampler

RESAMPLES = 200


@dataclass(frozen=True)
class DetectionScores:
    """A candidate's paired mAP drop, and (full evaluation) its detection metrics.

    Attributes:
        metric: "map" (on labels) or "fidelity_map" (on the original's detections).
        drop: mAP(original) − mAP(candidate) with its paired bootstrap interval.
        baseline / candidate: the two mAPs the drop is the difference of.
        images: images scored. resamples: bootstrap draws.
        aps: the candidate's "map", "ap50", "ap75" on the same truth, with intervals.
        fidelity: the candidate's fidelity mAP against the original's detections.
        shift: how its confidences moved against the original's (matched detections).
    """

    metric: str
    drop: Interval
    baseline: float
    candidate: float
    images: int
    resamples: int
    aps: dict[str, Interval] | None = None
    fidelity: Interval | None = None
    shift: ScoreShift | None = None

    @property
    def method(self) -> str:
        on = "labels" if self.metric == "map" else \
            "the original model's detections above its score threshold (fidelity mAP)"
        return (f"paired mAP@[.5:.95] difference on {on}, percentile bootstrap over images "
                f"({self.resamples} draws, the same images for both models)")


def score_detections(truth: Sequence[DetectionSample] | None, reference: Sequence[Detections],
                     candidate: Sequence[Detections], classes: int, *, threshold: float,
                     confidence: float = 0.95, seed: int = 0,
                     full: bool = False) -> DetectionScores:
    """The candidate's drop against `reference` on the same images (module docstring)."""
    n = min(len(reference), len(candidate))
    reference, candidate = list(reference[:n]), list(candidate[:n])
    metric = "map" if truth is not None else "fidelity_map"
    truth = list(truth[:n]) if truth is not None else pseudo_labels(reference, threshold)
    ref, cand = MapResampler(truth, reference, classes), MapResampler(truth, candidate, classes)
    drop = paired_resampled(ref, cand, resamples=RESAMPLES, confidence=confidence, seed=seed)
    out = DetectionScores(metric, drop, ref.map(), cand.map(), n, RESAMPLES)
    if not full:
        return out
    aps = bootstrap_aps(truth, candidate, classes, resamples=RESAMPLES, confidence=confidence,
                        seed=seed)
    fid = aps["map"] if metric == "fidelity_map" else fidelity_map(
        reference, candidate, classes, threshold=threshold, resamples=RESAMPLES,
        confidence=confidence, seed=seed)
    return DetectionScores(metric, drop, out.baseline, out.candidate, n, RESAMPLES, aps, fid,
                           score_shift(reference, candidate, threshold=threshold))
