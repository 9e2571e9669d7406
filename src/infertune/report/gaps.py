"""What could not be measured: every null measurement of a report with its note.

A null is never shown as a number. Nulls are grouped by (field, note) so that "energy:
RAPL not readable here" appears once with the candidates it concerns, not eleven times.
"""
from __future__ import annotations

from typing import Any, Callable

from ..search.candidate import Candidate, Status
from . import fields as f
from .run_report import RunReport

TOP_LEVEL = ("machine_limits", "final_comparison")
NO_NOTE = "no reason recorded in report.json"


def _full(get: Callable[[Any], Any]) -> Callable[[Candidate], Any]:
    return lambda c: get(c.full) if c.full is not None else None


# (report.json key, value, its note) of the figures every measured candidate should have.
PER_CANDIDATE: tuple[tuple[str, Callable[[Candidate], Any], Callable[[Candidate], Any]], ...] = (
    ("latency_ms", lambda c: c.p50_ms, lambda c: None),
    ("throughput_ips", _full(lambda e: e.throughput_ips), lambda c: None),
    ("best_batch", _full(lambda e: e.best_batch), lambda c: None),
    ("peak_rss_mb", _full(lambda e: e.peak_rss_mb), lambda c: None),
    ("cold_start_ms", _full(lambda e: e.cold_start_ms), lambda c: None),
    ("energy_j_per_image", _full(lambda e: e.energy_j_per_image),
     _full(lambda e: e.energy_note)),
    ("fidelity", _full(lambda e: e.fidelity), lambda c: None),
    ("drop", lambda c: c.drop, lambda c: None),
)
ACCURACY = ("accuracy", _full(lambda e: e.accuracy), lambda c: None)
# Only recorded for the baseline and the pick (docs/run-format.md); a confusion matrix only
# with labels.
CONFUSION = ("confusion_matrix",
             _full(lambda e: (e.accuracy or {}).get("confusion_matrix")), lambda c: None)
PER_LAYER = ("per_layer_ms", lambda c: c.decision.per_layer_ms,
             lambda c: c.decision.per_layer_note)


def note_for(report: RunReport, key: str) -> str:
    """The report's `<key>_note`, or the note of the key's stem (machine_limits_note)."""
    for name in (f"{key}_note", f"{key.split('_')[0]}_note"):
        if report.notes.get(name):
            return report.notes[name]
    return NO_NOTE


def _candidate_checks(cand: Candidate, report: RunReport):
    checks = list(PER_CANDIDATE)
    if report.labelled:
        checks.append(ACCURACY)
    if cand.id in (report.baseline_id, report.pick_id):
        checks += ([CONFUSION] if report.labelled else []) + [PER_LAYER]
    return checks


def _candidate_gaps(cand: Candidate, report: RunReport) -> list[tuple[str, str]]:
    gaps = [(key, str(note(cand) or NO_NOTE)) for key, value, note
            in _candidate_checks(cand, report) if value(cand) is None]
    tput = (cand.full.throughput_ips if cand.full else None) or {}
    gaps += [(f"throughput at batch {batch}", NO_NOTE)
             for batch, value in tput.items() if value is None]
    if cand.full is not None and not cand.full.samples_ms:
        gaps.append(("latency samples", NO_NOTE))
    return gaps


def unmeasured(report: RunReport) -> list[dict[str, Any]]:
    """[{"what", "note", "where": [ids or "run"]}] in first-seen order.

    Candidates that did not run (failed, screened out, ...) are left out: their status and
    reason already say why nothing of theirs was measured.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    present = {"machine_limits": report.machine_limits, "final_comparison": report.final}
    for key in TOP_LEVEL:
        if present[key] is None:
            groups.setdefault((key, note_for(report, key)), []).append("run")
    limits = report.machine_limits or {}
    for key in ("fp32_gflops", "int8_gops", "mem_gbs"):
        if limits and limits.get(key) is None:
            groups.setdefault((f"machine limit {key}", str(limits.get("method") or NO_NOTE)),
                              []).append("run")
    for cand in report.candidates:
        if cand.status is not Status.OK:
            continue
        for what, note in _candidate_gaps(cand, report):
            groups.setdefault((what, note), []).append(cand.id)
    return [{"what": what, "note": note, "where": where}
            for (what, note), where in groups.items()]


def not_run(report: RunReport) -> list[dict[str, Any]]:
    """Candidates that produced no measurement, with their status and reason."""
    return [{"id": c.id, "label": c.label, "runtime": c.runtime, "status": c.status.value,
             "reason": c.reason or NO_NOTE}
            for c in report.candidates if c.status is not Status.OK]


def measured_ok(report: RunReport) -> list[Candidate]:
    return [c for c in report.candidates if f.is_measured(c)]
