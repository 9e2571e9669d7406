"""Terminal rendering of command results (rich tables on stdout). Pure presentation: every
number shown here is already in the result dict that --json prints."""
from __future__ import annotations

from typing import Any

import sys

from rich.console import Console
from rich.table import Table


def make_console() -> Console:
    """stdout console; when piped, wide enough that tables are not cut to 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 200)


def human(n: float, unit: str = "") -> str:
    """12_345_678 -> '12.35 M'; keeps three significant decimals for readability."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human_bytes(n: float) -> str:
    for factor, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{int(n)} B"


def _shape(shape: Any) -> str:
    return "×".join(str(d) for d in shape) if isinstance(shape, (list, tuple)) else str(shape)


def zoo_table(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    table = Table(title="infertune zoo (random weights unless trained or a checkpoint is given)")
    for col in ("name", "input", "classes", "params", "MACs", "preprocess", "weights", "description"):
        table.add_column(col, justify="right" if col in ("params", "MACs", "classes") else "left")
    for r in rows:
        weights = r.get("weights") or "random"
        if r.get("recorded_top1") is not None:
            weights = f"{weights} ({100 * r['recorded_top1']:.1f}% val top-1)"
        table.add_row(r["name"], _shape(r["input_size"]), str(r["num_classes"]), human(r["params"]),
                      human(r["macs"]), r["preprocess"], weights, r["description"])
    (console or make_console()).print(table)


def profile_table(result: dict[str, Any], top: int = 0, console: Console | None = None) -> None:
    layers = list(enumerate(result["layers"]))
    if top:
        layers = sorted(layers, key=lambda item: item[1]["macs"], reverse=True)[:top]
    table = Table(title=f"profile of {result.get('model', result.get('source'))} "
                        f"(input {_shape(result['input_shape'])}, batch 1, static counts)")
    cols = ("#", "layer", "type", "output", "params", "MACs", "weights", "activations",
            "mem. access", "MAC/byte")
    for col in cols:
        table.add_column(col, justify="left" if col in ("layer", "type", "output") else "right")
    for i, r in layers:
        table.add_row(str(i), r["name"], r["type"], _shape(r["output_shape"]), human(r["params"]),
                      human(r["macs"]), human_bytes(r["weight_bytes"]),
                      human_bytes(r["activation_bytes"]), human_bytes(r["mac_bytes"]),
                      f"{r['intensity']:.1f}")
    table.add_row("", "total", "", _shape(result["output_shape"]), human(result["params"]),
                  human(result["macs"]), human_bytes(result["weight_bytes"]),
                  human_bytes(result["activation_bytes"]), human_bytes(result["mac_bytes"]),
                  f"{result['intensity']:.1f}", style="bold")
    console = console or make_console()
    console.print(table)
    console.print(f"params {result['params']:,} learnable (+{result.get('buffers', 0):,} buffers, "
                  f"e.g. BN running statistics) · MACs {result['macs']:,} "
                  "(multiply-accumulates of conv and linear layers; FLOPs ≈ 2×MACs)")
    if result.get("note"):
        console.print(f"note: {result['note']}")


def _fmt(value: Any, unit: str) -> str:
    return "n/a" if value is None else f"{value:,.4g} {unit}"


def limits_summary(limits: dict[str, Any], console: Console | None = None) -> None:
    """The machine's measured limits and where the model sits (profile --limits)."""
    m = limits["machine"]
    console = console or make_console()
    cached = " (cached)" if m.get("cached") else ""
    console.print(f"machine limits at {m['threads']} thread(s){cached}: FP32 "
                  f"{_fmt(m['fp32_gflops'], 'GFLOP/s')} · INT8 {_fmt(m['int8_gops'], 'GOP/s')} · "
                  f"memory {_fmt(m['mem_gbs'], 'GB/s')}")
    for key, note in (m.get("notes") or {}).items():
        console.print(f"  {key}: {note}")
    if limits.get("bound"):
        console.print(f"model: {limits['flop_per_byte']} FLOP/byte vs ridge "
                      f"{limits['ridge_flop_per_byte']} → {limits['bound']}")
    console.print(f"latency floors at batch 1: FP32 {_fmt(limits['fp32_floor_ms'], 'ms')} · "
                  f"INT8 {_fmt(limits['int8_floor_ms'], 'ms')} · memory "
                  f"{_fmt(limits['memory_floor_ms'], 'ms')} (lower bounds)")


def layer_time_table(result: dict[str, Any], top: int = 0,
                     console: Console | None = None) -> None:
    """Measured time per layer (profile --layer-time), slowest first when `top` is set."""
    rows = result["layers"]
    if top:
        rows = sorted(rows, key=lambda r: r["ms"], reverse=True)[:top]
    table = Table(title=f"time per layer on {result['runtime']} ({result['runs']} runs, "
                        f"input {_shape(result['input_shape'])})")
    for col in ("layer", "op", "ms", "share"):
        table.add_column(col, justify="right" if col in ("ms", "share") else "left")
    for r in rows:
        op = f"{r['op']} [{r['exec_type']}]" if r.get("exec_type") else r["op"]
        table.add_row(r["name"], op, f"{r['ms']:.3f}", f"{100 * r['share']:.1f}%")
    table.add_row("total", "", f"{result['total_ms']:.3f}", "100%", style="bold")
    console = console or make_console()
    console.print(table)
    console.print(f"method: {result['method']}")


def export_summary(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    parts = [f"wrote {result.get('path')}"]
    for key in ("opset", "bytes", "max_abs_diff"):
        if result.get(key) is not None:
            parts.append(f"{key} {result[key]}")
    console.print(" · ".join(parts))


# --------------------------------------------------------------------------- bench

BENCH_COLUMNS = ("runtime", "batch", "p50 ms", "p90 ms", "p99 ms", "img/s", "peak RSS",
                 "artifact", "cold start", "speedup (IQR)", "status")


def _num(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


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
    text = _num(value)
    return text if len(ips) <= 1 or value is None else f"{text} @{row['best_batch']}"


def bench_rows(result: dict[str, Any]) -> list[list[str]]:
    """The table's cells, one list per result row (shared by the terminal and Markdown)."""
    rows = []
    for r in result["results"]:
        lat = r.get("latency_ms") or {}
        rows.append([r["label"] or r["runtime"], str(r["batch"]), _num(lat.get("p50"), "{:.2f}"),
                     _num(lat.get("p90"), "{:.2f}"), _num(lat.get("p99"), "{:.2f}"),
                     _throughput(r), _num(r.get("peak_rss_mb"), "{:.0f} MiB"),
                     _num(r.get("artifact_mb"), "{:.1f} MiB"),
                     _num(r.get("cold_start_ms"), "{:.0f} ms"), _speedup(r),
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
            rows.append([r["runtime"], _num(e2e["model_only_p50_ms"], "{:.2f}"),
                         _num(e2e["latency_ms"]["p50"], "{:.2f}"),
                         _num(e2e.get("added_p50_ms"), "{:.2f}")])
    return rows


def bench_table(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    table = Table(title=f"bench of {result['model'].get('name')} "
                        f"(input {_shape(result['model']['input']['shape'])})")
    for col in BENCH_COLUMNS:
        table.add_column(col, justify="left" if col in ("runtime", "status") else "right")
    for cells in bench_rows(result):
        table.add_row(*cells)
    console.print(table)
    e2e = bench_e2e_rows(result)
    if e2e:
        t = Table(title=f"image file → label, batch 1 "
                        f"({result['e2e']['preprocess']} preprocessing)")
        for col in ("runtime", "model p50 ms", "end-to-end p50 ms", "added ms"):
            t.add_column(col, justify="left" if col == "runtime" else "right")
        for cells in e2e:
            t.add_row(*cells)
        console.print(t)
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


# --------------------------------------------------------------------------- eval

def eval_table(result: dict[str, Any], console: Console | None = None) -> None:
    """`infertune eval` results (drawn by render_eval.py, which keeps this module short)."""
    from .render_eval import eval_table as draw

    draw(result, console)


# --------------------------------------------------------------------------- sensitivity

def sensitivity_table(result: dict[str, Any], console: Console | None = None) -> None:
    """`infertune sensitivity`: layers ranked most sensitive first."""
    console = console or make_console()
    data = result["data"]
    t = Table(title=f"INT8 sensitivity per layer ({result['method']}, "
                    f"{'per-channel' if result['per_channel'] else 'per-tensor'}; "
                    f"{data['note']})")
    for col in ("rank", "layer", "op", "SQNR dB", "top-1 agree", "cosine"):
        t.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for row in result["layers"] + [{"rank": "all", "layer": "(every layer quantized)", "op": "",
                                    **result["all_quantized"]}]:
        t.add_row(str(row["rank"]), row["layer"], row["op"], _db(row),
                  _num(row.get("top1_agreement"), "{:.3f}"), _num(row.get("cosine"), "{:.5f}"))
    console.print(t)
    console.print(f"ranked by {result['ranked_by']}", highlight=False, markup=False)
    if result.get("out"):
        console.print(f"written: {result['out']}", highlight=False, markup=False)


def _db(row: dict[str, Any]) -> str:
    if row.get("sqnr_db") is None:
        return "∞" if row.get("sqnr_db_nonfinite") == "inf" else "n/a"
    return f"{row['sqnr_db']:.1f}"

