"""bench's pure parts: rounds pooled into one row (canned results), runtime and batch
parsing. No ML framework."""
from __future__ import annotations

import pytest

from infertune.commands.bench import resolve_batches, resolve_runtimes
from infertune.commands.bench_results import ROW_KEYS, aggregate, empty_row, summarize_ms
from infertune.errors import ConfigError


def _round(r, samples, status="ok", **extra):
    return {"runtime": "rt", "round": r, "status": status, "reason": None if status == "ok" else "boom",
            "latency_ms": {"samples": samples} if samples else None,
            "throughput_ips": {"1": 1e3 / samples[0]} if samples else {},
            "cold_start_ms": 100.0 + r, "peak_rss_mb": 50.0 + 10 * r, "artifact_mb": 2.0,
            "energy_j_per_image": None, "energy_reason": "no RAPL", **extra}


def test_rounds_are_pooled_into_one_row():
    rounds = [_round(0, [1.0, 2.0, 3.0]), _round(1, [4.0, 5.0]),
              _round(2, [6.0], warnings=["noisy"], session_info={"compile_ms": 30.0})]
    summary = {"label": "rt", "speedup": {"median": 2.0}, "p50_ms_by_round": [2.0, 4.5, 6.0],
               "noisy_rounds": 1}
    row = aggregate(rounds, summary, batch=1, threads=2, baseline="torch")
    assert set(row) == set(ROW_KEYS)
    # Percentiles over all 6 samples, numpy's linear interpolation: p50 of 1..6 is 3.5.
    assert row["latency_ms"]["p50"] == 3.5 and row["latency_ms"]["n"] == 6
    assert row["latency_ms"]["p90"] == pytest.approx(5.5)
    assert row["latency_ms"]["samples"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert row["throughput_ips"] == {"1": pytest.approx(6 * 1e3 / 21)}  # images / total time
    assert row["cold_start_ms"] == 101.0 and row["peak_rss_mb"] == 70.0  # median, max
    assert row["compile_ms"] == 30.0 and row["warnings"] == ["noisy"]
    assert row["status"] == "ok" and row["rounds"] == row["rounds_ok"] == 3
    assert row["speedup"] == {"median": 2.0} and row["speedup_vs"] == "torch"
    assert row["energy_j_per_image"] is None and row["energy_reason"] == "no RAPL"


def test_a_failed_round_makes_the_row_failed_and_keeps_the_numbers():
    rounds = [_round(0, [2.0, 2.0]), _round(1, None, status="timeout")]
    row = aggregate(rounds, {"label": "rt"}, batch=1, threads=1, baseline="rt")
    assert row["status"] == "timeout" and row["reason"] == "round 2: boom"
    assert row["rounds_ok"] == 1 and row["latency_ms"]["p50"] == 2.0


def test_summarize_ms_and_empty_row():
    out = summarize_ms([3.0, 1.0, 2.0], keep_samples=False)
    assert out == {"p50": 2.0, "p90": pytest.approx(2.8), "p99": pytest.approx(2.98),
                   "mean": 2.0, "std": 1.0, "n": 3}
    row = empty_row("tensorrt", 8, 2, "unavailable", "no GPU")
    assert row["latency_ms"] is None and row["reason"] == "no GPU" and row["batch"] == 8


def test_runtime_and_batch_specs():
    assert resolve_runtimes("all")[:2] == ["torch", "torchscript"]
    assert resolve_runtimes("onnxruntime, torch") == ["onnxruntime", "torch"]
    with pytest.raises(ConfigError, match="did you mean 'openvino'"):
        resolve_runtimes("openvno")
    with pytest.raises(ConfigError, match="twice"):
        resolve_runtimes("torch,torch")
    assert resolve_batches("1,8,32") == ([1, 8, 32], False)
    assert resolve_batches([4]) == ([4], False)
    assert resolve_batches("auto") == ([1], True)
    for bad in ("0", "1,1", "x", ""):
        with pytest.raises(ConfigError):
            resolve_batches(bad)


CLASSIFIER_E2E_KEYS = ["latency_ms", "images", "preprocess", "model_only_p50_ms",
                       "added_p50_ms", "first_label"]


def test_a_classifier_e2e_block_keeps_its_keys():
    e2e = {"latency_ms": {"samples": [3.0, 5.0]}, "images": 2, "preprocess": {"name": "darknet"},
           "first_label": 4}
    row = aggregate([_round(0, [1.0, 2.0, 3.0], e2e=e2e)], {"label": "rt"}, batch=1, threads=1,
                    baseline="rt")
    assert list(row["e2e"]) == CLASSIFIER_E2E_KEYS
    assert row["e2e"]["added_p50_ms"] == 2.0 and row["e2e"]["first_label"] == 4


def test_a_detector_e2e_block_pools_its_parts_and_states_the_remainder():
    def block(e2e, pre, post, boxes):
        return {"task": "detection", "latency_ms": {"samples": e2e},
                "preprocess_ms": {"samples": pre}, "postprocess_ms": {"samples": post},
                "images": 3, "preprocess": {"name": "letterbox", "input_hw": [64, 64]},
                "postprocess_images": 3, "score_threshold": 0.25, "nms_threshold": 0.45,
                "boxes_per_image": boxes, "first_image": "a.png",
                "first_detections": [{"class": "0", "class_id": 0, "score": 0.9,
                                      "box": [1.0, 2.0, 3.0, 4.0]}]}

    rounds = [_round(0, [2.0, 2.0], e2e=block([5.0, 6.0], [1.0], [0.5, 0.7], 4.0)),
              _round(1, [2.0], e2e=block([7.0], [1.0, 3.0], [0.6], 4.0))]
    e2e = aggregate(rounds, {"label": "rt"}, batch=1, threads=1, baseline="rt")["e2e"]
    # pooled p50s: end-to-end of 5, 6, 7 → 6; read+letterbox of 1, 1, 3 → 1; decode+NMS → .6
    assert e2e["latency_ms"]["p50"] == 6.0 and e2e["latency_ms"]["n"] == 3
    assert e2e["preprocess_ms"]["p50"] == 1.0 and e2e["postprocess_ms"]["p50"] == 0.6
    assert e2e["model_only_p50_ms"] == 2.0 and e2e["added_p50_ms"] == 4.0
    assert e2e["unexplained_p50_ms"] == pytest.approx(6.0 - 1.0 - 0.6 - 2.0)
    assert e2e["task"] == "detection" and e2e["boxes_per_image"] == 4.0
    assert e2e["first_detections"][0]["box"] == [1.0, 2.0, 3.0, 4.0]
    assert "first_label" not in e2e
