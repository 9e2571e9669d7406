"""The child side of a candidate: `python -m infertune.search.worker < job.json`.

Modes:
    build      load the model from its source, apply the recipe's passes, build the
               runtime's artifact in the candidate's folder, and run the screening samples
               through it (logits saved as screen_logits.npy).
    evaluate   open a built artifact and run the full evaluation samples through it
               (eval_logits.npy).
    reference  open a built artifact with the opener options `options` (a contender's
               default configuration) and save a few evaluation samples with its raw
               outputs (config_reference.npz, measure/parity.py's format): every runtime
               configuration of it is checked against them before it is timed.

Job keys: mode, run_dir, id, recipe [{pass, options}], runtime, model {source, load,
input_size}, threads, seed, screen_n, batch, result_path. The result (JSON) is rewritten
after each phase, so the parent keeps what a child that crashes later had finished; the
parent turns a crash, a hang or an out-of-memory kill into a failed candidate
(`search.child`). Like measure.worker this is a fresh interpreter: a candidate's imports,
threads and memory never leak into the search process or into the next candidate.
"""
from __future__ import annotations

import faulthandler
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..data import Dataset
from ..data.preprocess import resolve_preprocess
from ..load import load_model
from ..measure.isolate import die_with_parent, write_result
from ..measure.session import SessionFactory
from ..passes import PASSES, PassContext, apply_passes, model_bytes
from ..profile import profile_model
from ..runtimes import RUNTIMES
from ..tasks.detection.evaluate import MAP_SCORE_THRESHOLD
from ..tasks.detection.heads import DetectionSpec
from ..tasks.detection.postprocess import detect_batches
from ..tasks.detection.store import save_detections
from .engine import EVAL_BATCH  # the default; the full evaluation's job names its own
from .precision import mismatch, ran_precision
from .rundata import DETECTION_SPEC


def _write(job: dict[str, Any], res: dict[str, Any]) -> None:
    write_result(job["result_path"], res)


def _dataset(data_dir: Path, part: str, n: int | None = None):
    """A Dataset view of RUN_DIR/data/<part>_x.npy (+ _y.npy), memory-mapped."""
    import numpy as np

    x = np.load(data_dir / f"{part}_x.npy", mmap_mode="r")
    y_path = data_dir / f"{part}_y.npy"
    y = np.load(y_path) if y_path.exists() else None
    if n is not None:
        x, y = x[:n], (y[:n] if y is not None else None)
    return Dataset(x=np.ascontiguousarray(x), y=y, class_names=[], description=f"run data: {part}",
                   preprocess=resolve_preprocess("none"))


def _context(job: dict[str, Any], handle, cand_dir: Path):
    import dataclasses

    data_dir = Path(job["run_dir"]) / "data"
    extra = {}
    fields = {f.name for f in dataclasses.fields(PassContext)}
    if "train" in fields and (data_dir / "train_x.npy").exists():
        extra["train"] = _dataset(data_dir, "train")
    return PassContext(workdir=cand_dir / "passes", calibration=_dataset(data_dir, "calib"),
                       reference=handle, seed=int(job.get("seed", 0)),
                       threads=job.get("threads"), cache_dir=Path(job["run_dir"]) / "cache",
                       **extra)


def _session(runtime: str, artifact: str, threads: int, batch: int):
    rt = RUNTIMES.get(runtime)
    # One request using every thread: OpenVINO's THROUGHPUT mode (several async requests)
    # buys nothing for an accuracy pass and was seen to hang in a child here.
    options = {**rt.options(batch), **({"hint": "LATENCY"} if runtime == "openvino" else {})}
    return SessionFactory(runtime, artifact, options=options).open(threads=threads), options


def _logits(runtime: str, artifact: str, x, threads: int, batch: int):
    from ..measure.inprocess import Runner, run_batches

    session, _ = _session(runtime, artifact, threads, batch)
    try:
        return run_batches(Runner(runtime, session.run, session.close, batch), x, batch)
    finally:
        session.close()


def _outputs(job: dict[str, Any], artifact: str, x, name: str) -> Path:
    """Runs `x` through the artifact and saves what the parent scores: the logits
    (NAME_logits.npy), or for a detector its decoded detections (NAME_detections.npz:
    decoding and NMS here, in the candidate's process, so the parent never holds raw maps)."""
    import numpy as np

    cand_dir = Path(job["run_dir"]) / "candidates" / job["id"]
    data_dir = Path(job["run_dir"]) / "data"
    batch = job.get("batch", EVAL_BATCH)
    if not (data_dir / DETECTION_SPEC).exists():
        path = cand_dir / f"{name}_logits.npy"
        np.save(path, _logits(job["runtime"], artifact, x, job["threads"], batch))
        return path
    saved = json.loads((data_dir / DETECTION_SPEC).read_text())
    spec = DetectionSpec.from_dict(saved["spec"])
    hws = [tuple(hw) for hw in np.load(data_dir / "eval_hw.npy")[:len(x)]]
    session, _ = _session(job["runtime"], artifact, job["threads"], batch)
    try:  # always padded to `batch`, as _logits does (shape-specialising runtimes)
        dets = detect_batches(session.run, x, hws, spec, batch, fixed_batch=True,
                              score_threshold=MAP_SCORE_THRESHOLD)
    finally:
        session.close()
    path = cand_dir / f"{name}_detections.npz"
    save_detections(path, dets)
    return path


def _counts(model) -> dict[str, Any]:
    """Params and MACs of the final model where the profiler reads its format."""
    if model.format not in ("torch", "onnx"):
        return {"params": None, "macs": None}

    try:
        prof = profile_model(model)
    except Exception as exc:  # noqa: BLE001 - a count is a nicety; the candidate still runs
        return {"params": None, "macs": None, "counts_note": f"not profiled: {exc}"[:200]}
    return {"params": prof.get("params"), "macs": prof.get("macs")}


def build(job: dict[str, Any], res: dict[str, Any]) -> None:
    import numpy as np

    cand_dir = Path(job["run_dir"]) / "candidates" / job["id"]
    shutil.rmtree(cand_dir, ignore_errors=True)  # a killed earlier attempt is redone whole
    cand_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    model = job["model"]
    size = tuple(model["input_size"]) if model.get("input_size") else None
    handle = load_model(model["source"], input_size=size, **model.get("load", {}))
    steps = [(s["pass"], s.get("options") or {}) for s in job["recipe"]]
    res.update(phase="passes")
    _write(job, res)
    final, reports = apply_passes(handle, steps, _context(job, handle, cand_dir))
    res.update(passes=mark_noops(reports), final_format=final.format,
               weights_bytes=model_bytes(final), **_counts(final), phase="artifact")
    _write(job, res)
    why = not_applied(reports)
    if why:
        res.update(status="skipped", reason=why)
        return
    rt = RUNTIMES.get(job["runtime"])
    ok, why = rt.available()
    why = why if not ok else rt.incompatible(final)
    if why:
        res.update(status="incompatible", reason=why)
        return
    artifact = rt.build(final, cand_dir / "build", threads=job["threads"])
    res.update(artifact=str(artifact), build_s=time.perf_counter() - t0, phase="precision")
    _write(job, res)
    why = _check_precision(job, str(artifact), res)
    if why:
        res.update(status="skipped", reason=why)
        return
    res.update(phase="screen")
    _write(job, res)
    x = np.load(Path(job["run_dir"]) / "data" / "eval_x.npy", mmap_mode="r")[:job["screen_n"]]
    path = _outputs(job, str(artifact), np.ascontiguousarray(x), "screen")
    res.update(status="ok", screen_logits=str(path))


def not_applied(reports: list[dict[str, Any]]) -> str | None:
    """The reason of the first step that changes numbers and did not apply: the candidate
    would be the unchanged model under another name, so it is skipped with that reason."""
    for rep in reports:
        name = rep.get("pass")
        if rep.get("applied") or name not in PASSES or PASSES.get(name).exact:
            continue
        return f"{name} did not apply: {rep.get('reason') or 'no reason given'}"
    return None


def mark_noops(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pass reports, an exact rewrite that found nothing to do marked `exact_noop`."""
    return [{**rep, "exact_noop": True} if not rep.get("applied") and rep.get("pass") in PASSES
            and PASSES.get(rep["pass"]).exact else rep for rep in reports]


def _check_precision(job: dict[str, Any], artifact: str, res: dict[str, Any]) -> str | None:
    """Records what precision the artifact runs in; the reason when it is not the one the
    recipe asked for."""
    requested = job.get("requested_precision", "fp32")
    options = RUNTIMES.get(job["runtime"]).options(1)
    ran, note = ran_precision(job["runtime"], artifact, requested, options)
    why = mismatch(requested, ran)
    if ran == "int8" and requested in ("mixed", "int8-dynamic"):
        ran = requested  # INT8 with layers kept in float / dynamic activation scales
    res.update(ran_precision=ran, ran_precision_note=note)
    return why


def evaluate(job: dict[str, Any], res: dict[str, Any]) -> None:
    import numpy as np

    x = np.load(Path(job["run_dir"]) / "data" / "eval_x.npy", mmap_mode="r")
    t0 = time.perf_counter()
    path = _outputs(job, job["artifact"], x, "eval")
    # the key keeps its name for journals written before detectors: it holds the path of
    # whatever the scoring reads (logits .npy or detections .npz)
    res.update(status="ok", eval_logits=str(path), eval_s=time.perf_counter() - t0)


CONFIG_REFERENCE = "config_reference.npz"


def reference(job: dict[str, Any], res: dict[str, Any]) -> None:
    import numpy as np

    from ..measure.parity import as_arrays, write_reference

    x = np.load(Path(job["run_dir"]) / "data" / "eval_x.npy", mmap_mode="r")
    batch = max(1, min(int(job.get("batch", EVAL_BATCH)), len(x)))
    inputs = [np.ascontiguousarray(x[:1]), np.ascontiguousarray(x[:batch])]
    session = SessionFactory(job["runtime"], job["artifact"],
                             options=job.get("options") or {}).open(threads=job["threads"])
    try:  # batch 1, and a batch that THROUGHPUT's requests split between them
        outputs = [as_arrays(session.run(i)) for i in inputs]
    finally:
        session.close()
    path = Path(job["run_dir"]) / "candidates" / job["id"] / CONFIG_REFERENCE
    write_reference(path, inputs, outputs)
    res.update(status="ok", reference=str(path))


# Fault injection for the reliability tests (and for trying a deployment's monitoring):
# INFERTUNE_INJECT_FAULT="RUNTIME=KIND[,RUNTIME=KIND]" makes the build of every candidate on
# RUNTIME fail in the named way, in this child only. Never set by infertune itself.
FAULT_VAR = "INFERTUNE_INJECT_FAULT"
FAULT_KINDS = ("segfault", "hang", "oom", "raise")


def inject_fault(job: dict[str, Any]) -> None:
    import os

    spec = dict(item.split("=", 1) for item in os.environ.get(FAULT_VAR, "").split(",") if "=" in item)
    kind = spec.get(job.get("runtime", ""))
    if kind is None or job.get("mode") != "build" or not job.get("recipe"):
        return
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV, as a broken native kernel would
    elif kind == "hang":
        time.sleep(10**6)
    elif kind == "oom":  # a real allocation failure under a memory cap
        import resource

        import numpy as np

        resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))
        np.ones(2**32, dtype=np.uint8)
    elif kind == "raise":
        raise RuntimeError("injected failure")


def run(job: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"status": "running", "phase": "start", "reason": None}
    _write(job, res)
    try:
        inject_fault(job)
        {"build": build, "evaluate": evaluate, "reference": reference}[job["mode"]](job, res)
    except Exception as exc:  # noqa: BLE001 - every failure becomes the candidate's reason
        first = (str(exc).strip().splitlines() or [""])[0]
        res.update(status="failed", reason=f"{type(exc).__name__}: {first}"[:400])
    _write(job, res)
    return res


def main() -> int:
    die_with_parent()
    faulthandler.enable()
    job = json.loads(sys.stdin.read())
    run(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
