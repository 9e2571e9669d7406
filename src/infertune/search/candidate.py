"""The candidate record: one typed value per candidate, from its plan to its decision.

A candidate goes through stages, each adding a frozen part:

    Plan       what to build (recipe, runtime, precision), from `space` — pure, replayable
    Screen     what the cheap look found (build, pass reports, artifact, screening drop, probe)
    FullEval   the full evaluation (drop, fidelity, accuracy, latency)
    Decision   what the run decided from the others (within budget, speed-up, …), set once
               the search is over, in `search/report.py`

`Candidate` holds the parts and a `Status`; every change is a `dataclasses.replace`, so a
value seen by one function is never changed under it by another. The journal stores each
part as it is produced (`to_json`), a resumed run rebuilds the same values (`from_json`),
and report.json's candidate objects are `Candidate.to_json()`: one flat object per
candidate, the schema of docs/run-format.md (a test checks the two agree).
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field, fields
from typing import Any, Mapping


class Status(str, enum.Enum):
    """Where a candidate stands. `PLANNED` and `SCREENED` are transient: a report shows a
    screened candidate that the time budget stopped before its full run as `NOT_TRIED`."""

    PLANNED = "planned"
    SCREENED = "screened"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    INCOMPATIBLE = "incompatible"
    SCREENED_OUT = "screened_out"
    NOT_TRIED = "not_tried"


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    return value


class _Record:
    """to_json/from_json for a flat frozen dataclass of JSON values (subclasses override
    where a field is itself a record)."""

    def to_json(self) -> dict[str, Any]:
        return {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None):
        if data is None:
            return None
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Step(_Record):
    """One recipe step: a registered pass and its options."""

    pass_name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"pass": self.pass_name, "options": dict(self.options)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Step":
        return cls(pass_name=data["pass"], options=dict(data.get("options") or {}))

    @property
    def label(self) -> str:
        shown = {k: v for k, v in self.options.items() if k not in ("samples", "eval_samples")}
        return self.pass_name + (f"({','.join(f'{k}={v}' for k, v in shown.items())})"
                                 if shown else "")


@dataclass(frozen=True)
class Plan(_Record):
    """What to build. `precision` is what the recipe asks for; what ran is in `Screen`.
    `runtime_options`: the runtime configuration it is opened with, beyond the runtime's
    defaults ({}: the defaults; a "configured" candidate's settings, e.g. {"threads": 1})."""

    id: str
    stage: str
    label: str
    recipe: tuple[Step, ...]
    runtime: str
    precision: str
    parent_id: str | None = None
    prior_speedup: float = 1.0
    runtime_options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "parent_id": self.parent_id, "stage": self.stage,
                "label": self.label, "recipe": [s.to_json() for s in self.recipe],
                "runtime": self.runtime, "runtime_options": dict(self.runtime_options),
                "precision": self.precision, "prior_speedup": self.prior_speedup}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Plan":
        return cls(id=data["id"], stage=data["stage"], label=data["label"],
                   recipe=tuple(Step.from_json(s) for s in data.get("recipe") or ()),
                   runtime=data["runtime"], precision=data["precision"],
                   parent_id=data.get("parent_id"),
                   prior_speedup=data.get("prior_speedup", 1.0),
                   runtime_options=dict(data.get("runtime_options") or {}))

    def passes(self) -> list[str]:
        return [s.pass_name for s in self.recipe]


@dataclass(frozen=True)
class Drop(_Record):
    """A paired drop in points (baseline − candidate) with its two-sided interval.

    metric: "top1" (labelled), "agreement" (vs the original model's top-1), "map"
        (detection, mAP@[.5:.95] on labels) or "fidelity_map" (detection, on the original
        model's own detections). n: samples (images for detection).
    n01: baseline wrong, candidate right. n10: baseline right, candidate wrong (classification
        only: 0 for detection, whose interval is a paired bootstrap over images).
    design_effect: the Rao–Scott design effect the interval's counts were divided by
        (metrics.budget; 1 for independent samples). clusters: distinct clusters among the
        n samples, None when the samples are not clustered.
    """

    metric: str
    value: float
    low: float
    high: float
    n: int | None = None
    method: str = "not recorded"
    p_value: float | None = None
    n01: int = 0
    n10: int = 0
    baseline_pct: float | None = None
    candidate_pct: float | None = None
    confidence: float = 0.95
    design_effect: float = 1.0
    clusters: int | None = None


@dataclass(frozen=True)
class Fidelity(_Record):
    """Agreement of the candidate's outputs with the original model's (metrics.fidelity)."""

    n: int
    top1_agreement: float | None = None
    top1_agreement_ci: tuple[float, float] | None = None
    cosine: float | None = None
    cosine_min: float | None = None
    sqnr_db: float | str | None = None
    max_abs: float | None = None


@dataclass(frozen=True)
class PassReport(_Record):
    """What one recipe step did (passes.pipeline.apply_passes); `details` holds the pass's
    own figures (layers changed, kept in float, sizes)."""

    pass_name: str
    applied: bool
    reason: str | None = None
    format: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"pass": self.pass_name, "applied": self.applied, "reason": self.reason,
                "format": self.format, **dict(self.details)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PassReport":
        rest = {k: v for k, v in data.items() if k not in ("pass", "applied", "reason", "format")}
        return cls(pass_name=data["pass"], applied=bool(data.get("applied", True)),
                   reason=data.get("reason"), format=data.get("format"), details=rest)


@dataclass(frozen=True)
class Screen(_Record):
    """Built, checked that every step applied, run on the screening samples, probed."""

    build_s: float | None = None
    passes: tuple[PassReport, ...] = ()
    params: int | None = None
    macs: int | None = None
    artifact_path: str | None = None
    artifact_bytes: int | None = None
    ran_precision: str | None = None
    ran_precision_note: str | None = None
    drop: Drop | None = None
    fidelity: Fidelity | None = None
    probe_ms: float | None = None
    probe_ips: float | None = None
    probe_wall_s: float | None = None  # the probe's wall time: child start (compile) + loop

    @property
    def size_mb(self) -> float | None:
        return None if self.artifact_bytes is None else self.artifact_bytes / 2**20

    def to_json(self) -> dict[str, Any]:
        return {"build_s": self.build_s, "passes": [p.to_json() for p in self.passes],
                "params": self.params, "macs": self.macs,
                "artifact": ({"path": self.artifact_path, "bytes": self.artifact_bytes}
                             if self.artifact_path else None),
                "size_mb": self.size_mb, "ran_precision": self.ran_precision,
                "ran_precision_note": self.ran_precision_note,
                "screen_drop": self.drop.to_json() if self.drop else None,
                "screen_fidelity": _json_value(self.fidelity.to_json()) if self.fidelity else None,
                "probe_ms": self.probe_ms, "probe_ips": self.probe_ips,
                "probe_wall_s": self.probe_wall_s}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Screen | None":
        if data is None:
            return None
        art = data.get("artifact") or {}
        return cls(build_s=data.get("build_s"),
                   passes=tuple(PassReport.from_json(p) for p in data.get("passes") or ()),
                   params=data.get("params"), macs=data.get("macs"),
                   artifact_path=art.get("path"), artifact_bytes=art.get("bytes"),
                   ran_precision=data.get("ran_precision"),
                   ran_precision_note=data.get("ran_precision_note"),
                   drop=Drop.from_json(data.get("screen_drop")),
                   fidelity=_fidelity(data.get("screen_fidelity")),
                   probe_ms=data.get("probe_ms"), probe_ips=data.get("probe_ips"),
                   probe_wall_s=data.get("probe_wall_s"))


def _fidelity(data: Mapping[str, Any] | None) -> Fidelity | None:
    if data is None:
        return None
    ci = data.get("top1_agreement_ci")
    return Fidelity.from_json({**data, "top1_agreement_ci": tuple(ci) if ci else None})


@dataclass(frozen=True)
class Latency(_Record):
    """A full latency measurement at batch 1 (measure.rounds), milliseconds."""

    p50: float
    p90: float | None = None
    p99: float | None = None
    mean: float | None = None
    std: float | None = None
    n: int | None = None
    cv: float | None = None
    source: str = "full measurement"


@dataclass(frozen=True)
class Estimate(_Record):
    """A value in points with its two-sided interval (None where none was computed)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class DetectionEval(_Record):
    """A detector's full evaluation (tasks/detection/scoring.py), in points.

    Attributes:
        basis: "labels" (mAP on the data's boxes) or "fidelity" (on the original model's own
            detections above its score threshold: fidelity mAP, agreement not accuracy).
        map / ap50 / ap75: the candidate's AP@[.5:.95], @.5, @.75 on that basis, with
            bootstrap intervals over images.
        fidelity_map: its mAP against the original model's detections.
        score_shift: how its confidences moved (tasks.detection.compare.ScoreShift).
        images: images scored. score_threshold: the deployed threshold of the shift and
            of the fidelity pseudo-labels.
    """

    basis: str
    map: Estimate
    ap50: Estimate
    ap75: Estimate
    fidelity_map: Estimate
    score_shift: Mapping[str, Any]
    images: int
    score_threshold: float

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), **{k: getattr(self, k).to_json() for k in _ESTIMATES}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "DetectionEval | None":
        if data is None:
            return None
        return cls(**{**data, **{k: Estimate.from_json(data[k]) for k in _ESTIMATES}})


_ESTIMATES = ("map", "ap50", "ap75", "fidelity_map")


@dataclass(frozen=True)
class FullEval(_Record):
    """The full evaluation: every evaluation sample, and the full latency measurement."""

    drop: Drop
    fidelity: Fidelity | None
    latency: Latency
    accuracy: Mapping[str, Any] | None = None
    eval_s: float | None = None
    samples_ms: tuple[float, ...] = ()
    throughput_ips: Mapping[str, float] | None = None
    best_batch: int | None = None
    peak_rss_mb: float | None = None
    cold_start_ms: float | None = None
    energy_j_per_image: float | None = None
    energy_note: str | None = None
    noisy: bool | None = None
    detection: DetectionEval | None = None
    latency_wall_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        acc = dict(self.accuracy) if self.accuracy else None
        confusion = acc.pop("confusion_matrix", None) if acc else None
        return {"fidelity_level": "full", "eval_s": self.eval_s, "drop": self.drop.to_json(),
                "fidelity": _json_value(self.fidelity.to_json()) if self.fidelity else None,
                "accuracy": acc, "confusion_matrix": confusion,
                "latency_ms": self.latency.to_json(),
                "latency_samples_ms": list(self.samples_ms),
                "throughput_ips": dict(self.throughput_ips) if self.throughput_ips else None,
                "best_batch": self.best_batch, "peak_rss_mb": self.peak_rss_mb,
                "cold_start_ms": self.cold_start_ms,
                "energy_j_per_image": self.energy_j_per_image, "energy_note": self.energy_note,
                "noisy": self.noisy, "latency_wall_s": self.latency_wall_s,
                "detection": self.detection.to_json() if self.detection else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "FullEval | None":
        if data is None or data.get("fidelity_level") != "full" or not data.get("drop") \
                or not (data.get("latency_ms") or {}).get("p50"):
            return None
        acc = dict(data["accuracy"]) if data.get("accuracy") else None
        if acc is not None and data.get("confusion_matrix") is not None:
            acc["confusion_matrix"] = data["confusion_matrix"]
        return cls(drop=Drop.from_json(data["drop"]), fidelity=_fidelity(data.get("fidelity")),
                   latency=Latency.from_json(data["latency_ms"]), accuracy=acc,
                   eval_s=data.get("eval_s"),
                   samples_ms=tuple(data.get("latency_samples_ms") or ()),
                   throughput_ips=data.get("throughput_ips"), best_batch=data.get("best_batch"),
                   peak_rss_mb=data.get("peak_rss_mb"), cold_start_ms=data.get("cold_start_ms"),
                   energy_j_per_image=data.get("energy_j_per_image"),
                   energy_note=data.get("energy_note"), noisy=data.get("noisy"),
                   detection=DetectionEval.from_json(data.get("detection")),
                   latency_wall_s=data.get("latency_wall_s"))


@dataclass(frozen=True)
class Decision(_Record):
    """What the finished run concluded about a candidate (search/report.py)."""

    within_budget: bool | None = None
    speedup: float | None = None
    speedup_range: tuple[float, float] | None = None
    speedup_method: str | None = None
    compression_ratio: float | None = None
    per_layer_ms: tuple[Mapping[str, Any], ...] | None = None
    per_layer_note: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One candidate: its plan, where it stands, and the parts measured so far."""

    plan: Plan
    status: Status = Status.PLANNED
    reason: str | None = None
    screen: Screen | None = None
    full: FullEval | None = None
    screen_rule: str | None = None
    decision: Decision = Decision()

    # ------------------------------------------------------------ convenient reads
    @property
    def id(self) -> str:
        return self.plan.id

    @property
    def label(self) -> str:
        return self.plan.label

    @property
    def runtime(self) -> str:
        return self.plan.runtime

    @property
    def precision(self) -> str:
        """What ran where the runtime reported it, else what the recipe asked for."""
        return (self.screen.ran_precision if self.screen and self.screen.ran_precision
                else self.plan.precision)

    @property
    def fidelity_level(self) -> str | None:
        if self.full is not None:
            return "full"
        return "screen" if self.screen is not None and self.screen.drop is not None else None

    @property
    def drop(self) -> Drop | None:
        """The full drop where measured, else the screening drop."""
        if self.full is not None:
            return self.full.drop
        return self.screen.drop if self.screen else None

    @property
    def p50_ms(self) -> float | None:
        return self.full.latency.p50 if self.full else None

    @property
    def size_mb(self) -> float | None:
        return self.screen.size_mb if self.screen else None

    @property
    def artifact(self) -> str | None:
        return self.screen.artifact_path if self.screen else None

    @property
    def measured(self) -> bool:
        """Fully evaluated and fine: its figures can be compared and it can be picked."""
        return self.status is Status.OK and self.full is not None

    def with_(self, **changes: Any) -> "Candidate":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The flat report.json object of docs/run-format.md."""
        status = Status.NOT_TRIED if self.status is Status.SCREENED else self.status
        out: dict[str, Any] = {**self.plan.to_json(), "status": status.value,
                               "reason": self.reason, "screen_rule": self.screen_rule,
                               "precision": self.precision,
                               "requested_precision": self.plan.precision}
        out.update(Screen().to_json() if self.screen is None else self.screen.to_json())
        out["fidelity_level"] = self.fidelity_level
        if self.full is not None:
            out.update(self.full.to_json())
        else:
            out.update(drop=out["screen_drop"], fidelity=out["screen_fidelity"], accuracy=None,
                       confusion_matrix=None, latency_ms=None, latency_samples_ms=[],
                       throughput_ips=None, best_batch=None, peak_rss_mb=None,
                       cold_start_ms=None, energy_j_per_image=None, energy_note=None,
                       eval_s=None, noisy=None, latency_wall_s=None, detection=None)
        out.update(_json_value(self.decision.to_json()))
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Candidate":
        status = Status(data.get("status", "planned"))
        screen = None
        if any(data.get(k) is not None for k in ("build_s", "artifact", "screen_drop", "probe_ms")) \
                or data.get("passes"):
            screen = Screen.from_json(data)
        decision = Decision.from_json({k: data.get(k) for k in
                                       (f.name for f in fields(Decision))})
        if decision.speedup_range is not None:
            decision = dataclasses.replace(decision, speedup_range=tuple(decision.speedup_range))
        return cls(plan=Plan.from_json({**data, "precision": data.get("requested_precision",
                                                                       data["precision"])}),
                   status=status, reason=data.get("reason"), screen=screen,
                   full=FullEval.from_json(data), screen_rule=data.get("screen_rule"),
                   decision=decision)


def json_keys() -> frozenset[str]:
    """Every key of a report.json candidate object (docs/run-format.md is checked against it)."""
    return frozenset(Candidate(plan=Plan("x", "original", "x", (), "torch", "fp32")).to_json())
