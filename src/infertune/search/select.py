"""Drops with intervals, the budget test and the pick. Pure functions over candidate records
(plain dicts shaped as in docs/run-format.md).

A drop is in *points* (percentage points of the metric), baseline minus candidate, measured
on the same samples. With labels the metric is top-1 and the interval is the paired
bootstrap of `metrics.compare` (McNemar p-value beside it). Without labels the metric is
top-1 agreement with the original model, and the drop is the disagreement rate with its
Wilson interval: the baseline agrees with itself on every sample, so the pairing is implicit.
A candidate is within budget only when the interval's upper end is ≤ the budget: a small
evaluation set widens the interval and makes the test stricter, never looser.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

OBJECTIVES = {"latency": "min", "throughput": "max", "size": "min"}
BUDGET_RULE = ("within budget when the upper end of the drop's two-sided {conf:.0%} interval "
               "(paired, same samples) is at most the budget")


def drop_top1(base_logits, cand_logits, labels, *, confidence: float = 0.95,
              seed: int = 0) -> dict[str, Any]:
    """Top-1 drop (points) of the candidate vs the baseline on labelled samples."""
    from ..metrics.compare import compare_top1

    cmp = compare_top1(base_logits, cand_logits, labels, confidence=confidence, seed=seed)
    lo, hi = cmp["delta_ci"]
    # 0.0 + x: no "-0.00" for a drop of exactly zero.
    return {"metric": "top1", "value": 0.0 - 100 * cmp["delta"], "low": 0.0 - 100 * hi,
            "high": 0.0 - 100 * lo,
            "n": cmp["n"], "p_value": cmp["p_value"], "n01": cmp["n01"], "n10": cmp["n10"],
            "baseline_pct": 100 * cmp["baseline"], "candidate_pct": 100 * cmp["candidate"],
            "method": cmp["method"]}


def drop_agreement(base_logits, cand_logits, *, confidence: float = 0.95) -> dict[str, Any]:
    """Disagreement (points) of the candidate's top-1 with the baseline's, Wilson interval."""
    import numpy as np

    from ..metrics.intervals import wilson_interval

    base = np.asarray(base_logits).argmax(axis=1)
    cand = np.asarray(cand_logits).argmax(axis=1)
    n = int(len(base))
    differ = int((base != cand).sum())
    lo, hi = wilson_interval(differ, n, confidence)
    return {"metric": "agreement", "value": 100 * differ / n, "low": 100 * lo, "high": 100 * hi,
            "n": n, "p_value": None, "n01": 0, "n10": differ, "baseline_pct": 100.0,
            "candidate_pct": 100 * (n - differ) / n,
            "method": f"top-1 agreement with the original model, Wilson {confidence:.0%} interval"}


def budget_points(max_drop: float, drop_type: str, baseline_pct: float) -> float:
    """The budget in points: as given (absolute) or a percentage of the baseline (relative)."""
    if drop_type == "relative":
        return max_drop * baseline_pct / 100.0
    return max_drop


def within_budget(drop: dict[str, Any] | None, budget_pts: float) -> bool | None:
    """None when there is no drop to judge; a tiny tolerance absorbs float rounding."""
    if not drop:
        return None
    return drop["high"] <= budget_pts + 1e-9


def objective_value(cand: dict[str, Any], objective: str) -> float | None:
    """The number the objective ranks by (None when not measured)."""
    if objective == "latency":
        lat = cand.get("latency_ms") or {}
        return lat.get("p50")
    if objective == "throughput":
        ips = cand.get("throughput_ips") or {}
        return max(ips.values()) if ips else None
    if objective == "size":
        return cand.get("size_mb")
    raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")


def _better_key(cand: dict[str, Any], objective: str) -> tuple:
    value = objective_value(cand, objective)
    sign = -1 if OBJECTIVES[objective] == "max" else 1
    drop = (cand.get("drop") or {}).get("value", 0.0)
    return (sign * value, drop, cand.get("size_mb") or 0.0, cand["id"])


def pick(cands: Iterable[dict[str, Any]], objective: str) -> dict[str, Any] | None:
    """The best objective among fully measured candidates within budget; ties go to the
    smaller drop, then the smaller size, then the id (deterministic)."""
    ok = [c for c in cands if c.get("status") == "ok" and c.get("fidelity_level") == "full"
          and c.get("within_budget") and objective_value(c, objective) is not None]
    return min(ok, key=lambda c: _better_key(c, objective)) if ok else None


def closest(cands: Iterable[dict[str, Any]], k: int = 3) -> list[dict[str, Any]]:
    """When nothing meets the budget: the k candidates whose drop's upper end is smallest."""
    judged = [c for c in cands if c.get("drop") and c.get("status") in ("ok", "screened_out")]
    return sorted(judged, key=lambda c: (c["drop"]["high"], c["id"]))[:k]


def front_points(cands: Sequence[dict[str, Any]], objective: str) -> tuple[list[dict], list]:
    """The candidates that can be placed (objective, drop and size known) and their points."""
    from .pareto import pareto_front  # noqa: F401  (documents the consumer)

    placed = [c for c in cands if c.get("status") in ("ok", "screened_out") and c.get("drop")
              and objective_value(c, objective) is not None and c.get("size_mb") is not None]
    points = [(objective_value(c, objective), c["drop"]["value"], c["size_mb"]) for c in placed]
    return placed, points


def frontier(cands: Sequence[dict[str, Any]], objective: str) -> list[str]:
    """Ids on the Pareto front over (objective, drop, size)."""
    from .pareto import pareto_front

    placed, points = front_points(cands, objective)
    idx = pareto_front(points, (OBJECTIVES[objective], "min", "min"))
    return [placed[i]["id"] for i in idx]
