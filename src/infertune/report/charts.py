"""Report → chart series (plain data; `plots.py` draws them). Pure functions only.

Roofline arithmetic intensity is 2·MACs per byte of weights read per inference: at batch 1
every weight is read once per call, and the artifact's size is what the candidate's
weights weigh in its own precision (an INT8 model moves a quarter of the FP32 bytes).
Activation traffic is added where the profile recorded it (`model.activation_bytes`).
This is a lower bound of the bytes moved, so the intensity is an upper bound: the chart
says so.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..search.candidate import Candidate
from . import fields as f
from .run_report import RunReport

INT8_PRECISIONS = ("int8", "mixed")


def pareto_series(report: RunReport) -> dict[str, Any]:
    """Points (latency vs drop, size as marker size) of every measured candidate, the
    frontier in latency order, the pick and the budget line. Latency is the p50 the
    report shows (`fields.decisive_p50`)."""
    frontier = set(report.frontier)
    points = []
    for cand in report.candidates:
        drop = f.drop_triple(cand)[0]
        if not f.is_measured(cand) or drop is None:
            continue
        points.append({"id": cand.id, "label": cand.label or cand.id,
                       "p50_ms": f.decisive_p50(cand, report), "drop": drop,
                       "size_mb": cand.size_mb, "frontier": cand.id in frontier,
                       "pick": cand.id == report.pick_id,
                       "within_budget": cand.decision.within_budget})
    line = sorted((p for p in points if p["frontier"]), key=lambda p: p["p50_ms"])
    return {"points": points, "frontier": [(p["p50_ms"], p["drop"]) for p in line],
            "max_drop": f.max_drop(report)}


def per_layer_series(cand: Candidate | None, top: int = 12) -> list[tuple[str, float]] | None:
    """(layer, ms) slowest first; layers past `top` summed into one "N other layers" bar.
    None when the candidate has no per-layer times."""
    layers = cand.decision.per_layer_ms if cand is not None else None
    if not layers:
        return None
    rows = sorted(((str(l.get("name")), f.num(l.get("ms")) or 0.0) for l in layers),
                  key=lambda r: -r[1])
    head, tail = rows[:top], rows[top:]
    if tail:
        head.append((f"{len(tail)} other layers", sum(ms for _, ms in tail)))
    return head


def latency_series(report: RunReport, limit: int = 12
                   ) -> list[tuple[str, list[float], float | None]]:
    """(label, raw samples of the full measurement in ms, the rounds' median p50 or None)
    of measured candidates with samples, fastest first by the p50 the report shows."""
    cands = [c for c in report.candidates if f.is_measured(c) and c.full.samples_ms]
    cands.sort(key=lambda c: f.decisive_p50(c, report))
    return [(c.label or c.id, [float(x) for x in c.full.samples_ms],
             f.decisive_p50(c, report) if f.from_rounds(c, report) else None)
            for c in cands[:limit]]


def confusion_series(cand: Candidate | None) -> list[list[float]] | None:
    """Row-normalised confusion matrix (each true class sums to 1), None if absent. Takes
    a bare matrix or {"labels", "matrix"} (metrics.classification's form)."""
    acc = (cand.full.accuracy if cand is not None and cand.full else None) or {}
    matrix = acc.get("confusion_matrix")
    if isinstance(matrix, Mapping):
        matrix = matrix.get("matrix")
    if not matrix:
        return None
    out = []
    for row in matrix:
        total = sum(row)
        out.append([v / total if total else 0.0 for v in row])
    return out


RADAR_AXES = ("speed", "accuracy", "size", "throughput", "memory")


def radar_series(report: RunReport, top: int = 4) -> dict[str, Any] | None:
    """Top candidates (the pick, then the frontier fastest first, then the baseline) on
    metrics normalised so 1 is the best among them: speed = fastest p50 / p50, size and
    memory likewise, throughput = value / best, accuracy = 1 − drop / D with D the larger
    of the budget and the worst drop shown (negative drops count as 0). Axes some chosen
    candidate lacks are left out. None with fewer than two candidates."""
    ids = report.by_id
    order = [report.pick_id] + sorted(
        (i for i in report.frontier if i in ids),
        key=lambda i: f.decisive_p50(ids[i], report) or float("inf")) + [report.baseline_id]
    chosen = []
    for cid in order:
        if cid in ids and cid not in chosen and f.is_measured(ids[cid]) and len(chosen) < top:
            chosen.append(cid)
    if len(chosen) < 2:
        return None
    raw = {cid: _radar_raw(ids[cid], report) for cid in chosen}
    axes = [a for a in RADAR_AXES if all(raw[c][a] is not None for c in chosen)]
    scale = max([f.max_drop(report) or 0.0] + [raw[c]["accuracy"] for c in chosen
                                               if raw[c]["accuracy"] is not None]) or 1.0
    series = {}
    for cid in chosen:
        series[ids[cid].label or cid] = [_normalise(a, raw[cid][a], raw, chosen, scale)
                                         for a in axes]
    return {"axes": axes, "series": series}


def _radar_raw(cand: Candidate, report: RunReport) -> dict[str, float | None]:
    drop = f.drop_triple(cand)[0]
    return {"speed": f.decisive_p50(cand, report),
            "accuracy": None if drop is None else max(drop, 0.0),
            "size": cand.size_mb, "throughput": f.best_throughput(cand)[0],
            "memory": f.num(cand.full.peak_rss_mb) if cand.full else None}


def _normalise(axis: str, value: float, raw: dict, chosen: list, drop_scale: float) -> float:
    if axis == "accuracy":
        return 1.0 - value / drop_scale
    values = [raw[c][axis] for c in chosen]
    if axis == "throughput":
        return value / max(values) if max(values) else 0.0
    return min(values) / value if value else 0.0   # smaller is better


def peak_gops(cand: Candidate, limits: Mapping[str, Any]) -> float | None:
    """The compute ceiling for the candidate's precision (INT8 ops or FP32 flops)."""
    key = "int8_gops" if cand.precision in INT8_PRECISIONS else "fp32_gflops"
    return f.num(limits.get(key))


def intensity_ops_per_byte(cand: Candidate, model: Mapping[str, Any] | None = None
                           ) -> float | None:
    """2·MACs / (weight bytes + recorded activation bytes), None if either is missing."""
    macs = f.macs(cand)
    weights = f.num(cand.screen.artifact_bytes) if cand.screen else None
    if not macs or not weights:
        return None
    activations = f.num((model or {}).get("activation_bytes")) or 0.0
    return 2.0 * macs / (weights + activations)


def roofline_series(report: RunReport) -> dict[str, Any] | None:
    """Each measured candidate's achieved GOP/s (2·MACs / p50, the p50 the report shows)
    at its intensity, and the machine's ceilings; None when the limits were not measured."""
    limits = report.machine_limits
    if not limits or f.num(limits.get("mem_gbs")) is None:
        return None
    points = []
    for cand in report.candidates:
        intensity = intensity_ops_per_byte(cand, report.model)
        if not f.is_measured(cand) or intensity is None:
            continue
        achieved = 2.0 * f.macs(cand) / (f.decisive_p50(cand, report) / 1e3) / 1e9
        peak = peak_gops(cand, limits)
        bound = min(peak, f.num(limits["mem_gbs"]) * intensity) if peak else None
        points.append({"id": cand.id, "label": cand.label or cand.id,
                       "precision": cand.precision, "intensity": intensity,
                       "achieved_gops": achieved, "bound_gops": bound,
                       "pick": cand.id == report.pick_id})
    return {"points": points, "mem_gbs": f.num(limits["mem_gbs"]),
            "fp32_gflops": f.num(limits.get("fp32_gflops")),
            "int8_gops": f.num(limits.get("int8_gops"))}
