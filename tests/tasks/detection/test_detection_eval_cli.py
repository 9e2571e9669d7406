"""`infertune eval` on a detector: a tiny random-weight detector on a YOLO folder (structure,
units, reference == model gives fidelity 1 and no drop), unlabelled folders, class mismatches."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from infertune.cli import main
from test_predict_cli import DETECTOR


@pytest.fixture
def setup(tmp_path):
    cfg = tmp_path / "det.cfg"
    cfg.write_text(DETECTOR)
    root = tmp_path / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8)).save(
            root / "images" / f"{i}.png")
        (root / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.4 0.4\n")
    return cfg, root


def run(capsys, *args):
    code = main(["eval", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_detector_on_a_yolo_folder(setup, capsys):
    cfg, root = setup
    code, out, _ = run(capsys, str(cfg), "--data", str(root), "--reference", str(cfg),
                       "--batch-size", "3", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["task"] == "detection" and result["data"]["images"] == 4
    acc = result["accuracy"]
    assert 0 <= acc["map"] <= acc["ap50"] <= 1 and acc["map_ci"]["low"] <= acc["map_ci"]["high"]
    assert acc["map"] == pytest.approx(acc["map_ci"]["value"])  # one unit: fractions
    assert result["comparison"]["map_drop"]["value"] == 0.0
    shift = result["fidelity"]["score_shift"]
    assert shift["median_change"] == 0.0 and shift["lost_at_threshold"] == 0
    code, out, _ = run(capsys, str(cfg), "--data", str(root))  # the text rendering
    assert code == 0 and "mAP@[.5:.95]" in out


def test_unlabelled_folder_needs_a_reference(setup, capsys, tmp_path):
    cfg, root = setup
    code, _, err = run(capsys, str(cfg), "--data", str(root / "images"))
    assert code == 2 and "--reference" in err
    code, out, _ = run(capsys, str(cfg), "--data", str(root / "images"), "--reference",
                       str(cfg), "--json")
    result = json.loads(out)
    assert code == 0 and "accuracy" not in result and "comparison" not in result
    fidelity = result["fidelity"]["fidelity_map"]
    # against itself; below 1 only because this random model keeps ~460 boxes per image
    # above .25 and COCO counts 100 per image and class (tested exactly in the metric tests)
    assert 0.3 < fidelity["value"] <= 1 and fidelity["low"] <= fidelity["value"] <= fidelity["high"]


def test_more_classes_than_the_model(setup, capsys):
    cfg, root = setup
    (root / "labels" / "0.txt").write_text("2 0.5 0.5 0.4 0.4\n")
    code, _, err = run(capsys, str(cfg), "--data", str(root))
    assert code == 2 and "3 classes, the model has 2" in err
