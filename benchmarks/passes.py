"""Precision passes: Darknet19_448 latency per pass and runtime, and the trained reference
model's accuracy drop per pass (the README's precision table).

Latency: each candidate (pass → the runtime it is made for) is built once with that
runtime's `build` and measured by the harness (`infertune.measure.compare`): interleaved
rounds, each measurement in a fresh process, batch 1, at the physical cores' thread count.
Darknet19_448 has random weights here; latency does not depend on them (calibration uses
the sample set). Accuracy: `ref-small` (trained on sample:train) through the same passes,
calibrated on sample:train, evaluated on all of sample:val, each candidate run by its
runtime's session in this process; the drop is the paired difference with the FP32 model on
the same 1,000 digits, with its 95% interval.

Usage: python benchmarks/passes.py [--rounds 3] [--min-seconds 3] [--threads N] [--quick]
Writes benchmarks/results/passes-<machine>.json and .md. Takes ~20-30 minutes on a 2-core
machine; keep it otherwise idle (the load average before and after is recorded).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from infertune import _atomic
from infertune.data import load_dataset
from infertune.load import load_model
from infertune.passes import PassContext, apply_passes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtimes import RESULTS, machine_tag  # noqa: E402  (the sibling benchmark's helpers)

# (label, passes, runtime). FP32 rows first: each runtime's own baseline.
CANDIDATES = [
    ("fp32", [], "onnxruntime"),
    ("fp32", [], "openvino"),
    ("fp32", [], "torch"),
    ("fp32", [], "compile"),
    ("fp16", [("fp16", {"target": "onnxruntime"})], "onnxruntime"),
    ("fp16", [("fp16", {"target": "openvino"})], "openvino"),
    ("bf16", [("bf16", {"target": "openvino"})], "openvino"),
    ("bf16", [("bf16", {"target": "torch"})], "torch"),
    ("bf16", [("bf16", {"target": "torch"})], "compile"),
    ("int8_dynamic", [("int8_dynamic", {})], "onnxruntime"),
    ("int8_static ort", [("int8_static", {"engine": "ort"})], "onnxruntime"),
    ("int8_static ort", [("int8_static", {"engine": "ort"})], "openvino"),
    ("int8_static nncf", [("int8_static", {"engine": "nncf"})], "openvino"),
    ("int8_static torch", [("int8_static", {"engine": "torch"})], "compile"),
    ("mixed_precision keep=2", [("mixed_precision", {"keep": "2", "eval_samples": 16})],
     "onnxruntime"),
]
QUICK = {"fp32", "int8_static ort", "bf16"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calibration", type=int, default=32, help="calibration samples")
    p.add_argument("--quick", action="store_true", help="only fp32, bf16, int8_static ort")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def candidates(args: argparse.Namespace) -> list[tuple[str, list, str]]:
    return [c for c in CANDIDATES if not args.quick or c[0] in QUICK]


def build(model, steps, runtime: str, ctx: PassContext, threads: int) -> dict:
    """Applies the passes and builds the runtime's artifact; failures are rows."""
    from infertune.runtimes import RUNTIMES

    row = {"runtime": runtime, "artifact": None, "reason": None, "reports": []}
    try:
        handle, row["reports"] = apply_passes(model, steps, ctx) if steps else (model, [])
        rt = RUNTIMES.get(runtime)
        why = rt.incompatible(handle)
        if why:
            return {**row, "reason": why}
        out = ctx.workdir / f"rt-{len(list(ctx.workdir.glob('rt-*')))}"
        row["artifact"] = str(rt.build(handle, out, threads=threads))
        row["options"] = rt.options(1)
    except Exception as exc:  # a candidate that fails is a row, not the end of the run
        row["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return row


def latency(args: argparse.Namespace, threads: int) -> list[dict]:
    from infertune.measure import SessionFactory, TimingConfig, compare

    model = load_model("darknet19_448")
    calib = load_dataset("sample", input_shape=model.input_spec.chw, limit=args.calibration)
    rows = []
    with tempfile.TemporaryDirectory(prefix="passes-bench-") as wd:
        ctx = PassContext(Path(wd), calibration=calib, threads=threads)
        for label, steps, runtime in candidates(args):
            print(f"building {label} on {runtime} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            rows.append({"pass": label, **build(model, steps, runtime, ctx, threads),
                         "build_seconds": round(time.perf_counter() - t0, 1)})
        ready = [r for r in rows if r["artifact"]]
        factories = [SessionFactory(r["runtime"], r["artifact"], options=r["options"],
                                    label=f"{r['pass']} @ {r['runtime']}") for r in ready]
        timing = TimingConfig(warmup=5, min_runs=args.min_runs, min_seconds=args.min_seconds)
        out = compare(factories, rounds=args.rounds, input_shape=model.input_spec, batch=1,
                      throughput=[1], timing=timing, threads=threads)
    for r, summary, i in zip(ready, out["summary"], range(len(ready))):
        results = [rnd[i] for rnd in out["results"]]
        r["p50_ms"] = summary["p50_ms_median"]
        r["p50_ms_by_round"] = summary["p50_ms_by_round"]
        r["statuses"], r["reasons"] = summary["statuses"], summary["reasons"]
        r["session_info"] = next((x.get("session_info") for x in results
                                  if x.get("session_info")), None)
        r["artifact_mb"] = results[0].get("artifact_mb")
    base = {r["runtime"]: r.get("p50_ms") for r in rows if r["pass"] == "fp32"}
    for r in rows:
        b, p = base.get(r["runtime"]), r.get("p50_ms")
        r["speedup_vs_fp32_same_runtime"] = round(b / p, 2) if b and p else None
        r["speedup_vs_onnxruntime_fp32"] = (round(base["onnxruntime"] / p, 2)
                                            if base.get("onnxruntime") and p else None)
    return rows


def accuracy(args: argparse.Namespace, threads: int) -> list[dict]:
    """ref-small through each pass, on its runtime, over sample:val; drop vs FP32."""
    from infertune.metrics import classification_report, compare_top1

    model = load_model("ref-small")
    shape = model.input_spec.chw
    calib = load_dataset("sample:train", input_shape=shape, limit=128)
    val = load_dataset("sample:val", input_shape=shape)
    rows, base_logits = [], None
    with tempfile.TemporaryDirectory(prefix="passes-acc-") as wd:
        ctx = PassContext(Path(wd), calibration=calib, threads=threads)
        for label, steps, runtime in candidates(args):
            row = {"pass": label, **build(model, steps, runtime, ctx, threads)}
            if row["artifact"]:
                logits = run_val(row, val.x, threads)
                row["top1"] = classification_report(logits, val.y)["top1"]
                if label == "fp32" and runtime == "onnxruntime":
                    base_logits = logits
                if base_logits is not None:
                    row["vs_fp32"] = compare_top1(base_logits, logits, val.y)
            rows.append(row)
    return rows


def run_val(row: dict, x: np.ndarray, threads: int, batch: int = 50) -> np.ndarray:
    from infertune.measure.session import SessionFactory

    # LATENCY hint for OpenVINO: its THROUGHPUT mode runs batches on an AsyncInferQueue whose
    # Python callbacks can deadlock against the session's close() in this process.
    options = {**row["options"], "batch": batch, "hint": "LATENCY"}
    session = SessionFactory(row["runtime"], row["artifact"], options=options).open(threads=threads)
    try:
        outs = [np.asarray(session.run(np.ascontiguousarray(x[i:i + batch]))[0])
                for i in range(0, len(x), batch)]
    finally:
        session.close()
    return np.concatenate(outs).reshape(len(x), -1)


def markdown(result: dict) -> str:
    lines = [f"# Precision passes ({result['date']}, {result['machine']}, "
             f"{result['threads']} threads)", "",
             "Darknet19_448, batch 1, p50 ms (median of per-round p50s over "
             f"{result['rounds']} interleaved rounds); ref-small top-1 on sample:val "
             "(1,000 digits) and the paired change vs FP32 ONNX Runtime with its 95% interval.",
             "", "| pass | runtime | p50 ms | × vs FP32 same runtime | × vs ORT FP32 | "
             "ran as | ref-small top-1 | Δ top-1 [95% CI] |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | --- |"]
    acc = {(r["pass"], r["runtime"]): r for r in result.get("accuracy", [])}
    for r in result.get("latency", []) or result.get("accuracy", []):
        a = acc.get((r["pass"], r["runtime"]), {})
        lines.append("| " + " | ".join([r["pass"], r["runtime"], _f(r.get("p50_ms")),
                                         _f(r.get("speedup_vs_fp32_same_runtime"), 2),
                                         _f(r.get("speedup_vs_onnxruntime_fp32"), 2),
                                         _ran_as(r), _f(a.get("top1"), 3), _delta(a)]) + " |")
    notes = [f"- {r['pass']} @ {r['runtime']}: {r['reason']}"
             for r in result.get("latency", []) + result.get("accuracy", []) if r.get("reason")]
    return "\n".join(lines + [""] + sorted(set(notes))) + "\n"


def _f(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ran_as(row: dict) -> str:
    info = row.get("session_info") or {}
    if info.get("inference_precision"):
        return f"OV {info['inference_precision']}"
    return info.get("int8_lowering") or ""


def _delta(row: dict) -> str:
    cmp = row.get("vs_fp32")
    if not cmp:
        return "–"
    lo, hi = cmp["delta_ci"]
    return f"{100 * cmp['delta']:+.1f} pt [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from infertune.measure.fingerprint import fingerprint
    from infertune.measure.rounds import default_threads

    threads = int(args.threads or default_threads())
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_tag(), "threads": threads, "rounds": args.rounds,
              "load_before": os.getloadavg(), "fingerprint": fingerprint()}
    if not args.skip_accuracy:
        result["accuracy"] = accuracy(args, threads)
    if not args.skip_latency:
        result["latency"] = latency(args, threads)
    result["load_after"] = os.getloadavg()
    stem = args.out or RESULTS / f"passes-{machine_tag()}"
    _atomic.write_text(f"{stem}.json", json.dumps(result, indent=2, default=str) + "\n")
    _atomic.write_text(f"{stem}.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
