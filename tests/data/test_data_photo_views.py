"""The built-in real-photo set `photos` / `photos:N` (infertune.data.photo_views)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infertune.data import load_dataset, photo_views
from infertune.data.photo_views import DEFAULT_VIEWS, read_photo_views
from infertune.data.photos import real_photos
from infertune.errors import ConfigError

SMALL = (3, 40, 56)  # non-square, small: the set must fit any model input


def test_views_are_deterministic_and_unlabelled():
    a = load_dataset("photos:40", input_shape=SMALL, preprocess="imagenet")
    b = load_dataset("photos:40", input_shape=SMALL, preprocess="imagenet", seed=7)
    assert a.x.shape == (40, *SMALL) and a.x.dtype == np.float32
    assert a.y is None and not a.labelled and a.class_names == []
    assert np.array_equal(a.x, b.x)  # the views do not depend on the run's seed


def test_default_view_count_and_raw_size():
    source = read_photo_views("photos", 3, (32, 48))
    assert source.x.shape == (DEFAULT_VIEWS, 3, math.ceil(32 * 8 / 7), math.ceil(48 * 8 / 7))
    assert source.x.dtype == np.uint8 and source.y is None
    n = len(real_photos())
    assert source.ids[0] == "photos[0]:skimage/chelsea"
    assert source.ids[n] == "photos[%d]:skimage/chelsea" % n  # the photos cycle


def test_first_views_are_the_whole_photos_then_crops_and_flips():
    from PIL import Image

    photos = real_photos()
    source = read_photo_views(f"photos:{len(photos) * 5}", 3, (48, 48))
    first = photos[0].pixels()  # 300×451: the whole view is its central 300×300 square
    left = (first.shape[1] - first.shape[0]) / 2
    expected = np.asarray(Image.fromarray(first).resize(
        (55, 55), Image.Resampling.BILINEAR, box=(left, 0, left + 300, 300))).transpose(2, 0, 1)
    assert np.array_equal(source.x[0], expected)
    crops = source.x[len(photos)::len(photos)]  # later views of the same photo
    assert all(not np.array_equal(c, source.x[0]) for c in crops)
    assert len({c.tobytes() for c in crops}) == len(crops)


def test_random_crops_stay_inside_and_flip_about_half_the_time():
    photo = real_photos()[0]
    rng = np.random.default_rng(0)
    draws = [photo_views._random_crop(rng, photo, (64, 64)) for _ in range(400)]
    for (left, top, right, bottom), _ in draws:
        assert 0 <= left < right <= 451 and 0 <= top < bottom <= 300
        area = (right - left) * (bottom - top) / (451 * 300)
        assert 0.25 - 1e-9 <= area <= 1.0 and 3 / 4 - 1e-9 <= (right - left) / (bottom - top) <= 4 / 3 + 1e-9
    flips = sum(flip for _, flip in draws)
    assert 160 <= flips <= 240  # Binomial(400, ½): ±4 standard deviations
    box = draws[0][0]
    plain = photo_views._render(photo, box, False, (64, 64), 3)
    mirrored = photo_views._render(photo, box, True, (64, 64), 3)
    assert np.array_equal(mirrored, plain[:, :, ::-1])


def test_works_with_every_preset_and_grey_models():
    for preset in ("darknet", "imagenet", "efficientnet_lite"):
        ds = load_dataset("photos:16", input_shape=(3, 33, 65), preprocess=preset)
        assert ds.x.shape == (16, 3, 33, 65) and np.isfinite(ds.x).all()
    grey = load_dataset("photos:4", input_shape=(1, 32, 32), preprocess="darknet")
    assert grey.x.shape == (4, 1, 32, 32)


def test_description_names_files_and_licences():
    ds = load_dataset("photos:20", input_shape=SMALL, preprocess="imagenet")
    assert ds.description.startswith("photos: 20 views of")
    assert "unlabelled" in ds.description
    for photo in real_photos():
        file = photo.path.rsplit("/", 1)[1]
        assert f"{photo.package} {file} ({photo_views.short_licence(photo)})" in ds.description
    assert "china.jpg (CC BY 2.0)" in ds.description and "chelsea.png (CC0)" in ds.description


@pytest.mark.parametrize("spec", ["photos:0", "photos:x", "photos:", "photos:100001"])
def test_bad_view_count(spec):
    with pytest.raises(ConfigError, match="view count"):
        load_dataset(spec, input_shape=SMALL)


def test_labels_file_and_channel_count_are_refused(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    with pytest.raises(ConfigError, match="not 'photos'"):
        load_dataset("photos:4", input_shape=SMALL, labels_file=labels)
    with pytest.raises(ConfigError, match="1 or 3 input channels"):
        load_dataset("photos:4", input_shape=(4, 32, 32))
