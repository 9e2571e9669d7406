"""Preprocessing presets against computations written independently here, on real photos
shipped with scikit-image (chelsea the cat 300×451, coffee 400×600)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from infertune.data import PRESETS, Preprocess, load_dataset, resolve_preprocess
from infertune.data.preprocess import darknet_resize
from infertune.errors import ConfigError, DataError


def _align_corners_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Interpolation matrix W (n_out × n_in) of bilinear align-corners, in float64."""
    w = np.zeros((n_out, n_in))
    for o in range(n_out):
        pos = o * (n_in - 1) / (n_out - 1) if n_out > 1 else n_in - 1
        i0 = min(int(np.floor(pos)), n_in - 2)
        frac = pos - i0
        w[o, i0] += 1 - frac
        w[o, i0 + 1] += frac
    return w


def _reference_darknet(img: np.ndarray, size: int) -> np.ndarray:
    """Darknet `classifier valid`: central square, align-corners bilinear, bytes/255."""
    h, w, _ = img.shape
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    square = img[top:top + m, left:left + m].astype(np.float64) / 255.0
    rows, cols = _align_corners_matrix(m, size), _align_corners_matrix(m, size)
    return np.stack([rows @ square[:, :, c] @ cols.T for c in range(3)])


@pytest.fixture(scope="module")
def cat_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cat_data")
    (root / "cat").mkdir()
    Image.fromarray(skimage_data.chelsea()).save(root / "cat" / "chelsea.png")
    return root


# Positions are computed in float32 as Darknet does (error ≤ ~300·6e-8 ≈ 2e-5 pixel), and
# values are in 0..1 with neighbour steps ≤ 1, so 5e-5 bounds the difference to float64.
@pytest.mark.parametrize("size", [64, 448])
def test_darknet_preset_on_the_cat_photo(cat_folder, size):
    ds = load_dataset(str(cat_folder), input_shape=(3, size, size), preprocess="darknet")
    expected = _reference_darknet(skimage_data.chelsea(), size)
    assert ds.x.shape == (1, 3, size, size)
    np.testing.assert_allclose(ds.x[0], expected, atol=5e-5, rtol=0)
    assert ds.preprocess.to_dict()["name"] == "darknet"


def test_darknet_preset_same_from_npz_nhwc(tmp_path):
    cat = skimage_data.chelsea()
    np.savez(tmp_path / "cat.npz", x=cat[None], y=np.array([0]))
    ds = load_dataset(str(tmp_path / "cat.npz"), input_shape=(3, 96, 96))
    np.testing.assert_allclose(ds.x[0], _reference_darknet(cat, 96), atol=5e-5, rtol=0)


def test_darknet_resize_last_row_is_last_input_row():
    # 8 → 448 rows: float32 puts 447·(7/447) just below 7, where Darknet's C code would
    # drop the last row's second tap; we keep the last input row (documented choice).
    x = np.arange(8 * 3, dtype=np.float32).reshape(1, 8, 3) + 1
    out = darknet_resize(x, 448, 5)
    np.testing.assert_allclose(out[0, -1], np.linspace(x[0, -1, 0], x[0, -1, -1], 5), rtol=1e-6)
    np.testing.assert_allclose(out[0, 0], np.linspace(x[0, 0, 0], x[0, 0, -1], 5), rtol=1e-6)


def test_imagenet_preset_on_coffee_against_pillow_uint8(tmp_path):
    coffee = skimage_data.coffee()  # 400×600
    ds = _npz_dataset(tmp_path, coffee[None], (3, 224, 224), "imagenet")
    # torchvision: Resize(256) → 256×384, CenterCrop(224) → top 16, left 80.
    resized = np.asarray(Image.fromarray(coffee).resize((384, 256), Image.Resampling.BILINEAR))
    crop = resized[16:240, 80:304].astype(np.float64) / 255.0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((crop - mean) / std).transpose(2, 0, 1)
    # Pillow's uint8 path rounds to whole levels (±0.5/255) with fixed-point weights
    # (another ~±1/255); divided by std ≥ 0.224 that is ≤ 1.5/255/0.224 ≈ 0.027.
    np.testing.assert_allclose(ds.x[0], expected, atol=0.027, rtol=0)
    assert abs(float((ds.x[0] - expected).mean())) < 2e-3


def test_imagenet_mean_std_exact_on_a_constant_image(tmp_path):
    x = np.full((1, 3, 300, 200), 0.5, dtype=np.float32)
    ds = _npz_dataset(tmp_path, x, (3, 224, 224), "imagenet")
    expected = (0.5 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(ds.x[0].reshape(3, -1).min(axis=1), expected, atol=1e-6)
    np.testing.assert_allclose(ds.x[0].reshape(3, -1).max(axis=1), expected, atol=1e-6)


def _npz_dataset(folder, x, shape, preprocess):
    np.savez(folder / "d.npz", x=x)
    return load_dataset(str(folder / "d.npz"), input_shape=shape, preprocess=preprocess)


def test_none_preset_passes_values_through_and_checks_size(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
    ds = _npz_dataset(tmp_path, x, (3, 8, 8), "none")
    np.testing.assert_array_equal(ds.x, x)
    with pytest.raises(DataError, match=r"image is 8×8 after preprocessing 'none'; the model "
                                        r"takes 9×9"):
        _npz_dataset(tmp_path, x, (3, 9, 9), "none")


def test_explicit_overrides_and_record(tmp_path):
    pre = resolve_preprocess("imagenet,mean=0.5/0.5/0.5,std=0.25,shorter=40")
    assert pre.name == "imagenet+custom" and pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.25,)
    assert pre.shorter == 40 and pre.center_crop and pre.resize == "shorter"
    x = np.full((1, 3, 50, 60), 0.75, dtype=np.float32)
    ds = _npz_dataset(tmp_path, x, (3, 32, 32), pre)
    np.testing.assert_allclose(ds.x, (0.75 - 0.5) / 0.25, atol=1e-6)
    json.dumps(pre.to_dict())
    assert ds.describe()["preprocess"]["mean"] == [0.5, 0.5, 0.5]
    with pytest.raises(dataclasses.FrozenInstanceError):
        pre.mean = None  # type: ignore[misc]


@pytest.mark.parametrize("spec", ["bogus", "imagenet,bogus=1", "darknet,mean=a/b", "darknet,resize=zoom"])
def test_bad_preprocess_specs(spec):
    with pytest.raises(ConfigError):
        resolve_preprocess(spec)


def test_presets_recorded_fields(tmp_path):
    assert set(PRESETS) == {"darknet", "imagenet", "efficientnet_lite", "none"}
    assert PRESETS["darknet"].center_square and PRESETS["darknet"].interpolation == "darknet"
    assert PRESETS["darknet"].mean is None and PRESETS["darknet"].unit_scale
    assert PRESETS["none"].resize == "none" and not PRESETS["none"].unit_scale
    assert resolve_preprocess(PRESETS["imagenet"]) is PRESETS["imagenet"]
    with pytest.raises(ConfigError, match="mean has 3 values"):
        _npz_dataset(tmp_path, np.zeros((1, 1, 8, 8), np.float32), (1, 8, 8),
                     Preprocess(resize="none", mean=(0.1, 0.2, 0.3)))
