"""The letterbox grey reaches every place that builds network inputs from image files: a
detector whose spec pads with Ultralytics' 114/255 gets that grey in optimize's letterboxed
calibration/evaluation arrays (`store.letterboxed`), Darknet's .5 by default."""
from __future__ import annotations

import numpy as np
from PIL import Image

from infertune.tasks.detection.records import DetectionSample
from infertune.tasks.detection.store import letterboxed


def test_letterboxed_pads_with_the_given_grey(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((10, 20, 3), 255, np.uint8)).save(path)  # h 10, w 20: bars top/bottom
    sample = DetectionSample(path, (10, 20), np.zeros((0, 4)), np.zeros(0, int), 0)
    for pad in (114 / 255, 0.5):
        x = letterboxed([sample], (16, 16), 3, pad) if pad != 0.5 else \
            letterboxed([sample], (16, 16), 3)
        assert x.shape == (1, 3, 16, 16)
        assert np.allclose(x[0, :, 0, :], pad) and np.allclose(x[0, :, -1, :], pad)
        assert np.allclose(x[0, :, 8, :], 1.0)  # the image's white row in the middle
