"""infertune against the pipelines a deployment engineer would try by hand (issue #9).

For each case (Darknet19_448 at batch 1 and 8, ref-large at batch 1) every pipeline is
built once, then all are measured by the same harness (`infertune.measure.compare`):
interleaved rounds, each measurement in a fresh process, same threads, same batch.

Pipelines, each with its tool's documented defaults:
- PyTorch eager FP32 and torch.compile FP32: the runtimes `torch` and `compile`.
- ONNX Runtime FP32: the runtime `onnxruntime` on the exported ONNX file.
- ONNX Runtime static INT8: `quant_pre_process` (the pre-processing ORT's docs recommend
  before quantizing), then `quantize_static` called *here* with its defaults except what the
  issue names: QDQ (its default format), per_channel=True, MinMax (its default
  calibration). Not infertune's int8_static pass: that one keeps Softmax float and
  calibrates in strides (passes/_ort_quant.py), which are not ORT's defaults.
- OpenVINO FP32: the runtime `openvino` (FP32 requested explicitly; runtimes/openvino.py).
- OpenVINO INT8 through NNCF: `openvino.convert_model` on the same ONNX file, then
  `nncf.quantize(model, nncf.Dataset(...))` with no other argument (NNCF's defaults:
  MIXED/PERFORMANCE preset by model type, fast bias correction, its own range estimators),
  called here for the same reason (infertune's pass sets the range estimator and preset).
- infertune: `api.optimize` with a 1-point budget (top-1 for ref-large, top-1 agreement for
  Darknet19_448); its pick from RUN_DIR/best/ joins the same rounds. Its production time is
  the whole search.
Data: each model's own built-in set with its own preprocessing (benchmarks/peers_quality.py):
`:train` for calibration and `:val` for evaluation on sets with parts (sample, clutter),
disjoint slices of the views on `photos` (calibration = the first `--calibration` views,
evaluation = the next `--eval-n`). Both quantizers calibrate on the same images.

Quality: a trained model with labelled data gets top-1 (Wilson interval) and the paired drop
against eager FP32 (Tango's interval); unlabelled data (photos) or random weights
(Darknet19_448) get top-1 agreement with eager FP32 (Wilson) and mean cosine. Every
pipeline's outputs are computed in this process by its runtime's session. The results carry
the date and the machine fingerprint (`infertune.measure.fingerprint`).

Machine limits: `infertune.measure.limits` (FP32 GEMM, INT8 GEMM, copy bandwidth); each
pipeline's achieved rate is 2·MACs·batch / p50, as a fraction of the FP32 and INT8 peaks.

Usage: python benchmarks/peers.py [--quick] [--rounds 3] [--cases darknet19_448:1,...]
                                  [--no-infertune] [--threads N]
Writes benchmarks/results/peers-<machine>.json and .md. Full run: ~30-60 min on 2 cores
(plus infertune's search); --quick: ~10 min. Keep the machine otherwise idle.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from infertune import _atomic
from infertune.load import load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_quality import REFERENCE, case_data, score
from runtimes import RESULTS, machine_tag

PEERS = ("torch eager fp32", "torch.compile fp32", "onnxruntime fp32", "onnxruntime int8",
         "openvino fp32", "openvino nncf int8")
INFERTUNE = "infertune pick"
PRECISION = {"onnxruntime int8": "int8", "openvino nncf int8": "int8"}
DEFAULT_CASES = "darknet19_448:1,darknet19_448:8,ref-large:1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=DEFAULT_CASES, help="MODEL:BATCH,... to run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calibration", type=int, default=128, help="calibration images")
    p.add_argument("--eval-n", type=int, default=200,
                   help="evaluation images where the quality is fidelity (unlabelled data or "
                        "random weights); a trained model with labels uses all of :val")
    p.add_argument("--no-infertune", nargs="?", const="all", default=None, metavar="MODELS",
                   help="peers only: no optimize run (for the comma-separated MODELS, or all)")
    p.add_argument("--infertune-run", metavar="MODEL=RUN_DIR,...",
                   help="use a finished optimize run's pick instead of searching again")
    p.add_argument("--search-budget-s", type=float, default=None,
                   help="optimize's time_budget_s (stop starting candidates after this)")
    p.add_argument("--quick", action="store_true",
                   help="2 rounds, short measurements, 32 calibration / 50 agreement images")
    p.add_argument("--budget", type=float, default=1.0,
                   help="points of top-1 (or of agreement) a peer may lose to count as 'the "
                        "best peer within budget' (optimize's --max-drop for its pick)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: rewrite the .md beside a saved results JSON")
    p.add_argument("--add-note", action="append", default=[], metavar="TEXT",
                   help="with --render: append TEXT to the JSON's run notes (a finding "
                        "about the run, e.g. why a row is what it is)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.min_runs, args.min_seconds = 2, 10, 1.0
        args.calibration, args.eval_n = 32, 50
    return args


def cases(args: argparse.Namespace) -> list[tuple[str, int]]:
    out = []
    for item in args.cases.split(","):
        model, _, batch = item.partition(":")
        out.append((model.strip(), int(batch or 1)))
    return out


# ---------------------------------------------------------------------------- building


def timed(fn, *a, **kw):
    start = time.perf_counter()
    value = fn(*a, **kw)
    return value, time.perf_counter() - start


def ort_int8(onnx_path: Path, calib: np.ndarray, out_dir: Path) -> Path:
    """ORT's documented flow: quant_pre_process, then quantize_static (QDQ, per-channel,
    MinMax; every other argument left at its default)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, name: str):
            self._items = iter([{name: calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self._items, None)

    import onnx

    name = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].name
    prepped, out = out_dir.resolve() / "pre.onnx", out_dir.resolve() / "int8.onnx"
    # in out_dir: when its symbolic shape inference fails, quant_pre_process leaves
    # sym_shape_infer_temp.onnx (and a <uuid>.data) in the current folder
    with contextlib.chdir(out_dir):
        quant_pre_process(str(Path(onnx_path).resolve()), str(prepped))
    quantize_static(str(prepped), str(out), Reader(name), quant_format=QuantFormat.QDQ,
                    per_channel=True, calibrate_method=CalibrationMethod.MinMax)
    return out


def nncf_int8(onnx_path: Path, calib: np.ndarray, out_dir: Path) -> Path:
    """NNCF's documented default: nncf.quantize(model, dataset), nothing else set."""
    import nncf
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    quantized = nncf.quantize(model, nncf.Dataset([calib[i:i + 1] for i in range(len(calib))]))
    out = out_dir / "nncf-int8.xml"
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def build_peer(name: str, handle, calib: np.ndarray, work: Path, threads: int) -> dict:
    """One peer's artifact, runtime and production time; a failure is a row with its reason."""
    from infertune.runtimes import RUNTIMES

    runtime = {"torch eager fp32": "torch", "torch.compile fp32": "compile",
               "openvino fp32": "openvino", "openvino nncf int8": "openvino"}.get(
        name, "onnxruntime")
    row = {"pipeline": name, "runtime": runtime, "precision": PRECISION.get(name, "fp32"),
           "artifact": None, "reason": None}
    folder = work / name.replace(" ", "_").replace(".", "")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if name in PRECISION:
            onnx_path, export_s = timed(RUNTIMES.get("onnxruntime").build, handle, folder)
            quantize = ort_int8 if runtime == "onnxruntime" else nncf_int8
            artifact, quant_s = timed(quantize, onnx_path, calib, folder)
            row["build_s"] = round(export_s + quant_s, 2)
        else:
            artifact, row["build_s"] = timed(RUNTIMES.get(runtime).build, handle, folder,
                                             threads=threads)
        row["artifact"], row["options"] = str(artifact), RUNTIMES.get(runtime).options(None)
    except Exception as exc:  # a peer that cannot be built is reported, not fatal
        row["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return row


def build_infertune(model: str, batch: int, work: Path, args, threads: int, data) -> dict:
    """infertune's pick from `api.optimize` (1-point budget), or a row saying why not."""
    from infertune import api

    row = {"pipeline": INFERTUNE, "runtime": None, "precision": None, "artifact": None,
           "reason": None}
    if args.no_infertune and (args.no_infertune == "all"
                              or model in args.no_infertune.split(",")):
        return {**row, "reason": "not run in this benchmark run (--no-infertune)"}
    reuse = dict(item.split("=", 1) for item in (args.infertune_run or "").split(",") if "=" in item)
    if model in reuse:  # a finished optimize run of this model: its search time is its cost
        report = json.loads((Path(reuse[model]) / "report.json").read_text())
        row["build_s"] = (report.get("run") or {}).get("duration_s")
        return _pick_row(row, report, Path(reuse[model]))
    config = {"model": model, "out": str(work / "run"), "data": data.spec, "max_drop": 1.0,
              "metric": "top1" if data.labelled else "agreement",
              "threads": threads, "calib_size": args.calibration,
              "time_budget_s": args.search_budget_s}
    try:
        report, row["build_s"] = timed(api.optimize, config)
    except Exception as exc:  # the pick's absence is reported, the peers still run
        return {**row, "reason": f"optimize failed: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:300]}"}
    return _pick_row(row, report, work / "run")


def _pick_row(row: dict, report: dict, run_dir: Path) -> dict:
    row["search_duration_s"] = (report.get("run") or {}).get("duration_s")
    export = report.get("export")
    if not export:
        return {**row, "reason": f"optimize made no pick: {(report.get('no_pick') or {}).get('reason')}"}
    pick = next(c for c in report["candidates"] if c["id"] == report["pick"])
    # report.json's paths are as the optimize process saw them (relative to its working
    # directory); the exported artifact is always in RUN_DIR/best/.
    artifact = run_dir / "best" / Path(export["artifact"]).name
    row.update(runtime=export["runtime"], artifact=str(artifact), label=pick.get("label"),
               precision=pick.get("precision"), run_dir=str(run_dir),
               options=_runtime_options(export["runtime"], pick.get("runtime_options")))
    return row


def _runtime_options(runtime: str, chosen: dict | None = None) -> dict:
    """The runtime's opener options, with the configuration the search kept for its pick
    (its configured stage: e.g. one thread) over them, as its run.py opens it."""
    from infertune.runtimes import RUNTIMES

    return {**RUNTIMES.get(runtime).options(None), **(chosen or {})}


# ---------------------------------------------------------------------------- accuracy


# ---------------------------------------------------------------------------- speed


def measure_rows(rows: list[dict], shape, batch: int, args, threads: int) -> dict:
    """All built pipelines in the same interleaved rounds; fills each row's numbers."""
    from infertune.measure import SessionFactory, TimingConfig, compare

    ready = [r for r in rows if r.get("artifact")]
    factories = [SessionFactory(r["runtime"], r["artifact"], options=r.get("options", {}),
                                label=r["pipeline"]) for r in ready]
    timing = TimingConfig(warmup=5, min_runs=args.min_runs, min_seconds=args.min_seconds)
    out = compare(factories, rounds=args.rounds, input_shape=list(shape), batch=batch,
                  throughput=[batch], timing=timing, threads=threads)
    for i, (row, summary) in enumerate(zip(ready, out["summary"])):
        results = [rnd[i] for rnd in out["results"]]
        ok = [res for res in results if res.get("status") == "ok"]
        row.update(p50_ms=summary["p50_ms_median"], p50_ms_by_round=summary["p50_ms_by_round"],
                   statuses=summary["statuses"], reasons=summary["reasons"],
                   noisy_rounds=summary["noisy_rounds"])
        row["p90_ms"] = _median([r["latency_ms"]["p90"] for r in ok])
        row["throughput_ips"] = _median([(r.get("throughput_ips") or {}).get(str(batch))
                                         or (r.get("throughput_ips") or {}).get(batch)
                                         for r in ok])
        row["peak_rss_mb"] = _median([r.get("peak_rss_mb") for r in ok])
        row["artifact_mb"] = next((r.get("artifact_mb") for r in ok), None)
        row["session_info"] = next((r.get("session_info") for r in ok
                                    if r.get("session_info")), None)
    return {"rounds": args.rounds, "timing": {"warmup": 5, "min_runs": args.min_runs,
                                              "min_seconds": args.min_seconds},
            "fingerprint": out["fingerprint"]}


def _median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def versus_best_peer(rows: list[dict]) -> str | None:
    """Each row's speed against the fastest peer (lowest median p50), per round: the
    median of the per-round ratios best-peer p50 / row p50 (>1: faster), with min and max."""
    peers = [r for r in rows if r["pipeline"] in PEERS and r.get("p50_ms")]
    return _versus(rows, peers, "vs_best_peer")


def _versus(rows: list[dict], peers: list[dict], key: str) -> str | None:
    """Sets each row's `key` to its per-round ratios against the fastest of `peers`; that
    peer's name, or None when there is none."""
    from infertune.measure.stats import ratio_summary

    if not peers:
        return None
    best = min(peers, key=lambda r: r["p50_ms"])
    for row in rows:
        pairs = zip(best.get("p50_ms_by_round", []), row.get("p50_ms_by_round") or [])
        row[key] = ratio_summary([b / p for b, p in pairs if b and p])
    return best["pipeline"]


def drop_high(row: dict) -> float | None:
    """The upper end of a row's 95% drop interval in points, as optimize's budget reads it:
    the paired top-1 drop vs eager FP32 (labelled), else disagreement with eager FP32's top-1
    (Wilson); None when the row was not scored."""
    from infertune.metrics.budget import disagreement_drop

    if row.get("drop_vs_eager"):
        return row["drop_vs_eager"]["ci"][1]
    fid = row.get("fidelity") or {}
    if fid.get("top1_agreement") is None or not fid.get("n"):
        return None
    n = int(fid["n"])
    return disagreement_drop(n, n - int(round(fid["top1_agreement"] * n))).high


def versus_best_peer_within(rows: list[dict], points: float) -> str | None:
    """Each row's speed against the fastest peer whose drop is within `points` (the same
    BudgetRule optimize applies to its candidates): `vs_best_peer_within`, per-round ratios
    as in `versus_best_peer`. The fastest peer can be one a user could not ship (ORT's
    default INT8 on a CPU whose INT8 sums saturate); this is the comparison at equal
    quality. None when no peer is within."""
    from infertune.metrics.budget import BudgetRule

    rule = BudgetRule(points)
    for row in rows:
        row["within_budget"] = rule.within(drop_high(row)) if row["pipeline"] != REFERENCE \
            else True
    peers = [r for r in rows if r["pipeline"] in PEERS and r.get("p50_ms") and r["within_budget"]]
    return _versus(rows, peers, "vs_best_peer_within")


def achieved(rows: list[dict], macs: int, batch: int, limits: dict) -> None:
    """Achieved operations per second (2·MACs·batch / p50) and its fraction of each peak."""
    for row in rows:
        if not row.get("p50_ms"):
            continue
        gops = 2.0 * macs * batch / (row["p50_ms"] / 1e3) / 1e9
        row["achieved_gops"] = round(gops, 1)
        for key in ("fp32_gflops", "int8_gops"):
            peak = limits.get(key)
            row[f"fraction_of_{key}"] = round(gops / peak, 3) if peak else None


# ---------------------------------------------------------------------------- one case


def run_case(model_name: str, batch: int, args, threads: int, limits: dict) -> dict:
    """Builds every pipeline for one model and batch, scores and measures them together."""
    from infertune.profile import profile_model

    handle = load_model(model_name)
    shape = handle.input_spec.chw
    data = case_data(handle, args.calibration, args.eval_n)
    calib = data.calib
    macs = profile_model(handle)["macs"]
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        work = Path(tmp)
        rows = []
        for name in PEERS:
            log(f"[{model_name} b{batch}] building {name} ...")
            rows.append(build_peer(name, handle, calib, work, threads))
        log(f"[{model_name} b{batch}] infertune optimize ...")
        rows.append(build_infertune(model_name, batch, work / "infertune", args, threads,
                                    data))
        log(f"[{model_name} b{batch}] accuracy ...")
        scoring = score(rows, data, threads, batch=100 if data.labelled else 10)
        log(f"[{model_name} b{batch}] {args.rounds} interleaved rounds ...")
        measured = measure_rows(rows, shape, batch, args, threads)
    best = versus_best_peer(rows)
    best_within = versus_best_peer_within(rows, args.budget)
    achieved(rows, macs, batch, limits)
    return {"model": model_name, "batch": batch, "input_shape": list(shape), "macs": macs,
            "calibration": {"data": data.calib_desc, "n": len(calib)}, "scoring": scoring,
            "best_peer": best, "budget_points": args.budget,
            "best_peer_within_budget": best_within, **measured, "rows": rows}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- report


DATA_NOTES = {"photos": (
    "- data: `photos` has no parts and no labels; calibration and evaluation are disjoint "
    "slices of its fixed view order, but all views are whole images or random crops of the "
    "same 15 photographs (infertune.data.photo_views), so calibration and evaluation share "
    "scenes and the intervals describe these views, not other photos")}

COLUMNS = ("pipeline", "runtime", "ran as", "p50 ms", "p90 ms", "img/s", "× best peer "
           "[min, max]", "× best peer within budget", "peak RSS MB", "size MB",
           "quality [95% CI]", "build s", "% FP32 peak", "% INT8 peak")


def _f(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ms(value) -> str:
    """Milliseconds: 3 significant figures below 100 (ref-large runs in under 1 ms)."""
    if value is None:
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _quality(row: dict) -> str:
    acc, fid = row.get("accuracy"), row.get("fidelity") or {}
    if acc:
        lo, hi = acc["top1_ci"]
        text = f"top-1 {100 * acc['top1']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
        drop = row.get("drop_vs_eager")
        if drop:
            text += (f"; drop {drop['points']:+.1f} pt [{drop['ci'][0]:+.1f}, "
                     f"{drop['ci'][1]:+.1f}]")
        return text
    if fid.get("top1_agreement") is not None:
        lo, hi = fid["top1_agreement_ci"]
        return (f"agree {100 * fid['top1_agreement']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}], "
                f"cos {fid['cosine']:.4f}")
    return "–"


def _ran_as(row: dict) -> str:
    info = row.get("session_info") or {}
    parts = [row.get("precision") or ""]
    if info.get("inference_precision"):
        parts.append(f"OV {info['inference_precision']}")
    return " ".join(p for p in parts if p)


def _row(row: dict) -> str:
    vs = row.get("vs_best_peer")
    ratio = f"{vs['median']:.3g} [{vs['min']:.3g}, {vs['max']:.3g}]" if vs else "–"
    vw = row.get("vs_best_peer_within")
    within = f"{vw['median']:.3g} [{vw['min']:.3g}, {vw['max']:.3g}]" if vw else "–"
    if row.get("within_budget") is False:
        within += " (over budget)"
    pct = {k: (None if row.get(f"fraction_of_{k}") is None else 100 * row[f"fraction_of_{k}"])
           for k in ("fp32_gflops", "int8_gops")}
    cells = [row["pipeline"], row.get("runtime") or "–", _ran_as(row), _ms(row.get("p50_ms")),
             _ms(row.get("p90_ms")), _f(row.get("throughput_ips")), ratio, within,
             _f(row.get("peak_rss_mb"), 0), _f(row.get("artifact_mb")), _quality(row),
             _f(row.get("build_s")), _f(pct["fp32_gflops"], 0), _f(pct["int8_gops"], 0)]
    return "| " + " | ".join(cells) + " |"


def _calibration(calib: dict) -> str:
    """A described slice as it is; a bare spec (results written before slices were
    described) with its count."""
    data = calib["data"]
    return data if " " in data else f"{calib['n']} {data} images"


ORT_SOFTMAX_NOTE = (" — ORT's default QDQ quantizes the final Softmax on a fixed [0, 1] range "
                    "(step 1/127), so 1000-class probabilities all round to 0")


def case_markdown(case: dict) -> list[str]:
    scoring = case["scoring"]
    evaluation = scoring.get("evaluation") or f"{scoring['n']} {scoring['data']} images"
    what = (f"top-1 on {evaluation} (labelled), and the paired drop vs "
            f"{scoring['reference']} in points (> 0: worse) with Tango's 95% interval"
            + (" on the counts divided by the clusters' Rao–Scott design effect"
               if "clusters" in evaluation else "")
            if scoring["labelled"]
            else f"top-1 agreement (Wilson 95%) and mean cosine with {scoring['reference']} "
                 f"on {evaluation} (no labels, or random weights: fidelity, not accuracy)")
    lines = [f"## {case['model']}, batch {case['batch']} ({case['macs'] / 1e9:.2f} GMAC, "
             f"input {'×'.join(map(str, case['input_shape']))})", "",
             f"Quality: {what}. Calibration: {_calibration(case['calibration'])} for both "
             f"quantizers. "
             f"Best peer: {case['best_peer']}."
             + (f" Best peer within {case['budget_points']:g} point(s) (upper end of the "
                f"95% interval): {case.get('best_peer_within_budget') or 'none'}."
                if "budget_points" in case else ""), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += [_row(r) for r in case["rows"]]
    notes = [DATA_NOTES[scoring["data"]]] if scoring["data"] in DATA_NOTES else []
    notes += [f"- {r['pipeline']}: {r[k]}" for r in case["rows"]
             for k in ("reason", "accuracy_reason") if r.get(k)]
    notes += [f"- {r['pipeline']}: {r['label']} (optimize's search took "
              f"{_f(r.get('search_duration_s'))} s)" for r in case["rows"] if r.get("label")]
    notes += [f"- {r['pipeline']}: {'; '.join(r['reasons'])}" for r in case["rows"]
              if r.get("reasons")]
    notes += [f"- {r['pipeline']}: every output is exactly 0 (quality collapsed)"
              + (ORT_SOFTMAX_NOTE if r["runtime"] == "onnxruntime" else "")
              for r in case["rows"] if r.get("outputs_all_zero")]
    return lines + [""] + notes + ([""] if notes else [])


def fingerprint_line(fp: dict) -> str:
    """The machine fingerprint in one line (the JSON holds all of it)."""
    cpu, isa = fp.get("cpu") or {}, (fp.get("cpu") or {}).get("isa") or {}
    flags = ", ".join(k for k, v in isa.items() if v)
    return (f"Machine fingerprint: {cpu.get('model')}, {cpu.get('physical_cores')} physical / "
            f"{cpu.get('logical_cores')} logical cores, ISA {flags}, "
            f"virtualized {cpu.get('virtualized')}, {fp.get('memory_total_mb')} MB RAM, "
            f"{(fp.get('os') or {}).get('platform')}, Python "
            f"{(fp.get('python') or {}).get('version')}, host {fp.get('hostname')}.")


def markdown(result: dict) -> str:
    lim = result["limits"]
    cpu = result["fingerprint"]["cpu"]
    libs = result["fingerprint"]["libraries"]
    versions = ", ".join(f"{k} {libs.get(k)}" for k in ("torch", "onnxruntime", "openvino",
                                                         "nncf") if libs.get(k))
    lines = [f"# infertune vs its peers ({result['date']}, {result['machine']})", "",
             f"`python benchmarks/peers.py {' '.join(result['argv'])}` on {cpu['model']} "
             f"({cpu['physical_cores']} cores), {result['threads']} threads, {versions}. "
             f"Load average before/after: {result['load_before']} / {result['load_after']}; "
             f"wall time {result['wall_s']:.0f} s.", "",
             f"Machine limits ({lim['threads']} threads, measured): FP32 "
             f"{_f(lim['fp32_gflops'])} GFLOP/s, INT8 {_f(lim['int8_gops'])} GOP/s, memory "
             f"{_f(lim['mem_gbs'])} GB/s ({lim['method']})", "",
             fingerprint_line(result["fingerprint"]), "",
             "p50/p90: medians over rounds of each round's percentile; × best peer: median "
             "of per-round ratios (fastest peer's p50 / this p50; > 1 is faster) with their "
             "min and max; img/s at the case's batch; build s: time to produce the model "
             "(export + quantization; infertune: its whole search); % peak: 2·MACs·batch / "
             "p50 over the measured FP32 and INT8 peaks.", "",
             "Caveat: this machine is shared with other work and noisy (single runs swing "
             "±15%); only the per-round ratios are comparable, absolute figures are not.", ""]
    cores = cpu.get("logical_cores") or 1
    if max(result["load_before"][0], result["load_after"][0]) > cores:
        lines += [f"**Disturbed run**: the 1-minute load average exceeded the {cores} cores "
                  "(other work was running): neither the machine limits nor the latencies "
                  "are those of an idle machine.", ""]
    if result.get("notes"):  # what the operator found about this run (--add-note)
        lines += ["Run notes:", ""] + [f"- {note}" for note in result["notes"]] + [""]
    for case in result["cases"]:
        lines += case_markdown(case)
    return "\n".join(lines) + "\n"


def run_header(argv: list[str] | None, threads: int) -> dict:
    """What every peers table records about its run before measuring: date, machine tag,
    threads, command line, load average and the machine fingerprint."""
    from infertune.measure.fingerprint import fingerprint

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_tag(), "threads": threads,
            "argv": sys.argv[1:] if argv is None else list(argv),
            "load_before": [round(v, 2) for v in os.getloadavg()],
            "fingerprint": fingerprint()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text())
        if args.add_note:
            saved["notes"] = saved.get("notes", []) + args.add_note
            _atomic.write_text(args.render, json.dumps(saved, indent=1, default=str) + "\n")
        _atomic.write_text(args.render.with_suffix(".md"), markdown(saved))
        return 0
    from infertune.measure.limits import machine_limits
    from infertune.measure.rounds import default_threads

    threads = int(args.threads or default_threads())
    start = time.monotonic()
    result = run_header(argv, threads)
    log("measuring the machine's limits ...")
    result["limits"] = machine_limits(threads, refresh=True)
    result["cases"] = [run_case(model, batch, args, threads, result["limits"])
                       for model, batch in cases(args)]
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    result["wall_s"] = time.monotonic() - start
    stem = args.out or RESULTS / f"peers-{machine_tag()}"
    _atomic.write_text(f"{stem}.json", json.dumps(result, indent=1, default=str) + "\n")
    _atomic.write_text(f"{stem}.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
