"""`infertune run CONFIG`: replay an optimize run from its config.yaml (the same progress and
summary as `infertune optimize`)."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .common import Parents
from .optimize import run_config


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("run", parents=parents.common,
                       help="replay an optimize run from its config.yaml")
    p.add_argument("config", help="a config.yaml written by optimize")
    p.add_argument("--out", help="run directory (default: the one in the config)")
    p.add_argument("--resume", action="store_true", help="continue the run in the directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> Any:
    from ..config import load_config  # yaml and the schema: only when a run starts

    config = load_config(args.config)
    if args.out:
        config = dataclasses.replace(config, out=args.out)
    return run_config(config, args)
