"""Darknet19_448 on every runtime available here, side by side (the README's table).

Runs `infertune bench darknet19_448 --runtime all --batch 1,8 --rounds 3` through the API:
each runtime built once, its outputs checked against the float model, then measured in
interleaved rounds (torch, torchscript, compile, onnxruntime, openvino, torch, ...), each
measurement in a fresh process, at the thread count of the physical cores. Runtimes that
cannot run here (TensorRT without a GPU) are rows with their reason.

Usage: python benchmarks/runtimes.py [--model darknet19_448] [--batch 1,8] [--rounds 3]
                                     [--runtime all] [--min-seconds 5] [--threads N]
Writes benchmarks/results/runtimes-<machine>.json (everything, samples included) and .md
(the table and its notes), <machine> being this host's short name. Takes ~10-20 minutes on
a 2-core machine; keep the machine otherwise idle meanwhile (the load average before and
after is recorded with the results, so a disturbed run can be recognised).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from infertune import _atomic, api
from infertune.cli.bench import bench_markdown
from infertune.commands.options import BenchOptions

RESULTS = Path(__file__).resolve().parent / "results"


def machine_tag() -> str:
    """A short file-name-safe name for this machine (its host name's first label)."""
    name = (platform.node() or "unknown").split(".")[0].lower()
    return re.sub(r"[^a-z0-9_-]+", "-", name).strip("-")[:40] or "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="darknet19_448")
    p.add_argument("--runtime", default="all")
    p.add_argument("--batch", default="1,8")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-runs", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="results file stem (default: "
                   "benchmarks/results/runtimes-<machine>)")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: rewrite the .md beside a saved results JSON")
    return p.parse_args(argv)


def markdown(result: dict, args: argparse.Namespace, meta: dict) -> str:
    cpu = result["machine"]["cpu"]
    libs = result["machine"]["libraries"]
    versions = ", ".join(f"{k} {v}" for k, v in libs.items()
                         if v and k in ("torch", "onnxruntime", "openvino", "tensorrt"))
    head = [f"# {args.model}: runtimes side by side ({meta['date']})", "",
            f"`python benchmarks/runtimes.py --model {args.model} --runtime {args.runtime} "
            f"--batch {args.batch} --rounds {args.rounds}` on {cpu['model']} "
            f"({cpu['physical_cores']} cores), {versions}. Load average before/after: "
            f"{meta['load_before']} / {meta['load_after']}; wall time {meta['wall_s']:.0f} s.", ""]
    return "\n".join(head) + "\n" + bench_markdown(result)


def rerender(path: Path) -> dict:
    """Rewrites the .md of a saved run (after a change to the table's rendering)."""
    result = json.loads(path.read_text())
    meta = result["benchmark"]
    args = parse_args([*meta["argv"], "--out", str(path.with_suffix(""))])
    _atomic.write_text(path.with_suffix(".md"), markdown(result, args, meta))
    print(markdown(result, args, meta))
    return result


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.render:
        return rerender(args.render)
    load_before = [round(v, 2) for v in os.getloadavg()]
    t0 = time.monotonic()
    options = BenchOptions(runtimes=args.runtime, batches=args.batch, threads=args.threads,
                           rounds=args.rounds, min_runs=args.min_runs,
                           min_seconds=args.min_seconds)
    result = api.bench(args.model, options,
                       progress=lambda m: print(m, file=sys.stderr, flush=True))
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_before": load_before, "load_after": [round(v, 2) for v in os.getloadavg()],
            "wall_s": time.monotonic() - t0, "argv": sys.argv[1:] if argv is None else argv}
    result["benchmark"] = meta
    stem = args.out or RESULTS / f"runtimes-{machine_tag()}"
    _atomic.write_text(stem.with_suffix(".json"), json.dumps(result, indent=1, default=str))
    _atomic.write_text(stem.with_suffix(".md"), markdown(result, args, meta))
    print(markdown(result, args, meta))
    return result


if __name__ == "__main__":
    main()
