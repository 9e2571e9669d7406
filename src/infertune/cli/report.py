"""`infertune report RUN_DIR`: report.md and/or report.html of an optimize run; prints the
files written."""
from __future__ import annotations

import argparse
from typing import Any

from .common import Parents


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("report", parents=parents.common, help="write report.md / report.html of "
                                                              "an optimize run from its "
                                                              "report.json")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (or its report.json)")
    p.add_argument("--format", choices=("md", "html", "both"), default="both",
                   help="md: report.md + report_files/*.svg; html: one self-contained "
                        "report.html; both (default)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    from ..report import report_run  # the library call: imported when it runs

    formats = ("md", "html") if args.format == "both" else (args.format,)
    result = report_run(args.run_dir, formats)
    if not args.json:
        print("\n".join(result["files"]))
    return result
