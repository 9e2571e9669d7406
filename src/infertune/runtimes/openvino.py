"""OpenVINO on the CPU: the model exported to ONNX, converted to OpenVINO IR (.xml + .bin,
FP32 weights: compress_to_fp16=False), compiled by the CPU plugin.

Precision, the trap: on a CPU with AVX-512 BF16 or AMX the CPU plugin *silently* runs BF16
unless told otherwise (Darknet19_448 here: 50 ms "default" vs 108-123 ms FP32). An FP32
figure therefore sets INFERENCE_PRECISION_HINT=f32 explicitly (option "precision", default
"f32"; "default" leaves the plugin's choice), and the session reads back from the compiled
model what really runs: the compiled INFERENCE_PRECISION_HINT and the histogram of the
execution graph's per-node runtime precisions, both in `session_info`, with one sentence
for the model card in `session_info["precision"]["summary"]` ("bf16 requested; OpenVINO
ran 4 of 4 ops in bf16", or "... this CPU has no native bf16 ...: OpenVINO ran 4 of 4 ops
in f32": the CPU plugin silently keeps f32 where the CPU lacks the instructions).

Performance hint: LATENCY for batch 1 (one stream using every thread), THROUGHPUT for larger
batches. Under THROUGHPUT the plugin makes several streams that only help when several
requests run at once, so a batch is split into one chunk per optimal infer request and the
chunks run concurrently on that many infer requests; `run` returns when all are done (this is how
OpenVINO's own benchmark_app reaches its throughput, here within one call).

Runtime configuration (the search's "configured" stage, search/space.configured): the
options "hint", "streams" (NUM_STREAMS), "pinning" (ENABLE_CPU_PINNING), "hyperthreading"
(ENABLE_HYPER_THREADING) and "threads" (INFERENCE_NUM_THREADS) set how the plugin schedules
the same computation; `describe` reads each back from the compiled model, and best/run.py
compiles the pick with the same properties (`deploy_config`).

A candidate can carry its precision: a pass that wants OpenVINO to run it in f16 or bf16
(the fp16/bf16 passes, target openvino) sets `meta["inference_precision"]` on the handle;
`build` stores it in the IR's runtime info (`infertune/inference_precision`) and the session
requests that precision instead of the options' one. A torch module the passes cast to
bf16/fp16 themselves (target torch) is built as its float32 copy with the matching request
(`float32_source`). A handle of format "openvino" (an IR, e.g. from NNCF's quantizer) is
copied as it is.

Absolute imports: this module is `infertune.runtimes.openvino`; `import openvino` is the library.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Mapping

from infertune.runtimes.base import (ArtifactError, Loader, Runtime, TritonBackend,
                                     TritonSettings, first_line, onnx_artifact, opener,
                                     register, workdir_for)
from infertune.runtimes.layer_time import WARMUP_RUNS, rows_from_totals

PRECISIONS = ("f32", "bf16", "f16", "default")


PRECISION_KEY = ["infertune", "inference_precision"]
OV_PRECISION_NAMES = {"bf16": "bf16", "fp16": "f16"}  # infertune's precision → OpenVINO's


def to_ir(onnx_path: Path, out: Path, precision: str | None = None) -> Path:
    """Converts an ONNX file (or copies an IR .xml) to IR at `out` (.xml; .bin beside it),
    with the requested inference precision in its runtime info, and reads it back."""
    import openvino as ov

    try:
        model = (ov.Core().read_model(str(onnx_path)) if str(onnx_path).endswith(".xml")
                 else ov.convert_model(str(onnx_path)))
        if precision:
            model.set_rt_info(precision, PRECISION_KEY)
        ov.save_model(model, str(out), compress_to_fp16=False)
        ov.Core().read_model(str(out))
    except Exception as exc:
        raise ArtifactError(f"OpenVINO conversion failed: {first_line(exc)}") from None
    return out


# Runtime configuration options (search/space.configured plans them, the session applies
# them): option -> the CPU plugin property it sets. None of them changes what is computed,
# only how the work is scheduled (the search checks that by parity before timing a variant).
CONFIG_PROPERTIES = {"streams": "NUM_STREAMS", "pinning": "ENABLE_CPU_PINNING",
                     "hyperthreading": "ENABLE_HYPER_THREADING"}
HINTS = ("LATENCY", "THROUGHPUT")


def compile_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """CPU plugin properties for the options (module docstring): "precision", "hint",
    "threads", and the configuration options of CONFIG_PROPERTIES."""
    precision = options.get("precision", "f32")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    batch = options.get("batch")
    hint = options.get("hint") or ("THROUGHPUT" if batch and int(batch) > 1 else "LATENCY")
    if hint not in HINTS:
        raise ValueError(f"hint must be one of {', '.join(HINTS)}, not {hint!r}")
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    if options.get("threads"):
        config["INFERENCE_NUM_THREADS"] = int(options["threads"])
    if precision != "default":
        config["INFERENCE_PRECISION_HINT"] = precision
    if options.get("streams") is not None:
        config["NUM_STREAMS"] = int(options["streams"])
    for key in ("pinning", "hyperthreading"):
        if options.get(key) is not None:
            config[CONFIG_PROPERTIES[key]] = bool(options[key])
    return config


def artifact_precision(model) -> str | None:
    """The inference precision stored in an IR by `build` (module docstring), or None."""
    return model.get_rt_info(PRECISION_KEY).astype(str) if model.has_rt_info(PRECISION_KEY) \
        else None


def runtime_precisions(compiled) -> dict[str, int]:
    """How many nodes of the execution graph run in each precision (read from the plugin)."""
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "runtimePrecision" in info:
            counts[str(info["runtimePrecision"].astype(str))] += 1
    return dict(counts)


def float32_source(handle):
    """(the handle to convert, the inference precision to request).

    A torch module that the fp16/bf16 passes cast themselves (target torch, meta
    "torch_precision") is converted as its float32 copy with the matching hint, never as a
    bfloat16/float16-typed ONNX: OpenVINO does low precision per op at compile time, and the
    ONNX export of a bfloat16 module is a graph that ONNX Runtime (which checks the export)
    cannot even load. The weights keep their rounded values, so the candidate is the same.
    """
    import dataclasses

    cast = handle.meta.get("torch_precision") if handle.format == "torch" else None
    if not cast:
        return handle, handle.meta.get("inference_precision")
    meta = {k: v for k, v in handle.meta.items() if k != "torch_precision"}
    precision = OV_PRECISION_NAMES[cast]
    return dataclasses.replace(handle, obj=handle.obj.float32_module(),
                               meta={**meta, "inference_precision": precision}), precision


# Execution-graph nodes that do no arithmetic (I/O, constants, layout and type changes):
# left out of the per-op count of what precision the model ran in.
_NOT_COMPUTE = frozenset({"Input", "Output", "Const", "Reorder", "Convert", "Reshape"})


def compute_precisions(compiled) -> dict[str, int]:
    """How many computing nodes (not `_NOT_COMPUTE`) of the execution graph run in each
    precision, as the plugin reports them (rt_info "runtimePrecision")."""
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = str(info["layerType"].astype(str)) if "layerType" in info else ""
        if "runtimePrecision" in info and kind not in _NOT_COMPUTE:
            counts[str(info["runtimePrecision"].astype(str))] += 1
    return dict(counts)


def precision_ran(requested: str, ran: str, ops: Mapping[str, int],
                  capabilities: list[str]) -> dict[str, Any]:
    """What OpenVINO ran, for the model card: the compiled inference precision (`ran`), the
    per-op histogram and one sentence ("bf16 requested; OpenVINO ran 5 of 6 ops in bf16, 1
    of 6 in f32"). `capabilities` is the CPU plugin's OPTIMIZATION_CAPABILITIES: it says
    whether a low precision that was not run is missing from this CPU."""
    total = sum(ops.values())
    head = "the plugin's default precision requested" if requested == "default" \
        else f"{requested} requested"
    why = ""
    if requested in ("bf16", "f16") and ran != requested:
        native = {"bf16": "BF16", "f16": "FP16"}[requested] in capabilities
        why = (f"OpenVINO kept {ran}: " if native else
               f"this CPU has no native {requested} (OpenVINO's CPU capabilities: "
               f"{', '.join(capabilities)}): ")
    ran_ops = ", ".join(f"{n} of {total} ops in {p}" for p, n in
                        sorted(ops.items(), key=lambda item: (-item[1], item[0])))
    summary = f"{head}; {why}OpenVINO ran " + (ran_ops or f"{ran} (no per-op report)")
    return {"requested": requested, "ran": ran, "ops_by_precision": dict(ops),
            "cpu_capabilities": list(capabilities), "summary": summary}


def _bool_property(compiled, name: str) -> bool | None:
    """A boolean property of the compiled model, or None where this OpenVINO has none."""
    try:
        return bool(compiled.get_property(name))
    except Exception:  # noqa: BLE001 - an older plugin without the property
        return None


def _type_name(value: Any) -> str:
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


class OpenVinoSession:
    """A compiled model; batches split over concurrent requests under THROUGHPUT."""

    def __init__(self, artifact: str, options: Mapping[str, Any]):
        import openvino as ov

        self._ov = ov
        core = ov.Core()
        model = core.read_model(artifact)
        self.options = dict(options)
        if artifact_precision(model):
            self.options["precision"] = artifact_precision(model)
        self.config = compile_config(self.options)
        self._compiled = core.compile_model(model, "CPU", self.config)
        self._request = self._compiled.create_infer_request()
        self._n = 1
        if self.config["PERFORMANCE_HINT"] == "THROUGHPUT":
            self._n = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        # Plain requests started asynchronously and waited on in turn, not an AsyncInferQueue
        # with a Python callback: the callback needs the GIL on an OpenVINO thread, and that
        # queue was seen to hang (a child stuck in `run` until killed) on this machine.
        self._requests = [self._request] + [self._compiled.create_infer_request()
                                            for _ in range(self._n - 1)]

    def run(self, x):
        import numpy as np

        if self._n == 1 or x.shape[0] < 2:
            result = self._request.infer({0: x})
            return [result[port] for port in self._compiled.outputs]
        parts = np.array_split(x, min(self._n, x.shape[0]))
        for request, part in zip(self._requests, parts):
            request.start_async({0: part})
        chunks = []
        for request, _ in zip(self._requests, parts):
            request.wait()
            chunks.append([request.get_output_tensor(i).data.copy()
                           for i in range(len(self._compiled.outputs))])
        return [np.concatenate(outs) for outs in zip(*chunks)]

    def close(self) -> None:
        self._requests = []
        self._request = self._compiled = None

    def describe(self) -> dict[str, Any]:
        c = self._compiled
        requested = self.options.get("precision", "f32")
        ran = _type_name(c.get_property("INFERENCE_PRECISION_HINT"))
        capabilities = [str(x) for x in
                        self._ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        return {"device": "CPU", "requested_precision": requested, "inference_precision": ran,
                "precision": precision_ran(requested, ran, compute_precisions(c), capabilities),
                "runtime_precisions": runtime_precisions(c),
                "performance_hint": str(c.get_property("PERFORMANCE_HINT")),
                "num_streams": int(c.get_property("NUM_STREAMS")), "infer_requests": self._n,
                "inference_num_threads": int(c.get_property("INFERENCE_NUM_THREADS")),
                "enable_cpu_pinning": _bool_property(c, "ENABLE_CPU_PINNING"),
                "enable_hyper_threading": _bool_property(c, "ENABLE_HYPER_THREADING"),
                "requested_config": {k: v for k, v in self.config.items()},
                "openvino": self._ov.__version__}


class OpenVinoRuntime(Runtime):
    name = "openvino"
    accepts = ("torch", "onnx", "openvino")
    requires = ("openvino", "onnx", "onnxruntime")  # the ONNX export is checked with ORT
    install = "pip install openvino"
    description = "OpenVINO CPU plugin, FP32 requested explicitly (LATENCY/THROUGHPUT hint)"

    takes_cast_torch = True  # as its float32 copy with the matching hint (`float32_source`)
    artifact_files = ".xml + .bin"
    artifact_note = "OpenVINO IR, FP32 weights"
    loader = Loader("openvino", (
        "import openvino as ov\n"
        "CONFIG = {CONFIG}  # the CPU plugin properties the pick was measured with\n"
        "compiled = ov.Core().compile_model(MODEL, 'CPU', CONFIG)\n"
        "predict = lambda x: compiled(x)[0]\n"))
    triton = TritonBackend("backend", "openvino", "model.xml")
    prior_speedups = {"fp32": 1.7, "int8": 6.2, "bf16": 3.5, "fp16": 3.5}
    rank = 50
    times_layers = True

    def build(self, handle, workdir, *, input_size=None, threads=None) -> Path:
        handle, precision = float32_source(handle)
        source = (Path(handle.path) if handle.format == "openvino"
                  else onnx_artifact(handle, workdir, input_size))
        return to_ir(source, workdir_for(workdir, self.name) / "model.xml", precision)

    def options(self, batch: int | None) -> dict[str, Any]:
        return {"precision": "f32", "batch": batch}

    def configurations(self, objective: str, threads: int,
                       max_threads: int) -> list[dict[str, Any]]:
        """The CPU plugin settings worth timing against the default (LATENCY hint, pinned,
        `threads` inference threads): under the throughput objective the THROUGHPUT hint
        (the plugin picks the streams; a batch is split over its infer requests) and, with
        4 threads or more, one stream per thread; under latency a single thread (a small
        model can lose more to synchronisation than it gains); unpinned threads (pinning
        is the Linux default; on a shared machine another process may hold the pinned
        core); hyper-threading with every logical CPU where there are more than `threads`
        and the run may use them."""
        out: list[dict[str, Any]] = []
        if objective == "throughput":
            out.append({"hint": "THROUGHPUT"})
            if threads >= 4:
                out.append({"hint": "THROUGHPUT", "streams": threads})
        elif threads > 1:
            out.append({"threads": 1})
        out.append({"pinning": False})
        if max_threads > threads:
            out.append({"threads": max_threads, "hyperthreading": True})
        return out

    def deploy_config(self, options: Mapping[str, Any],
                      artifact: str | None = None) -> dict[str, Any]:
        """The CPU plugin properties of `options`, with the inference precision the IR
        asks for (as the session does): the config dict of best/run.py."""
        options = dict(options)
        if artifact:
            import openvino as ov

            stored = artifact_precision(ov.Core().read_model(str(artifact)))
            if stored:
                options["precision"] = stored
        options.pop("batch", None)
        return compile_config(options)

    def triton_settings(self, options: Mapping[str, Any]) -> TritonSettings:
        """The chosen configuration (`options`: what it sets beyond the defaults) for
        Triton's OpenVINO backend, which reads PERFORMANCE_HINT, NUM_STREAMS and
        INFERENCE_NUM_THREADS (its README) but cannot set pinning or hyper-threading."""
        names = {"hint": "PERFORMANCE_HINT", "streams": "NUM_STREAMS",
                 "threads": "INFERENCE_NUM_THREADS"}
        params = {names[k]: str(v) for k, v in options.items() if k in names}
        missing = tuple(f"{CONFIG_PROPERTIES[k]}={options[k]}" for k in ("pinning",
                                                                         "hyperthreading")
                        if k in options)
        return TritonSettings(parameters=params, not_set=missing)

    def time_layers(self, artifact, x, threads, runs):
        return perf_counter_rows(artifact, x, threads, runs), LAYER_METHOD


register(OpenVinoRuntime())


@opener("openvino", preload=("numpy", "openvino"))
def open_openvino(artifact: str, options: Mapping[str, Any]) -> OpenVinoSession:
    """Compiles the IR for the CPU with the options' precision, hint and threads."""
    return OpenVinoSession(artifact, options)


# ---------------------------------------------------------------------------- layer time
LAYER_METHOD = ("OpenVINO CPU plugin performance counters (PERF_COUNT), real_time per executed "
                "node, read after each inference")  # rows also carry `fused_from` (fused_from)


def perf_counter_rows(artifact: str, x, threads: int | None, runs: int) -> list[dict[str, Any]]:
    """Per-node rows from the CPU plugin's counters, read after each timed inference (the
    counters describe the last one); fused-away nodes left out (layer_time.py)."""
    import openvino as ov

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
    fused = fused_from(compiled)
    for name, row in extra.items():
        row["fused_from"] = fused.get(name, [])
    return rows_from_totals(dict(totals), ops, runs, extra)


def fused_from(compiled) -> dict[str, list[str]]:
    """Executed node -> the friendly names of the model's ops the plugin fused into it (the
    runtime graph's `originalLayersNames`; empty for nodes the plugin inserted, e.g. Reorder)."""
    out = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        names = info["originalLayersNames"].astype(str) if "originalLayersNames" in info else ""
        out[op.get_friendly_name()] = [n for n in names.split(",") if n]
    return out
