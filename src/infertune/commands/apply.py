"""`infertune apply`: passes in order, then the artifact for one runtime, checked against the
input model before it is written.

    infertune apply darknet19 --pass fold_bn --pass channels_last --runtime torchscript --out m.pt

Steps: validate the pass list (names and options, before anything is loaded) → load the
model → (with --data) read a calibration part for passes that need data → `apply_passes` →
`RUNTIMES.get(R).build(...)` in a private work folder → open the artifact here and compare
its outputs with the *input* model's on the same inputs → copy the artifact to --out
atomically (OpenVINO IR: the .bin first, then the .xml that names it).

The parity check reports and never blocks: exact passes must stay within the tolerance
(`passed`), lossy ones (FP16, INT8) are expected to leave it, and their numbers are the point.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._atomic import atomic_path, check_writable
from ..data import load_dataset, split_calibration
from ..errors import ConfigError
from ..load import LoadOptions, load_model
from ..measure.inprocess import artifact_runner, check_runtime, reference_outputs
from ..measure.parity import as_arrays, check
from ..metrics.fidelity import sqnr_db
from ..passes import PASSES, PassContext, apply_passes, model_bytes, parse_pass_arg, resolve_steps
from ..profile import profile_model
from ..runtimes import RUNTIMES
from ..types import ModelHandle
from .options import ApplyOptions

# Inputs of the parity check: this many batches of this size (held-out data with --data,
# seeded standard-normal values without).
PARITY_BATCHES = 2
PARITY_BATCH = 2
# Exact rewrites (folding, merging) round differently from the original: ~1e-6 relative per
# rewritten layer. 1e-4 of the output's magnitude leaves a wide margin for deep models and
# still catches a wrong fold (a wrong epsilon convention on small variances moves outputs by
# ~1e-3 relative; a wrong weight by far more).
PASS_REL = 1e-4
# Samples given to passes that train (finetune, distill, qat) by default: enough for a few
# epochs of recovery at batch 32 in seconds on ref-small, still bounded for 448×448 inputs.
TRAIN_SIZE = 2048


def run_apply(model: str | ModelHandle, options: ApplyOptions,
              load: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """Applies `options.passes` to `model`, builds the artifact for `options.runtime` and
    writes it to `options.out`.

    Options (ApplyOptions):
        passes: "NAME[:key=value,...]" strings or (name, options) pairs, applied in order.
        runtime: a registered runtime; default onnxruntime for an ONNX result, else torchscript.
        data: dataset spec for passes that need data (calibration) and for the parity inputs.
        calib_size: samples in the calibration part.
        train_size: samples for passes that train (finetune, distill, qat): from
            `sample:train` with --data sample, else the calibration part grows to this size.

    Returns:
        {"source", "model", "passes", "final_format", "runtime", "artifact", "parity",
         "bytes_before", "bytes_after", "size", "recovery"}: plain data; `passes` holds one
        report per step, the bytes are the weights of the input and the final model, `size`
        params and MACs before/after (torch models; None where not profiled), `recovery` the
        validation metric before/after each training pass.

    Raises:
        ConfigError: unknown pass/option/runtime, a pass that needs data without it, bad out.
        RuntimeUnavailable: the runtime cannot run here.
    """
    steps = parse_steps(options.passes)
    target = check_out(options.out)
    if options.runtime is not None:
        RUNTIMES.get(options.runtime)  # unknown names fail before anything is loaded
    handle = load_model(model, **vars(load))
    with tempfile.TemporaryDirectory(prefix="infertune-apply-") as tmp:
        return apply_in(Path(tmp), handle, steps, target, runtime=options.runtime,
                        data=options.data, calib_size=options.calib_size,
                        threads=options.threads, seed=load.seed, train_size=options.train_size)


def apply_in(work: Path, handle: ModelHandle, steps: list, target: Path, *, runtime: str | None,
             data: str | None, calib_size: int, threads: int | None, seed: int,
             train_size: int = 0) -> dict[str, Any]:
    """run_apply's steps, in its private work folder `work`."""
    trains = bool(data) and any(PASSES.get(name).trains for name, _ in steps)
    own_train = trains and data in ("sample", "sample:train")
    size = max(calib_size, train_size) if trains and not own_train else calib_size
    calib, held_out = load_calibration(handle, data, size, seed) if data else (None, None)
    train = load_train(handle, train_size, seed) if own_train else calib if trains else None
    ctx = PassContext(workdir=work / "passes", calibration=calib, reference=handle, seed=seed,
                      threads=threads, train=train)
    final, reports = apply_passes(handle, steps, ctx)
    name = runtime or ("onnxruntime" if final.format == "onnx" else "torchscript")
    artifact = build_artifact(final, name, work / "build", threads)
    check_suffix(target, artifact, name)
    parity = check_parity(handle, name, artifact, parity_inputs(handle, held_out, seed), threads)
    files = deliver(artifact, target)
    return {"source": handle.source, "model": handle.describe(), "passes": reports,
            "final_format": final.format, "runtime": name,
            "artifact": {"path": str(target), "files": files,
                         "bytes": sum(Path(f).stat().st_size for f in files)},
            "parity": parity, "bytes_before": model_bytes(handle), "bytes_after": model_bytes(final),
            "size": {"before": size_facts(handle), "after": size_facts(final)},
            "recovery": recovery_summary(reports)}


def parse_steps(passes: Sequence[str | tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Pass arguments → validated (name, Config) steps; ConfigError for any bad one."""
    if not passes:
        raise ConfigError("give at least one --pass NAME (see `infertune list passes`)")
    return resolve_steps([parse_pass_arg(p) if isinstance(p, str) else p for p in passes])


def check_out(out: str | None) -> Path:
    if not out:
        raise ConfigError("--out FILE is required")
    target = Path(out)
    if target.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name")
    check_writable(target)  # a read-only or full destination fails before any pass runs
    return target


# Suffixes that name one kind of artifact: writing another kind under them would mislead.
KNOWN_SUFFIXES = (".onnx", ".xml", ".engine", ".pt", ".pt2", ".ts")


def check_suffix(target: Path, artifact: Path, runtime: str) -> None:
    """Refuses e.g. a TorchScript file written as `model.onnx` (other suffixes are accepted)."""
    suffix = target.suffix.lower()
    if suffix in KNOWN_SUFFIXES and suffix != artifact.suffix:
        raise ConfigError(f"--out {target.name}: the {runtime} artifact is a {artifact.suffix} "
                          f"file; name it *{artifact.suffix} or pick the runtime with --runtime")


def load_calibration(handle: ModelHandle, data: str, calib_size: int, seed: int):
    """(calibration part, held-out part) of `data`, read at the model's input shape with its
    preprocessing preset; the held-out part feeds the parity check."""
    if calib_size < 1:
        raise ConfigError(f"--calib-size must be at least 1, not {calib_size}")
    need = calib_size + PARITY_BATCHES * PARITY_BATCH
    ds = load_dataset(data, input_shape=handle.input_spec.chw,
                      preprocess=handle.meta.get("preprocess", "darknet"), limit=need, seed=seed)
    if len(ds) < 2:
        raise ConfigError(f"--data {data}: {len(ds)} sample(s); calibration needs at least 2")
    return split_calibration(ds, min(calib_size, len(ds) - 1), seed)


def load_train(handle: ModelHandle, train_size: int, seed: int):
    """`sample:train` (the built-in set's training part, disjoint from `sample:val`) at the
    model's input, at most `train_size` samples (seeded, stratified)."""
    if train_size < 2:
        raise ConfigError(f"--train-size must be at least 2, not {train_size}")
    return load_dataset("sample:train", input_shape=handle.input_spec.chw,
                        preprocess=handle.meta.get("preprocess", "darknet"), limit=train_size,
                        seed=seed)


def size_facts(model: ModelHandle) -> dict[str, Any] | None:
    """{"params", "macs"} of a torch model (profile_model), None for other formats or a model
    the profiler cannot run (a converted INT8 program may not be)."""
    if model.format != "torch":
        return None
    try:
        facts = profile_model(model)
    except Exception:  # noqa: BLE001 - a missing size fact must not fail the apply
        return None
    return {"params": facts["params"], "macs": facts["macs"]}


def recovery_summary(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation metric before/after for each applied training pass (from its details)."""
    keys = ("val_metric", "val_metric_before", "val_metric_after", "steps_run", "seconds",
            "stop_reason", "training_setup")
    return [{"pass": r["pass"], **{k: r.get(k) for k in keys}} for r in reports
            if r.get("applied") and r.get("val_metric") is not None]


def build_artifact(model: ModelHandle, name: str, workdir: Path, threads: int | None) -> Path:
    """The runtime's artifact for `model`; refused with the reason when it cannot run it."""
    return Path(check_runtime(name, model).build(model, workdir, threads=threads))


def parity_inputs(handle: ModelHandle, held_out: Any, seed: int) -> list:
    """Float32 batches for the parity check: held-out samples when there are enough."""
    n = PARITY_BATCHES * PARITY_BATCH
    if held_out is not None and len(held_out) >= n:
        x = np.ascontiguousarray(held_out.x[:n], dtype=np.float32)
    else:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, *handle.input_spec.chw)).astype(np.float32)
    return [x[i:i + PARITY_BATCH] for i in range(0, n, PARITY_BATCH)]


def check_parity(handle: ModelHandle, name: str, artifact: Path, inputs: list,
                 threads: int | None) -> dict[str, Any]:
    """Opens the artifact here and compares it with the input model (measure.parity.check)."""
    rt = RUNTIMES.get(name)
    references = [as_arrays(r) for r in reference_outputs(handle, inputs)]
    runner = artifact_runner(name, artifact, threads, PARITY_BATCH)
    try:
        outputs = [as_arrays(runner.run(x)) for x in inputs]
    finally:
        runner.close()
    rel = max(rt.tolerance.rel, PASS_REL)
    why = (f"the larger of {name}'s own tolerance ({rt.tolerance.why}) and {PASS_REL:g} for "
           "rewritten weights; lossy passes (FP16, INT8) are expected to exceed it")
    result = check(references, outputs, rel, why)
    if result.get("max_abs_diff") is not None:
        ref = np.concatenate([a.ravel() for r in references for a in r])
        got = np.concatenate([a.ravel() for o in outputs for a in o])
        sqnr = sqnr_db(ref[None], got[None])
        result["sqnr_db"] = None if math.isinf(sqnr) else sqnr  # inf: identical outputs
    return result


def artifact_files(artifact: Path) -> list[Path]:
    """The files that make up an artifact: IR is .xml + .bin; ONNX may have `<name>.data`."""
    extra = [artifact.with_suffix(".bin")] if artifact.suffix == ".xml" else \
        [artifact.parent / f"{artifact.name}.data"]
    return [p for p in extra if p.exists()] + [artifact]


def deliver(artifact: Path, target: Path) -> list[str]:
    """Copies the artifact's files next to `target`, each atomically, the main file last (so
    it never names a missing companion). ONNX external data keeps its file name, which the
    model refers to; IR's .bin takes the stem of `target`, where OpenVINO looks for it."""
    written = []
    for src in artifact_files(artifact):
        if src == artifact:
            dest = target
        elif src.suffix == ".bin":
            dest = target.with_suffix(".bin")
        else:
            dest = target.parent / src.name
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        written.append(str(dest))
    return written
