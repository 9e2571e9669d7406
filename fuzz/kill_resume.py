"""Kill-and-resume campaign for `infertune optimize` (issue: reliability), run by hand:

    python fuzz/kill_resume.py --trials 5 --kills 3
    python fuzz/kill_resume.py --trials 3 --kills 3 --time-budget 100 --controls 3

One uninterrupted run of a small search (ref-small, ONNX Runtime, fold_bn + int8_static)
is the reference. Each trial starts the same search, SIGKILLs its whole process group at
random moments (after a random number of new journal lines), resumes with --resume until it
finishes, and checks the outcome: the same candidate ids as the reference, the same
accuracy figures (screening and full drops, to 1e-9), every journal line before a kill kept
unchanged, and a pick within the budget (its drop's upper end read from the report).

With --time-budget every run (reference and trials) gets the same budget: the search clock
and the budget's decisions are journaled, so a resumed run must not get a fresh budget. The
campaign then also compares the pick and the candidates not tried for lack of time with the
reference's; time spent in a job that a kill interrupted is not on the clock (it was never
journaled), so a resumed run can get slightly more search time than an uninterrupted one,
and where the budget falls in the middle of a stage that may change what it reaches.
Wall time is noisy too: where the cut-off falls near a candidate's start, an uninterrupted
rerun can start one candidate more or less than the reference. `--controls N` adds N
uninterrupted reruns compared the same way, so the trials' agreement is read against them.
Writes fuzz/kill_resume.json (or kill_resume_budget.json).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ARGS = ["ref-small", "--runtimes", "onnxruntime", "--passes", "fold_bn,int8_static",
        "--eval-size", "600", "--screen-size", "32", "--calib-size", "32", "--min-runs", "5",
        "--min-seconds", "0.1", "--final-rounds", "3", "--threads", "1", "--json"]


def start(out: Path, resume: bool, budget_s: float | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "infertune.cli", "optimize", *ARGS, "--out", str(out)]
    if budget_s:
        cmd += ["--time-budget", f"{budget_s:g}s"]
    return subprocess.Popen(cmd + (["--resume"] if resume else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def lines(journal: Path) -> list[bytes]:
    return journal.read_bytes().splitlines() if journal.exists() else []


def kill_after(proc: subprocess.Popen, journal: Path, n: int) -> bool:
    """SIGKILL the group once the journal has n lines; False if the run finished first."""
    while proc.poll() is None:
        if len(lines(journal)) >= n:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    return False


def figures(report: dict) -> dict[str, tuple]:
    return {c["id"]: (c["status"] if c["status"] in ("skipped", "failed") else "",
                      (c.get("screen_drop") or {}).get("value"), (c.get("drop") or {}).get("value"))
            for c in report["candidates"]}


def not_tried(report: dict) -> list[str]:
    return sorted(c["id"] for c in report["candidates"] if c["status"] == "not_tried")


def pick_within_budget(report: dict) -> bool | None:
    """The pick's drop upper end against the budget, as the report states them (None: no
    pick)."""
    pick = next((c for c in report["candidates"] if c["id"] == report.get("pick")), None)
    if pick is None:
        return None
    return pick["drop"]["high"] <= report["budget"]["budget_points"] + 1e-9


def trial(out: Path, kills: int, rng: random.Random, reference: dict,
          budget_s: float | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    journal, done_kills, kept, resumed = out / "journal.jsonl", 0, [], False
    while True:
        proc = start(out, resumed, budget_s)
        resumed = True
        if done_kills < kills:
            target = len(lines(journal)) + rng.randint(1, 4)
            if kill_after(proc, journal, target):
                done_kills += 1
                kept = [ln for ln in lines(journal) if ln.endswith(b"}")]
                continue
        proc.wait()
        break
    report = json.loads((out / "report.json").read_text())
    now = set(lines(journal))
    return {"kills": done_kills, "exit": proc.returncode, **outcome(report, reference),
            "journal_kept": all(ln in now for ln in kept)}


def control(out: Path, reference: dict, budget_s: float | None) -> dict:
    """An uninterrupted rerun compared like a trial: with a time budget, wall-time noise
    alone can move where the budget stops the search (a candidate started or not near the
    cut-off), so the trials' agreement with the reference is read against these."""
    shutil.rmtree(out, ignore_errors=True)
    proc = start(out, False, budget_s)
    proc.wait()
    report = json.loads((out / "report.json").read_text())
    return {"exit": proc.returncode, **outcome(report, reference)}


def outcome(report: dict, reference: dict) -> dict:
    mine, ref = figures(report), figures(reference)
    common = sorted(mine.keys() & ref.keys())
    return {"same_candidates": mine.keys() == ref.keys(),
            "same_figures": all(_close(mine[k][1:], ref[k][1:]) for k in common),
            "pick": report.get("pick"), "same_pick": report.get("pick") == reference.get("pick"),
            "pick_within_budget": pick_within_budget(report),
            "not_tried": len(not_tried(report)),
            "same_not_tried": not_tried(report) == not_tried(reference),
            "search_s": report["run"]["duration_s"],
            "reference_search_s": reference["run"]["duration_s"]}


def _close(a: tuple, b: tuple) -> bool:
    """Equal accuracy figures (screening and full drops) of one candidate in two runs."""
    return all((x is None) == (y is None) and (x is None or abs(x - y) < 1e-9)
               for x, y in zip(a, b))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/infertune-kill-resume")
    p.add_argument("--time-budget", type=float, default=None, help="seconds, every run")
    p.add_argument("--controls", type=int, default=0,
                   help="uninterrupted reruns compared with the reference like the trials")
    args = p.parse_args()
    work, rng = Path(args.work), random.Random(args.seed)
    ref_dir = work / "reference"
    shutil.rmtree(ref_dir, ignore_errors=True)
    t0 = time.monotonic()
    start(ref_dir, False, args.time_budget).wait()
    reference = json.loads((ref_dir / "report.json").read_text())
    trials = [trial(work / f"trial{i}", args.kills, rng, reference, args.time_budget)
              for i in range(args.trials)]
    controls = [control(work / f"control{i}", reference, args.time_budget)
                for i in range(args.controls)]
    summary = {"trials": len(trials), "kills": sum(t["kills"] for t in trials),
               "all_same": all(t["same_candidates"] and t["same_figures"] and t["journal_kept"]
                               and t["exit"] == 0 for t in trials),
               "figures_and_journal_ok": all(t["same_figures"] and t["journal_kept"]
                                             and t["exit"] == 0 for t in trials),
               "same_picks": sum(t["same_pick"] for t in trials),
               "controls": len(controls),
               "control_same_picks": sum(c["same_pick"] for c in controls),
               "control_same_not_tried": sum(c["same_not_tried"] for c in controls),
               "picks_within_budget": all(t["pick_within_budget"] is not False for t in trials),
               "time_budget_s": args.time_budget,
               "seconds": round(time.monotonic() - t0), "details": trials, "control_details": controls,
               "seed": args.seed}
    name = "kill_resume_budget.json" if args.time_budget else "kill_resume.json"
    Path(__file__).with_name(name).write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
