"""Darknet's do_nms_sort semantics: per class, greedy by prob, suppress strictly above the
threshold, suppressed boxes suppress nothing, other classes of a box untouched, objectness 0
drops out; AlexeyAB's DIoU variants. Expected overlaps computed here from corner boxes."""
from __future__ import annotations

import numpy as np
import pytest

from infertune.tasks.detection.nms import nms_sort
from infertune.tasks.detection.records import iou_matrix


def centre(xyxy) -> np.ndarray:
    b = np.asarray(xyxy, dtype=np.float64)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                     b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


# A and B overlap by 1/3 (inter 1, union 3); C is far away.
XYXY = [[0, 0, 2, 1], [1, 0, 3, 1], [10, 10, 12, 11]]


def test_iou_of_the_fixture():
    iou = iou_matrix(np.array(XYXY, float), np.array(XYXY, float))
    assert iou[0, 1] == 1 / 3 and iou[0, 2] == 0.0 and iou[2, 2] == 1.0


def test_suppresses_only_strictly_above_threshold():
    probs = np.array([[0.9], [0.8], [0.7]])
    kept = nms_sort(centre(XYXY), np.ones(3), probs, 1 / 3)
    assert kept[:, 0].tolist() == [0.9, 0.8, 0.7]  # IoU == threshold: kept
    kept = nms_sort(centre(XYXY), np.ones(3), probs, 0.33)
    assert kept[:, 0].tolist() == [0.9, 0.0, 0.7]


def test_order_is_by_prob_not_input():
    probs = np.array([[0.5], [0.8], [0.7]])
    kept = nms_sort(centre(XYXY), np.ones(3), probs, 0.3)
    assert kept[:, 0].tolist() == [0.0, 0.8, 0.7]


def test_classes_are_independent_and_a_box_keeps_its_other_class():
    probs = np.array([[0.9, 0.0], [0.8, 0.6], [0.0, 0.0]])
    kept = nms_sort(centre(XYXY), np.ones(3), probs, 0.3)
    assert kept.tolist() == [[0.9, 0.0], [0.0, 0.6], [0.0, 0.0]]


def test_suppressed_box_does_not_suppress():
    # A–B overlap 1/3, B–D overlap 1/3, A–D do not touch: D survives because B lost to A.
    xyxy = [[0, 0, 2, 1], [1, 0, 3, 1], [2, 0, 4, 1]]
    kept = nms_sort(centre(xyxy), np.ones(3), np.array([[0.9], [0.8], [0.7]]), 0.3)
    assert kept[:, 0].tolist() == [0.9, 0.0, 0.7]


def test_objectness_zero_takes_no_part():
    probs = np.array([[0.9], [0.8], [0.7]])
    kept = nms_sort(centre(XYXY), np.array([0.0, 1.0, 1.0]), probs, 0.3)
    assert kept[:, 0].tolist() == [0.0, 0.8, 0.7]  # the dropped A no longer suppresses B


def test_diou_variants_subtract_the_centre_distance_term():
    boxes = centre(XYXY[:2])
    # enclosing box 3×1: c² = 10; centres 1 apart: d² = 1; IoU 1/3
    for kind, exponent in (("greedynms", 0.6), ("diounms", 0.3)):
        overlap = 1 / 3 - (1 / 10) ** exponent
        for threshold, suppressed in ((overlap - 1e-6, True), (overlap + 1e-6, False)):
            kept = nms_sort(boxes, np.ones(2), np.array([[0.9], [0.8]]), threshold,
                            kind=kind, beta=0.3)
            assert bool(kept[1, 0] == 0.0) is suppressed, (kind, threshold)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="nms kind"):
        nms_sort(centre(XYXY), np.ones(3), np.ones((3, 1)), 0.45, kind="soft")
