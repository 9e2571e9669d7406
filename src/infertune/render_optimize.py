"""Terminal rendering of `optimize`: the front table and the closing summary (rich)."""
from __future__ import annotations

from typing import Any


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def front_table(rows: list[dict[str, Any]]):
    from rich.table import Table

    table = Table(title="Pareto front so far", title_justify="left")
    for col in ("candidate", "p50 ms", "drop pt", "size MB", "in budget"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in sorted(rows, key=lambda r: r.get("p50_ms") or 0):
        table.add_row(r["label"], _fmt(r.get("p50_ms")), _fmt(r.get("drop")),
                      _fmt(r.get("size_mb")), {True: "yes", False: "no"}.get(r.get("within_budget"), "—"))
    return table


def optimize_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    by_id = {c["id"]: c for c in report["candidates"]}
    table = Table(title=f"{report['model']['source']}: {report['data']['metric']} budget "
                        f"{report['budget']['budget_points']:.2f} pt", title_justify="left")
    for col in ("stage", "candidate", "status", "p50 ms", "speedup", "drop pt [interval]",
                "size MB"):
        table.add_column(col, justify="left" if col in ("stage", "candidate", "status") else "right")
    for c in report["candidates"]:
        drop = c.get("drop") or {}
        mark = " ★" if c["id"] == report.get("pick") else (" •" if c["id"] in report["frontier"] else "")
        table.add_row(c["stage"], c["label"] + mark, c["status"],
                      _fmt((c.get("latency_ms") or {}).get("p50")), _fmt(c.get("speedup"), ".2f"),
                      f"{_fmt(drop.get('value'))} [{_fmt(drop.get('low'))}, {_fmt(drop.get('high'))}]"
                      if drop else "—", _fmt(c.get("size_mb")))
    console.print(table)
    console.print("★ pick  • Pareto front")
    if report.get("pick"):
        pick = by_id[report["pick"]]
        console.print(f"pick: {pick['label']} — {_fmt(pick.get('speedup'))}× the original, drop "
                      f"{_fmt((pick.get('drop') or {}).get('value'))} points "
                      f"({report['data']['metric']})")
        console.print(f"exported model: {report['export']['artifact']}")
    else:
        console.print(f"no pick: {report['no_pick']['reason']}")
        for cid in report["no_pick"]["closest"]:
            c = by_id[cid]
            console.print(f"  closest: {c['label']}: drop {_fmt(c['drop']['value'])} "
                          f"(up to {_fmt(c['drop']['high'])}) points")
    console.print(f"report: {report['run']['dir']}/report.json"
                  + "".join(f", {p}" for p in report.get("reports", []) if not p.startswith("reports not")))
