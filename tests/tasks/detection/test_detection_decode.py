"""Decoding of [yolo] and [region] maps, worked by hand on 2×2 grids: every expected box is
computed here from the formulas of Darknet's get_yolo_box / get_region_box, not by the code
under test. Exact arithmetic up to float64 rounding (tolerance 1e-9)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infertune.tasks.detection.decode import correct_boxes, decode_region, decode_yolo, letterbox_size
from infertune.tasks.detection.heads import DetectionSpec, RegionHead, YoloHead
from infertune.tasks.detection.letterbox import letterbox
from infertune.tasks.detection.postprocess import detect

TOL = 1e-9
OFF = -30.0  # logit of an empty cell: σ = 1e-13


def yolo_head(**kw) -> YoloHead:
    base = dict(layer=3, output="yolo_3", grid=(2, 2), classes=2, anchors=((20.0, 10.0),))
    return YoloHead(**{**base, **kw})


def one_cell_map(entries: list[float], row: int, col: int, channels: int = 7) -> np.ndarray:
    raw = np.full((channels, 2, 2), OFF)
    raw[:, row, col] = entries
    return raw


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_yolo_box_objectness_and_class_probs():
    raw = one_cell_map([0.0, logit(0.75), math.log(2), 0.0, logit(0.8), logit(0.9), logit(0.1)],
                       row=1, col=0)
    found = decode_yolo(raw, yolo_head(), (64, 64), threshold=0.25)
    # x = (0 + .5)/2, y = (1 + .75)/2, w = e^ln2 · 20/64, h = e^0 · 10/64
    np.testing.assert_allclose(found.boxes, [[0.25, 0.875, 40 / 64, 10 / 64]], atol=TOL)
    np.testing.assert_allclose(found.objectness, [0.8], atol=TOL)
    np.testing.assert_allclose(found.probs, [[0.72, 0.0]], atol=TOL)  # .8·.1 = .08 ≤ .25 → 0


def test_yolo_scale_x_y():
    raw = one_cell_map([0.0, logit(0.75), 0.0, 0.0, logit(0.8), logit(0.9), OFF], row=1, col=1)
    found = decode_yolo(raw, yolo_head(scale_x_y=2.0), (64, 64), threshold=0.25)
    # x' = σ·2 − (2−1)/2: .5 → .5, .75 → 1.0
    np.testing.assert_allclose(found.boxes[0, :2], [(1 + 0.5) / 2, (1 + 1.0) / 2], atol=TOL)


def test_yolo_new_coords_takes_activated_values():
    raw = np.zeros((7, 2, 2))
    raw[:, 0, 1] = [0.3, 0.6, 0.5, 0.25, 0.9, 0.5, 0.2]
    found = decode_yolo(raw, yolo_head(new_coords=True), (64, 32), threshold=0.25)
    # no σ: x = (1 + .3)/2, y = (0 + .6)/2; w = (.5)²·4·20/32, h = (.25)²·4·10/64
    np.testing.assert_allclose(found.boxes, [[0.65, 0.3, 20 / 32, 0.25 * 10 / 64]], atol=TOL)
    np.testing.assert_allclose(found.probs, [[0.45, 0.0]], atol=TOL)  # .9·.2 = .18 → 0


def test_yolo_anchor_order_and_cell_walk():
    head = yolo_head(anchors=((8.0, 8.0), (16.0, 32.0)))
    raw = np.full((14, 2, 2), OFF)
    raw[[0, 1, 2, 3, 7, 8, 9, 10]] = 0.0  # σ(0) = .5 offsets, e^0 = 1 × anchor
    raw[7 + 4, 0, 0] = raw[7 + 5, 0, 0] = 30.0  # anchor 1 at (0, 0)
    raw[4, 1, 1] = raw[5, 1, 1] = 30.0  # anchor 0 at (1, 1)
    found = decode_yolo(raw, head, (64, 64), threshold=0.5)
    np.testing.assert_allclose(found.boxes[:, 2:], [[16 / 64, 32 / 64], [8 / 64, 8 / 64]], atol=TOL)
    np.testing.assert_allclose(found.boxes[:, :2], [[0.25, 0.25], [0.75, 0.75]], atol=TOL)


def test_region_softmax_and_grid_anchors():
    head = RegionHead(layer=5, output="region_5", grid=(2, 2), classes=2,
                      anchors=((1.0, 0.5),), softmax=True)
    raw = one_cell_map([logit(0.25), 0.0, 0.0, math.log(3), 0.0, math.log(3), 0.0], row=0, col=1)
    found = decode_region(raw, head, threshold=0.25)
    # x = (1 + .25)/2, y = .5/2, w = 1/2 (anchor in cells), h = 3·.5/2; softmax(ln3, 0) = .75, .25
    np.testing.assert_allclose(found.boxes, [[0.625, 0.25, 0.5, 0.75]], atol=TOL)
    np.testing.assert_allclose(found.probs, [[0.375, 0.0]], atol=TOL)  # .5·.25 = .125 → 0


def test_region_logistic_classes_without_softmax():
    head = RegionHead(layer=5, output="region_5", grid=(2, 2), classes=2, anchors=((1.0, 1.0),))
    raw = one_cell_map([0.0, 0.0, 0.0, 0.0, logit(0.9), logit(0.5), logit(0.4)], row=0, col=0)
    np.testing.assert_allclose(decode_region(raw, head, 0.25).probs, [[0.45, 0.36]], atol=TOL)


def test_letterbox_geometry_and_correction():
    assert letterbox_size((100, 200), (64, 64)) == (32, 64)
    assert letterbox_size((300, 100), (64, 64)) == (64, 21)  # (100·64)//300
    # a box of 32×16 net pixels centred in the net: the image fills rows 16..48 at scale .32
    out = correct_boxes(np.array([[0.5, 0.5, 0.5, 0.25]]), (100, 200), (64, 64), letterbox=True)
    np.testing.assert_allclose(out, [[0.5, 0.5, 0.5, 0.5]], atol=TOL)
    x = letterbox(np.full((3, 100, 200), 255, np.uint8), (64, 64))
    assert x.shape == (3, 64, 64) and x.dtype == np.float32
    assert np.all(x[:, :16] == 0.5) and np.all(x[:, 48:] == 0.5) and np.allclose(x[:, 16:48], 1.0)


def test_detect_end_to_end_two_heads_and_batch():
    big = yolo_head()
    small = yolo_head(layer=9, output="yolo_9", grid=(4, 4), anchors=((4.0, 4.0),))
    spec = DetectionSpec(heads=(big, small), input_hw=(64, 64))
    a = np.full((2, 7, 2, 2), OFF)
    b = np.full((2, 7, 4, 4), OFF)
    a[0, :, 1, 0] = [0.0, logit(0.75), math.log(2), 0.0, logit(0.8), logit(0.9), OFF]
    b[1, :, 2, 1] = [0.0, 0.0, 0.0, 0.0, 30.0, OFF, 30.0]  # image 2: class 1 at cell (2, 1)
    first, second = detect([a, b], spec, [(64, 64), (128, 64)])
    # image 1 = net size: box (.25, .875, .625, .15625) → pixels, x1 clipped at 0
    np.testing.assert_allclose(first.boxes, [[0.0, 51.0, 36.0, 61.0]], atol=1e-6)
    assert first.classes.tolist() == [0] and first.scores == pytest.approx([0.72])
    # image 2 is 128 high, 64 wide: letterboxed to 64×32 at columns 16..48
    # net box centre (1.5/4, 2.5/4)·64 = (24, 40), 4×4 px; image = (net − (16, 0))·2
    np.testing.assert_allclose(second.boxes, [[12.0, 76.0, 20.0, 84.0]], atol=1e-6)
    assert second.classes.tolist() == [1]
