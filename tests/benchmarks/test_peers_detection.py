"""benchmarks/peers_detection.py: its pure helpers (cases, per-round speed ratios, the quality
block in points, the output-order check, the table's wording). No model is built here."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers_detection as pd

from infertune.tasks.detection.records import DetectionSample, Detections
from infertune.tasks.detection.scoring import score_detections


def test_cases_are_chosen_in_order_and_an_unknown_one_is_named():
    assert [c.name for c in pd.chosen_cases("ref-detector, yolov3-tiny")] == \
        ["ref-detector", "yolov3-tiny"]
    with pytest.raises(ValueError, match="unknown case.*nope; the cases are yolov3-tiny, "
                                         "ref-detector"):
        pd.chosen_cases("yolov3-tiny,nope")


def _row(name: str, rounds: list[float]) -> dict:
    return {"pipeline": name, "p50_ms": float(np.median(rounds)), "p50_ms_by_round": rounds}


def test_speed_ratios_are_medians_of_per_round_ratios():
    rows = [_row("torch eager fp32", [100.0, 120.0, 90.0]),
            _row("openvino nncf int8", [20.0, 30.0, 30.0]),
            _row("onnxruntime fp32", [50.0, 60.0, 45.0]),
            _row(pd.INFERTUNE, [10.0, 20.0, 15.0])]  # fastest, but not a peer
    assert pd.speed_ratios(rows) == "openvino nncf int8"
    pick = rows[-1]
    assert pick["vs_eager"]["median"] == pytest.approx(6.0)  # 100/10, 120/20, 90/15
    assert (pick["vs_eager"]["min"], pick["vs_eager"]["max"]) == pytest.approx((6.0, 10.0))
    assert pick["vs_best_peer"]["median"] == pytest.approx(2.0)  # 20/10, 30/20, 30/15
    assert rows[0]["vs_eager"]["median"] == 1.0


def _sample(i: int, boxes, classes) -> DetectionSample:
    return DetectionSample(Path(f"{i}.png"), (100, 100), np.array(boxes, float),
                           np.array(classes), i)


def test_quality_block_is_scoring_in_points():
    truth = [_sample(0, [[10, 10, 50, 50]], [0]), _sample(1, [[20, 20, 60, 80]], [1])]
    perfect = [Detections(s.boxes, [0.9], s.classes, s.image_hw) for s in truth]
    shifted = [Detections(s.boxes + 6, [0.2], s.classes, s.image_hw) for s in truth]
    scores = score_detections(truth, perfect, shifted, 2, threshold=0.25, full=True)
    block = pd.quality_block(scores)
    assert block["metric"] == "map" and block["images"] == 2
    for key in ("map", "ap50", "ap75"):
        assert block[key]["value"] == pytest.approx(100 * scores.aps[key].value)
    assert block["drop"]["value"] == pytest.approx(100 - block["map"]["value"])
    assert block["ap50"]["value"] == pytest.approx(100.0)  # the shifted boxes still overlap
    shift = block["score_shift"]
    assert shift["matched"] == 2 and shift["median_change"] == pytest.approx(-0.7)
    assert shift["lost_at_threshold"] == 2  # 0.9 → 0.2 crosses the deployed .25


class _Session:
    def __init__(self, grids):
        self.grids = grids

    def run(self, x):
        return [np.zeros((len(x), 18, *g), np.float32) for g in self.grids]


def test_outputs_in_another_order_than_the_heads_are_refused():
    heads = [type("Head", (), {"grid": (13, 13)})(), type("Head", (), {"grid": (26, 26)})()]
    x = np.zeros((1, 3, 8, 8), np.float32)
    assert len(pd.checked_run(_Session([(13, 13), (26, 26)]), heads)(x)) == 2
    with pytest.raises(ValueError, match=r"grids \[\(26, 26\), \(13, 13\)\]"):
        pd.checked_run(_Session([(26, 26), (13, 13)]), heads)(x)


def _case(labelled: bool) -> dict:
    quality = {"map": {"value": 41.24, "low": 39.0, "high": 43.46},
               "ap50": {"value": 70.0, "low": 68.0, "high": 72.0},
               "drop": {"value": 0.5, "low": -0.26, "high": 1.24},
               "score_shift": {"median_change": -0.012, "lost_at_threshold": 3, "matched": 90}}
    row = {"pipeline": pd.INFERTUNE, "runtime": "openvino", "p50_ms": 12.0, "quality": quality,
           "vs_eager": {"median": 3.2, "min": 3.0, "max": 3.4}, "boxes_above_threshold": 88}
    return {"model": "m", "macs": 2e9, "input_shape": [3, 128, 128], "best_peer": "x",
            "calibration": {"data": "16 images"}, "rows": [row],
            "scoring": {"labelled": labelled, "reference": "torch eager fp32",
                        "score_threshold": 0.25, "evaluation": "e", "truth_boxes": 95}}


def test_the_table_names_fidelity_map_as_such():
    fid = "\n".join(pd.case_markdown(_case(labelled=False)))
    assert "| fidelity mAP [95%] | fidelity AP50 [95%] |" in fid
    assert "own 95 detections above 0.25 (no labels" in fid
    lab = "\n".join(pd.case_markdown(_case(labelled=True)))
    assert "| mAP [95%] | AP50 [95%] |" in lab and "on the 95 labelled boxes" in lab
    row = next(line for line in lab.splitlines() if line.startswith(f"| {pd.INFERTUNE}"))
    assert "| 41.2 [39.0, 43.5] | 70.0 [68.0, 72.0] | +0.5 [-0.3, +1.2] | 88 |" in row
    assert "| 3.2 [3, 3.4] |" in row and "-0.012, 3/90" in row
