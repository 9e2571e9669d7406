"""`infertune eval`: accuracy against labels, fidelity to a reference model, and the paired
comparison of the two, on the same preprocessed samples.

Flow: load the model → load the data at the model's input shape with its preprocessing
preset (`--preprocess`, else the model's `meta["preprocess"]`, else the reference's, else
"darknet") → batched inference → metrics (infertune.metrics).

Inference runs in this process: a torch model under `torch.inference_mode` with `threads`
intra-op threads, an ONNX file with ONNX Runtime's CPU provider; with `runtime` the model is
built into that runtime's artifact (infertune.runtimes) and run through its session. The
reference always runs in-process (it is the float original).

Names: `accuracy` needs labels; `fidelity` is agreement with the reference model's outputs
(never called accuracy); `comparison` is candidate − reference top-1 on the same samples
with a paired bootstrap interval and McNemar's p-value (what an accuracy budget is tested
against).

JSON: the result holds only finite numbers. A non-finite float (an SQNR of +inf for identical
outputs) is written as null, with a sibling `<key>_nonfinite` = "inf", "-inf" or "nan" that
says which; strict JSON parsers reject Infinity and NaN, and a string in a numeric field
would surprise every consumer that does arithmetic on it.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any

from pathlib import Path

import numpy as np

from ..data import load_dataset, resolve_preprocess
from ..errors import ConfigError, DataError
from ..load import LoadOptions, load_model
from ..measure.inprocess import Runner, first_output, open_runner, run_batches
from ..metrics import classification_report, compare_top1, fidelity
from ..tasks.detection.evaluate import evaluate_detector
from ..types import ModelHandle
from .options import EvalOptions

DEFAULT_PREPROCESS = "darknet"


def evaluate(model: str | ModelHandle, options: EvalOptions,
             load: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """Evaluates `model` on `options.data` (see the module docstring); JSON-ready data.

    Options (EvalOptions): data ("sample" or "sample:val", an image folder, or an .npz);
    reference (optional model source); labels_file, limit, skip_bad as in load_dataset
    (`load.seed` seeds `limit`, and the random weights of a zoo architecture without
    trained weights); preprocess (a preset or "preset,key=value"; default: the model's);
    batch_size, threads (default: all cores); runtime (default: in-process torch/ORT).

    Raises:
        ConfigError: bad options, a class-count mismatch, or no labels and no reference.
        DataError: unreadable data or labels out of the model's range.
    """
    o, seed = options, load.seed
    if o.batch_size < 1 or (o.threads is not None and o.threads < 1):
        raise ConfigError("batch size and threads must be at least 1")
    threads = o.threads or os.cpu_count() or 1
    handle = load_model(model, **vars(load))
    ref = load_model(o.reference, **vars(load)) if o.reference is not None else None
    if "detection" in handle.meta:  # a detector: mAP on detection data (tasks/detection)
        return json_safe(evaluate_detector(handle, ref, o.data, limit=o.limit, seed=seed,
                                           batch_size=o.batch_size, threads=threads,
                                           runtime=o.runtime, open_runner=open_runner))
    pre, pre_from = choose_preprocess(o.preprocess, handle, ref)
    data_options = dict(labels_file=o.labels_file, limit=o.limit, seed=seed, skip_bad=o.skip_bad)
    ds, logits, run_info = model_outputs(handle, o.data, pre, o.runtime, threads, o.batch_size,
                                         need_labels=ref is None, **data_options)
    ref_logits = reference_logits(ref, ds, o.data, o.preprocess, pre, threads, o.batch_size,
                                  **data_options) if ref is not None else None
    result = assemble(handle, ref, ds, pre, pre_from, logits, ref_logits)
    result.update(run_info, threads=threads)
    return json_safe(result)


def model_outputs(handle: ModelHandle, data: str, pre, runtime: str | None, threads: int,
                  batch_size: int, *, need_labels: bool, **data_options: Any):
    """(dataset, N×K outputs, {runtime, batch_size, inference_s}) of the evaluated model."""
    with tempfile.TemporaryDirectory(prefix="infertune-eval-") as workdir:
        runner = open_runner(handle, runtime, threads, batch_size, workdir)
        try:
            k = output_classes(runner, handle)
            ds = load_dataset_for(data, handle, pre, k, **data_options)
            if need_labels and not ds.labelled:
                raise ConfigError(f"no labels in {data}: pass --reference MODEL to measure fidelity")
            start = time.perf_counter()
            logits = run_batches(runner, ds.x, runner.batch or batch_size)
            seconds = time.perf_counter() - start
        finally:
            runner.close()
    return ds, logits, {"runtime": runner.name, "batch_size": runner.batch or batch_size,
                        "inference_s": round(seconds, 4)}


# --------------------------------------------------------------------------- preprocessing


def choose_preprocess(preprocess: str | None, handle: ModelHandle, ref: ModelHandle | None):
    """(Preprocess, where it came from): the flag, the model, the reference, or the default."""
    if preprocess:
        return resolve_preprocess(preprocess), "--preprocess"
    for label, h in (("model", handle), ("reference", ref)):
        if h is not None and h.meta.get("preprocess"):
            return resolve_preprocess(h.meta["preprocess"]), label
    return resolve_preprocess(DEFAULT_PREPROCESS), "default"


def load_dataset_for(data: str, handle: ModelHandle, pre, k: int, **options: Any):
    """The dataset at the model's input shape, checked against its K output classes.

    An image folder without --labels is labelled in the model's own class order when the
    model declares one (`meta["labels_file"]`, e.g. ImageNet's sorted WordNet ids), so a
    `val/n01440764/...` folder is scored against the right outputs even with few classes.
    """
    if not options.get("labels_file") and handle.meta.get("labels_file") and Path(data).is_dir():
        options = {**options, "labels_file": handle.meta["labels_file"]}
    ds = load_dataset(data, input_shape=handle.input_spec.chw, preprocess=pre, num_classes=k,
                      **options)
    if ds.labelled and len(ds.class_names) != k:
        hint = ("" if options.get("labels_file") else
                "; pass --labels FILE to map the data's classes to the model's outputs")
        raise ConfigError(f"{data} has {len(ds.class_names)} classes but {handle.name} outputs "
                          f"{k} scores{hint}")
    return ds


# --------------------------------------------------------------------------- inference


def output_classes(runner: Runner, handle: ModelHandle) -> int:
    """K, the number of scores per image, from one forward pass on zeros."""
    n = runner.batch or 1
    x = np.zeros((n, *handle.input_spec.chw), dtype=np.float32)
    return int(first_output(runner.run(x), n).shape[1])


def reference_logits(ref: ModelHandle, ds, data: str, preprocess: str | None, pre,
                     threads: int, batch_size: int, **options: Any):
    """The reference's outputs on the same samples (re-read if its input differs)."""
    ref_pre, _ = choose_preprocess(preprocess, ref, None)
    if ref.input_spec.chw != tuple(ds.x.shape[1:]) or ref_pre != pre:
        other = load_dataset(data, input_shape=ref.input_spec.chw, preprocess=ref_pre, **options)
        if other.ids != ds.ids:
            raise DataError("the reference model's input differs and the same samples could "
                            "not be read again for it", path=data)
        ds = other
    with tempfile.TemporaryDirectory(prefix="infertune-eval-") as workdir:
        runner = open_runner(ref, None, threads, batch_size, workdir)
        try:
            return run_batches(runner, ds.x, runner.batch or batch_size)
        finally:
            runner.close()


# --------------------------------------------------------------------------- metrics


def describe_model(handle: ModelHandle, k: int) -> dict[str, Any]:
    meta = handle.meta
    return {"name": handle.name, "source": handle.source, "format": handle.format,
            "input": list(handle.input_spec.chw), "num_classes": k,
            "weights": meta.get("weights"), "recorded_accuracy": meta.get("recorded_accuracy"),
            **({"weights_package": meta["weights_package"]} if "weights_package" in meta else {})}


def assemble(handle, ref, ds, pre, pre_from: str, logits, ref_logits) -> dict[str, Any]:
    """The result dict (before JSON sanitising): accuracy, fidelity, comparison, notes."""
    k, notes = logits.shape[1], []
    result: dict[str, Any] = {
        "model": describe_model(handle, k),
        "reference": describe_model(ref, ref_logits.shape[1]) if ref is not None else None,
        "data": ds.describe(), "preprocess": {**pre.to_dict(), "from": pre_from},
        "accuracy": None, "fidelity": None, "comparison": None}
    if ds.labelled:
        result["accuracy"] = classification_report(logits, ds.y, class_names=ds.class_names,
                                                   groups=ds.groups)
    if ref_logits is not None:
        if ref_logits.shape != logits.shape:
            raise ConfigError(f"the reference outputs {ref_logits.shape[1]} scores per image, "
                              f"the model {k}: they cannot be compared")
        result["fidelity"] = {**fidelity(ref_logits, logits, groups=ds.groups),
                              "reference": ref.name,
                              "note": "agreement with the reference model, not accuracy"}
        if ds.labelled:
            result["comparison"] = {**compare_top1(ref_logits, logits, ds.y, groups=ds.groups),
                                    "baseline_model": ref.name, "candidate_model": handle.name}
        if looks_like_probabilities(ref_logits):
            notes.append("the reference outputs look like probabilities (softmax): cosine and "
                         "SQNR compare probabilities, not logits")
    if handle.meta.get("family") == "reference" and ds.source == "sample":
        notes.append(f"{handle.name} was trained on sample:train, 4/5 of these digits: "
                     "--data sample:val measures it on the 1,000 it never saw")
    result["notes"] = notes
    return result


def looks_like_probabilities(out) -> bool:
    """Rows non-negative and summing to 1 (a softmax head)."""
    return bool((out >= 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))


def json_safe(obj: Any) -> Any:
    """A copy with non-finite floats replaced by null plus `<key>_nonfinite` (module docstring)."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
                out[f"{key}_nonfinite"] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            else:
                out[key] = json_safe(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if isinstance(v, float) and not math.isfinite(v) else json_safe(v) for v in obj]
    return obj
