"""COCO box metrics: hand-worked cases (exact AP values from COCO's definition), faster-coco-eval
cross-checked against pycocotools on a seeded random set (tolerance 1e-9 absolute: the same
algorithm in C++), P/R/F1 counts, bootstrap and paired intervals, fidelity mAP, score shift."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from extras import require_extra

from infertune.tasks.detection.compare import (bootstrap_map, fidelity_map, paired_drop,
                                               score_shift)
from infertune.tasks.detection.metrics import coco_scores
from infertune.tasks.detection.records import DetectionSample, Detections

HW = (100, 100)


def sample(boxes, classes, i=0, crowd=None) -> DetectionSample:
    return DetectionSample(Path(f"{i}.png"), HW, np.array(boxes, float).reshape(-1, 4),
                           np.array(classes), i, crowd)


def dets(boxes, scores, classes) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), scores, classes, HW)


def test_perfect_and_partial_overlap():
    truth = [sample([[0, 0, 100, 100]], [0])]
    perfect = coco_scores(truth, [dets([[0, 0, 100, 100]], [0.9], [0])], ["a"])
    assert (perfect.map, perfect.ap50, perfect.ap75) == (1.0, 1.0, 1.0)
    # IoU 0.62 matches at thresholds .50, .55, .60 only: mAP = 3/10
    partial = coco_scores(truth, [dets([[0, 0, 100, 62]], [0.9], [0])], ["a"])
    assert partial.ap50 == 1.0 and partial.ap75 == 0.0 and partial.map == pytest.approx(0.3, abs=1e-9)


def test_per_class_ap_and_missing_classes():
    truth = [sample([[0, 0, 50, 50], [50, 50, 100, 100]], [0, 1])]
    found = coco_scores(truth, [dets([[50, 50, 100, 100]], [0.8], [1])], ["a", "b", "c"])
    assert found.per_class_ap["a"] == 0.0 and found.per_class_ap["b"] == 1.0
    assert math.isnan(found.per_class_ap["c"])  # no ground truth of that class
    assert found.map == pytest.approx(0.5, abs=1e-9)  # mean over the two classes with GT
    assert coco_scores(truth, [dets([], [], [])], ["a", "b"]).map == 0.0


def test_precision_recall_f1_at_threshold():
    truth = [sample([[0, 0, 10, 10], [50, 50, 60, 60], [80, 0, 100, 20]], [0, 0, 0],
                    crowd=[False, False, True])]
    predicted = dets([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [80, 0, 100, 20]],
                     [0.9, 0.8, 0.1, 0.7], [0, 0, 0, 0])
    s = coco_scores(truth, [predicted], ["a"], score_threshold=0.25)
    # at .25: TP (first), FP (second), the crowd match neither; the .1 match is below threshold
    assert s.ground_truth == 2 and (s.precision, s.recall) == (0.5, 0.5) and s.f1 == 0.5


def random_set(seed: int, n: int = 30, classes: int = 3):
    rng = np.random.default_rng(seed)
    truth, preds = [], []
    for i in range(n):
        k = rng.integers(1, 6)
        xy = rng.uniform(0, 70, (k, 2))
        wh = rng.uniform(5, 30, (k, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        cls = rng.integers(0, classes, k)
        truth.append(sample(boxes, cls, i, crowd=rng.random(k) < 0.1))
        jitter = boxes + rng.normal(0, 1.5, boxes.shape)
        extra = rng.integers(0, 4)
        fxy = rng.uniform(0, 80, (extra, 2))
        fake = np.concatenate([fxy, fxy + rng.uniform(5, 20, (extra, 2))], axis=1)
        all_boxes = np.clip(np.concatenate([jitter, fake]), 0, 100)
        keep = (all_boxes[:, 2] > all_boxes[:, 0] + 1) & (all_boxes[:, 3] > all_boxes[:, 1] + 1)
        all_cls = np.concatenate([np.where(rng.random(k) < 0.8, cls, (cls + 1) % classes),
                                  rng.integers(0, classes, extra)])
        scores = np.concatenate([rng.uniform(0.3, 1, k), rng.uniform(0, 0.6, extra)])
        preds.append(dets(all_boxes[keep], scores[keep], all_cls[keep]))
    return truth, preds


@pytest.mark.parametrize("seed", [0, 1])
def test_faster_coco_eval_matches_pycocotools(seed):
    require_extra("pycocotools", "test")
    truth, preds = random_set(seed)
    names = ["a", "b", "c"]
    fast = coco_scores(truth, preds, names)
    slow = coco_scores(truth, preds, names, backend="pycocotools")
    assert 0.1 < fast.map < 0.9  # a non-trivial case
    for key in ("map", "ap50", "ap75"):
        assert getattr(fast, key) == pytest.approx(getattr(slow, key), abs=1e-9), key
    for name in names:
        assert fast.per_class_ap[name] == pytest.approx(slow.per_class_ap[name], abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resampler_equals_cocoeval(seed):
    """The once-matched, weighted pooling (resample.py) against faster-coco-eval, on the set
    itself and on one bootstrap draw with repeated images (fed to COCOeval as copies)."""
    from infertune.tasks.detection.resample import MapResampler

    truth, preds = random_set(seed)
    pooled = MapResampler(truth, preds, 3)
    assert pooled.map() == pytest.approx(coco_scores(truth, preds, "abc").map, abs=1e-9)
    draw = np.random.default_rng(seed).integers(0, len(truth), len(truth))
    copies = coco_scores([truth[i] for i in draw], [preds[i] for i in draw], "abc").map
    assert pooled.map_of_draw(draw) == pytest.approx(copies, abs=1e-9)


def test_bootstrap_interval():
    truth, preds = random_set(0)
    interval = bootstrap_map(truth, preds, 3, resamples=50)
    assert interval.low <= interval.value <= interval.high and interval.high - interval.low > 0.01
    assert bootstrap_map(truth, preds, 3, resamples=50) == interval  # seeded
    perfect = [dets(s.boxes, np.ones(len(s.boxes)), s.classes) for s in truth]
    exact = bootstrap_map(truth, perfect, 3, resamples=20)
    assert (exact.value, exact.low, exact.high) == (1.0, 1.0, 1.0)


def test_paired_drop():
    truth, preds = random_set(1)
    same = paired_drop(truth, preds, preds, 3, resamples=30)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    worse = [Detections(d.boxes, d.scores, d.classes, d.image_hw) if i % 2 else
             Detections.empty(d.image_hw) for i, d in enumerate(preds)]  # half the images blind
    drop = paired_drop(truth, preds, worse, 3, resamples=30)
    full = bootstrap_map(truth, preds, 3, resamples=1).value
    assert drop.value > 0.3 * full and 0 < drop.low <= drop.value <= drop.high


def test_fidelity_map_against_the_reference():
    _, preds = random_set(2)
    same = fidelity_map(preds, preds, 3, threshold=0.25, resamples=10)
    assert same.value == pytest.approx(1.0)  # every reference box above .25 is found first
    shifted = [Detections(d.boxes + 40, d.scores, d.classes, d.image_hw) for d in preds]
    assert fidelity_map(preds, shifted, 3, resamples=10).value < 0.1


def test_score_shift():
    reference = [dets([[0, 0, 10, 10], [50, 50, 60, 60], [0, 50, 10, 60]], [0.9, 0.3, 0.6], [0, 1, 0])]
    candidate = [dets([[0, 0, 10, 10], [50, 50, 60, 61], [80, 80, 90, 90]], [0.72, 0.24, 0.5], [0, 1, 1])]
    shift = score_shift(reference, candidate, threshold=0.25)
    # pairs: (.9, .72), (.3, .24); the third reference box has no partner
    assert shift.matched == 2 and shift.median_change == pytest.approx((-0.18 - 0.06) / 2)
    assert shift.reference_above == 3 and shift.candidate_above == 2 and shift.lost_at_threshold == 1
    assert shift.reference_quantiles[2] == pytest.approx(0.6) and shift.candidate_quantiles[2] == pytest.approx(0.48)
