"""`infertune sensitivity`: flags → SensitivityOptions → commands.sensitivity → the layers
ranked most sensitive to INT8 first."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..commands.options import SensitivityOptions
from .common import MODEL_HELP, Parents, load_options, make_console, num, positive_int

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("sensitivity", parents=parents.model,
                       help="rank layers by the output error each causes quantized alone (INT8)",
                       description="Each Conv/Gemm/MatMul is quantized alone (ONNX Runtime, "
                                   "QDQ, calibrated once) and the output SQNR and top-1 "
                                   "agreement with the float model are measured on samples "
                                   "other than the calibration ones; lowest SQNR first.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help="'sample' (or sample:val), an image folder, "
                                                 "or an .npz (x[, y])")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use N samples: the first up to 128 calibrate, the next up to 64 "
                        "measure (default 192)")
    p.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="minmax",
                   help="activation calibration (default minmax)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales "
                                                             "(default per channel)")
    p.add_argument("--preprocess", help="preset or 'preset,key=value,...' (default: the model's)")
    p.add_argument("--threads", type=positive_int, help="intra-op threads (default: all cores)")
    p.add_argument("--out", metavar="FILE", help="also write the ranking as JSON (atomically)")
    p.set_defaults(run=run)


def options(args: argparse.Namespace) -> SensitivityOptions:
    return SensitivityOptions(data=args.data, limit=args.limit, out=args.out, method=args.method,
                              per_channel=not args.per_tensor, preprocess=args.preprocess,
                              threads=args.threads)


def run(args: argparse.Namespace) -> Any:
    from ..commands.sensitivity import run_sensitivity

    result = run_sensitivity(args.model, options(args), load_options(args))
    if not args.json:
        sensitivity_table(result)
    return result


def sensitivity_table(result: dict[str, Any], console: Console | None = None) -> None:
    """`infertune sensitivity`: layers ranked most sensitive first."""
    from rich.table import Table
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
                  num(row.get("top1_agreement"), "{:.3f}"), num(row.get("cosine"), "{:.5f}"))
    console.print(t)
    console.print(f"ranked by {result['ranked_by']}", highlight=False, markup=False)
    if result.get("out"):
        console.print(f"written: {result['out']}", highlight=False, markup=False)


def _db(row: dict[str, Any]) -> str:
    if row.get("sqnr_db") is None:
        return "∞" if row.get("sqnr_db_nonfinite") == "inf" else "n/a"
    return f"{row['sqnr_db']:.1f}"
