"""Terminal rendering of `optimize`: the front table and the closing summary (rich).

The summary reads the typed report (`report.run_report.RunReport`) and shows the same
figures as report.md: each candidate's p50 is `report.fields.decisive_p50` (the
side-by-side rounds' median where it took part, marked †), and the pick line says which
measurement decided the pick.
"""
from __future__ import annotations

from typing import Any, Mapping


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def front_table(rows: list[dict[str, Any]]):
    """The progress event's front rows (search/run.py: id, label, p50_ms, drop, size_mb,
    within_budget), fastest first."""
    from rich.table import Table

    table = Table(title="Pareto front so far", title_justify="left")
    for col in ("candidate", "p50 ms", "drop pt", "size MB", "in budget"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in sorted(rows, key=lambda r: r.get("p50_ms") or 0):
        table.add_row(r["label"], _fmt(r.get("p50_ms")), _fmt(r.get("drop")),
                      _fmt(r.get("size_mb")), {True: "yes", False: "no"}.get(r.get("within_budget"), "—"))
    return table


def _p50(cand, report) -> str:
    from .report import fields as f

    value = f.decisive_p50(cand, report)
    return _fmt(value) + (f.ROUNDS_MARK if value is not None and f.from_rounds(cand, report)
                          else "")


def _drop(cand) -> str:
    drop = cand.drop
    if drop is None:
        return "—"
    return f"{_fmt(drop.value)} [{_fmt(drop.low)}, {_fmt(drop.high)}]"


def candidates_table(report):
    from rich.table import Table

    from .report import fields as f

    budget = f.max_drop(report)
    table = Table(title=f"{report.model.get('source')}: {report.data.get('metric')} budget "
                        f"{_fmt(budget)} pt", title_justify="left")
    for col in ("stage", "candidate", "status", "p50 ms", "speedup", "drop pt [interval]",
                "size MB"):
        table.add_column(col, justify="left" if col in ("stage", "candidate", "status") else "right")
    for c in report.candidates:
        mark = " ★" if c.id == report.pick_id else (" •" if c.id in report.frontier else "")
        table.add_row(c.plan.stage, c.label + mark, c.status.value, _p50(c, report),
                      _fmt(c.decision.speedup), _drop(c), _fmt(c.size_mb))
    return table


def summary_lines(report) -> list[str]:
    """The lines under the table: the pick (or why none), the decision's basis, files."""
    from .report import decision

    lines = []
    pick = report.pick
    if pick is not None:
        lines.append(f"pick: {pick.label} — {_fmt(pick.decision.speedup)}× the original, drop "
                     f"{_fmt(pick.drop.value if pick.drop else None)} points "
                     f"({report.data.get('metric')})")
        lines += decision.basis_lines(report)
        if report.export:
            lines.append(f"exported model: {report.export.get('artifact')}")
    else:
        no_pick = report.no_pick or {}
        lines.append(f"no pick: {no_pick.get('reason')}")
        for cid in no_pick.get("closest") or ():
            c = report.by_id.get(cid)
            if c is not None and c.drop is not None:
                lines.append(f"  closest: {c.label}: drop {_fmt(c.drop.value)} "
                             f"(up to {_fmt(c.drop.high)}) points")
    return lines


def optimize_summary(report: Mapping[str, Any]) -> None:
    """Prints the candidates table and the verdict of a finished optimize (report.json's
    dict, parsed once here)."""
    from rich.console import Console

    from .report import parse_report

    typed = parse_report(report)
    console = Console(highlight=False)
    console.print(candidates_table(typed))
    console.print("★ pick  • Pareto front  † p50 from the side-by-side rounds")
    for line in summary_lines(typed):
        console.print(line)
    console.print(f"report: {typed.run.get('dir')}/report.json"
                  + "".join(f", {p}" for p in report.get("reports", [])
                            if not p.startswith("reports not")))
