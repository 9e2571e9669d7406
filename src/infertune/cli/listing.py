"""`infertune list passes|runtimes|formats`: what is registered and what can run here."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .common import Parents, make_console

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("list", parents=parents.common, help="list passes (with options), runtimes "
                                                            "(with availability) or model formats")
    p.add_argument("what", choices=("passes", "runtimes", "formats"))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    from ..commands.listing import list_items

    rows = list_items(args.what)
    if not args.json:
        list_table(args.what, rows)
    return rows


def list_table(kind: str, rows: list[dict[str, Any]], console: Console | None = None) -> None:
    from rich.table import Table
    console = console or make_console()
    table = Table(title=f"infertune {kind}")
    if kind == "passes":
        for col in ("name", "takes", "data", "options", "description"):
            table.add_column(col)
        for r in rows:
            options = ", ".join(f"{o['name']}: {o['type']} = {o['default']!r}" for o in r["options"])
            table.add_row(r["name"], "/".join(r["accepts"]), "yes" if r["needs_data"] else "",
                          options or "–", r["description"])
    elif kind == "runtimes":
        for col in ("name", "available", "takes", "artifact", "description"):
            table.add_column(col)
        for r in rows:
            available = "yes" if r["available"] else f"no: {r['reason']}"
            table.add_row(r["name"], available, "/".join(r["accepts"]), r["artifact"],
                          r["description"])
    else:
        for col in ("name", "kind", "files", "note"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], r["kind"], r["files"], r["note"])
    console.print(table)
