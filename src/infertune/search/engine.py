"""The search loop: stages of candidates, each built and screened cheaply, the survivors
measured in full; the records it keeps are typed `Candidate` values (candidate.py).

Every finished step is a journal line (`journal.py`), and so is every decision the time
budget takes (a candidate not tried) with the search time spent so far: a resumed run reads
the journal first, continues the *same* clock, and redoes only what is missing. Every
decision is a pure function of journal contents, so a run killed at any moment resumes to
the same result (given the same measurements).
"""
from __future__ import annotations

import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from ..metrics.budget import BudgetRule
from . import screening, space
from .candidate import Candidate, FullEval, Latency, PassReport, Screen, Status
from .evaluation import baseline_beats_chance, scores
from .journal import Journal

Progress = Callable[[dict[str, Any]], None]
STARTUP_S = 6.0  # a measuring child's start: interpreter, framework import, model load
MAX_SAMPLES = 2000  # raw latency samples kept per candidate (for the distribution charts)
THROUGHPUT_BATCH = 8  # the batch a throughput probe is measured at


class Search:
    """State of one run: config, run dir, journal, executor, the candidate records."""

    def __init__(self, config, run_dir: Path, journal: Journal, executor, handle,
                 plan_ctx: space.PlanContext, data_info: dict[str, Any], progress: Progress):
        self.config, self.run_dir, self.journal = config, run_dir, journal
        self.executor, self.handle, self.plan_ctx = executor, handle, plan_ctx
        self.data_info, self.progress = data_info, progress
        self.records: dict[str, Candidate] = {}
        self.logits: dict[str, Path] = {}  # candidate id → its full-evaluation logits
        # The clock continues from the journal: a resumed run does not get a fresh budget.
        self.elapsed_before = max((e.get("elapsed_s") or 0.0 for e in journal.entries.values()),
                                  default=0.0)
        self.t0 = time.monotonic()
        self.labels = None
        self.metric = "agreement"
        self.metric_note: str | None = None
        self.budget = BudgetRule(config.max_drop if config.drop_type == "absolute" else 0.0,
                                 config.confidence)
        self.baseline: Candidate | None = None
        self.base_screen: np.ndarray | None = None
        self.base_eval: np.ndarray | None = None
        self.resumed = 0
        self.stopped_by_budget = journal.get("budget", "stopped") is not None
        # Seconds per phase (build, probe, evaluate, latency, final): journaled with each
        # line, so the totals of a resumed run include what its killed attempts spent.
        self.phase_totals: Counter = Counter()
        for entry in journal.read():
            self.phase_totals.update(entry.get("phases") or {})
        self._pending: Counter = Counter()

    @contextlib.contextmanager
    def phase(self, name: str):
        """Adds the wall time of the block to phase `name`."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self._pending[name] += time.monotonic() - t0

    def phase_seconds(self) -> dict[str, float]:
        total = self.phase_totals + self._pending
        return {k: round(v, 2) for k, v in sorted(total.items())}

    # ------------------------------------------------------------------ clock and journal
    def elapsed(self) -> float:
        """Search time: what earlier (killed) attempts journaled plus this process's."""
        return self.elapsed_before + time.monotonic() - self.t0

    def record(self, kind: str, key: str, data: dict[str, Any]) -> None:
        """One journal line, stamped with the search time spent so far and the seconds each
        phase took since the previous line."""
        phases = {k: round(v, 3) for k, v in self._pending.items() if v}
        self.journal.append(kind, key, {**data, "elapsed_s": round(self.elapsed(), 3),
                                        **({"phases": phases} if phases else {})})
        self.phase_totals.update(self._pending)
        self._pending = Counter()

    def out_of_time(self) -> bool:
        """True once starting another candidate would leave too little of the time budget
        for the closing side-by-side rounds (their time is estimated from measured p50s).
        The first time it says so is journaled, so a resumed run stops where this one did."""
        if self.stopped_by_budget:
            return True
        limit = self.config.time_budget_s
        if limit is not None and self.elapsed() >= limit - self.final_reserve_s():
            self.stopped_by_budget = True
            self.record("budget", "stopped", {"limit_s": limit})
            return True
        return False

    def final_reserve_s(self) -> float:
        """Estimated seconds of the final rounds: baseline + up to 3 contenders, each
        measurement a child start (~STARTUP_S) plus max(min_seconds, min_runs × p50)."""
        c = self.config
        p50s = sorted(r.p50_ms for r in self.measured())
        lineup = [self.baseline.p50_ms or 0.0] + p50s[:3] if p50s and self.baseline else []
        per_round = sum(STARTUP_S + max(c.min_seconds, c.min_runs * p / 1000) for p in lineup)
        return c.final_rounds * per_round

    def budget_reason(self) -> str:
        return f"not tried: the time budget ({self.config.time_budget_s:g} s) was spent"

    def not_tried(self, cand: Candidate, kind: str) -> Candidate:
        cand = cand.with_(status=Status.NOT_TRIED, reason=self.budget_reason())
        self.record(kind, cand.id, {"status": cand.status.value, "reason": cand.reason})
        return self.put(cand)

    def put(self, cand: Candidate) -> Candidate:
        self.records[cand.id] = cand
        return cand

    # ------------------------------------------------------------------ jobs
    def job(self, cand: Candidate, mode: str, **extra: Any) -> dict[str, Any]:
        c = self.config
        return {"mode": mode, "run_dir": str(self.run_dir), "id": cand.id,
                "recipe": [s.to_json() for s in cand.plan.recipe], "runtime": cand.runtime,
                "requested_precision": cand.plan.precision,
                "model": {"source": c.model, "load": dict(c.load),
                          "input_size": list(c.input_size) if c.input_size else None},
                "threads": self.threads, "seed": c.seed,
                "screen_n": self.data_info["screen_n"], **extra}

    @property
    def threads(self) -> int:
        from ..measure.rounds import default_threads

        return self.config.threads or default_threads()

    def factory(self, cand: Candidate, batch: int | None = 1):
        from ..measure.session import SessionFactory
        from ..runtimes import RUNTIMES

        return SessionFactory(cand.runtime, cand.artifact,
                              options=RUNTIMES.get(cand.runtime).options(batch), label=cand.id)

    def latency(self, cand: Candidate, *, probe: bool) -> dict[str, Any]:
        """A latency measurement of `cand` in its own child. Under the throughput objective
        the probe also measures images/s at THROUGHPUT_BATCH, which screening then ranks by."""
        from ..measure.timing import TimingConfig

        c = self.config
        timing = (TimingConfig(warmup=2, min_runs=c.probe_runs, min_seconds=c.probe_seconds)
                  if probe else TimingConfig(warmup=5, min_runs=c.min_runs,
                                             min_seconds=c.min_seconds))
        through: list[int] = []
        if c.objective == "throughput":
            through = [THROUGHPUT_BATCH] if probe else [1, THROUGHPUT_BATCH]
        return self.executor.measure(
            self.factory(cand), input_shape=self.handle.input_spec, batch=1, timing=timing,
            throughput=through, threads=self.threads, energy=not probe, overhead=False,
            seed=c.seed)

    def within(self, cand: Candidate) -> bool:
        """Fully measured, ok, and within the budget."""
        return cand.measured and bool(self.budget.within(cand.full.drop.high))

    def emit(self, event: str, **data: Any) -> None:
        self.progress({"event": event, "elapsed_s": round(self.elapsed(), 1), **data})

    # ------------------------------------------------------------------ screening
    def screen_all(self, cands: list[Candidate]) -> list[Candidate]:
        """Builds, then screens, every planned candidate of a stage (journal first).

        All builds of the stage finish before the first latency probe starts, so a probe
        never shares the machine (or, with Ray, its node) with a build."""
        cands = [self._replay_screen(c) for c in cands]
        todo = [c for c in cands if c.status is Status.PLANNED]
        to_build = [c for c in todo if self.journal.get("build", c.id) is None]
        if to_build and not self.out_of_time():
            self.emit("build", n=len(to_build), stage=to_build[0].plan.stage)
            # Each result is journaled as it arrives: a kill loses only the jobs in flight.
            t0 = [time.monotonic()]

            def built(i: int, res: dict[str, Any]) -> None:
                self._pending["build"] += time.monotonic() - t0[0]
                self.record("build", to_build[i].id, {"result": res})
                t0[0] = time.monotonic()

            self.executor.run_jobs([self.job(c, "build") for c in to_build],
                                   self.config.candidate_timeout_s, built)
        for cand in todo:
            built = self.journal.get("build", cand.id)
            if built is None:
                self.not_tried(cand, "screen")
            else:
                self.finish_screen(cand, built["result"])
        return [self.records[c.id] for c in cands]

    def _replay_screen(self, cand: Candidate) -> Candidate:
        entry = self.journal.get("screen", cand.id)
        if entry is not None and cand.status is Status.PLANNED:
            self.resumed += 1
            cand = cand.with_(status=Status(entry["status"]), reason=entry.get("reason"),
                              screen=Screen.from_json(entry.get("screen")),
                              plan=_relabel(cand.plan, entry.get("label")))
        return self.put(cand)

    def finish_screen(self, cand: Candidate, res: dict[str, Any]) -> Candidate:
        screen = Screen(build_s=res.get("build_s"),
                        passes=tuple(PassReport.from_json(p) for p in res.get("passes", [])),
                        params=res.get("params"), macs=res.get("macs"),
                        ran_precision=res.get("ran_precision"),
                        ran_precision_note=res.get("ran_precision_note"))
        label = _label_with_noops(cand, screen)
        if res.get("status") != "ok":
            status = {"skipped": Status.SKIPPED, "incompatible": Status.INCOMPATIBLE}.get(
                res.get("status"), Status.FAILED)
            cand = cand.with_(status=status, reason=res.get("reason"), screen=screen)
        else:
            cand = self.screen_numbers(cand, screen, res)
        cand = cand.with_(plan=_relabel(cand.plan, label))
        self.record("screen", cand.id, {"status": cand.status.value, "reason": cand.reason,
                                        "label": label,
                                        "screen": cand.screen.to_json() if cand.screen else None})
        self.put(cand)
        self.emit("screened", id=cand.id, label=cand.label, status=cand.status.value,
                  reason=cand.reason, probe_ms=cand.screen.probe_ms if cand.screen else None)
        return cand

    def screen_numbers(self, cand: Candidate, screen: Screen, res: dict[str, Any]) -> Candidate:
        import dataclasses

        from ..measure.isolate import artifact_bytes

        screen = dataclasses.replace(screen, artifact_path=res["artifact"],
                                     artifact_bytes=artifact_bytes(res["artifact"]) or 0)
        cand = cand.with_(status=Status.SCREENED, screen=screen)
        if self.base_screen is not None:
            logits = np.load(res["screen_logits"])
            sc = scores(self.base_screen, logits, self.screen_labels(), self.metric,
                        self.config.confidence, self.config.seed, full=False)
            if sc.drop is None:
                return cand.with_(status=Status.FAILED, reason=sc.reason)
            screen = dataclasses.replace(screen, drop=sc.drop, fidelity=sc.fidelity)
        with self.phase("probe"):
            probe = self.latency(cand.with_(screen=screen), probe=True)
        if probe.get("status") != "ok":
            return cand.with_(status=Status.FAILED, screen=screen,
                              reason=f"latency probe {probe.get('status')}: {probe.get('reason')}")
        ips = (probe.get("throughput_ips") or {}).get(THROUGHPUT_BATCH) \
            or (probe.get("throughput_ips") or {}).get(str(THROUGHPUT_BATCH))
        screen = dataclasses.replace(screen, probe_ms=probe["latency_ms"]["p50"], probe_ips=ips)
        return cand.with_(screen=screen)

    def screen_labels(self):
        if self.metric != "top1" or self.labels is None:
            return None
        return self.labels[: self.data_info["screen_n"]]

    # ------------------------------------------------------------------ full evaluation
    def full_all(self, cands: list[Candidate]) -> None:
        """Screening rules, then full evaluation of the survivors, fastest probe first."""
        survivors = [self.records[c.id] for c in cands]
        survivors = [c for c in survivors if c.status in (Status.SCREENED, Status.OK)]
        for cand in sorted(survivors, key=lambda c: (c.screen.probe_ms or 1e18, c.id)):
            entry = self.journal.get("full", cand.id)
            if entry is not None:
                self.put(_replay_full(cand, entry))
                if entry.get("logits"):
                    self.logits[cand.id] = Path(entry["logits"])
                continue
            if self.out_of_time():
                self.not_tried(cand, "full")
                continue
            rule, why = screening.verdict(cand, self.measured(), self.budget,
                                          self.config.objective)
            if rule:
                cand = cand.with_(status=Status.SCREENED_OUT, reason=why, screen_rule=rule)
                self.record("full", cand.id, {"status": cand.status.value, "reason": why,
                                              "screen_rule": rule})
            else:
                cand = self.full_numbers(cand)
            self.put(cand)
            self.emit("measured", id=cand.id, label=cand.label, status=cand.status.value,
                      reason=cand.reason, p50=cand.p50_ms,
                      drop=cand.drop.value if cand.drop else None)

    def measured(self) -> list[Candidate]:
        return [r for r in self.records.values() if r.measured]

    def full_numbers(self, cand: Candidate) -> Candidate:
        with self.phase("evaluate"):
            res = self.executor.run_jobs([self.job(cand, "evaluate", artifact=cand.artifact)],
                                         self.config.candidate_timeout_s)[0]
        if res.get("status") != "ok":
            return self._failed_full(cand, f"evaluation: {res.get('reason')}")
        logits = np.load(res["eval_logits"])
        if self.base_eval is None:  # this is the baseline itself
            self.set_baseline_logits(logits)
        labels = self.labels if self.metric == "top1" else None
        sc = scores(self.base_eval, logits, labels, self.metric, self.config.confidence,
                    self.config.seed, full=True)
        if sc.drop is None:
            return self._failed_full(cand, sc.reason)
        with self.phase("latency"):
            lat = self.latency(cand, probe=False)
        if lat.get("status") != "ok":
            return self._failed_full(cand, f"latency {lat.get('status')}: {lat.get('reason')}")
        full = _full_eval(sc, lat, res.get("eval_s"))
        self.logits[cand.id] = Path(res["eval_logits"])
        self.record("full", cand.id, {"status": "ok", "full": full.to_json(),
                                      "logits": res["eval_logits"]})
        return cand.with_(status=Status.OK, reason=None, full=full)

    def _failed_full(self, cand: Candidate, reason: str | None) -> Candidate:
        self.record("full", cand.id, {"status": "failed", "reason": reason})
        return cand.with_(status=Status.FAILED, reason=reason)

    def set_baseline_logits(self, logits: np.ndarray) -> None:
        """The baseline's outputs define every drop; the metric is decided from them."""
        from .rundata import labels as read_labels

        self.base_eval = logits
        self.base_screen = logits[: self.data_info["screen_n"]]
        self.labels = None
        labels = read_labels(self.run_dir)
        wanted = self.config.metric
        usable, why = baseline_beats_chance(logits, labels)
        if wanted == "top1" and labels is None:
            raise ConfigError(f"--metric top1 needs labelled data; {self.config.data} has none")
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
        self.budget = BudgetRule.from_option(self.config.max_drop, self.config.drop_type,
                                             base_pct, self.config.confidence)


def _relabel(plan, label: str | None):
    import dataclasses

    return plan if not label or label == plan.label else dataclasses.replace(plan, label=label)


def _label_with_noops(cand: Candidate, screen: Screen) -> str:
    """The label, with every exact rewrite that found nothing to do marked as such (a step
    that changes numbers and did not apply makes the whole candidate skipped instead)."""
    label = cand.label
    for rep in screen.passes:
        if not rep.applied and rep.details.get("exact_noop"):
            label = label.replace(rep.pass_name, f"{rep.pass_name} (nothing to do)", 1)
    return label


def _replay_full(cand: Candidate, entry: dict[str, Any]) -> Candidate:
    return cand.with_(status=Status(entry["status"]), reason=entry.get("reason"),
                      screen_rule=entry.get("screen_rule"),
                      full=FullEval.from_json(entry.get("full")))


def _full_eval(sc, res: dict[str, Any], eval_s: float | None) -> FullEval:
    lat = dict(res.get("latency_ms") or {})
    samples = lat.pop("samples", None) or []
    if len(samples) > MAX_SAMPLES:  # keep the journal small: an even subsample, in call order
        stride = -(-len(samples) // MAX_SAMPLES)
        samples = samples[::stride]
    latency = Latency(p50=lat["p50"], p90=lat.get("p90"), p99=lat.get("p99"),
                      mean=lat.get("mean"), std=lat.get("std"), n=lat.get("n"),
                      cv=res.get("cv"))
    through = {str(k): v for k, v in (res.get("throughput_ips") or {}).items()} or None
    return FullEval(drop=sc.drop, fidelity=sc.fidelity, latency=latency, accuracy=sc.accuracy,
                    eval_s=eval_s, samples_ms=tuple(samples), throughput_ips=through,
                    best_batch=res.get("best_batch"), peak_rss_mb=res.get("peak_rss_mb"),
                    cold_start_ms=res.get("cold_start_ms"),
                    energy_j_per_image=res.get("energy_j_per_image"),
                    energy_note=res.get("energy_reason"), noisy=res.get("noisy"))
