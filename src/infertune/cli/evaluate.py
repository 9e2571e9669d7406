"""`infertune eval`: flags → EvalOptions → commands.evaluate → accuracy, per-class and
confusion tables, fidelity and the paired comparison (rich, stdout).

Pure presentation: every number shown is in the result dict that --json prints. Fractions
are shown as percentages with their 95% intervals in brackets.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..commands.options import EvalOptions
from ..tasks.detection.render import detection_eval
from .common import MODEL_HELP, Parents, load_options, make_console

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console
    from rich.table import Table

MAX_CONFUSION_CLASSES = 20  # a wider matrix does not fit a terminal
MAX_PER_CLASS_ROWS = 20  # beyond this, only the classes with the lowest F1


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("eval", parents=parents.model, help="accuracy (with labels) and fidelity "
                                                           "to a reference model, with 95%% "
                                                           "intervals",
                       description="--seed also seeds the --limit sample choice.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help="'sample' (or sample:val, the part the "
                   "reference models never trained on), an image folder, or an .npz (x, y)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line (index = line)")
    p.add_argument("--preprocess", help="preset (darknet, imagenet, efficientnet_lite, none) or "
                                        "'preset,key=value,...' (default: the model's)")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N samples (stratified)")
    p.add_argument("--skip-bad", action="store_true", help="leave bad samples out, listed")
    p.add_argument("--batch-size", type=int, default=64, help="inference batch (default 64)")
    p.add_argument("--reference", metavar="MODEL",
                   help="the original model: adds fidelity and the paired top-1 comparison")
    p.add_argument("--threads", type=int, help="intra-op threads (default: all cores)")
    p.add_argument("--runtime", help="run the model on this runtime (see `infertune bench`) "
                                     "instead of in-process torch / ONNX Runtime")
    p.set_defaults(run=run)


def options(args: argparse.Namespace) -> EvalOptions:
    return EvalOptions(data=args.data, reference=args.reference, labels_file=args.labels,
                       preprocess=args.preprocess, limit=args.limit, skip_bad=args.skip_bad,
                       batch_size=args.batch_size, threads=args.threads, runtime=args.runtime)


def run(args: argparse.Namespace) -> Any:
    from ..commands.evaluate import evaluate

    result = evaluate(args.model, options(args), load_options(args))
    if not args.json:
        eval_table(result)
    return result


def pct(value: float | None, ci: list[float] | None = None) -> str:
    """0.9712, [0.96, 0.98] -> '97.12% [96.00, 98.00]'."""
    if value is None:
        return "–"
    text = f"{100 * value:.2f}%"
    return f"{text} [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]" if ci else text


def accuracy_table(acc: dict[str, Any]) -> Table:
    """Top-1/top-5 and the macro/weighted averages, each with its interval."""
    from rich.table import Table
    table = Table(title=f"accuracy on {acc['n']} labelled samples (95% intervals)")
    for col in ("metric", "value [95% CI]"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    table.add_row("top-1", pct(acc["top1"], acc["top1_ci"]))
    table.add_row(f"top-{acc.get('top5_k', 5)}", pct(acc["top5"], acc["top5_ci"]))
    for avg in ("macro", "weighted"):
        for metric in ("precision", "recall", "f1"):
            key = f"{metric}_{avg}"
            table.add_row(f"{metric} ({avg})", pct(acc[key], acc[f"{key}_ci"]))
    return table


def per_class_table(acc: dict[str, Any]) -> Table:
    """Per-class P/R/F1/support; the worst MAX_PER_CLASS_ROWS by F1 when there are more."""
    from rich.table import Table
    rows = acc["per_class"]
    title = "per class"
    if len(rows) > MAX_PER_CLASS_ROWS:
        rows = sorted(rows, key=lambda r: (r["f1"], r["index"]))[:MAX_PER_CLASS_ROWS]
        title = f"per class: the {MAX_PER_CLASS_ROWS} lowest F1 of {len(acc['per_class'])}"
    table = Table(title=title)
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for r in rows:
        table.add_row(str(r["class"]), pct(r["precision"]), pct(r["recall"]), pct(r["f1"]),
                      str(r["support"]))
    return table


def confusion_table(acc: dict[str, Any]) -> Table:
    """Rows: true class; columns: predicted class (counts)."""
    from rich.table import Table
    names = {r["index"]: str(r["class"]) for r in acc["per_class"]}
    labels = [names.get(i, str(i)) for i in acc["labels"]]
    table = Table(title="confusion matrix (rows: true, columns: predicted)")
    table.add_column("true \\ pred", justify="left")
    for label in labels:
        table.add_column(label, justify="right")
    for label, row in zip(labels, acc["confusion"]):
        table.add_row(label, *(str(v) if v else "·" for v in row))
    return table


def fidelity_lines(fid: dict[str, Any]) -> list[str]:
    sqnr = fid.get("sqnr_db")
    sqnr_text = f"{sqnr:.1f} dB" if sqnr is not None else f"{fid.get('sqnr_db_nonfinite', '?')} dB"
    return [f"fidelity to {fid['reference']} on {fid['n']} samples (agreement, not accuracy):",
            f"  top-1 agreement {pct(fid['top1_agreement'], fid['top1_agreement_ci'])}"
            f" · cosine {fid['cosine']:.6f} (min {fid['cosine_min']:.6f})"
            f" · SQNR {sqnr_text} · max |diff| {fid['max_abs']:.3g}"]


def comparison_lines(cmp: dict[str, Any]) -> list[str]:
    lo, hi = cmp["delta_ci"]
    return [f"paired comparison on the same {cmp['n']} samples ({cmp['candidate_model']} − "
            f"{cmp['baseline_model']}):",
            f"  top-1 {pct(cmp['candidate'])} vs {pct(cmp['baseline'])}: "
            f"Δ {100 * cmp['delta']:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}] · "
            f"only candidate right {cmp['n01']}, only reference right {cmp['n10']} · "
            f"McNemar p = {cmp['p_value']:.3g}"]


def eval_table(result: dict[str, Any], console: Console | None = None) -> None:
    """The whole eval result: header, accuracy, per class, confusion, fidelity, comparison."""
    console = console or make_console()
    if result.get("task") == "detection":
        return detection_eval(result, console)
    model, data = result["model"], result["data"]
    console.print(f"{model['name']} ({model['format']}, weights {model.get('weights') or '?'}) "
                  f"on {data['description']}", highlight=False, markup=False)
    console.print(f"runtime {result['runtime']} · {result['threads']} thread(s) · batch "
                  f"{result['batch_size']} · preprocessing '{result['preprocess']['name']}' "
                  f"(from {result['preprocess']['from']})", highlight=False, markup=False)
    acc = result.get("accuracy")
    if acc:
        console.print(accuracy_table(acc))
        console.print(per_class_table(acc))
        if len(acc["labels"]) <= MAX_CONFUSION_CLASSES:
            console.print(confusion_table(acc))
    lines = []
    if result.get("fidelity"):
        lines += fidelity_lines(result["fidelity"])
    if result.get("comparison"):
        lines += comparison_lines(result["comparison"])
    recorded = model.get("recorded_accuracy")
    if recorded and recorded.get("top1") is not None:
        lines.append(f"recorded when trained: top-1 {pct(recorded['top1'], recorded['top1_ci'])} "
                     f"on {recorded.get('data')} ({recorded.get('n')} samples)")
    lines += [f"note: {n}" for n in result.get("notes", [])]
    for line in lines:
        console.print(line, highlight=False, markup=False)


