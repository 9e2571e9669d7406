"""`infertune optimize`: flags → OptimizeConfig → api.optimize; the live progress (rich) on
stderr, the candidates table and the verdict at the end. No search logic here.

The summary reads the typed report (`report.run_report.RunReport`) and shows the same
figures as report.md: each candidate's p50 is `report.fields.decisive_p50` (the
side-by-side rounds' median where it took part, marked †), and the pick line says which
measurement decided the pick.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import fields as dataclass_fields
from typing import Any, Mapping

from ..load import LoadOptions
from .common import Parents, load_options

MODEL_HELP = ("zoo name, NET.cfg[:NET.weights], model.onnx, TorchScript or checkpoint .pt, "
              "or package.module:factory (with --trust-code)")


def parse_duration(text: str) -> float:
    """'15m', '90s', '1h', '1h30m' or plain seconds → seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        value = float(text)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
        if not parts or "".join(a + b for a, b in parts) != text:
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15m, 90s, 1h30m)")
        value = sum(float(a) * {"h": 3600, "m": 60, "s": 1}[b] for a, b in parts)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive, not {text!r}")
    return value


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("optimize", parents=parents.model,
                       help="find the fastest variant within an accuracy budget (passes × "
                            "runtimes), export it and write the report",
                       description="Baseline first, then candidates stage by stage (fused, "
                                   "quantized, mixed, pruned/decomposed, combined), screened "
                                   "cheaply and measured in full when they can still matter.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", default="auto",
                   help="an image folder, .npz, or a built-in set: sample (digits), clutter "
                        "(digits in clutter on real photos), photos (real photographs, "
                        "unlabelled); default auto: the zoo model's own (sample otherwise)")
    p.add_argument("--preprocess", help="preprocessing preset (default: the model's)")
    p.add_argument("--max-drop", type=float, default=1.0,
                   help="accuracy budget: points (absolute, default 1.0) or percent (relative)")
    p.add_argument("--drop-type", choices=("absolute", "relative"), default="absolute")
    p.add_argument("--metric", choices=("auto", "top1", "agreement", "map"), default="auto",
                   help="top1 on labels, or top-1 agreement with the original model; map "
                        "for detectors (mAP points on boxes, else fidelity mAP) (auto: map "
                        "for a detector, top1 when the labels mean something to the model)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (0.95)")
    p.add_argument("--objective", choices=("latency", "throughput", "size"), default="latency")
    p.add_argument("--runtimes", help="comma-separated runtimes (default: every available one)")
    p.add_argument("--passes", help="comma-separated passes candidates may use (default: all)")
    p.add_argument("--time-budget", type=parse_duration, metavar="DURATION",
                   help="stop starting candidates after this long (e.g. 15m)")
    p.add_argument("--threads", type=int, help="threads for every runtime (default: cores)")
    p.add_argument("--calib-size", type=int, default=128)
    p.add_argument("--screen-size", type=int, default=64)
    p.add_argument("--eval-size", type=int, default=1000)
    p.add_argument("--min-runs", type=int, default=30)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--final-rounds", type=int, default=3)
    p.add_argument("--recovery-seconds", type=_seconds_or_auto, default=None, metavar="S|auto",
                   help="training time per compression candidate (default auto: a share "
                        "of --time-budget, 60-600 s; 300 s without one): each trains a third "
                        "of it first, then the most promising continues with the rest, pooled")
    p.add_argument("--candidate-timeout", type=parse_duration, default=1800.0,
                   help="kill a candidate's build or evaluation after this long (30m)")
    p.add_argument("--out", default="infertune-run", help="run directory (default ./infertune-run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    p.set_defaults(run=run)


def _seconds_or_auto(text: str) -> float | None:
    """'auto' → None (the search decides), else a duration (parse_duration)."""
    return None if text.strip().lower() == "auto" else parse_duration(text)


def load_dict(load: LoadOptions) -> dict[str, Any]:
    """The loading options a config.yaml records: those set away from their off value (the
    input size is a field of its own)."""
    values = {f.name: getattr(load, f.name) for f in dataclass_fields(load)
              if f.name != "input_size"}
    return {k: v for k, v in values.items() if v not in (None, False)}


def config_from_args(args: argparse.Namespace, load: LoadOptions):
    from ..config import OptimizeConfig  # yaml and the schema: only when a run starts

    return OptimizeConfig(
        model=args.model, out=args.out, load=load_dict(load),
        input_size=args.input_size, data=args.data, preprocess=args.preprocess,
        max_drop=args.max_drop, drop_type=args.drop_type, metric=args.metric,
        confidence=args.confidence, objective=args.objective, runtimes=args.runtimes,
        passes=args.passes, time_budget_s=args.time_budget, threads=args.threads,
        calib_size=args.calib_size, screen_size=args.screen_size, eval_size=args.eval_size,
        min_runs=args.min_runs, min_seconds=args.min_seconds, final_rounds=args.final_rounds,
        recovery_seconds=args.recovery_seconds, candidate_timeout_s=args.candidate_timeout,
        executor=args.executor, address=args.address, seed=load.seed or 0)


def run(args: argparse.Namespace) -> Any:
    return run_config(config_from_args(args, load_options(args)), args)


def run_config(config, args: argparse.Namespace) -> Any:
    """Runs `config` with the live progress on stderr (none with --json) and the summary."""
    from .. import api

    progress = None if args.json else ProgressView()
    try:
        report = api.optimize(config, resume=args.resume, progress=progress)
    finally:
        if progress:
            progress.close()
    if not args.json:
        optimize_summary(report)
    return report


class ProgressView:
    """A live progress bar over the candidates (planned so far), one line per event above it,
    and the Pareto front so far after each stage (rich, on stderr)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)
        self.console = Console(stderr=True, highlight=False)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, transient=True)
        self.task = self.bar.add_task("optimize", total=0)
        self.bar.start()

    def __call__(self, event: dict[str, Any]) -> None:
        kind, t = event["event"], f"[{event['elapsed_s']:7.1f}s]"
        out = self.bar.console
        if kind == "stage":
            self.bar.update(self.task, total=self.bar.tasks[0].total + event.get("planned", 0),
                            description=event["stage"])
            out.rule(f"{event['stage']}: {event['n']} candidate(s)")
        elif kind == "build":
            out.print(f"{t} building and screening {event['n']} candidate(s)…")
        elif kind == "screened":
            out.print(f"{t} screened {event['label']}: {_status(event)}")
            if event.get("status") != "screened":
                self.bar.advance(self.task)
        elif kind == "measured":
            out.print(f"{t} measured {event['label']}: {_status(event)}")
            self.bar.advance(self.task)
        elif kind == "deferred":
            out.print(f"{t} deferred {event['label']}: it cannot be the pick "
                      f"({event['reason']}); evaluated after the other stages")
        elif kind == "front":
            out.print(front_table(event["front"]))
        elif kind == "final":
            self.bar.update(self.task, description="side by side")
            out.print(f"{t} side by side: {event['n']} models × {event['rounds']} rounds…")
        elif kind == "journal":
            out.print(f"{t} journal: skipped torn line(s) {', '.join(event['dropped'])}")

    def close(self) -> None:
        self.bar.stop()


def _status(event: dict[str, Any]) -> str:
    status = event.get("status")
    if status in ("ok", "screened"):
        bits = []
        if event.get("p50") is not None:
            bits.append(f"p50 {event['p50']:.2f} ms")
        if event.get("probe_ms") is not None:
            bits.append(f"probe {event['probe_ms']:.2f} ms")
        if event.get("drop") is not None:
            bits.append(f"drop {event['drop']:.2f} pt")
        return ", ".join(bits) or status
    return f"{status}: {event.get('reason')}"


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def front_table(rows: list[dict[str, Any]]):
    """The progress event's front rows (search/run.py: id, label, p50_ms, drop, size_mb,
    within_budget), fastest first."""
    from rich.table import Table
    table = Table(title="Pareto front so far", title_justify="left")
    for col in ("candidate", "p50 ms", "drop pt", "size MB", "in budget"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in sorted(rows, key=lambda r: r.get("p50_ms") or 0):
        table.add_row(r["label"], _fmt(r.get("p50_ms")), _fmt(r.get("drop")),
                      _fmt(r.get("size_mb")), {True: "yes", False: "no"}.get(r.get("within_budget"), "—"))
    return table


def _p50(cand, report) -> str:
    from ..report import fields

    value = fields.decisive_p50(cand, report)
    rounds = value is not None and fields.from_rounds(cand, report)
    return _fmt(value) + (fields.ROUNDS_MARK if rounds else "")


def _drop(cand) -> str:
    drop = cand.drop
    if drop is None:
        return "—"
    return f"{_fmt(drop.value)} [{_fmt(drop.low)}, {_fmt(drop.high)}]"


def candidates_table(report):
    from rich.table import Table

    from ..report import fields

    budget = fields.max_drop(report)
    table = Table(title=f"{report.model.get('source')}: {report.data.get('metric')} budget "
                        f"{_fmt(budget)} pt", title_justify="left")
    for col in ("stage", "candidate", "status", "p50 ms", "speedup", "drop pt [interval]",
                "size MB"):
        table.add_column(col, justify="left" if col in ("stage", "candidate", "status") else "right")
    for c in report.candidates:
        mark = " ★" if c.id == report.pick_id else (" •" if c.id in report.frontier else "")
        table.add_row(c.plan.stage, c.label + mark, c.status.value, _p50(c, report),
                      _fmt(c.decision.speedup), _drop(c), _fmt(c.size_mb))
    return table


def summary_lines(report) -> list[str]:
    """The lines under the table: the pick (or why none), the decision's basis, files."""
    from ..report import decision

    lines = []
    pick = report.pick
    if pick is not None:
        lines.append(f"pick: {pick.label} — {_fmt(pick.decision.speedup)}× the original, drop "
                     f"{_fmt(pick.drop.value if pick.drop else None)} points "
                     f"({report.data.get('metric')})")
        lines += decision.basis_lines(report)
        if report.export:
            lines.append(f"exported model: {report.export.get('artifact')}")
    else:
        no_pick = report.no_pick or {}
        lines.append(f"no pick: {no_pick.get('reason')}")
        for cid in no_pick.get("closest") or ():
            c = report.by_id.get(cid)
            if c is not None and c.drop is not None:
                lines.append(f"  closest: {c.label}: drop {_fmt(c.drop.value)} "
                             f"(up to {_fmt(c.drop.high)}) points")
    return lines


def optimize_summary(report: Mapping[str, Any]) -> None:
    """Prints the candidates table and the verdict of a finished optimize (report.json's
    dict, parsed once here)."""
    from rich.console import Console

    from ..report import parse_report

    typed = parse_report(report)
    console = Console(highlight=False)
    console.print(candidates_table(typed))
    console.print("★ pick  • Pareto front  † p50 from the side-by-side rounds")
    for line in summary_lines(typed):
        console.print(line)
    console.print(f"report: {typed.run.get('dir')}/report.json"
                  + "".join(f", {p}" for p in report.get("reports", [])
                            if not p.startswith("reports not")))
