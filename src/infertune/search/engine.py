"""The search loop: stages of candidates, each screened cheaply, the survivors measured in
full, then a side-by-side comparison of the contenders, the pick and its export.

Every finished step is a journal line (`journal.py`); a resumed run reads the journal first
and redoes only what is missing, and every decision is a pure function of journal contents,
so a run killed at any moment resumes to the same result (given the same measurements).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from . import screening, select, space
from .evaluation import baseline_beats_chance, scores
from .journal import Journal

Progress = Callable[[dict[str, Any]], None]
STARTUP_S = 6.0  # a measuring child's start: interpreter, framework import, model load
MAX_SAMPLES = 2000  # raw latency samples kept per candidate (for the distribution charts)


class Search:
    """State of one run: config, run dir, journal, executor, the planned candidates."""

    def __init__(self, config, run_dir: Path, journal: Journal, executor, handle,
                 plan_ctx: space.PlanContext, data_info: dict[str, Any], progress: Progress):
        self.config, self.run_dir, self.journal = config, run_dir, journal
        self.executor, self.handle, self.plan_ctx = executor, handle, plan_ctx
        self.data_info, self.progress = data_info, progress
        self.records: dict[str, dict[str, Any]] = {}
        self.t0 = time.monotonic()
        self.labels = None
        self.metric = "agreement"
        self.metric_note: str | None = None
        self.budget_pts = config.max_drop
        self.baseline: dict[str, Any] | None = None
        self.base_screen: np.ndarray | None = None
        self.base_eval: np.ndarray | None = None
        self.resumed = 0
        self.stopped_by_budget = False

    # ------------------------------------------------------------------ helpers
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def out_of_time(self) -> bool:
        """True once starting another candidate would leave too little of the time budget
        for the closing side-by-side rounds (their time is estimated from measured p50s)."""
        limit = self.config.time_budget_s
        if limit is not None and self.elapsed() >= limit - self.final_reserve_s():
            self.stopped_by_budget = True
            return True
        return False

    def final_reserve_s(self) -> float:
        """Estimated seconds of the final rounds: baseline + up to 3 contenders, each
        measurement a child start (~STARTUP_S) plus max(min_seconds, min_runs × p50)."""
        c = self.config
        p50s = sorted((r.get("latency_ms") or {}).get("p50") or 0 for r in self.measured())
        lineup = ([(self.baseline or {}).get("latency_ms", {}).get("p50") or 0]
                  + p50s[:3]) if p50s else []
        per_round = sum(STARTUP_S + max(c.min_seconds, c.min_runs * p / 1000) for p in lineup)
        return c.final_rounds * per_round

    def job(self, cand: dict[str, Any], mode: str, **extra: Any) -> dict[str, Any]:
        c = self.config
        return {"mode": mode, "run_dir": str(self.run_dir), "id": cand["id"],
                "recipe": cand["recipe"], "runtime": cand["runtime"],
                "model": {"source": c.model, "load": dict(c.load),
                          "input_size": list(c.input_size) if c.input_size else None},
                "threads": self.threads, "seed": c.seed,
                "screen_n": self.data_info["screen_n"], **extra}

    @property
    def threads(self) -> int:
        from ..measure.rounds import default_threads

        return self.config.threads or default_threads()

    def factory(self, cand: dict[str, Any], batch: int | None = 1):
        from ..measure.session import SessionFactory
        from ..runtimes import RUNTIMES

        return SessionFactory(cand["runtime"], cand["artifact"]["path"],
                              options=RUNTIMES.get(cand["runtime"]).options(batch),
                              label=cand["id"])

    def latency(self, cand: dict[str, Any], *, probe: bool) -> dict[str, Any]:
        from ..measure.timing import TimingConfig

        c = self.config
        timing = (TimingConfig(warmup=2, min_runs=c.probe_runs, min_seconds=c.probe_seconds)
                  if probe else TimingConfig(warmup=5, min_runs=c.min_runs,
                                             min_seconds=c.min_seconds))
        through = [1, 8] if (c.objective == "throughput" and not probe) else []
        return self.executor.measure(
            self.factory(cand), input_shape=self.handle.input_spec, batch=1, timing=timing,
            throughput=through, threads=self.threads, energy=not probe, overhead=False,
            seed=c.seed)

    def within(self, cand: dict[str, Any]) -> bool:
        """Fully measured, ok, and within the budget."""
        return (cand.get("status") == "ok" and cand.get("fidelity_level") == "full"
                and bool(select.within_budget(cand.get("drop"), self.budget_pts)))

    def emit(self, event: str, **data: Any) -> None:
        self.progress({"event": event, "elapsed_s": round(self.elapsed(), 1), **data})

    # ------------------------------------------------------------------ screening
    def screen_all(self, cands: list[dict[str, Any]]) -> None:
        """Builds and screens every planned candidate of a stage (journal first)."""
        todo = []
        for cand in cands:
            self.records[cand["id"]] = cand
            entry = self.journal.get("screen", cand["id"])
            if entry is not None:
                self.resumed += 1
                cand.update(entry["record"])
            elif cand["status"] == "planned":
                todo.append(cand)
        batch: list[dict[str, Any]] = []
        for cand in todo:
            if self.out_of_time():
                cand.update(status="not_tried", reason=self.budget_reason())
                continue
            batch.append(cand)
        if not batch:
            return
        self.emit("build", n=len(batch), stage=batch[0]["stage"])
        # Each result is journaled as it arrives: a kill loses only the jobs in flight.
        self.executor.run_jobs([self.job(c, "build") for c in batch],
                               self.config.candidate_timeout_s,
                               lambda i, res: self.finish_screen(batch[i], res))

    def budget_reason(self) -> str:
        return f"not tried: the time budget ({self.config.time_budget_s:g} s) was spent"

    def finish_screen(self, cand: dict[str, Any], res: dict[str, Any]) -> None:
        update: dict[str, Any] = {"build_s": res.get("build_s"), "passes": res.get("passes", []),
                                  "params": res.get("params"), "macs": res.get("macs")}
        if res.get("status") != "ok":
            update.update(status=res.get("status", "failed"), reason=res.get("reason"))
        else:
            update.update(self.screen_numbers(cand, res))
        cand.update(update)
        self.journal.append("screen", cand["id"], {"record": update})
        self.emit("screened", id=cand["id"], label=cand["label"], status=cand["status"],
                  reason=cand.get("reason"), probe_ms=cand.get("probe_ms"))

    def screen_numbers(self, cand: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
        from ..measure.isolate import artifact_bytes

        size = artifact_bytes(res["artifact"]) or 0
        out: dict[str, Any] = {"status": "screened", "artifact": {
            "path": res["artifact"], "bytes": size}, "size_mb": size / 2**20}
        logits = np.load(res["screen_logits"])
        if self.base_screen is not None:
            sc = scores(self.base_screen, logits, self.screen_labels(), self.metric,
                        self.config.confidence, self.config.seed, full=False)
            if sc["drop"] is None:
                return {**out, "status": "failed", "reason": sc["reason"]}
            out.update(screen_drop=sc["drop"], screen_fidelity=sc["fidelity"])
        cand.update(out)
        probe = self.latency(cand, probe=True)
        if probe.get("status") != "ok":
            return {**out, "status": "failed", "reason": f"latency probe {probe.get('status')}: "
                                                         f"{probe.get('reason')}"}
        out["probe_ms"] = probe["latency_ms"]["p50"]
        return out

    def screen_labels(self):
        if self.metric != "top1" or self.labels is None:
            return None
        return self.labels[: self.data_info["screen_n"]]

    # ------------------------------------------------------------------ full evaluation
    def full_all(self, cands: list[dict[str, Any]]) -> None:
        """Screening rules, then full evaluation of the survivors, fastest probe first."""
        survivors = [c for c in cands if c["status"] in ("screened", "ok")]
        for cand in sorted(survivors, key=lambda c: (c.get("probe_ms") or 1e18, c["id"])):
            entry = self.journal.get("full", cand["id"])
            if entry is not None:
                cand.update(entry["record"])
                continue
            if self.out_of_time():
                cand.update(status="not_tried", reason=self.budget_reason(),
                            fidelity_level="screen")
                continue
            rule, why = screening.verdict(cand, self.measured(), self.budget_pts)
            if rule:
                update = {"status": "screened_out", "reason": why, "screen_rule": rule,
                          "fidelity_level": "screen"}
            else:
                update = self.full_numbers(cand)
            cand.update(update)
            self.journal.append("full", cand["id"], {"record": update})
            self.emit("measured", id=cand["id"], label=cand["label"], status=cand["status"],
                      reason=cand.get("reason"), p50=(cand.get("latency_ms") or {}).get("p50"),
                      drop=(cand.get("drop") or {}).get("value"))

    def measured(self) -> list[dict[str, Any]]:
        return [r for r in self.records.values()
                if r.get("status") == "ok" and r.get("fidelity_level") == "full"]

    def full_numbers(self, cand: dict[str, Any]) -> dict[str, Any]:
        res = self.executor.run_jobs([self.job(cand, "evaluate", artifact=cand["artifact"]["path"])],
                                     self.config.candidate_timeout_s)[0]
        if res.get("status") != "ok":
            return {"status": "failed", "reason": f"evaluation: {res.get('reason')}"}
        logits = np.load(res["eval_logits"])
        if self.base_eval is None:  # this is the baseline itself
            self.set_baseline_logits(logits)
        labels = self.labels if self.metric == "top1" else None
        sc = scores(self.base_eval, logits, labels, self.metric, self.config.confidence,
                    self.config.seed, full=True)
        if sc["drop"] is None:
            return {"status": "failed", "reason": sc["reason"]}
        lat = self.latency(cand, probe=False)
        if lat.get("status") != "ok":
            return {"status": "failed", "reason": f"latency {lat.get('status')}: {lat.get('reason')}"}
        return {"status": "ok", "fidelity_level": "full", "eval_s": res.get("eval_s"),
                "eval_logits": res["eval_logits"],
                **sc, **_latency_fields(lat)}

    def set_baseline_logits(self, logits: np.ndarray) -> None:
        """The baseline's outputs define every drop; the metric is decided from them."""
        self.base_eval = logits
        self.base_screen = logits[: self.data_info["screen_n"]]
        self.labels = None
        from .rundata import labels as read_labels

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
        self.budget_pts = select.budget_points(self.config.max_drop, self.config.drop_type,
                                               base_pct)


def _latency_fields(res: dict[str, Any]) -> dict[str, Any]:
    lat = dict(res.get("latency_ms") or {})
    samples = lat.pop("samples", None) or []
    if len(samples) > MAX_SAMPLES:  # keep the journal small: an even subsample, in call order
        stride = -(-len(samples) // MAX_SAMPLES)
        samples = samples[::stride]
    return {"latency_ms": lat, "latency_samples_ms": samples,
            "throughput_ips": {str(k): v for k, v in (res.get("throughput_ips") or {}).items()}
            or None,
            "best_batch": res.get("best_batch"), "peak_rss_mb": res.get("peak_rss_mb"),
            "cold_start_ms": res.get("cold_start_ms"),
            "energy_j_per_image": res.get("energy_j_per_image"),
            "energy_note": res.get("energy_reason"), "noisy": res.get("noisy"),
            "cv": res.get("cv")}
