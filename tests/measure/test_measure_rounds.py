"""rounds.py: interleaving order, speedup = median of per-round ratios (canned numbers),
the job a measurement sends, and a lean parent (no framework imported)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from infertune.errors import ConfigError
from infertune.measure import SessionFactory, compare, make_job, schedule
from infertune.measure.rounds import default_timeout_s
from infertune.types import InputSpec


def test_schedule_interleaves_a_b_per_round():
    assert schedule(["A", "B"], 3) == [(0, "A"), (0, "B"), (1, "A"), (1, "B"), (2, "A"), (2, "B")]


def _canned_runner(p50s, calls):
    """Returns a fake measure(): p50 of the k-th call of each label from `p50s`."""
    seen: dict[str, int] = {}

    def run(factory, **kwargs):
        calls.append((factory.name, kwargs))
        k = seen.get(factory.name, 0)
        seen[factory.name] = k + 1
        p50 = p50s[factory.name][k]
        if p50 is None:
            return {"runtime": factory.runtime, "status": "failed", "reason": "boom"}
        return {"runtime": factory.runtime, "status": "ok", "latency_ms": {"p50": p50},
                "noisy": False}

    return run


def test_compare_orders_calls_and_takes_median_of_per_round_ratios():
    calls: list = []
    a, b = SessionFactory("rtA", "a.onnx", module="m"), SessionFactory("rtB", "b", module="m")
    # Round p50s: A 10, 12, 11 ms; B 5, 4, 5.5 ms -> per-round speedups 2, 3, 2.
    runner = _canned_runner({"rtA": [10.0, 12.0, 11.0], "rtB": [5.0, 4.0, 5.5]}, calls)
    out = compare([a, b], rounds=3, runner=runner, input_shape=(3, 8, 8))
    assert [c[0] for c in calls] == ["rtA", "rtB"] * 3
    assert all(c[1] == {"input_shape": (3, 8, 8)} for c in calls)
    base, cand = out["summary"]
    assert base["speedup"]["median"] == 1.0
    assert cand["speedup"] == {"median": 2.0, "min": 2.0, "max": 3.0, "q1": 2.0, "q3": 2.5,
                               "n": 3}
    assert cand["p50_ms_by_round"] == [5.0, 4.0, 5.5] and cand["p50_ms_median"] == 5.0
    assert [[r["round"] for r in row] for row in out["results"]] == [[0, 0], [1, 1], [2, 2]]
    assert out["order"] == ["rtA", "rtB"] and "cpu" in out["fingerprint"]


def test_failed_rounds_are_left_out_of_the_speedup():
    runner = _canned_runner({"A": [10.0, None, 10.0], "B": [5.0, 5.0, None]}, [])
    out = compare([SessionFactory("A", module="m"), SessionFactory("B", module="m")],
                  rounds=3, runner=runner)
    cand = out["summary"][1]
    assert cand["speedup"]["n"] == 1 and cand["speedup"]["median"] == 2.0
    assert cand["statuses"] == ["ok", "ok", "failed"] and cand["reasons"] == ["boom"]


def test_compare_needs_distinct_labels():
    f = SessionFactory("onnxruntime", "a.onnx")
    with pytest.raises(ConfigError, match="distinct labels"):
        compare([f, f], runner=lambda *a, **k: {})
    g = SessionFactory("onnxruntime", "b.onnx", label="ort-int8")
    assert [x.name for x in (f, g)] == ["onnxruntime", "ort-int8"]


def test_make_job_is_json_ready_and_complete():
    spec = InputSpec(shape=("batch", 3, 32, 48))
    job = make_job(SessionFactory("onnxruntime", "m.onnx"), input_shape=spec, threads=2,
                   throughput=[1, 8])
    assert job["input"] == {"shape": [3, 32, 48], "dtype": "float32", "seed": 0}
    assert job["session"]["module"] == "infertune.runtimes.onnxruntime"
    assert job["threads"] == 2 and job["throughput"] == [1, 8]
    assert job["timing"] == {"warmup": 10, "min_runs": 50, "min_seconds": 5.0,
                             "max_runs": 1_000_000}
    assert default_timeout_s(job) > 5.0
    auto = make_job(SessionFactory("onnxruntime", "m.onnx"), input_shape=(3, 8, 8),
                    throughput="auto")
    assert auto["memory_cap_mb"] > 0


def test_unknown_runtime_is_a_config_error_in_the_parent():
    with pytest.raises(ConfigError, match=r"unknown runtime 'onnxruntme'; did you mean 'onnx"):
        make_job(SessionFactory("onnxruntme", "m.onnx"), input_shape=(3, 8, 8))


def test_importing_the_harness_imports_no_framework():
    code = ("import sys, infertune.measure, infertune.measure.rounds;"
            "from infertune.measure.fingerprint import fingerprint; fingerprint();"
            "print([m for m in ('torch','onnx','onnxruntime','openvino','numpy') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_compare_end_to_end_on_fake_runtimes():
    from infertune.measure import TimingConfig
    from infertune.measure.testing_runtimes import factory

    slow, fast = factory("sleep", label="slow", ms=8), factory("sleep", label="fast", ms=4)
    out = compare([slow, fast], rounds=2, input_shape=(3, 4, 4), timeout_s=60,
                  timing=TimingConfig(warmup=1, min_runs=10, min_seconds=0.0),
                  energy=False, overhead=False)
    assert [[r["label"] for r in row] for row in out["results"]] == [["slow", "fast"]] * 2
    speedup = out["summary"][1]["speedup"]
    # 8 ms vs 4 ms sleeps plus ~0.1-1 ms of scheduling each: the ratio lands in 1.5..2.1.
    assert speedup["n"] == 2 and 1.5 < speedup["median"] < 2.1
    assert "fingerprint" not in out["results"][0][0] and "cpu" in out["fingerprint"]
