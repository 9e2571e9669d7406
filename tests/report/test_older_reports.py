"""Reports written before the typed candidate record still render and compare, and the
optimize summary shows the report's figures.

data/report-31ae6d9.json is the report.json a real `infertune optimize` wrote at commit
31ae6d9 (before search/ built Candidate records): ref-small, ONNX Runtime, fold_bn +
int8_static + mixed_precision allowed, 200 evaluation samples, 3 final rounds, on the 2-core
development VM (hostname and the /tmp prefix of paths replaced). Its figures are measured,
not made up; the tests only check that they are read and shown consistently.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infertune.cli import main
from infertune.report import compare as cmp
from infertune.report import fields as f
from infertune.report import parse_report, tables
from infertune.errors import InfertuneError

from .fixtures import make_report, make_run

OLDER = Path(__file__).parent / "data" / "report-31ae6d9.json"


@pytest.fixture
def older(tmp_path) -> Path:
    run = tmp_path / "older"
    run.mkdir()
    shutil.copy(OLDER, run / "report.json")
    return run


def test_an_older_report_parses_into_records():
    raw = json.loads(OLDER.read_text())
    run = parse_report(raw)
    assert len(run.candidates) == len(raw["candidates"])
    assert run.pick is not None and run.pick.id == raw["pick"]
    # the pick took part in the rounds: its p50 is the rounds' median, as stored
    row = next(r for r in raw["final_comparison"]["rows"] if r["id"] == raw["pick"])
    assert f.decisive_p50(run.pick, run) == row["p50_ms"]
    assert run.final.row(raw["pick"]).p50_ms_by_round == tuple(row["p50_ms_by_round"])
    statuses = {c.status.value for c in run.candidates}
    assert statuses == {c["status"] for c in raw["candidates"]}


def test_an_older_report_renders(older, monkeypatch):
    monkeypatch.setattr("infertune.report.plots.render_charts", lambda report: [])
    assert main(["report", str(older), "--format", "md"]) == 0
    md = (older / "report.md").read_text()
    run = parse_report(json.loads(OLDER.read_text()))
    assert f"Pick: **{run.pick.label}** — p50 {f.p50_text(run.pick, run)} ms" in md
    assert "Decided by the side-by-side rounds" in md
    stage_best = [r for rows in tables.stage_rows(run).values() for r in rows if r["pick"]]
    assert [r["id"] for r in stage_best] == [run.pick_id]


def test_compare_reads_an_older_report(older, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    (new / "report.json").write_text(json.dumps(make_report()))
    result = cmp.compare(older, new)
    assert result["old"]["label"] == parse_report(json.loads(OLDER.read_text())).pick.label
    # a real VM vs the made-up CPU: latencies are listed, never failed on
    assert result["latency"]["comparable"] is False and result["latency"]["regression"] is False
    assert result["accuracy"]["old"][0] is not None
    assert "bootstrap" in result["latency"]["method"]


def test_a_candidate_that_is_not_a_record_is_a_one_line_error(tmp_path):
    report = make_report()
    report["candidates"][1]["status"] = "exploded"
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(InfertuneError, match="not a record of docs/run-format.md"):
        cmp.compare(tmp_path, tmp_path)


def test_optimize_summary_shows_the_report_figures(capsys):
    from infertune.cli.optimize import optimize_summary, summary_lines

    report = make_report()
    report["reports"] = ["runs/test/report.md"]
    optimize_summary(report)
    out = capsys.readouterr().out
    assert "20.00†" in out and "20.60†" in out and "120.00" in out     # rounds' p50s marked
    assert "pick: fold_bn + int8_static → onnxruntime — 5.00× the original" in out
    assert "exported model: best/model.onnx" in out
    lines = summary_lines(make_run())
    assert any(line.startswith("Decided by the side-by-side rounds") for line in lines)
    no_pick = make_report()
    no_pick.update(pick=None, no_pick={"reason": "nothing within budget",
                                       "closest": ["combined_ort"]})
    lines = summary_lines(make_run(no_pick))
    assert lines == ["no pick: nothing within budget",
                     "  closest: fold_bn + prune_channels + int8_static → onnxruntime: drop "
                     "0.90 (up to 1.40) points"]
