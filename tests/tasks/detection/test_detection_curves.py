"""Precision–recall curves (tasks/detection/curves.py): a hand-worked case whose precision at
every recall threshold is derived below from COCO's definition, the classes that count, and
a cross-check against faster-coco-eval's own accumulated precision array on a random set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infertune.tasks.detection.curves import pr_curves
from infertune.tasks.detection.metrics import coco_detections, coco_ground_truth, run_cocoeval
from infertune.tasks.detection.records import DetectionSample, Detections

HW = (100, 100)
RECALLS = np.arange(101) / 100


def sample(boxes, classes, i=0) -> DetectionSample:
    return DetectionSample(Path(f"{i}.png"), HW, np.array(boxes, float).reshape(-1, 4),
                           np.array(classes), i)


def dets(boxes, scores, classes) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), scores, classes, HW)


# Two boxes of class 0; three detections, best first:
#   .9 on A exactly (IoU 1), .8 on nothing, .7 on B with IoU 100 / 160 = 0.625
TRUTH = [sample([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])]
FOUND = [dets([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 36]], [0.9, 0.8, 0.7],
              [0, 0, 0])]


def test_hand_worked_curve_at_iou_half():
    at50, _ = pr_curves(TRUTH, FOUND, classes=1)
    # At IoU .5 the three detections are TP, FP, TP: recall .5, .5, 1 and precision
    # 1, 1/2, 2/3. Interpolated (best precision at that recall or beyond): 1 up to recall
    # .5, then 2/3 up to recall 1.
    expected = np.where(RECALLS <= 0.5, 1.0, 2 / 3)
    assert at50.iou == "0.5" and at50.classes == 1
    np.testing.assert_allclose(at50.recall, RECALLS, atol=1e-12)
    np.testing.assert_allclose(at50.precision, expected, atol=1e-12)
    assert at50.ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101, abs=1e-12)


def test_hand_worked_curve_over_iou_half_to_095():
    _, mean = pr_curves(TRUTH, FOUND, classes=1)
    # B's detection (IoU .625) matches at .50, .55, .60 (the curve above) and misses at the
    # seven thresholds .65….95, where recall stops at .5 (precision 0 beyond it). Up to
    # recall .5 every threshold gives 1; beyond it 3 of 10 give 2/3, so 0.2.
    expected = np.where(RECALLS <= 0.5, 1.0, 0.2)
    assert mean.iou == "0.5:0.95"
    np.testing.assert_allclose(mean.precision, expected, atol=1e-12)
    assert mean.ap == pytest.approx(61 / 101, abs=1e-12)


def test_only_classes_with_boxes_are_averaged():
    # class 1 has a box and no detection (precision 0 everywhere); class 2 has a detection
    # and no box (left out, as COCO leaves it out): the class-0 curve is halved
    truth = [sample([[0, 0, 10, 10], [20, 20, 30, 30], [60, 60, 90, 90]], [0, 0, 1])]
    found = [dets([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 36], [60, 60, 90, 90]],
                  [0.9, 0.8, 0.7, 0.95], [0, 0, 0, 2])]
    at50, _ = pr_curves(truth, found, classes=3)
    assert at50.classes == 2
    np.testing.assert_allclose(at50.precision, np.where(RECALLS <= 0.5, 0.5, 1 / 3),
                               atol=1e-12)
    empty, _ = pr_curves(truth, [dets([], [], [])], classes=3)
    assert empty.classes == 2 and not empty.precision.any()


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="1 samples but 2 predictions"):
        pr_curves(TRUTH, FOUND * 2, classes=1)


def random_set(seed: int, n: int = 25, classes: int = 3):
    rng = np.random.default_rng(seed)
    truth, preds = [], []
    for i in range(n):
        k = rng.integers(1, 6)
        xy = rng.uniform(0, 70, (k, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (k, 2))], axis=1)
        cls = rng.integers(0, classes, k)
        truth.append(sample(boxes, cls, i))
        fxy = rng.uniform(0, 80, (3, 2))
        fake = np.concatenate([fxy, fxy + rng.uniform(5, 20, (3, 2))], axis=1)
        found = np.clip(np.concatenate([boxes + rng.normal(0, 2.0, boxes.shape), fake]), 0, 100)
        labels = np.concatenate([np.where(rng.random(k) < 0.8, cls, (cls + 1) % classes),
                                 rng.integers(0, classes, 3)])
        preds.append(dets(found, rng.uniform(0, 1, k + 3), labels))
    return truth, preds


@pytest.mark.parametrize("seed", [0, 1])
def test_equals_faster_coco_eval_precision(seed):
    """COCOeval's precision[T, R, K, area all, 100 dets], averaged over the classes (and over
    T for the .5:.95 curve), is the same curve, computed by its own C++ accumulation."""
    truth, preds = random_set(seed)
    evaluator = run_cocoeval(coco_ground_truth(truth, 3), coco_detections(preds))
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, 0, -1]   # (T, R, K)
    assert (precision > -1).all()   # every class has boxes in this set
    at50, mean = pr_curves(truth, preds, classes=3)
    np.testing.assert_allclose(at50.precision, precision[0].mean(axis=1), atol=1e-9)
    np.testing.assert_allclose(mean.precision, precision.mean(axis=(0, 2)), atol=1e-9)
    assert 0.1 < mean.ap < 0.9   # a non-trivial case
    assert mean.ap == pytest.approx(float(evaluator.stats[0]), abs=1e-9)
