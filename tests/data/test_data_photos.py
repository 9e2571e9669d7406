"""The real photos shipped by installed packages (infertune.data.photos)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from infertune.data import photos
from infertune.errors import DataError


def test_real_photos_are_the_fixed_list_in_order():
    found = photos.real_photos()
    names = [p.name for p in found]
    # the first three are what the zoo's prediction tests rely on
    assert names[:3] == ["skimage/chelsea", "skimage/coffee", "skimage/rocket"]
    assert {"sklearn/china", "sklearn/flower", "matplotlib/grace_hopper"} <= set(names)
    assert names == [k.name for k in photos._KNOWN if k.name in names]
    assert photos.real_photos() == found  # deterministic


def test_every_photo_states_package_and_licence():
    for photo in photos.real_photos():
        assert photo.package in ("scikit-image", "scikit-learn", "matplotlib")
        assert photo.licence and ("CC" in photo.licence or "public domain" in photo.licence
                                  or "no known copyright" in photo.licence)


def test_pixels_are_uint8_rgb_and_grey_is_repeated():
    by_name = {p.name: p for p in photos.real_photos()}
    chelsea = by_name["skimage/chelsea"].pixels()
    assert chelsea.dtype == np.uint8 and chelsea.shape == (300, 451, 3)
    camera = by_name["skimage/camera"].pixels()  # a grey PNG
    assert camera.shape == (512, 512, 3)
    assert np.array_equal(camera[..., 0], camera[..., 2])
    assert not np.array_equal(chelsea[..., 0], chelsea[..., 2])


def test_missing_package_is_a_one_line_error(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def no_skimage(name, *args):
        return None if name == "skimage" else real_find_spec(name, *args)

    monkeypatch.setattr(photos.importlib.util, "find_spec", no_skimage)
    with pytest.raises(DataError, match=r"needs scikit-image: pip install scikit-image") as info:
        photos.real_photos()
    assert "\n" not in str(info.value)


def test_a_photo_missing_from_disk_is_left_out(monkeypatch, tmp_path):
    real_folder = photos.package_folder

    def folder(package):
        return tmp_path if package == "matplotlib" else real_folder(package)

    monkeypatch.setattr(photos, "package_folder", folder)
    names = [p.name for p in photos.real_photos()]
    assert "matplotlib/grace_hopper" not in names and "skimage/chelsea" in names
