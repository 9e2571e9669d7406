"""`optimize`, top to bottom: run directory and lock → model and data → baseline → stages
(fused, quantized, mixed, compressed, combined) → runtime configuration of the best
contenders → the deferred full evaluations (candidates that cannot be the pick) →
side-by-side comparison of the contenders → pick → export → report. The only function that
knows this order is `optimize`."""
from __future__ import annotations

import dataclasses
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._atomic import write_text
from ..config import OptimizeConfig, load_config, save_config
from ..errors import ConfigError, InfertuneError
from ..load import load_model
from ..measure.fingerprint import cpu_facts
from ..measure.rounds import default_threads, summarize
from ..passes import PASSES
from ..report import write_reports
from ..runtimes import RUNTIMES
from . import rundata, select, space
from .best import export_best
from .candidate import Candidate, Status
from .engine import Evaluator, Progress
from .evaluation import load_outputs
from .executors import make_executor
from .journal import Journal, RunLock
from .report import assemble, layer_times_for, machine_limits
from .screening import PROBE_MARGIN
from .state import RunState, SearchClock


def optimize(config: OptimizeConfig, *, resume: bool = False,
             progress: Progress | None = None) -> dict[str, Any]:
    """Runs (or resumes) the search described by `config`; returns the report dict, also
    written to RUN_DIR/report.json."""
    run_dir = Path(config.out)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with RunLock(run_dir):
        _check_run_dir(run_dir, config, resume)
        save_config(config, run_dir / "config.yaml")
        journal = Journal(run_dir / "journal.jsonl")
        ev = _start(config, run_dir, journal, progress or (lambda event: None))
        try:
            run_stages(ev)
            configure_stage(ev)
            deferred_stage(ev)
            final = final_comparison(ev)
            report = assemble(ev.state, final, started, ev.executor.describe())
            report["export"] = export_best(ev.state, report)
            extras(ev.state, report)
        finally:
            ev.executor.close()
        write_text(run_dir / "report.json", json.dumps(report, indent=1, default=_json_default))
        report["reports"] = _render(run_dir, report)
    return report


def _check_run_dir(run_dir: Path, config: OptimizeConfig, resume: bool) -> None:
    saved = run_dir / "config.yaml"
    has_run = (run_dir / "journal.jsonl").exists() or saved.exists()
    if has_run and not resume:
        raise ConfigError(f"{run_dir} already holds a run: add --resume to continue it, or "
                          "give another --out")
    if resume and saved.exists():
        diff = load_config(saved).differences(config)
        if diff:
            raise ConfigError(f"{run_dir} holds a run with another configuration "
                              f"({', '.join(diff)} differ); resume it with the same options "
                              "or give another --out")


def _start(config: OptimizeConfig, run_dir: Path, journal: Journal,
           progress: Progress) -> Evaluator:

    handle = load_model(config.model, input_size=config.input_size, **config.load)
    _check_metric(config.metric, handle)
    data_info = rundata.prepare(run_dir, config, handle)
    ctx = plan_context(config, handle, data_info)
    executor = make_executor(config.executor, config.address)
    state = RunState(config, run_dir, handle, ctx, data_info,
                     clock=SearchClock.from_journal(list(journal.read())),
                     groups=rundata.groups(run_dir))
    ev = Evaluator(state, journal, executor, progress)
    if journal.dropped:
        ev.emit("journal", dropped=journal.dropped)
    return ev


def _check_metric(metric: str, handle) -> None:
    """A detector is judged by mAP, a classifier by top-1: the other task's metric is
    refused before anything is built."""
    detector = handle.meta.get("detection") is not None
    if detector and metric in ("top1", "agreement"):
        raise ConfigError(f"--metric {metric} is for classifiers; {handle.name} is a detector "
                          "(--metric map or auto)")
    if not detector and metric == "map":
        raise ConfigError(f"--metric map is for detectors; {handle.name} is not one")


def plan_context(config: OptimizeConfig, handle, data_info: dict[str, Any]) -> space.PlanContext:
    wanted = list(config.runtimes) if config.runtimes else RUNTIMES.names()
    for name in wanted:
        RUNTIMES.get(name)  # unknown names fail here, with a did-you-mean
    available, unavailable = [], {}
    for name in wanted:
        ok, why = RUNTIMES.get(name).available()
        if ok:
            available.append(name)
        elif config.runtimes or not RUNTIMES.get(name).needs_gpu:  # a CPU host: GPU ones
            # not asked for by name are simply not part of the plan
            unavailable[name] = why or "unavailable"
    if config.passes:
        for name in config.passes:
            PASSES.get(name)
    reference = "torch" if handle.format == "torch" else "onnxruntime"
    if reference not in available:
        available.insert(0, reference)  # the baseline always runs on the reference runtime
    threads = config.threads or default_threads()
    return space.PlanContext(
        model_key=model_key(config), model_format=handle.format, runtimes=tuple(available),
        unavailable=unavailable, isa=cpu_facts().get("isa", {}),
        allowed_passes=frozenset(config.passes) if config.passes else None,
        registered_passes=frozenset(PASSES.names()),
        calib_samples=data_info["calib_n"], train_samples=data_info.get("train_n") or 0,
        recovery_seconds=space.recovery_seconds(config.recovery_seconds, config.time_budget_s),
        gpu=any(RUNTIMES.get(n).needs_gpu for n in available), reference_runtime=reference,
        detector=handle.meta.get("detection") is not None, softmax=has_softmax(handle),
        objective=config.objective,
        threads=threads, max_threads=config.threads or max(threads, logical_cpus()))


def logical_cpus() -> int:
    """The logical CPUs this process may run on (SMT siblings included)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def model_key(config: OptimizeConfig) -> dict[str, Any]:
    return {"source": config.model, "load": dict(config.load),
            "input_size": list(config.input_size) if config.input_size else None}


# ---------------------------------------------------------------------------- stages
def run_stages(ev: Evaluator) -> None:
    """The stage sequence, top to bottom: baseline → fused + quantized → mixed → compressed
    → combined."""
    st = ev.state
    base = _stage(ev, [space.baseline(st.plan_ctx)])[0]
    if base.status is not Status.OK:
        raise InfertuneError(f"the original model could not be run on "
                             f"{base.runtime}: {base.reason}")
    st.baseline = base
    if st.base_eval is None:  # resumed: the baseline's evaluation came from the journal
        st.set_baseline(load_outputs(st.logits[base.id]), rundata.labels(st.run_dir))
    # Fused and quantized candidates are screened first and fully evaluated together, fastest
    # probe first: an INT8 candidate measured early lets the dominance rule drop the slower
    # FP32 ones before their (costly) full evaluation, and, under a time budget, defer those
    # that cannot be the pick (their accuracy unknown: on a labelled run 64 screening images
    # bound no drop tightly enough for dominance) until the later stages have had their time.
    fused = _stage(ev, space.fused(st.plan_ctx), full=False)
    quant = _stage(ev, space.quantized(st.plan_ctx), full=False)
    _full(ev, fused + quant)
    recal = _stage(ev, _recalibrated(st, [st.records[c.id] for c in quant]))
    _stage(ev, _mixed(st, [st.records[c.id] for c in quant + recal]))
    fp32 = _compression_base(st, [base, *(st.records[c.id] for c in fused)])
    comp_ctx = dataclasses.replace(st.plan_ctx, train_step_s=_train_step_s(base))
    comp = []
    if fp32:
        planned = space.compressed(comp_ctx, fp32, st.labels is not None)
        # each structure alone first (seconds): recovery trains only where it is faster
        bare = _stage(ev, space.unrecovered(comp_ctx, planned))
        # never deferred: the combined stage starts from a compressed candidate measured in full
        comp = _stage(ev, _worth_recovering(st, planned, bare, fp32), defer=False)
        # the room left after the continuation's own evaluation and the combined stage's
        room = ev.training_room_s("continued", 1 + space.COMBINED_QUANTIZERS)
        comp += _stage(ev, _continued(st, comp_ctx, comp, room), defer=False)
    best_comp = _fastest([c for c in comp if st.within(c)])
    quantized = [c for c in st.records.values()
                 if c.precision in ("int8", "mixed") and st.within(c) and c.measured]
    best_q = sorted(quantized, key=lambda c: (c.p50_ms, c.id))[:space.COMBINED_QUANTIZERS]
    if best_comp and best_q:
        _stage(ev, [cand for q in best_q for cand in space.combined(st.plan_ctx, best_comp, q)])


def _stage(ev: Evaluator, cands: list[Candidate], full: bool = True,
           defer: bool = True) -> list[Candidate]:
    """Screens a stage's candidates, then (unless `full` is False) evaluates the survivors
    (`defer`: those that cannot be the pick later, Evaluator.full_all)."""
    cands = space.order(cands)
    if not cands:
        return []
    ev.emit("stage", stage=cands[0].plan.stage, n=len(cands),
            planned=sum(c.status is Status.PLANNED and ev.journal.get("full", c.id) is None
                        for c in cands))
    cands = ev.screen_all(cands)
    if full:
        _full(ev, cands, defer)
    return [ev.state.records[c.id] for c in cands]


def _full(ev: Evaluator, cands: list[Candidate], defer: bool = True) -> None:
    ev.full_all(cands, defer)
    ev.emit("front", front=_front_rows(ev.state))


def deferred_stage(ev: Evaluator) -> None:
    """The full evaluations deferred because those candidates cannot be the pick: run last,
    for the Pareto front, while the time budget allows."""
    if ev.state.deferred:
        ev.full_deferred()
        ev.emit("front", front=_front_rows(ev.state))


def _compression_base(s: RunState, fp32: list[Candidate]) -> Candidate | None:
    """The FP32 model compression starts from: the fastest within budget, or deferred (an
    exact FP32 rewrite the screening did not discard; its probe stands for its p50)."""
    pool = [c for c in fp32 if s.within(c) or c.id in s.deferred]
    speed = (lambda c: c.p50_ms if c.measured else c.screen.probe_ms)
    pool = [c for c in pool if speed(c) is not None]
    return min(pool, key=lambda c: (speed(c), c.id)) if pool else None


def _worth_recovering(s: RunState, planned: list[Candidate], bare: list[Candidate],
                      fp32: Candidate) -> list[Candidate]:
    """The compression candidates whose recovery is worth its time: each is skipped when its
    structure alone (`bare`, the same steps without recovery) probed no faster than the
    FP32 model it starts from — training cannot make a structure faster, and on ref-clutter
    low-rank at 90% energy trained 135 s to probe at 4.16 ms against 3.9 ms."""
    probes = {space.structure_of(c): s.records[c.id].screen.probe_ms for c in bare
              if s.records[c.id].screen is not None}
    parent = s.records.get(fp32.id, fp32)
    parent_ms = parent.p50_ms if parent.measured else \
        (parent.screen.probe_ms if parent.screen else None)
    out = []
    for cand in planned:
        ms = probes.get(space.structure_of(cand))
        if cand.status is Status.PLANNED and ms is not None and parent_ms is not None \
                and ms >= parent_ms:
            seconds = next((step.options.get("seconds") for step in cand.plan.recipe
                            if step.pass_name in space.RECOVERY_PASSES), None)
            cand = space.skip(cand, f"its structure alone probed at {ms:.2f} ms on "
                                    f"{cand.runtime}, no faster than {parent.label} "
                                    f"({parent_ms:.2f} ms): recovery"
                                    f"{f' ({seconds:g} s)' if seconds else ''} trains "
                                    f"weights, it cannot make the structure faster")
        out.append(cand)
    return out


def _continued(s: RunState, ctx: space.PlanContext, comp: list[Candidate],
               room_s: float | None = None) -> list[Candidate]:
    """The second rung of recovery by successive halving (space.RECOVERY_FIRST_SHARE): the
    time each trained structure did not get in its first recovery, pooled, for one of them,
    cut to `room_s` (what the time budget leaves for training; None: no limit). Under half
    a first recovery's time it is not worth starting: skipped, saying so.

    Which one: the fastest compression candidate that missed the budget (measured in full,
    or screened out by the over-budget rule on its screening samples; its speed is its p50,
    else its probe), faster than every compression candidate already within it (training
    cannot make a structure faster, so a slower one could not become the better pick), and
    still learning (its best validation came in the second half of its steps). The others
    that missed the budget are planned and skipped with the rule's reason, so the report
    says why. Why the screened-out ones count: a short first recovery leaves the fastest
    structure far enough over the budget that 64 screening images already show it (on
    ref-clutter the 50% prune after 67.5 s: 7.8 points [1.7, 17.0]), and it is the one whose
    continuation can gain the most."""
    comp = [s.records.get(c.id, c) for c in comp]
    trained = [c for c in comp if c.screen is not None]
    first = space.first_recovery_seconds(ctx)
    pooled = round(len(trained) * (ctx.recovery_seconds - first), 1)
    if not trained or pooled <= 0:
        return []
    seconds = pooled if room_s is None else min(pooled, room_s)
    bar = min((c.p50_ms for c in comp if s.within(c)), default=float("inf"))
    out, chosen = [], None
    for cand in sorted((c for c in comp if _misses_budget(s, c) and _speed_ms(c) is not None),
                       key=lambda c: (_speed_ms(c), c.id)):
        more = space.continued(ctx, cand, seconds)
        why = _not_continued(cand, bar, chosen)
        if why is None and seconds < first / 2:
            more = space.continued(ctx, cand, pooled)
            why = (f"the time budget leaves {room_s:g} s of training after the evaluations "
                   f"still to come, under half a first recovery ({first / 2:g} s)")
        if why is None:
            chosen = cand
        out.append(space.skip(more, why) if why else more)
    return out


def _speed_ms(cand: Candidate) -> float | None:
    """The p50 of a measured candidate, else its screening probe."""
    return cand.p50_ms if cand.measured else (cand.screen.probe_ms if cand.screen else None)


def _not_continued(cand: Candidate, bar_ms: float, chosen: Candidate | None) -> str | None:
    """Why `cand` (over the budget) is not trained longer, or None."""
    if chosen is not None:
        return f"only one structure is continued: {chosen.label} is faster"
    if _speed_ms(cand) >= bar_ms:
        return (f"a compression candidate within the budget is already faster ({bar_ms:.2f} "
                f"ms against {_speed_ms(cand):.2f} ms): training cannot make this one faster")
    trained = [p for p in cand.screen.passes if p.pass_name in space.RECOVERY_PASSES]
    if not trained:
        return "no recovery pass ran"
    details = trained[-1].details
    steps, best = details.get("steps_run"), details.get("best_step")
    if not steps or best is None or best < steps / 2:
        return (f"its recovery stopped learning: the best validation came at step {best} "
                f"of {steps}")
    return None


def _recalibrated(s: RunState, quant: list[Candidate]) -> list[Candidate]:
    """Other calibrations of each min-max INT8 candidate (space.RECALIBRATIONS): built
    where the min-max one misses the budget; otherwise planned and skipped, saying why
    (the same graph with other scales cannot be faster)."""
    out = []
    for cand in quant:
        if not space.recalibration_methods(cand):
            continue
        why = None if _misses_budget(s, cand) else _recalibration_skip(s, cand)
        out += space.recalibrated(s.plan_ctx, cand, why)
    return out


def _recalibration_skip(s: RunState, sibling: Candidate) -> str:
    same = ("another calibration of the same graph runs no faster, so it is built only "
            "where min-max misses the budget")
    if sibling.id in s.deferred:
        return f"its min-max sibling cannot be the pick ({s.deferred[sibling.id]}): {same}"
    if sibling.measured:
        return f"its min-max sibling ({sibling.label}) is within budget: {same}"
    if sibling.status is Status.SCREENED_OUT:
        return f"its min-max sibling was screened out ({sibling.screen_rule}): {same}"
    return (f"its min-max sibling was not measured ({sibling.status.value}"
            f"{': ' + sibling.reason if sibling.reason else ''}); {same}")


def _mixed(s: RunState, quant: list[Candidate]) -> list[Candidate]:
    """Mixed precision only when no INT8 candidate met the budget; its starting point is
    `mixed_parents`' first whose engine can keep layers in float."""
    # a deferred INT8 candidate is slower than one within budget: a mixed one, slower
    # still, could not be the pick either
    int8 = [c for c in quant if c.plan.precision == "int8" and c.screen and c.screen.probe_ms
            and c.id not in s.deferred]
    if not int8 or not all(_misses_budget(s, c) for c in int8):
        return []
    n_layers = quantizable_layers(s.handle)
    for cand in mixed_parents(int8):
        planned = space.mixed(s.plan_ctx, cand, n_layers)
        if planned:
            return planned
    return []


def mixed_parents(int8: list[Candidate]) -> list[Candidate]:
    """The order in which INT8 candidates (all probed) are tried as mixed precision's
    starting point: those whose probe is within PROBE_MARGIN of the fastest, by the
    smallest drop measured (full or screening); then the rest by probe. The fastest alone
    is not the best start: keeping layers float mends the layers its quantizer hurt, so the
    one that hurt least starts nearest the budget (EfficientNet-Lite1: NNCF with mean
    ranges probed fastest at 46.9 points of agreement drop, NNCF min-max 15.6)."""
    fastest = min(c.screen.probe_ms for c in int8)
    near = [c for c in int8 if c.screen.probe_ms <= fastest * (1 + PROBE_MARGIN)]
    rest = [c for c in int8 if c not in near]

    def drop(c: Candidate) -> float:
        return c.drop.value if c.drop is not None else math.inf

    return (sorted(near, key=lambda c: (drop(c), c.screen.probe_ms, c.id))
            + sorted(rest, key=lambda c: (c.screen.probe_ms, c.id)))


def quantizable_layers(handle) -> int:
    """Conv/Linear layers of the model (what an INT8 engine quantizes and mixed precision
    may keep in float)."""
    if handle.format == "torch":
        import torch

        kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
        return sum(isinstance(m, kinds) for m in handle.obj.modules())
    import onnx

    graph = onnx.load(str(handle.path), load_external_data=False).graph
    return sum(n.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose") for n in graph.node)


def has_softmax(handle) -> bool:
    """Whether the model has a Softmax layer: a module named like one (torch's nn.Softmax,
    the Darknet importer's [softmax]) or an ONNX Softmax node. A softmax written inside a
    module's forward is not seen; that model then simply gets no quantized-Softmax
    candidate."""
    if handle.format == "torch":
        return any(type(m).__name__.lower().endswith("softmax")
                   and "logsoftmax" not in type(m).__name__.lower() for m in handle.obj.modules())
    import onnx

    graph = onnx.load(str(handle.path), load_external_data=False).graph
    return any(n.op_type == "Softmax" for n in graph.node)


def _misses_budget(s: RunState, cand: Candidate) -> bool:
    """Measured beyond the budget (in full, or by the screening's over-budget rule). A
    candidate screened out as *dominated* (not faster) says nothing about accuracy: it must
    not start the mixed-precision stage (which made the plan depend on latency noise)."""
    if cand.screen_rule == "over_budget":
        return True
    return cand.measured and not s.within(cand)


def _fastest(cands: list[Candidate]) -> Candidate | None:
    ok = [c for c in cands if c.measured]
    return min(ok, key=lambda c: (c.p50_ms, c.id)) if ok else None


def _train_step_s(base: Candidate) -> float | None:
    return 3 * 16 * base.p50_ms / 1000 if base.p50_ms else None


def _front_rows(s: RunState) -> list[dict[str, Any]]:
    ids = select.frontier(list(s.records.values()), s.config.objective)
    rows = []
    for i in ids:
        c = s.records[i]
        rows.append({"id": i, "label": c.label,
                     "p50_ms": c.p50_ms or (c.screen.probe_ms if c.screen else None),
                     "drop": c.drop.value if c.drop else None, "size_mb": c.size_mb,
                     "within_budget": s.budget.within(c.drop.high) if c.drop else None})
    return rows


# ---------------------------------------------------------------------------- configured
def configure_stage(ev: Evaluator) -> None:
    """The configured stage: the CONFIG_CONTENDERS best contenders within budget (by the
    run's objective), each timed side by side with the runtime configurations its runtime
    proposes (`Evaluator.configure`, select.CONFIG_RULE). The stage is always in the
    report: when it cannot run, `configuration.reason` says why."""
    st = ev.state
    why = space.config_skip_reason(st.plan_ctx, st.config.final_rounds)
    ranked = [] if why else config_contenders(st)
    contenders = [c for c in ranked if space.configured(st.plan_ctx, c)]
    contenders = contenders[:space.CONFIG_CONTENDERS]
    if why is None and not ranked:
        why = "no candidate other than the baseline is fully measured within budget"
    elif why is None and not contenders:
        why = (f"no contender within budget runs on a runtime with configurations to try "
               f"({', '.join(sorted({c.runtime for c in ranked}))} propose none)")
    record: dict[str, Any] = {"rule": select.CONFIG_RULE, "ran": False, "reason": why,
                              "accuracy": "a configuration runs its contender's artifact: its "
                              "drop and fidelity are the contender's, and every timed "
                              "measurement first checks its outputs against the contender's "
                              "own (parity)", "contenders": []}
    for cand in contenders:
        variants = space.configured(st.plan_ctx, cand)
        ev.emit("stage", stage="configured", n=len(variants), planned=len(variants))
        record["contenders"].append(ev.configure(cand, variants))
    record["ran"] = any(c["status"] == "ok" for c in record["contenders"])
    if why is None and not record["ran"]:
        record["reason"] = "; ".join(f"{c['contender']}: {c['reason']}"
                                     for c in record["contenders"] if c.get("reason"))
    st.configuration = record


def config_contenders(s: RunState) -> list[Candidate]:
    """The contenders within budget, best first by the run's objective (not the baseline,
    not a configuration itself); the stage takes the first space.CONFIG_CONTENDERS whose
    runtime proposes configurations."""
    ok = [c for c in s.records.values() if s.within(c) and c.id != s.baseline.id
          and c.plan.stage != "configured"]
    value = (lambda c: -(select.objective_value(c, "throughput") or 0.0)) \
        if s.config.objective == "throughput" else (lambda c: c.p50_ms)
    return sorted(ok, key=lambda c: (value(c), c.id))


# ---------------------------------------------------------------------------- final
FINAL_CONTENDERS = 3


def final_comparison(ev: Evaluator) -> dict[str, Any] | None:
    """The baseline and the best few candidates within budget, measured again side by side
    in interleaved rounds: the speed-ups quoted are medians of per-round ratios."""
    s = ev.state
    superseded = s.superseded()  # a configuration that measurably beat it stands in for it
    ok = [c for c in s.records.values() if s.within(c) and c.id != s.baseline.id
          and c.id not in superseded]
    ok.sort(key=lambda c: (c.p50_ms, c.id))
    contenders = ok[:FINAL_CONTENDERS]
    if not contenders:
        return None
    key = "+".join(c.id for c in contenders)
    entry = ev.journal.get("final", key)
    if entry is not None:
        return entry["result"]
    ev.emit("final", n=len(contenders) + 1, rounds=s.config.final_rounds)
    lineup = [s.baseline, *contenders]
    results: list[list[dict[str, Any]]] = []
    for r in range(s.config.final_rounds):
        row = []
        for cand in lineup:
            with s.clock.phase("final"):
                res = ev.latency(cand, probe=False)
            row.append({**res, "runtime": cand.runtime, "round": r})
        results.append(row)
    summary = summarize(results, [c.id for c in lineup])
    rows = [{"id": c.id, "p50_ms": sm["p50_ms_median"], "p50_ms_by_round": sm["p50_ms_by_round"],
             "speedup": sm["speedup"]} for c, sm in zip(lineup, summary)]
    result = {"rounds": s.config.final_rounds, "rows": rows,
              "method": "interleaved rounds (baseline, then each contender, every round); "
                        "speed-up = median of per-round ratios of p50s, min and max beside it",
              "noisy_rounds": sum(sm["noisy_rounds"] for sm in summary)}
    ev.record("final", key, {"result": result})
    return result


def extras(s: RunState, report: dict[str, Any]) -> None:
    """Per-layer time of the baseline and the pick, and the machine's limits, where the
    modules that measure them are present (each figure null with its reason otherwise)."""
    report["machine_limits"] = machine_limits(s)
    for cid in {report["baseline_id"], report.get("pick")} - {None}:
        rec = next(c for c in report["candidates"] if c["id"] == cid)
        rec["per_layer_ms"], rec["per_layer_note"] = layer_times_for(s, s.records[cid])


def _render(run_dir: Path, report: dict[str, Any]) -> list[str]:
    return [str(p) for p in write_reports(run_dir, report)]


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def elapsed_since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)
