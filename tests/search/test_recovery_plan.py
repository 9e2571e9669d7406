"""How long recovery trains in a search and when compression is planned at all: the rule
in search.space (recovery_seconds, MIN_RECOVERY_STEPS), checked on planned candidates."""
from __future__ import annotations

import pytest

from infertune.config import OptimizeConfig
from infertune.errors import ConfigError
from infertune.passes import PASSES
from infertune.search import space
from infertune.search.candidate import Candidate, Status


@pytest.mark.parametrize("asked, budget_s, expected", [
    (45.0, None, 45.0),        # the user's value always wins
    (45.0, 3600.0, 45.0),
    (None, None, 300.0),       # no time budget
    (None, 900.0, 135.0),      # 15 % of 15 min
    (None, 2700.0, 405.0),
    (None, 120.0, 60.0),       # at least 60 s
    (None, 36000.0, 600.0),    # at most 600 s
])
def test_recovery_seconds(asked, budget_s, expected):
    assert space.recovery_seconds(asked, budget_s) == expected


def _ctx(recovery_s: float, step_s: float | None, passes=None,
         train: int = 4000) -> space.PlanContext:
    return space.PlanContext(model_key={"source": "m"}, model_format="torch",
                             runtimes=("torch", "onnxruntime"),
                             registered_passes=frozenset(PASSES.names()),
                             allowed_passes=frozenset(passes) if passes else None,
                             recovery_seconds=recovery_s, train_step_s=step_s,
                             train_samples=train)


def _fp32(ctx) -> Candidate:
    return space.make(ctx, "fused", space.graph_prefix(ctx), "onnxruntime", "fp32")


def test_compression_is_planned_with_its_first_recovery_time_in_the_recipe():
    # the first of successive halving's two recoveries: RECOVERY_FIRST_SHARE (a third)
    ctx = _ctx(405.0, 0.5)
    cands = space.compressed(ctx, _fp32(ctx), labelled=True)
    assert [c.status for c in cands] == [Status.PLANNED] * len(cands)
    assert len(cands) == len(space.PRUNE_RATIOS) + len(space.LOW_RANK_ENERGY)
    for c in cands:
        distill = [s for s in c.plan.recipe if s.pass_name == "distill"]
        assert len(distill) == 1 and distill[0].options["seconds"] == 135.0


def test_compression_is_skipped_when_recovery_allows_too_few_steps():
    step_s = 2.0  # 60 steps need 120 s
    short = space.compressed(_ctx(119.0, step_s), _fp32(_ctx(119.0, step_s)), labelled=True)
    assert all(c.status is Status.SKIPPED for c in short)
    assert "--recovery-seconds 120" in short[0].reason and "2.0 s" in short[0].reason
    long = space.compressed(_ctx(120.0, step_s), _fp32(_ctx(120.0, step_s)), labelled=True)
    assert all(c.status is Status.PLANNED for c in long)
    forced = _ctx(119.0, step_s, passes=["fold_bn", "prune_channels", "distill"])
    named = space.compressed(forced, _fp32(forced), labelled=True)
    assert [c.status for c in named if "prune_channels" in c.label] == \
        [Status.PLANNED] * len(space.PRUNE_RATIOS)


def test_the_config_takes_auto_or_a_positive_time():
    assert OptimizeConfig(model="m", out="o").recovery_seconds is None
    with pytest.raises(ConfigError, match="recovery seconds"):
        OptimizeConfig(model="m", out="o", recovery_seconds=0)


def test_the_cli_reads_auto_and_durations():
    from infertune.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["optimize", "m"]).recovery_seconds is None
    assert parse(["optimize", "m", "--recovery-seconds", "auto"]).recovery_seconds is None
    assert parse(["optimize", "m", "--recovery-seconds", "10m"]).recovery_seconds == 600.0
    assert parse(["optimize", "m", "--recovery-seconds", "90"]).recovery_seconds == 90.0


def test_compression_is_skipped_with_too_little_training_data():
    few = _ctx(600.0, 0.1, train=128)  # a run on photos: its 128 calibration views
    cands = space.compressed(few, _fp32(few), labelled=False)
    assert all(c.status is Status.SKIPPED for c in cands)
    assert "128 image(s), under 1000" in cands[0].reason
    enough = _ctx(600.0, 0.1, train=space.MIN_RECOVERY_SAMPLES)
    assert all(c.status is Status.PLANNED
               for c in space.compressed(enough, _fp32(enough), labelled=True))
