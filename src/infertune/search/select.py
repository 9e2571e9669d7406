"""Drops with intervals, the pick and the Pareto front. Pure functions over typed candidate
records (search/candidate.py).

A drop is in *points* (percentage points of the metric), baseline minus candidate, measured
on the same samples. With labels the metric is top-1 and the interval is Tango's score
interval for a paired difference (McNemar p-value beside it); without labels the metric is
top-1 agreement with the original model, the drop is the disagreement rate with its Wilson
interval. Whether a drop is within budget is decided in one place: `metrics.budget.BudgetRule`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..metrics.budget import BudgetRule, disagreement_drop, paired_top1_drop
from ..metrics.classification import check_logits_labels
from ..metrics.intervals import cluster_count, design_effect, mcnemar_exact
from .candidate import Candidate, Drop, Status
from .pareto import pareto_front

OBJECTIVES = {"latency": "min", "throughput": "max", "size": "min"}


def drop_top1(base_logits, cand_logits, labels, *, confidence: float = 0.95,
              groups: np.ndarray | None = None) -> Drop:
    """Top-1 drop (points) of the candidate vs the baseline on labelled samples; `groups`
    (a cluster label per sample, or None for independent samples) adjusts the interval
    for clustering (metrics.intervals.design_effect)."""
    base, labels = check_logits_labels(base_logits, labels)
    cand, _ = check_logits_labels(cand_logits, labels)
    base_ok, cand_ok = base.argmax(axis=1) == labels, cand.argmax(axis=1) == labels
    d = paired_top1_drop(base_ok, cand_ok, confidence, groups)
    deff = d.design_effect
    return Drop(metric="top1", value=d.value, low=d.low, high=d.high, n=int(len(labels)),
                method=d.method + "; McNemar exact p-value",
                p_value=mcnemar_exact(round(d.n01 / deff), round(d.n10 / deff)),
                n01=d.n01, n10=d.n10, baseline_pct=100 * float(base_ok.mean()),
                candidate_pct=100 * float(cand_ok.mean()), confidence=confidence,
                design_effect=deff, clusters=d.clusters)


def drop_agreement(base_logits, cand_logits, *, confidence: float = 0.95,
                   groups: np.ndarray | None = None) -> Drop:
    """Disagreement (points) of the candidate's top-1 with the baseline's, Wilson interval
    (adjusted for clustering by `groups` as in `drop_top1`)."""
    base = np.asarray(base_logits).argmax(axis=1)
    cand = np.asarray(cand_logits).argmax(axis=1)
    n = int(len(base))
    differ = int((base != cand).sum())
    deff = design_effect((base != cand).astype(np.int8), groups)
    clusters = None if groups is None else cluster_count(groups, n)
    d = disagreement_drop(n, differ, confidence, deff=deff, clusters=clusters)
    return Drop(metric="agreement", value=d.value, low=d.low, high=d.high, n=n,
                method=d.method, n10=differ, baseline_pct=100.0,
                candidate_pct=100 * (n - differ) / n, confidence=confidence,
                design_effect=deff, clusters=clusters)


def objective_value(cand: Candidate, objective: str) -> float | None:
    """The number the objective ranks by (None when not measured)."""
    if objective == "latency":
        return cand.p50_ms
    if objective == "throughput":
        ips = (cand.full.throughput_ips if cand.full else None) or {}
        return max(ips.values()) if ips else None
    if objective == "size":
        return cand.size_mb
    raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")


def _better_key(cand: Candidate, objective: str) -> tuple:
    value = objective_value(cand, objective)
    sign = -1 if OBJECTIVES[objective] == "max" else 1
    return (sign * value, cand.drop.value, cand.size_mb or 0.0, cand.id)


def pick(cands: Iterable[Candidate], objective: str, rule: BudgetRule) -> Candidate | None:
    """The best objective among fully measured candidates within budget; ties go to the
    smaller drop, then the smaller size, then the id (deterministic)."""
    ok = [c for c in cands if c.measured and rule.within(c.drop.high)
          and objective_value(c, objective) is not None]
    return min(ok, key=lambda c: _better_key(c, objective)) if ok else None


@dataclass(frozen=True)
class RoundsPick:
    """A latency run's pick from the side-by-side rounds.

    Attributes:
        pick: the chosen contender. fastest: the contender with the lowest median p50.
        tied: the contenders within the rounds' noise of `fastest` (itself included), in
            the order the tie-break ranks them; () with one round (no spread to judge by).
    """

    pick: str
    fastest: str
    tied: tuple[str, ...]


TIE_RULE = ("latency objective: the contender with the lowest median p50 in the side-by-side "
            "rounds, unless other contenders' round p50s overlap its own (min–max over the "
            "rounds): then they are within the measurement noise of each other and the data "
            "cannot rank them, so the pick among them is the smaller drop, then the smaller "
            "artifact, then the id; with one round there is no spread and the lowest p50 wins")


def _round_range(row: Mapping[str, Any]) -> tuple[float, float] | None:
    ok = [p for p in row.get("p50_ms_by_round") or () if p is not None]
    return (min(ok), max(ok)) if len(ok) >= 2 else None


def pick_from_rounds(rows: Sequence[Mapping[str, Any]],
                     cands: Mapping[str, Candidate]) -> RoundsPick | None:
    """TIE_RULE over the final comparison's rows of the contenders within budget (each with
    its median `p50_ms` and `p50_ms_by_round`). Why a tie-break and not the lower median:
    a pick that flips with the noise of one run is not a decision the data supports; the
    tie-break's keys (drops, sizes, ids) are exact, so a rerun or a resumed run that sees the
    same tie reaches the same pick."""
    ok = [r for r in rows if r.get("p50_ms") is not None and r["id"] in cands]
    if not ok:
        return None
    fastest = min(ok, key=lambda r: (r["p50_ms"], r["id"]))
    span = _round_range(fastest)
    if span is None:
        return RoundsPick(fastest["id"], fastest["id"], ())
    tied = [r["id"] for r in ok
            if (rng := _round_range(r)) is not None and rng[0] <= span[1] and span[0] <= rng[1]]
    ranked = sorted(tied, key=lambda i: (cands[i].drop.value, cands[i].size_mb or 0.0, i))
    return RoundsPick(ranked[0], fastest["id"], tuple(ranked))


CONFIG_RULE = ("runtime configuration: the default and each configuration of the same "
               "artifact are timed in interleaved rounds (p50 for the latency objective, "
               "images/s for throughput). As for the pick (TIE_RULE), the configurations whose "
               "round ranges (min–max) overlap the best median's are within noise of it; if "
               "the default is among them, or the best median is the default's, the default is "
               "kept. Otherwise the first, in the plan's order, of those tied with the best "
               "whose range does not overlap the default's replaces it: a configuration is "
               "kept only when it measurably wins, and a tie keeps the default")


@dataclass(frozen=True)
class ConfigPick:
    """The configured stage's decision for one contender (CONFIG_RULE).

    Attributes:
        kept: the id kept: the default's (the contender itself) or a configuration's.
        best: the row with the best median (None: no row had two measured rounds).
        tied: the rows within noise of `best` (itself included), in plan order.
        reason: the decision in words, with the ranges that decided it.
    """

    kept: str
    best: str | None
    tied: tuple[str, ...]
    reason: str


def _values_range(values: Sequence[float | None]) -> tuple[float, float] | None:
    ok = [v for v in values if v is not None]
    return (min(ok), max(ok)) if len(ok) >= 2 else None


def pick_configuration(rows: Sequence[Mapping[str, Any]], default_id: str,
                       objective: str = "latency") -> ConfigPick:
    """CONFIG_RULE over `rows` in plan order (the default's first), each {"id",
    "by_round": [value per round, None where that round failed]}; higher is better for
    the throughput objective, lower for latency."""
    higher = objective == "throughput"
    unit = "images/s" if higher else "ms"
    ranges = {r["id"]: _values_range(r.get("by_round") or ()) for r in rows}
    ranged = [r for r in rows if ranges[r["id"]] is not None]
    if ranges.get(default_id) is None:
        return ConfigPick(default_id, None, (), "the default configuration has fewer than 2 "
                          "measured rounds: nothing to compare with, so it is kept")
    order = {r["id"]: i for i, r in enumerate(rows)}

    def median(row):
        return float(np.median([v for v in row["by_round"] if v is not None]))

    sign = -1.0 if higher else 1.0
    best = min(ranged, key=lambda r: (sign * median(r), order[r["id"]]))
    span = ranges[best["id"]]

    def overlaps(a, b):
        return a[0] <= b[1] and b[0] <= a[1]

    tied = tuple(r["id"] for r in ranged if overlaps(ranges[r["id"]], span))
    fmt = lambda rng: f"{rng[0]:.4g}–{rng[1]:.4g} {unit}"  # noqa: E731
    default_rng = ranges[default_id]
    if best["id"] == default_id:
        return ConfigPick(default_id, default_id, tied, f"the default has the best median "
                          f"({fmt(default_rng)}): it is kept")
    if default_id in tied:
        return ConfigPick(default_id, best["id"], tied,
                          f"the best configuration ({fmt(span)}) overlaps the default "
                          f"({fmt(default_rng)}): within noise, the default is kept")
    eligible = [i for i in tied if not overlaps(ranges[i], default_rng)]
    kept = min(eligible, key=order.__getitem__)
    return ConfigPick(kept, best["id"], tied,
                      f"{fmt(ranges[kept])} against the default's {fmt(default_rng)}, no "
                      "overlap: it measurably wins and replaces the default")


def closest(cands: Iterable[Candidate], k: int = 3) -> list[Candidate]:
    """When nothing meets the budget: the k candidates whose drop's upper end is smallest."""
    judged = [c for c in cands if c.drop and c.status in (Status.OK, Status.SCREENED_OUT)]
    return sorted(judged, key=lambda c: (c.drop.high, c.id))[:k]


def front_points(cands: Sequence[Candidate], objective: str) -> tuple[list[Candidate], list]:
    """The candidates that can be placed (objective, drop and size known) and their points."""
    placed = [c for c in cands if c.status in (Status.OK, Status.SCREENED_OUT) and c.drop
              and objective_value(c, objective) is not None and c.size_mb is not None]
    points = [(objective_value(c, objective), c.drop.value, c.size_mb) for c in placed]
    return placed, points


def frontier(cands: Sequence[Candidate], objective: str) -> list[str]:
    """Ids on the Pareto front over (objective, drop, size)."""
    placed, points = front_points(cands, objective)
    idx = pareto_front(points, (OBJECTIVES[objective], "min", "min"))
    return [placed[i].id for i in idx]
