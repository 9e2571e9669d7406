"""`infertune bench`: every requested runtime built, checked and timed the same way.

    load → build each runtime's artifact in a private work folder → for each batch size:
    parity reference (seeded inputs, float model's outputs) → interleaved rounds
    (A B C A B C ...), each measurement in a fresh child; the first round of each runtime
    also checks its outputs against the reference → one row per runtime and batch.

A runtime that is unavailable here, cannot take the model, fails to build, fails its output
check or crashes is a row with a status and a reason, never an exception. Runtimes that fail
their first round are not measured again (a wrong or broken artifact does not become right
in round two). The first runtime of the list is the baseline of every speedup.

With --e2e, each runtime's batch-1 child also times image file → class label (a classifier)
or image file → boxes (a detector: read + letterbox + network + decode + NMS, and the
preprocessing and the decode + NMS alone) right after its model-only loop (measure/e2e.py,
measure/e2e_detect.py).
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, first_line
from ..load import LoadOptions, load_model
from ..measure import SessionFactory, TimingConfig, compare, measure
from ..measure.e2e import list_images, make_spec
from ..measure.e2e_detect import make_detection_spec
from ..measure.fingerprint import fingerprint
from ..measure.inprocess import reference_outputs
from ..measure.parity import write_reference
from ..measure.rounds import default_threads
from ..runtimes import RUNTIMES, Incompatible
from ..types import ModelHandle
from .bench_results import aggregate, empty_row
from .options import BenchOptions

Progress = Callable[[str], None]
PARITY_INPUTS = 2  # seeded inputs per batch size: two draws catch a batch-mixing bug


def resolve_runtimes(spec: str | Sequence[str]) -> list[str]:
    """"all" → every registered runtime by rank (RUNTIMES.ordered()); else the listed names,
    checked."""
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    if names == ["all"]:
        return RUNTIMES.ordered()
    if not names:
        raise ConfigError("no runtime given; use --runtime torch,onnxruntime,... or all")
    for name in names:
        RUNTIMES.get(name)  # ConfigError with a "did you mean" for an unknown name
    if len(set(names)) != len(names):
        raise ConfigError(f"runtime listed twice: {','.join(names)}")
    return names


def resolve_batches(spec: str | Sequence[int]) -> tuple[list[int], bool]:
    """"1,8,32" or [1, 8] → ([1, 8, 32], False); "auto" → ([1], True) (throughput search)."""
    if isinstance(spec, str) and spec.strip() == "auto":
        return [1], True
    try:
        batches = [int(b) for b in (spec.split(",") if isinstance(spec, str) else spec)]
    except ValueError:
        raise ConfigError(f"--batch takes sizes like 1,8,32 or 'auto', not {spec!r}") from None
    if not batches or min(batches) < 1 or len(set(batches)) != len(batches):
        raise ConfigError(f"batch sizes must be distinct positive integers, not {spec!r}")
    return batches, False


# --------------------------------------------------------------------------- building


def build_one(name: str, handle: ModelHandle, workdir: Path, threads: int) -> dict[str, Any]:
    """{"name","artifact","status","reason","seconds"}: status None when built."""
    runtime = RUNTIMES.get(name)
    out: dict[str, Any] = {"name": name, "artifact": None, "status": None, "reason": None,
                           "seconds": None}
    ok, why = runtime.available()
    incompatible = runtime.incompatible(handle) if ok else None
    if not ok or incompatible:
        out.update(status="unavailable" if not ok else "incompatible", reason=why or incompatible)
        return out
    t0 = time.perf_counter()
    try:
        out["artifact"] = str(runtime.build(handle, workdir, threads=threads))
    except Incompatible as exc:
        out.update(status="incompatible", reason=str(exc))
    except Exception as exc:  # any build failure is this runtime's result, not the run's end
        out.update(status="failed", reason=f"build: {first_line(exc, with_type=True)}")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# --------------------------------------------------------------------------- parity reference


def write_parity(handle: ModelHandle, batch: int, workdir: Path) -> Path:
    """Seeded inputs at `batch` and their reference outputs, as an .npz the child reads."""
    inputs = [np.random.default_rng(1000 + i).standard_normal((batch, *handle.input_spec.chw))
              .astype(np.float32) for i in range(PARITY_INPUTS)]
    path = workdir / f"parity-b{batch}.npz"
    write_reference(path, inputs, reference_outputs(handle, inputs))
    return path


# --------------------------------------------------------------------------- measuring


class FirstRoundChecks:
    """compare()'s runner: adds the parity check to each runtime's first round, and does not
    measure again a runtime whose first round failed (its result is repeated instead)."""

    def __init__(self, parity: dict[str, dict], rounds: int, say: Progress):
        self.parity, self.rounds, self.say = parity, rounds, say
        self.first: dict[str, dict] = {}
        self.count: dict[str, int] = {}

    def __call__(self, factory, **options) -> dict[str, Any]:
        label = factory.name
        k = self.count[label] = self.count.get(label, 0) + 1
        prior = self.first.get(label)
        if prior is not None and prior.get("status") != "ok":
            return {**prior, "repeated": True}
        extra = {"parity": self.parity[label]} if prior is None else {}
        res = measure(factory, with_fingerprint=False, **options, **extra)
        self.first.setdefault(label, res)
        self.say(f"  round {k}/{self.rounds} {label:12s} batch {options.get('batch')}: "
                 + _one_result(res))
        return res


def _one_result(res: dict[str, Any]) -> str:
    if res.get("status") != "ok":
        return f"{res.get('status')}: {res.get('reason')}"
    lat = res["latency_ms"]
    return f"p50 {lat['p50']:.2f} ms (n={lat['n']}, cold start {res['cold_start_ms']:.0f} ms)"


def measure_batch(handle: ModelHandle, built: list[dict], batch: int, ctx: dict[str, Any]
                  ) -> list[dict[str, Any]]:
    """Rows for every runtime at one batch size (built ones measured in interleaved rounds)."""
    ready = [b for b in built if b["artifact"]]
    rows = {b["name"]: empty_row(b["name"], batch, ctx["threads"], b["status"], b["reason"])
            for b in built if not b["artifact"]}
    if ready:
        path = str(write_parity(handle, batch, ctx["workdir"]))
        factories = [SessionFactory(b["name"], b["artifact"], label=b["name"],
                                    options=RUNTIMES.get(b["name"]).options(batch)) for b in ready]
        parity = {b["name"]: {"path": path, **_tolerance(b["name"])} for b in ready}
        runner = FirstRoundChecks(parity, ctx["rounds"], ctx["say"])
        out = compare(factories, rounds=ctx["rounds"], runner=runner, input_shape=handle.input_spec,
                      batch=batch, throughput="auto" if ctx["auto"] else [batch],
                      timing=ctx["timing"], threads=ctx["threads"],
                      e2e=ctx["e2e"] if batch == 1 else None)
        for i, (b, summary) in enumerate(zip(ready, out["summary"])):
            row = aggregate([r[i] for r in out["results"]], summary, batch=batch,
                            threads=ctx["threads"], baseline=ready[0]["name"])
            rows[b["name"]] = _annotate(row, b)
    return [rows[b["name"]] for b in built]


def _tolerance(name: str) -> dict[str, Any]:
    tol = RUNTIMES.get(name).tolerance
    return {"rel_tolerance": tol.rel, "why": tol.why}


def _annotate(row: dict[str, Any], built: dict[str, Any]) -> dict[str, Any]:
    row["build"] = {"seconds": built["seconds"], "artifact": Path(built["artifact"]).name}
    info = row.get("session_info") or {}
    requested, ran = info.get("requested_precision"), info.get("inference_precision")
    if requested not in (None, "default") and ran and ran != requested:
        row["warnings"].append(f"requested {requested} but the runtime reports {ran}")
    if info.get("fallback"):
        row["warnings"].append(info["fallback"])
    return row


# --------------------------------------------------------------------------- the command


@contextlib.contextmanager
def _workdir(path: str | Path | None) -> Iterator[Path]:
    """The given folder (kept), or a private temporary one removed at the end."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="infertune-bench-") as tmp:
        yield Path(tmp)


def e2e_spec(handle: ModelHandle, images: str | Path | None) -> dict[str, Any] | None:
    """The job's e2e entry: the image files and the model's preprocessing preset, or for a
    detector (meta["detection"]) the files and its decoding parameters (letterbox, decode +
    NMS: measure/e2e_detect.py)."""
    if images is None:
        return None
    files = list_images(images)
    if "detection" in handle.meta:
        return make_detection_spec(files, handle)
    preset = handle.meta.get("preprocess") or ("darknet" if handle.meta.get("family") == "darknet"
                                               else "imagenet")
    return make_spec(files, preset, handle.input_spec.chw)


def build_all(handle: ModelHandle, names: list[str], workdir: Path, threads: int,
              say: Progress) -> list[dict[str, Any]]:
    built = []
    for name in names:
        say(f"building {name} ...")
        b = build_one(name, handle, workdir, threads)
        say(f"  {name}: " + (f"{b['status']}: {b['reason']}" if b["status"]
                             else f"built in {b['seconds']} s"))
        built.append(b)
    return built


def _e2e_header(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    header = {"images": len(spec["images"]), "preprocess": spec["preprocess"], "batch": 1}
    if spec.get("task") == "detection":
        det = spec["detection"]
        header.update(task="detection", input_hw=det["input_hw"], postprocess="decode + NMS",
                      score_threshold=det["score_threshold"],
                      nms_threshold=det["nms_threshold"])
    return header


def run_bench(model: str | ModelHandle, options: BenchOptions = BenchOptions(),
              load: LoadOptions = LoadOptions(), progress: Progress | None = None
              ) -> dict[str, Any]:
    """Builds, checks and measures `model` on each runtime; see the module docstring.

    Returns:
        {"machine": fingerprint, "model", "threads", "rounds", "batches", "timing",
         "runtimes": [describe()], "e2e", "results": [row per runtime and batch]} (rows:
         bench_results.ROW_KEYS).
    """
    say = progress or (lambda _msg: None)
    o = options
    names, (batch_list, auto) = resolve_runtimes(o.runtimes), resolve_batches(o.batches)
    if o.rounds < 1:
        raise ConfigError(f"rounds must be at least 1, not {o.rounds}")
    if o.e2e is not None and 1 not in batch_list:
        raise ConfigError("--e2e times one image at a time: include batch 1 in --batch")
    timing = TimingConfig(warmup=o.warmup, min_runs=o.min_runs, min_seconds=o.min_seconds)
    handle = load_model(model, **vars(load))
    threads = int(o.threads or default_threads())
    ctx = {"threads": threads, "rounds": o.rounds, "auto": auto, "timing": timing, "say": say,
           "e2e": e2e_spec(handle, o.e2e)}
    results: list[dict[str, Any]] = []
    with _workdir(o.workdir) as wd:
        ctx["workdir"] = wd
        built = build_all(handle, names, wd, threads, say)
        for batch in batch_list:
            say(f"batch {batch}: {o.rounds} interleaved round(s), {threads} thread(s)")
            results += measure_batch(handle, built, batch, ctx)
    return {"machine": fingerprint(), "model": handle.describe(), "threads": threads,
            "rounds": o.rounds, "batches": "auto" if auto else batch_list,
            "timing": timing.to_dict(), "runtimes": [RUNTIMES.get(n).describe() for n in names],
            "e2e": _e2e_header(ctx["e2e"]), "results": results}
