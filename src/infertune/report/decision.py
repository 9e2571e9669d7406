"""Which measurement decided the pick, and how sure that decision is, in words.

The pick of a latency run is the contender with the lowest median p50 in the final
side-by-side rounds (search/report.py); other objectives, or a run without rounds, pick
from each candidate's own full measurement. A reader who sees a contender faster in its
own measurement than the pick must be told why the pick still won, and whether the win is
larger than the round-to-round spread: two candidates whose round p50s overlap are within
noise of each other, and the report says so rather than implying a ranking.
"""
from __future__ import annotations

from ..search.candidate import Candidate
from . import fields as f
from .run_report import FinalRow, PickBasis, RunReport

OBJECTIVE_WORDS = {"latency": "the lowest p50", "throughput": "the highest throughput",
                   "size": "the smallest artifact"}


def _ms(value: float | None) -> str:
    return f.NOT_MEASURED if value is None else f"{value:.3g} ms"


def _range(row: FinalRow) -> str:
    rng = row.round_range
    return "no round recorded" if rng is None else f"rounds {rng[0]:.3g}–{rng[1]:.3g} ms"


def runner_up(report: RunReport) -> FinalRow | None:
    """The fastest contender of the rounds other than the pick and the baseline."""
    if report.final is None:
        return None
    others = [r for r in report.final.rows if r.p50_ms is not None
              and r.id not in (report.pick_id, report.baseline_id)]
    return min(others, key=lambda r: (r.p50_ms, r.id), default=None)


def overlap(a: FinalRow, b: FinalRow) -> bool | None:
    """Whether the two rows' round p50 ranges overlap (speed-up min–max where the round
    p50s are not recorded); None when neither is known."""
    ra, rb = a.round_range, b.round_range
    if ra is None or rb is None:
        if None in (a.speedup_min, a.speedup_max, b.speedup_min, b.speedup_max):
            return None
        ra, rb = (a.speedup_min, a.speedup_max), (b.speedup_min, b.speedup_max)
    return ra[0] <= rb[1] and rb[0] <= ra[1]


def decided_by_rounds(report: RunReport) -> bool:
    return (report.objective == "latency" and report.pick is not None
            and f.from_rounds(report.pick, report))


def basis_lines(report: RunReport) -> list[str]:
    """Sentences saying which measurement decided the pick and why; [] without a pick."""
    pick = report.pick
    if pick is None:
        return []
    if not decided_by_rounds(report):
        return [f"Decided by each candidate's own full measurement: "
                f"{OBJECTIVE_WORDS.get(report.objective, report.objective)} among the fully "
                "evaluated candidates within budget"
                + ("." if report.final is None else
                   "; the side-by-side rounds time the contenders for latency only.")
                ] + configuration_lines(report, pick)
    return _rounds_lines(report, pick) + configuration_lines(report, pick)


def configuration_lines(report: RunReport, pick: Candidate) -> list[str]:
    """Where the pick is a runtime configuration of another candidate: what it changed and
    why it stands in for that candidate (search/select.CONFIG_RULE)."""
    if pick.plan.stage != "configured" or not pick.plan.runtime_options:
        return []
    settings = ", ".join(f"{k}={v}" for k, v in pick.plan.runtime_options.items())
    return [f"The pick runs {_label(report, pick.plan.parent_id)}'s artifact with another "
            f"runtime configuration ({settings}): in the configuration rounds, timed "
            "alternately with the default configuration, its range did not overlap the "
            "default's, so it replaced it (a tie would have kept the default). Its accuracy is "
            "that artifact's: its outputs were checked equal to the default's before every "
            "timing."]


def _rounds_lines(report: RunReport, pick: Candidate) -> list[str]:
    final = report.final
    row = report.final_row(pick)
    n = final.rounds or len(row.p50_ms_by_round)
    contenders = sum(r.id != report.baseline_id for r in final.rows)
    head = (f"Decided by the side-by-side rounds: the baseline and the "
            f"{contenders} fastest candidates within budget were timed again in "
            f"{n} interleaved round(s), one after the other under the same conditions; ")
    basis = report.pick_basis
    if basis is not None and len(basis.tied) > 1:
        return [head + _tie_text(report, pick, basis) + " " + f.ROUNDS_NOTE]
    lines = [head + f"the pick has the lowest median p50 ({_ms(row.p50_ms)}, {_range(row)}). "
             + f.ROUNDS_NOTE]
    other = runner_up(report)
    if other is None:
        return lines
    text = (f"Runner-up: {_label(report, other.id)}, median p50 {_ms(other.p50_ms)} "
            f"({_range(other)}). ")
    close = overlap(row, other)
    if n < 2:
        text += "One round only: no spread to tell a difference from noise."
    elif close:
        text += ("Their round p50s overlap: the two are within the measurement noise of "
                 "each other, and the pick is the lower median, not a demonstrably faster "
                 "model.")
    elif close is False:
        text += "Their round p50s do not overlap: the pick is faster in every round."
    lines.append(text + _own_measurement_note(report, pick))
    return lines


def _label(report: RunReport, cid: str | None) -> str:
    return report.by_id[cid].label if cid in report.by_id else str(cid)


def _tie_text(report: RunReport, pick: Candidate, basis: PickBasis) -> str:
    """The tie the rounds could not break by speed, and what broke it."""
    fastest = report.final.row(basis.fastest)
    others = [i for i in basis.tied if i != basis.fastest]
    named = "; ".join(f"{_label(report, i)} ({_range(report.final.row(i))})" for i in others
                      if report.final.row(i) is not None)
    drop = pick.drop.value if pick.drop else None
    text = (f"the lowest median p50 is {_label(report, basis.fastest)}'s "
            f"({_ms(fastest.p50_ms if fastest else None)}, "
            f"{_range(fastest) if fastest else 'no round recorded'}), and the round p50s of "
            f"{named} overlap it: within the measurement noise, the data cannot rank them by "
            f"speed. Among them the pick is the smaller drop, then the smaller artifact, then "
            f"the id")
    if pick.id == basis.fastest:
        return text + f": {pick.label}, which also has the lowest median."
    return text + (f": {pick.label} (drop {drop:+.2f} points), not a demonstrably slower "
                   "model." if drop is not None else f": {pick.label}.")


def _own_measurement_note(report: RunReport, pick: Candidate) -> str:
    """Names a contender that was faster than the pick in its own full measurement."""
    faster = [report.by_id[r.id] for r in report.final.rows
              if r.id in report.by_id and r.id not in (pick.id, report.baseline_id)
              and report.by_id[r.id].p50_ms is not None and pick.p50_ms is not None
              and report.by_id[r.id].p50_ms < pick.p50_ms]
    if not faster:
        return ""
    best = min(faster, key=lambda c: c.p50_ms)
    return (f" In their own full measurements {best.label} was faster ({_ms(best.p50_ms)} "
            f"vs {_ms(pick.p50_ms)}); the rounds, which time them alternately, decide.")
