"""Report → table rows (plain dicts; the Markdown and HTML renderers format them).

The stage table is the one a deployment engineer brings to a design review: for each
runtime, one row per stage (original → fused → quantized → mixed → pruned → decomposed →
combined), showing the best candidate of that stage — the best one within the accuracy
budget by the run's objective, or, when none of the stage is within budget, the best one
anyway, marked over budget — so each row answers "what does this step buy, and at what
accuracy cost". Every candidate, including failed and screened-out ones, is listed in
the candidates table.
"""
from __future__ import annotations

from typing import Any

from ..search.candidate import Candidate
from . import fields as f
from .run_report import RunReport


def _objective_key(report: RunReport):
    objective = report.objective

    def key(cand: Candidate) -> float:
        if objective == "throughput":
            return -(f.best_throughput(cand)[0] or 0.0)
        if objective == "size":
            return cand.size_mb if cand.size_mb is not None else float("inf")
        p50 = f.decisive_p50(cand, report)
        return float("inf") if p50 is None else p50
    return key


def stage_choice(cands: list[Candidate], report: RunReport) -> tuple[Candidate, bool]:
    """(chosen candidate, within budget) among one stage's measured candidates, by the
    same p50 the pick was decided on (`fields.decisive_p50`)."""
    key = _objective_key(report)
    within = [c for c in cands if c.decision.within_budget is not False]
    pool = within or cands
    return min(pool, key=key), bool(within)


def stage_rows(report: RunReport) -> dict[str, list[dict[str, Any]]]:
    """Runtime → one row per stage present, in pipeline order (runtimes in order of
    first appearance)."""
    groups: dict[str, dict[str, list[Candidate]]] = {}
    for cand in report.candidates:
        if f.is_measured(cand):
            groups.setdefault(cand.runtime, {}).setdefault(cand.plan.stage, []).append(cand)
    order = {stage: i for i, stage in enumerate(f.STAGES)}
    out = {}
    for runtime, stages in groups.items():
        rows = []
        for stage in sorted(stages, key=lambda s: order.get(s, len(order))):
            chosen, within = stage_choice(stages[stage], report)
            rows.append({**candidate_metrics(chosen, report), "stage": stage,
                         "alternatives": len(stages[stage]) - 1,
                         "over_budget": not within})
        out[runtime] = rows
    return out


def candidate_metrics(cand: Candidate, report: RunReport) -> dict[str, Any]:
    """The numbers of one candidate, in display units (ms, images/s, MB, %, points)."""
    tput, batch = f.best_throughput(cand)
    return {"id": cand.id, "label": cand.label or cand.id, "runtime": cand.runtime,
            "stage": cand.plan.stage, "precision": precision_text(cand),
            "status": cand.status.value, "reason": cand.reason,
            "p50_ms": f.decisive_p50(cand, report), "p50_rounds": f.from_rounds(cand, report),
            "p90_ms": f.p90_ms(cand), "cv": f.latency_cv(cand), "throughput_ips": tput,
            "best_batch": batch, "size_mb": cand.size_mb,
            "compression_ratio": cand.decision.compression_ratio,
            "speedup": cand.decision.speedup,
            "metric": f.metric_triple(cand, report), "drop": f.drop_triple(cand),
            "within_budget": cand.decision.within_budget,
            "pick": cand.id == report.pick_id, "frontier": cand.id in report.frontier}


def precision_text(cand: Candidate) -> str:
    """What ran, and what the recipe asked where the runtime reported something else."""
    if cand.precision != cand.plan.precision:
        return f"{cand.precision} (asked {cand.plan.precision})"
    return str(cand.precision)


def candidate_rows(report: RunReport) -> list[dict[str, Any]]:
    """Every candidate in the order tried, measured or not."""
    return [candidate_metrics(c, report) for c in report.candidates]


def machine_rows(report: RunReport) -> list[tuple[str, str]]:
    """(what, value) lines of the machine fingerprint."""
    machine = report.machine
    cpu = machine.get("cpu") or {}
    isa = f.isa(report)
    threads = machine.get("threads") or {}
    rows = [("CPU", str(cpu.get("model"))),
            ("cores", f"{cpu.get('physical_cores')} physical, {cpu.get('logical_cores')} "
                      f"logical" + (", virtualized" if cpu.get("virtualized") else "")),
            ("ISA", ", ".join(k for k, v in isa.items() if v) or "none of note" if isa
             else f"{f.NOT_MEASURED}: ISA flags not recorded"),
            ("memory", f"{machine.get('memory_total_mb')} MB"),
            ("OS", str((machine.get("os") or {}).get("platform"))),
            ("Python", str((machine.get("python") or {}).get("version"))),
            ("GPU", ", ".join(g.get("name", "?") for g in machine["gpu"])
             if machine.get("gpu") else "none"),
            ("CPUs allowed", str(threads.get("cpus_allowed")))]
    return rows


def version_rows(report: RunReport) -> list[tuple[str, str]]:
    libs = report.machine.get("libraries") or {}
    return [(name, version) for name, version in libs.items() if version]


def method_rows(report: RunReport) -> list[tuple[str, str]]:
    """How every number was measured, in the report's own words."""
    timing, budget, data = report.timing, report.budget, report.data
    limits = report.machine_limits or {}
    final = report.final
    rows = [("timing", f"{timing.get('method')} (threads {timing.get('threads')}, batch "
                       f"{timing.get('batch')}, at least {timing.get('min_runs')} runs and "
                       f"{timing.get('min_seconds')} s)"),
            ("accuracy", f"{f.metric_name(report)} on {data.get('eval_n')} samples of "
                         f"{data.get('spec')}"
                         + (f" in {data['eval_clusters']} clusters" if data.get("eval_clusters")
                            else "")
                         + (f" ({data['metric_note']})" if data.get("metric_note") else "")),
            ("budget", f"max drop {budget.get('max_drop')} ({budget.get('drop_type')}, "
                       f"{budget.get('metric')}, confidence {budget.get('confidence')}); "
                       f"{budget.get('rule')}"),
            ("objective", str(budget.get("objective")))]
    for rule in report.screening.get("rules") or []:
        rows.append((f"screening: {rule.get('name')}", str(rule.get("text"))))
    if final:
        rows.append(("final comparison", f"{final.method}, {final.rounds} rounds"))
    if limits:
        rows.append(("machine limits", str(limits.get("method"))))
    return rows
