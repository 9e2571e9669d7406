"""`infertune bench` end to end through cli.main(argv): the JSON's shape, failure rows,
the e2e block and the table. Tiny model and tiny timing settings; no timing is asserted."""
from __future__ import annotations

import json

import numpy as np
import pytest

from infertune.cli import main

from tiny_models import TINY_CFG  # noqa: E402

pytestmark = pytest.mark.e2e

FAST = ["--rounds", "2", "--min-runs", "3", "--min-seconds", "0", "--threads", "1"]
RESULT_KEYS = {"runtime", "batch", "latency_ms", "throughput_ips", "peak_rss_mb", "artifact_mb",
               "cold_start_ms", "energy_j_per_image", "status", "reason"}
LATENCY_KEYS = {"p50", "p90", "p99", "mean", "std", "n", "samples"}


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "tiny.cfg"
    path.write_text(TINY_CFG)
    return str(path)


def bench_json(capsys, *argv):
    code = main(["bench", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err  # stdout holds the JSON and nothing else


def test_bench_json_shape(cfg, capsys):
    result, err = bench_json(capsys, cfg, "--runtime", "torch,onnxruntime", "--batch", "1,2", *FAST)
    assert {"machine", "results", "threads", "rounds"} <= set(result)
    assert result["threads"] == 1 and result["rounds"] == 2 and result["batches"] == [1, 2]
    assert result["machine"]["cpu"]["model"] is not None and "libraries" in result["machine"]
    rows = result["results"]
    assert [(r["runtime"], r["batch"]) for r in rows] == [
        ("torch", 1), ("onnxruntime", 1), ("torch", 2), ("onnxruntime", 2)]
    for r in rows:
        assert RESULT_KEYS <= set(r), RESULT_KEYS - set(r)
        assert r["status"] == "ok", r["reason"]
        assert set(r["latency_ms"]) == LATENCY_KEYS
        assert r["latency_ms"]["n"] == len(r["latency_ms"]["samples"]) >= 2 * 3
        assert list(r["throughput_ips"]) == [str(r["batch"])]
        assert r["parity"]["passed"] and r["threads"] == 1 and r["rounds_ok"] == 2
        assert r["energy_j_per_image"] is not None or r["energy_reason"]
        assert len(r["p50_ms_by_round"]) == 2 and r["speedup_vs"] == "torch"
    assert rows[0]["speedup"]["median"] == 1.0 and rows[1]["speedup"]["n"] == 2
    assert "building torch" in err and "round 2/2" in err  # progress went to stderr


def test_unavailable_and_incompatible_runtimes_are_rows_with_reasons(cfg, tmp_path, capsys):
    result, _ = bench_json(capsys, cfg, "--runtime", "onnxruntime,tensorrt", *FAST)
    ort, trt = result["results"]
    assert ort["status"] == "ok"
    if trt["status"] != "ok":  # no NVIDIA GPU here: a row that says so, not a crash
        assert trt["status"] == "unavailable" and "GPU" in trt["reason"]
        assert trt["latency_ms"] is None and trt["speedup"] is None
    onnx_file = tmp_path / "tiny.onnx"
    assert main(["export", cfg, "--out", str(onnx_file), "--json"]) == 0
    capsys.readouterr()
    result, _ = bench_json(capsys, str(onnx_file), "--runtime", "onnxruntime,torch", *FAST)
    assert result["results"][1]["status"] == "incompatible"
    assert "onnx" in result["results"][1]["reason"]


def test_e2e_times_image_to_label_next_to_model_time(cfg, tmp_path, capsys):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(images / f"{i}.png")
    result, _ = bench_json(capsys, cfg, "--runtime", "onnxruntime", "--e2e", str(images), *FAST)
    assert result["e2e"] == {"images": 3, "preprocess": "darknet", "batch": 1}
    e2e = result["results"][0]["e2e"]
    assert list(e2e) == ["latency_ms", "images", "preprocess", "model_only_p50_ms",
                         "added_p50_ms", "first_label"]  # a classifier's block, as before
    assert set(e2e["latency_ms"]) == LATENCY_KEYS and e2e["images"] == 3
    assert e2e["model_only_p50_ms"] == result["results"][0]["latency_ms"]["p50"]
    assert 0 <= e2e["first_label"] < 5 and e2e["preprocess"]["name"] == "darknet"


def test_table_output(cfg, capsys):
    assert main(["bench", cfg, "--runtime", "onnxruntime,tensorrt", *FAST]) == 0
    out = capsys.readouterr().out
    assert "speedup" in out and "onnxruntime" in out and "thread(s) for every runtime" in out


@pytest.mark.parametrize("argv, message", [
    (["--runtime", "onnxruntme"], "did you mean 'onnxruntime'"),
    (["--batch", "0"], "batch sizes must be distinct positive integers"),
    (["--batch", "8", "--e2e", "x.png"], "include batch 1"),
    (["--e2e", "no/such/folder"], "no such image file or folder"),
])
def test_bad_flags_are_user_errors(cfg, capsys, argv, message):
    assert main(["bench", cfg, *argv, *FAST]) == 2
    assert message in capsys.readouterr().err
