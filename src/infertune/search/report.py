"""report.json (docs/run-format.md) from a finished search."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import screening, select

SCHEMA_VERSION = 1
# Record keys that stay internal (paths to scratch files, planning hints).
INTERNAL = ("eval_logits", "prior_speedup", "screen_logits")


def assemble(s, final: dict[str, Any] | None, started: str) -> dict[str, Any]:
    from .. import __version__
    from ..measure.fingerprint import fingerprint

    cands = [_public(r) for r in s.records.values()]
    base = next(c for c in cands if c["id"] == s.baseline["id"])
    _derive(cands, base, final)
    pick_id = _pick(s, cands, final)
    front = select.frontier(cands, s.config.objective)
    no_pick = None
    if pick_id is None:
        no_pick = {"reason": _no_pick_reason(s, cands),
                   "closest": [c["id"] for c in select.closest(
                       [c for c in cands if c["id"] != base["id"]])]}
    for c in cands:
        if c["id"] not in (base["id"], pick_id):
            c.pop("confusion_matrix", None)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "infertune", "version": __version__},
        "run": {"dir": str(s.run_dir), "started": started,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_s": round(s.elapsed(), 1),
                "status": "time_budget" if s.stopped_by_budget else "complete",
                "resumed_candidates": s.resumed, "executor": s.executor.describe()},
        "config": s.config.to_dict(),
        "model": _model(s),
        "data": {"spec": s.config.data, "labelled": s.data_info["labelled"], "metric": s.metric,
                 "metric_note": s.metric_note, "calib_n": s.data_info["calib_n"],
                 "screen_n": s.data_info["screen_n"], "eval_n": s.data_info["eval_n"],
                 "train_n": s.data_info.get("train_n", 0),
                 "description": s.data_info["description"]},
        "budget": {"max_drop": s.config.max_drop, "drop_type": s.config.drop_type,
                   "budget_points": s.budget_pts, "metric": s.metric,
                   "confidence": s.config.confidence, "objective": s.config.objective,
                   "rule": select.BUDGET_RULE.format(conf=s.config.confidence)},
        "machine": fingerprint(),
        "machine_limits": None,
        "timing": _timing(s),
        "screening": {"screen_n": s.data_info["screen_n"],
                      "probe": {"min_runs": s.config.probe_runs,
                                "min_seconds": s.config.probe_seconds},
                      "rules": list(screening.RULES)},
        "baseline_id": base["id"],
        "candidates": cands,
        "frontier": front,
        "pick": pick_id,
        "no_pick": no_pick,
        "final_comparison": final,
        "export": None,
        "mixed_precision": _mixed_ledger(cands),
    }


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in INTERNAL}
    if out.get("status") == "screened":  # a survivor the time budget stopped before its full run
        out["status"] = "not_tried"
    out.setdefault("fidelity_level", "screen" if out.get("screen_drop") else None)
    if out.get("fidelity_level") == "screen":
        out.setdefault("drop", out.get("screen_drop"))
        out.setdefault("fidelity", out.get("screen_fidelity"))
    acc = out.get("accuracy") or {}
    if "confusion_matrix" in acc:
        out["confusion_matrix"] = acc.pop("confusion_matrix")
    return out


def _derive(cands: list[dict[str, Any]], base: dict[str, Any], final: dict[str, Any] | None) -> None:
    """speedup (baseline p50 / candidate p50; from the side-by-side rounds where the
    candidate took part) and compression_ratio (baseline size / candidate size)."""
    base_p50 = (base.get("latency_ms") or {}).get("p50")
    by_final = {r["id"]: r for r in (final or {}).get("rows", [])}
    for c in cands:
        p50 = (c.get("latency_ms") or {}).get("p50")
        c["speedup"] = base_p50 / p50 if base_p50 and p50 else None
        c["speedup_method"] = "separate measurements (baseline p50 / candidate p50)" \
            if c["speedup"] else None
        row = by_final.get(c["id"])
        if row and row.get("speedup"):
            c["speedup"] = row["speedup"]["median"]
            c["speedup_range"] = [row["speedup"]["min"], row["speedup"]["max"]]
            c["speedup_method"] = "median of per-round ratios, interleaved rounds"
        c["compression_ratio"] = (base["size_mb"] / c["size_mb"]
                                  if base.get("size_mb") and c.get("size_mb") else None)


def _pick(s, cands: list[dict[str, Any]], final: dict[str, Any] | None) -> str | None:
    """Latency objective: the fastest contender of the side-by-side rounds; otherwise (or
    without rounds) the best objective among fully measured candidates within budget."""
    within = {c["id"] for c in cands if c.get("within_budget") and c.get("status") == "ok"
              and c.get("fidelity_level") == "full" and c["id"] != s.baseline["id"]}
    if s.config.objective == "latency" and final:
        rows = [r for r in final["rows"] if r["id"] in within and r.get("p50_ms")]
        if rows:
            return min(rows, key=lambda r: (r["p50_ms"], r["id"]))["id"]
    best = select.pick([c for c in cands if c["id"] in within], s.config.objective)
    return best["id"] if best else None


def _no_pick_reason(s, cands: list[dict[str, Any]]) -> str:
    tried = [c for c in cands if c["id"] != s.baseline["id"] and c.get("status") == "ok"]
    if not tried:
        return "no candidate could be built and measured (see each candidate's reason)"
    return (f"no candidate's drop is within the {s.budget_pts:g}-point budget at "
            f"{s.config.confidence:.0%} confidence; nothing was exported")


def _model(s) -> dict[str, Any]:
    base = s.baseline
    return {"source": s.config.model, "name": s.handle.name, "format": s.handle.format,
            "input": s.handle.input_spec.to_dict(), "params": base.get("params"),
            "macs": base.get("macs"), "weights_bytes": (base.get("passes") or [{}])[0].get(
                "bytes_before") if base.get("passes") else None,
            "family": s.handle.meta.get("family")}


def _timing(s) -> dict[str, Any]:
    c = s.config
    return {"threads": s.threads, "batch": 1, "min_runs": c.min_runs, "min_seconds": c.min_seconds,
            "method": ("each measurement in its own child process (infertune.measure): the "
                       "artifact is opened, warmed up, then timed call by call until both "
                       f"{c.min_runs} calls and {c.min_seconds:g} s are reached; p50/p90/p99 of "
                       f"those calls at batch 1 with {s.threads} threads; peak RSS from VmHWM")}


def _mixed_ledger(cands: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What each added float layer costs (ms) and saves (drop points), K by K."""
    mixed = [c for c in cands if c.get("stage") == "mixed" and c.get("status") == "ok"
             and c.get("fidelity_level") == "full"]
    if not mixed:
        return None
    parent = next((c for c in cands if c["id"] == mixed[0].get("parent_id")), None)
    chain = ([parent] if parent and parent.get("latency_ms") else []) + sorted(
        mixed, key=lambda c: int(c["recipe"][-1]["options"].get("keep", "0")))
    ledger, kept_before = [], []
    for prev, cur in zip(chain, chain[1:]):
        kept = _kept_layers(cur)
        ledger.append({"candidate": cur["id"], "layers": [k for k in kept if k not in kept_before],
                       "cost_ms": cur["latency_ms"]["p50"] - prev["latency_ms"]["p50"],
                       "drop_saved": prev["drop"]["value"] - cur["drop"]["value"]})
        kept_before = kept
    return {"parent": parent["id"] if parent else None, "ledger": ledger,
            "kept": _kept_layers(chain[-1])}


def _kept_layers(cand: dict[str, Any]) -> list[str]:
    for rep in cand.get("passes") or []:
        if rep.get("pass") == "mixed_precision":
            for key in ("kept", "keep_layers", "kept_layers", "excluded"):
                if isinstance(rep.get(key), list):
                    return [str(k) for k in rep[key]]
    return []


def machine_limits(s) -> dict[str, Any] | None:
    try:
        from ..measure.limits import machine_limits as measured_limits
    except ImportError:
        return None
    try:
        return measured_limits(s.threads)
    except Exception as exc:  # noqa: BLE001 - a missing figure is reported, never fatal
        return {"fp32_gflops": None, "int8_gops": None, "mem_gbs": None,
                "method": f"not measured: {exc}"[:200]}


def layer_times_for(s, rec: dict[str, Any]) -> tuple[list | None, str | None]:
    try:
        from ..profile.layer_time import layer_times
    except ImportError:
        return None, "per-layer timing is not available in this version"
    try:
        res = layer_times(rec["runtime"], rec["artifact"]["path"], s.handle.input_spec.chw,
                          s.threads)
    except Exception as exc:  # noqa: BLE001
        return None, f"not measured: {exc}"[:200]
    if isinstance(res, dict):
        return res.get("layers"), res.get("method")
    return res, None
