"""Report → chart series (plain data; `plots.py` draws them). Pure functions only.

Roofline arithmetic intensity is 2·MACs per byte of weights read per inference: at batch 1
every weight is read once per call, and the artifact's size is what the candidate's
weights weigh in its own precision (an INT8 model moves a quarter of the FP32 bytes).
Activation traffic is added where the profile recorded it (`model.activation_bytes`).
This is a lower bound of the bytes moved, so the intensity is an upper bound: the chart
says so.
"""
from __future__ import annotations

from typing import Any

from . import fields as f

INT8_PRECISIONS = ("int8", "mixed")


def pareto_series(report: dict) -> dict[str, Any]:
    """Points (latency vs drop, size as marker size) of every measured candidate, the
    frontier in latency order, the pick and the budget line."""
    frontier = set(report.get("frontier") or [])
    points = []
    for cand in report.get("candidates") or []:
        drop = f.drop_triple(cand, report)[0]
        if not f.is_measured(cand) or drop is None:
            continue
        points.append({"id": cand["id"], "label": cand.get("label") or cand["id"],
                       "p50_ms": f.p50_ms(cand), "drop": drop,
                       "size_mb": f.num(cand.get("size_mb")),
                       "frontier": cand["id"] in frontier,
                       "pick": cand["id"] == report.get("pick"),
                       "within_budget": cand.get("within_budget")})
    line = sorted((p for p in points if p["frontier"]), key=lambda p: p["p50_ms"])
    return {"points": points, "frontier": [(p["p50_ms"], p["drop"]) for p in line],
            "max_drop": f.max_drop(report)}


def per_layer_series(cand: dict | None, top: int = 12) -> list[tuple[str, float]] | None:
    """(layer, ms) slowest first; layers past `top` summed into one "N other layers" bar.
    None when the candidate has no per-layer times."""
    layers = (cand or {}).get("per_layer_ms")
    if not layers:
        return None
    rows = sorted(((str(l.get("name")), f.num(l.get("ms")) or 0.0) for l in layers),
                  key=lambda r: -r[1])
    head, tail = rows[:top], rows[top:]
    if tail:
        head.append((f"{len(tail)} other layers", sum(ms for _, ms in tail)))
    return head


def latency_series(report: dict, limit: int = 12) -> list[tuple[str, list[float]]]:
    """(label, raw samples in ms) of measured candidates with samples, fastest first."""
    cands = [c for c in report.get("candidates") or []
             if f.is_measured(c) and c.get("latency_samples_ms")]
    cands.sort(key=f.p50_ms)
    return [(c.get("label") or c["id"], [float(x) for x in c["latency_samples_ms"]])
            for c in cands[:limit]]


def confusion_series(cand: dict | None) -> list[list[float]] | None:
    """Row-normalised confusion matrix (each true class sums to 1), None if absent. Takes
    a bare matrix or {"labels", "matrix"} (metrics.classification's form)."""
    matrix = (cand or {}).get("confusion_matrix")
    if isinstance(matrix, dict):
        matrix = matrix.get("matrix")
    if not matrix:
        return None
    out = []
    for row in matrix:
        total = sum(row)
        out.append([v / total if total else 0.0 for v in row])
    return out


RADAR_AXES = ("speed", "accuracy", "size", "throughput", "memory")


def radar_series(report: dict, top: int = 4) -> dict[str, Any] | None:
    """Top candidates (the pick, then the frontier fastest first, then the baseline) on
    metrics normalised so 1 is the best among them: speed = fastest p50 / p50, size and
    memory likewise, throughput = value / best, accuracy = 1 − drop / D with D the larger
    of the budget and the worst drop shown (negative drops count as 0). Axes some chosen
    candidate lacks are left out. None with fewer than two candidates."""
    ids = f.by_id(report)
    order = [report.get("pick")] + sorted(
        (i for i in report.get("frontier") or [] if i in ids), key=lambda i: f.p50_ms(ids[i])
        or float("inf")) + [report.get("baseline_id")]
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
        series[ids[cid].get("label") or cid] = [_normalise(a, raw[cid][a], raw, chosen, scale)
                                                for a in axes]
    return {"axes": axes, "series": series}


def _radar_raw(cand: dict, report: dict) -> dict[str, float | None]:
    drop = f.drop_triple(cand, report)[0]
    return {"speed": f.p50_ms(cand), "accuracy": None if drop is None else max(drop, 0.0),
            "size": f.num(cand.get("size_mb")), "throughput": f.best_throughput(cand)[0],
            "memory": f.num(cand.get("peak_rss_mb"))}


def _normalise(axis: str, value: float, raw: dict, chosen: list, drop_scale: float) -> float:
    if axis == "accuracy":
        return 1.0 - value / drop_scale
    values = [raw[c][axis] for c in chosen]
    if axis == "throughput":
        return value / max(values) if max(values) else 0.0
    return min(values) / value if value else 0.0   # smaller is better


def peak_gops(cand: dict, limits: dict) -> float | None:
    """The compute ceiling for the candidate's precision (INT8 ops or FP32 flops)."""
    key = "int8_gops" if cand.get("precision") in INT8_PRECISIONS else "fp32_gflops"
    return f.num(limits.get(key))


def intensity_ops_per_byte(cand: dict, model: dict | None = None) -> float | None:
    """2·MACs / (weight bytes + recorded activation bytes), None if either is missing."""
    macs = f.num(cand.get("macs"))
    weights = f.num((cand.get("artifact") or {}).get("bytes"))
    if weights is None and f.num(cand.get("size_mb")) is not None:
        weights = f.num(cand.get("size_mb")) * 1e6
    if not macs or not weights:
        return None
    activations = f.num((model or {}).get("activation_bytes")) or 0.0
    return 2.0 * macs / (weights + activations)


def roofline_series(report: dict) -> dict[str, Any] | None:
    """Each measured candidate's achieved GOP/s (2·MACs / p50) at its intensity, and the
    machine's ceilings; None when the limits were not measured."""
    limits = report.get("machine_limits")
    if not limits or f.num(limits.get("mem_gbs")) is None:
        return None
    points = []
    for cand in report.get("candidates") or []:
        intensity = intensity_ops_per_byte(cand, report.get("model"))
        if not f.is_measured(cand) or intensity is None:
            continue
        achieved = 2.0 * f.num(cand["macs"]) / (f.p50_ms(cand) / 1e3) / 1e9
        peak = peak_gops(cand, limits)
        bound = min(peak, f.num(limits["mem_gbs"]) * intensity) if peak else None
        points.append({"id": cand["id"], "label": cand.get("label") or cand["id"],
                       "precision": cand.get("precision"), "intensity": intensity,
                       "achieved_gops": achieved, "bound_gops": bound,
                       "pick": cand["id"] == report.get("pick")})
    return {"points": points, "mem_gbs": f.num(limits["mem_gbs"]),
            "fp32_gflops": f.num(limits.get("fp32_gflops")),
            "int8_gops": f.num(limits.get("int8_gops"))}
