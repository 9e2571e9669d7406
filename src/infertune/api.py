"""The Python API behind every CLI command: a thin facade over `infertune.commands` (and
`search` for optimize, `report` for report/compare). Each function takes a model source (or
a ModelHandle), the command's typed options (`infertune.commands.options`) and
`LoadOptions`, and returns plain, JSON-ready data. Imports are local so that `import
infertune` stays free of ML frameworks."""
from __future__ import annotations

from typing import Any, Callable

from .commands.options import (ApplyOptions, BenchOptions, EvalOptions, ExportOptions,
                               PredictOptions, ProfileOptions, SensitivityOptions)
from .load import LoadOptions
from .types import ModelHandle

Model = str | ModelHandle
DEFAULT_LOAD = LoadOptions()


def profile(model: Model, options: ProfileOptions = ProfileOptions(),
            load: LoadOptions = DEFAULT_LOAD) -> dict[str, Any]:
    """Static profile: params, MACs, bytes and intensity per layer and in total; with
    options.limits the machine's limits, with options.layer_time the time per layer."""
    from .commands.profile import run_profile

    return run_profile(model, options, load)


def export(model: Model, options: ExportOptions, load: LoadOptions = DEFAULT_LOAD
           ) -> dict[str, Any]:
    """Exports a model (ONNX); the file appears at options.out only once it is complete."""
    from .commands.export import run_export

    return run_export(model, options, load)


def export_triton(run_dir: str, out: str) -> dict[str, Any]:
    """A Triton Inference Server model repository for the pick of the run in `run_dir`."""
    from .commands.export import export_triton as _export_triton

    return _export_triton(run_dir, out)


def zoo_list(names: list[str] | None = None) -> list[dict[str, Any]]:
    """The built-in architectures with their native input size, params and MACs."""
    from .commands.zoo import zoo_list as _zoo_list

    return _zoo_list(names)


def zoo_train(name: str, *, out: str | None = None, epochs: int | None = None, seed: int = 0,
              progress: bool = True) -> dict[str, Any]:
    """Trains reference model `name` (on `sample:train`, or `clutter:train` for ref-clutter);
    writes NAME.cfg/.weights/.json to `out` (default: a user folder, never the shipped
    weights) and returns the record."""
    from .commands.zoo import zoo_train as _zoo_train

    return _zoo_train(name, out=out, epochs=epochs, seed=seed, progress=progress)


def bench(model: Model, options: BenchOptions = BenchOptions(), load: LoadOptions = DEFAULT_LOAD,
          progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Builds, checks and times `model` on each runtime, interleaved in rounds; `progress`
    gets one line of text per step. Result: see infertune.commands.bench.run_bench."""
    from .commands.bench import run_bench

    return run_bench(model, options, load, progress)


def evaluate(model: Model, options: EvalOptions, load: LoadOptions = DEFAULT_LOAD
             ) -> dict[str, Any]:
    """Accuracy on options.data (with labels), fidelity to options.reference and the paired
    comparison (see infertune.commands.evaluate)."""
    from .commands.evaluate import evaluate as _evaluate

    return _evaluate(model, options, load)


def apply(model: Model, options: ApplyOptions, load: LoadOptions = DEFAULT_LOAD
          ) -> dict[str, Any]:
    """Applies passes in order, builds the artifact for options.runtime, checks it against
    the input model and writes it to options.out (see infertune.commands.apply)."""
    from .commands.apply import run_apply

    return run_apply(model, options, load)


def list_items(kind: str) -> list[dict[str, Any]]:
    """`infertune list passes|runtimes|formats`, without importing absent frameworks."""
    from .commands.listing import list_items as _list_items

    return _list_items(kind)


def sensitivity(model: Model, options: SensitivityOptions, load: LoadOptions = DEFAULT_LOAD
                ) -> dict[str, Any]:
    """Ranks the quantizable layers by the output error each causes quantized alone (INT8,
    ONNX Runtime); writes the ranking as JSON to options.out when given."""
    from .commands.sensitivity import run_sensitivity

    return run_sensitivity(model, options, load)


def predict(model: Model, options: PredictOptions, load: LoadOptions = DEFAULT_LOAD
            ) -> dict[str, Any]:
    """Top classes (classifier) or boxes (detector) for each image file."""
    from .commands.predict import predict as _predict

    return _predict(model, options, load)


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
