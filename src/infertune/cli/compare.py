"""`infertune compare OLD NEW`: differences with uncertainty; the exit status is the verdict
(1 on a regression), for CI."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import Parents, non_negative_float

EPILOG = """\
exit status:
  0  no regression beyond the thresholds
  1  regression: the new p50 latency is more than --fail-on-regression slower AND the 95%
     bootstrap interval of the new/old ratio lies above 1.0 (same CPU only), or the
     accuracy (top-1, or top-1 agreement without labels) fell by more than
     --max-accuracy-drop points
  2  user error (missing file, not a report or model card, bad flag)"""


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("compare", parents=parents.common, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="compare two runs or model cards; fail on a regression (CI)",
                       description="Compares the pick (or baseline) of run OLD with that of "
                                   "run NEW: latency with a bootstrap interval, accuracy "
                                   "with intervals, machine and library differences.")
    p.add_argument("old", metavar="OLD", help="RUN_DIR, report.json or best/model_card.json")
    p.add_argument("new", metavar="NEW", help="RUN_DIR, report.json or best/model_card.json")
    p.add_argument("--fail-on-regression", default="5%", metavar="PCT",
                   help="latency slowdown that fails, e.g. 5%% (default 5%%)")
    p.add_argument("--max-accuracy-drop", type=non_negative_float, default=0.5,
                   metavar="POINTS", help="accuracy drop in points that fails (default 0.5)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    from ..report.compare import compare  # the library call: imported when it runs
    from ..report.compare_text import render

    result = compare(args.old, args.new, fail_on_regression=args.fail_on_regression,
                     max_accuracy_drop=args.max_accuracy_drop)
    if not args.json:
        sys.stdout.write(render(result))
    args.exit_code = result["exit_code"]
    return result
