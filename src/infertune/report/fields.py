"""Plain-data accessors over a report.json dict (docs/run-format.md, schema_version 1).

Every reader here tolerates a missing or null field and returns None, so the renderers can
say "not measured" instead of failing. Accuracy-like values are returned in percent and
drops in points (as the schema stores them). Top-1 and agreement may be stored as
fractions (metrics.fidelity gives agreement as one): each is recognised by the baseline's
own value (see `accuracy_scale`) so one report is never shown in mixed units.
"""
from __future__ import annotations

from typing import Any

STAGES = ("original", "fused", "quantized", "mixed", "pruned", "decomposed", "combined")
NOT_MEASURED = "not measured"

Triple = tuple[float | None, float | None, float | None]


def by_id(report: dict) -> dict[str, dict]:
    """Candidates keyed by id."""
    return {c.get("id"): c for c in report.get("candidates") or [] if isinstance(c, dict)}


def baseline(report: dict) -> dict | None:
    return by_id(report).get(report.get("baseline_id"))


def pick(report: dict) -> dict | None:
    return by_id(report).get(report.get("pick")) if report.get("pick") else None


def subject(report: dict) -> dict | None:
    """The pick, or the baseline when there is no pick."""
    return pick(report) or baseline(report)


def p50_ms(cand: dict | None) -> float | None:
    return _num(((cand or {}).get("latency_ms") or {}).get("p50"))


def is_measured(cand: dict) -> bool:
    """Ran fine and has a latency: the candidates tables and charts can show."""
    return cand.get("status") == "ok" and p50_ms(cand) is not None


def best_throughput(cand: dict) -> tuple[float | None, str | None]:
    """(images per second, batch) at the best batch size, or (None, None)."""
    tput = cand.get("throughput_ips") or {}
    vals = {str(k): _num(v) for k, v in tput.items() if _num(v) is not None}
    if not vals:
        return None, None
    batch = max(vals, key=vals.get)
    return vals[batch], batch


def metric_name(report: dict) -> str:
    """What the accuracy column measures: 'top-1' or 'top-1 agreement'."""
    data = report.get("data") or {}
    return "top-1 agreement" if data.get("metric") == "agreement" else "top-1"


def _fraction_scale(value: float | None) -> float:
    # The baseline's own top-1 or agreement with itself: ≤ 1 only when stored as a fraction.
    return 100.0 if value is not None and value <= 1.0 else 1.0


def _agreement(cand: dict) -> Triple:
    fid = cand.get("fidelity") or {}
    value = triple(fid.get("top1_agreement"))
    ci = fid.get("top1_agreement_ci")
    if value[1] is None and isinstance(ci, (list, tuple)) and len(ci) == 2:
        return value[0], num(ci[0]), num(ci[1])
    return value


def accuracy_scale(report: dict) -> float:
    """100 when the run's metric is stored as a fraction (judged on the baseline), else 1."""
    base = baseline(report) or {}
    if metric_name(report) == "top-1":
        return _fraction_scale(triple((base.get("accuracy") or {}).get("top1"))[0])
    return _fraction_scale(_agreement(base)[0])


def metric_triple(cand: dict, report: dict) -> Triple:
    """(value, low, high) in percent of the run's metric: top-1 or top-1 agreement."""
    if metric_name(report) == "top-1":
        raw = triple((cand.get("accuracy") or {}).get("top1"))
    else:
        raw = _agreement(cand)
    return scaled(raw, accuracy_scale(report))


def drop_triple(cand: dict, report: dict) -> Triple:
    """(value, low, high) of the paired drop vs the baseline, in points (as stored)."""
    return triple(cand.get("drop"))


def max_drop(report: dict) -> float | None:
    """The budget in points: `budget_points` where a relative budget was converted, else
    `max_drop`."""
    budget = report.get("budget") or {}
    points = num(budget.get("budget_points"))
    return points if points is not None else num(budget.get("max_drop"))


def isa(report: dict) -> dict[str, bool] | None:
    """The machine's ISA flags (fingerprint cpu.isa), None where not recorded."""
    flags = (((report.get("machine") or {}).get("cpu")) or {}).get("isa")
    return flags if isinstance(flags, dict) and flags else None


def recipe_passes(cand: dict) -> list[str]:
    return [str(step.get("pass")) for step in cand.get("recipe") or [] if isinstance(step, dict)]


def triple(raw: Any) -> Triple:
    if isinstance(raw, dict):
        return _num(raw.get("value")), _num(raw.get("low")), _num(raw.get("high"))
    return _num(raw), None, None


def scaled(t: Triple, scale: float) -> Triple:
    return tuple(None if v is None else v * scale for v in t)  # type: ignore[return-value]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def num(value: Any) -> float | None:
    """A finite number or None (booleans and strings are not numbers)."""
    return _num(value)
