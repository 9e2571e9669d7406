"""measure/e2e_detect.py with a fake session (numpy only): the boxes of the timed path are
detect()'s on the letterboxed image, the decode + NMS loop runs on copies of the real
outputs (a runtime that reuses its output buffer cannot change them), and the e2e block
has every part. No timing is asserted."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from infertune.data.sources import decode_image
from infertune.measure.e2e import run_e2e
from infertune.measure.e2e_detect import ImageToBoxes
from infertune.measure.timing import TimingConfig
from infertune.tasks.detection.heads import DetectionSpec, YoloHead
from infertune.tasks.detection.letterbox import letterbox
from infertune.tasks.detection.postprocess import detect

SPEC = DetectionSpec(heads=(YoloHead(layer=1, output="yolo_1", grid=(4, 4), classes=2,
                                     anchors=((4.0, 4.0), (12.0, 8.0))),), input_hw=(32, 32))
SIZES = [(20, 30), (32, 32), (41, 17)]  # (height, width) of the files


class SharedBufferSession:
    """Returns the same array object on every run, overwritten (as OpenVINO's shared
    outputs are): logits of a fixed pattern shifted by the input's mean."""

    def __init__(self):
        self.pattern = np.random.default_rng(0).standard_normal((1, 14, 4, 4)) * 4
        self.buffer = np.zeros((1, 14, 4, 4), np.float32)
        self.runs = 0

    def expected(self, x: np.ndarray) -> np.ndarray:
        return (self.pattern + 8 * (float(x.mean()) - 0.5)).astype(np.float32)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self.runs += 1
        self.buffer[...] = self.expected(x)
        return [self.buffer]


@pytest.fixture
def spec(tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for i, (h, w) in enumerate(SIZES):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return {"task": "detection", "images": paths, "preprocess": "letterbox",
            "shape": [3, 32, 32], "detection": SPEC.to_dict(), "class_names": ["cat", "dog"]}


def test_kept_outputs_are_copies_decoded_as_detect_does(spec):
    session = SharedBufferSession()
    fn = ImageToBoxes(session, spec)
    found = fn.keep_outputs()
    assert len(fn.kept) == len(found) == 3 and session.runs == 3
    for path, (outputs, hw), dets in zip(spec["images"], fn.kept, found):
        pixels = decode_image(path, 3)
        expected = session.expected(letterbox(pixels, SPEC.input_hw)[None])
        assert hw == pixels.shape[1:] and outputs[0] is not session.buffer
        np.testing.assert_array_equal(outputs[0], expected)  # not the last run's buffer
        (reference,) = detect([expected], SPEC, [hw])
        assert dets.to_list() == reference.to_list()
    assert any(len(d.scores) for d in found)  # the fixture's logits give boxes to compare
    # the decode + NMS loop cycles over the kept outputs, the preprocess loop over the files
    again = [fn.postprocess_next() for _ in range(4)]
    assert [d.to_list() for d in again] == [d.to_list() for d in found + found[:1]]
    assert fn.preprocess_next().shape == (1, 3, 32, 32) and session.runs == 3


def test_run_e2e_sends_a_detector_spec_to_the_detection_loop(spec):
    config = TimingConfig(warmup=0, min_runs=4, min_seconds=0)
    block = run_e2e(SharedBufferSession(), spec, config, model_p50_ms=0.5)
    assert block["task"] == "detection" and block["images"] == block["postprocess_images"] == 3
    for key in ("latency_ms", "preprocess_ms", "postprocess_ms"):
        assert block[key]["n"] == len(block[key]["samples"]) == 4
    assert block["added_p50_ms"] == pytest.approx(block["latency_ms"]["p50"] - 0.5)
    assert block["preprocess"] == {"name": "letterbox", "input_hw": [32, 32]}
    assert (block["score_threshold"], block["nms_threshold"]) == (0.25, 0.45)
    fn = ImageToBoxes(SharedBufferSession(), spec)
    assert block["first_detections"] == fn.keep_outputs()[0].to_list(["cat", "dog"])
    assert block["first_image"] == spec["images"][0]
