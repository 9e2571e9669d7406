"""A synthetic, schema-valid report.json (docs/run-format.md, schema_version 1) for the
report and compare tests.

EVERY NUMBER HERE IS MADE UP FOR THE TESTS. Nothing was measured; the values are chosen
so that table rows, chart series and explanations can be checked by hand:
* model 1 GMAC, 80 MB of FP32 weights; baseline torch FP32 p50 100 ms;
* onnxruntime: fused 50 ms, int8_static 20 ms (the pick), mixed 22 ms, int8_dynamic
  120 ms (slower), magnitude-pruned 49.5 ms (no gain), channels_last 51 ms (no gain),
  combined 15 ms but over budget; openvino: fused 48 ms;
* a failed TensorRT candidate and a screened-out OpenVINO INT8 one;
* final side-by-side rounds of the baseline (99, 100, 101 ms), the pick (19.8, 20.0,
  20.4 ms) and mixed (20.3, 20.6, 21.0 ms: median 20.6, its full measurement said 22;
  the two contenders' ranges overlap).

Candidates are built with the typed records (search.candidate) and stored as
`Candidate.to_json()`, as search/report.py writes them.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from infertune.report import parse_report
from infertune.report.run_report import RunReport
from infertune.search.candidate import (Candidate, Decision, Drop, Fidelity, FullEval, Latency,
                                        PassReport, Plan, Screen, Status, Step)

MACS = 1_000_000_000
WEIGHTS_BYTES = 80_000_000


def _samples(p50: float, n: int = 21) -> tuple[float, ...]:
    # Symmetric, evenly spread around p50 (±5 %), so the median is exactly p50.
    half = n // 2
    return tuple(round(p50 * (1 + 0.05 * (i - half) / half), 6) for i in range(n))


def _full(p50: float, top1: float, drop: tuple, tput1: float | None) -> FullEval:
    return FullEval(
        drop=Drop(metric="top1", value=drop[0], low=drop[1], high=drop[2], n=1000,
                  method="made up for tests", p_value=0.5),
        # agreement as a fraction, accuracy in percent: the units metrics.* and optimize use
        fidelity=Fidelity(n=1000, top1_agreement=1.0 - drop[0] / 100, cosine=0.999,
                          sqnr_db=30.0, max_abs=0.1),
        latency=Latency(p50=p50, p90=p50 * 1.04, p99=p50 * 1.05, mean=p50, std=p50 * 0.03,
                        n=21, cv=0.03),
        accuracy={"top1": {"value": top1, "low": top1 - 2.0, "high": top1 + 1.8},
                  "top5": {"value": 99.0, "low": 98.0, "high": 99.5},
                  "precision": 0.9, "recall": 0.9, "f1": 0.9},
        samples_ms=_samples(p50), throughput_ips={"1": tput1 or round(1000.0 / p50, 6),
                                                  "8": None},
        best_batch=1, peak_rss_mb=400.0, cold_start_ms=300.0, energy_j_per_image=None,
        energy_note="RAPL not readable here")


def _cand(cid: str, stage: str, runtime: str, precision: str, p50: float | None, *,
          parent: str | None = "fused_ort", recipe: tuple = (), size_mb: float = 80.0,
          top1: float = 90.0, drop: tuple = (0.0, -0.3, 0.3), macs: int = MACS,
          status: str = "ok", reason: str | None = None, within: bool | None = True,
          tput1: float | None = None, passes: tuple = (), screen: bool = True) -> Candidate:
    measured = p50 is not None
    plan = Plan(id=cid, stage=stage,
                label=" + ".join(recipe) + f" → {runtime}" if recipe else f"{runtime}",
                recipe=tuple(Step(name) for name in recipe), runtime=runtime,
                precision=precision, parent_id=parent)
    # size_mb in the record is artifact bytes / 2**20; the "MB" of these made-up sizes is
    # 10**6 bytes, so intensities come out round (80 MB = 80e6 bytes of weights).
    scr = Screen(build_s=1.0, passes=passes, params=20_000_000, macs=macs,
                 artifact_path=f"candidates/{cid}/model", artifact_bytes=int(size_mb * 1e6)
                 ) if screen else None
    return Candidate(
        plan=plan, status=Status(status), reason=reason, screen=scr,
        full=_full(p50, top1, drop, tput1) if measured else None,
        decision=Decision(within_budget=within if measured else None,
                          speedup=round(100.0 / p50, 6) if measured else None,
                          compression_ratio=round(80.0 / size_mb, 6)))


# What passes/mixed_precision.py writes (int8_static's layer_report + keep + sensitivity +
# kept_by_choice): K=2 keeps conv0 and fc; softmax is kept float by the quantizer whatever
# K is.
MIXED_PASS = PassReport(
    pass_name="mixed_precision", applied=True, format="onnx",
    details={"engine": "onnxruntime.quantization.quantize_static", "layers": 3,
             "quantized": ["conv1"],
             "kept_float": [{"layer": "conv0", "reason": "sensitivity rank 1 of 3"},
                            {"layer": "fc", "reason": "sensitivity rank 2 of 3"},
                            {"layer": "softmax", "op": "Softmax", "reason": "kept float"}],
             "keep": ["2"], "exported_to_onnx": True, "kept_by_choice": ["conv0", "fc"],
             "sensitivity": [{"rank": 2, "layer": "fc", "sqnr_db": 20.0, "top1_agreement": 0.9},
                             {"rank": 1, "layer": "conv0", "sqnr_db": 12.0,
                              "top1_agreement": 0.8},
                             {"rank": 3, "layer": "conv1", "sqnr_db": 35.0,
                              "top1_agreement": 1.0}]})


def _candidates() -> list[Candidate]:
    per_layer = tuple({"name": f"conv{i}", "op": "Conv", "ms": float(10 - i)}
                      for i in range(10)) + ({"name": "fc", "op": "Gemm", "ms": 5.0},)
    base = _cand("base", "original", "torch", "fp32", 100.0, parent=None)
    base = base.with_(
        full=replace(base.full, accuracy={**base.full.accuracy, "confusion_matrix":
                                          [[50, 2, 0], [3, 45, 2], [0, 3, 45]]}),
        decision=replace(base.decision, per_layer_ms=per_layer))
    pick = _cand("int8_ort", "quantized", "onnxruntime", "int8", 20.0, size_mb=20.0,
                 recipe=("fold_bn", "int8_static"), top1=89.6, drop=(0.4, 0.1, 0.8))
    # the pick's in metrics.classification's {"labels", "matrix"} form, the baseline's bare
    pick = pick.with_(
        full=replace(pick.full, accuracy={**pick.full.accuracy, "confusion_matrix": {
            "labels": [0, 1, 2], "matrix": [[49, 3, 0], [3, 44, 3], [0, 3, 45]]}}),
        decision=replace(pick.decision, speedup=5.0, speedup_range=(4.8, 5.1),
                         speedup_method="median of per-round ratios, interleaved rounds",
                         per_layer_ms=({"name": "conv0", "op": "QLinearConv", "ms": 4.0},
                                       {"name": "fc", "op": "Gemm", "ms": 1.0})))
    mixed = _cand("mixed_ort", "mixed", "onnxruntime", "mixed", 22.0, size_mb=24.0,
                  recipe=("fold_bn", "mixed_precision"), top1=89.9,
                  drop=(0.1, -0.2, 0.5), passes=(MIXED_PASS,))
    return [
        base,
        _cand("fused_ort", "fused", "onnxruntime", "fp32", 50.0, parent="base",
              recipe=("fold_bn",)),
        _cand("fused_ov", "fused", "openvino", "fp32", 48.0, parent="base",
              recipe=("fold_bn",), drop=(0.0, -0.2, 0.2)),
        pick,
        _cand("dyn_ort", "quantized", "onnxruntime", "int8", 120.0, size_mb=21.0,
              recipe=("fold_bn", "int8_dynamic"), top1=89.7, drop=(0.3, 0.0, 0.7)),
        mixed.with_(decision=replace(mixed.decision, speedup=100 / 20.6)),
        _cand("pruned_ort", "pruned", "onnxruntime", "fp32", 49.5, size_mb=80.0,
              recipe=("fold_bn", "prune_magnitude"), top1=89.8, drop=(0.2, -0.1, 0.6)),
        _cand("cl_ort", "fused", "onnxruntime", "fp32", 51.0, parent="fused_ort",
              recipe=("fold_bn", "channels_last")),
        _cand("combined_ort", "combined", "onnxruntime", "int8", 15.0, size_mb=10.0,
              parent="int8_ort", recipe=("fold_bn", "prune_channels", "int8_static"),
              top1=89.1, drop=(0.9, 0.5, 1.4), macs=600_000_000, within=False),
        _cand("trt", "fused", "tensorrt", "fp16", None, parent="base", recipe=("fold_bn",),
              status="incompatible", reason="TensorRT needs an NVIDIA GPU; none here",
              screen=False),
        _cand("ov_int8", "quantized", "openvino", "int8", None, parent="fused_ov",
              recipe=("fold_bn", "int8_static"), status="screened_out",
              reason="probe drop 3.1 points > 2 × max_drop"),
    ]


def _machine() -> dict[str, Any]:
    isa = {flag: True for flag in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
                                   "avx512_bf16")}
    isa.update({flag: False for flag in ("avx_vnni", "avx512_fp16", "amx_tile", "amx_int8",
                                         "amx_bf16")})
    return {"cpu": {"model": "Made-up CPU 9000", "physical_cores": 2, "logical_cores": 4,
                    "isa": isa, "virtualized": True, "governor": None},
            "memory_total_mb": 16000.0,
            "os": {"system": "Linux", "release": "6.1.0", "platform": "Linux-6.1.0"},
            "python": {"version": "3.11.2", "implementation": "CPython", "executable": "py"},
            "hostname": "test-host", "gpu": None,
            "libraries": {"torch": "2.13.0", "onnxruntime": "1.22.0", "openvino": "2025.1.0",
                          "tensorrt": None, "infertune": "0.1.0"},
            "threads": {"env": {"OMP_NUM_THREADS": None}, "cpus_allowed": 2}}


def make_report() -> dict[str, Any]:
    """A fresh copy of the synthetic report (tests may modify it)."""
    report = {
        "schema_version": 1, "tool": {"name": "infertune", "version": "0.1.0"},
        "run": {"dir": "runs/test", "started": "2026-01-01T00:00:00", "finished":
                "2026-01-01T00:10:00", "duration_s": 600.0, "status": "complete",
                "resumed_candidates": 0},
        "config": {"model": "made-up", "max_drop": 1.0},
        "model": {"source": "made-up-net", "name": "made-up-net", "format": "torch",
                  "input": {"name": "input", "shape": [1, 3, 224, 224], "dtype": "float32",
                            "layout": "NCHW"},
                  "params": 20_000_000, "macs": MACS, "weights_bytes": WEIGHTS_BYTES},
        "data": {"spec": "sample", "labelled": True, "metric": "top1", "metric_note": None,
                 "calib_n": 128, "screen_n": 64, "eval_n": 1000, "description": "made up"},
        "budget": {"max_drop": 1.0, "drop_type": "absolute", "metric": "top1",
                   "confidence": 0.95, "objective": "latency",
                   "rule": "within budget when the upper bound of the paired drop's interval "
                           "≤ max_drop"},
        "machine": _machine(),
        "machine_limits": {"fp32_gflops": 200.0, "int8_gops": 800.0, "mem_gbs": 20.0,
                           "method": "made-up numbers for tests"},
        "timing": {"threads": 2, "batch": 1, "min_runs": 50, "min_seconds": 3.0,
                   "method": "isolated subprocess per measurement (made up for tests)"},
        "screening": {"screen_n": 64, "probe": {"min_runs": 10, "min_seconds": 0.5},
                      "rules": [{"name": "slower_than_baseline",
                                 "text": "dropped when the probe p50 exceeds the baseline's"}]},
        "baseline_id": "base",
        "candidates": [c.to_json() for c in _candidates()],
        "frontier": ["combined_ort", "int8_ort", "mixed_ort", "fused_ov"],
        "pick": "int8_ort", "no_pick": None,
        "final_comparison": {
            "rounds": 3, "method": "interleaved rounds, median of per-round ratios",
            "rows": [{"id": "base", "p50_ms": 100.0, "p50_ms_by_round": [99.0, 100.0, 101.0],
                      "speedup": {"median": 1.0, "min": 1.0, "max": 1.0}},
                     {"id": "int8_ort", "p50_ms": 20.0, "p50_ms_by_round": [19.8, 20.0, 20.4],
                      "speedup": {"median": 5.0, "min": 4.8, "max": 5.1}},
                     {"id": "mixed_ort", "p50_ms": 20.6, "p50_ms_by_round": [20.3, 20.6, 21.0],
                      "speedup": {"median": 100 / 20.6, "min": 4.7, "max": 4.95}}]},
        "export": {"dir": "best", "files": ["model.onnx"], "runtime": "onnxruntime",
                   "artifact": "best/model.onnx"},
        # the shape search/report.py writes: the layers each K added, with its cost
        "mixed_precision": {"parent": "int8_ort", "kept": ["conv0", "fc"],
                            "ledger": [{"candidate": "mixed_ort", "layers": ["conv0", "fc"],
                                        "cost_ms": 0.6, "drop_saved": 0.3}]},
    }
    return copy.deepcopy(report)


def with_faster_own_measurement(report):
    """darknet19_448's case: a second quantized candidate faster than the pick in its own
    full measurement (19 ms < 20 ms) but slower in the side-by-side rounds (20.8 ms)."""
    other = copy.deepcopy(report["candidates"][3])
    other.update(id="int8_minmax", label="fold_bn + int8_static(method=minmax) → onnxruntime")
    other["latency_ms"]["p50"] = 19.0
    report["candidates"].append(other)
    report["final_comparison"]["rows"].append(
        {"id": "int8_minmax", "p50_ms": 20.8, "p50_ms_by_round": [20.5, 20.8, 21.4],
         "speedup": {"median": 100 / 20.8, "min": 4.6, "max": 4.9}})
    return report


def make_run(report: dict[str, Any] | None = None) -> RunReport:
    """The typed report (of `report`, or a fresh synthetic one)."""
    return parse_report(make_report() if report is None else report)
