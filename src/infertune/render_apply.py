"""Terminal rendering of `infertune apply` and `infertune list` (pure presentation: every
number shown is in the result dict that --json prints)."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .render import human_bytes, make_console

# Detail keys shown when a pass report has no one-line "summary" of its own.
_COUNT_KEYS = ("layers_folded", "fused_pairs", "groups_merged", "layers_quantized",
               "layers_kept_float", "nodes_before", "nodes_after")


def changed(report: dict[str, Any]) -> str:
    """One line saying what a pass changed (its `summary`, else its counts, else its note)."""
    if report.get("summary"):
        return str(report["summary"])
    counts = [f"{k} {report[k]}" for k in _COUNT_KEYS if report.get(k) is not None]
    return ", ".join(counts) or str(report.get("note") or "")


def _size(report: dict[str, Any]) -> str:
    before, after = report.get("bytes_before"), report.get("bytes_after")
    if before is None or after is None:
        return "–"
    return f"{human_bytes(before)} → {human_bytes(after)}"


def apply_summary(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    table = Table(title=f"apply to {result['model'].get('name')} "
                        f"({result['model'].get('format')} → {result['final_format']})")
    for col in ("pass", "applied", "what changed / why not", "size"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for r in result["passes"]:
        text = changed(r) if r.get("applied") else (r.get("reason") or changed(r))
        table.add_row(r["pass"], "yes" if r.get("applied") else "no", text, _size(r))
    console.print(table)
    art, parity = result["artifact"], result["parity"]
    console.print(f"weights {human_bytes(result['bytes_before'])} → "
                  f"{human_bytes(result['bytes_after'])}; wrote {', '.join(art['files'])} "
                  f"({result['runtime']}, {human_bytes(art['bytes'])})", highlight=False)
    for line in size_lines(result.get("size")) + recovery_lines(result.get("recovery") or []):
        console.print(line, highlight=False, markup=False)
    console.print(parity_line(parity), highlight=False, markup=False)


def size_lines(size: dict[str, Any] | None) -> list[str]:
    """"params A → B, MACs C → D" when both ends were profiled (torch models)."""
    before, after = (size or {}).get("before"), (size or {}).get("after")
    if not before or not after:
        return []
    return [f"params {before['params']:,} → {after['params']:,}, MACs {before['macs']:,} → "
            f"{after['macs']:,} ({after['macs'] / max(before['macs'], 1):.1%})"]


def recovery_lines(recovery: list[dict[str, Any]]) -> list[str]:
    """One line per training pass: its validation metric before and after, and its cost."""
    return [f"{r['pass']}: validation {r['val_metric']} {r['val_metric_before']:.4f} → "
            f"{r['val_metric_after']:.4f} ({r['steps_run']} steps, {r['seconds']:.1f} s, "
            f"{r['stop_reason']})" for r in recovery]


def parity_line(parity: dict[str, Any]) -> str:
    """"parity vs the input model: ..." with the numbers, or the reason it failed."""
    if parity.get("max_abs_diff") is None:
        return f"parity vs the input model: {parity.get('message')}"
    sqnr = parity.get("sqnr_db")
    verdict = "within" if parity.get("passed") else "OUTSIDE"
    return (f"parity vs the input model on {parity['inputs']} batches: max |diff| "
            f"{parity['max_abs_diff']:.3g}, cosine {parity['cosine']:.6f}, SQNR "
            f"{'identical' if sqnr is None else f'{sqnr:.1f} dB'} — {verdict} tolerance "
            f"{parity['tolerance']:.3g}")


def list_table(kind: str, rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or make_console()
    table = Table(title=f"infertune {kind}")
    if kind == "passes":
        for col in ("name", "takes", "data", "options", "description"):
            table.add_column(col)
        for r in rows:
            options = ", ".join(f"{o['name']}: {o['type']} = {o['default']!r}" for o in r["options"])
            table.add_row(r["name"], "/".join(r["accepts"]), "yes" if r["needs_data"] else "",
                          options or "–", r["description"])
    elif kind == "runtimes":
        for col in ("name", "available", "takes", "artifact", "description"):
            table.add_column(col)
        for r in rows:
            available = "yes" if r["available"] else f"no: {r['reason']}"
            table.add_row(r["name"], available, "/".join(r["accepts"]), r["artifact"],
                          r["description"])
    else:
        for col in ("name", "kind", "files", "note"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], r["kind"], r["files"], r["note"])
    console.print(table)
