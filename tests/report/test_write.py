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


def test_sections_with_nothing_to_show_are_left_out(tmp_path):
    report = make_report()
    report["machine_limits"] = None
    report["machine_limits_note"] = "STREAM not run"
    report["data"]["labelled"] = False
    for cand in report["candidates"]:
        cand["per_layer_ms"] = cand["confusion_matrix"] = None
        cand["latency_samples_ms"] = []
    report["mixed_precision"] = None
    files = rep.write_reports(tmp_path, report, formats=("md",))
    md = (tmp_path / "report.md").read_text()
    assert sorted(p.name for p in files) == ["pareto.svg", "radar.svg", "report.md"]
    for gone in ("Roofline", "Latency distributions", "Confusion matrix", "Where time goes",
                 "Layers kept in float", "not measured: no"):
        assert gone not in md, gone
    # what was not measured is still said, once, in the gaps table
    assert "| machine_limits | STREAM not run | run |" in md
    assert "| per_layer_ms |" in md and "| confusion_matrix |" not in md   # unlabelled
    assert not (tmp_path / "report.html").exists()
    rep.write_reports(tmp_path, report, formats=("html",))
    html = (tmp_path / "report.html").read_text()
    assert "Layers kept in float" not in html and 'data-chart="roofline"' not in html
    assert "data-chart-missing" not in html


def test_one_set_of_figures_and_the_basis_of_the_pick(written):
    md = (written[0] / "report.md").read_text()
    # the pick line, its stage row and the final table all show the rounds' 20 ms
    assert "Pick: **fold_bn + int8_static → onnxruntime** — p50 20† ms vs baseline 100† ms" in md
    assert "| quantized | fold_bn + int8_static → onnxruntime ★ pick (best of 2) | int8 | 20† |" in md
    assert "| mixed | fold_bn + mixed_precision → onnxruntime | mixed | 20.6† |" in md
    assert "† p50 from the side-by-side rounds that decided the pick" in md
    assert "Decided by the side-by-side rounds" in md
    assert "within the measurement noise of each other" in md        # 19.8–20.4 vs 20.3–21
    assert ("| fold_bn + mixed_precision → onnxruntime | sensitivity | conv0, fc | 0.60 | 0.30 "
            "| 2.00 |") in md


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


def test_a_chart_that_fails_to_draw_stays_with_its_error(monkeypatch):
    from infertune.report import html, markdown, plots

    from .fixtures import make_run

    def broken(*args):
        raise ValueError("no axes")
    for name in ("pareto_svg", "per_layer_svg", "latency_svg", "confusion_svg", "radar_svg"):
        monkeypatch.setattr(plots, name, lambda *a: "<svg></svg>")
    monkeypatch.setattr(plots, "roofline_svg", broken)
    charts = plots.render_charts(make_run())
    assert [c["name"] for c in charts] == list(CHARTS)
    assert charts[-1]["svg"] is None and "ValueError: no axes" in charts[-1]["note"]
    assert "*chart could not be drawn (ValueError: no axes)*" in markdown.render(
        make_run(), charts, {c["name"]: f"{c['name']}.svg" for c in charts[:-1]})
    assert 'data-chart-missing="roofline">chart could not be drawn' in html.render(
        make_run(), charts)
