"""`infertune optimize` and `infertune run`: flags → OptimizeConfig → api.optimize; the live
progress (rich) on stderr, the summary at the end. No search logic here."""
from __future__ import annotations

import argparse
import re
from typing import Any

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


def add_optimize(sub, model_parents: list, common: list) -> None:
    p = sub.add_parser("optimize", parents=model_parents,
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
    p.add_argument("--metric", choices=("auto", "top1", "agreement"), default="auto",
                   help="top1 on labels, or top-1 agreement with the original model "
                        "(auto: top1 when the labels mean something to the model)")
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
    p.add_argument("--recovery-seconds", type=float, default=60.0)
    p.add_argument("--candidate-timeout", type=parse_duration, default=1800.0,
                   help="kill a candidate's build or evaluation after this long (30m)")
    p.add_argument("--out", default="infertune-run", help="run directory (default ./infertune-run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    p.set_defaults(run=cmd_optimize)

    p = sub.add_parser("run", parents=common, help="replay an optimize run from its config.yaml")
    p.add_argument("config", help="a config.yaml written by optimize")
    p.add_argument("--out", help="run directory (default: the one in the config)")
    p.add_argument("--resume", action="store_true", help="continue the run in the directory")
    p.set_defaults(run=cmd_run)


def config_from_args(args: argparse.Namespace, load: dict[str, Any]):
    from .config import OptimizeConfig

    return OptimizeConfig(
        model=args.model, out=args.out, load={k: v for k, v in load.items() if v not in (None, False)},
        input_size=args.input_size, data=args.data, preprocess=args.preprocess,
        max_drop=args.max_drop, drop_type=args.drop_type, metric=args.metric,
        confidence=args.confidence, objective=args.objective, runtimes=args.runtimes,
        passes=args.passes, time_budget_s=args.time_budget, threads=args.threads,
        calib_size=args.calib_size, screen_size=args.screen_size, eval_size=args.eval_size,
        min_runs=args.min_runs, min_seconds=args.min_seconds, final_rounds=args.final_rounds,
        recovery_seconds=args.recovery_seconds, candidate_timeout_s=args.candidate_timeout,
        executor=args.executor, address=args.address, seed=load.get("seed") or 0)


def cmd_optimize(args: argparse.Namespace) -> Any:
    from . import api
    from .cli import load_options

    config = config_from_args(args, load_options(args))
    return _run(api, config, args)


def cmd_run(args: argparse.Namespace) -> Any:
    import dataclasses

    from . import api
    from .config import load_config

    config = load_config(args.config)
    if args.out:
        config = dataclasses.replace(config, out=args.out)
    return _run(api, config, args)


def _run(api, config, args: argparse.Namespace) -> Any:
    progress = None if args.json else ProgressView()
    try:
        report = api.optimize(config, resume=args.resume, progress=progress)
    finally:
        if progress:
            progress.close()
    if not args.json:
        from .render_optimize import optimize_summary

        optimize_summary(report)
    return report


class ProgressView:
    """A live progress bar over the candidates (planned so far), one line per event above it,
    and the Pareto front so far after each stage (rich, on stderr)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
        elif kind == "front":
            from .render_optimize import front_table

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
