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
    table = Table(title="infertune zoo (random weights unless a checkpoint is given)")
    for col in ("name", "input", "classes", "params", "MACs", "preprocess", "description"):
        table.add_column(col, justify="right" if col in ("params", "MACs", "classes") else "left")
    for r in rows:
        table.add_row(r["name"], _shape(r["input_size"]), str(r["num_classes"]), human(r["params"]),
                      human(r["macs"]), r["preprocess"], r["description"])
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


def export_summary(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    parts = [f"wrote {result.get('path')}"]
    for key in ("opset", "bytes", "max_abs_diff"):
        if result.get(key) is not None:
            parts.append(f"{key} {result[key]}")
    console.print(" · ".join(parts))
