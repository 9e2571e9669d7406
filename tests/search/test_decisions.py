"""Decisions optimize must not get wrong (issue: trustworthy decisions).

* A recipe step that changes numbers and did not apply makes the candidate skipped with
  the pass's own reason (the real pass reports, from `apply_passes` on a tiny model).
* An exact rewrite that found nothing to do keeps the candidate, labelled so.
* The precision a candidate is reported as is what the artifact runs in.
* The search clock and the time budget's decisions survive a resume.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch
from torch import nn

from infertune.config import OptimizeConfig
from infertune.data.dataset import Dataset
from infertune.data.preprocess import resolve_preprocess
from infertune.passes import PassContext, apply_passes
from infertune.search import space
from infertune.search.candidate import Candidate, Plan, Screen, Status, Step
from infertune.search.engine import Evaluator, _label_with_noops
from infertune.search.journal import Journal
from infertune.search.state import RunState, SearchClock
from infertune.search.precision import mismatch, ran_precision
from infertune.search.worker import mark_noops, not_applied
from infertune.types import InputSpec, ModelHandle


def _tiny(bn: bool = True) -> ModelHandle:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), *( [nn.BatchNorm2d(8)] if bn else []), nn.ReLU(),
              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)]
    return ModelHandle(format="torch", obj=nn.Sequential(*layers).eval(),
                       input_spec=InputSpec(shape=("batch", 3, 8, 8)), name="tiny", source="tiny")


def _ctx(tmp_path) -> PassContext:
    x = np.random.default_rng(0).normal(size=(16, 3, 8, 8)).astype(np.float32)
    calib = Dataset(x=x, y=None, class_names=[], description="seeded normal images",
                    preprocess=resolve_preprocess("none"))
    return PassContext(workdir=tmp_path / "work", calibration=calib, reference=None, seed=0)


def _reports(tmp_path, steps, model=None):
    _, reports = apply_passes(model or _tiny(), steps, _ctx(tmp_path))
    return mark_noops(reports)


def test_mixed_precision_keeping_every_layer_skips_the_candidate(tmp_path):
    reports = _reports(tmp_path, [("mixed_precision", {"keep": "5"})])   # 2 weighted layers
    why = not_applied(reports)
    assert why and why.startswith("mixed_precision did not apply") and "nothing to quantize" in why


def test_nncf_missing_skips_the_candidate(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)          # as if nncf were not installed
    reports = _reports(tmp_path, [("int8_static", {"engine": "nncf"})])
    why = not_applied(reports)
    assert why and why.startswith("int8_static did not apply") and "nncf" in why.lower()


def test_failed_pt2e_skips_the_candidate(tmp_path, monkeypatch):
    from infertune.passes import _torch_quant

    def broken(*args, **kwargs):
        raise RuntimeError("capture failed")

    monkeypatch.setattr(torch.export, "export", broken)
    reports = _reports(tmp_path, [("int8_static", {"engine": "torch"})])
    why = not_applied(reports)
    assert why and why.startswith("int8_static did not apply"), reports
    assert _torch_quant  # the engine module the pass used


def test_pruning_that_removes_nothing_skips_the_candidate(tmp_path):
    reports = _reports(tmp_path, [("prune_channels", {"ratio": 0.0})])
    assert not_applied(reports) == "prune_channels did not apply: ratio=0: nothing to remove"


def test_an_exact_rewrite_with_nothing_to_do_keeps_the_candidate(tmp_path):
    reports = _reports(tmp_path, [("fold_bn", {})], model=_tiny(bn=False))
    assert not_applied(reports) is None
    assert reports[0]["applied"] is False and reports[0]["exact_noop"] is True
    from infertune.search.candidate import PassReport

    plan = Plan("x", "fused", "fold_bn → onnxruntime", (Step("fold_bn"),), "onnxruntime", "fp32")
    screen = Screen(passes=tuple(PassReport.from_json(r) for r in reports))
    assert _label_with_noops(Candidate(plan), screen) == "fold_bn (nothing to do) → onnxruntime"


def test_precision_is_read_from_the_artifact(tmp_path):
    from infertune.export import export_onnx

    model = _tiny()
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(model, fp32)
    assert ran_precision("onnxruntime", str(fp32), "int8")[0] == "fp32"
    assert mismatch("int8", "fp32") == "int8 was asked for, but the built artifact runs in fp32"
    from infertune.passes import PASSES  # noqa: F401  (registers the passes)

    handle = ModelHandle(format="onnx", path=str(fp32), input_spec=model.input_spec, name="t",
                         source="t")
    out, _ = apply_passes(handle, [("int8_static", {"engine": "ort"})], _ctx(tmp_path))
    ran, note = ran_precision("onnxruntime", str(out.path), "int8")
    assert ran == "int8" and "QuantizeLinear" in note
    assert mismatch("int8", "int8") is None and mismatch("fp32", "int8") is None


def test_mixed_precision_plan_stops_below_the_layer_count():
    ctx = space.PlanContext(model_key={"source": "m"}, model_format="onnx",
                            runtimes=("onnxruntime",), registered_passes=frozenset(
                                {"fold_bn", "int8_static", "mixed_precision"}))
    int8 = space.make(ctx, "quantized", [space.step("fold_bn"),
                                         space.step("int8_static", engine="ort")],
                      "onnxruntime", "int8")
    planned = [c.plan.recipe[-1].options for c in space.mixed(ctx, int8, n_layers=3)]
    # sensitivity-ranked K=1, 2 and the cost-ranked K=2 on the INT8 candidate's runtime
    assert [(o["keep"], o.get("rank", "sensitivity")) for o in planned] == \
        [("1", "sensitivity"), ("2", "sensitivity"), ("2", "cost")]
    assert planned[-1]["cost_runtime"] == "onnxruntime"


def test_mixed_precision_ranks_by_cost_only_where_a_layer_profile_can_be_read():
    ctx = space.PlanContext(model_key={"source": "m"}, model_format="onnx",
                            runtimes=("onnxruntime", "openvino"), registered_passes=frozenset(
                                {"int8_static", "mixed_precision"}))

    def ranks(engine, runtime):
        int8 = space.make(ctx, "quantized", [space.step("int8_static", engine=engine)],
                          runtime, "int8")
        return {(o.get("rank", "sensitivity"), o.get("cost_runtime"))
                for o in (c.plan.recipe[-1].options for c in space.mixed(ctx, int8, 20))}

    assert ranks("nncf", "openvino") == {("sensitivity", None), ("cost", "openvino")}
    assert ranks("ort", "openvino") == {("sensitivity", None), ("cost", "openvino")}
    # a QDQ model run by another runtime: its layers cannot be timed, sensitivity only
    assert ranks("ort", "torch") == {("sensitivity", None)}


def test_mixed_precision_starts_from_the_least_hurt_of_the_nearly_fastest_int8():
    from infertune.search.candidate import Drop, Screen
    from infertune.search.run import mixed_parents

    ctx = space.PlanContext(model_key={"source": "m"}, model_format="onnx",
                            runtimes=("openvino",), registered_passes=frozenset(
                                {"int8_static"}))

    def int8(method, probe_ms, drop):
        cand = space.make(ctx, "quantized", [space.step("int8_static", engine="nncf",
                                                        method=method)], "openvino", "int8")
        return dataclasses.replace(cand, screen=Screen(
            probe_ms=probe_ms, drop=Drop(metric="agreement", value=drop, low=drop - 3,
                                         high=drop + 3)))

    mean = int8("mean_minmax", 1.00, 46.9)      # fastest, hurt most
    minmax = int8("minmax", 1.10, 15.6)         # within 25% of the fastest
    slow = int8("percentile", 1.40, 0.5)        # hurt least, but > 25% slower
    assert [c.plan.recipe[-1].options["method"] for c in mixed_parents([mean, slow, minmax])] \
        == ["minmax", "mean_minmax", "percentile"]


# ------------------------------------------------------------------ the time budget
class _NoExecutor:
    def describe(self):
        return {"executor": "none"}


def _search(tmp_path, journal, budget_s):
    config = OptimizeConfig(model="ref-small", out=str(tmp_path), time_budget_s=budget_s,
                            final_rounds=1)
    ctx = space.PlanContext(model_key={"source": "ref-small"}, model_format="torch",
                            runtimes=("torch",))
    state = RunState(config, tmp_path, None, ctx, {"screen_n": 8, "eval_n": 8, "calib_n": 8},
                     clock=SearchClock.from_journal(list(journal.read())))
    return Evaluator(state, journal, _NoExecutor(), lambda event: None)


def test_the_search_clock_and_budget_survive_a_resume(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("screen", "a", {"status": "ok", "elapsed_s": 400.0})
    first = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=1000)
    assert first.state.elapsed() >= 400.0           # continues, does not restart at 0
    assert not first.out_of_time()
    over = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=300)
    assert over.out_of_time() and over.state.stopped_by_budget
    cand = over.not_tried(Candidate(Plan("b", "fused", "b", (), "torch", "fp32")), "screen")
    assert cand.status is Status.NOT_TRIED
    # A resumed run (same budget) is stopped from the start and replays the decision.
    again = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=300)
    assert again.state.stopped_by_budget
    replayed = again._replay_screen(Candidate(Plan("b", "fused", "b", (), "torch", "fp32")))
    assert replayed.status is Status.NOT_TRIED and "time budget" in replayed.reason


def test_candidate_json_round_trip():
    from infertune.search.candidate import Drop, FullEval, Latency

    d = Drop("top1", 0.5, -0.2, 1.2, 500, "Tango", 0.5, 1, 3, 98.0, 97.5)
    c = Candidate(Plan("i", "quantized", "x → onnxruntime", (Step("int8_static", {"method": "minmax"}),),
                       "onnxruntime", "int8", parent_id="p"),
                  Status.OK, screen=Screen(build_s=1.0, artifact_path="/a", artifact_bytes=2048,
                                           drop=d, probe_ms=1.5, ran_precision="int8"),
                  full=FullEval(drop=d, fidelity=None, latency=Latency(p50=1.25, n=10),
                                samples_ms=(1.0, 1.5)))
    back = Candidate.from_json(c.to_json())
    assert back == c
    assert back.precision == "int8" and back.p50_ms == 1.25 and back.size_mb == 2048 / 2**20


def test_data_auto_is_the_models_own_built_in_set():
    from infertune.load import load_model
    from infertune.search.rundata import resolve_data

    assert resolve_data("auto", load_model("ref-small")) == "sample"
    assert resolve_data("auto", load_model("darknet19", input_size=(32, 32))) == "sample"
    assert resolve_data("photos", load_model("ref-small")) == "photos"
    fake = ModelHandle(format="onnx", path="m.onnx", input_spec=InputSpec(shape=(1, 3, 8, 8)),
                       name="m", source="m", meta={"default_data": "photos"})
    assert resolve_data("auto", fake) == "photos"


def _measured(cid: str, p50_ms: float, wall_s: float | None) -> Candidate:
    from infertune.search.candidate import Drop, FullEval, Latency

    full = FullEval(drop=Drop("top1", 0.0, -0.1, 0.1), fidelity=None,
                    latency=Latency(p50=p50_ms), latency_wall_s=wall_s)
    return Candidate(Plan(cid, "fused", cid, (), "torch", "fp32"), status=Status.OK, full=full)


def test_the_final_reserve_grows_with_the_load_the_run_measured(tmp_path):
    """Hand-worked: min_runs 50 and min_seconds 1 (config defaults read below); a 10 ms
    p50 gives an estimate of 6 s (child start) + max(1, 50 × 0.01) = 7 s per measurement."""
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=1000)
    c = ev.config
    per = 6.0 + max(c.min_seconds, c.min_runs * 0.010)
    ev.state.put(_measured("a", 10.0, wall_s=None))  # an old journal: no wall time
    assert ev.load_factor() == 1.0
    ev.state.put(_measured("a", 10.0, wall_s=3 * per))
    ev.state.put(_measured("b", 10.0, wall_s=2 * per))
    ev.state.put(_measured("c", 10.0, wall_s=0.5 * per))  # faster than estimated: ≥ 1 kept
    assert ev.load_factor() == pytest.approx(2.0)  # the median of 3, 2, 0.5
    ev.state.put(_measured("a", 10.0, wall_s=0.5 * per))
    ev.state.put(_measured("b", 10.0, wall_s=0.5 * per))
    assert ev.load_factor() == 1.0


def test_the_final_reserve_is_each_contenders_own_measurement_time(tmp_path):
    """The baseline and the 3 fastest measured candidates, each as long as its own full
    latency measurement took; one without a recorded time (an old journal) by the estimate
    × load factor. final_rounds is 1 here (`_search`)."""
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=1000)
    c = ev.config
    ev.state.baseline = ev.state.put(_measured("base", 14.0, wall_s=6.1))
    for cid, p50, wall in (("a", 0.9, 2.5), ("b", 1.1, 2.4), ("c", 2.4, 2.6), ("d", 9.0, 30.0)):
        ev.state.put(_measured(cid, p50, wall_s=wall))
    assert ev.final_reserve_s() == pytest.approx(6.1 + 2.5 + 2.4 + 2.6)  # "d" is 4th fastest
    ev.state.put(_measured("b", 1.1, wall_s=None))
    estimate = 6.0 + max(c.min_seconds, c.min_runs * 0.0011)
    assert ev.final_reserve_s() == pytest.approx(6.1 + 2.5 + estimate * ev.load_factor() + 2.6)


def test_a_spent_budget_still_screens_out_what_the_rules_discard(tmp_path):
    """Once the time budget is spent, a screened candidate a fully measured one dominates
    (probe 20 ms vs 10 ms, same drop and size) is screened out with its rule: deciding that
    costs nothing. Only one that would need the full evaluation (probe 11 ms: within 25%)
    is not tried."""
    from infertune.search.candidate import Drop

    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("screen", "x", {"status": "ok", "elapsed_s": 400.0})
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=300)
    fast = _measured("fast", 10.0, None)
    ev.state.put(fast.with_(screen=Screen(artifact_bytes=1 << 20)))

    def screened(cid: str, probe_ms: float) -> Candidate:
        screen = Screen(artifact_path=f"/x/{cid}", artifact_bytes=1 << 20, probe_ms=probe_ms,
                        drop=Drop("top1", 0.0, 0.0, 0.5))
        return ev.state.put(Candidate(Plan(cid, "fused", cid, (), "torch", "fp32"),
                                      status=Status.SCREENED, screen=screen))

    ev.full_all([screened("slow", 20.0), screened("close", 11.0)])
    slow, close = ev.state.records["slow"], ev.state.records["close"]
    assert slow.status is Status.SCREENED_OUT and slow.screen_rule == "dominated"
    assert close.status is Status.NOT_TRIED and "time budget" in close.reason


def _wide(ev, cid: str, probe_ms: float) -> Candidate:
    """A screened FP32 candidate whose screening drop has a labelled run's wide interval
    (64 images, no discordant pair: [-5.7, +5.7]), so no measured rival can dominate it."""
    from infertune.search.candidate import Drop

    screen = Screen(artifact_path=f"/x/{cid}", artifact_bytes=1 << 20, probe_ms=probe_ms,
                    drop=Drop("top1", 0.0, -5.7, 5.7))
    return ev.state.put(Candidate(Plan(cid, "fused", cid, (), "torch", "fp32"),
                                  status=Status.SCREENED, screen=screen))


def test_under_a_time_budget_what_cannot_be_the_pick_is_evaluated_last(tmp_path, monkeypatch):
    """A fully measured rival within budget at 10 ms: a 20 ms probe (beyond the 25% margin)
    is deferred, an 11 ms one is evaluated now; the deferred one is evaluated by
    full_deferred, and when the budget is spent by then it is not tried, saying why."""
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=10_000)
    ev.state.put(_measured("fast", 10.0, None).with_(screen=Screen(artifact_bytes=1 << 20)))
    evaluated = []
    monkeypatch.setattr(ev, "full_numbers",
                        lambda c: evaluated.append(c.id) or _measured(c.id, 30.0, None))
    ev.full_all([_wide(ev, "slow", 20.0), _wide(ev, "close", 11.0)], defer=True)
    assert evaluated == ["close"] and set(ev.state.deferred) == {"slow"}
    assert ev.state.records["slow"].status is Status.SCREENED
    assert "fast" in ev.state.deferred["slow"]
    ev.full_deferred()
    assert evaluated == ["close", "slow"] and ev.state.records["slow"].measured

    spent = _search(tmp_path / "b", Journal(tmp_path / "b.jsonl"), budget_s=10_000)
    spent.state.put(_measured("fast", 10.0, None).with_(screen=Screen(artifact_bytes=1 << 20)))
    spent.full_all([_wide(spent, "slow", 20.0)], defer=True)
    spent.state.stopped_by_budget = True
    spent.full_deferred()
    slow = spent.state.records["slow"]
    assert slow.status is Status.NOT_TRIED
    assert "time budget" in slow.reason and "cannot be the pick" in slow.reason


def test_without_a_time_budget_nothing_is_deferred(tmp_path, monkeypatch):
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=None)
    ev.state.put(_measured("fast", 10.0, None).with_(screen=Screen(artifact_bytes=1 << 20)))
    monkeypatch.setattr(ev, "full_numbers", lambda c: _measured(c.id, 30.0, None))
    ev.full_all([_wide(ev, "slow", 20.0)], defer=True)
    assert not ev.state.deferred and ev.state.records["slow"].measured


def test_no_pick_says_when_the_time_budget_was_the_cause():
    from types import SimpleNamespace

    from infertune.search.report import _no_pick_reason

    base = _measured("base", 10.0, None)
    untried = Candidate(Plan("q", "quantized", "q", (), "torch", "int8"),
                        status=Status.NOT_TRIED, reason="not tried: the time budget was spent")
    state = SimpleNamespace(baseline=base, stopped_by_budget=True,
                            config=SimpleNamespace(time_budget_s=120.0, confidence=0.95),
                            budget=SimpleNamespace(points=1.0))
    reason = _no_pick_reason(state, [base, untried])
    assert reason.startswith("the time budget (120 s) was spent") and "1 not tried" in reason
    state.stopped_by_budget = False
    assert _no_pick_reason(state, [base, untried]).startswith("no candidate could be built")


class _Recorder:
    """An executor that only records which builds it was asked for."""

    def __init__(self):
        self.built: list[str] = []

    def describe(self):
        return {"executor": "recorder"}

    def run_jobs(self, jobs, timeout_s, on_result=None):
        for i, job in enumerate(jobs):
            self.built.append(job["id"])
            if on_result:
                on_result(i, {"status": "failed", "reason": "not built in this test"})


def _trained(cid: str, seconds: float, ratio: float = 0.25, tail: tuple = ()) -> Candidate:
    recipe = (Step("prune_channels", {"ratio": ratio}), Step("distill", {"seconds": seconds}),
              *tail)
    return Candidate(Plan(cid, "pruned", cid, recipe, "torch", "fp32"))


def test_a_recovery_that_does_not_fit_the_time_budget_is_not_started(tmp_path):
    """Budget 1000 s, 400 s elapsed, no reserve yet (nothing measured): 600 s left. The
    first 400-s recovery fits, a second does not (200 s left); one whose training prefix
    is the first's (the combined stage: the weights come from the run's cache) costs
    nothing and is built."""
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("screen", "x", {"status": "ok", "elapsed_s": 400.0})
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=1000)
    rec = _Recorder()
    ev.executor = rec
    ev.job = lambda cand, kind: {"id": cand.id}
    first, second = _trained("p25", 400.0), _trained("p50", 400.0, ratio=0.5)
    combined = _trained("p25q", 400.0, tail=(Step("int8_static", {"engine": "nncf"}),))
    out = {c.id: c for c in ev.screen_all([first, second, combined])}
    assert rec.built == ["p25", "p25q"]
    assert out["p50"].status is Status.NOT_TRIED
    assert "trains for 400 s" in out["p50"].reason and "leaves 200 s" in out["p50"].reason
    assert out["p25"].status is not Status.NOT_TRIED


def test_recovery_trains_only_a_structure_that_is_faster_alone(tmp_path):
    """The compressed stage probes each structure without recovery first: a structure that
    probed no faster than its FP32 parent keeps its recovery candidate from training (it is
    skipped saying so); a faster one, and one whose bare build has no probe, go ahead."""
    ev = _search(tmp_path, Journal(tmp_path / "journal.jsonl"), budget_s=None)
    ctx = space.PlanContext(model_key={"source": "m"}, model_format="torch",
                            runtimes=("torch",), train_samples=5000,
                            registered_passes=frozenset({"fold_bn", "prune_channels",
                                                         "low_rank", "distill"}))
    parent = ev.state.put(_wide(ev, "fp32", 3.9))               # the FP32 model, probed
    planned = space.compressed(ctx, parent, labelled=True)
    assert [c.plan.stage for c in planned] == ["pruned", "pruned", "decomposed"]
    assert all(c.status is Status.PLANNED for c in planned)
    bare = space.unrecovered(ctx, planned)
    assert [space.structure_of(b) for b in bare] == [space.structure_of(c) for c in planned]
    assert all(s.pass_name not in space.RECOVERY_PASSES for b in bare for s in b.plan.recipe)
    for b, probe in zip(bare, (2.68, None, 4.16)):              # 25% faster; no probe; slower
        ev.state.put(b.with_(status=Status.SCREENED,
                             screen=Screen(artifact_bytes=1 << 20, probe_ms=probe)))
    from infertune.search.run import _worth_recovering

    out = _worth_recovering(ev.state, planned, bare, parent)
    assert [c.status for c in out] == [Status.PLANNED, Status.PLANNED, Status.SKIPPED]
    assert "4.16 ms" in out[2].reason and "3.90 ms" in out[2].reason
    # a skipped plan (too little data) gets no bare probe at all
    few = dataclasses.replace(ctx, train_samples=10)
    assert space.unrecovered(few, space.compressed(few, parent, labelled=True)) == []


def test_the_first_recovery_also_counts_the_teachers_outputs(tmp_path, monkeypatch):
    """The first recovery of a run also computes the teacher's outputs (train_samples ×
    the original's batch-1 p50; then cached): with 205 s left, 1,000 training images and a
    10 ms original, a 100 s recovery needs 110 s and a second one (100 s) no longer fits;
    without a measured original both fit."""
    def fitting(with_baseline: bool) -> list[str]:
        root = tmp_path / str(with_baseline)
        ev = _search(root, Journal(root / "journal.jsonl"), budget_s=1000)
        ev.state.plan_ctx = dataclasses.replace(ev.state.plan_ctx, train_samples=1000)
        if with_baseline:
            ev.state.baseline = ev.state.put(_measured("base", 10.0, None))
        left_s = 205.0
        monkeypatch.setattr(ev.state, "elapsed", lambda: 1000 - ev.final_reserve_s() - left_s)
        cands = [_trained("p25", 100.0), _trained("p50", 100.0, ratio=0.5)]
        return [c.id for c in ev._training_fits(cands)]

    assert fitting(True) == ["p25"]
    assert fitting(False) == ["p25", "p50"]
