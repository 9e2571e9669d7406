"""`infertune predict` on tiny models built here (random weights): the JSON's structure and
invariants for a detector and a classifier, --draw, and bad input as one-line exit-2 errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from infertune.cli import main
from tiny_models import TINY_CFG

DETECTOR = """[net]
width=32
height=32
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=14
size=1
stride=1
pad=1
activation=linear
[yolo]
mask=0,1
anchors=4,4, 12,8
classes=2
num=2
"""


@pytest.fixture
def files(tmp_path):
    det = tmp_path / "det.cfg"
    det.write_text(DETECTOR)
    cls = tmp_path / "cls.cfg"
    cls.write_text(TINY_CFG)
    rng = np.random.default_rng(0)
    image = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)).save(image)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    return det, cls, image, names


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["predict", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_detector_boxes_json_and_draw(files, capsys, tmp_path):
    det, _, image, names = files
    drawn = tmp_path / "boxes.png"
    code, out, _ = run(capsys, str(det), str(image), "--thresh", "0.01", "--labels", str(names),
                       "--draw", str(drawn), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["task"] == "detection" and result["drawn"] == [str(drawn)]
    (row,) = result["images"]
    assert row["size"] == [40, 70] and row["detections"]
    scores = [d["score"] for d in row["detections"]]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.01
    for d in row["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 <= x2 <= 70 and 0 <= y1 <= y2 <= 40  # pixels of the original image
        assert d["class"] == ["cat", "dog"][d["class_id"]]
    with Image.open(drawn) as img:
        assert img.size == (70, 40)


def test_classifier_top_k(files, capsys):
    _, cls, image, _ = files
    code, out, _ = run(capsys, str(cls), str(image), str(image), "--top", "3", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["task"] == "classification" and len(result["images"]) == 2
    top = result["images"][0]["top"]
    probs = [t["probability"] for t in top]
    assert len(top) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    code, out, _ = run(capsys, str(cls), str(image))  # text rendering
    assert code == 0 and "1. " in out and "5. " in out


@pytest.mark.parametrize("case", ["missing", "folder", "corrupt", "draw-classifier", "top"])
def test_bad_input_is_one_line_exit_2(files, capsys, tmp_path, case):
    det, cls, image, _ = files
    corrupt = tmp_path / "bad.png"
    corrupt.write_bytes(b"\x89PNG not really")
    args = {"missing": [str(det), str(tmp_path / "none.png")],
            "folder": [str(det), str(tmp_path)],
            "corrupt": [str(det), str(corrupt)],
            "draw-classifier": [str(cls), str(image), "--draw", str(tmp_path / "x.png")],
            "top": [str(cls), str(image), "--top", "0"]}[case]
    code, _, err = run(capsys, *args)
    assert code == 2 and err.startswith("infertune: error: ") and err.count("\n") == 1


def test_onnx_detector_without_heads_is_a_clear_error(files, capsys, tmp_path):
    det, _, image, _ = files
    onnx_file = tmp_path / "det.onnx"
    assert main(["export", str(det), "--out", str(onnx_file)]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, str(onnx_file), str(image))
    assert code == 2 and "not class scores" in err and err.count("\n") == 1
