"""Compression passes: MACs, params, measured latency and accuracy per pruning ratio.

For ref-small and ref-large (trained; top-1 on all of sample:val, paired change vs the
unpruned model with its 95% interval) and darknet19_448 (random weights: top-1 agreement
with the unpruned model on sample:val images instead of accuracy), each candidate is made by
the passes, profiled (params, MACs), built for ONNX Runtime and timed by the harness
(`infertune.measure.compare`: interleaved rounds, each measurement in a fresh process,
batch 1). Accuracy is measured before recovery and, for the trained models, after recovery:
the same passes followed by `distill` (RECOVERY_STEPS steps of knowledge distillation from
the unpruned model, labels included, on sample:train, at the benchmark's thread count);
the recovery's cost is its own seconds. darknet19_448 gets no
recovery: a training step at 448x448 takes seconds on 2 cores.

Usage: python benchmarks/compression.py [--rounds 3] [--min-seconds 2] [--threads 2]
Writes benchmarks/results/compression-<machine>.json and .md.
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
from infertune.passes import PASSES, PassContext, apply_passes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from passes import run_val  # noqa: E402  (the sibling benchmark's helpers)
from runtimes import RESULTS, machine_tag  # noqa: E402

REF_CANDIDATES = [
    ("original", []),
    ("prune_channels 0.25", [("prune_channels", {"ratio": 0.25})]),
    ("prune_channels 0.5", [("prune_channels", {"ratio": 0.5})]),
    ("prune_channels 0.75", [("prune_channels", {"ratio": 0.75})]),
    ("prune_magnitude 0.5", [("prune_magnitude", {"sparsity": 0.5})]),
    ("prune_magnitude 0.9", [("prune_magnitude", {"sparsity": 0.9})]),
    ("low_rank energy 0.9", [("low_rank", {"energy": 0.9})]),
]
RECOVERY_STEPS = 300
RECOVERED = [(f"{label} + distill", steps + [("distill", {"steps": RECOVERY_STEPS})])
             for label, steps in REF_CANDIDATES if label.startswith(("prune_channels", "low_rank"))]
DARKNET_CANDIDATES = [c for c in REF_CANDIDATES
                      if c[0] in ("original", "prune_channels 0.25", "prune_channels 0.5",
                                  "prune_magnitude 0.9")]
MODELS = [("ref-small", REF_CANDIDATES + RECOVERED), ("ref-large", REF_CANDIDATES + RECOVERED),
          ("darknet19_448", DARKNET_CANDIDATES)]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--darknet-images", type=int, default=64)
    p.add_argument("--models", default=",".join(m for m, _ in MODELS))
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def build(model, steps, ctx: PassContext, threads: int) -> dict:
    """Passes → profile → ONNX Runtime artifact; a failure is a row with its reason."""
    from infertune.profile import profile_model
    from infertune.runtimes import RUNTIMES

    row = {"runtime": "onnxruntime", "artifact": None, "reason": None}
    if any(name not in PASSES for name, _ in steps):
        return {**row, "reason": "pass not registered in this tree"}
    try:
        t0 = time.perf_counter()
        handle, reports = apply_passes(model, steps, ctx) if steps else (model, [])
        row["pass_seconds"] = round(time.perf_counter() - t0, 2)
        row["summaries"] = [r.get("summary") for r in reports]
        prof = profile_model(handle)
        row["params"], row["macs"] = int(prof["params"]), int(prof["macs"])
        rt = RUNTIMES.get("onnxruntime")
        out = ctx.workdir / f"rt-{len(list(ctx.workdir.glob('rt-*')))}"
        row["artifact"] = str(rt.build(handle, out, threads=threads))
        row["options"] = rt.options(1)
    except Exception as exc:  # a candidate that fails is a row, not the end of the run
        row["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return row


def bench_model(name: str, cands: list, args, threads: int) -> list[dict]:
    from infertune.measure import SessionFactory, TimingConfig, compare
    from infertune.metrics import classification_report, compare_top1

    model = load_model(name)
    shape = model.input_spec.chw
    limit = args.darknet_images if name.startswith("darknet") else None
    val = load_dataset("sample:val", input_shape=shape, limit=limit)
    calib = load_dataset("sample:train", input_shape=shape, limit=64)
    rows = []
    with tempfile.TemporaryDirectory(prefix="compression-bench-") as wd:
        train = None if name.startswith("darknet") else load_dataset("sample:train", input_shape=shape)
        ctx = PassContext(Path(wd), calibration=calib, threads=threads, train=train,
                          reference=model, seed=0)
        for label, steps in cands:
            print(f"{name}: building {label} ...", file=sys.stderr, flush=True)
            rows.append({"model": name, "candidate": label, **build(model, steps, ctx, threads)})
        ready = [r for r in rows if r["artifact"]]
        base = None
        for r in ready:
            logits = run_val(r, val.x, threads, batch=16 if limit else 50)
            base = logits if r["candidate"] == "original" else base
            if name.startswith("darknet"):
                r["top1_agreement"] = float((logits.argmax(1) == base.argmax(1)).mean())
            else:
                r["top1"] = classification_report(logits, val.y)["top1"]
                r["vs_original"] = compare_top1(base, logits, val.y)
        factories = [SessionFactory("onnxruntime", r["artifact"], options=r["options"],
                                    label=f"{name} {r['candidate']}") for r in ready]
        timing = TimingConfig(warmup=5, min_runs=args.min_runs, min_seconds=args.min_seconds)
        out = compare(factories, rounds=args.rounds, input_shape=model.input_spec, batch=1,
                      throughput=[1], timing=timing, threads=threads)
    for r, summary in zip(ready, out["summary"]):
        r["p50_ms"], r["p50_ms_by_round"] = summary["p50_ms_median"], summary["p50_ms_by_round"]
        # speed-up as the median of per-round ratios against the original (side by side)
        r["speedup_by_round"] = [round(b / p, 3) if b and p else None for b, p in
                                 zip(ready[0]["p50_ms_by_round"], r["p50_ms_by_round"])]
        ok = [v for v in r["speedup_by_round"] if v]
        r["speedup"] = round(float(np.median(ok)), 3) if ok else None
    orig = rows[0]
    for r in rows:
        if r.get("macs") and orig.get("macs"):
            r["mac_ratio"] = round(r["macs"] / orig["macs"], 3)
    return rows


def markdown(result: dict) -> str:
    lines = [f"# Compression passes ({result['date']}, {result['machine']}, "
             f"{result['threads']} threads, ONNX Runtime, batch 1)", "",
             "p50 ms is the median of per-round p50s over "
             f"{result['rounds']} interleaved rounds; speed-up is the median of per-round "
             f"ratios vs the original. Recovered: the same passes + distill ({RECOVERY_STEPS} "
             "steps on sample:train); recovery s = that row's pass seconds − the unrecovered "
             "row's. darknet19_448 has random weights: top-1 agreement with the original "
             "on sample:val images, not accuracy.", "",
             "| model | candidate | params | MACs | MACs × | p50 ms | speed-up | top-1 / agreement "
             "| Δ top-1 [95% CI] | pass s | recovered top-1 | recovery s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    by_label = {(r["model"], r["candidate"]): r for r in result["rows"]}
    for r in result["rows"]:
        acc = r.get("top1", r.get("top1_agreement"))
        rec = by_label.get((r["model"], r["candidate"] + " + distill"), {})
        rec_s = (rec["pass_seconds"] - r["pass_seconds"]
                 if rec.get("pass_seconds") is not None and r.get("pass_seconds") is not None else None)
        cmp = r.get("vs_original")
        delta = (f"{100 * cmp['delta']:+.1f} pt [{100 * cmp['delta_ci'][0]:+.1f}, "
                 f"{100 * cmp['delta_ci'][1]:+.1f}]") if cmp else "–"
        lines.append("| " + " | ".join([
            r["model"], r["candidate"], _f(r.get("params"), 0), _f(r.get("macs"), 0),
            _f(r.get("mac_ratio"), 3), _f(r.get("p50_ms"), 2), _f(r.get("speedup"), 2),
            _f(acc, 3), delta, _f(r.get("pass_seconds"), 1), _f(rec.get("top1"), 3),
            _f(rec_s, 1)]) + " |")
    notes = [f"- {r['model']} {r['candidate']}: {r['reason']}" for r in result["rows"] if r.get("reason")]
    notes += ["- Unstructured sparsity (prune_magnitude) leaves MACs and dense-kernel time as they "
              "are: any speed-up shown for it is run-to-run noise (see p50_ms_by_round).",
              "- darknet19_448 with random weights predicts (nearly) one class for every image, so "
              "its top-1 agreement is not informative about the damage; use the trained models.",
              f"- load average before {_load(result.get('load_before'))}, after "
              f"{_load(result.get('load_after'))} (a shared machine: absolute ms are inflated)."]
    return "\n".join(lines + [""] + notes) + "\n"


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def _f(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def main(argv=None) -> int:
    args = parse_args(argv)
    from infertune.measure.fingerprint import fingerprint

    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_tag(), "threads": args.threads, "rounds": args.rounds,
              "load_before": os.getloadavg(), "fingerprint": fingerprint(), "rows": [],
              "recovery": f"distill, {RECOVERY_STEPS} steps, sample:train"}
    wanted = set(args.models.split(","))
    for name, cands in MODELS:
        if name in wanted:
            result["rows"] += bench_model(name, cands, args, args.threads)
    result["load_after"] = os.getloadavg()
    stem = args.out or RESULTS / f"compression-{machine_tag()}"
    _atomic.write_text(f"{stem}.json", json.dumps(result, indent=2, default=str) + "\n")
    _atomic.write_text(f"{stem}.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
