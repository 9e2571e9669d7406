"""Example images for the report (tasks/detection/examples.py): which images differ most, the
network input shown again as the original image, and the side-by-side PNG with each model's
boxes in draw.py's class colours."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from infertune.tasks.detection.draw import class_colour
from infertune.tasks.detection.examples import (DISPLAY_PX, GAP_PX, HEADER_PX, InputPixels,
                                                differing_images, disagreement, shown_image,
                                                side_by_side)
from infertune.tasks.detection.letterbox import letterbox
from infertune.tasks.detection.records import Detections

HW = (60, 80)


def dets(boxes, scores, classes, hw=HW) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), scores, classes, hw)


def test_disagreement_counts_unmatched_boxes_of_both_models():
    ref = dets([[0, 0, 20, 20], [40, 40, 60, 60], [0, 40, 10, 50]], [0.9, 0.8, 0.1],
               [0, 1, 0])
    cand = dets([[1, 1, 20, 20], [40, 40, 60, 60], [60, 0, 80, 20], [0, 40, 10, 50]],
                [0.7, 0.6, 0.5, 0.2], [0, 0, 1, 0])
    # above .25: ref A(0) B(1); cand A'(0, IoU 361/400 ≥ .5) B'(class 0, not 1) C(1).
    # Matched: A–A'. Unmatched: ref B; cand B' and C. The .1 and .2 boxes do not count.
    assert disagreement(ref, cand, 0.25) == 3
    assert disagreement(ref, ref, 0.25) == 0
    assert disagreement(ref, dets([], [], []), 0.25) == 2


def test_differing_images_most_first_then_more_boxes_then_order():
    one = dets([[0, 0, 20, 20]], [0.9], [0])
    two = dets([[0, 0, 20, 20], [40, 40, 60, 60]], [0.9, 0.9], [0, 0])
    none = dets([], [], [])
    ref = [one, one, two, two, none]
    cand = [one, none, none, two, none]
    # disagreements 0, 1, 2, 0, 0; boxes 2, 1, 2, 4, 0
    assert differing_images(ref, cand, 0.25, 4) == [2, 1, 3, 0]
    assert differing_images(ref, cand, 0.25, 10) == [2, 1, 3, 0, 4]


def test_shown_image_undoes_the_letterbox():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 24, 32), dtype=np.uint8)
    x = letterbox(pixels, (32, 32))   # 24×32 fits as is: 4 grey rows above and below
    assert np.allclose(x[:, :4], 0.5) and np.allclose(x[:, 28:], 0.5)
    image, scale = shown_image(x, (24, 32), InputPixels(), longest=32)
    assert scale == 1.0 and image.size == (32, 24)
    np.testing.assert_array_equal(np.asarray(image).transpose(2, 0, 1), pixels)
    big, scale = shown_image(x, (24, 32), InputPixels())
    assert scale == DISPLAY_PX / 32 and big.size == (DISPLAY_PX, 240)


def test_input_pixels_undo_the_normalisation_and_round_trip():
    pixels = InputPixels(False, (0.5, 0.4, 0.3), (0.25, 0.2, 0.1))
    unit = np.array([0.0, 0.2, 0.5, 1.0], np.float32)
    x = np.stack([(unit - m) / s for m, s in zip(pixels.mean, pixels.std)]).reshape(3, 1, 4)
    np.testing.assert_allclose(pixels.to_unit(x)[:, 0], np.stack([unit] * 3), atol=1e-6)
    assert InputPixels.from_dict(pixels.to_dict()) == pixels
    assert InputPixels.from_dict(None) == InputPixels(True, None, None)   # an older run
    grey = np.full((1, 2, 2), 1.7, np.float32)
    assert InputPixels().to_unit(grey).max() == 1.0   # clipped


def test_side_by_side_draws_each_model_in_its_panel():
    x = np.full((3, 48, 64), 0.5, np.float32)   # a 48×64 image, no padding at 48×64
    left = dets([[8, 8, 40, 40], [0, 0, 4, 4]], [0.9, 0.1], [1, 0], (48, 64))
    right = dets([], [], [], (48, 64))
    png = side_by_side(x, (48, 64), InputPixels(), [("original", left), ("pick", right)],
                       ["zero", "one"], 0.25)
    sheet = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    scale = DISPLAY_PX / 64   # 5: panels 320×240 under an 18 px title strip
    assert sheet.shape == (HEADER_PX + 48 * 5, 2 * DISPLAY_PX + GAP_PX, 3)
    # the box's left edge at x = 8·5 = 40, halfway down it (y = 24·5 = 120, plus the strip)
    edge = (HEADER_PX + int(24 * scale), int(8 * scale))
    assert tuple(sheet[edge]) == class_colour(1)
    assert tuple(sheet[edge[0], edge[1] + DISPLAY_PX + GAP_PX]) == (128, 128, 128)  # none
    # the class-0 box scores .1, below the threshold: not drawn
    assert class_colour(0) not in {tuple(p) for p in sheet[HEADER_PX:, :DISPLAY_PX].reshape(-1, 3)}
    assert (sheet[:HEADER_PX] < 128).any()   # a title is written


@pytest.mark.parametrize("channels", [1, 3])
def test_grey_and_colour_inputs(channels):
    x = np.zeros((channels, 10, 10), np.float32)
    x[0, :, :5] = 1.0
    image, _ = shown_image(x, (10, 10), InputPixels(), longest=10)
    rgb = np.asarray(image)
    assert rgb.shape == (10, 10, 3) and tuple(rgb[0, 0]) == ((255,) * 3 if channels == 1
                                                            else (255, 0, 0))
