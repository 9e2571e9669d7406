"""`infertune apply`: flags → ApplyOptions → commands.apply.run_apply → the per-pass table,
the artifact written and the parity line (every number is in the result --json prints)."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..commands.options import ApplyOptions
from .common import MODEL_HELP, Parents, human_bytes, load_options, make_console, positive_int

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("apply", parents=parents.model, help="apply passes in order and write the "
                                                            "artifact for one runtime",
                       description="Passes run in the order given; the artifact is checked "
                                   "against the input model before it is written.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--pass", dest="passes", action="append", required=True,
                   metavar="NAME[:key=value,...]", help="a pass and its options (repeatable; "
                   "see `infertune list passes`)")
    p.add_argument("--runtime", help="runtime whose artifact to write (default: onnxruntime for "
                                     "an ONNX result, else torchscript)")
    p.add_argument("--data", help="data for passes that need it (calibration) and for the "
                                  "parity check: 'sample', an image folder or an .npz")
    p.add_argument("--calib-size", type=positive_int, default=128,
                   help="calibration samples taken from --data (default 128)")
    p.add_argument("--train-size", type=positive_int, default=2048,
                   help="samples for passes that train (finetune, distill, qat): from "
                        "sample:train with --data sample, else from --data (default 2048)")
    p.add_argument("--threads", type=positive_int, help="threads for building and checking")
    p.add_argument("--out", required=True, help="output file (IR: FILE.xml and FILE.bin)")
    p.set_defaults(run=run)


def options(args: argparse.Namespace) -> ApplyOptions:
    return ApplyOptions(passes=tuple(args.passes), out=args.out, runtime=args.runtime,
                        data=args.data, calib_size=args.calib_size, threads=args.threads,
                        train_size=args.train_size)


def run(args: argparse.Namespace) -> Any:
    from ..commands.apply import run_apply  # imports the frameworks: only when it runs

    result = run_apply(args.model, options(args), load_options(args))
    if not args.json:
        apply_summary(result)
    return result


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
    from rich.table import Table
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
    """One line per training pass: its validation metric before and after, its cost and its
    training setup (arithmetic/layout)."""
    return [f"{r['pass']}: validation {r['val_metric']} {r['val_metric_before']:.4f} → "
            f"{r['val_metric_after']:.4f} ({r['steps_run']} steps, {r['seconds']:.1f} s, "
            f"{_setup(r.get('training_setup'))}{r['stop_reason']})" for r in recovery]


def _setup(setup: dict[str, Any] | None) -> str:
    if not setup:
        return ""
    back = setup.get("fallback")
    was = f"{back['from']} restarted at step {back['step']} as " if back else ""
    return f"{was}{setup['autocast']}/{setup['layout']}, "


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


