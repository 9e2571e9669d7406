"""The resolved configuration of an `optimize` run: what `config.yaml` holds and what
`infertune run config.yaml` replays. The only place that accepts untyped dicts; unknown keys
are refused with the nearest valid one."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ._atomic import write_text
from .errors import ConfigError

CONFIG_VERSION = 1
DROP_TYPES = ("absolute", "relative")
METRICS = ("auto", "top1", "agreement", "map")
OBJECTIVES = ("latency", "throughput", "size")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class OptimizeConfig:
    """Everything that decides an optimize run's result.

    Attributes:
        model: the model source as the user wrote it (zoo name, cfg[:weights], file...).
        load: model-loading options (num_classes, arch, trust_code, bn_eps, seed...).
        input_size: (H, W) override or None.
        data: dataset spec (a folder, .npz, or a built-in set: "sample", "clutter",
            "photos"; for a detector also a COCO .json, YOLO or VOC folder, or a plain image
            folder); "auto": the zoo model's own built-in set, else "sample" ("photos" for
            a detector).
        preprocess: preprocessing preset override, or None for the model's own.
        max_drop: accuracy budget in points (absolute) or percent of the baseline (relative).
        drop_type: absolute | relative.
        metric: top1 (needs labels) | agreement (top-1 agreement with the original model) |
            map (detectors: COCO mAP on the data's boxes, else fidelity mAP against the
            original model's detections) | auto (a detector: map; a classifier: top1 when
            the data has labels and the model's classes match them).
        confidence: level of every interval the decision uses.
        objective: latency (p50 at batch 1) | throughput (best images/s) | size (MB).
        runtimes: runtimes to consider (None: every available one).
        passes: pass names candidates may use (None: all).
        time_budget_s: stop starting new candidates after this long (None: no limit).
        threads: threads for every runtime (None: physical cores).
        calib_size, screen_size, eval_size: samples for calibration/recovery, screening and
            the full accuracy evaluation.
        min_runs, min_seconds: the full latency measurement; probe_runs, probe_seconds: the
            screening probe.
        final_rounds: interleaved rounds of the final side-by-side comparison.
        recovery_seconds: training time (distillation) per compression candidate after
            pruning or decomposition: each trains RECOVERY_FIRST_SHARE of it, the one
            continued the pooled rest (search.space); None: chosen from the time budget
            (search.space.recovery_seconds).
        candidate_timeout_s: a candidate's build or evaluation child is killed after this.
        executor, address: local, or a Ray cluster (address None: start a local one).
        seed: for data subsets, calibration and recovery.
        out: the run directory.
    """

    model: str
    out: str
    load: Mapping[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    data: str = "auto"
    preprocess: str | None = None
    max_drop: float = 1.0
    drop_type: str = "absolute"
    metric: str = "auto"
    confidence: float = 0.95
    objective: str = "latency"
    runtimes: tuple[str, ...] | None = None
    passes: tuple[str, ...] | None = None
    time_budget_s: float | None = None
    threads: int | None = None
    calib_size: int = 128
    screen_size: int = 64
    eval_size: int = 1000
    min_runs: int = 30
    min_seconds: float = 2.0
    probe_runs: int = 5
    probe_seconds: float = 0.3
    final_rounds: int = 3
    recovery_seconds: float | None = None
    candidate_timeout_s: float = 1800.0
    executor: str = "local"
    address: str | None = None
    seed: int = 0
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        _choice("drop_type", self.drop_type, DROP_TYPES)
        _choice("metric", self.metric, METRICS)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("executor", self.executor, EXECUTORS)
        if not self.max_drop >= 0:
            raise ConfigError(f"max_drop must be a non-negative number of points, not {self.max_drop}")
        if self.drop_type == "absolute" and self.max_drop > 100:
            raise ConfigError(f"max_drop is in points (0-100), not {self.max_drop}")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"confidence must be in [0.5, 1), not {self.confidence}")
        for name in ("calib_size", "screen_size", "eval_size", "min_runs", "probe_runs",
                     "final_rounds"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ConfigError(f"time budget must be positive, not {self.time_budget_s}")
        if self.recovery_seconds is not None and not self.recovery_seconds > 0:
            raise ConfigError(f"recovery seconds must be positive, not {self.recovery_seconds}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, not {self.threads}")
        if self.version != CONFIG_VERSION:
            raise ConfigError(f"config version {self.version} is not supported "
                              f"(this infertune writes version {CONFIG_VERSION})")
        for name in ("runtimes", "passes"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, tuple(v for v in value.split(",") if v))
            elif value is not None:
                object.__setattr__(self, name, tuple(value))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "load", dict(self.load))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("runtimes", "passes", "input_size"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OptimizeConfig":
        if not isinstance(data, Mapping):
            raise ConfigError("an optimize config is a mapping of keys to values")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown config key {key!r}{hint}")
        for key in ("model", "out"):
            if not data.get(key):
                raise ConfigError(f"the config needs {key!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad config: {exc}") from None

    def differences(self, other: "OptimizeConfig") -> list[str]:
        """Keys whose values differ (the run directory's `out` is not compared)."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k != "out" and a[k] != b[k]]


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def save_config(config: OptimizeConfig, path: str | Path) -> None:
    import yaml


    write_text(path, "# infertune optimize; replay with: infertune run THIS_FILE\n"
               + yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config(path: str | Path) -> OptimizeConfig:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError("no such config file", path=str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid YAML: {str(exc).splitlines()[0]}", path=str(p)) from None
    try:
        return OptimizeConfig.from_dict(data or {})
    except ConfigError as exc:
        raise ConfigError(str(exc), path=str(p)) from None
