"""digits-det: the built-in labelled detection set (tasks/detection/data_digits.py).

Checked against values computed here, not by the module: the ink box of a hand-made mask;
that a scene's boxes hold the digit's ink and nothing of it lies outside (re-rendering the
digit alone); the YOLO files read back to the rendered boxes within their 6-decimal rounding
(128 px × 5e-7 = 6.4e-5 px, tolerance 1e-3 px); the parts' digits come from the fixed
sample:train / sample:val split only.
"""
from __future__ import annotations

import numpy as np
import pytest

from infertune.data.clutter import part_source
from infertune.errors import DataError
from infertune.tasks.detection import data_digits as dd
from infertune.tasks.detection.data import read_detection_data
from infertune.tasks.detection.rundata import is_detection_source


def test_ink_box_of_a_hand_made_mask():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:5, 3:7] = 200  # ink rows 2..4, cols 3..6
    mask[8, 0] = int(dd.INK_BOX * 255) - 1  # below the ink threshold: not part of the box
    assert dd.ink_box(mask, top=100, left=20) == (23.0, 102.0, 27.0, 105.0)
    assert dd.ink_box(np.zeros((4, 4), np.uint8), 0, 0) is None


def test_scenes_are_deterministic_and_boxes_are_the_digits_ink():
    a, scene_a = dd.render_detection_scene("train", 3, seed=7)
    b, scene_b = dd.render_detection_scene("train", 3, seed=7)
    assert np.array_equal(a, b) and np.array_equal(scene_a.boxes, scene_b.boxes)
    _, other = dd.render_detection_scene("train", 3, seed=8)
    assert not np.array_equal(other.boxes, scene_a.boxes) or other.photo != scene_a.photo
    for i in range(12):
        pixels, scene = dd.render_detection_scene("val", i, seed=0)
        assert pixels.shape == (dd.CANVAS, dd.CANVAS, 3) and pixels.dtype == np.uint8
        lo, hi = dd.DIGITS_PER_SCENE
        assert 0 <= len(scene.boxes) <= hi and len(scene.boxes) == len(scene.classes)
        boxes = scene.boxes
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= dd.CANVAS).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        for j in range(len(boxes)):  # ink boxes of disjoint squares never overlap
            for k in range(j + 1, len(boxes)):
                x1, y1 = np.maximum(boxes[j, :2], boxes[k, :2])
                x2, y2 = np.minimum(boxes[j, 2:], boxes[k, 2:])
                assert x2 <= x1 or y2 <= y1


def test_parts_draw_only_their_own_digits():
    train_ids = set(part_source("train").digit_ids.tolist())
    val_ids = set(part_source("val").digit_ids.tolist())
    assert not train_ids & val_ids
    for part, ids in (("train", train_ids), ("val", val_ids)):
        _, made = dd.scenes(part, seed=0, count=10)
        assert all(d in ids for s in made for d in s.digits)


def test_materialized_part_reads_back_as_the_rendered_boxes(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERTUNE_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(dd.PART_SCENES, "val", 6)
    data = read_detection_data("digits-det:val")
    assert data.format == "yolo" and data.names == dd.CLASS_NAMES and len(data) == 6
    folder = dd.part_folder("val")
    assert folder.parent.parent == tmp_path and (folder / "images" / "00005.png").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no scratch
    for i, sample in enumerate(data.samples):
        _, scene = dd.render_detection_scene("val", i, dd.DATA_SEED)
        assert sample.image_hw == (dd.CANVAS, dd.CANVAS)
        assert np.allclose(sample.boxes, scene.boxes, atol=1e-3)
        assert np.array_equal(sample.classes, scene.classes)
    again = read_detection_data("digits-det:val")  # read from the folder, not re-rendered
    assert [s.image for s in again.samples] == [s.image for s in data.samples]


def test_bad_part_is_a_one_line_data_error():
    with pytest.raises(DataError, match="digits-det:test"):
        read_detection_data("digits-det:test")
    assert is_detection_source("digits-det") and is_detection_source("digits-det:val")
