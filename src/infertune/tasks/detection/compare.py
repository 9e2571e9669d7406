"""Uncertainty and comparisons of detectors on the same images.

* `bootstrap_map`: a percentile interval of mAP@[.5:.95] over images resampled with
  replacement (images are the independent unit; boxes within an image are not).
* `paired_drop`: mAP(reference) − mAP(candidate) with an interval from the *same* resampled
  images for both models, so image difficulty cancels out of the difference.
* `fidelity_map`: with no labels, the candidate's mAP against the reference model's own
  detections above its deployed threshold, named "fidelity mAP" wherever it is shown: it
  measures agreement with the float model, not accuracy.
* `score_shift`: how confidences move (INT8 tends to compress them): quantiles of the scores
  of detections matched between the two models, and how many cross the deployed threshold —
  mAP can hold while a fixed threshold starts to drop boxes.
All mAP values here are fractions in [0, 1], as every metric in infertune's JSON (the
renderers show points).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .resample import ALL_IOUS, AP50, AP75, MapResampler
from .records import DetectionSample, Detections, iou_matrix

QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Interval:
    """A value with its percentile bootstrap interval (value/low/high as fractions)."""

    value: float
    low: float
    high: float
    confidence: float
    resamples: int

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high,
                "confidence": self.confidence, "resamples": self.resamples}


def _resamples(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(value: float, draws: list[float], confidence: float) -> Interval:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(value, float(low), float(high), confidence, len(draws))


def bootstrap_map(samples: Sequence[DetectionSample], predictions: Sequence[Detections],
                  classes: int, *, resamples: int = 200, confidence: float = 0.95,
                  seed: int = 0) -> Interval:
    """mAP@[.5:.95] with a bootstrap interval over images (matching done once, resample.py)."""
    pooled = MapResampler(samples, predictions, classes)
    draws = [pooled.map_of_draw(idx) for idx in _resamples(len(samples), resamples, seed)]
    return _interval(pooled.map(), draws, confidence)


def bootstrap_aps(samples: Sequence[DetectionSample], predictions: Sequence[Detections],
                  classes: int, *, resamples: int = 200, confidence: float = 0.95,
                  seed: int = 0) -> dict[str, Interval]:
    """{"map", "ap50", "ap75"}: each with its bootstrap interval, from the same draws."""
    pooled = MapResampler(samples, predictions, classes)
    draws = _resamples(len(samples), resamples, seed)
    out = {}
    for key, ious in (("map", ALL_IOUS), ("ap50", AP50), ("ap75", AP75)):
        out[key] = _interval(pooled.map(ious=ious),
                             [pooled.map_of_draw(idx, ious) for idx in draws], confidence)
    return out


def paired_drop(samples: Sequence[DetectionSample], reference: Sequence[Detections],
                candidate: Sequence[Detections], classes: int, *, resamples: int = 200,
                confidence: float = 0.95, seed: int = 0) -> Interval:
    """mAP(reference) − mAP(candidate); both scored on the same resampled images."""
    return paired_resampled(MapResampler(samples, reference, classes),
                            MapResampler(samples, candidate, classes), resamples=resamples,
                            confidence=confidence, seed=seed)


def paired_resampled(ref: MapResampler, cand: MapResampler, *, resamples: int = 200,
                     confidence: float = 0.95, seed: int = 0) -> Interval:
    """`paired_drop` on two models already matched against the same images."""
    draws = [ref.map_of_draw(idx) - cand.map_of_draw(idx)
             for idx in _resamples(ref.images, resamples, seed)]
    return _interval(ref.map() - cand.map(), draws, confidence)


def pseudo_labels(reference: Sequence[Detections], threshold: float) -> list[DetectionSample]:
    """The reference model's detections above `threshold` as ground truth (boxes clipped to
    nothing at the image border are left out: no box can overlap them)."""
    from pathlib import Path

    out = []
    for i, dets in enumerate(reference):
        kept = dets.above(threshold)
        solid = (kept.boxes[:, 2] > kept.boxes[:, 0]) & (kept.boxes[:, 3] > kept.boxes[:, 1])
        out.append(DetectionSample(image=Path(f"<reference image {i}>"), image_hw=dets.image_hw,
                                   boxes=kept.boxes[solid], classes=kept.classes[solid],
                                   image_id=i))
    return out


def fidelity_map(reference: Sequence[Detections], candidate: Sequence[Detections],
                 classes: int, *, threshold: float = 0.25, resamples: int = 200,
                 confidence: float = 0.95, seed: int = 0) -> Interval:
    """"fidelity mAP": the candidate's mAP@[.5:.95] against the reference's
    detections above `threshold`, with a bootstrap interval over images."""
    return bootstrap_map(pseudo_labels(reference, threshold), candidate, classes,
                         resamples=resamples, confidence=confidence, seed=seed)


@dataclass(frozen=True)
class ScoreShift:
    """Scores of detections the two models agree on (same class, IoU ≥ .5, matched greedily
    best reference first), and counts at the deployed threshold.

    Attributes:
        matched: pairs found. quantiles: the quantile levels (QUANTILES).
        reference_quantiles / candidate_quantiles: score quantiles over the matched pairs.
        median_change: median of candidate − reference over the pairs.
        threshold: the deployed score threshold.
        reference_above / candidate_above: detections above it for each model (all, matched or not).
        lost_at_threshold: matched pairs whose reference score is above it and candidate's not.
    """

    matched: int
    quantiles: tuple[float, ...]
    reference_quantiles: tuple[float, ...]
    candidate_quantiles: tuple[float, ...]
    median_change: float
    threshold: float
    reference_above: int
    candidate_above: int
    lost_at_threshold: int

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _pairs(ref: Detections, cand: Detections, iou: float) -> list[tuple[float, float]]:
    pairs = []
    for cls in np.unique(ref.classes):
        r = np.flatnonzero(ref.classes == cls)
        r = r[np.argsort(-ref.scores[r], kind="stable")]
        c = np.flatnonzero(cand.classes == cls)
        if not len(c):
            continue
        ious = iou_matrix(ref.boxes[r], cand.boxes[c])
        used = np.zeros(len(c), bool)
        for i in range(len(r)):
            free = np.where(used, -1.0, ious[i])
            j = int(np.argmax(free))
            if free[j] >= iou:
                used[j] = True
                pairs.append((float(ref.scores[r[i]]), float(cand.scores[c[j]])))
    return pairs


def score_shift(reference: Sequence[Detections], candidate: Sequence[Detections], *,
                threshold: float = 0.25, iou: float = 0.5) -> ScoreShift:
    """How the candidate's confidences differ from the reference's on matched detections."""
    pairs = [p for r, c in zip(reference, candidate) for p in _pairs(r, c, iou)]
    ref = np.array([p[0] for p in pairs])
    cand = np.array([p[1] for p in pairs])
    nan = tuple(float("nan") for _ in QUANTILES)
    return ScoreShift(
        matched=len(pairs), quantiles=QUANTILES,
        reference_quantiles=tuple(np.quantile(ref, QUANTILES).tolist()) if len(ref) else nan,
        candidate_quantiles=tuple(np.quantile(cand, QUANTILES).tolist()) if len(cand) else nan,
        median_change=float(np.median(cand - ref)) if len(ref) else float("nan"),
        threshold=threshold,
        reference_above=int(sum((d.scores > threshold).sum() for d in reference)),
        candidate_above=int(sum((d.scores > threshold).sum() for d in candidate)),
        lost_at_threshold=int(((ref > threshold) & (cand <= threshold)).sum()))
