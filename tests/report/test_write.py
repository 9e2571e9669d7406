"""write_reports / `infertune report`: files, sections, self-containment, atomicity."""
from __future__ import annotations

import json
import re

import pytest

from infertune import report as rep
from infertune.cli import main
from infertune.errors import ConfigError, InfertuneError

from .fixtures import make_report

SECTIONS = ("Stages: what each step buys", "Charts", "Why some steps did not speed things up",
            "Layers kept in float (mixed precision)", "All candidates", "How it was measured",
            "Machine and versions", "What could not be measured here")
CHARTS = ("pareto", "layers_baseline", "layers_pick", "latency", "confusion_baseline",
          "confusion_pick", "radar", "roofline")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    # Drawing the eight charts takes seconds: once for the module.
    run = tmp_path_factory.mktemp("run")
    return run, rep.write_reports(run, make_report())


def test_both_formats_with_every_section_and_chart(written):
    run, files = written
    assert {p.relative_to(run).as_posix() for p in files} == (
        {"report.md", "report.html"} | {f"report_files/{c}.svg" for c in CHARTS})
    md, html = (run / "report.md").read_text(), (run / "report.html").read_text()
    for section in SECTIONS:
        assert f"## {section}" in md or f"### {section}" in md, section
        assert f">{section}</h" in html.replace("&amp;", "&"), section
    for chart in CHARTS:
        assert f"](report_files/{chart}.svg)" in md
        assert f'data-chart="{chart}"' in html
    assert "no VNNI" not in md and "dynamic INT8 computes" in md


def test_html_is_self_contained(written):
    html = (written[0] / "report.html").read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html
    # no reference to anything outside the file: the only links are inline data: images
    # (matplotlib's heatmaps) and in-document #ids; SVG namespaces are names, not fetches
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"'#][^"']*)""", html)
    assert urls and all(u.startswith("data:image/png;base64,") for u in urls), urls[:3]
    assert "<?xml" not in html and html.count("<svg") == len(CHARTS)


def test_missing_measurements_say_not_measured(tmp_path):
    report = make_report()
    report["machine_limits"] = None
    report["machine_limits_note"] = "STREAM not run"
    for cand in report["candidates"]:
        cand["per_layer_ms"] = cand["confusion_matrix"] = None
        cand["latency_samples_ms"] = []
    report["mixed_precision"] = None
    files = rep.write_reports(tmp_path, report, formats=("md",))
    md = (tmp_path / "report.md").read_text()
    assert "*not measured: machine limits not measured: STREAM not run*" in md
    assert "*not measured: no raw latency samples recorded*" in md
    assert "| machine_limits | STREAM not run | run |" in md
    assert not (tmp_path / "report.html").exists()
    assert len(files) == 1 + 2          # report.md, pareto.svg, radar.svg


def test_a_failed_render_leaves_no_partial_file(tmp_path, monkeypatch):
    (tmp_path / "report.html").write_text("old report")
    from infertune.report import html

    def broken(*args):
        raise RuntimeError("boom")
    monkeypatch.setattr(html, "render", broken)
    monkeypatch.setattr("infertune.report.plots.render_charts", lambda report: [])
    with pytest.raises(RuntimeError):
        rep.write_reports(tmp_path, make_report(), formats=("html",))
    assert (tmp_path / "report.html").read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]   # no temp file left


def test_cli_report_and_user_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("infertune.report.plots.render_charts", lambda report: [])
    (tmp_path / "report.json").write_text(json.dumps(make_report()))
    assert main(["report", str(tmp_path), "--format", "html"]) == 0
    assert (tmp_path / "report.html").exists() and not (tmp_path / "report.md").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "bad")]) == 2
    assert "not an infertune report.json" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        rep.write_reports(tmp_path, make_report(), formats=("pdf",))
    with pytest.raises(InfertuneError):
        rep.load_report(tmp_path / "bad")
