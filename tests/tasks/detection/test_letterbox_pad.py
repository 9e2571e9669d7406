"""The network input of a detector from image files, as its DetectionSpec says: the
letterbox grey reaches every place that builds inputs (a spec padding with Ultralytics'
114/255 gets that grey in optimize's calibration/evaluation arrays, `store.network_inputs`;
Darknet's .5 by default), and a spec without letterbox (an AlexeyAB cfg, `letter_box=0`)
gets the whole image resized, whose boxes `correct_boxes` maps back without offsets."""
from __future__ import annotations

import numpy as np
from PIL import Image

from infertune.data.preprocess import darknet_resize
from infertune.load import load_model
from infertune.tasks.detection.decode import correct_boxes
from infertune.tasks.detection.heads import DetectionSpec, YoloHead
from infertune.tasks.detection.records import DetectionSample
from infertune.tasks.detection.store import network_inputs

from detector_cfgs import two_head_detector


def _spec(**kw) -> DetectionSpec:
    head = YoloHead(layer=0, output="out0", grid=(2, 2), classes=2, anchors=((10.0, 10.0),))
    return DetectionSpec(heads=(head,), input_hw=(16, 16), **kw)


def _wide(tmp_path) -> DetectionSample:
    path = tmp_path / "wide.png"
    pixels = np.full((10, 20, 3), 255, np.uint8)
    pixels[:, :10] = 0                       # left half black, right half white
    Image.fromarray(pixels).save(path)       # h 10, w 20: letterbox bars top/bottom
    return DetectionSample(path, (10, 20), np.zeros((0, 4)), np.zeros(0, int), 0)


def test_letterboxed_inputs_pad_with_the_given_grey(tmp_path):
    sample = _wide(tmp_path)
    for pad in (114 / 255, 0.5):
        x = network_inputs([sample], _spec(pad_value=pad), 3)
        assert x.shape == (1, 3, 16, 16)
        assert np.allclose(x[0, :, 0, :], pad) and np.allclose(x[0, :, -1, :], pad)
        assert np.allclose(x[0, :, 8, -1], 1.0) and np.allclose(x[0, :, 8, 0], 0.0)


def test_stretched_inputs_fill_the_network_and_boxes_map_back(tmp_path):
    x = network_inputs([_wide(tmp_path)], _spec(letterbox=False), 3)
    pixels = np.asarray(Image.open(tmp_path / "wide.png"), np.float32).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(x[0], darknet_resize(pixels, 16, 16), atol=1e-6)
    assert np.allclose(x[0, :, :, 0], 0.0) and np.allclose(x[0, :, :, -1], 1.0)  # no bars
    # stretch keeps relative coordinates: a box is the same fraction of net and image
    box = np.array([[0.25, 0.5, 0.5, 0.25]])
    np.testing.assert_allclose(correct_boxes(box, (10, 20), (16, 16), letterbox=False), box)


def _cfg(tmp_path, text: str, name: str):
    path = tmp_path / name
    path.write_text(text)
    return load_model(str(path))


def test_a_cfg_says_letterbox_or_resize(tmp_path):
    """pjreddie keys only: letterbox; letter_box in [net] decides; AlexeyAB keys without
    it: resize (AlexeyAB's darknet defaults to letter_box=0)."""
    plain = two_head_detector()
    assert _cfg(tmp_path, plain, "pj.cfg").meta["detection"].letterbox is True
    with_key = plain.replace("channels=3", "channels=3\nletter_box=0", 1)
    handle = _cfg(tmp_path, with_key, "off.cfg")
    assert handle.meta["detection"].letterbox is False
    assert "letter_box=0" in handle.meta["detection_input"]
    ab = plain.replace("classes=2\n", "classes=2\nscale_x_y=1.05\n")
    handle = _cfg(tmp_path, ab, "ab.cfg")
    assert handle.meta["detection"].letterbox is False
    assert "[yolo] scale_x_y" in handle.meta["detection_input"]
    ab_on = ab.replace("channels=3", "channels=3\nletter_box=1", 1)
    assert _cfg(tmp_path, ab_on, "ab_on.cfg").meta["detection"].letterbox is True
