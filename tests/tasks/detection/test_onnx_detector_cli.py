"""ONNX detectors through the commands that take a model, as Darknet detectors go: `eval` on
a COCO JSON (the Ultralytics-style tensor of test_onnx_detector: hand-computed mAP 1.0) and
on a YOLO folder (the Darknet YOLO exported to ONNX: the same mAP as its Darknet original),
`bench --e2e` (its boxes are predict's) and one small `optimize` with the anchors as options
(the workers rebuild the spec from the run directory; config.yaml records the options)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from test_onnx_detector import (EXPECTED, ONNX_OPTS, darknet_onnx, images,  # noqa: F401
                                ultralytics_onnx)
from test_optimize_detector import FAST as OPTIMIZE_FAST
from test_optimize_detector import write_images

from infertune.cli import main

pytestmark = pytest.mark.e2e


def cli_json(capsys, *argv):
    code = main([*map(str, argv), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_eval_on_a_coco_json_scores_the_hand_computed_boxes(ultralytics_onnx, images, capsys,
                                                            tmp_path):
    _, wide = images
    (tmp_path / "images").mkdir()
    Image.open(wide).save(tmp_path / "images" / "wide.png")
    truth = [{"id": k, "image_id": 1, "category_id": c + 1, "iscrowd": 0,
              "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])}
             for k, (_, c, _, b) in enumerate(EXPECTED, 1)]
    doc = {"images": [{"id": 1, "file_name": "wide.png", "width": 128, "height": 64}],
           "annotations": truth,
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    (tmp_path / "val.json").write_text(json.dumps(doc))
    result = cli_json(capsys, "eval", ultralytics_onnx, "--data", tmp_path / "val.json")
    assert result["task"] == "detection" and result["data"]["images"] == 1
    # every true box is found above every false one (the .1/.2/.05 scores left at mAP's
    # .005 threshold), at IoU 1: AP 1 for both classes at every IoU threshold
    assert result["accuracy"]["map"] == pytest.approx(1.0)


def test_eval_on_a_yolo_folder_equals_the_darknet_original(darknet_onnx, capsys, tmp_path):
    source, onnx_path = darknet_onnx
    root = tmp_path / "yolo"
    write_images(root / "images", 6)
    (root / "labels").mkdir()
    for i in range(6):
        (root / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.4 0.4\n")
    got = cli_json(capsys, "eval", onnx_path, *ONNX_OPTS, "--data", root,
                   "--reference", source)
    want = cli_json(capsys, "eval", source, "--data", root)
    assert got["accuracy"]["map"] == pytest.approx(want["accuracy"]["map"], abs=1e-9)
    # against its Darknet original: the same boxes, so fidelity 1 and no drop
    assert got["fidelity"]["fidelity_map"]["value"] == pytest.approx(1.0)
    assert got["fidelity"]["score_shift"]["lost_at_threshold"] == 0
    assert got["comparison"]["map_drop"]["value"] == pytest.approx(0.0, abs=1e-9)


def test_bench_e2e_on_an_onnx_detector_gives_predicts_boxes(darknet_onnx, images, capsys):
    _, onnx_path = darknet_onnx
    paths, _ = images
    result = cli_json(capsys, "bench", onnx_path, *ONNX_OPTS, "--runtime", "onnxruntime",
                      "--e2e", paths[0], "--rounds", "1", "--min-runs", "3",
                      "--min-seconds", "0", "--threads", "1")
    assert result["e2e"]["task"] == "detection" and result["e2e"]["input_hw"] == [64, 64]
    (row,) = result["results"]
    assert row["status"] == "ok", row["reason"]
    predicted = cli_json(capsys, "predict", onnx_path, *ONNX_OPTS, paths[0])
    boxes = predicted["images"][0]["detections"]
    assert boxes and row["e2e"]["first_detections"] == boxes  # same runtime, same code


@pytest.mark.slow
def test_optimize_an_onnx_detector_with_its_anchors(darknet_onnx, capsys, tmp_path):
    _, onnx_path = darknet_onnx
    root = tmp_path / "yolo"
    write_images(root / "images", 24)
    (root / "labels").mkdir()
    for i in range(24):
        (root / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.4 0.4\n")
    out = tmp_path / "run"
    fast = [v if v != "30" else "16" for v in OPTIMIZE_FAST]  # --eval-size 16
    code = main(["optimize", str(onnx_path), *ONNX_OPTS, "--data", str(root), *fast,
                 "--passes", "fold_bn", "--max-drop", "1", "--out", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert rep["data"]["metric"] == rep["budget"]["metric"] == "map"
    base = next(c for c in rep["candidates"] if c["id"] == rep["baseline_id"])
    assert base["detection"]["basis"] == "labels" and base["drop"]["value"] == 0.0
    judged = [c for c in rep["candidates"] if c["drop"] is not None and c is not base]
    assert judged and all(c["drop"]["metric"] == "map" for c in judged)
    # the workers decoded with the spec the run directory keeps, anchors included
    saved = json.loads((out / "data" / "detection.json").read_text())["spec"]
    assert [h["anchors"] for h in saved["heads"]] == [[[30, 40], [50, 44], [60, 60]],
                                                      [[6, 8], [12, 10], [20, 24]]]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["load"]["anchors"] == ONNX_OPTS[1] and config["load"]["num_classes"] == 2
    assert np.isfinite(base["drop"]["candidate_pct"])
