"""`infertune profile`: flags → ProfileOptions → commands.profile → the per-layer table, the
machine's limits and the measured time per layer (rich, stdout)."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..commands.options import ProfileOptions
from .common import (MODEL_HELP, Parents, human, human_bytes, load_options, make_console,
                     positive_int, shape_text)

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("profile", parents=parents.model,
                       help="params, MACs, bytes per layer and in total")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--top", type=int, default=0, help="show only the N layers with the most MACs")
    p.add_argument("--limits", action="store_true",
                   help="measure the machine's FP32/INT8 peaks and memory bandwidth (cached) "
                        "and place the model against them")
    p.add_argument("--refresh-limits", action="store_true", help="measure the limits again")
    p.add_argument("--layer-time", metavar="RUNTIME",
                   help="build the model for RUNTIME and measure the time of each layer")
    p.add_argument("--threads", type=positive_int, help="threads (default: physical cores)")
    p.set_defaults(run=run)


def options(args: argparse.Namespace) -> ProfileOptions:
    return ProfileOptions(limits=args.limits or args.refresh_limits,
                          refresh_limits=args.refresh_limits, layer_time=args.layer_time,
                          threads=args.threads)


def run(args: argparse.Namespace) -> Any:
    from ..commands.profile import run_profile

    result = run_profile(args.model, options(args), load_options(args))
    if not args.json:
        profile_table(result, top=args.top)
        if "limits" in result:
            limits_summary(result["limits"])
        if "layer_time" in result:
            layer_time_table(result["layer_time"], top=args.top)
    return result


def profile_table(result: dict[str, Any], top: int = 0, console: Console | None = None) -> None:
    from rich.table import Table
    layers = list(enumerate(result["layers"]))
    if top:
        layers = sorted(layers, key=lambda item: item[1]["macs"], reverse=True)[:top]
    table = Table(title=f"profile of {result.get('model', result.get('source'))} "
                        f"(input {shape_text(result['input_shape'])}, batch 1, static counts)")
    cols = ("#", "layer", "type", "output", "params", "MACs", "weights", "activations",
            "mem. access", "MAC/byte")
    for col in cols:
        table.add_column(col, justify="left" if col in ("layer", "type", "output") else "right")
    for i, r in layers:
        table.add_row(str(i), r["name"], r["type"], shape_text(r["output_shape"]),
                      human(r["params"]),
                      human(r["macs"]), human_bytes(r["weight_bytes"]),
                      human_bytes(r["activation_bytes"]), human_bytes(r["mac_bytes"]),
                      f"{r['intensity']:.1f}")
    table.add_row("", "total", "", shape_text(result["output_shape"]), human(result["params"]),
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
    from rich.table import Table
    rows = result["layers"]
    if top:
        rows = sorted(rows, key=lambda r: r["ms"], reverse=True)[:top]
    table = Table(title=f"time per layer on {result['runtime']} ({result['runs']} runs, "
                        f"input {shape_text(result['input_shape'])})")
    for col in ("layer", "op", "ms", "share"):
        table.add_column(col, justify="right" if col in ("ms", "share") else "left")
    for r in rows:
        op = f"{r['op']} [{r['exec_type']}]" if r.get("exec_type") else r["op"]
        table.add_row(r["name"], op, f"{r['ms']:.3f}", f"{100 * r['share']:.1f}%")
    table.add_row("total", "", f"{result['total_ms']:.3f}", "100%", style="bold")
    console = console or make_console()
    console.print(table)
    console.print(f"method: {result['method']}")


