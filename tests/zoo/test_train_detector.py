"""zoo/train_detector.py: the YOLOv3 loss that trains ref-detector, checked against values
worked out by hand, and against the decoder that reads the trained maps.

* A hand-worked loss: one 1-class, 1-anchor head on a 2×2 grid (stride 16, canvas 32), all
  outputs 0, one ground-truth box 8×8 centred at (8, 8) = the centre of cell (0, 0), the
  anchor 8×8. Every logistic term at logit 0 is log 2: x and y (targets .5) weighted by
  2 − 64/1024 = 1.9375, the class (target 1), and the four objectness terms (the positive,
  and three negatives whose decoded boxes — 8×8 at the other cells' centres — miss the box).
  w, h: log(8/8) = 0, no loss. Total (3.875 + 1 + 4)·log 2 = 8.875·log 2 (tolerance 1e-5).
* Maps built to be perfect for a box (the inverse of decode.py's formulas, logits ±12) have
  a loss of only the floor of the logistic x/y terms (their targets' entropy, weighted;
  every other term < 0.01 in all), and decode.py reads the box back from them
  (within 1e-3 px): the loss trains exactly what the decoder reads.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infertune.tasks.detection.decode import decode_yolo
from infertune.tasks.detection.heads import YoloHead
from infertune.zoo.train_detector import box_iou, wh_iou, yolo_loss


def head(anchors, grid, classes=1, layer=0) -> YoloHead:
    return YoloHead(layer=layer, output=f"yolo_{layer}", grid=grid, classes=classes,
                    anchors=tuple(anchors))


def test_hand_worked_loss_of_zero_outputs():
    h = head([(8.0, 8.0)], (2, 2))
    raw = torch.zeros(1, 6, 2, 2)
    loss = yolo_loss([raw], [h], [np.array([[4.0, 4.0, 12.0, 12.0]])], [np.array([0])], 32)
    assert float(loss) == pytest.approx(8.875 * math.log(2), abs=1e-5)


def test_a_box_goes_to_the_best_anchor_of_all_heads():
    small, large = head([(8.0, 8.0)], (4, 4), layer=1), head([(24.0, 24.0)], (2, 2), layer=2)
    box, cls = [np.array([[0.0, 0.0, 22.0, 22.0]])], [np.array([0])]
    # zero maps: only the large head's anchor (IoU 22²/24² vs 64/22²) gets the positive terms
    loss_both = yolo_loss([torch.zeros(1, 6, 4, 4), torch.zeros(1, 6, 2, 2)], [small, large],
                          box, cls, 32)
    negatives_only = (16 + 4) * math.log(2)
    assert float(loss_both) > negatives_only
    with_large_perfect = torch.zeros(1, 6, 2, 2)
    with_large_perfect[0, 0, 0, 0] = torch.logit(torch.tensor(11.0 / 16.0))
    with_large_perfect[0, 1, 0, 0] = torch.logit(torch.tensor(11.0 / 16.0))
    with_large_perfect[0, 2:4, 0, 0] = math.log(22.0 / 24.0)
    lower = yolo_loss([torch.zeros(1, 6, 4, 4), with_large_perfect], [small, large], box,
                      cls, 32)
    assert float(lower) < float(loss_both)


def test_perfect_maps_have_a_floor_loss_and_decode_to_the_box():
    h = head([(10.0, 14.0), (20.0, 30.0)], (4, 4), classes=3)
    box = np.array([[37.0, 5.0, 57.0, 35.0]])  # 20×30: anchor 1; centre (47, 20) in cell (2, 1)
    raw = torch.full((1, 2, 8, 4, 4), -12.0)
    stride = 16.0
    raw[0, 1, 0, 1, 2] = torch.logit(torch.tensor(47.0 / stride - 2))
    raw[0, 1, 1, 1, 2] = torch.logit(torch.tensor(20.0 / stride - 1))
    raw[0, 1, 2, 1, 2] = math.log(20.0 / 20.0)
    raw[0, 1, 3, 1, 2] = math.log(30.0 / 30.0)
    raw[0, 1, 4, 1, 2] = 12.0
    raw[0, 1, 5 + 2, 1, 2] = 12.0
    raw = raw.view(1, 16, 4, 4)
    loss = yolo_loss([raw], [h], [box], [np.array([2])], 64)

    def entropy(p: float) -> float:  # a logistic loss towards a soft target p is ≥ this
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    floor = (2 - 600 / 64**2) * (entropy(47 / 16 - 2) + entropy(20 / 16 - 1))
    assert float(loss) == pytest.approx(floor, abs=0.01)
    found = decode_yolo(raw[0].numpy(), h, (64, 64), threshold=0.5)
    assert len(found.boxes) == 1
    cx, cy, w, hh = found.boxes[0] * 64
    assert np.allclose([cx - w / 2, cy - hh / 2, cx + w / 2, cy + hh / 2], box[0], atol=1e-3)
    assert int(np.argmax(found.probs[0])) == 2


def test_iou_helpers_against_hand_values():
    assert wh_iou(torch.tensor([[4.0, 4.0]]), torch.tensor([[2.0, 8.0], [4.0, 4.0]])).tolist() \
        == [[pytest.approx(8 / 24), 1.0]]
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0]])
    assert box_iou(a, b).tolist() == [[pytest.approx(1 / 7), 0.0]]
