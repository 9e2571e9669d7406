"""Table rows → header + string cells, shared by the Markdown and HTML renderers.

A missing number is shown as "not measured", never as 0 or a blank.
"""
from __future__ import annotations

from typing import Any, Sequence

from . import decision, gaps, ledger, tables
from . import fields as f
from .run_report import RunReport

NA = f.NOT_MEASURED


def number(value: float | None, digits: int = 3, suffix: str = "") -> str:
    """Three significant digits (the timing spread makes more digits noise)."""
    if value is None:
        return NA
    return f"{value:.{digits}g}{suffix}"


def fixed(value: float | None, decimals: int = 2, suffix: str = "") -> str:
    return NA if value is None else f"{value:.{decimals}f}{suffix}"


def interval(triple: Sequence[float | None], decimals: int = 2) -> str:
    """'90.00 [88.00, 91.80]', or the value alone when the interval is not recorded."""
    value, low, high = triple
    if value is None:
        return NA
    if low is None or high is None:
        return f"{value:.{decimals}f}"
    return f"{value:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


def budget(within: Any) -> str:
    return {True: "within", False: "over"}.get(within, NA)


def _throughput(row: dict) -> str:
    if row["throughput_ips"] is None:
        return NA
    return f"{row['throughput_ips']:.3g} @ batch {row['best_batch']}"


def p50(row: dict) -> str:
    """The row's p50, marked where it comes from the side-by-side rounds."""
    return number(row["p50_ms"]) + (f.ROUNDS_MARK if row["p50_ms"] is not None
                                    and row.get("p50_rounds") else "")


def any_from_rounds(rows: list[dict]) -> bool:
    return any(row.get("p50_rounds") and row["p50_ms"] is not None for row in rows)


def stage_table(report: RunReport, rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    metric = f.metric_name(report)
    head = ["stage", "candidate", "precision", "p50 ms", "p90 ms", "throughput img/s",
            "size MB", "compression", "speedup", f"{metric} % [95% CI]",
            "drop points [95% CI]", "budget"]
    body = []
    for row in rows:
        name = row["label"] + (" ★ pick" if row["pick"] else "")
        if row["alternatives"]:
            name += f" (best of {row['alternatives'] + 1})"
        body.append([row["stage"], name, str(row["precision"]), p50(row),
                     number(row["p90_ms"]), _throughput(row), number(row["size_mb"]),
                     number(row["compression_ratio"], suffix="×"),
                     number(row["speedup"], suffix="×"), interval(row["metric"]),
                     interval(row["drop"]),
                     budget(row["within_budget"]) + (" (none of this stage within)"
                                                     if row["over_budget"] else "")])
    return head, body


def candidates_table(report: RunReport) -> tuple[list[str], list[list[str]]]:
    head = ["id", "candidate", "stage", "runtime", "precision", "status", "p50 ms",
            "speedup", "drop points [95% CI]", "budget", "note"]
    body = []
    for row in tables.candidate_rows(report):
        notes = [n for n, on in (("★ pick", row["pick"]), ("on the front", row["frontier"]))
                 if on] + ([row["reason"]] if row["reason"] else [])
        body.append([str(row["id"]), str(row["label"]), str(row["stage"]),
                     str(row["runtime"]), str(row["precision"]), str(row["status"]),
                     p50(row), number(row["speedup"], suffix="×"),
                     interval(row["drop"]), budget(row["within_budget"]), "; ".join(notes)])
    return head, body


def slow_table(report: RunReport) -> tuple[list[str], list[list[str]]]:
    head = ["candidate", "runtime", "vs", "speedup vs that", "likely reasons"]
    body = [[str(r["label"]), str(r["runtime"]), f"{r['reference']} ({r['reference_id']})",
             f"{r['ratio']:.2f}×", " · ".join(r["reasons"])] for r in ledger.slow_rows(report)]
    return head, body


def mixed_table(report: RunReport) -> tuple[list[str], list[list[str]]]:
    head = ["candidate", "ranked by", "layers added to float", "costs ms",
            "saves drop points", "ms per point saved"]
    body = [[str(r["candidate"]), r["rank"], ", ".join(r["layers"]) or NA, fixed(r["cost_ms"]),
             fixed(r["drop_saved"]), fixed(r["ms_per_point"])]
            for r in ledger.mixed_ledger_rows(report)]
    return head, body


def training_table(report: RunReport) -> tuple[list[str], list[list[str]]]:
    """One row per training step that ran (recovery after pruning/low-rank, QAT), from its
    pass details: what a reader needs to judge the recovery (how long, how many steps, in
    which arithmetic and layout, how far validation moved, why it stopped)."""
    head = ["candidate", "step", "setup", "steps", "seconds", "validation before → after",
            "best step", "stopped"]
    body = []
    for cand in report.candidates:
        for rep in cand.screen.passes if cand.screen else ():
            d = rep.details
            if not rep.applied or d.get("steps_run") is None:
                continue
            setup = d.get("training_setup") or {}
            arith = "/".join(str(setup[k]) for k in ("autocast", "layout") if setup.get(k))
            back = setup.get("fallback")
            if back and arith:  # recovery._fall_back: the trial's choice did not learn
                arith = f"{back['from']}, then {arith} from step {back['step']}"
            before, after = d.get("val_metric_before"), d.get("val_metric_after")
            moved = (f"{d.get('val_metric')} {fixed(before, 4)} → {fixed(after, 4)}"
                     if before is not None and after is not None else NA)
            stop = str(d.get("stop_reason") or NA) + ("; trained once, loaded from the "
                                                      "run's cache" if d.get("cache") else "")
            body.append([f"{cand.id} ({cand.label})", rep.pass_name, arith or NA,
                         str(d["steps_run"]), fixed(d.get("seconds"), 1), moved,
                         str(d.get("best_step", NA)), stop])
    return head, body


def gaps_table(report: RunReport) -> tuple[list[str], list[list[str]]]:
    head = ["not measured", "why", "where"]
    body = [[g["what"], g["note"], ", ".join(g["where"])] for g in gaps.unmeasured(report)]
    body += [[f"candidate {r['id']} ({r['runtime']})", f"{r['status']}: {r['reason']}", str(
        r["label"])] for r in gaps.not_run(report)]
    return head, body


def _round_p50s(row) -> str:
    return ", ".join(number(p) for p in row.p50_ms_by_round) or NA


def final_table(report: RunReport) -> tuple[list[str], list[list[str]]]:
    head = ["candidate", "p50 ms (median of rounds)", "p50 ms per round",
            "speedup median [min, max] over rounds"]
    body = []
    for row in report.final.rows if report.final else ():
        cand = report.by_id.get(row.id)
        body.append([(cand.label if cand else row.id)
                     + (" ★ pick" if row.id == report.pick_id else ""),
                     number(row.p50_ms), _round_p50s(row),
                     f"{number(row.speedup)}× [{number(row.speedup_min)}, "
                     f"{number(row.speedup_max)}]"])
    return head, body


def _speedup(report: RunReport, cand) -> str:
    text = number(cand.decision.speedup, suffix="×")
    row = report.final_row(cand)
    if row is not None and row.speedup_min is not None and row.speedup_max is not None:
        text += f" [{number(row.speedup_min)}, {number(row.speedup_max)}] over the rounds"
    return text


def summary_lines(report: RunReport) -> list[str]:
    """The verdict in a few sentences: the pick and its gain (and which measurement
    decided it), or why there is none."""
    model = report.model
    macs, params = f.num(model.get("macs")), f.num(model.get("params"))
    lines = [f"Model **{model.get('name') or model.get('source')}** "
             f"({number(macs and macs / 1e9)} GMAC, {number(params and params / 1e6)} M "
             f"params); run {report.run.get('status')}."]
    chosen, base = report.pick, report.baseline
    if chosen:
        drop = interval(f.drop_triple(chosen))
        lines.append(f"Pick: **{chosen.label}** — p50 {f.p50_text(chosen, report)} ms "
                     f"vs baseline {f.p50_text(base, report)} ms "
                     f"({_speedup(report, chosen)}), "
                     f"drop {drop} points (budget {f.max_drop(report)}).")
        lines += decision.basis_lines(report)
    else:
        no_pick = report.no_pick or {}
        lines.append(f"No pick: {no_pick.get('reason') or 'no reason recorded'}; closest: "
                     f"{', '.join(no_pick.get('closest') or []) or 'none'}.")
    return lines
