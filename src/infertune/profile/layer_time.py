"""Measured time per layer of a built artifact: where the time goes, on the runtime that runs it.

Each runtime is asked in its own terms, and the result says how (`method`):
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
  summed over the calls of one run): where the time goes by kind of op, not by layer.

In every case `ms` is per inference (the total over `runs` timed runs after warm-up, divided
by `runs`), and `share` is ms over the sum of all rows, so the shares add up to 1.
"""
from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from ..errors import InfertuneError

WARMUP_RUNS = 3
RUNTIMES = ("onnxruntime", "openvino", "torch", "torchscript", "compile")
OTHER_ROW = "(other)"


def _input(input_shape: Sequence[int], batch: int = 1):
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


def ort_kernel_events(trace: list[dict[str, Any]], warmup: int) -> list[dict[str, Any]]:
    """The per-node kernel events of an ORT profile trace, minus those of the first `warmup`
    runs (a node event belongs to the `model_run` event whose interval contains it)."""
    runs = sorted((e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    if len(runs) <= warmup:
        return []
    start = runs[warmup]["ts"]
    return [e for e in trace if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
            and e["ts"] >= start]


def _ort(artifact: str, x, threads: int | None, runs: int) -> list[dict[str, Any]]:
    import onnxruntime as ort

    from ..runtimes.onnxruntime import session_options

    with tempfile.TemporaryDirectory(prefix="infertune-ortprof-") as tmp:
        options = session_options({"threads": threads})
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        for _ in range(WARMUP_RUNS + runs):
            session.run(None, feed)
        trace = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, float] = defaultdict(float)
    ops: dict[str, str] = {}
    for event in ort_kernel_events(trace, WARMUP_RUNS):
        name = event["name"][: -len("_kernel_time")]
        totals[name] += event["dur"] / 1e3  # µs -> ms
        ops[name] = event.get("args", {}).get("op_name", "")
    return rows_from_totals(dict(totals), ops, runs)


def _openvino(artifact: str, x, threads: int | None, runs: int) -> list[dict[str, Any]]:
    import openvino as ov

    from ..runtimes.openvino import artifact_precision, compile_config

    core = ov.Core()
    model = core.read_model(artifact)
    options = {"threads": threads, "batch": x.shape[0],
               "precision": artifact_precision(model) or "f32"}
    compiled = core.compile_model(model, "CPU", {**compile_config(options), "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    totals: dict[str, float] = defaultdict(float)
    ops: dict[str, str] = {}
    extra: dict[str, dict[str, Any]] = {}
    for i in range(WARMUP_RUNS + runs):
        request.infer({0: x})
        if i < WARMUP_RUNS:
            continue
        for info in request.get_profiling_info():  # counters of this inference only
            if info.status != info.Status.EXECUTED:
                continue
            totals[info.node_name] += info.real_time.total_seconds() * 1e3
            ops[info.node_name] = info.node_type
            extra[info.node_name] = {"exec_type": info.exec_type}
    return rows_from_totals(dict(totals), ops, runs, extra)


def _module_types(program) -> dict[str, str]:
    """Module path -> class name, from the exported graph's nn_module_stack metadata."""
    types: dict[str, str] = {}
    for node in program.graph.nodes:
        for path, type_name in (node.meta.get("nn_module_stack") or {}).values():
            types.setdefault(str(path), str(type_name).rsplit(".", 1)[-1])
    return types


def _load_program(artifact: str):
    import torch

    try:
        return torch.export.load(artifact)
    except RuntimeError:  # a PT2E-quantized program (runtimes/torch_eager.py says why)
        import torch.ao.quantization.fx._decomposed  # noqa: F401

        return torch.export.load(artifact)


class _LeafTimer:
    """Forward pre/post hooks that add each leaf module's wall time (ns) to `totals`."""

    def __init__(self, module, sync):
        self.totals: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self._start: dict[str, int] = {}
        self._sync = sync
        self.handles = []
        for name, child in module.named_modules():
            if name and not any(True for _ in child.children()):
                self.totals[name] = self.calls[name] = 0
                self.handles.append(child.register_forward_pre_hook(self._pre(name)))
                self.handles.append(child.register_forward_hook(self._post(name)))

    def _pre(self, name):
        def hook(module, args):
            self._sync()
            self._start[name] = time.perf_counter_ns()
        return hook

    def _post(self, name):
        def hook(module, args, output):
            self._sync()
            self.totals[name] += time.perf_counter_ns() - self._start[name]
            self.calls[name] += 1
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _torch_hooks(artifact: str, x, threads: int | None, runs: int) -> list[dict[str, Any]]:
    import torch

    from ..measure.limits import torch_threads

    program = _load_program(artifact)
    module = torch.export.unflatten(program)
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() \
        else (lambda: None)
    xt = torch.from_numpy(x)
    with torch_threads(threads or torch.get_num_threads()), torch.inference_mode():
        for _ in range(WARMUP_RUNS):
            module(xt)
        timer = _LeafTimer(module, sync)
        start = time.perf_counter_ns()
        for _ in range(runs):
            module(xt)
        sync()
        whole_ns = time.perf_counter_ns() - start
        timer.remove()
    # A leaf that never ran (an Identity the export left without ops) is no layer to time.
    totals = {name: ns / 1e6 for name, ns in timer.totals.items() if timer.calls[name]}
    # Ops outside leaf modules, the hooks' own cost and the run loop: the rest of the time.
    totals[OTHER_ROW] = max(0.0, whole_ns / 1e6 - sum(totals.values()))
    return rows_from_totals(totals, _module_types(program), runs)


def _torch_profiler(runtime: str, artifact: str, x, threads: int | None,
                    runs: int) -> list[dict[str, Any]]:
    from torch.profiler import ProfilerActivity, profile

    from ..measure.session import SessionFactory
    from ..runtimes import RUNTIMES

    options = {**RUNTIMES.get(runtime).options(int(x.shape[0])), "threads": threads}
    session = SessionFactory(runtime, artifact, options).open()
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
    return rows_from_totals(totals, {name: name for name in totals}, runs)


METHODS = {
    "onnxruntime": "ONNX Runtime's profiler (enable_profiling): *_kernel_time events per "
                   "executed node of the optimised graph",
    "openvino": "OpenVINO CPU plugin performance counters (PERF_COUNT), real_time per "
                "executed node, read after each inference",
    "torch": "forward pre/post hooks per leaf module of the unflattened torch.export program, "
             "time.perf_counter_ns; approximate (hook overhead, a few µs per module, is in "
             f"the {OTHER_ROW!r} row with ops outside any leaf module)",
    "profiler": "torch.profiler self CPU time per operator (the {runtime} graph has no "
                "modules left: rows are operators, not layers)",
}


def layer_times(runtime: str, artifact_path: str | Path, input_shape: Sequence[int],
                threads: int | None = None, runs: int = 20) -> dict[str, Any]:
    """Measured time per layer (or node, or operator) of a built artifact, per inference.

    Args:
        runtime: onnxruntime (.onnx), openvino (.xml IR), torch (.pt2 program, or .ts),
            torchscript (.pt) or compile (.pt2).
        artifact_path: the file the runtime's `build` wrote.
        input_shape: (C, H, W) at batch 1, or a full (N, C, H, W).
        threads: intra-op threads (None: the runtime's default).
        runs: timed runs after WARMUP_RUNS warm-up runs.

    Returns:
        {"runtime", "artifact", "input_shape", "threads", "runs", "method",
         "total_ms" (sum of the rows), "layers": [{"name", "op", "ms", "share"}, ...]}
        (openvino rows also carry "exec_type", the kernel that ran).

    Raises:
        InfertuneError: unknown runtime, missing artifact or runs < 1.
    """
    if runtime not in RUNTIMES:
        raise InfertuneError(f"no per-layer timing for runtime {runtime!r}; "
                             f"available: {', '.join(RUNTIMES)}")
    if runs < 1:
        raise InfertuneError(f"runs must be at least 1, not {runs}")
    artifact = str(artifact_path)
    if not Path(artifact).exists():
        raise InfertuneError(f"no such artifact: {artifact}")
    x = _input(input_shape)
    if runtime == "onnxruntime":
        rows, method = _ort(artifact, x, threads, runs), METHODS["onnxruntime"]
    elif runtime == "openvino":
        rows, method = _openvino(artifact, x, threads, runs), METHODS["openvino"]
    elif runtime == "torch" and artifact.endswith(".pt2"):
        rows, method = _torch_hooks(artifact, x, threads, runs), METHODS["torch"]
    else:
        rows = _torch_profiler(runtime, artifact, x, threads, runs)
        method = METHODS["profiler"].format(runtime=runtime)
    return {"runtime": runtime, "artifact": artifact, "input_shape": list(x.shape),
            "threads": threads, "runs": runs, "method": method,
            "total_ms": round(sum(row["ms"] for row in rows), 6), "layers": rows}


def profile_layer_time(handle, runtime: str, *, threads: int | None = None,
                       input_size: tuple[int, int] | None = None,
                       runs: int = 20) -> dict[str, Any]:
    """Builds `handle`'s artifact for `runtime` in a temporary folder and times its layers
    (`infertune profile MODEL --layer-time RUNTIME`).

    Raises:
        InfertuneError: unknown, unavailable or incompatible runtime (ConfigError for an
            unknown name), or an artifact that cannot be built (ArtifactError).
    """
    from ..runtimes import RUNTIMES as REGISTERED

    if runtime not in RUNTIMES:
        raise InfertuneError(f"no per-layer timing for runtime {runtime!r}; "
                             f"available: {', '.join(RUNTIMES)}")
    target = REGISTERED.get(runtime)
    ok, why = target.available()
    why = why if not ok else target.incompatible(handle)
    if why:
        raise InfertuneError(f"cannot time layers on {runtime}: {why}")
    spec = handle.input_spec if input_size is None else handle.input_spec.with_hw(*input_size)
    with tempfile.TemporaryDirectory(prefix="infertune-layer-time-") as tmp:
        artifact = target.build(handle, tmp, input_size=input_size, threads=threads)
        result = layer_times(runtime, artifact, spec.chw, threads=threads, runs=runs)
    return {**result, "artifact": Path(artifact).name}


__all__ = ["layer_times", "profile_layer_time", "rows_from_totals", "ort_kernel_events"]
