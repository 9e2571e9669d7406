"""Display figures of typed candidates (`search.candidate.Candidate`) within a `RunReport`.

Every reader returns None for what was not measured, so the renderers can say "not
measured" instead of failing. Accuracy-like values are returned in percent and drops in
points (as the records store them). Top-1 and agreement may be stored as fractions
(metrics.fidelity gives agreement as one): each is recognised by the baseline's own value
(see `accuracy_scale`) so one report is never shown in mixed units.

One p50 per candidate: `decisive_p50`. A candidate that took part in the final
side-by-side rounds is shown with the rounds' median p50 — the figure that decided the
pick — everywhere (stage tables, the pick line, charts, the "no gain" explanations); the
others with their own full measurement. Showing the separate full measurement of a
contender next to a pick decided by the rounds made one report say two things.
"""
from __future__ import annotations

from typing import Any

from ..search.candidate import Candidate, Status
from ..search.space import STAGES as SEARCH_STAGES
from .run_report import FinalComparison, FinalRow, RunReport

# The search's stage order (one list: search/space.py), the configured stage last as before
# (it re-times other stages' artifacts, so the tables place it after everything else).
STAGES = tuple(stage for stage in SEARCH_STAGES if stage != "configured")
NOT_MEASURED = "not measured"
ROUNDS_MARK = "†"
ROUNDS_NOTE = (f"{ROUNDS_MARK} p50 from the side-by-side rounds that decided the pick "
               "(median over the rounds); unmarked p50s are each candidate's own full "
               "measurement.")

Triple = tuple[float | None, float | None, float | None]


def is_measured(cand: Candidate) -> bool:
    """Ran fine and has a latency: what the stage tables and charts can show."""
    return cand.status is Status.OK and cand.p50_ms is not None


def _final_row(cand: Candidate | None, rounds: RunReport | FinalComparison | None
               ) -> FinalRow | None:
    if cand is None or rounds is None:
        return None
    return rounds.final_row(cand) if isinstance(rounds, RunReport) else rounds.row(cand.id)


def from_rounds(cand: Candidate | None, report: RunReport | FinalComparison | None) -> bool:
    """Whether `cand`'s p50 in this report is the side-by-side rounds' median."""
    row = _final_row(cand, report)
    return row is not None and row.p50_ms is not None


def decisive_p50(cand: Candidate | None, report: RunReport | FinalComparison | None
                 ) -> float | None:
    """The p50 (ms) the report shows for `cand`: the median over the side-by-side rounds
    where it took part in them, else its full measurement's p50, else None.

    `report` is the run's RunReport, or only its rounds (search/report.py, before the
    report exists: `FinalComparison.from_json(final)`; None without rounds)."""
    if cand is None:
        return None
    row = _final_row(cand, report)
    if row is not None and row.p50_ms is not None:
        return row.p50_ms
    return cand.p50_ms


def p50_text(cand: Candidate | None, report: RunReport, digits: int = 3) -> str:
    """decisive_p50 as text, marked † where it comes from the rounds."""
    value = decisive_p50(cand, report)
    if value is None:
        return NOT_MEASURED
    return f"{value:.{digits}g}" + (ROUNDS_MARK if from_rounds(cand, report) else "")


def p90_ms(cand: Candidate) -> float | None:
    return cand.full.latency.p90 if cand.full else None


def latency_cv(cand: Candidate) -> float | None:
    return cand.full.latency.cv if cand.full else None


def best_throughput(cand: Candidate) -> tuple[float | None, str | None]:
    """(images per second, batch) at the best batch size, or (None, None)."""
    tput = (cand.full.throughput_ips if cand.full else None) or {}
    vals = {str(k): num(v) for k, v in tput.items() if num(v) is not None}
    if not vals:
        return None, None
    batch = max(vals, key=vals.get)
    return vals[batch], batch


def macs(cand: Candidate) -> float | None:
    return num(cand.screen.macs) if cand.screen else None


def metric_name(report: RunReport) -> str:
    """What the accuracy column measures: 'top-1' or 'top-1 agreement'."""
    return "top-1 agreement" if report.data.get("metric") == "agreement" else "top-1"


def _fraction_scale(value: float | None) -> float:
    # The baseline's own top-1 or agreement with itself: ≤ 1 only when stored as a fraction.
    return 100.0 if value is not None and value <= 1.0 else 1.0


def _fidelity(cand: Candidate):
    if cand.full is not None:
        return cand.full.fidelity
    return cand.screen.fidelity if cand.screen else None


def _agreement(cand: Candidate) -> Triple:
    fid = _fidelity(cand)
    if fid is None:
        return None, None, None
    ci = fid.top1_agreement_ci
    if ci is not None and len(ci) == 2:
        return num(fid.top1_agreement), num(ci[0]), num(ci[1])
    return num(fid.top1_agreement), None, None


def _top1(cand: Candidate) -> Triple:
    acc = (cand.full.accuracy if cand.full else None) or {}
    return triple(acc.get("top1"))


def accuracy_scale(report: RunReport) -> float:
    """100 when the run's metric is stored as a fraction (judged on the baseline), else 1."""
    base = report.baseline
    if base is None:
        return 1.0
    if metric_name(report) == "top-1":
        return _fraction_scale(_top1(base)[0])
    return _fraction_scale(_agreement(base)[0])


def metric_triple(cand: Candidate, report: RunReport) -> Triple:
    """(value, low, high) in percent of the run's metric: top-1 or top-1 agreement."""
    raw = _top1(cand) if metric_name(report) == "top-1" else _agreement(cand)
    return scaled(raw, accuracy_scale(report))


def drop_triple(cand: Candidate) -> Triple:
    """(value, low, high) of the paired drop vs the baseline, in points (as stored)."""
    drop = cand.drop
    if drop is None:
        return None, None, None
    return num(drop.value), num(drop.low), num(drop.high)


def max_drop(report: RunReport) -> float | None:
    """The budget in points: `budget_points` where a relative budget was converted, else
    `max_drop`."""
    points = num(report.budget.get("budget_points"))
    return points if points is not None else num(report.budget.get("max_drop"))


def isa(report: RunReport) -> dict[str, bool] | None:
    """The machine's ISA flags (fingerprint cpu.isa), None where not recorded."""
    flags = (report.machine.get("cpu") or {}).get("isa")
    return flags if isinstance(flags, dict) and flags else None


def triple(raw: Any) -> Triple:
    if isinstance(raw, dict):
        return num(raw.get("value")), num(raw.get("low")), num(raw.get("high"))
    return num(raw), None, None


def scaled(t: Triple, scale: float) -> Triple:
    return tuple(None if v is None else v * scale for v in t)  # type: ignore[return-value]


def num(value: Any) -> float | None:
    """A number or None (booleans and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
