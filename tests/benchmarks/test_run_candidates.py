"""benchmarks/run_candidates.py on a real (tiny) optimize run: the pick and the other
candidates it names are timed side by side, the pick's own ratio is 1, and each row carries
the run's own drop and budget verdict."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import run_candidates  # noqa: E402

from infertune.cli import main  # noqa: E402

FAST = ["--runtimes", "onnxruntime", "--passes", "fold_bn,int8_static", "--eval-size", "400",
        "--screen-size", "32", "--calib-size", "32", "--min-runs", "5", "--min-seconds", "0.1",
        "--final-rounds", "1", "--threads", "1"]


def test_the_pick_beside_the_runs_other_candidates(tmp_path):
    run = tmp_path / "run"
    assert main(["optimize", "ref-small", *FAST, "--out", str(run), "--json"]) == 0
    report = json.loads((run / "report.json").read_text())
    # Which candidate wins (a fused FP32 model or the INT8 one) is a latency race, so the other
    # candidates are taken from both stages: the run measures two fused models and one INT8.
    stages = ("fused", "quantized")
    others = [c for c in report["candidates"]
              if c["stage"] in stages and c["status"] == "ok" and c["id"] != report["pick"]]
    assert len(others) >= 2, "the run measured fewer than two other candidates"
    out = tmp_path / "side"
    assert run_candidates.main([str(run), "--stages", ",".join(stages), "--rounds", "2",
                                "--min-runs", "3", "--min-seconds", "0.05",
                                "--out", str(out)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {r["id"]: r for r in result["rows"]}
    assert list(rows)[0] == report["pick"] and set(rows) == {report["pick"]} | {c["id"] for c in others}
    assert rows[report["pick"]]["x_pick"] == 1.0
    for c in others:
        r = rows[c["id"]]
        assert r["drop"] == c["drop"] and r["within_budget"] == c["within_budget"]
        assert len(r["p50_ms_by_round"]) == 2 and r["x_pick_min"] <= r["x_pick"] <= r["x_pick_max"]
    md = out.with_suffix(".md").read_text()
    assert md.count("\n| ") == 2 + len(rows)  # header, rule, one line per candidate
