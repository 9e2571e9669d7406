"""The GPU check: CPU and GPU runtimes side by side on darknet19_448 and efficientnet_lite0,
then an `optimize` that may pick a GPU runtime, on a host with an NVIDIA GPU.

Installs nothing: the GPU runtimes need what `infertune list runtimes` names for each
(`pip install 'infertune[gpu]'` for TensorRT; onnxruntime-gpu in place of onnxruntime for
ONNX Runtime's CUDA and TensorRT providers); a GPU runtime that is not installed is a row with
its reason, like every unavailable runtime. Each model is benched with `--runtime
torch,onnxruntime,openvino,<GPU runtimes>`: every runtime built once and checked against the
float model, then measured in interleaved rounds, each measurement in a fresh process (GPU
runtimes synchronise inside each call, so a call's time is host to host). The optimize runs on
darknet19_448 with the GPU runtimes and onnxruntime, a short time budget and small samples:
it checks that the search plans, builds, measures and exports GPU candidates, not the best
possible pick. Everything is bounded to stay under 8 minutes (the optimize is skipped, saying
so, when the benches leave too little time).

Usage: python benchmarks/gpu.py OUT_DIR [--rounds 2] [--min-seconds 1] [--deadline-s 420]
Writes OUT_DIR/bench-<model>.json and .md, OUT_DIR/optimize-darknet19_448/ (the run folder),
OUT_DIR/gpu.md (the tables, the GPU fingerprint and what was skipped) and prints gpu.md.
On a host without a usable NVIDIA GPU it prints one line saying so and exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from infertune import _atomic, api
from infertune.cli.bench import bench_markdown
from infertune.commands.options import BenchOptions
from infertune.config import OptimizeConfig
from infertune.runtimes import RUNTIMES, _cuda

MODELS = ("darknet19_448", "efficientnet_lite0")
CPU_RUNTIMES = ("torch", "onnxruntime", "openvino")
OPTIMIZE_MODEL = "darknet19_448"
OPTIMIZE_BUDGET_S = 120.0


def gpu_runtimes() -> list[str]:
    return [name for name in RUNTIMES.ordered() if RUNTIMES.get(name).needs_gpu]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the results")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--deadline-s", type=float, default=420.0,
                   help="no optimize is started past this many seconds (default 420: 7 min)")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench(model: str, args: argparse.Namespace) -> dict:
    options = BenchOptions(runtimes=(*CPU_RUNTIMES, *gpu_runtimes()), batches=(1, 8),
                           rounds=args.rounds, min_runs=20, min_seconds=args.min_seconds,
                           warmup=10, workdir=str(args.out / f"work-{model}"))
    result = api.bench(model, options, progress=lambda m: log(f"[{model}] {m}"))
    stem = args.out / f"bench-{model}"
    _atomic.write_text(stem.with_suffix(".json"), json.dumps(result, indent=1, default=str))
    _atomic.write_text(stem.with_suffix(".md"), bench_markdown(result))
    return result


def optimize(args: argparse.Namespace) -> dict:
    config = OptimizeConfig(model=OPTIMIZE_MODEL, out=str(args.out / f"optimize-{OPTIMIZE_MODEL}"),
                            runtimes=("onnxruntime", *gpu_runtimes()),
                            time_budget_s=OPTIMIZE_BUDGET_S, calib_size=32, screen_size=32,
                            eval_size=128, min_runs=20, min_seconds=args.min_seconds,
                            final_rounds=2, candidate_timeout_s=300.0)
    return api.optimize(config, progress=lambda event: log(f"[optimize] {event}"))


def gpu_lines(machine: dict) -> list[str]:
    gpus = machine.get("gpu") or []
    return [f"- GPU: {', '.join(f'{k} {v}' for k, v in g.items())}" for g in gpus] or [
        "- GPU: nvidia-smi listed none"]


def report(results: dict[str, dict], optimized: dict | None, skipped: list[str],
           meta: dict) -> str:
    first = next(iter(results.values()))
    machine = first.get("machine", {})
    libs = machine.get("libraries", {})
    versions = ", ".join(f"{k} {v}" for k, v in libs.items() if v)
    lines = [f"# GPU check ({meta['date']})", "",
             f"`python benchmarks/gpu.py OUT --rounds {meta['rounds']} --min-seconds "
             f"{meta['min_seconds']}`; wall time {meta['wall_s']:.0f} s.", "",
             *gpu_lines(machine), f"- CPU: {machine.get('cpu', {}).get('model')}",
             f"- libraries: {versions}", ""]
    for model, result in results.items():
        lines += [f"## {model}", "", bench_markdown(result), ""]
    if optimized is not None:
        pick = optimized.get("pick")
        lines += [f"## optimize {OPTIMIZE_MODEL}", "",
                  f"pick: {pick} (run folder optimize-{OPTIMIZE_MODEL}/)", ""]
    lines += [f"- skipped: {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count, why = _cuda.driver_devices()
    if not count:
        print(f"benchmarks/gpu.py: {why}; nothing measured")
        return 1
    t0 = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in gpu_runtimes():
        ok, reason = RUNTIMES.get(name).available()
        log(f"{name}: {'available' if ok else reason}")
    results = {model: bench(model, args) for model in MODELS}
    skipped, optimized = [], None
    if time.monotonic() - t0 < args.deadline_s:
        optimized = optimize(args)
    else:
        skipped.append(f"optimize {OPTIMIZE_MODEL}: the benches took "
                       f"{time.monotonic() - t0:.0f} s, past --deadline-s {args.deadline_s:.0f}")
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "rounds": args.rounds, "min_seconds": args.min_seconds,
            "wall_s": time.monotonic() - t0}
    text = report(results, optimized, skipped, meta)
    _atomic.write_text(args.out / "gpu.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
