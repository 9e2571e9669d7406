"""A full evaluation that would overrun the time budget is not started
(Evaluator.full_overruns): its own evaluation and latency measurement, estimated from its
probe, plus the final rounds with it among the contenders, must fit in what is left."""
from __future__ import annotations

import pytest

from infertune.config import OptimizeConfig
from infertune.search import space
from infertune.search.candidate import (Candidate, Drop, FullEval, Latency, Plan, Screen,
                                        Status)
from infertune.search.engine import Evaluator
from infertune.search.journal import Journal
from infertune.search.state import RunState, SearchClock

from .recording import RecordingExecutor


def _evaluator(tmp_path, elapsed_s: float) -> tuple[Evaluator, RecordingExecutor]:
    """Budget 900 s, 3 final rounds, 4,000 evaluation samples; measured: the baseline
    (15 ms, its measurement took 6.75 s), two INT8 (1.74 and 1.83 ms, 2.53 s each) and a
    pruned model (3.8 ms, 2.58 s). Every measurement took less than the generic estimate
    (6 s + max(2 s, 30 calls)), so the load factor is 1."""
    ctx = space.PlanContext(model_key={"source": "m"}, model_format="torch",
                            runtimes=("torch",), registered_passes=frozenset())
    config = OptimizeConfig(model="m", out=str(tmp_path), max_drop=1.0, time_budget_s=900.0,
                            final_rounds=3)
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("screen", "x", {"status": "ok", "elapsed_s": elapsed_s})
    state = RunState(config, tmp_path, None, ctx, {"screen_n": 64, "eval_n": 4000,
                                                   "calib_n": 128},
                     clock=SearchClock.from_journal(list(journal.read())))
    rec = RecordingExecutor()
    ev = Evaluator(state, journal, rec, lambda event: None)
    for cid, p50, wall in (("base", 15.0, 6.75), ("q1", 1.74, 2.53), ("q2", 1.83, 2.53),
                           ("pruned", 3.8, 2.58)):
        cand = state.put(Candidate(
            Plan(cid, "quantized", cid, (), "openvino", "int8"), status=Status.OK,
            screen=Screen(probe_ms=p50, artifact_bytes=1 << 20),
            full=FullEval(drop=Drop("top1", 0.0, -0.3, 0.3), fidelity=None,
                          latency=Latency(p50=p50), latency_wall_s=wall)))
        if cid == "base":
            state.baseline = cand
    return ev, rec


def _probed(cid: str, probe_ms: float, wall_s: float) -> Candidate:
    return Candidate(Plan(cid, "quantized", cid, (), "compile", "int8"),
                     status=Status.SCREENED,
                     screen=Screen(probe_ms=probe_ms, probe_wall_s=wall_s, artifact_path="a",
                                   artifact_bytes=1 << 20,
                                   drop=Drop("top1", 0.0, -5.0, 5.0)))


def test_a_slow_starting_candidate_is_not_started_in_the_last_minutes(tmp_path):
    # reserve without it: 3 × (6.75 + 2.53 + 2.53 + 2.58) = 43.17 s. With it (2.3 ms, a
    # 20-s probe: compiling): its measurement max(20, 8) = 20 s replaces the pruned model's
    # among the 3 fastest: 3 × (6.75 + 2.53 + 2.53 + 20) = 95.43 s. Its own cost:
    # evaluation 20 + 4000 × 2.3 ms = 29.2 s, latency 20 s: 49.2 s.
    ev, rec = _evaluator(tmp_path / "late", 820.0)
    assert ev.final_reserve_s() == pytest.approx(43.17)
    # a faster candidate over the budget cannot be in the final rounds: it changes nothing
    ev.state.put(Candidate(Plan("over", "continued", "over", (), "openvino", "fp32"),
                           status=Status.OK, screen=Screen(probe_ms=1.0, artifact_bytes=1 << 20),
                           full=FullEval(drop=Drop("top1", 2.0, 1.5, 2.5), fidelity=None,
                                         latency=Latency(p50=1.0), latency_wall_s=2.0)))
    assert ev.final_reserve_s() == pytest.approx(43.17)
    slow = _probed("compiled", 2.3, 20.0)
    assert ev.final_reserve_s((slow, 20.0)) == pytest.approx(95.43)
    why = ev.full_overruns(slow)      # 900 - 820 - 95.43 < 0
    assert why and "about 49 s" in why and "leaves 0 s" in why and "(95 s with it" in why
    ev.full_all([ev.state.put(slow)])
    assert rec.jobs == [] and ev.state.records["compiled"].status is Status.NOT_TRIED
    assert ev.journal.get("full", "compiled")["reason"] == why
    # a fast-starting one fits: latency max(2.5, 8) = 8 s, evaluation 2.5 + 7.6 = 10.1 s;
    # reserve 3 × (6.75 + 2.53 + 2.53 + 8) = 59.43 s; 900 - 820 - 59.43 = 20.57 ≥ 18.1 s
    assert ev.full_overruns(_probed("fast", 1.9, 2.5)) is None
    # earlier in the run the slow one fits too: 900 - 700 - 95.43 = 104.57 ≥ 49.2 s
    ev, _ = _evaluator(tmp_path / "early", 700.0)
    assert ev.full_overruns(slow) is None


def test_no_time_budget_or_no_probe_wall_time_never_overruns(tmp_path):
    ev, _ = _evaluator(tmp_path, 899.0)
    assert ev.full_overruns(_probed("old", 2.3, None)) is None  # a journal from before
    import dataclasses

    ev.state.config = dataclasses.replace(ev.config, time_budget_s=None)
    assert ev.config.time_budget_s is None and ev.full_overruns(_probed("c", 2.3, 20.0)) is None
