"""Measured time per layer of a built artifact: where the time goes, on the runtime that runs it.

Each runtime is asked in its own terms (`Runtime.time_layers`, in the runtime's module), and
the result says how (`method`):
- onnxruntime: the session's own profiler (`SessionOptions.enable_profiling`); its JSON trace
  has one `*_kernel_time` event per executed node per run. Names are the nodes of the graph
  ORT *runs* (after its optimisations: fused convolutions, NCHWc reorders), not the file's.
- openvino: the CPU plugin's performance counters (`PERF_COUNT`), read after each inference
  (they describe the last one); nodes the plugin fused away (status NOT_RUN) are left out.
  `exec_type` says which kernel (and precision) ran.
- torch (a .pt2 program): the program is unflattened back into its module tree and each leaf
  module is timed by forward pre/post hooks with `time.perf_counter_ns` (CUDA synchronised
  where a GPU is in use). Approximate: each hook costs a few microseconds of Python,
  which lands in the "(other)" row together with the ops outside any leaf module.
- torchscript, compile (and a .ts torch artifact): frozen or compiled graphs have no modules
  left, so the rows are *operators* from `torch.profiler` (self CPU time per operator name,
  summed over the calls of one run): where the time goes by kind of op, not by layer
  (`profiler_rows` below, shared by those runtimes).

In every case `ms` is per inference (the total over `runs` timed runs after warm-up, divided
by `runs`), and `share` is ms over the sum of all rows, so the shares add up to 1.

This module holds what the runtimes share and the dispatch through the registry; it lives
next to the runtimes because it measures built artifacts (profile/ holds static facts).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..errors import InfertuneError
from .session import SessionFactory
from .base import RUNTIMES, Runtime

WARMUP_RUNS = 3
OTHER_ROW = "(other)"
PROFILER_METHOD = ("torch.profiler self CPU time per operator (the {runtime} graph has no "
                   "modules left: rows are operators, not layers)")


def make_input(input_shape: Sequence[int], batch: int = 1):
    """A seeded float32 input of (C, H, W) at `batch`, or of a full (N, C, H, W)."""
    import numpy as np

    shape = tuple(int(v) for v in input_shape)
    shape = shape if len(shape) == 4 else (batch, *shape)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def rows_from_totals(totals: dict[str, float], ops: dict[str, str], runs: int,
                     extra: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rows {"name", "op", "ms", "share"} from total ms per name over `runs` runs, in the
    order of `totals` (execution order), with any `extra` keys per name."""
    grand = sum(totals.values())
    rows = []
    for name, total_ms in totals.items():
        row = {"name": name, "op": ops.get(name, ""), "ms": round(total_ms / runs, 6),
               "share": round(total_ms / grand, 6) if grand > 0 else 0.0}
        rows.append({**row, **(extra or {}).get(name, {})})
    return rows


def profiler_rows(runtime: Runtime, artifact: str, x, threads: int | None,
                  runs: int) -> tuple[list[dict[str, Any]], str]:
    """Self CPU time per operator from torch.profiler, over the runtime's own session."""
    from torch.profiler import ProfilerActivity, profile

    options = {**runtime.options(int(x.shape[0])), "threads": threads}
    session = SessionFactory(runtime.name, artifact, options).open()
    try:
        for _ in range(WARMUP_RUNS):  # the first call of `compile` compiles
            session.run(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                session.run(x)
    finally:
        session.close()
    totals = {evt.key: evt.self_cpu_time_total / 1e3 for evt in prof.key_averages()
              if evt.self_cpu_time_total > 0}
    totals = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
    return rows_from_totals(totals, {name: name for name in totals}, runs), \
        PROFILER_METHOD.format(runtime=runtime.name)


def _timing_runtime(runtime: str) -> Runtime:
    """The registered runtime `runtime` if it times layers; InfertuneError otherwise."""
    found = RUNTIMES.find(runtime)
    if found is None or not found.times_layers:
        raise InfertuneError(f"no per-layer timing for runtime {runtime!r}; "
                             f"available: {', '.join(RUNTIMES.layer_timed())}")
    return found


def layer_times(runtime: str, artifact_path: str | Path, input_shape: Sequence[int],
                threads: int | None = None, runs: int = 20) -> dict[str, Any]:
    """Measured time per layer (or node, or operator) of a built artifact, per inference.

    Args:
        runtime: a runtime that times layers (RUNTIMES.layer_timed(): onnxruntime (.onnx),
            openvino (.xml IR), torch (.pt2 program, or .ts), torchscript (.pt), compile).
        artifact_path: the file the runtime's `build` wrote.
        input_shape: (C, H, W) at batch 1, or a full (N, C, H, W).
        threads: intra-op threads (None: the runtime's default).
        runs: timed runs after WARMUP_RUNS warm-up runs.

    Returns:
        {"runtime", "artifact", "input_shape", "threads", "runs", "method",
         "total_ms" (sum of the rows), "layers": [{"name", "op", "ms", "share"}, ...]}
        (openvino rows also carry "exec_type", the kernel that ran, and "fused_from", the
        model ops fused into the node).

    Raises:
        InfertuneError: unknown runtime, missing artifact or runs < 1.
    """
    target = _timing_runtime(runtime)
    if runs < 1:
        raise InfertuneError(f"runs must be at least 1, not {runs}")
    artifact = str(artifact_path)
    if not Path(artifact).exists():
        raise InfertuneError(f"no such artifact: {artifact}")
    x = make_input(input_shape)
    rows, method = target.time_layers(artifact, x, threads, runs)
    return {"runtime": runtime, "artifact": artifact, "input_shape": list(x.shape),
            "threads": threads, "runs": runs, "method": method,
            "total_ms": round(sum(row["ms"] for row in rows), 6), "layers": rows}


def profile_layer_time(handle, runtime: str, *, threads: int | None = None,
                       input_size: tuple[int, int] | None = None,
                       runs: int = 20) -> dict[str, Any]:
    """Builds `handle`'s artifact for `runtime` in a temporary folder and times its layers
    (`infertune profile MODEL --layer-time RUNTIME`).

    Raises:
        InfertuneError: unknown, unavailable or incompatible runtime, or an artifact that
            cannot be built (ArtifactError).
    """
    target = _timing_runtime(runtime)
    ok, why = target.available()
    why = why if not ok else target.incompatible(handle)
    if why:
        raise InfertuneError(f"cannot time layers on {runtime}: {why}")
    spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
    with tempfile.TemporaryDirectory(prefix="infertune-layer-time-") as tmp:
        artifact = target.build(handle, tmp, input_size=input_size, threads=threads)
        result = layer_times(runtime, artifact, spec.chw, threads=threads, runs=runs)
    return {**result, "artifact": Path(artifact).name}


__all__ = ["OTHER_ROW", "WARMUP_RUNS", "layer_times", "make_input", "profile_layer_time",
           "profiler_rows", "rows_from_totals"]
