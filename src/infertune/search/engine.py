"""The evaluator: builds, screens and measures candidates through the executor and writes
what it finds into the run's state (`state.RunState`, typed `Candidate` records).

Every finished step is a journal line (`journal.py`), and so is every decision the time
budget takes (a candidate not tried) with the search time spent so far: a resumed run reads
the journal first, continues the *same* clock, and redoes only what is missing. Every
decision is a pure function of journal contents, so a run killed at any moment resumes to
the same result (given the same measurements).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..measure import stats
from ..measure.isolate import artifact_bytes
from ..measure.session import SessionFactory
from ..passes import PASSES
from ..measure.timing import THROUGHPUT_TIMING, TimingConfig
from ..runtimes import RUNTIMES
from ..runtimes.base import LOW_PRECISION
from . import screening, select, space
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

    def final_reserve_s(self, joining: tuple[Candidate, float] | None = None) -> float:
        """Estimated seconds of the final rounds: baseline + up to 3 contenders (the fastest
        measured), each measurement as long as that candidate's own full latency
        measurement took (`latency_wall_s`: a full measurement does at least what one
        final-round measurement does, the same loop plus throughput or memory probes),
        else a child start (~STARTUP_S) plus max(min_seconds, min_runs × p50) scaled up by
        the load factor this run has seen (`load_factor`). Why their own: the generic
        estimate reserved 96 s for ref-clutter's final rounds that took 40 s (a child
        starts in ~2.5 s there, not 6), and that time was taken from the last stage.
        `joining`: (a candidate not yet measured, seconds of one measurement of it), counted
        among the contenders by its probe's p50 (`full_overruns`)."""
        c = self.config
        base = self.state.baseline
        factor = self.load_factor()
        # (p50, id, seconds of one measurement), fastest first, of the candidates the final
        # rounds can take (final_comparison: within budget); an over-budget one had stood in
        # for a torch.compile contender whose measurements take 27 s (ref-clutter, Zen 4 VM:
        # 42 s reserved, 113 s taken)
        timed = [(r.p50_ms, r.id, r.full.latency_wall_s if r.full is not None
                  and r.full.latency_wall_s else _measure_estimate_s(c, r.p50_ms) * factor)
                 for r in self.state.measured()
                 if self.state.within(r) and (base is None or r.id != base.id)]
        if joining is not None and joining[0].screen and joining[0].screen.probe_ms:
            timed.append((joining[0].screen.probe_ms, joining[0].id, joining[1]))
        timed.sort()
        if not base or not timed:
            return 0.0
        base_s = base.full.latency_wall_s if base.full is not None and base.full.latency_wall_s \
            else _measure_estimate_s(c, base.p50_ms or 0.0) * factor
        return c.final_rounds * (base_s + sum(t[2] for t in timed[:3]))

    def full_overruns(self, cand: Candidate) -> str | None:
        """Why a full evaluation of `cand` would overrun the time budget, or None: its own
        cost (the evaluation: a child start as long as its probe's plus one call per
        sample at its probe's p50; the latency measurement: as long as its probe or the
        generic estimate, whichever is longer) and the final rounds if it joined them.

        Why: a deferred torch.compile INT8 candidate of a ref-clutter run (Zen 4 VM), 2.3 ms
        a call but ~20 s of compiling in every child, was evaluated in the last minute
        (60 s) and then joined the final rounds, which took 110 s against 43 s reserved:
        the run took 991 s on a 900-s budget."""
        limit = self.config.time_budget_s
        scr = cand.screen
        if limit is None or scr is None or not scr.probe_ms or not scr.probe_wall_s:
            return None
        latency_s = max(scr.probe_wall_s,
                        _measure_estimate_s(self.config, scr.probe_ms) * self.load_factor())
        eval_s = scr.probe_wall_s + self.state.data_info["eval_n"] * scr.probe_ms / 1000
        reserve = self.final_reserve_s((cand, latency_s))
        left = limit - self.state.elapsed() - reserve
        if eval_s + latency_s <= left:
            return None
        return (f"not tried: its full evaluation needs about {eval_s + latency_s:.0f} s "
                f"(evaluation {eval_s:.0f} s, latency {latency_s:.0f} s) and the time budget "
                f"({limit:g} s) leaves {max(left, 0):.0f} s before the final rounds "
                f"({reserve:.0f} s with it among them)")

    def training_room_s(self, key: str, evaluations: int) -> float | None:
        """Seconds of training the time budget leaves after the final rounds' reserve and
        `evaluations` more candidates' builds and evaluations (each `tail_s`); None
        without a time budget. Journaled under `key` the first time, so that a resumed
        run plans the same candidates (their recipes hold the seconds)."""
        limit = self.config.time_budget_s
        if limit is None:
            return None
        entry = self.journal.get("room", key)
        if entry is not None:
            return float(entry["room_s"])
        overhead = self.training_overhead_s()
        left = (limit - self.final_reserve_s() - self.state.elapsed()
                - evaluations * self.tail_s() - overhead)
        room = round(max(0.0, left), 1)
        self.record("room", key, {"room_s": room, "tail_s": round(self.tail_s(), 1),
                                  "overhead_s": round(overhead, 1)})
        return room

    def training_overhead_s(self) -> float:
        """Median seconds a build that trained took beyond its training: its build less the
        planned `seconds` of the steps it trained itself (not loaded from the run's trained
        cache) and less the teacher's outputs it computed (`teacher_s`, a one-off of the
        run's first recovery); 0 before any build trained.

        Why: the room for a continuation counted only the evaluations after it, and a
        ref-clutter run (Zen 4 VM) spent 13 s of its 217-s continuation build on set-up,
        the step-time trial, validation past the last step and export; its two combined
        candidates were then built but never evaluated (the budget stopped 2 s short)."""
        over = []
        for r in self.state.records.values():
            if r.screen is None or r.screen.build_s is None \
                    or len(r.screen.passes) != len(r.plan.recipe):
                continue
            here = [(step, rep) for step, rep in zip(r.plan.recipe, r.screen.passes)
                    if PASSES.get(step.pass_name).trains and rep.applied
                    and "cache" not in rep.details and step.options.get("seconds")]
            if here:
                over.append(max(0.0, r.screen.build_s - sum(
                    float(step.options.get("seconds") or 0.0)
                    + float(rep.details.get("teacher_s") or 0.0) for step, rep in here)))
        return sorted(over)[len(over) // 2] if over else 0.0

    def tail_s(self) -> float:
        """Median seconds a measured candidate (the baseline aside) took besides training:
        its build less its recovery steps' seconds, its full evaluation and its latency
        measurement (0 before any was measured)."""
        base = self.state.baseline
        tails = sorted(
            max(0.0, (r.screen.build_s or 0.0) - _trained_s(r)) + (r.full.eval_s or 0.0)
            + (r.full.latency_wall_s or 0.0) for r in self.state.measured()
            if r.screen is not None and r.full is not None and (base is None or r.id != base.id))
        return tails[len(tails) // 2] if tails else 0.0

    def load_factor(self) -> float:
        """How much longer this run's full latency measurements took than the estimate the
        reserve uses (median over the measured candidates, at least 1).

        Why: on a loaded machine a child starts slower and each call runs longer than its
        p50 says (the median of an earlier window), so a fixed estimate let an
        efficientnet_lite0 run's final rounds take 255 s where ~100 s were reserved (1174 s
        on a 900 s budget). A full measurement does at least what one final-round
        measurement does (the same loop, plus throughput or memory probes), so the ratio
        can only over-reserve, never under-reserve, for the load it saw."""
        ratios = sorted(r.full.latency_wall_s / _measure_estimate_s(self.config, r.p50_ms)
                        for r in self.state.measured()
                        if r.full is not None and r.full.latency_wall_s and r.p50_ms)
        return max(1.0, ratios[len(ratios) // 2]) if ratios else 1.0

    def budget_reason(self) -> str:
        return f"not tried: the time budget ({self.config.time_budget_s:g} s) was spent"

    def not_tried(self, cand: Candidate, kind: str) -> Candidate:
        why = self.state.deferred.get(cand.id)
        reason = self.budget_reason() + (f" (its full evaluation was deferred: it cannot be "
                                         f"the pick, {why})" if why else "")
        cand = cand.with_(status=Status.NOT_TRIED, reason=reason)
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
        """What the measuring child opens: the artifact with the runtime's options for
        `batch` and the candidate's runtime configuration over them."""
        return SessionFactory(cand.runtime, cand.artifact, label=cand.id,
                              options=space.measured_options(cand.runtime,
                                                             cand.plan.runtime_options, batch))

    def threads_for(self, cand: Candidate) -> int:
        """The run's thread count, or the one the candidate's configuration sets."""
        return int(cand.plan.runtime_options.get("threads") or self.state.threads)

    def latency(self, cand: Candidate, *, probe: bool,
                parity: dict[str, Any] | None = None) -> dict[str, Any]:
        """A latency measurement of `cand` in its own child. Under the throughput objective
        the probe also measures images/s at THROUGHPUT_BATCH, which screening then ranks by.
        `parity`: the child first checks the opened artifact against these outputs
        (measure/parity.py), and fails the measurement if they differ."""
        c = self.config
        timing = (TimingConfig(warmup=2, min_runs=c.probe_runs, min_seconds=c.probe_seconds)
                  if probe else TimingConfig(warmup=5, min_runs=c.min_runs,
                                             min_seconds=c.min_seconds))
        through: list[int] = []
        if c.objective == "throughput":
            through = [THROUGHPUT_BATCH] if probe else [1, THROUGHPUT_BATCH]
        return self.executor.measure(
            self.factory(cand), input_shape=self.state.handle.input_spec, batch=1,
            timing=timing, throughput=through, threads=self.threads_for(cand),
            energy=not probe, overhead=False, seed=c.seed, parity=parity)

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
            fits = {c.id for c in self._training_fits(to_build)}
            dropped = {c.id for c in to_build} - fits  # not tried: their training does not fit
            todo = [c for c in todo if c.id not in dropped]
            to_build = [c for c in to_build if c.id in fits]
        else:
            to_build = []
        if to_build:
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

    def _training_fits(self, cands: list[Candidate]) -> list[Candidate]:
        """The candidates whose known training time (their recovery steps' `seconds`) still
        fits in the time budget, counted in build order; the others are not tried, saying
        how much they needed. A recovery an earlier build of this run already trained is
        free (the run's trained-weights cache, passes/_trained_cache.py)."""
        limit = self.config.time_budget_s
        if limit is None:
            return cands
        done = {_training_prefix(c) for c in self.state.records.values()
                if c.screen is not None and _training_prefix(c)}
        left = limit - self.final_reserve_s() - self.state.elapsed()
        # the first recovery of a run also computes the teacher's outputs on the training
        # images (then cached for the others: passes/_teacher_cache.py), about one batch-1
        # pass of the original per image
        base = self.state.baseline
        teacher_s = 0.0 if done or base is None or not base.p50_ms else \
            self.state.plan_ctx.train_samples * base.p50_ms / 1000
        kept = []
        for cand in cands:
            prefix = _training_prefix(cand)
            untrained = _untrained_s(cand, done)
            need = 0.0 if untrained is None else untrained + teacher_s
            if need > left:
                cand = cand.with_(status=Status.NOT_TRIED, reason=(
                    f"not tried: its recovery trains for {need:g} s and the time budget "
                    f"({limit:g} s) leaves {max(left, 0):.0f} s"))
                self.record("screen", cand.id, {"status": cand.status.value,
                                                "reason": cand.reason})
                self.state.put(cand)
                continue
            left -= need
            if need:
                teacher_s = 0.0
            done.add(prefix)
            kept.append(cand)
        return kept

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
                            st.screen_labels(), full=False, groups=st.screen_groups())
            if sc.drop is None:
                return cand.with_(status=Status.FAILED, reason=sc.reason)
            screen = dataclasses.replace(screen, drop=sc.drop, fidelity=sc.fidelity)
        t0 = time.monotonic()
        with self.state.clock.phase("probe"):
            probe = self.latency(cand.with_(screen=screen), probe=True)
        screen = dataclasses.replace(screen, probe_wall_s=round(time.monotonic() - t0, 3))
        if probe.get("status") != "ok":
            return cand.with_(status=Status.FAILED, screen=screen,
                              reason=f"latency probe {probe.get('status')}: {probe.get('reason')}")
        ips = (probe.get("throughput_ips") or {}).get(THROUGHPUT_BATCH) \
            or (probe.get("throughput_ips") or {}).get(str(THROUGHPUT_BATCH))
        screen = dataclasses.replace(screen, probe_ms=probe["latency_ms"]["p50"], probe_ips=ips)
        return cand.with_(screen=screen)

    # ------------------------------------------------------------------ full evaluation
    def full_all(self, cands: list[Candidate], defer: bool = False) -> None:
        """Screening rules, then full evaluation of the survivors, fastest probe first.

        With `defer` (and a time budget), a survivor that cannot be the pick
        (screening.outranked) is not evaluated now: it is kept in `state.deferred` for
        `full_deferred`, so the stages that can still change the pick get the time first."""
        st = self.state
        defer = defer and self.config.time_budget_s is not None
        survivors = [st.records[c.id] for c in cands]
        survivors = [c for c in survivors if c.status in (Status.SCREENED, Status.OK)]
        for cand in sorted(survivors, key=lambda c: (c.screen.probe_ms or 1e18, c.id)):
            entry = self.journal.get("full", cand.id)
            if entry is not None:
                st.put(_replay_full(cand, entry))
                if entry.get("logits"):
                    st.logits[cand.id] = Path(entry["logits"])
                continue
            # The screening rules first: they cost nothing, so a candidate they discard is
            # screened out (with its rule) even when the time budget is spent; only one that
            # needs the full evaluation is "not tried" for lack of time.
            rule, why = screening.verdict(cand, st.measured(), st.budget, self.config.objective)
            later = None if rule or not defer else \
                screening.outranked(cand, st.measured(), st.budget, self.config.objective)
            if later:
                st.deferred[cand.id] = later
                self.emit("deferred", id=cand.id, label=cand.label, reason=later)
                continue
            if not rule and self.out_of_time():
                self.not_tried(cand, "full")
                continue
            overrun = None if rule else self.full_overruns(cand)
            if overrun:
                deferred = st.deferred.get(cand.id)
                overrun += f" (its full evaluation was deferred: it cannot be the pick, " \
                           f"{deferred})" if deferred else ""
                cand = cand.with_(status=Status.NOT_TRIED, reason=overrun)
                self.record("full", cand.id, {"status": cand.status.value, "reason": overrun})
                st.put(cand)
                continue
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

    def full_deferred(self) -> None:
        """The full evaluations `full_all` put off, once every stage has had its time."""
        st = self.state
        self.full_all([st.records[cid] for cid in st.deferred])

    def full_numbers(self, cand: Candidate) -> Candidate:
        st = self.state
        with st.clock.phase("evaluate"):
            job = self.job(cand, "evaluate", artifact=cand.artifact,
                           batch=eval_batch(sample_bytes(st.handle)))
            res = self.executor.run_jobs([job], self.config.candidate_timeout_s)[0]
        if res.get("status") != "ok":
            return self._failed_full(cand, f"evaluation: {res.get('reason')}")
        outputs = load_outputs(res["eval_logits"])
        if st.base_eval is None:  # this is the baseline itself
            st.set_baseline(outputs, read_labels(st.run_dir))
        sc = self.score(st.base_eval, outputs, st.eval_labels(), full=True, groups=st.groups)
        if sc.drop is None:
            return self._failed_full(cand, sc.reason)
        t0 = time.monotonic()
        with st.clock.phase("latency"):
            lat = self.latency(cand, probe=False)
        if lat.get("status") != "ok":
            return self._failed_full(cand, f"latency {lat.get('status')}: {lat.get('reason')}")
        full = replace(_full_eval(sc, lat, res.get("eval_s")),
                       latency_wall_s=round(time.monotonic() - t0, 3))
        st.logits[cand.id] = Path(res["eval_logits"])
        self.record("full", cand.id, {"status": "ok", "full": full.to_json(),
                                      "logits": res["eval_logits"]})
        return cand.with_(status=Status.OK, reason=None, full=full)

    def score(self, base, outputs, labels, *, full: bool, groups: np.ndarray | None = None):
        """`evaluation.scores` with the run's metric, confidence, seed and detection facts."""
        info = self.state.data_info
        return scores(base, outputs, labels, self.state.metric, self.config.confidence,
                      self.config.seed, full=full, classes=info.get("classes"),
                      threshold=info.get("score_threshold", 0.25), groups=groups)

    def _failed_full(self, cand: Candidate, reason: str | None) -> Candidate:
        self.record("full", cand.id, {"status": "failed", "reason": reason})
        return cand.with_(status=Status.FAILED, reason=reason)


    # ------------------------------------------------------------------ configuration
    def configure(self, contender: Candidate, variants: list[Candidate]) -> dict[str, Any]:
        """The configured stage for one contender (search/select.CONFIG_RULE): its default
        configuration and `variants` (the same artifact, other runtime settings) timed in
        interleaved rounds, each measurement first checked against the default's outputs;
        a variant that measurably wins becomes an ok candidate with the contender's
        accuracy (same artifact, outputs checked equal), the others are screened out (or
        failed). Journaled as one "config" line; returns report.json's record of it."""
        entry = self.journal.get("config", contender.id)
        if entry is None:
            why = self.config_out_of_time(contender, len(variants))
            entry = {"status": "not_tried", "reason": why} if why else \
                self._measure_configs(contender, variants)
            self.record("config", contender.id, entry)
        else:  # resumed: these candidates' results come from the journal
            self.state.resumed += len(variants)
        return self._apply_configs(contender, variants, entry)

    def config_out_of_time(self, contender: Candidate, n_variants: int) -> str | None:
        """Why the time budget leaves no room for this contender's configuration rounds
        (estimated as the final rounds are: child start + timed loop per measurement)."""
        c = self.config
        if self.state.stopped_by_budget:
            return self.budget_reason()
        if c.time_budget_s is None:
            return None
        per = STARTUP_S + max(c.min_seconds, c.min_runs * (contender.p50_ms or 0.0) / 1000)
        if c.objective == "throughput":
            per += THROUGHPUT_TIMING.min_seconds
        need = STARTUP_S + (1 + n_variants) * c.final_rounds * per
        left = c.time_budget_s - self.final_reserve_s() - self.state.elapsed()
        if need <= left:
            return None
        return (f"not tried: the time budget ({c.time_budget_s:g} s) leaves {max(left, 0):.0f} s "
                f"before the final rounds; these configuration rounds need about {need:.0f} s")

    def _measure_configs(self, contender: Candidate, variants: list[Candidate]) -> dict[str, Any]:
        st, c = self.state, self.config
        job = self.job(contender, "reference", artifact=contender.artifact,
                       options=dict(self.factory(contender).options), batch=THROUGHPUT_BATCH)
        with st.clock.phase("configure"):
            ref = self.executor.run_jobs([job], c.candidate_timeout_s)[0]
        if ref.get("status") != "ok":
            return {"status": "failed", "reason": f"parity reference: {ref.get('reason')}"}
        tol = _tolerance(contender)
        parity = {"path": ref["reference"], "rel_tolerance": tol.rel,
                  "why": f"the default configuration's own outputs; {tol.why}"}
        # the variants open the contender's artifact (their screen is the contender's)
        lineup = [contender, *(v.with_(screen=contender.screen) for v in variants)]
        self.emit("final", n=len(lineup), rounds=c.final_rounds)
        results: list[list[dict[str, Any]]] = []
        for r in range(c.final_rounds):
            row = []
            for cand in lineup:
                with st.clock.phase("configure"):
                    res = self.latency(cand, probe=False, parity=parity)
                row.append(res)
            results.append(row)
        measured = {cand.id: _pool_rounds([row[i] for row in results], c.objective)
                    for i, cand in enumerate(lineup)}
        rows = [{"id": cand.id, "by_round": measured[cand.id]["by_round"]
                 if measured[cand.id]["status"] == "ok" else []} for cand in lineup]
        decision = select.pick_configuration(rows, contender.id, c.objective)
        return {"status": "ok", "reason": None, "rounds": c.final_rounds,
                "parity": {"rel_tolerance": tol.rel, "why": parity["why"]},
                "measured": measured,
                "decision": {"kept": decision.kept, "best": decision.best,
                             "tied": list(decision.tied), "reason": decision.reason}}

    def _apply_configs(self, contender: Candidate, variants: list[Candidate],
                       entry: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        decision = entry.get("decision") or {}
        kept = decision.get("kept", contender.id)
        measured = entry.get("measured") or {}
        for cand in variants:
            if entry["status"] != "ok":
                status = Status.NOT_TRIED if entry["status"] == "not_tried" else Status.FAILED
                cand = cand.with_(status=status, reason=entry.get("reason"))
            elif cand.id not in measured:  # planned after these rounds were journaled
                cand = cand.with_(status=Status.NOT_TRIED, reason="not tried: the journaled "
                                  "configuration rounds of this contender did not include it")
            else:
                cand = _configured_record(contender, cand, measured[cand.id], kept, decision)
            st.put(cand)
            self.emit("measured", id=cand.id, label=cand.label, status=cand.status.value,
                      reason=cand.reason, p50=cand.p50_ms,
                      drop=cand.drop.value if cand.drop else None)
        rows = [{"id": cid, "options": dict(st.records[cid].plan.runtime_options)
                 if cid in st.records else {}, **{k: m.get(k) for k in (
                     "status", "reason", "by_round", "median", "session")}}
                for cid, m in measured.items()]
        return {"contender": contender.id, "label": contender.label,
                "runtime": contender.runtime, "status": entry["status"],
                "reason": entry.get("reason"), "rounds": entry.get("rounds"),
                "metric": "images_per_s" if self.config.objective == "throughput" else "p50_ms",
                "parity": entry.get("parity"), "rows": rows, "kept": kept,
                "decision": decision.get("reason"),
                "configurations": [c.id for c in variants]}


# The session settings worth showing beside a configuration's timings: what the opened
# session reported (runtimes' describe()), not what was asked for.
SESSION_KEYS = ("performance_hint", "num_streams", "infer_requests", "inference_num_threads",
                "enable_cpu_pinning", "enable_hyper_threading", "session_options")


def _tolerance(cand: Candidate):
    """The parity tolerance between two configurations of `cand`'s artifact: its runtime's,
    or the low-precision one where it runs in bf16/fp16 (threads change summation order)."""
    return LOW_PRECISION.get(cand.precision) or RUNTIMES.get(cand.runtime).tolerance


def _pool_rounds(results: list[dict[str, Any]], objective: str) -> dict[str, Any]:
    """One configuration's measurements over the rounds: its value per round (p50, or
    images/s at THROUGHPUT_BATCH for throughput) and a latency summary pooled over them
    (median of the rounds' p50/p90/p99, every round's samples); failed when any round
    failed (a parity failure fails every round)."""
    bad = next((r for r in results if r.get("status") != "ok"), None)
    if bad is not None:
        return {"status": "failed",
                "reason": f"round {results.index(bad) + 1}: {bad.get('status')}: "
                          f"{bad.get('reason')}"[:400]}
    lats = [r["latency_ms"] for r in results]

    def ips(r):
        got = r.get("throughput_ips") or {}
        return got.get(str(THROUGHPUT_BATCH), got.get(THROUGHPUT_BATCH))

    def med(values):
        ok = [v for v in values if v is not None]
        return stats.percentile(ok, 50) if ok else None

    by_round = [ips(r) for r in results] if objective == "throughput" \
        else [lat["p50"] for lat in lats]
    through: dict[str, list[float]] = {}
    for r in results:
        for b, v in (r.get("throughput_ips") or {}).items():
            through.setdefault(str(b), []).append(v)
    samples = [x for lat in lats for x in (lat.get("samples") or [])]
    if len(samples) > MAX_SAMPLES:
        samples = samples[::-(-len(samples) // MAX_SAMPLES)]
    info = results[-1].get("session_info") or {}
    return {"status": "ok", "reason": None, "by_round": by_round,
            "median": med(by_round),
            "latency_ms": {key: med([lat.get(key) for lat in lats])
                           for key in ("p50", "p90", "p99", "mean", "std")}
            | {"n": sum(int(lat.get("n") or 0) for lat in lats)},
            "samples": samples,
            "throughput_ips": {b: med(v) for b, v in through.items()} or None,
            "cv": med([r.get("cv") for r in results]),
            "peak_rss_mb": max((r.get("peak_rss_mb") or 0.0 for r in results), default=None),
            "cold_start_ms": med([r.get("cold_start_ms") for r in results]),
            "noisy": any(bool(r.get("noisy")) for r in results),
            "session": {k: info[k] for k in SESSION_KEYS if k in info}}


def _configured_record(contender: Candidate, cand: Candidate, m: dict[str, Any], kept: str,
                       decision: dict[str, Any]) -> Candidate:
    """A configuration's candidate from its pooled rounds: the contender's artifact and
    accuracy (its outputs were checked equal to the contender's before every timing), its
    own latency; ok when CONFIG_RULE kept it, else screened out with the decision."""
    import dataclasses

    screen = dataclasses.replace(contender.screen, probe_ms=None, probe_ips=None) \
        if contender.screen else None
    if m.get("status") != "ok":
        return cand.with_(status=Status.FAILED, reason=m.get("reason"), screen=screen)
    lat = m["latency_ms"]
    n_rounds = len(m.get("by_round") or ())
    latency = Latency(p50=lat["p50"], p90=lat.get("p90"), p99=lat.get("p99"),
                      mean=lat.get("mean"), std=lat.get("std"), n=lat.get("n"), cv=m.get("cv"),
                      source=f"configuration rounds: medians of {n_rounds} interleaved rounds")
    full = dataclasses.replace(contender.full, latency=latency, eval_s=None,
                               samples_ms=tuple(m.get("samples") or ()),
                               throughput_ips=m.get("throughput_ips"),
                               best_batch=_best_batch(m.get("throughput_ips")),
                               peak_rss_mb=m.get("peak_rss_mb"),
                               cold_start_ms=m.get("cold_start_ms"),
                               energy_j_per_image=None,
                               energy_note="not measured in the configuration rounds",
                               noisy=m.get("noisy"))
    if cand.id == kept:
        return cand.with_(status=Status.OK, reason=None, screen=screen, full=full)
    why = (decision.get("reason") or "") if decision.get("best") == cand.id or \
        cand.id in (decision.get("tied") or ()) else ""
    reason = (f"the configuration rounds kept {'the default' if kept == contender.id else kept}"
              + (f": {why}" if why else ": not measurably better than it"))
    return cand.with_(status=Status.SCREENED_OUT, reason=reason, screen_rule="configuration",
                      screen=screen, full=full)


def _best_batch(ips: dict[str, float] | None) -> int | None:
    return int(max(ips, key=ips.__getitem__)) if ips else None


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


def _training_prefix(cand: Candidate) -> str:
    """The recipe up to its last training step, as text ("" without one): two candidates
    with the same prefix train the same weights once."""
    steps = [s.to_json() for s in cand.plan.recipe]
    last = max((i for i, s in enumerate(cand.plan.recipe)
                if PASSES.get(s.pass_name).trains), default=-1)
    return json.dumps(steps[:last + 1], sort_keys=True) if last >= 0 else ""


def _trained_s(cand: Candidate) -> float:
    """The `seconds` of a candidate's training steps (0 for a steps budget or none)."""
    return float(sum(s.options.get("seconds") or 0.0 for s in cand.plan.recipe
                     if PASSES.get(s.pass_name).trains))


def _untrained_s(cand: Candidate, done: set[str]) -> float | None:
    """Seconds of training a build of `cand` would run: its training steps' `seconds` after
    the longest training prefix an earlier build trained (`done`, from the run's trained
    cache); None when every training step is cached or there is none. A continued recovery
    (search.space.continued) counts only its second step."""
    steps = [s.to_json() for s in cand.plan.recipe]
    need: float | None = None
    for i, step in enumerate(cand.plan.recipe):
        if not PASSES.get(step.pass_name).trains:
            continue
        if json.dumps(steps[:i + 1], sort_keys=True) in done:
            need = None
        else:
            need = (need or 0.0) + float(step.options.get("seconds") or 0.0)
    return need


# The full evaluation's batch. Batching amortises a runtime's fixed cost per call and runs
# small inputs faster per image; a batch of large inputs runs slower per image (its
# activations leave the caches). Measured on the Zen 4 VM, PyTorch eager FP32, 2 threads:
# darknet19_448 (2.4 MB of input per image) 177 ms per image at batch 1 and 262 at batch 8
# (interleaved); ref-clutter (0.2 MB at 128×128) 18 ms per image at batch 1 and 15 at
# batch 8 (its 4,000-scene baseline evaluation: 72 s against 60 s). The threshold sits
# between the two; inputs in between (224-300 px) were not measured either way.
# Whatever the batch, a job runs every call at it (padded), so runtimes that specialise on
# shapes (compile) compile once.
EVAL_BATCH = 8
SINGLE_EVAL_BYTES = 1 << 20


def eval_batch(sample_bytes: int | None) -> int:
    """1 for inputs of ≥ SINGLE_EVAL_BYTES per image (FP32), else EVAL_BATCH."""
    return 1 if sample_bytes is not None and sample_bytes >= SINGLE_EVAL_BYTES else EVAL_BATCH


def sample_bytes(handle) -> int | None:
    """FP32 bytes of one input sample of the model (None when its shape is not concrete)."""
    dims = list(getattr(getattr(handle, "input_spec", None), "shape", None) or ())[1:]
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        return None
    return 4 * int(np.prod(dims))


def _measure_estimate_s(config, p50_ms: float | None) -> float:
    """Seconds one latency measurement should take: a child start plus its timed loop."""
    return STARTUP_S + max(config.min_seconds, config.min_runs * (p50_ms or 0.0) / 1000)


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
