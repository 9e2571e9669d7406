"""Recovery by successive halving (search.space.RECOVERY_FIRST_SHARE, space.continued,
run._continued): each structure trains a share of its recovery time first; the fastest that
is over the budget, faster than any compression within it and still learning continues
with the pooled rest; the time-budget check counts only the training a build would run."""
from __future__ import annotations

import pytest

from infertune.config import OptimizeConfig
from infertune.passes import PASSES
from infertune.search import space
from infertune.search.candidate import (Candidate, Drop, FullEval, Latency, PassReport, Plan,
                                        Screen, Status, Step)
from infertune.search.engine import Evaluator, _untrained_s
from infertune.search.journal import Journal
from infertune.search.run import _continued
from infertune.search.state import RunState, SearchClock


def _ctx(recovery_s: float = 135.0) -> space.PlanContext:
    return space.PlanContext(model_key={"source": "m"}, model_format="torch",
                             runtimes=("torch", "onnxruntime"), train_samples=4000,
                             registered_passes=frozenset(PASSES.names()),
                             recovery_seconds=recovery_s)


def _state(tmp_path, ctx) -> RunState:
    config = OptimizeConfig(model="m", out=str(tmp_path), max_drop=1.0)
    return RunState(config, tmp_path, None, ctx, {"screen_n": 8, "eval_n": 8, "calib_n": 8},
                    clock=SearchClock.from_journal([]))


def _planned(tmp_path):
    """(ctx with 135 s of recovery, a fresh RunState, the planned [25% prune, 50% prune,
    low-rank] compression candidates)."""
    ctx = _ctx(135.0)
    fp32 = space.make(ctx, "fused", space.graph_prefix(ctx), "onnxruntime", "fp32")
    return ctx, _state(tmp_path, ctx), space.compressed(ctx, fp32, labelled=True)


def _trained(state, cand: Candidate, p50: float, high: float, best: int,
             steps: int = 400) -> Candidate:
    """`cand` fully measured: p50 `p50` ms, drop interval upper end `high` points, and a
    distill report whose best validation came at step `best` of `steps`."""
    distill = PassReport("distill", True, details={"steps_run": steps, "best_step": best})
    screen = Screen(passes=(PassReport("prune_channels", True), distill),
                    artifact_bytes=1 << 20, probe_ms=p50)
    full = FullEval(drop=Drop("top1", high - 0.6, high - 1.2, high), fidelity=None,
                    latency=Latency(p50=p50))
    return state.put(cand.with_(status=Status.OK, screen=screen, full=full))


def test_each_structure_first_trains_its_share_and_a_continuation_adds_a_second_step():
    ctx = _ctx(135.0)
    fp32 = space.make(ctx, "fused", space.graph_prefix(ctx), "onnxruntime", "fp32")
    planned = space.compressed(ctx, fp32, labelled=True)
    assert {s.options["seconds"] for c in planned for s in c.plan.recipe
            if s.pass_name == "distill"} == {45.0}  # a third of 135 s
    more = space.continued(ctx, planned[0], 202.5)
    names = [s.pass_name for s in more.plan.recipe]
    assert names == ["prune_channels", "distill", "distill", "fold_bn"]
    assert more.plan.recipe[1] == planned[0].plan.recipe[1]
    assert more.plan.recipe[2].options == {**planned[0].plan.recipe[1].options,
                                           "seconds": 202.5}
    assert more.plan.stage == "continued" and more.plan.parent_id == planned[0].id
    assert more.id != planned[0].id and more.status is Status.PLANNED


def test_the_fastest_over_budget_structure_still_learning_gets_the_pooled_time(tmp_path):
    ctx, state, (p25, p50, lr) = _planned(tmp_path)
    comp = [_trained(state, p25, 3.0, high=1.5, best=400),
            _trained(state, p50, 2.0, high=3.0, best=350),
            _trained(state, lr, 3.6, high=0.4, best=400)]       # within the 1-point budget
    out = _continued(state, ctx, comp)
    # three trained structures each left 135 - 45 s: 270 s for the one continued
    assert [c.plan.parent_id for c in out] == [p50.id, p25.id]
    assert out[0].status is Status.PLANNED
    assert [s.options["seconds"] for s in out[0].plan.recipe if s.pass_name == "distill"] == \
        [45.0, 270.0]
    assert out[1].status is Status.SKIPPED and "only one structure" in out[1].reason


def test_a_structure_that_stopped_learning_or_is_beaten_is_not_continued(tmp_path):
    ctx, state, (p25, p50, lr) = _planned(tmp_path)
    comp = [_trained(state, p25, 3.0, high=1.5, best=400),
            _trained(state, p50, 2.0, high=3.0, best=150),      # best at step 150 of 400
            lr]                                                  # never built: no time pooled
    out = _continued(state, ctx, comp)
    assert [(c.plan.parent_id, c.status) for c in out] == \
        [(p50.id, Status.SKIPPED), (p25.id, Status.PLANNED)]
    assert "step 150 of 400" in out[0].reason
    assert [s.options["seconds"] for s in out[1].plan.recipe if s.pass_name == "distill"] == \
        [45.0, 180.0]
    # a compression within the budget and faster than every one over it: nothing continues
    state2 = _state(tmp_path / "2", ctx)
    comp2 = [_trained(state2, p25, 3.0, high=1.5, best=400),
             _trained(state2, p50, 2.0, high=0.9, best=400)]
    out2 = _continued(state2, ctx, comp2)
    assert [c.status for c in out2] == [Status.SKIPPED]
    assert "already faster (2.00 ms against 3.00 ms)" in out2[0].reason
    assert _continued(_state(tmp_path / "3", ctx), ctx, [p25, p50]) == []  # none trained


def test_a_structure_screened_out_over_budget_is_continued_by_its_probe(tmp_path):
    """ref-clutter, 15 minutes: after 67.5 s the 50% prune was screened out by the
    over-budget rule (7.8 points [1.7, 17.0] on 64 images) and the 25% prune measured in
    full over the budget; the 50% one, faster by its probe, is the one continued."""
    ctx, state, (p25, p50, lr) = _planned(tmp_path)
    distill = PassReport("distill", True, details={"steps_run": 307, "best_step": 300})
    out_screened = state.put(p50.with_(
        status=Status.SCREENED_OUT, screen_rule="over_budget",
        screen=Screen(passes=(distill,), probe_ms=1.6, drop=Drop("top1", 7.8, 1.7, 17.0))))
    dominated = state.put(lr.with_(
        status=Status.SCREENED_OUT, screen_rule="dominated",
        screen=Screen(passes=(distill,), probe_ms=0.5, drop=Drop("top1", 6.0, 0.2, 15.0))))
    comp = [_trained(state, p25, 2.8, high=2.0, best=183, steps=183), out_screened, dominated]
    out = _continued(state, ctx, comp)
    assert [(c.plan.parent_id, c.status) for c in out] == \
        [(p50.id, Status.PLANNED), (p25.id, Status.SKIPPED)]


def test_the_continuation_is_cut_to_the_room_the_time_budget_leaves(tmp_path):
    ctx, state, (p25, p50, _) = _planned(tmp_path)
    comp = [_trained(state, p25, 3.0, high=1.5, best=400),
            _trained(state, p50, 2.0, high=3.0, best=400)]
    cut = _continued(state, ctx, comp, room_s=50.0)          # pooled 180 s, room 50 s
    assert cut[0].status is Status.PLANNED
    assert cut[0].plan.recipe[2].options["seconds"] == 50.0
    short = _continued(state, ctx, comp, room_s=20.0)        # under 45 / 2 s
    assert [c.status for c in short] == [Status.SKIPPED, Status.SKIPPED]
    assert "leaves 20 s of training" in short[0].reason and "22.5 s" in short[0].reason


def _evaluator(tmp_path, budget_s):
    config = OptimizeConfig(model="m", out=str(tmp_path), time_budget_s=budget_s,
                            final_rounds=1)
    journal = Journal(tmp_path / "journal.jsonl")
    state = RunState(config, tmp_path, None, _ctx(), {"screen_n": 8, "eval_n": 8,
                                                      "calib_n": 8},
                     clock=SearchClock.from_journal(list(journal.read())))
    return Evaluator(state, journal, None, lambda event: None)


def test_the_training_room_is_what_the_budget_leaves_and_a_resume_replays_it(tmp_path):
    """Budget 1000 s, 300 s elapsed, no baseline (no final reserve): 700 s.
    A measured candidate that built in 80 s of which 60 s trained, evaluated in 5 s and
    timed in 7 s has a tail of 32 s; two evaluations to come leave 700 - 64 s."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("screen", "x", {"status": "ok", "elapsed_s": 300.0})
    assert _evaluator(tmp_path / "none", None).training_room_s("continued", 2) is None
    ev = _evaluator(tmp_path, 1000.0)
    cand = Candidate(Plan("c", "pruned", "c", (Step("prune_channels", {"ratio": 0.5}),
                                               Step("distill", {"seconds": 60.0})),
                          "torch", "fp32"), status=Status.OK,
                     screen=Screen(build_s=80.0),
                     full=FullEval(drop=Drop("top1", 0.0, -0.1, 0.1), fidelity=None,
                                   latency=Latency(p50=1.0), eval_s=5.0, latency_wall_s=7.0))
    ev.state.put(cand)
    assert ev.tail_s() == pytest.approx(32.0)
    reserve = ev.final_reserve_s()
    room = ev.training_room_s("continued", 2)
    assert room == pytest.approx(1000 - reserve - ev.state.elapsed() - 64.0, abs=0.2)
    assert reserve == 0.0 and room == pytest.approx(700 - 64.0, abs=0.2)  # no baseline yet
    again = _evaluator(tmp_path, 1000.0)                     # resumed later: the same room
    journal.append("screen", "y", {"status": "ok", "elapsed_s": 600.0})
    assert _evaluator(tmp_path, 1000.0).training_room_s("continued", 2) == room
    assert again.journal.get("room", "continued")["room_s"] == room


def test_the_time_budget_counts_only_the_training_a_build_would_run():
    first = Candidate(Plan("a", "pruned", "a", (Step("prune_channels", {"ratio": 0.5}),
                                                Step("distill", {"seconds": 60.0}),
                                                Step("fold_bn")), "torch", "fp32"))
    more = Candidate(Plan("b", "continued", "b", (*first.plan.recipe[:2],
                                                   Step("distill", {"seconds": 150.0}),
                                                   Step("fold_bn")), "torch", "fp32"))
    import json

    done = {json.dumps([s.to_json() for s in first.plan.recipe[:2]], sort_keys=True)}
    assert _untrained_s(first, set()) == 60.0 and _untrained_s(first, done) is None
    assert _untrained_s(more, set()) == pytest.approx(210.0)
    assert _untrained_s(more, done) == pytest.approx(150.0)
    plain = Candidate(Plan("c", "fused", "c", (Step("fold_bn"),), "torch", "fp32"))
    assert _untrained_s(plain, set()) is None


def test_the_room_keeps_a_training_builds_own_overhead(tmp_path):
    """Budget 1000 s, 300 s elapsed, no baseline. Three builds that trained 45 s each took
    111.7 s (60 s of it computing the teacher's outputs), 55.4 s and 59.9 s: overheads
    6.7, 10.4 and 14.9 s, median 10.4. A build whose training came from the run's cache and
    one that trains nothing add no overhead figure. No candidate is fully measured, so the
    tail is 0: the room is 700 - 10.4 s."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("screen", "x", {"status": "ok", "elapsed_s": 300.0})
    ev = _evaluator(tmp_path, 1000.0)
    recipe = (Step("prune_channels", {"ratio": 0.5}), Step("distill", {"seconds": 45.0}),
              Step("fold_bn"))

    def built(cid, build_s, distill_details, steps=recipe):
        passes = (PassReport("prune_channels", True), PassReport("distill", True,
                                                                 details=distill_details),
                  PassReport("fold_bn", True))[:len(steps)]
        if len(steps) == 1:
            passes = (PassReport(steps[0].pass_name, True),)
        ev.state.put(Candidate(Plan(cid, "pruned", cid, steps, "torch", "fp32"),
                               status=Status.SCREENED_OUT, screen=Screen(build_s=build_s,
                                                                         passes=passes)))

    built("a", 111.7, {"teacher_s": 60.0})
    built("b", 55.4, {"teacher_s": 0.01})
    built("c", 59.9, {"teacher_s": 0.0})
    built("cached", 8.8, {"cache": "trained once"})
    built("int8", 7.0, {}, steps=(Step("int8_static"),))
    assert ev.training_overhead_s() == pytest.approx(10.39, abs=0.02)
    assert ev.tail_s() == 0.0
    assert ev.training_room_s("continued", 3) == pytest.approx(700 - 10.4, abs=0.1)
    assert ev.journal.get("room", "continued")["overhead_s"] == pytest.approx(10.4)
