"""A synthetic, schema-valid report.json (docs/run-format.md, schema_version 1) for the
report and compare tests.

EVERY NUMBER HERE IS MADE UP FOR THE TESTS. Nothing was measured; the values are chosen
so that table rows, chart series and explanations can be checked by hand:
* model 1 GMAC, 80 MB of FP32 weights; baseline torch FP32 p50 100 ms;
* onnxruntime: fused 50 ms, int8_static 20 ms (the pick), mixed 22 ms, int8_dynamic
  120 ms (slower), magnitude-pruned 49.5 ms (no gain), channels_last 51 ms (no gain),
  combined 15 ms but over budget; openvino: fused 48 ms;
* a failed TensorRT candidate and a screened-out OpenVINO INT8 one.
"""
from __future__ import annotations

import copy
from typing import Any

MACS = 1_000_000_000
WEIGHTS_BYTES = 80_000_000


def _samples(p50: float, n: int = 21) -> list[float]:
    # Symmetric, evenly spread around p50 (±5 %), so the median is exactly p50.
    half = n // 2
    return [round(p50 * (1 + 0.05 * (i - half) / half), 6) for i in range(n)]


def _cand(cid: str, stage: str, runtime: str, precision: str, p50: float | None, *,
          parent: str | None = "fused_ort", recipe: tuple = (), size_mb: float = 80.0,
          top1: float = 90.0, drop: tuple = (0.0, -0.3, 0.3), macs: int = MACS,
          status: str = "ok", reason: str | None = None, within: bool | None = True,
          tput1: float | None = None) -> dict[str, Any]:
    measured = p50 is not None
    return {
        "id": cid, "parent_id": parent, "stage": stage,
        "label": " + ".join(recipe) + f" → {runtime}" if recipe else f"{runtime}",
        "recipe": [{"pass": name, "options": {}} for name in recipe],
        "runtime": runtime, "precision": precision, "status": status, "reason": reason,
        "fidelity_level": "full" if measured else None, "build_s": 1.0, "passes": [],
        "artifact": {"path": f"candidates/{cid}/model", "bytes": int(size_mb * 1e6)},
        "size_mb": size_mb, "compression_ratio": round(80.0 / size_mb, 6),
        "params": 20_000_000, "macs": macs,
        "latency_ms": ({"p50": p50, "p90": p50 * 1.04, "p99": p50 * 1.05, "mean": p50,
                        "std": p50 * 0.03, "n": 21, "cv": 0.03} if measured else None),
        "latency_samples_ms": _samples(p50) if measured else [],
        "throughput_ips": ({"1": tput1 or round(1000.0 / p50, 6), "8": None}
                           if measured else None),
        "best_batch": 1 if measured else None,
        "peak_rss_mb": 400.0 if measured else None, "cold_start_ms": 300.0 if measured else None,
        "energy_j_per_image": None, "energy_note": "RAPL not readable here",
        "accuracy": ({"top1": {"value": top1, "low": top1 - 2.0, "high": top1 + 1.8},
                      "top5": {"value": 99.0, "low": 98.0, "high": 99.5},
                      "precision": 0.9, "recall": 0.9, "f1": 0.9} if measured else None),
        # agreement as a fraction, accuracy in percent: the units metrics.* and optimize use
        "fidelity": ({"top1_agreement": 1.0 - drop[0] / 100, "cosine": 0.999, "sqnr_db": 30.0,
                      "max_abs": 0.1} if measured else None),
        "drop": ({"value": drop[0], "low": drop[1], "high": drop[2], "metric": "top1",
                  "n": 1000, "p_value": 0.5} if measured else None),
        "within_budget": within if measured else None,
        "speedup": round(100.0 / p50, 6) if measured else None,
        "confusion_matrix": None, "per_layer_ms": None,
    }


def _candidates() -> list[dict[str, Any]]:
    base = _cand("base", "original", "torch", "fp32", 100.0, parent=None)
    base["confusion_matrix"] = [[50, 2, 0], [3, 45, 2], [0, 3, 45]]
    base["per_layer_ms"] = [{"name": f"conv{i}", "op": "Conv", "ms": float(10 - i)}
                            for i in range(10)] + [{"name": "fc", "op": "Gemm", "ms": 5.0}]
    pick = _cand("int8_ort", "quantized", "onnxruntime", "int8", 20.0, size_mb=20.0,
                 recipe=("fold_bn", "int8_static"), top1=89.6, drop=(0.4, 0.1, 0.8))
    # the pick's in metrics.classification's {"labels", "matrix"} form, the baseline's bare
    pick["confusion_matrix"] = {"labels": [0, 1, 2], "matrix": [[49, 3, 0], [3, 44, 3],
                                                                [0, 3, 45]]}
    pick["per_layer_ms"] = [{"name": "conv0", "op": "QLinearConv", "ms": 4.0},
                            {"name": "fc", "op": "Gemm", "ms": 1.0}]
    return [
        base,
        _cand("fused_ort", "fused", "onnxruntime", "fp32", 50.0, parent="base",
              recipe=("fold_bn",)),
        _cand("fused_ov", "fused", "openvino", "fp32", 48.0, parent="base",
              recipe=("fold_bn",), drop=(0.0, -0.2, 0.2)),
        pick,
        _cand("dyn_ort", "quantized", "onnxruntime", "int8", 120.0, size_mb=21.0,
              recipe=("fold_bn", "int8_dynamic"), top1=89.7, drop=(0.3, 0.0, 0.7)),
        _cand("mixed_ort", "mixed", "onnxruntime", "mixed", 22.0, size_mb=24.0,
              recipe=("fold_bn", "mixed_precision"), top1=89.9, drop=(0.1, -0.2, 0.5)),
        _cand("pruned_ort", "pruned", "onnxruntime", "fp32", 49.5, size_mb=80.0,
              recipe=("fold_bn", "prune_magnitude"), top1=89.8, drop=(0.2, -0.1, 0.6)),
        _cand("cl_ort", "fused", "onnxruntime", "fp32", 51.0, parent="fused_ort",
              recipe=("fold_bn", "channels_last")),
        _cand("combined_ort", "combined", "onnxruntime", "int8", 15.0, size_mb=10.0,
              parent="int8_ort", recipe=("fold_bn", "prune_channels", "int8_static"),
              top1=89.1, drop=(0.9, 0.5, 1.4), macs=600_000_000, within=False),
        _cand("trt", "fused", "tensorrt", "fp16", None, parent="base", recipe=("fold_bn",),
              status="incompatible", reason="TensorRT needs an NVIDIA GPU; none here"),
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
        "candidates": _candidates(),
        "frontier": ["combined_ort", "int8_ort", "mixed_ort", "fused_ov"],
        "pick": "int8_ort", "no_pick": None,
        "final_comparison": {"rounds": 3, "method": "interleaved rounds, median of per-round "
                             "ratios", "rows": [{"id": "int8_ort", "p50_ms": 20.0,
                                                "speedup": {"median": 5.0, "min": 4.8,
                                                            "max": 5.1}}]},
        "export": {"dir": "best", "files": ["model.onnx"], "runtime": "onnxruntime"},
        "mixed_precision": {"sensitivity": [{"layer": "conv0", "score": 12.0},
                                            {"layer": "fc", "score": 20.0}],
                            "kept": ["conv0", "fc"],
                            "ledger": [{"layer": "conv0", "cost_ms": 1.5, "drop_saved": 0.3},
                                       {"layer": "fc", "cost_ms": 0.5, "drop_saved": 0.1}]},
    }
    return copy.deepcopy(report)
