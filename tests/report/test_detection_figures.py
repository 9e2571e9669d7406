"""The detection section's figures (report/detection_figures.py) from a hand-made run
directory: PR curves whose areas are worked out below, example images chosen by how much
the two models differ, inline in the HTML and linked from the Markdown; and the one-line
notes when a classifier run has no such section or a detector run lacks its files.

The report.json is fixtures.make_report() with made-up detection metrics on the baseline and
the pick; the figures read only the run's files written here, so every figure below follows
from these boxes:
* two evaluation images (ids 10 and 11) of 24×32 pixels, one class-0 box each;
* the original model finds both exactly (score .9);
* the pick finds image 10's box (.9) and, in image 11, a class-0 box elsewhere (.8).
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from infertune import report as rep
from infertune.report.detection_figures import detection_figures
from infertune.tasks.detection.examples import DISPLAY_PX, GAP_PX, HEADER_PX
from infertune.tasks.detection.heads import DetectionSpec, YoloHead
from infertune.tasks.detection.letterbox import letterbox
from infertune.tasks.detection.records import DetectionSample, Detections
from infertune.tasks.detection.store import save_detections, save_samples

from .fixtures import make_report, make_run

HW = (24, 32)
BOX_A, BOX_B, ELSEWHERE = [2, 2, 12, 12], [16, 8, 28, 20], [0, 14, 6, 22]


def _dets(boxes, scores) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), scores, [0] * len(scores), HW)


def _estimate(value: float) -> dict:
    return {"value": value, "low": value, "high": value}


def detector_report(basis: str = "labels") -> dict:
    report = make_report()
    det = {"basis": basis, "map": _estimate(1.0), "ap50": _estimate(1.0),
           "ap75": _estimate(1.0), "fidelity_map": _estimate(1.0), "score_shift": {},
           "images": 2, "score_threshold": 0.25}
    for cand in report["candidates"]:
        if cand["id"] in ("base", "int8_ort"):
            cand["detection"] = det
    return report


def write_run(run, basis: str = "labels"):
    data = run / "data"
    data.mkdir(parents=True)
    spec = DetectionSpec((YoloHead(0, "yolo_0", (2, 2), 2, ((8.0, 8.0),)),), (32, 32))
    (data / "detection.json").write_text(json.dumps(
        {"spec": spec.to_dict(), "names": ["cat", "dog"],
         "eval_inputs": {"letterboxed": True, "mean": None, "std": None}}))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, *HW), dtype=np.uint8)
    np.save(data / "eval_x.npy", np.stack([letterbox(im, (32, 32)) for im in images]))
    if basis == "labels":
        save_samples(data / "eval_truth.npz", [
            DetectionSample(run / "a.png", HW, [BOX_A], [0], 10),
            DetectionSample(run / "b.png", HW, [BOX_B], [0], 11)])
    for cid, found in (("base", [_dets([BOX_A], [0.9]), _dets([BOX_B], [0.9])]),
                       ("int8_ort", [_dets([BOX_A], [0.9]), _dets([ELSEWHERE], [0.8])])):
        (run / "candidates" / cid).mkdir(parents=True)
        save_detections(run / "candidates" / cid / "eval_detections.npz", found)
    (run / "report.json").write_text(json.dumps(detector_report(basis)))
    return run


@pytest.fixture
def no_charts(monkeypatch):
    # The classifier charts of make_report take seconds and are tested elsewhere.
    monkeypatch.setattr("infertune.report.plots.render_charts", lambda report: [])


def _legend(svg: str, label: str) -> str:
    return next(t for t in re.findall(r">([^<>]*\(AP50 [^<>]*)<", svg) if t.startswith(label))


def test_pr_curves_and_examples_in_both_formats(tmp_path, no_charts):
    run = write_run(tmp_path / "run")
    files = rep.report_run(run)["files"]
    names = {p.split("report_files/")[-1] for p in files if "report_files/" in p}
    assert names == {"pr_curves.svg", "example_1.png", "example_2.png"}
    svg = (run / "report_files" / "pr_curves.svg").read_text()
    # the original finds both boxes first: precision 1 at every recall
    assert _legend(svg, "torch") == "torch (AP50 100.0, mAP 100.0)"
    # the pick: TP (.9), then FP (.8): recall .5 at precision 1, never more. COCO's 101
    # recall thresholds: 51 of them (0 … .5) at 1, the rest 0 → 51/101 = 50.5 points, at
    # every IoU (the found box is exact)
    assert _legend(svg, "fold_bn") == "fold_bn + int8_static → onnxruntime (AP50 50.5, mAP 50.5)"
    md = (run / "report.md").read_text()
    section = md[md.index("## Detection"):md.index("## Why some steps")]
    assert "![Precision–recall curves](report_files/pr_curves.svg)" in section
    assert "On the data's boxes; 2 evaluation images" in section
    # image 11 differs (1 + 1 unmatched boxes), image 10 does not: 11 first
    assert section.index("Evaluation image 2 of 2 (image id 11)") < section.index(
        "Evaluation image 1 of 2 (image id 10)")
    assert "![Evaluation image 2 of 2 (image id 11)](report_files/example_1.png)" in section
    assert ("boxes above 0.25: 1 from the original model, 1 from the pick, 2 of them "
            "without") in section
    png = (run / "report_files" / "example_1.png").read_bytes()
    # 24×32 shown at 320 px wide: 240 high under the title strip, two panels and a gap
    assert Image.open(io.BytesIO(png)).size == (2 * DISPLAY_PX + GAP_PX, 240 + HEADER_PX)
    html = (run / "report.html").read_text()
    inline = re.findall(r'data-example="(example_\d)"><img src="data:image/png;base64,([^"]+)"',
                        html)
    assert [name for name, _ in inline] == ["example_1", "example_2"]
    assert base64.b64decode(inline[0][1]) == png
    assert 'data-chart="pr_curves"' in html and "<script" not in html


def test_fidelity_runs_score_against_the_original_models_boxes(tmp_path, no_charts):
    run = write_run(tmp_path / "run", basis="fidelity")
    rep.report_run(run, ("md",))
    svg = (run / "report_files" / "pr_curves.svg").read_text()
    assert ">fidelity precision<" in svg
    # the original's boxes above .25 are the truth: the original scores 1, the pick as above
    assert _legend(svg, "torch") == "torch (AP50 100.0, mAP 100.0)"
    assert _legend(svg, "fold_bn").endswith("(AP50 50.5, mAP 50.5)")
    md = (run / "report.md").read_text()
    assert "### Fidelity precision–recall curves" in md and "not accuracy" in md
    assert "(image id" not in md   # no data ids without labels


def test_missing_files_leave_one_line_and_no_figure(tmp_path, no_charts):
    run = write_run(tmp_path / "run")
    (run / "candidates" / "base" / "eval_detections.npz").unlink()
    rep.report_run(run)
    md = (run / "report.md").read_text()
    assert ("PR curves and example images: not drawn, candidates/base/eval_detections.npz "
            "is missing in") in md
    assert not (run / "report_files").exists() and "data-example" not in (
        run / "report.html").read_text()
    # without the inputs only the examples go
    other = write_run(tmp_path / "other")
    (other / "data" / "eval_x.npy").unlink()
    rep.report_run(other, ("md",))
    md = (other / "report.md").read_text()
    assert "Example images: not drawn, data/eval_x.npy is missing." in md
    assert sorted(p.name for p in (other / "report_files").iterdir()) == ["pr_curves.svg"]
    # a report.json alone, rendered elsewhere
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(run / "report.json", alone)
    rep.report_run(alone, ("md",))
    assert "not drawn, data/detection.json is missing" in (alone / "report.md").read_text()


def test_a_classifier_run_has_no_detection_figures(tmp_path):
    assert detection_figures(tmp_path, make_run()) is None


def test_a_damaged_file_leaves_one_line(tmp_path, no_charts):
    run = write_run(tmp_path / "run")
    (run / "candidates" / "base" / "eval_detections.npz").write_bytes(b"PK\x03\x04 truncated")
    rep.report_run(run, ("md",))
    line = next(l for l in (run / "report.md").read_text().splitlines() if "not drawn" in l)
    assert line.startswith("PR curves and example images: not drawn, the run's files in ")
    assert "could not be read (" in line and not (run / "report_files").exists()
