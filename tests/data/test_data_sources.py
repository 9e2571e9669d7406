"""Image folders and .npz files: class order, layouts, channel handling, and bad data."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from infertune.data import load_dataset
from infertune.errors import ConfigError, DataError

SHAPE = (3, 16, 16)


def _save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return path


def _solid(value, mode="RGB", size=(16, 16)):
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = np.empty((size[1], size[0], channels), dtype=np.uint8)
    arr[...] = value
    return arr[:, :, 0] if mode == "L" else arr


@pytest.fixture
def folder(tmp_path):
    """3 classes, every format: PNG/JPEG/BMP RGB, a grey PNG and an RGBA PNG."""
    root = tmp_path / "data"
    _save(root / "dog" / "a.png", _solid((200, 10, 30)))
    _save(root / "dog" / "b.jpg", _solid((120, 120, 120), size=(20, 16)))
    _save(root / "cat" / "c.bmp", _solid((1, 2, 3)))
    _save(root / "cat" / "grey.png", _solid(77, "L"))
    _save(root / "bird" / "rgba.png", _solid((10, 20, 30, 0), "RGBA"))
    (root / "bird" / "notes.txt").write_text("not an image")
    return root


def test_folder_sorted_class_order_and_formats(folder):
    ds = load_dataset(str(folder), input_shape=SHAPE, preprocess="none", skip_bad=True)
    assert ds.class_names == ["bird", "cat", "dog"]
    assert ds.x.shape == (4, 3, 16, 16)
    assert [name for name, _ in ds.skipped] == [str(folder / "dog" / "b.jpg")]
    by_name = {p.split("/")[-1]: i for i, p in enumerate(ds.ids)}
    assert set(by_name) == {"a.png", "c.bmp", "grey.png", "rgba.png"}  # b.jpg is 16×20
    assert ds.y[by_name["rgba.png"]] == 0 and ds.y[by_name["grey.png"]] == 1
    assert ds.y[by_name["a.png"]] == 2
    # RGBA: alpha dropped, colour kept; grey: repeated into 3 equal channels; "none": raw 0..255.
    np.testing.assert_array_equal(ds.x[by_name["rgba.png"]][:, 0, 0], [10, 20, 30])
    np.testing.assert_array_equal(ds.x[by_name["grey.png"]][:, 5, 5], [77, 77, 77])
    np.testing.assert_array_equal(ds.x[by_name["c.bmp"]][:, 3, 3], [1, 2, 3])


def test_folder_wrong_size_with_preset_none_is_named(folder):
    with pytest.raises(DataError) as err:
        load_dataset(str(folder), input_shape=SHAPE, preprocess="none")
    assert str(err.value).startswith(str(folder / "dog" / "b.jpg") + ": image is 16×20")


def test_folder_darknet_preset_all_formats(folder):
    ds = load_dataset(str(folder), input_shape=SHAPE, preprocess="darknet")
    assert ds.x.shape == (5, 3, 16, 16) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and sorted(ds.y.tolist()) == [0, 1, 1, 2, 2]
    jpg = [i for i, p in enumerate(ds.ids) if p.endswith("b.jpg")][0]
    assert np.abs(ds.x[jpg] - 120 / 255).max() < 3 / 255  # JPEG is lossy: a few levels
    assert "1 non-image files ignored" in ds.description
    assert "sorted sub-folder names" in ds.description


def test_folder_label_list_order(folder, tmp_path):
    labels = tmp_path / "imagenet.labels.list"
    labels.write_text("dog\ncat\nfish\nbird\n")
    ds = load_dataset(str(folder), input_shape=SHAPE, labels_file=labels)
    assert ds.class_names == ["dog", "cat", "fish", "bird"]
    names = {p.split("/")[-2] for p in ds.ids}
    assert names == {"dog", "cat", "bird"}
    for path, label in zip(ds.ids, ds.y):
        assert label == {"dog": 0, "cat": 1, "bird": 3}[path.split("/")[-2]]
    assert "line numbers of imagenet.labels.list" in ds.description


def test_folder_not_in_label_list_is_named(folder, tmp_path):
    labels = tmp_path / "labels.list"
    labels.write_text("dog\ncat\n")
    with pytest.raises(DataError) as err:
        load_dataset(str(folder), input_shape=SHAPE, labels_file=labels)
    assert str(err.value) == f"{folder / 'bird'}: class folder 'bird' is not in labels.list"
    ds = load_dataset(str(folder), input_shape=SHAPE, labels_file=labels, skip_bad=True)
    assert len(ds) == 4 and ds.skipped == [(str(folder / "bird" / "rgba.png"),
                                            "class folder 'bird' is not in labels.list")]


def test_folder_class_beyond_model_classes(folder, tmp_path):
    labels = tmp_path / "labels.list"
    labels.write_text("dog\ncat\nbird\n")
    with pytest.raises(DataError, match=r"bird: class 'bird' is line 3 of labels.list, out of "
                                        r"range for 2 classes"):
        load_dataset(str(folder), input_shape=SHAPE, labels_file=labels, num_classes=2)


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(3):
        _save(tmp_path / f"{i}.png", _solid(i * 50))
    ds = load_dataset(str(tmp_path), input_shape=SHAPE)
    assert ds.y is None and len(ds) == 3 and not ds.describe()["labelled"]


def test_undecodable_images_are_named_and_skippable(folder):
    bad = folder / "cat" / "x.jpg"
    bad.write_bytes(b"this is not a jpeg")
    good_png = (folder / "dog" / "a.png").read_bytes()
    truncated = folder / "dog" / "cut.png"
    truncated.write_bytes(good_png[: len(good_png) // 2])
    with pytest.raises(DataError) as err:
        load_dataset(str(folder), input_shape=SHAPE)
    message = str(err.value)
    assert message.startswith(f"{bad}: cannot decode image (") and "\n" not in message
    ds = load_dataset(str(folder), input_shape=SHAPE, skip_bad=True)
    assert len(ds) == 5
    assert sorted(name for name, _ in ds.skipped) == sorted([str(bad), str(truncated)])
    assert all(reason.startswith(name + ": cannot decode image") for name, reason in ds.skipped)
    assert ds.describe()["skipped"] == 2


def test_empty_or_missing_paths(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load_dataset(str(tmp_path / "nope"), input_shape=SHAPE)
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        load_dataset(str(tmp_path / "empty"), input_shape=SHAPE)
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(DataError, match="not a dataset"):
        load_dataset(str(tmp_path / "a.csv"), input_shape=SHAPE)


# ----------------------------------------------------------------------------- npz

def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npz_layouts_and_dtypes(tmp_path, layout, dtype):
    rng = np.random.default_rng(0)
    nchw = rng.integers(0, 256, size=(6, 3, 16, 16)).astype(np.uint8)
    x = nchw if layout == "NCHW" else nchw.transpose(0, 2, 3, 1)
    x = x.astype(np.float32) / 255 if dtype == np.float32 else x
    path = _npz(tmp_path, x=x, y=np.arange(6) % 3)
    ds = load_dataset(str(path), input_shape=SHAPE, preprocess="darknet")
    # Square and already 16×16: darknet is then just bytes/255 (floats taken as scaled).
    np.testing.assert_allclose(ds.x, nchw / 255.0, atol=1e-6)
    assert ds.y.tolist() == [0, 1, 2, 0, 1, 2] and ds.class_names == ["0", "1", "2"]
    assert layout in ds.description


def test_npz_grey_becomes_three_channels_and_names(tmp_path):
    x = np.arange(2 * 16 * 16, dtype=np.uint8).reshape(2, 16, 16)
    path = _npz(tmp_path, x=x, y=np.array([1, 0]), class_names=np.array(["a", "b"]))
    ds = load_dataset(str(path), input_shape=SHAPE, preprocess="none")
    assert ds.x.shape == (2, 3, 16, 16) and ds.class_names == ["a", "b"]
    np.testing.assert_array_equal(ds.x[:, 0], ds.x[:, 2])
    np.testing.assert_array_equal(ds.x[:, 1], x)


def test_npz_wrong_channel_count(tmp_path):
    path = _npz(tmp_path, x=np.zeros((4, 2, 16, 16), np.uint8), y=np.zeros(4, int))
    with pytest.raises(DataError, match=r"d.npz: x has 2 channel\(s\) \(read as NCHW\) but the "
                                        r"model takes 3"):
        load_dataset(str(path), input_shape=SHAPE)


def test_npz_label_out_of_range_and_nan_messages(tmp_path):
    x = np.zeros((20, 3, 16, 16), np.float32)
    y = np.arange(20) % 10
    y[17] = 12
    path = _npz(tmp_path, x=x, y=y)
    with pytest.raises(DataError) as err:
        load_dataset(str(path), input_shape=SHAPE, num_classes=10)
    assert str(err.value) == f"{path}: y[17]=12 is out of range for 10 classes"
    y[17] = 7
    x[3, 1, 2, 2] = np.nan
    path = _npz(tmp_path, x=x, y=y)
    with pytest.raises(DataError) as err:
        load_dataset(str(path), input_shape=SHAPE, num_classes=10)
    assert str(err.value) == f"{path}: x contains NaN at sample 3"


def test_npz_skip_bad_counts(tmp_path):
    x = np.zeros((20, 3, 16, 16), np.float32)
    x[3, 0, 0, 0], x[5, 0, 0, 0] = np.nan, np.inf
    y = np.arange(20) % 10
    y[17] = 12
    path = _npz(tmp_path, x=x, y=y)
    ds = load_dataset(str(path), input_shape=SHAPE, num_classes=10, skip_bad=True)
    assert len(ds) == 17
    assert ds.skipped == [(f"{path}[3]", "x contains NaN at sample 3"),
                          (f"{path}[5]", "x contains inf at sample 5"),
                          (f"{path}[17]", "y[17]=12 is out of range for 10 classes")]
    assert f"{path}[3]" not in ds.ids and ds.describe()["skipped"] == 3


@pytest.mark.parametrize("arrays, message", [
    ({"z": np.zeros(3)}, "no array named 'x' (found: z)"),
    ({"x": np.zeros((2, 3, 4, 4)), "y": np.array([0.0, 1.5])}, "y[1]=1.5 is not a class index"),
    ({"x": np.zeros((2, 3, 4, 4)), "y": np.array([0, 1, 2])}, "x has 2 samples but y has shape (3,)"),
    ({"x": np.zeros((2, 3, 4, 4)), "y": np.array([0, -1])}, "y[1]=-1 is negative"),
    ({"x": np.zeros((2, 4, 4, 3), np.int16) - 1}, "x is int16 with values outside 0..255"),
])
def test_npz_bad_files(tmp_path, arrays, message):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DataError) as err:
        load_dataset(str(path), input_shape=(3, 4, 4), preprocess="none")
    assert str(err.value) == f"{path}: {message}"


def test_npz_pickles_refused_and_garbage(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, x=np.array([object(), 1], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_dataset(str(path), input_shape=SHAPE)
    junk = tmp_path / "j.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"j.npz: cannot read .npz"):
        load_dataset(str(junk), input_shape=SHAPE)


def test_memory_guard_suggests_limit(tmp_path):
    path = _npz(tmp_path, x=np.zeros((10, 3, 16, 16), np.uint8))
    with pytest.raises(ConfigError, match=r"pass limit=3 or less"):
        load_dataset(str(path), input_shape=SHAPE, max_bytes=3 * 4 * 3 * 16 * 16)
    assert len(load_dataset(str(path), input_shape=SHAPE, limit=3, max_bytes=3 * 4 * 768)) == 3
