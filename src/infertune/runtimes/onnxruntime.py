"""ONNX Runtime: the model exported to ONNX (opset 17, dynamic batch), run with every graph
optimisation on, on the CPU execution provider only. The onnxruntime-gpu wheel offers the
CUDA and TensorRT providers to any session that does not name its providers; this runtime
always names exactly ["CPUExecutionProvider"], so that a GPU figure never appears under the
CPU runtime's name. ORT's GPU providers are runtimes of their own, named so
(onnxruntime_cuda.py: "onnxruntime-cuda", onnxruntime_tensorrt.py: "onnxruntime-tensorrt"),
built from the same ONNX artifact and opened with this module's session class.

Session settings, and why: every graph optimisation on (ORT_ENABLE_ALL, what a deployment
uses); `intra_op_num_threads` = the measured thread count, so that runtimes are compared at
equal threads; one inter-op thread and sequential execution, because a CNN backbone is a
chain of ops with nothing to run in parallel and extra pools only compete for the cores.

Absolute imports throughout: this module is `infertune.runtimes.onnxruntime`, and
`import onnxruntime` inside it must (and does) mean the library, not itself.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from infertune.errors import ModelFileError
from infertune.runtimes.base import (Loader, Runtime, TritonBackend, TritonSettings,
                                     onnx_artifact, opener, register)
from infertune.runtimes.layer_time import WARMUP_RUNS, rows_from_totals

# Options a caller may pass, besides "threads": "config" entries for add_session_config_entry
# (e.g. {"session.dynamic_block_base": "4"}), "spinning" (False: the entry
# session.intra_op.allow_spinning = "0", idle intra-op threads sleep instead of spinning) and
# "optimization" ("all"|"extended"|"basic"|"disable"). The providers are not an option: they
# are the runtime's (CPU_PROVIDERS here).
_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED",
           "basic": "ORT_ENABLE_BASIC", "disable": "ORT_DISABLE_ALL"}
SPINNING = "session.intra_op.allow_spinning"
CPU_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)


def settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """The session settings of `options` as plain JSON (what `session_options` applies and
    best/run.py repeats): optimisation level, thread counts, execution mode, config entries."""
    level = options.get("optimization", "all")
    if level not in _LEVELS:
        raise ValueError(f"optimization must be one of {', '.join(_LEVELS)}, not {level!r}")
    entries = {str(k): str(v) for k, v in dict(options.get("config") or {}).items()}
    if options.get("spinning") is not None:
        entries[SPINNING] = "1" if options["spinning"] else "0"
    return {"graph_optimization_level": _LEVELS[level],
            "intra_op_num_threads": int(options.get("threads") or os.cpu_count() or 1),
            "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL",
            "config_entries": entries}


def session_options(options: Mapping[str, Any]):
    """The SessionOptions described in the module docstring."""
    import onnxruntime as ort

    found = settings(options)
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                          found["graph_optimization_level"])
    so.intra_op_num_threads = found["intra_op_num_threads"]
    so.inter_op_num_threads = found["inter_op_num_threads"]
    so.execution_mode = getattr(ort.ExecutionMode, found["execution_mode"])
    so.log_severity_level = 3  # errors only: ORT warns about unused initializers and the like
    for key, value in found["config_entries"].items():
        so.add_session_config_entry(key, value)
    return so


def read_back(so) -> dict[str, Any]:
    """What an opened session's SessionOptions hold (`InferenceSession.get_session_options`):
    the settings of `settings`, read from ONNX Runtime rather than from our request."""
    entries = {}
    for key in (SPINNING, "session.dynamic_block_base"):
        value = so.get_session_config_entry(key) if _has_entry(so, key) else None
        if value is not None:
            entries[key] = value
    return {"graph_optimization_level": str(so.graph_optimization_level).rsplit(".", 1)[-1],
            "intra_op_num_threads": so.intra_op_num_threads,
            "inter_op_num_threads": so.inter_op_num_threads,
            "execution_mode": str(so.execution_mode).rsplit(".", 1)[-1],
            "config_entries": entries}


def _has_entry(so, key: str) -> bool:
    try:
        so.get_session_config_entry(key)
    except Exception:  # noqa: BLE001 - ORT raises for an entry that was never set
        return False
    return True


class OrtSession:
    """One ORT InferenceSession with a single image input, on exactly `providers` (a name or
    a (name, provider options) pair each; the CPU provider alone unless a GPU runtime says)."""

    def __init__(self, artifact: str, options: Mapping[str, Any],
                 providers: Sequence[Any] = CPU_PROVIDERS):
        import onnxruntime as ort

        if not os.path.isfile(artifact):
            raise ModelFileError("no such ONNX file", path=artifact)
        self.options = dict(options)
        self._version = ort.__version__
        self._sess = ort.InferenceSession(artifact, session_options(options),
                                          providers=list(providers))
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ModelFileError(f"expected one input, found {len(inputs)}", path=artifact)
        self._input = inputs[0].name

    def run(self, x):
        return self._sess.run(None, {self._input: x})

    def close(self) -> None:
        self._sess = None

    def describe(self) -> dict[str, Any]:
        return {"providers": self._sess.get_providers() if self._sess else None,
                "intra_op_num_threads": int(self.options.get("threads") or 0),
                "optimization": self.options.get("optimization", "all"),
                "session_options": read_back(self._sess.get_session_options())
                if self._sess else None,
                "onnxruntime": self._version}


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    accepts = ("torch", "onnx")
    requires = ("onnxruntime", "onnx")
    install = "pip install onnxruntime onnx"
    cast_torch_hint = ("ONNX Runtime takes float16 as a float16 graph with float32 I/O (fp16 "
                       "with target=onnxruntime) and has no bfloat16 CPU kernels")
    description = "ONNX Runtime, all graph optimisations, CPU execution provider only"
    artifact_files = ".onnx"
    artifact_note = "ONNX, opset >= 17, dynamic batch"
    loader = Loader("onnxruntime", (
        "import onnxruntime as ort\n"
        "CONFIG = {CONFIG}  # the session settings the pick was measured with\n"
        "so = ort.SessionOptions()\n"
        "so.graph_optimization_level = getattr(ort.GraphOptimizationLevel,\n"
        "                                      CONFIG.get('graph_optimization_level', "
        "'ORT_ENABLE_ALL'))\n"
        "if CONFIG.get('intra_op_num_threads'):\n"
        "    so.intra_op_num_threads = CONFIG['intra_op_num_threads']\n"
        "if CONFIG.get('inter_op_num_threads'):\n"
        "    so.inter_op_num_threads = CONFIG['inter_op_num_threads']\n"
        "so.execution_mode = getattr(ort.ExecutionMode, CONFIG.get('execution_mode', "
        "'ORT_SEQUENTIAL'))\n"
        "for key, value in CONFIG.get('config_entries', {}).items():\n"
        "    so.add_session_config_entry(key, value)\n"
        "session = ort.InferenceSession(MODEL, so, providers=['CPUExecutionProvider'])\n"
        "predict = lambda x: session.run(None, {session.get_inputs()[0].name: x})[0]\n"))
    triton = TritonBackend("platform", "onnxruntime_onnx", "model.onnx")
    prior_speedups = {"fp32": 1.7, "int8": 5.4, "int8-dynamic": 0.5}
    rank = 40
    times_layers = True

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        return onnx_artifact(handle, workdir, input_size)

    def configurations(self, objective: str, threads: int,
                       max_threads: int) -> list[dict[str, Any]]:
        """The session settings worth timing against the default (every optimisation,
        `threads` intra-op threads that spin while idle): no spinning (on a shared machine
        a spinning thread takes a core another process needs); the EXTENDED level, i.e.
        without the NCHWc layout transformer of ALL (its Reorder nodes can cost a small
        model more than the blocked kernels save); and under latency with several threads,
        one thread (no synchronisation per op) and ONNX Runtime's dynamic cost model for
        splitting work (session.dynamic_block_base=4, its threading guide's suggestion for
        latency variance); with more logical CPUs than `threads` that the run may use,
        every one of them."""
        out: list[dict[str, Any]] = [{"spinning": False}, {"optimization": "extended"}]
        if objective == "latency" and threads > 1:
            out += [{"threads": 1}, {"config": {"session.dynamic_block_base": "4"}}]
        if max_threads > threads:
            out.append({"threads": max_threads})
        return out

    def deploy_config(self, options: Mapping[str, Any],
                      artifact: str | None = None) -> dict[str, Any]:
        return settings(options)

    def triton_settings(self, options: Mapping[str, Any]) -> TritonSettings:
        """The chosen configuration (`options`: what it sets beyond the defaults) for
        Triton's ONNX Runtime backend, which reads intra_op_thread_count as a parameter
        and the level as optimization { graph { level } } (its README), and no
        session.intra_op.* or dynamic_block_base entry."""
        params = {"intra_op_thread_count": str(int(options["threads"]))} \
            if options.get("threads") else {}
        level = TRITON_GRAPH_LEVELS.get(_LEVELS.get(options.get("optimization", "all"), ""))
        blocks = (f"optimization {{ graph {{ level: {level} }} }}",) if level is not None else ()
        entries = settings({k: v for k, v in options.items() if k in ("config", "spinning")})
        missing = tuple(f"{k}={v}" for k, v in entries["config_entries"].items())
        return TritonSettings(parameters=params, blocks=blocks, not_set=missing)

    def time_layers(self, artifact, x, threads, runs):
        return ort_layer_rows(artifact, x, threads, runs), LAYER_METHOD


# Triton's optimization { graph { level } }: -1 BASIC, 1 EXTENDED, 2 DISABLE_ALL; absent = ALL.
TRITON_GRAPH_LEVELS = {"ORT_ENABLE_BASIC": -1, "ORT_ENABLE_EXTENDED": 1, "ORT_DISABLE_ALL": 2}


register(OnnxRuntime())


@opener("onnxruntime", preload=("numpy", "onnxruntime"))
def open_onnxruntime(artifact: str, options: Mapping[str, Any]) -> OrtSession:
    """Opens an .onnx file with ONNX Runtime on the CPU provider only."""
    return OrtSession(artifact, options)


# ---------------------------------------------------------------------------- layer time
LAYER_METHOD = ("ONNX Runtime's profiler (enable_profiling): *_kernel_time events per executed "
                "node of the optimised graph")


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


def ort_layer_rows(artifact: str, x, threads: int | None, runs: int) -> list[dict[str, Any]]:
    """Per-node rows from ORT's own profiler, warm-up runs left out (layer_time.py)."""
    import onnxruntime as ort

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
