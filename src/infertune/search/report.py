"""report.json (docs/run-format.md) from a finished search."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .. import __version__
from ..measure.fingerprint import fingerprint
from ..measure.limits import machine_limits as measured_limits
from ..passes import model_bytes
from ..runtimes.layer_time import layer_times
from . import screening, select
from .candidate import Candidate, Decision, Status
from .state import RunState

SCHEMA_VERSION = 1


def assemble(s: RunState, final: dict[str, Any] | None, started: str,
             executor: dict[str, Any]) -> dict[str, Any]:
    """report.json from the run's state (never the evaluator: `executor` is its description)."""
    cands = _decide(s, final)
    base = next(c for c in cands if c.id == s.baseline.id)
    rounds = _rounds_pick(s, cands, final)
    pick_id = _pick(s, cands, rounds)
    front = select.frontier(cands, s.config.objective)
    no_pick = None
    if pick_id is None:
        no_pick = {"reason": _no_pick_reason(s, cands),
                   "closest": [c.id for c in select.closest([c for c in cands if c.id != base.id])]}
    rows = []
    for c in cands:
        row = c.to_json()
        if c.id not in (base.id, pick_id):
            row["confusion_matrix"] = None
        rows.append(row)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "infertune", "version": __version__},
        "run": {"dir": str(s.run_dir), "started": started,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_s": round(s.elapsed(), 1),
                "status": "time_budget" if s.stopped_by_budget else "complete",
                "resumed_candidates": s.resumed, "executor": executor,
                "phase_s": s.clock.seconds(),
                "phase_note": "wall seconds per phase of the search, summed over every attempt "
                              "of a resumed run: build (passes, calibration, artifact, "
                              "screening outputs), probe, evaluate (full accuracy), latency "
                              "(full measurement), configure (runtime configuration "
                              "rounds), final (side-by-side rounds)"},
        "config": s.config.to_dict(),
        "model": _model(s),
        "data": {"spec": s.data_info.get("spec", s.config.data),
                 "labelled": s.data_info["labelled"], "metric": s.metric,
                 "metric_note": s.metric_note, "calib_n": s.data_info["calib_n"],
                 "screen_n": s.data_info["screen_n"], "eval_n": s.data_info["eval_n"],
                 "train_n": s.data_info.get("train_n", 0),
                 "eval_clusters": s.data_info.get("eval_clusters"),
                 "description": s.data_info["description"]},
        "budget": {"max_drop": s.config.max_drop, "drop_type": s.config.drop_type,
                   "budget_points": s.budget.points, "metric": s.metric,
                   "confidence": s.config.confidence, "objective": s.config.objective,
                   "rule": s.budget.text()},
        "machine": fingerprint(),
        "machine_limits": None,
        "timing": _timing(s),
        "screening": {"screen_n": s.data_info["screen_n"],
                      "probe": {"min_runs": s.config.probe_runs,
                                "min_seconds": s.config.probe_seconds},
                      "rules": list(screening.RULES)},
        "baseline_id": base.id,
        "candidates": rows,
        "frontier": front,
        "pick": pick_id,
        "pick_basis": _pick_basis(rounds),
        "no_pick": no_pick,
        "final_comparison": final,
        "export": None,
        "mixed_precision": _mixed_ledger(cands),
        "configuration": s.configuration,
    }


def _decide(s: RunState, final: dict[str, Any] | None) -> list[Candidate]:
    """Every record with its Decision: within budget (the one rule), speed-up (from the
    side-by-side rounds where the candidate took part, else separate measurements) and
    compression ratio."""
    base = s.records[s.baseline.id]
    by_final = {r["id"]: r for r in (final or {}).get("rows", [])}
    out = []
    for c in s.records.values():
        speedup, rng, method = None, None, None
        if base.p50_ms and c.p50_ms:
            speedup, method = base.p50_ms / c.p50_ms, "separate measurements (baseline p50 / candidate p50)"
        row = by_final.get(c.id)
        if row and row.get("speedup"):
            speedup, rng = row["speedup"]["median"], (row["speedup"]["min"], row["speedup"]["max"])
            method = "median of per-round ratios, interleaved rounds"
        ratio = base.size_mb / c.size_mb if base.size_mb and c.size_mb else None
        within = s.budget.within(c.drop.high) if c.drop else None
        out.append(c.with_(decision=Decision(within_budget=within, speedup=speedup,
                                             speedup_range=rng, speedup_method=method,
                                             compression_ratio=ratio)))
    return out


def _within(s: RunState, cands: list[Candidate]) -> dict[str, Candidate]:
    """The fully measured candidates within budget, the baseline left out, and so are the
    contenders a configuration of theirs measurably beat (`RunState.superseded`)."""
    superseded = s.superseded()
    return {c.id: c for c in cands if c.measured and s.budget.within(c.drop.high)
            and c.id != s.baseline.id and c.id not in superseded}


def _rounds_pick(s: RunState, cands: list[Candidate],
                 final: dict[str, Any] | None) -> select.RoundsPick | None:
    """The latency objective's pick from the side-by-side rounds (select.TIE_RULE)."""
    if s.config.objective != "latency" or not final:
        return None
    return select.pick_from_rounds(final["rows"], _within(s, cands))


def _pick(s: RunState, cands: list[Candidate], rounds: select.RoundsPick | None) -> str | None:
    """Latency objective: the side-by-side rounds decide (select.TIE_RULE); otherwise (or
    without rounds) the best objective among fully measured candidates within budget."""
    if rounds is not None:
        return rounds.pick
    best = select.pick(list(_within(s, cands).values()), s.config.objective, s.budget)
    return best.id if best else None


def _pick_basis(rounds: select.RoundsPick | None) -> dict[str, Any] | None:
    if rounds is None:
        return None
    return {"rule": select.TIE_RULE, "fastest": rounds.fastest, "tied": list(rounds.tied)}


def _no_pick_reason(s: RunState, cands: list[Candidate]) -> str:
    tried = [c for c in cands if c.id != s.baseline.id and c.status is Status.OK]
    untried = [c for c in cands if c.status is Status.NOT_TRIED]
    if not tried and s.stopped_by_budget:
        return (f"the time budget ({s.config.time_budget_s:g} s) was spent before any "
                f"candidate was fully measured ({len(untried)} not tried); nothing was "
                "exported — give it more time (--time-budget) or fewer passes/runtimes")
    if not tried:
        return "no candidate could be built and measured (see each candidate's reason)"
    return (f"no candidate's drop is within the {s.budget.points:g}-point budget at "
            f"{s.config.confidence:.0%} confidence; nothing was exported")


def _model(s: RunState) -> dict[str, Any]:
    screen = s.baseline.screen
    return {"source": s.config.model, "name": s.handle.name, "format": s.handle.format,
            "input": s.handle.input_spec.to_dict(), "params": screen.params if screen else None,
            "macs": screen.macs if screen else None, "weights_bytes": model_bytes(s.handle),
            "family": s.handle.meta.get("family")}


def _timing(s: RunState) -> dict[str, Any]:
    c = s.config
    return {"threads": s.threads, "batch": 1, "min_runs": c.min_runs, "min_seconds": c.min_seconds,
            "method": ("each measurement in its own child process (infertune.measure): the "
                       "artifact is opened, warmed up, then timed call by call until both "
                       f"{c.min_runs} calls and {c.min_seconds:g} s are reached; p50/p90/p99 of "
                       f"those calls at batch 1 with {s.threads} threads; peak RSS from VmHWM")}


def _mixed_ledger(cands: list[Candidate]) -> dict[str, Any] | None:
    """What each added float layer costs (ms) and saves (drop points), K by K, one chain
    per ranking (mixed_precision rank: sensitivity, cost), each starting from the INT8
    parent: the layers named are those the pass reports it kept in float. `kept`: the
    longest kept list (the candidate that kept the most layers float)."""
    mixed = [c for c in cands if c.plan.stage == "mixed" and c.measured]
    if not mixed:
        return None
    by_id = {c.id: c for c in cands}
    parent = by_id.get(mixed[0].plan.parent_id)
    ledger, ends = [], []
    for rank in ("sensitivity", "cost"):
        family = [c for c in mixed if _rank(c) == rank]
        if not family:
            continue
        chain = ([parent] if parent is not None and parent.measured else []) + sorted(
            family, key=lambda c: int(c.plan.recipe[-1].options.get("keep", "0")))
        kept_before: list[str] = []
        for prev, cur in zip(chain, chain[1:]):
            kept = screening.kept_float_layers(cur)
            ledger.append({"candidate": cur.id, "rank": rank,
                           "layers": [k for k in kept if k not in kept_before],
                           "cost_ms": cur.p50_ms - prev.p50_ms,
                           "drop_saved": prev.drop.value - cur.drop.value})
            kept_before = kept
        ends.append(screening.kept_float_layers(chain[-1]))
    return {"parent": parent.id if parent else None, "ledger": ledger,
            "kept": max(ends, key=len) if ends else []}


def _rank(cand: Candidate) -> str:
    return str(cand.plan.recipe[-1].options.get("rank", "sensitivity"))


def machine_limits(s: RunState) -> dict[str, Any] | None:
    try:
        return measured_limits(s.threads)
    except Exception as exc:  # noqa: BLE001 - a missing figure is reported, never fatal
        return {"fp32_gflops": None, "int8_gops": None, "mem_gbs": None,
                "method": f"not measured: {exc}"[:200]}


def layer_times_for(s: RunState, cand: Candidate) -> tuple[list | None, str | None]:
    try:
        res = layer_times(cand.runtime, cand.artifact, s.handle.input_spec.chw, s.threads)
    except Exception as exc:  # noqa: BLE001
        return None, f"not measured: {exc}"[:200]
    if isinstance(res, dict):
        return res.get("layers"), res.get("method")
    return res, None
