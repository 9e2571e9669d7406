"""The evaluator: builds, screens and measures candidates through the executor and writes
what it finds into the run's state (`state.RunState`, typed `Candidate` records).

Every finished step is a journal line (`journal.py`), and so is every decision the time
budget takes (a candidate not tried) with the search time spent so far: a resumed run reads
the journal first, continues the *same* clock, and redoes only what is missing. Every
decision is a pure function of journal contents, so a run killed at any moment resumes to
the same result (given the same measurements).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..measure.isolate import artifact_bytes
from ..measure.session import SessionFactory
from ..measure.timing import TimingConfig
from ..runtimes import RUNTIMES
from . import screening
from .candidate import Candidate, FullEval, Latency, PassReport, Screen, Status
from .evaluation import load_outputs, scores
from .journal import Journal
from .rundata import labels as read_labels
from .state import RunState

Progress = Callable[[dict[str, Any]], None]
STARTUP_S = 6.0  # a measuring child's start: interpreter, framework import, model load
MAX_SAMPLES = 2000  # raw latency samples kept per candidate (for the distribution charts)
THROUGHPUT_BATCH = 8  # the batch a throughput probe is measured at


class Evaluator:
    """Changes the run's state (`RunState`) by building, screening and measuring
    candidates through the executor, journaling each finished step."""

    def __init__(self, state: RunState, journal: Journal, executor, progress: Progress):
        self.state, self.journal, self.executor, self.progress = state, journal, executor, progress
        state.stopped_by_budget = journal.get("budget", "stopped") is not None

    @property
    def config(self):
        return self.state.config

    def record(self, kind: str, key: str, data: dict[str, Any]) -> None:
        """One journal line, stamped with the search time spent so far and the seconds each
        phase took since the previous line."""
        phases = self.state.clock.take_pending()
        self.journal.append(kind, key, {**data, "elapsed_s": round(self.state.elapsed(), 3),
                                        **({"phases": phases} if phases else {})})

    def out_of_time(self) -> bool:
        """True once starting another candidate would leave too little of the time budget
        for the closing side-by-side rounds (their time is estimated from measured p50s).
        The first time it says so is journaled, so a resumed run stops where this one did."""
        if self.state.stopped_by_budget:
            return True
        limit = self.config.time_budget_s
        if limit is not None and self.state.elapsed() >= limit - self.final_reserve_s():
            self.state.stopped_by_budget = True
            self.record("budget", "stopped", {"limit_s": limit})
            return True
        return False

    def final_reserve_s(self) -> float:
        """Estimated seconds of the final rounds: baseline + up to 3 contenders, each
        measurement a child start (~STARTUP_S) plus max(min_seconds, min_runs × p50)."""
        c = self.config
        base = self.state.baseline
        p50s = sorted(r.p50_ms for r in self.state.measured())
        lineup = [base.p50_ms or 0.0] + p50s[:3] if p50s and base else []
        per_round = sum(STARTUP_S + max(c.min_seconds, c.min_runs * p / 1000) for p in lineup)
        return c.final_rounds * per_round

    def budget_reason(self) -> str:
        return f"not tried: the time budget ({self.config.time_budget_s:g} s) was spent"

    def not_tried(self, cand: Candidate, kind: str) -> Candidate:
        cand = cand.with_(status=Status.NOT_TRIED, reason=self.budget_reason())
        self.record(kind, cand.id, {"status": cand.status.value, "reason": cand.reason})
        return self.state.put(cand)

    # ------------------------------------------------------------------ jobs
    def job(self, cand: Candidate, mode: str, **extra: Any) -> dict[str, Any]:
        c = self.config
        return {"mode": mode, "run_dir": str(self.state.run_dir), "id": cand.id,
                "recipe": [s.to_json() for s in cand.plan.recipe], "runtime": cand.runtime,
                "requested_precision": cand.plan.precision,
                "model": {"source": c.model, "load": dict(c.load),
                          "input_size": list(c.input_size) if c.input_size else None},
                "threads": self.state.threads, "seed": c.seed,
                "screen_n": self.state.data_info["screen_n"], **extra}

    def factory(self, cand: Candidate, batch: int | None = 1):
        return SessionFactory(cand.runtime, cand.artifact,
                              options=RUNTIMES.get(cand.runtime).options(batch), label=cand.id)

    def latency(self, cand: Candidate, *, probe: bool) -> dict[str, Any]:
        """A latency measurement of `cand` in its own child. Under the throughput objective
        the probe also measures images/s at THROUGHPUT_BATCH, which screening then ranks by."""
        c = self.config
        timing = (TimingConfig(warmup=2, min_runs=c.probe_runs, min_seconds=c.probe_seconds)
                  if probe else TimingConfig(warmup=5, min_runs=c.min_runs,
                                             min_seconds=c.min_seconds))
        through: list[int] = []
        if c.objective == "throughput":
            through = [THROUGHPUT_BATCH] if probe else [1, THROUGHPUT_BATCH]
        return self.executor.measure(
            self.factory(cand), input_shape=self.state.handle.input_spec, batch=1,
            timing=timing, throughput=through, threads=self.state.threads, energy=not probe, overhead=False,
            seed=c.seed)

    def emit(self, event: str, **data: Any) -> None:
        self.progress({"event": event, "elapsed_s": round(self.state.elapsed(), 1), **data})

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
                self.state.clock.pending["build"] += time.monotonic() - t0[0]
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
        return [self.state.records[c.id] for c in cands]

    def _replay_screen(self, cand: Candidate) -> Candidate:
        entry = self.journal.get("screen", cand.id)
        if entry is not None and cand.status is Status.PLANNED:
            self.state.resumed += 1
            cand = cand.with_(status=Status(entry["status"]), reason=entry.get("reason"),
                              screen=Screen.from_json(entry.get("screen")),
                              plan=_relabel(cand.plan, entry.get("label")))
        return self.state.put(cand)

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
        self.state.put(cand)
        self.emit("screened", id=cand.id, label=cand.label, status=cand.status.value,
                  reason=cand.reason, probe_ms=cand.screen.probe_ms if cand.screen else None)
        return cand

    def screen_numbers(self, cand: Candidate, screen: Screen, res: dict[str, Any]) -> Candidate:
        import dataclasses

        screen = dataclasses.replace(screen, artifact_path=res["artifact"],
                                     artifact_bytes=artifact_bytes(res["artifact"]) or 0)
        cand = cand.with_(status=Status.SCREENED, screen=screen)
        st = self.state
        if st.base_screen is not None:
            sc = self.score(st.base_screen, load_outputs(res["screen_logits"]),
                            st.screen_labels(), full=False)
            if sc.drop is None:
                return cand.with_(status=Status.FAILED, reason=sc.reason)
            screen = dataclasses.replace(screen, drop=sc.drop, fidelity=sc.fidelity)
        with self.state.clock.phase("probe"):
            probe = self.latency(cand.with_(screen=screen), probe=True)
        if probe.get("status") != "ok":
            return cand.with_(status=Status.FAILED, screen=screen,
                              reason=f"latency probe {probe.get('status')}: {probe.get('reason')}")
        ips = (probe.get("throughput_ips") or {}).get(THROUGHPUT_BATCH) \
            or (probe.get("throughput_ips") or {}).get(str(THROUGHPUT_BATCH))
        screen = dataclasses.replace(screen, probe_ms=probe["latency_ms"]["p50"], probe_ips=ips)
        return cand.with_(screen=screen)

    # ------------------------------------------------------------------ full evaluation
    def full_all(self, cands: list[Candidate]) -> None:
        """Screening rules, then full evaluation of the survivors, fastest probe first."""
        st = self.state
        survivors = [st.records[c.id] for c in cands]
        survivors = [c for c in survivors if c.status in (Status.SCREENED, Status.OK)]
        for cand in sorted(survivors, key=lambda c: (c.screen.probe_ms or 1e18, c.id)):
            entry = self.journal.get("full", cand.id)
            if entry is not None:
                st.put(_replay_full(cand, entry))
                if entry.get("logits"):
                    st.logits[cand.id] = Path(entry["logits"])
                continue
            if self.out_of_time():
                self.not_tried(cand, "full")
                continue
            rule, why = screening.verdict(cand, st.measured(), st.budget, self.config.objective)
            if rule:
                cand = cand.with_(status=Status.SCREENED_OUT, reason=why, screen_rule=rule)
                self.record("full", cand.id, {"status": cand.status.value, "reason": why,
                                              "screen_rule": rule})
            else:
                cand = self.full_numbers(cand)
            st.put(cand)
            self.emit("measured", id=cand.id, label=cand.label, status=cand.status.value,
                      reason=cand.reason, p50=cand.p50_ms,
                      drop=cand.drop.value if cand.drop else None)

    def full_numbers(self, cand: Candidate) -> Candidate:
        st = self.state
        with st.clock.phase("evaluate"):
            res = self.executor.run_jobs([self.job(cand, "evaluate", artifact=cand.artifact)],
                                         self.config.candidate_timeout_s)[0]
        if res.get("status") != "ok":
            return self._failed_full(cand, f"evaluation: {res.get('reason')}")
        outputs = load_outputs(res["eval_logits"])
        if st.base_eval is None:  # this is the baseline itself
            st.set_baseline(outputs, read_labels(st.run_dir))
        sc = self.score(st.base_eval, outputs, st.eval_labels(), full=True)
        if sc.drop is None:
            return self._failed_full(cand, sc.reason)
        with st.clock.phase("latency"):
            lat = self.latency(cand, probe=False)
        if lat.get("status") != "ok":
            return self._failed_full(cand, f"latency {lat.get('status')}: {lat.get('reason')}")
        full = _full_eval(sc, lat, res.get("eval_s"))
        st.logits[cand.id] = Path(res["eval_logits"])
        self.record("full", cand.id, {"status": "ok", "full": full.to_json(),
                                      "logits": res["eval_logits"]})
        return cand.with_(status=Status.OK, reason=None, full=full)

    def score(self, base, outputs, labels, *, full: bool):
        """`evaluation.scores` with the run's metric, confidence, seed and detection facts."""
        info = self.state.data_info
        return scores(base, outputs, labels, self.state.metric, self.config.confidence,
                      self.config.seed, full=full, classes=info.get("classes"),
                      threshold=info.get("score_threshold", 0.25))

    def _failed_full(self, cand: Candidate, reason: str | None) -> Candidate:
        self.record("full", cand.id, {"status": "failed", "reason": reason})
        return cand.with_(status=Status.FAILED, reason=reason)


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
                    detection=sc.detection,
                    eval_s=eval_s, samples_ms=tuple(samples), throughput_ips=through,
                    best_batch=res.get("best_batch"), peak_rss_mb=res.get("peak_rss_mb"),
                    cold_start_ms=res.get("cold_start_ms"),
                    energy_j_per_image=res.get("energy_j_per_image"),
                    energy_note=res.get("energy_reason"), noisy=res.get("noisy"))
