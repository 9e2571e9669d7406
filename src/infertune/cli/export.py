"""`infertune export`: a model to ONNX, or an optimize run's pick as a Triton model
repository; one summary line."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..commands.options import ExportOptions
from .common import MODEL_HELP, Parents, load_options, make_console

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("export", parents=parents.model, help="export a model (ONNX), or a run's "
                                                             "pick as a Triton model repository")
    p.add_argument("model", help=MODEL_HELP + ", or an optimize RUN_DIR (with --format triton)")
    p.add_argument("--format", default="onnx", choices=("onnx", "triton"),
                   help="onnx (a model) or triton (a run's pick → model repository)")
    p.add_argument("--out", required=True, help="output file (triton: repository folder)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    from ..commands.export import export_triton, run_export

    if args.format == "triton":
        result = export_triton(args.model, args.out)
        if not args.json:
            print(f"Triton model repository: {result['repository']} (model {result['model']}, "
                  f"{result['backend']})")
        return result
    options = ExportOptions(out=args.out, fmt=args.format, opset=args.opset)
    result = run_export(args.model, options, load_options(args))
    if not args.json:
        export_summary(result)
    return result


def export_summary(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    parts = [f"wrote {result.get('path')}"]
    for key in ("opset", "bytes", "max_abs_diff"):
        if result.get(key) is not None:
            parts.append(f"{key} {result[key]}")
    console.print(" · ".join(parts))
