"""The pure parts of optimize: Pareto front, drops and the budget, the pick, ids, screening,
config. Hand-worked cases; no framework."""
import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest

from infertune.config import OptimizeConfig
from infertune.errors import ConfigError
from infertune.metrics.budget import BudgetRule
from infertune.search import screening, select
from infertune.search.candidate import (Candidate, Drop, FullEval, Latency, PassReport, Plan,
                                        Screen, Status, Step)
from infertune.search.ids import candidate_id
from infertune.search.pareto import dominates, pareto_front


# ------------------------------------------------------------------ Pareto
def test_front_two_minimised_objectives():
    pts = [(1, 5), (2, 2), (3, 1), (3, 3), (4, 4)]
    assert pareto_front(pts, ("min", "min")) == [0, 1, 2]


def test_front_keeps_ties_and_equal_points():
    pts = [(1, 1), (1, 1), (2, 0.5), (2, 2)]
    assert pareto_front(pts, ("min", "min")) == [0, 1, 2]


def test_front_mixed_directions():
    # throughput (max) vs drop (min): (100, 1) and (80, 0) trade off; (90, 1) is dominated.
    pts = [(100, 1.0), (90, 1.0), (80, 0.0), (70, 0.5)]
    assert pareto_front(pts, ("max", "min")) == [0, 2]


def test_front_single_point_and_three_objectives():
    assert pareto_front([(5, 5, 5)], ("min", "min", "min")) == [0]
    pts = [(1, 1, 9), (1, 1, 1), (2, 0, 1)]
    assert pareto_front(pts, ("min", "min", "min")) == [1, 2]


def test_dominates_needs_strictly_better_somewhere():
    assert not dominates((1, 1), (1, 1), ("min", "min"))
    assert dominates((1, 1), (1, 2), ("min", "min"))
    with pytest.raises(ValueError):
        pareto_front([(1, 2)], ("min", "up"))


# ------------------------------------------------------------------ drops and budget
def _logits(pred, k=4):
    out = np.zeros((len(pred), k), dtype=np.float32)
    out[np.arange(len(pred)), pred] = 1.0
    return out


def test_drop_top1_counts_and_sign():
    labels = np.array([0, 1, 2, 3] * 25)
    base = labels.copy()                      # 100% right
    cand = labels.copy()
    cand[:3] = (cand[:3] + 1) % 4             # 3 wrong: top-1 97%
    d = select.drop_top1(_logits(base), _logits(cand), labels)
    assert d.value == pytest.approx(3.0)      # points
    assert d.n10 == 3 and d.n01 == 0 and d.n == 100
    assert d.low <= 3.0 <= d.high
    assert d.baseline_pct == 100 and d.candidate_pct == 97
    assert "Tango" in d.method


def test_drop_top1_with_no_discordant_pairs_is_not_zero_width():
    """50 samples, the same answers: the interval is not [0, 0] (the bootstrap's was)."""
    labels = np.array([0, 1, 2, 3, 0] * 10)
    d = select.drop_top1(_logits(labels), _logits(labels), labels)
    z2 = 1.959963984540054 ** 2
    assert d.value == 0.0
    assert d.high == pytest.approx(100 * z2 / (50 + z2), rel=1e-6)   # 7.13 points
    assert BudgetRule(0.5).within(d.high) is False


def test_drop_agreement_is_disagreement_with_wilson_interval():
    base = np.array([0, 1, 2, 3] * 50)
    cand = base.copy()
    cand[:4] = (cand[:4] + 1) % 4             # 4 of 200 disagree
    d = select.drop_agreement(_logits(base), _logits(cand))
    assert d.value == pytest.approx(2.0)
    # Wilson 95% for 4/200, computed independently.
    z, n, p = 1.959963984540054, 200, 0.02
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert d.low == pytest.approx(100 * (centre - half), rel=1e-6)
    assert d.high == pytest.approx(100 * (centre + half), rel=1e-6)


def test_budget_uses_the_upper_end_of_the_interval():
    assert BudgetRule(1.0).within(1.2) is False      # point estimate inside, bound outside
    assert BudgetRule(1.2).within(1.2) is True
    assert BudgetRule(1.0).within(None) is None
    assert BudgetRule(1.0).clearly_over(1.01) and not BudgetRule(1.0).clearly_over(0.9)


def test_relative_budget_is_a_share_of_the_baseline():
    assert BudgetRule.from_option(1.0, "absolute", 80.0).points == 1.0
    assert BudgetRule.from_option(2.0, "relative", 80.0).points == pytest.approx(1.6)
    with pytest.raises(ConfigError):
        BudgetRule(-1.0)


def _cand(cid, p50, drop, size=1.0, status=Status.OK, probe=None, ips=None):
    plan = Plan(cid, "quantized", cid, (), "onnxruntime", "int8")
    d = Drop("top1", drop, drop - 1, drop + 0.5, 100, "test")
    screen = Screen(artifact_path=f"/x/{cid}", artifact_bytes=int(size * 2**20), drop=d,
                    probe_ms=probe, probe_ips=ips)
    full = FullEval(drop=d, fidelity=None, latency=Latency(p50=p50),
                    throughput_ips={"1": 1000 / p50}) if probe is None else None
    return Candidate(plan, status if probe is None else Status.SCREENED, screen=screen, full=full)


def test_pick_is_fastest_within_budget_with_deterministic_ties():
    rule = BudgetRule(1.0)
    cands = [_cand("a", 10, 0.1), _cand("b", 5, 0.6), _cand("c", 7, 0.3),
             _cand("d", 7, 0.1), _cand("e", 1, 0.0, status=Status.FAILED)]
    assert select.pick(cands, "latency", rule).id == "d"     # b over budget; ties → smaller drop
    assert select.pick(cands, "throughput", rule).id == "d"
    assert select.pick(cands, "size", rule).id == "a"        # all 1.0 MB → smaller drop, then id
    assert select.pick([_cand("x", 1, 5)], "latency", rule) is None


def _row(cid, rounds):
    return {"id": cid, "p50_ms": sorted(rounds)[len(rounds) // 2], "p50_ms_by_round": rounds}


def test_rounds_pick_breaks_a_speed_tie_by_drop_then_size_then_id():
    cands = {"a": _cand("a", 10, 0.6, 2.0), "b": _cand("b", 10, 0.2, 2.0),
             "c": _cand("c", 10, 0.2, 1.0), "d": _cand("d", 10, 0.0, 1.0)}
    # a: lowest median (10.0); b and c overlap a's 9.8–10.4 range; d (11–12 ms) does not
    rows = [_row("a", [9.8, 10.0, 10.4]), _row("b", [10.3, 10.5, 10.9]),
            _row("c", [10.1, 10.6, 10.8]), _row("d", [11.0, 11.5, 12.0])]
    got = select.pick_from_rounds(rows, cands)
    assert (got.pick, got.fastest, got.tied) == ("c", "a", ("c", "b", "a"))
    # the same rows in another order: the same decision
    assert select.pick_from_rounds(rows[::-1], cands) == got
    # separated ranges: the fastest wins whatever its drop
    rows[1]["p50_ms_by_round"] = rows[2]["p50_ms_by_round"] = [10.5, 10.6, 10.7]
    got = select.pick_from_rounds(rows, cands)
    assert (got.pick, got.tied) == ("a", ("a",))


def test_rounds_pick_with_one_round_is_the_lowest_p50_and_ignores_other_rows():
    cands = {"a": _cand("a", 10, 0.6), "b": _cand("b", 10, 0.0)}
    rows = [_row("a", [9.0]), _row("b", [9.1]), _row("base", [20.0])]
    got = select.pick_from_rounds(rows, cands)
    assert (got.pick, got.fastest, got.tied) == ("a", "a", ())
    assert select.pick_from_rounds([_row("base", [1.0])], cands) is None


def test_closest_when_nothing_meets_the_budget():
    cands = [_cand("a", 1, 3.0), _cand("b", 1, 2.0), _cand("c", 1, 9.0)]
    assert [c.id for c in select.closest(cands, 2)] == ["b", "a"]


def test_frontier_over_objective_drop_and_size():
    cands = [_cand("fast", 1, 5.0, 1.0), _cand("acc", 10, 0.0, 1.0), _cand("bad", 11, 1.0, 2.0),
             _cand("small", 20, 0.0, 0.1)]
    assert select.frontier(cands, "latency") == ["fast", "acc", "small"]


# ------------------------------------------------------------------ ids
def test_candidate_id_is_a_stable_content_hash():
    model = {"source": "ref-small", "load": {}, "input_size": None}
    recipe = [{"pass": "fold_bn", "options": {}}]
    text = json.dumps({"model": model, "recipe": recipe, "runtime": "onnxruntime"},
                      sort_keys=True, separators=(",", ":"))
    assert candidate_id(model, recipe, "onnxruntime") == hashlib.sha256(text.encode()).hexdigest()[:12]
    # key order does not matter; options and runtime do
    assert candidate_id({"input_size": None, "load": {}, "source": "ref-small"}, recipe,
                        "onnxruntime") == candidate_id(model, recipe, "onnxruntime")
    assert candidate_id(model, recipe, "openvino") != candidate_id(model, recipe, "onnxruntime")
    other = [{"pass": "fold_bn", "options": {"x": 1}}]
    assert candidate_id(model, other, "onnxruntime") != candidate_id(model, recipe, "onnxruntime")


# ------------------------------------------------------------------ screening
def _screened(value, low, high, probe=1.0, size=1.0, ips=None):
    plan = Plan("s", "quantized", "s", (), "onnxruntime", "int8")
    screen = Screen(artifact_path="/x/s", artifact_bytes=int(size * 2**20),
                    drop=Drop("top1", value, low, high, 64, "test"), probe_ms=probe,
                    probe_ips=ips)
    return Candidate(plan, Status.SCREENED, screen=screen)


def test_screening_discards_a_candidate_beyond_the_budget():
    rule, why = screening.verdict(_screened(6.0, 2.5, 9.0), [], BudgetRule(1.0))
    assert rule == "over_budget" and "beyond" in why
    assert screening.verdict(_screened(6.0, 0.9, 9.0), [], BudgetRule(1.0)) == (None, None)


def test_screening_discards_a_dominated_candidate_with_a_noise_margin():
    best = _cand("best", 1.0, 0.0, size=0.5)
    rule = BudgetRule(1.0)
    assert screening.verdict(_screened(0.5, 0.0, 1.0, probe=1.2), [best], rule) == (None, None)
    assert screening.verdict(_screened(0.5, 0.0, 1.0, probe=1.3), [best], rule)[0] == "dominated"
    # smaller: cannot be dominated
    assert screening.verdict(_screened(0.5, 0.0, 1.0, probe=1.3, size=0.4), [best],
                             rule) == (None, None)


def test_screening_dominance_follows_the_objective():
    """Under throughput the probe's images/s is compared, not its batch-1 p50."""
    best = _cand("best", 1.0, 0.0, size=0.5)          # 1000 images/s in full
    slow_p50_fast_batch = _screened(0.5, 0.0, 1.0, probe=5.0, ips=900.0)
    rule = BudgetRule(1.0)
    assert screening.verdict(slow_p50_fast_batch, [best], rule, "latency")[0] == "dominated"
    assert screening.verdict(slow_p50_fast_batch, [best], rule, "throughput") == (None, None)
    low_ips = _screened(0.5, 0.0, 1.0, probe=5.0, ips=700.0)   # 1000 > 700 × 1.25
    assert screening.verdict(low_ips, [best], rule, "throughput")[0] == "dominated"


def test_a_candidate_a_faster_one_within_budget_beats_cannot_be_the_pick():
    """outranked asks nothing of the candidate's own (wide) screening interval, only that a
    fully measured rival within budget beats its probe by the 25% margin."""
    best = _cand("best", 1.0, 0.0)                  # drop 0.0, interval [-1.0, +0.5]
    rule = BudgetRule(1.0)
    wide = _screened(0.0, -5.7, 5.7, probe=1.3)     # 64 labelled images: no dominance
    assert screening.verdict(wide, [best], rule) == (None, None)
    assert "best" in screening.outranked(wide, [best], rule)
    assert screening.outranked(_screened(0.0, -5.7, 5.7, probe=1.2), [best], rule) is None
    over = _cand("over", 1.0, 0.8)                  # upper end 1.3 > 1 point: not a rival
    assert screening.outranked(wide, [over], rule) is None
    # the objective decides "faster": at throughput the probe's images/s is compared
    fast_batch = _screened(0.0, -5.7, 5.7, probe=5.0, ips=900.0)
    assert screening.outranked(fast_batch, [best], rule, "latency") is not None
    assert screening.outranked(fast_batch, [best], rule, "throughput") is None


# ------------------------------------------------------------------ config
def test_config_rejects_unknown_keys_with_a_hint():
    with pytest.raises(ConfigError, match="did you mean 'max_drop'"):
        OptimizeConfig.from_dict({"model": "m", "out": "o", "max_dorp": 1})
    with pytest.raises(ConfigError, match="objective"):
        OptimizeConfig(model="m", out="o", objective="speed")


def test_config_round_trips_and_lists_differences(tmp_path):
    from infertune.config import load_config, save_config

    c = OptimizeConfig(model="ref-small", out=str(tmp_path), runtimes="onnxruntime,openvino",
                       input_size=(32, 32))
    save_config(c, tmp_path / "config.yaml")
    back = load_config(tmp_path / "config.yaml")
    assert back == c and back.runtimes == ("onnxruntime", "openvino")
    changed = OptimizeConfig(model="ref-small", out="elsewhere", max_drop=2.0,
                             runtimes=("onnxruntime", "openvino"), input_size=(32, 32))
    assert c.differences(changed) == ["max_drop"]


def test_duration_parser():
    import argparse

    from infertune.cli.optimize import parse_duration

    assert parse_duration("15m") == 900 and parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90 and parse_duration("2.5s") == 2.5
    for bad in ("", "15x", "m", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)


def _mixed(cid, kept, *, rank="sensitivity", runtime="openvino", method="minmax", p50=2.0):
    options = {"keep": str(len(kept)), "engine": "nncf", "method": method}
    if rank == "cost":
        options |= {"rank": "cost", "cost_runtime": runtime}
    plan = Plan(cid, "mixed", cid, (Step("fold_bn"), Step("mixed_precision", options)), runtime,
                "mixed", parent_id="int8")
    d = Drop("top1", 0.5, -0.5, 1.5, 100, "test")
    passes = (PassReport("fold_bn", True), PassReport("mixed_precision", True, details={
        "kept_by_choice": list(kept)}))
    screen = Screen(artifact_path=f"/x/{cid}", artifact_bytes=2**20, drop=d, probe_ms=p50,
                    passes=passes)
    full = FullEval(drop=d, fidelity=None, latency=Latency(p50=p50), throughput_ips={})
    return Candidate(plan, Status.OK, screen=screen, full=full)


def test_a_cost_ranked_candidate_keeping_the_same_layers_is_the_same_model():
    """The sensitivity and the cost ranking chose the same two layers (in another order):
    the second is screened out as a duplicate of the measured first. Another kept set,
    another quantizer option or another runtime is another model."""
    first = _mixed("sens2", ["a", "b"])
    twin = dataclasses.replace(_mixed("cost2", ["b", "a"], rank="cost"), status=Status.SCREENED,
                               full=None)
    rule, why = screening.verdict(twin, [first], BudgetRule(1.0))
    assert rule == "duplicate" and "sens2" in why and "2 layer(s)" in why
    for other in (_mixed("cost2", ["a", "c"], rank="cost"),
                  _mixed("cost2", ["a", "b"], rank="cost", method="mean_minmax"),
                  _mixed("cost2", ["a", "b"], rank="cost", runtime="onnxruntime")):
        assert screening.same_mixed_model(other, [first]) is None, other.plan
    assert screening.same_mixed_model(first, [first]) is None   # not its own twin
