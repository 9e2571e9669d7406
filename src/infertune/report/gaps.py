"""What could not be measured: every null measurement of a report with its note.

A null is never shown as a number. Nulls are grouped by (field, note) so that "energy:
RAPL not readable here" appears once with the candidates it concerns, not eleven times.
"""
from __future__ import annotations

from typing import Any

from . import fields as f

TOP_LEVEL = ("machine_limits", "final_comparison")
PER_CANDIDATE = ("latency_ms", "throughput_ips", "best_batch", "peak_rss_mb", "cold_start_ms",
                 "energy_j_per_image", "fidelity", "drop")
# Only recorded for the baseline and the pick (docs/run-format.md).
BASELINE_AND_PICK = ("confusion_matrix", "per_layer_ms")
NO_NOTE = "no reason recorded in report.json"


def note_for(obj: dict, key: str) -> str:
    """The `<key>_note`, or the note of the key's stem (energy_j_per_image → energy_note)."""
    stem = key.split("_")[0]
    for name in (f"{key}_note", f"{stem}_note"):
        if obj.get(name):
            return str(obj[name])
    return NO_NOTE


def _candidate_keys(cand: dict, report: dict) -> list[str]:
    keys = list(PER_CANDIDATE)
    if (report.get("data") or {}).get("labelled"):
        keys.append("accuracy")
    if cand.get("id") in (report.get("baseline_id"), report.get("pick")):
        keys.extend(BASELINE_AND_PICK)
    return keys


def _candidate_gaps(cand: dict, report: dict) -> list[tuple[str, str]]:
    gaps = [(key, note_for(cand, key)) for key in _candidate_keys(cand, report)
            if cand.get(key) is None]
    tput = cand.get("throughput_ips") or {}
    gaps += [(f"throughput at batch {batch}", note_for(cand, "throughput_ips"))
             for batch, value in tput.items() if value is None]
    if cand.get("latency_ms") and not cand.get("latency_samples_ms"):
        gaps.append(("latency samples", note_for(cand, "latency_samples_ms")))
    return gaps


def unmeasured(report: dict) -> list[dict[str, Any]]:
    """[{"what", "note", "where": [ids or "run"]}] in first-seen order.

    Candidates that did not run (failed, screened out, ...) are left out: their status and
    reason already say why nothing of theirs was measured.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for key in TOP_LEVEL:
        if report.get(key) is None:
            groups.setdefault((key, note_for(report, key)), []).append("run")
    limits = report.get("machine_limits") or {}
    for key in ("fp32_gflops", "int8_gops", "mem_gbs"):
        if limits and limits.get(key) is None:
            groups.setdefault((f"machine limit {key}", str(limits.get("method") or NO_NOTE)),
                              []).append("run")
    for cand in report.get("candidates") or []:
        if cand.get("status") != "ok":
            continue
        for what, note in _candidate_gaps(cand, report):
            groups.setdefault((what, note), []).append(str(cand.get("id")))
    return [{"what": what, "note": note, "where": where}
            for (what, note), where in groups.items()]


def not_run(report: dict) -> list[dict[str, Any]]:
    """Candidates that produced no measurement, with their status and reason."""
    return [{"id": c.get("id"), "label": c.get("label"), "runtime": c.get("runtime"),
             "status": c.get("status"), "reason": c.get("reason") or NO_NOTE}
            for c in report.get("candidates") or [] if c.get("status") != "ok"]


def measured_ok(report: dict) -> list[dict]:
    return [c for c in report.get("candidates") or [] if f.is_measured(c)]
