"""The state of one optimize run: typed data only — the candidate records, the baseline, the
metric and the budget, the search clock. The evaluator (`engine.Evaluator`) changes it; the
report, the export of the pick and its model card read it, never the evaluator.
"""
from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError
from ..measure.rounds import default_threads
from ..metrics.budget import BudgetRule
from .candidate import Candidate
from ..tasks.detection.resample import MapResampler
from .evaluation import baseline_beats_chance

LABELLED_METRICS = ("top1", "map")  # scored against the data's labels
MAP_INTERVAL = "paired bootstrap over images for mAP"


@dataclass
class SearchClock:
    """Search time and seconds per phase, continued from the journal: a resumed run does
    not get a fresh time budget, and its phase totals include what killed attempts spent.

    Attributes:
        elapsed_before: the search time the journal's last line recorded.
        totals: seconds per phase already journaled.
        pending: seconds per phase since the last journal line (journaled with the next).
    """

    elapsed_before: float = 0.0
    totals: Counter = field(default_factory=Counter)
    pending: Counter = field(default_factory=Counter)
    t0: float = field(default_factory=time.monotonic)

    @classmethod
    def from_journal(cls, entries: list[dict[str, Any]]) -> "SearchClock":
        totals: Counter = Counter()
        for entry in entries:
            totals.update(entry.get("phases") or {})
        before = max((e.get("elapsed_s") or 0.0 for e in entries), default=0.0)
        return cls(elapsed_before=before, totals=totals)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.t0

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Adds the wall time of the block to phase `name`."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.pending[name] += time.monotonic() - t0

    def take_pending(self) -> dict[str, float]:
        """The phase seconds not yet journaled (for the next line), moved to the totals."""
        out = {k: round(v, 3) for k, v in self.pending.items() if v}
        self.totals.update(self.pending)
        self.pending = Counter()
        return out

    def seconds(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in sorted((self.totals + self.pending).items())}


@dataclass
class RunState:
    """Everything the run knows, and nothing that runs anything."""

    config: Any
    run_dir: Path
    handle: Any
    plan_ctx: Any
    data_info: dict[str, Any]
    clock: SearchClock = field(default_factory=SearchClock)
    records: dict[str, Candidate] = field(default_factory=dict)
    logits: dict[str, Path] = field(default_factory=dict)  # id → full-evaluation logits
    baseline: Candidate | None = None
    metric: str = "agreement"
    metric_note: str | None = None
    labels: np.ndarray | None = None
    groups: np.ndarray | None = None  # cluster of each evaluation sample; None: independent
    budget: BudgetRule | None = None
    base_screen: np.ndarray | None = None
    base_eval: np.ndarray | None = None
    resumed: int = 0
    stopped_by_budget: bool = False
    configuration: dict[str, Any] | None = None  # the configured stage's record (report.json)
    # id → why it cannot be the pick: full evaluations put off to the end (screening.outranked)
    deferred: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.budget is None:  # refined once the baseline's metric is known
            c = self.config
            self.budget = BudgetRule(c.max_drop if c.drop_type == "absolute" else 0.0,
                                     c.confidence)

    def elapsed(self) -> float:
        return self.clock.elapsed()

    @property
    def threads(self) -> int:
        return self.config.threads or default_threads()

    def put(self, cand: Candidate) -> Candidate:
        self.records[cand.id] = cand
        return cand

    def within(self, cand: Candidate) -> bool:
        """Fully measured, ok, and within the budget."""
        return cand.measured and bool(self.budget.within(cand.full.drop.high))

    def measured(self) -> list[Candidate]:
        return [r for r in self.records.values() if r.measured]

    def superseded(self) -> set[str]:
        """Contenders whose default configuration a configuration of theirs measurably
        beat (an ok "configured" candidate): that configuration stands in for them in the
        final rounds and the pick."""
        return {c.plan.parent_id for c in self.records.values()
                if c.plan.stage == "configured" and c.measured and c.plan.parent_id}

    def eval_labels(self):
        """The labels the metric scores against: class indices (top1), a detector's boxes
        (map); None for the metrics measured against the original model's outputs."""
        return self.labels if self.metric in LABELLED_METRICS else None

    def screen_labels(self):
        labels = self.eval_labels()
        return None if labels is None else labels[: self.data_info["screen_n"]]

    def screen_groups(self) -> np.ndarray | None:
        """The clusters of the screening samples (the first screen_n evaluation samples)."""
        return None if self.groups is None else self.groups[: self.data_info["screen_n"]]

    def set_baseline(self, outputs, labels) -> None:
        """The baseline's outputs: logits, or a detector's detections (a list)."""
        if isinstance(outputs, np.ndarray):
            self.set_baseline_logits(outputs, labels)
        else:
            self.set_baseline_detections(outputs, labels)

    def set_baseline_detections(self, dets: list, truth: list | None) -> None:
        """A detector's metric: mAP on the data's boxes, else fidelity mAP against its own
        detections (auto and --metric map alike: the name says which). The budget is in
        mAP points."""
        wanted = self.config.metric
        if wanted not in ("auto", "map"):
            raise ConfigError(f"--metric {wanted} is for classifiers; this model is a "
                              "detector (--metric map or auto)")
        self.base_eval, self.base_screen = dets, dets[: self.data_info["screen_n"]]
        spec = self.data_info.get("spec")
        if truth is not None:
            self.metric, self.labels = "map", truth
            self.metric_note = f"COCO mAP@[.5:.95] on the boxes of {spec}"
        else:
            self.metric, self.labels = "fidelity_map", None
            self.metric_note = ("fidelity mAP: mAP@[.5:.95] against the original model's own "
                                f"detections above its score threshold ({spec} has no boxes)")
        base_pct = 100.0
        if truth is not None:
            base_pct = 100 * MapResampler(truth, dets, self.data_info["classes"]).map()
        self.budget = BudgetRule.from_option(self.config.max_drop, self.config.drop_type,
                                             base_pct, self.config.confidence,
                                             interval=MAP_INTERVAL)

    def set_baseline_logits(self, logits: np.ndarray, labels: np.ndarray | None) -> None:
        """The baseline's outputs define every drop; the metric is decided from them."""
        self.base_eval = logits
        self.base_screen = logits[: self.data_info["screen_n"]]
        self.labels = None
        wanted = self.config.metric
        if wanted == "map":
            raise ConfigError("--metric map is for detectors; this model is a classifier")
        usable, why = baseline_beats_chance(logits, labels)
        if wanted == "top1" and labels is None:
            raise ConfigError(f"--metric top1 needs labelled data; {self.data_info.get('spec')} has none")
        if wanted == "top1" or (wanted == "auto" and usable):
            self.metric, self.labels = "top1", labels
            self.metric_note = why if wanted == "auto" else "top-1 on the data's labels (--metric top1)"
        else:
            self.metric = "agreement"
            self.metric_note = ("top-1 agreement with the original model" +
                                (f" ({why})" if wanted == "auto" else " (--metric agreement)"))
        base_pct = 100.0
        if self.metric == "top1":
            base_pct = float(100 * (logits.argmax(axis=1) == labels).mean())
        interval = None
        if self.groups is not None:
            interval = (f"{BudgetRule.interval}; the counts divided by the Rao–Scott design "
                        f"effect of the samples' {len(np.unique(self.groups))} clusters")
        self.budget = BudgetRule.from_option(self.config.max_drop, self.config.drop_type,
                                             base_pct, self.config.confidence, interval=interval)
