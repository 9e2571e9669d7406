"""Reports of an optimize run: report.md (+ report_files/*.svg, *.png) and a self-contained
report.html, rendered from report.json (docs/run-format.md); and `compare` of two runs.

report.json is parsed once, at the entry points (`write_reports`, `report_run`, `compare`),
into a `RunReport` whose candidates are `search.candidate.Candidate` records; everything
below reads their attributes. Pure data functions (fields, tables, charts, gaps, ledger,
decision, compare) are kept apart from the renderers (plots, markdown, html) so each
table's rows and each chart's series can be tested without drawing anything.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from .run_report import RunReport

FORMATS = ("md", "html")
CHART_DIR = "report_files"


def load_report(path: str | Path) -> dict[str, Any]:
    """report.json of a run directory (or the file itself), checked to be one.

    Raises:
        InfertuneError: missing, unreadable, not JSON, or not a schema-1 report.
    """
    from ..errors import InfertuneError

    path = Path(path)
    if not path.exists():
        raise InfertuneError("no such file or directory", path=path)
    file = path / "report.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InfertuneError("no report.json here (not an optimize run directory?)",
                             path=file) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InfertuneError(f"cannot read the report: {exc}", path=file) from None
    if not isinstance(data, dict) or data.get("schema_version") != 1 or not isinstance(
            data.get("candidates"), list):
        raise InfertuneError("not an infertune report.json (schema_version 1 with "
                             "candidates expected)", path=file)
    return data


def parse_report(data: "Mapping[str, Any] | RunReport", path: str | Path | None = None
                 ) -> "RunReport":
    """The typed report of a report.json dict (a RunReport is returned as it is).

    Raises:
        InfertuneError: a candidate is not a record of docs/run-format.md.
    """
    from ..errors import InfertuneError
    from .run_report import RunReport

    if isinstance(data, RunReport):
        return data
    try:
        return RunReport.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InfertuneError(f"a candidate of the report is not a record of "
                             f"docs/run-format.md ({type(exc).__name__}: {exc})",
                             path=path) from None


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    from ..errors import ConfigError

    formats = tuple(formats)
    bad = [fmt for fmt in formats if fmt not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"report format must be one of {', '.join(FORMATS)}, not "
                          f"{', '.join(bad) or 'nothing'}")
    return formats


def write_reports(run_dir: Path, report: "Mapping[str, Any] | RunReport",
                  formats: Iterable[str] = FORMATS) -> list[Path]:
    """Renders `report` (report.json's dict, or its RunReport) into `run_dir` and returns
    the files written.

    "md" writes report.md and its charts as report_files/NAME.svg (a detector's example
    images as report_files/NAME.png); "html" writes report.html with the charts and images
    inline. A detector's PR curves and example images are drawn from the run's files in
    `run_dir` (report/detection_figures.py). Every file is written atomically (temporary
    name, then rename), so a reader never sees half a report.
    """
    from .._atomic import write_text
    from . import html, markdown
    from .detection_figures import detection_figures
    from .plots import render_charts

    formats = check_formats(formats)
    run_dir = Path(run_dir)
    report = parse_report(report, run_dir / "report.json")
    charts = render_charts(report)
    figures = detection_figures(run_dir, report)
    written: list[Path] = []
    if "md" in formats:
        paths = _write_figures(run_dir, charts, figures, written)
        write_text(run_dir / "report.md", markdown.render(report, charts, paths, figures))
        written.append(run_dir / "report.md")
    if "html" in formats:
        write_text(run_dir / "report.html", html.render(report, charts, figures))
        written.append(run_dir / "report.html")
    return written


def _write_figures(run_dir: Path, charts: list[dict], figures, written: list[Path]
                   ) -> dict[str, str]:
    """report_files/NAME.svg per drawn chart and NAME.png per example image; returns
    {name: path relative to report.md}."""
    from .._atomic import write_bytes, write_text

    paths = {}
    extra = [figures.pr_chart] if figures is not None and figures.pr_chart else []
    for chart in charts + extra:
        if chart["svg"] is not None:
            paths[chart["name"]] = f"{CHART_DIR}/{chart['name']}.svg"
            write_text(run_dir / paths[chart["name"]], chart["svg"])
            written.append(run_dir / paths[chart["name"]])
    for image in figures.examples if figures is not None else ():
        paths[image.name] = f"{CHART_DIR}/{image.name}.png"
        write_bytes(run_dir / paths[image.name], image.png)
        written.append(run_dir / paths[image.name])
    return paths


def report_run(run_dir: str | Path, formats: Iterable[str] = FORMATS) -> dict[str, Any]:
    """`infertune report RUN_DIR`: reads RUN_DIR/report.json and writes the reports next
    to it. Returns {"run_dir", "files"}."""
    formats = check_formats(formats)
    run_dir = Path(run_dir)
    out_dir = run_dir if run_dir.is_dir() else run_dir.parent
    report = parse_report(load_report(run_dir), out_dir / "report.json")
    files = write_reports(out_dir, report, formats)
    return {"run_dir": str(out_dir), "files": [str(p) for p in files]}
