"""`infertune optimize` on a detector: the metric is mAP (on a YOLO folder's boxes) or fidelity
mAP (on plain images), the drop is a paired bootstrap interval over images in mAP points,
and every within-budget decision, the pick's included, is BudgetRule's on that interval.

A two-head detector with random weights built here (64×64, two classes), a few dozen
images, ONNX Runtime only and few passes: the runs check the flow and the decisions, not
speed or accuracy (random weights make near-uniform boxes)."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from detector_cfgs import two_head_detector

from infertune.cli import main
from infertune.metrics.budget import BudgetRule
from infertune.search.candidate import Candidate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST = ["--runtimes", "onnxruntime", "--eval-size", "30", "--screen-size", "8",
        "--calib-size", "8", "--min-runs", "5", "--min-seconds", "0.1", "--final-rounds", "1",
        "--threads", "1"]


def write_images(folder, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (48 + i % 5, 64, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    (root / "det.cfg").write_text(two_head_detector())
    write_images(root / "yolo" / "images", 40)
    (root / "yolo" / "labels").mkdir()
    for i in range(40):
        (root / "yolo" / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.4 0.4\n")
    out = root / "run"
    assert main(["optimize", str(root / "det.cfg"), "--data", str(root / "yolo"), *FAST,
                 "--passes", "fold_bn,int8_static", "--max-drop", "1", "--out", str(out),
                 "--json"]) == 0
    return out, json.loads((out / "report.json").read_text())


def _judged(rep):
    return [c for c in rep["candidates"] if c["drop"] is not None]


def test_the_metric_is_map_on_the_boxes_and_the_budget_is_in_map_points(labelled):
    _, rep = labelled
    assert rep["data"]["metric"] == rep["budget"]["metric"] == "map"
    assert rep["data"]["labelled"] is True and rep["data"]["eval_n"] == 30
    assert rep["budget"]["budget_points"] == 1.0
    assert "bootstrap over images" in rep["budget"]["rule"]
    base = next(c for c in rep["candidates"] if c["id"] == rep["baseline_id"])
    assert base["drop"]["metric"] == "map" and base["drop"]["value"] == 0.0
    assert base["detection"]["basis"] == "labels"
    # the baseline's mAP, in points, is the one every candidate's drop is taken from
    for c in _judged(rep):
        if c["fidelity_level"] == "full":
            assert c["drop"]["baseline_pct"] == pytest.approx(base["drop"]["candidate_pct"])


def test_every_decision_is_the_budget_rule_on_the_map_interval(labelled):
    _, rep = labelled
    rule = BudgetRule(rep["budget"]["budget_points"], rep["budget"]["confidence"])
    judged = _judged(rep)
    assert any(c["precision"] == "int8" and c["status"] == "ok" for c in judged)
    for c in judged:
        d = c["drop"]
        assert d["metric"] == "map" and d["n"] in (8, 30)
        assert d["low"] <= d["high"]  # a percentile interval need not hold the estimate
        assert d["value"] == pytest.approx(d["baseline_pct"] - d["candidate_pct"])
        assert "paired mAP" in d["method"] and "bootstrap over images" in d["method"]
        assert c["within_budget"] == rule.within(d["high"]), c["id"]


def test_the_pick_is_within_the_rule_and_has_its_detection_metrics(labelled):
    out, rep = labelled
    assert rep["pick"] is not None
    pick = next(c for c in rep["candidates"] if c["id"] == rep["pick"])
    assert pick["fidelity_level"] == "full" and pick["within_budget"] is True
    assert pick["drop"]["high"] <= rep["budget"]["budget_points"] + 1e-9
    det = pick["detection"]
    assert det["images"] == 30 and det["basis"] == "labels"
    for key in ("map", "ap50", "ap75", "fidelity_map"):
        e = det[key]
        assert 0 <= e["low"] <= e["high"] <= 100 and 0 <= e["value"] <= 100, key
    assert det["map"]["value"] == pytest.approx(pick["drop"]["candidate_pct"])
    assert det["score_shift"]["threshold"] == det["score_threshold"] == 0.25
    # typed records: report.json's candidate objects read back to the same values
    again = Candidate.from_json(pick)
    assert again.full.detection.map.value == det["map"]["value"]
    assert again.to_json()["detection"] == det
    assert (out / "best" / "model.onnx").exists()
    card = json.loads((out / "best" / "model_card.json").read_text())
    assert card["metrics"]["detection"] == det and card["metrics"]["drop"]["metric"] == "map"


def test_plain_images_give_fidelity_map(tmp_path):
    (tmp_path / "det.cfg").write_text(two_head_detector())
    write_images(tmp_path / "photos", 24, seed=1)
    out = tmp_path / "run"
    assert main(["optimize", str(tmp_path / "det.cfg"), "--data", str(tmp_path / "photos"),
                 *FAST, "--passes", "fold_bn", "--metric", "map", "--out", str(out),
                 "--json"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["data"]["metric"] == "fidelity_map" and rep["data"]["labelled"] is False
    assert "fidelity mAP" in rep["data"]["metric_note"]
    base = next(c for c in rep["candidates"] if c["id"] == rep["baseline_id"])
    # the original against its own detections: every pseudo-label found at IoU 1 first
    assert base["drop"]["candidate_pct"] == pytest.approx(100.0)
    assert base["detection"]["basis"] == "fidelity"
    md = (out / "report.md").read_text()
    assert "fidelity mAP" in md and "### Fidelity precision–recall curves" in md
    # against its own boxes above the threshold the original model scores 1 at every recall
    svg = (out / "report_files" / "pr_curves.svg").read_text()
    assert f"{base['label']} (AP50 100.0, mAP 100.0)" in svg


def test_a_classifier_metric_on_a_detector_is_refused(tmp_path, capsys):
    (tmp_path / "det.cfg").write_text(two_head_detector())
    write_images(tmp_path / "photos", 6)
    code = main(["optimize", str(tmp_path / "det.cfg"), "--data", str(tmp_path / "photos"),
                 *FAST, "--passes", "fold_bn", "--metric", "top1", "--out",
                 str(tmp_path / "run")])
    assert code == 2
    assert "detector" in capsys.readouterr().err


def test_the_report_has_the_detection_section(labelled):
    out, rep = labelled
    text = (out / "report.md").read_text()
    section = text[text.index("## Detection"):]
    section = section[:section.index("\n## ", 5)]
    assert "mAP on the data's boxes" in section and "score shift" in section
    pick = next(c for c in rep["candidates"] if c["id"] == rep["pick"])
    row = next(line for line in section.splitlines() if line.startswith("| ★"))
    assert pick["label"] in row and f"{pick['detection']['map']['value']:.2f} [" in row
    assert "Detection" in (out / "report.html").read_text()


def test_the_report_has_pr_curves_and_example_images(labelled):
    """Rendered again by `infertune report RUN_DIR` from the run's own files: the PR chart
    with each curve's area equal to the table's AP50 and mAP, and four example images (30
    evaluation images) drawn at the size of their original image."""
    out, rep = labelled
    shutil.rmtree(out / "report_files")
    (out / "report.md").unlink()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    svg = (out / "report_files" / "pr_curves.svg").read_text()
    full = [c for c in rep["candidates"] if c["detection"] is not None]
    assert {rep["baseline_id"], rep["pick"]} <= {c["id"] for c in full}
    for c in full:   # at most 6 curves: this run has fewer
        det = c["detection"]
        assert (f"{c['label']} (AP50 {det['ap50']['value']:.1f}, "
                f"mAP {det['map']['value']:.1f})") in svg, c["label"]
    md = (out / "report.md").read_text()
    section = md[md.index("## Detection"):]
    section = section[:section.index("\n## ", 5)]
    assert "![Precision–recall curves](report_files/pr_curves.svg)" in section
    assert "The 4 of 30 evaluation images where the pick's boxes differ most" in section
    hws = np.load(out / "data" / "eval_hw.npy")
    html = (out / "report.html").read_text()
    for k in range(1, 5):
        index = int(re.search(rf"!\[Evaluation image (\d+) of 30 \(image id \d+\)\]"
                              rf"\(report_files/example_{k}\.png\)", section).group(1)) - 1
        png = (out / "report_files" / f"example_{k}.png").read_bytes()
        h, w = hws[index]   # the original image: shown 320 px on its longer side, twice
        assert Image.open(io.BytesIO(png)).size == (2 * 320 + 8,
                                                    round(h * 320 / max(h, w)) + 18)
        inline = re.search(rf'data-example="example_{k}"><img src="data:image/png;base64,'
                           r'([^"]+)"', html).group(1)
        assert base64.b64decode(inline) == png
    assert 'data-chart="pr_curves"' in html
