"""An optimize run's pick side by side with other candidates of the same run (by default its
compressed ones: pruned, decomposed, combined), in interleaved rounds, whatever their budget
verdict: how much speed the budget left on the table, and at what measured drop.

    python benchmarks/run_candidates.py RUN_DIR [--stages pruned,combined] [--rounds 5]
        [--out benchmarks/results/NAME]

Each candidate's built artifact is opened by its runtime in its own measuring process (the
same harness as `optimize`'s final rounds); × pick is the median of per-round ratios of
p50s (> 1: faster than the pick), with the min and max. Drops are the run's own (paired,
on its evaluation set). Writes NAME.json and NAME.md when --out is given.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from infertune._atomic import write_text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--stages", default="pruned,decomposed,combined")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out")
    args = p.parse_args(argv)
    from infertune.measure import SessionFactory, TimingConfig, compare
    from infertune.measure.fingerprint import fingerprint

    run = Path(args.run_dir)
    report = json.loads((run / "report.json").read_text())
    cands = {c["id"]: c for c in report["candidates"]}
    stages = set(args.stages.split(","))
    ids = [report["pick"]] + [c["id"] for c in report["candidates"] if c["stage"] in stages
                              and c["status"] == "ok" and c["id"] != report["pick"]]
    factories = [SessionFactory(cands[i]["runtime"], cands[i]["artifact"]["path"],
                                options=dict(cands[i].get("runtime_options") or {}),
                                label=cands[i]["label"]) for i in ids]
    threads = args.threads or report["timing"]["threads"]
    shape = report["model"]["input"]["shape"][1:]
    out = compare(factories, rounds=args.rounds, input_shape=list(shape), batch=1,
                  throughput=[1], threads=threads,
                  timing=TimingConfig(warmup=5, min_runs=args.min_runs,
                                      min_seconds=args.min_seconds))
    pick_rounds = out["summary"][0]["p50_ms_by_round"]
    rows = []
    for cid, summary in zip(ids, out["summary"]):
        ratios = [a / b for a, b in zip(pick_rounds, summary["p50_ms_by_round"]) if a and b]
        c = cands[cid]
        rows.append({"id": cid, "label": c["label"], "stage": c["stage"],
                     "within_budget": c.get("within_budget"), "drop": c.get("drop"),
                     "p50_ms": summary["p50_ms_median"],
                     "p50_ms_by_round": summary["p50_ms_by_round"],
                     "x_pick": float(np.median(ratios)) if ratios else None,
                     "x_pick_min": min(ratios) if ratios else None,
                     "x_pick_max": max(ratios) if ratios else None})
    result = {"argv": sys.argv, "run_dir": str(run), "budget": report["budget"],
              "threads": threads, "rounds": args.rounds, "machine": fingerprint(), "rows": rows}
    md = markdown(result)
    print(md)
    if args.out:
        write_text(args.out + ".json", json.dumps(result, indent=1, default=str))
        write_text(args.out + ".md", md)
    return 0


def markdown(result: dict) -> str:
    b = result["budget"]
    lines = [f"# An optimize run's pick beside its compressed candidates ({result['rounds']} "
             f"interleaved rounds, batch 1, {result['threads']} threads)", "",
             f"Budget: {b['budget_points']:g} point(s) of {b['metric']}, {b['rule']}.", "",
             "| candidate | stage | p50 ms | × pick [min, max] | drop, points [95%] | within budget |",
             "| --- | --- | ---: | --- | --- | --- |"]
    for r in result["rows"]:
        d = r["drop"] or {}
        drop = (f"{d['value']:+.1f} [{d['low']:+.2f}, {d['high']:+.2f}]"
                if d.get("value") is not None else "–")
        x = (f"{r['x_pick']:.2f} [{r['x_pick_min']:.2f}, {r['x_pick_max']:.2f}]"
             if r["x_pick"] is not None else "–")
        lines.append(f"| {r['label']} | {r['stage']} | {r['p50_ms']:.3g} | {x} | {drop} | "
                     f"{'yes' if r['within_budget'] else 'no'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
