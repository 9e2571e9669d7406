"""The typed options of each non-search command, written once: the CLI's flags build them,
`api.py` takes them, and the command's library function receives them unchanged.

Loading options are `infertune.load.LoadOptions` (one value from the flags to `load_model`);
`optimize` takes `infertune.config.OptimizeConfig`. Pure dataclasses: importing this module
imports no framework (the CLI builds these before anything heavy is loaded).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, TypeVar

from ..load import LoadOptions

T = TypeVar("T")


@dataclass(frozen=True)
class ProfileOptions:
    """`infertune profile`: the machine's limits (cached; `refresh_limits` measures again)
    and the measured time per layer on `layer_time` (a runtime name)."""

    limits: bool = False
    refresh_limits: bool = False
    layer_time: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class ExportOptions:
    """`infertune export`: the format ("onnx"), the output file and the ONNX opset."""

    out: str
    fmt: str = "onnx"
    opset: int = 17


@dataclass(frozen=True)
class BenchOptions:
    """`infertune bench`: which runtimes ("all" or names; the first is the baseline), batch
    sizes ("1,8" or "auto"), threads, rounds of A B C ..., per measurement at least
    `min_runs` timed calls and `min_seconds` of timed time; `e2e` an image file or folder
    (also time image → class at batch 1); `workdir` keeps the artifacts there."""

    runtimes: str | tuple[str, ...] = "all"
    batches: str | tuple[int, ...] = (1,)
    threads: int | None = None
    rounds: int = 3
    min_runs: int = 50
    min_seconds: float = 5.0
    warmup: int = 10
    e2e: str | None = None
    workdir: str | None = None


@dataclass(frozen=True)
class EvalOptions:
    """`infertune eval`: data, optional reference model, labels, preprocessing, sample limit
    (seeded by LoadOptions.seed), bad-sample handling, inference batch, threads, runtime."""

    data: str
    reference: Any = None  # a model source or a ModelHandle
    labels_file: str | None = None
    preprocess: str | None = None
    limit: int | None = None
    skip_bad: bool = False
    batch_size: int = 64
    threads: int | None = None
    runtime: str | None = None


@dataclass(frozen=True)
class ApplyOptions:
    """`infertune apply`: passes in order ("NAME[:k=v,...]" or (name, options)), the output
    file, the runtime of the artifact, data for calibration/parity, and sample counts."""

    passes: tuple = ()
    out: str = ""
    runtime: str | None = None
    data: str | None = None
    calib_size: int = 128
    threads: int | None = None
    train_size: int = 2048


@dataclass(frozen=True)
class SensitivityOptions:
    """`infertune sensitivity`: data, samples, JSON output, calibration method, weight scales
    per channel or per tensor, preprocessing and threads."""

    data: str
    limit: int | None = None
    out: str | None = None
    method: str = "minmax"
    per_channel: bool = True
    preprocess: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class PredictOptions:
    """`infertune predict`: image files, top-k classes, where to draw boxes, detector
    thresholds, class names and threads."""

    images: tuple[str, ...]
    top: int = 5
    draw: str | None = None
    score_threshold: float | None = None
    nms_threshold: float | None = None
    labels_file: str | None = None
    threads: int | None = None


def split_options(cls: type[T], options: Mapping[str, Any], **required: Any
                  ) -> tuple[T, LoadOptions]:
    """Keyword options of a convenience call (`infertune.profile(model, threads=2,
    seed=1)`) split into the command's options and the LoadOptions."""
    own = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return (cls(**required, **{k: v for k, v in options.items() if k in own}),
            LoadOptions(**{k: v for k, v in options.items() if k not in own}))
