"""Multi-fidelity screening: a cheap look at every candidate (fidelity on a few samples, a
short latency probe), then the full evaluation only for those that can still matter. Pure.

The dominance rule compares what the run's objective ranks by: batch-1 p50 (latency),
images/s at the probe's batch (throughput) or artifact size (size).
"""
from __future__ import annotations

from typing import Sequence

from ..metrics.budget import BudgetRule
from ..passes.mixed_precision import kept_float_layers as _kept
from .candidate import Candidate

# A probe is a few calls on a shared machine, where single runs swing by ±15% (SPEC): it must
# be slower by more than that before it counts as slower. 10% screened out NNCF INT8 on
# ref-large by noise alone (0.67 ms probe vs 0.60 ms), though it was as fast in a full run.
PROBE_MARGIN = 0.25

RULES = (
    {"name": "over_budget",
     "text": "discarded when even the lower end of the drop's interval on the screening "
             "samples exceeds the budget: it cannot be within budget on more samples either "
             "(its screening numbers stay in the report)"},
    {"name": "dominated",
     "text": f"discarded when a fully measured candidate is better by more than "
             f"{PROBE_MARGIN:.0%} on the run's objective than its probe (batch-1 p50 for "
             f"latency, images/s for throughput, artifact size for size), no less accurate "
             f"than the lower end of its screening drop, and no larger: it cannot reach the "
             f"Pareto front"},
    {"name": "duplicate",
     "text": "discarded when a fully measured mixed-precision candidate from the same INT8 "
             "recipe on the same runtime kept the same layers in float (the sensitivity "
             "and the cost ranking can choose the same K layers): it is the same model"},
    {"name": "order",
     "text": "survivors are fully evaluated fastest probe first, so the dominance rule sees "
             "the strongest rivals early"},
    {"name": "deferred",
     "text": f"under a time budget, a survivor whose probe a fully measured candidate within "
             f"budget beats by more than {PROBE_MARGIN:.0%} on the run's objective cannot be "
             f"the pick: its full evaluation (for the Pareto front) waits until every stage "
             f"and the runtime configurations have run, and is 'not tried' if the time "
             f"budget is spent by then"},
)


def _beats(other: Candidate, cand: Candidate, objective: str) -> tuple[bool, str]:
    """Whether `other`'s full measurement beats `cand`'s probe by the margin, and how."""
    if objective == "throughput":
        mine = cand.screen.probe_ips
        theirs = max((other.full.throughput_ips or {}).values(), default=None)
        if mine is None or theirs is None:
            return False, ""
        return theirs > mine * (1 + PROBE_MARGIN), f"{theirs:.1f} vs a {mine:.1f} images/s probe"
    if objective == "size":
        return (other.size_mb * (1 + PROBE_MARGIN) < cand.size_mb,
                f"{other.size_mb:.2f} vs {cand.size_mb:.2f} MB")
    mine, theirs = cand.screen.probe_ms, other.p50_ms
    if mine is None or theirs is None:
        return False, ""
    return theirs * (1 + PROBE_MARGIN) < mine, f"{theirs:.2f} ms vs a {mine:.2f} ms probe"


def verdict(cand: Candidate, measured: Sequence[Candidate], rule: BudgetRule,
            objective: str = "latency") -> tuple[str | None, str | None]:
    """(rule name, reason) when `cand` is screened out, else (None, None).

    `cand` carries its screening drop and probe; `measured` are fully evaluated records.
    """
    screen = cand.screen
    drop = screen.drop if screen else None
    if drop and rule.clearly_over(drop.low):
        return "over_budget", (f"screening drop {drop.value:.2f} points (interval "
                               f"{drop.low:.2f} to {drop.high:.2f}, n={drop.n}) is beyond the "
                               f"{rule.points:g}-point budget")
    twin = same_mixed_model(cand, measured)
    if twin is not None:
        return "duplicate", (f"the same model as {twin.id} ({twin.label}): the same INT8 "
                             f"recipe keeping the same {len(kept_float_layers(cand))} "
                             f"layer(s) in float")
    if drop is None or screen.probe_ms is None or cand.size_mb is None:
        return None, None
    for other in measured:
        if other.size_mb is None or other.drop is None:
            continue
        beats, how = _beats(other, cand, objective)
        if beats and other.drop.value <= drop.low and other.size_mb <= cand.size_mb:
            return "dominated", (f"dominated by {other.id} ({other.label}): {how}, drop "
                                 f"{other.drop.value:.2f} ≤ {drop.low:.2f}, "
                                 f"{other.size_mb:.2f} ≤ {cand.size_mb:.2f} MB")
    return None, None


def kept_float_layers(cand: Candidate) -> list[str]:
    """Layers the candidate's mixed_precision step kept in float (its own report)."""
    return next((_kept(p.details) for p in (cand.screen.passes if cand.screen else ())
                 if p.pass_name == "mixed_precision"), [])


# mixed_precision options that choose the kept layers but do not change the model built
# from a given kept set
_RANKING_OPTIONS = ("keep", "rank", "cost_runtime")


def same_mixed_model(cand: Candidate, measured: Sequence[Candidate]) -> Candidate | None:
    """A measured mixed-precision candidate that is `cand`'s model: the same steps before
    mixed_precision, the same quantization options, the same runtime and the same set of
    layers kept in float (found in both pass reports)."""
    kept = set(kept_float_layers(cand))
    if cand.plan.stage != "mixed" or not kept:
        return None

    def recipe(c: Candidate):
        *head, last = c.plan.recipe
        return head, {k: v for k, v in last.options.items() if k not in _RANKING_OPTIONS}

    return next((other for other in measured
                 if other.plan.stage == "mixed" and other.id != cand.id
                 and other.runtime == cand.runtime and recipe(other) == recipe(cand)
                 and set(kept_float_layers(other)) == kept), None)


def outranked(cand: Candidate, measured: Sequence[Candidate], rule: BudgetRule,
              objective: str = "latency") -> str | None:
    """Why `cand` cannot be the pick, or None: a fully measured candidate within budget
    beats its probe by the margin on the run's objective (the pick is the best within
    budget). Unlike `verdict`'s dominance this asks nothing of `cand`'s accuracy: it may
    still belong on the Pareto front, so it is deferred, not discarded."""
    if cand.screen is None or (objective == "size" and cand.size_mb is None):
        return None
    for other in measured:
        if other.drop is None or other.size_mb is None or not rule.within(other.drop.high):
            continue
        beats, how = _beats(other, cand, objective)
        if beats:
            return f"{other.id} ({other.label}), within budget, is faster: {how}"
    return None
