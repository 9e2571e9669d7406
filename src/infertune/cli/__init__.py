"""The `infertune` command line: one module per command (its flags, the call of its library
function with typed options, and its terminal rendering), sharing `common.py` (loading flags
→ LoadOptions, --json, the exit-2 one-line error path). No logic lives here; with --json
only the JSON goes to stdout. Modules that load frameworks are imported only when their
command runs, so `infertune --help` stays quick."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import __version__
from . import (apply, bench, compare, evaluate, export, listing, optimize, predict, profile,
               report, run, sensitivity, zoo)
from .common import parents, parse_size, run_command
from .zoo import zoo_train_argv

# The order of the commands in `infertune --help`.
COMMANDS = (zoo.add, zoo.add_train, evaluate.add, apply.add, listing.add, sensitivity.add,
            report.add, compare.add, optimize.add, run.add, predict.add, profile.add, export.add,
            bench.add)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infertune", description="Make a trained vision model fast within an accuracy budget.")
    parser.add_argument("--version", action="version", version=f"infertune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = parents()
    for add in COMMANDS:
        add(sub, shared)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 2 user error, 130 interrupted)."""
    args = build_parser().parse_args(zoo_train_argv(sys.argv[1:] if argv is None else list(argv)))
    return run_command(args)


__all__ = ["build_parser", "main", "parse_size"]
