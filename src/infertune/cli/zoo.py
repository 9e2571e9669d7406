"""`infertune zoo [NAME...]` (the built-in architectures) and `infertune zoo train NAME`
(retrain a reference model), with their terminal rendering."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .common import Parents, human, make_console, shape_text
from .evaluate import pct

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console

# `infertune zoo train NAME` is parsed by a subcommand named "zoo-train" (not listed in the
# help): `zoo` itself takes optional positional names, which argparse cannot mix with nested
# subcommands, so the two words are joined before parsing. `infertune zoo NAME...` still lists.
ZOO_TRAIN = "zoo-train"


def zoo_train_argv(argv: list[str]) -> list[str]:
    """["zoo", "train", ...] -> ["zoo-train", ...]; anything else unchanged."""
    return [ZOO_TRAIN, *argv[2:]] if argv[:2] == ["zoo", "train"] else argv


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("zoo", parents=parents.common, help="list the built-in architectures",
                       epilog="`infertune zoo train NAME` trains a reference model "
                              "(see `infertune zoo train --help`)")
    p.add_argument("names", nargs="*", help="only these entries")
    p.set_defaults(run=run)


def add_train(sub, parents: Parents) -> None:
    p = sub.add_parser(ZOO_TRAIN, parents=parents.common, prog="infertune zoo train",
                       description="Train a reference model deterministically on the CPU: "
                                   "ref-small or ref-large on sample:train (about a minute), "
                                   "ref-clutter on clutter:train, ref-detector (a Darknet "
                                   "YOLO) on digits-det:train (tens of minutes each).")
    p.add_argument("name", help="ref-small, ref-large, ref-clutter or ref-detector")
    p.add_argument("--out", help="output folder for NAME.cfg, NAME.weights, NAME.json (default: "
                                 "~/.local/share/infertune/zoo; the shipped weights are replaced "
                                 "only if --out points at them)")
    p.add_argument("--epochs", type=int, help="instead of the recipe's epochs")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and "
                                                       "augmentation (default 0)")
    p.set_defaults(run=run_train)


def run(args: argparse.Namespace) -> Any:
    from ..commands.zoo import zoo_list

    rows = zoo_list(args.names or None)
    if not args.json:
        zoo_table(rows)
    return rows


def run_train(args: argparse.Namespace) -> Any:
    from ..commands.zoo import zoo_train

    result = zoo_train(args.name, out=args.out, epochs=args.epochs, seed=args.seed,
                       progress=True)  # on stderr: stdout stays pure JSON
    if not args.json:
        train_summary(result)
    return result


def zoo_table(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    from rich.table import Table
    table = Table(title="infertune zoo (random weights unless trained or a checkpoint is given)")
    for col in ("name", "input", "classes", "params", "MACs", "preprocess", "weights", "description"):
        table.add_column(col, justify="right" if col in ("params", "MACs", "classes") else "left")
    for r in rows:
        weights = r.get("weights") or "random"
        if r.get("recorded_top1") is not None:
            weights = f"{weights} ({100 * r['recorded_top1']:.1f}% val top-1)"
        elif r.get("recorded_map") is not None:
            weights = f"{weights} ({100 * r['recorded_map']:.1f} val mAP)"
        table.add_row(r["name"], shape_text(r["input_size"]), str(r["num_classes"]),
                      human(r["params"]),
                      human(r["macs"]), r["preprocess"], weights, r["description"])
    (console or make_console()).print(table)


def scored(val: dict[str, Any]) -> str:
    """The record's validation line: top-1/top-5 of a classifier, mAP/AP50 of a detector."""
    if "map" in val:
        low, high = val["map_ci"]
        return (f"  val mAP@[.5:.95] {100 * val['map']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
                f" · AP50 {100 * val['ap50']:.1f} on {val['images']} held-out images "
                f"({val['data']})")
    return (f"  val top-1 {pct(val['top1'], val['top1_ci'])} · top-5 {pct(val['top5'])} on "
            f"{val['n']} held-out digits ({val['data']})")


def train_summary(record: dict[str, Any], console: Console | None = None) -> None:
    """One block: where the files went and what the trained model scored."""
    console = console or make_console()
    val = record["val"]
    console.print(
        f"trained {record['name']}: {record['epochs_done']} epochs in {record['train_seconds']:.1f} s "
        f"({record['threads']} threads, seed {record['seed']}"
        f"{', stopped early by the time budget' if record['stopped_early'] else ''})\n"
        f"{scored(val)}\n"
        f"  {record['params']:,} params · {record['macs']:,} MACs · "
        f"{record['weights_bytes']:,} bytes of weights\n"
        + "\n".join(f"  wrote {path}" for path in record.get("files", {}).values()),
        highlight=False, markup=False)
