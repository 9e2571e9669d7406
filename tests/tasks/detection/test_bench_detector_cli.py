"""`infertune bench --e2e` on a detector, through cli.main(argv): a two-head Darknet YOLO
with random weights (the head convs scaled up, so that scores sit far from the .25
threshold and a runtime's last-bit differences cannot add or drop a box) and images written
here. Asserted: the JSON's structure, that the timed path's boxes are `infertune predict`'s
on the same image, the table's columns and notes, and bad input. No timing is asserted."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from detector_cfgs import two_head_detector
from infertune.cli import main
from infertune.cli.bench import DETECTION_E2E_COLUMNS, bench_table

pytestmark = pytest.mark.e2e

FAST = ["--rounds", "2", "--min-runs", "3", "--min-seconds", "0", "--threads", "1"]
LATENCY_KEYS = {"p50", "p90", "p99", "mean", "std", "n", "samples"}
HEAD_SCALE = 10.0  # head logits ×10: objectness and class scores far from 0.5
# ONNX Runtime and torch agree to ~1e-6 on the maps; predict rounds boxes to .01 px and
# scores to 1e-6, so one rounding step either way is the tolerance.
BOX_ATOL_PX, SCORE_ATOL = 0.011, 2e-6


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    import torch

    from infertune.load.darknet import load_darknet, write_weights

    root = tmp_path_factory.mktemp("det")
    cfg = root / "det.cfg"
    cfg.write_text(two_head_detector())
    net = load_darknet(cfg).obj
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        heads = [m for m in net.modules()
                 if isinstance(m, torch.nn.Conv2d) and m.out_channels == 21]  # 3·(5 + 2)
        assert len(heads) == 2
        for conv in heads:
            conv.weight.mul_(HEAD_SCALE)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 3)
    write_weights(net, root / "det.weights")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 70), (64, 64), (90, 50)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images / f"{i}.png")
    return f"{cfg}:{root / 'det.weights'}", images


def cli_json(capsys, *argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def assert_same_boxes(got: list[dict], expected: list[dict]) -> None:
    assert [d["class_id"] for d in got] == [d["class_id"] for d in expected]
    np.testing.assert_allclose([d["box"] for d in got], [d["box"] for d in expected],
                               atol=BOX_ATOL_PX, rtol=0)
    np.testing.assert_allclose([d["score"] for d in got], [d["score"] for d in expected],
                               atol=SCORE_ATOL, rtol=0)


def test_bench_e2e_on_a_detector(detector, capsys):
    model, images = detector
    result = cli_json(capsys, "bench", model, "--runtime", "torch,onnxruntime", "--e2e",
                      str(images), *FAST)
    assert result["e2e"] == {"images": 3, "preprocess": "letterbox", "batch": 1,
                             "task": "detection", "input_hw": [64, 64],
                             "postprocess": "decode + NMS", "score_threshold": 0.25,
                             "nms_threshold": 0.45}
    first = images / "0.png"
    predicted = cli_json(capsys, "predict", model, str(first))["images"][0]["detections"]
    assert len(predicted) >= 3  # the scaled heads make boxes to compare
    for row in result["results"]:
        assert row["status"] == "ok", row["reason"]
        e2e = row["e2e"]
        for key in ("latency_ms", "preprocess_ms", "postprocess_ms"):
            assert set(e2e[key]) == LATENCY_KEYS
            assert e2e[key]["n"] == len(e2e[key]["samples"]) >= 2 * 3  # both rounds pooled
        assert e2e["model_only_p50_ms"] == row["latency_ms"]["p50"]
        assert e2e["unexplained_p50_ms"] == pytest.approx(
            e2e["latency_ms"]["p50"] - e2e["preprocess_ms"]["p50"]
            - e2e["postprocess_ms"]["p50"] - e2e["model_only_p50_ms"])
        assert e2e["images"] == e2e["postprocess_images"] == 3
        assert e2e["first_image"] == str(first.resolve()) and e2e["boxes_per_image"] > 0
        assert_same_boxes(e2e["first_detections"], predicted)  # predict's code path

    from rich.console import Console

    console = Console(record=True, width=400)
    bench_table(result, console)
    text = console.export_text()
    assert "image file → boxes" in text and all(c in text for c in DETECTION_E2E_COLUMNS)
    assert "decode+NMS: every head decoded" in text and "letterbox to 64×64" in text


@pytest.mark.parametrize("make, message", [
    (lambda root: root, "no images"),
    (lambda root: root / "missing", "no such image file or folder"),
])
def test_bad_e2e_input_is_one_line_exit_2(detector, tmp_path, capsys, make, message):
    model, _ = detector
    (tmp_path / "notes.txt").write_text("no image here")
    code = main(["bench", model, "--runtime", "onnxruntime", "--e2e", str(make(tmp_path)),
                 *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("infertune: error: ") and err.count("\n") == 1
    assert message in err
