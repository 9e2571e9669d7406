"""`infertune bench`: flags → BenchOptions → commands.bench → one table row per runtime and
batch size, the end-to-end table, and the notes a reader needs beside the numbers."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..commands.options import BenchOptions
from .common import (MODEL_HELP, Parents, load_options, make_console, non_negative_float, num,
                     positive_int, progress_to_stderr, shape_text)

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("bench", parents=parents.model,
                       help="time the model on each runtime, side by side (interleaved rounds)")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--runtime", default="all", metavar="LIST",
                   help="comma-separated runtimes (torch, torchscript, compile, onnxruntime, "
                        "openvino, tensorrt) or 'all' (default); the first is the baseline")
    p.add_argument("--batch", default="1", metavar="SIZES",
                   help="batch sizes, e.g. 1,8,32, or 'auto' (latency at 1 and a throughput "
                        "search for the best batch); default 1")
    p.add_argument("--threads", type=positive_int,
                   help="intra-op threads for every runtime (default: physical cores)")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="interleaved rounds A B C A B C ... (default 3)")
    p.add_argument("--min-runs", type=positive_int, default=50,
                   help="at least this many timed calls per measurement (default 50)")
    p.add_argument("--min-seconds", type=non_negative_float, default=5.0,
                   help="and at least this many seconds of timed calls (default 5)")
    p.add_argument("--e2e", metavar="IMAGE_OR_FOLDER",
                   help="also time, at batch 1 and in the same process as the model-only "
                        "time, image file -> class label (decode + preprocess + model + "
                        "argmax) for a classifier, or image file -> boxes (read + letterbox + "
                        "model + decode + NMS) for a detector, whose read + letterbox and "
                        "decode + NMS (on the model's real outputs) are also timed alone")
    p.set_defaults(run=run)


def options(args: argparse.Namespace) -> BenchOptions:
    return BenchOptions(runtimes=args.runtime, batches=args.batch, threads=args.threads,
                        rounds=args.rounds, min_runs=args.min_runs,
                        min_seconds=args.min_seconds, e2e=args.e2e)


def run(args: argparse.Namespace) -> Any:
    from ..commands.bench import run_bench

    result = run_bench(args.model, options(args), load_options(args), progress_to_stderr)
    if not args.json:
        bench_table(result)
    return result


BENCH_COLUMNS = ("runtime", "batch", "p50 ms", "p90 ms", "p99 ms", "img/s", "peak RSS",
                 "artifact", "cold start", "speedup (IQR)", "status")


def _speedup(row: dict[str, Any]) -> str:
    s = row.get("speedup")
    if not s:
        return "–"
    if s["n"] < 2:
        return f"{s['median']:.2f}×"
    return f"{s['median']:.2f}× ({s['q1']:.2f}–{s['q3']:.2f})"


def _throughput(row: dict[str, Any]) -> str:
    ips = row.get("throughput_ips") or {}
    value = ips.get(str(row["batch"])) if len(ips) <= 1 else ips.get(str(row.get("best_batch")))
    text = num(value)
    return text if len(ips) <= 1 or value is None else f"{text} @{row['best_batch']}"


def bench_rows(result: dict[str, Any]) -> list[list[str]]:
    """The table's cells, one list per result row (shared by the terminal and Markdown)."""
    rows = []
    for r in result["results"]:
        lat = r.get("latency_ms") or {}
        rows.append([r["label"] or r["runtime"], str(r["batch"]), num(lat.get("p50"), "{:.2f}"),
                     num(lat.get("p90"), "{:.2f}"), num(lat.get("p99"), "{:.2f}"),
                     _throughput(r), num(r.get("peak_rss_mb"), "{:.0f} MiB"),
                     num(r.get("artifact_mb"), "{:.1f} MiB"),
                     num(r.get("cold_start_ms"), "{:.0f} ms"), _speedup(r),
                     r.get("status") or "–"])
    return rows


def _row_notes(r: dict[str, Any]) -> list[str]:
    info, notes = r.get("session_info") or {}, []
    if info.get("inference_precision"):
        notes.append(f"precision that ran {info['inference_precision']} (requested "
                     f"{info.get('requested_precision')}; nodes by precision "
                     f"{info.get('runtime_precisions')})")
    if r.get("compile_ms") is not None:
        notes.append(f"compile {r['compile_ms'] / 1e3:.1f} s (first call; inside the cold start)")
    if r.get("status") not in ("ok", None) and r.get("reason"):
        notes.append(f"{r['status']}: {r['reason']}")
    if r.get("noisy_rounds"):  # one line, not one per round: the rounds' CVs are in the JSON
        notes.append(f"latency CV > 10% in {r['noisy_rounds']} of {r['rounds']} round(s): the "
                     "machine was noisy; the per-round ratios (speedup) are the figure to trust")
    notes += [w for w in r.get("warnings") or [] if not w.startswith("latency CV")]
    return notes


def bench_notes(result: dict[str, Any]) -> list[str]:
    """One line per fact a reader needs beside the numbers: setup, precision, failures.

    A fact that holds for every batch size of a runtime is printed once, under its name.
    """
    cpu = result["machine"].get("cpu", {})
    notes = [f"{result['threads']} thread(s) for every runtime · {result['rounds']} interleaved "
             f"round(s) · {cpu.get('model')} ({cpu.get('physical_cores')} cores) · speedup = "
             "median of per-round p50 ratios vs the first runtime (IQR across rounds)"]
    by_note: dict[tuple[str, str], list[str]] = {}
    for r in result["results"]:
        for note in _row_notes(r):
            by_note.setdefault((r["runtime"], note), []).append(str(r["batch"]))
    batches = {str(r["batch"]) for r in result["results"]}
    for (runtime, note), seen in by_note.items():
        tag = runtime if set(seen) == batches and len(batches) > 1 else \
            f"{runtime} b{','.join(seen)}"
        notes.append(f"{tag}: {note}")
    return notes


def bench_e2e_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in result["results"]:
        e2e = r.get("e2e")
        if e2e and e2e.get("latency_ms"):
            rows.append([r["runtime"], num(e2e["model_only_p50_ms"], "{:.2f}"),
                         num(e2e["latency_ms"]["p50"], "{:.2f}"),
                         num(e2e.get("added_p50_ms"), "{:.2f}")])
    return rows


E2E_COLUMNS = ("runtime", "model p50 ms", "end-to-end p50 ms", "added ms")
DETECTION_E2E_COLUMNS = ("runtime", "read+letterbox p50 ms", "model p50 ms",
                         "decode+NMS p50 ms", "end-to-end p50 ms", "unexplained ms")


def bench_detection_rows(result: dict[str, Any]) -> list[list[str]]:
    """A detector's e2e cells: where the time of one image goes (DETECTION_E2E_COLUMNS)."""
    rows = []
    for r in result["results"]:
        e2e = r.get("e2e")
        if e2e and e2e.get("latency_ms"):
            rows.append([r["runtime"], num((e2e.get("preprocess_ms") or {}).get("p50"), "{:.2f}"),
                         num(e2e["model_only_p50_ms"], "{:.2f}"),
                         num((e2e.get("postprocess_ms") or {}).get("p50"), "{:.2f}"),
                         num(e2e["latency_ms"]["p50"], "{:.2f}"),
                         num(e2e.get("unexplained_p50_ms"), "{:.2f}")])
    return rows


def detection_e2e_notes(result: dict[str, Any]) -> list[str]:
    """What each column of the detector's e2e table contains."""
    head = result["e2e"]
    h, w = head["input_hw"]
    boxes = [f"{r['runtime']} {r['e2e']['boxes_per_image']:.1f}" for r in result["results"]
             if r.get("e2e") and r["e2e"].get("boxes_per_image") is not None]
    return [f"image file → boxes, all parts timed in the same measuring process, batch 1, "
            f"p50 per image over {head['images']} image(s); percentiles and samples in --json",
            f"read+letterbox: read and decode the file, letterbox to {w}×{h}, timed alone · "
            "model: the network alone (the first table's p50, a seeded input) · decode+NMS: "
            "every head decoded, letterbox undone, NMS, on the network's real outputs for "
            "these images, timed alone · end-to-end: all of it as one call per image · "
            "unexplained: end-to-end minus the three parts (glue, cache effects; < 0 is noise)",
            f"boxes kept (score > {head['score_threshold']}, NMS at IoU "
            f"{head['nms_threshold']}), mean per decoded image: " + (", ".join(boxes) or "–")]


def _e2e_layout(result: dict[str, Any]) -> tuple[str, tuple[str, ...], list, list[str]]:
    """(title, columns, rows, notes) of the e2e table: a detector's or a classifier's."""
    head = result.get("e2e") or {}
    if head.get("task") == "detection":
        return ("image file → boxes, batch 1 (letterbox, decode + NMS)", DETECTION_E2E_COLUMNS,
                bench_detection_rows(result), detection_e2e_notes(result))
    return (f"image file → label, batch 1 ({head.get('preprocess')} preprocessing)",
            E2E_COLUMNS, bench_e2e_rows(result), [])


def _e2e_table(result: dict[str, Any], console: Console) -> None:
    from rich.table import Table
    title, columns, rows, notes = _e2e_layout(result)
    if not rows:
        return
    t = Table(title=title)
    for col in columns:
        t.add_column(col, justify="left" if col == "runtime" else "right")
    for cells in rows:
        t.add_row(*cells)
    console.print(t)
    for note in notes:
        console.print(f"e2e: {note}", highlight=False, markup=False)


def bench_table(result: dict[str, Any], console: Console | None = None) -> None:
    from rich.table import Table
    console = console or make_console()
    table = Table(title=f"bench of {result['model'].get('name')} "
                        f"(input {shape_text(result['model']['input']['shape'])})")
    for col in BENCH_COLUMNS:
        table.add_column(col, justify="left" if col in ("runtime", "status") else "right")
    for cells in bench_rows(result):
        table.add_row(*cells)
    console.print(table)
    _e2e_table(result, console)
    for note in bench_notes(result):
        console.print(f"note: {note}", highlight=False, markup=False)


def bench_markdown(result: dict[str, Any]) -> str:
    """The same table as Markdown (benchmarks/ writes it; the README quotes it)."""
    lines = ["| " + " | ".join(BENCH_COLUMNS) + " |",
             "| " + " | ".join("---" if c in ("runtime", "status") else "---:"
                               for c in BENCH_COLUMNS) + " |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in bench_rows(result)]
    lines.append("")
    lines += [f"- {note}" for note in bench_notes(result)]
    return "\n".join(lines) + "\n"
