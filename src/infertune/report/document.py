"""The report as a list of blocks, in reading order; `markdown.py` and `html.py` only
lay the blocks out, so both formats always carry the same content.

Block kinds: ("h2", text), ("h3", text), ("p", text), ("table", head, body),
("kv", [(key, value)]), ("chart", chart dict from plots.render_charts), ("image",
detection_figures.ExampleImage).
"""
from __future__ import annotations

from typing import Any

from . import cells
from . import fields as f
from . import tables
from .detection import detection_blocks
from .detection_figures import DetectionFigures
from .run_report import RunReport

Block = tuple[Any, ...]


def _stage_blocks(report: RunReport) -> list[Block]:
    blocks: list[Block] = [
        ("h2", "Stages: what each step buys"),
        ("p", "Per runtime, the best candidate of each stage within the accuracy budget by "
              f"the run's objective ({report.budget.get('objective')}); "
              "speedup is baseline p50 / candidate p50, compression original size / "
              "candidate size, drop the paired difference from the baseline in points.")]
    rows = tables.stage_rows(report)
    if not rows:
        blocks.append(("p", f"{f.NOT_MEASURED}: no candidate finished with a latency."))
    for runtime, runtime_rows in rows.items():
        blocks += [("h3", runtime), ("table", *cells.stage_table(report, runtime_rows))]
    if any(cells.any_from_rounds(r) for r in rows.values()):
        blocks.append(("p", f.ROUNDS_NOTE))
    return blocks


def _chart_blocks(charts: list[dict]) -> list[Block]:
    return [("h2", "Charts")] + [("chart", chart) for chart in charts] if charts else []


def _mixed_blocks(report: RunReport) -> list[Block]:
    """The mixed-precision ledger; nothing when there is none to show."""
    head, body = cells.mixed_table(report)
    kept = [str(k) for k in (report.mixed_precision or {}).get("kept") or ()]
    if not body and not kept:
        return []
    blocks: list[Block] = [("h3", "Layers kept in float (mixed precision)")]
    if body:
        blocks.append(("table", head, body))
    if kept:
        blocks.append(("p", "Kept in float by the mixed-precision candidate that kept the "
                            f"most: {', '.join(kept)}."))
    return blocks


def _explain_blocks(report: RunReport) -> list[Block]:
    blocks: list[Block] = [("h2", "Why some steps did not speed things up")]
    head, body = cells.slow_table(report)
    blocks.append(("table", head, body) if body else
                  ("p", "Every measured step was at least 5 % faster than its parent."))
    return blocks + _mixed_blocks(report)


def _training_blocks(report: RunReport) -> list[Block]:
    """The training steps that ran (recovery, QAT); nothing when none did."""
    head, body = cells.training_table(report)
    if not body:
        return []
    return [("h2", "Training steps (recovery, QAT)"),
            ("p", "Each step's own record: the arithmetic and weight layout its timed trial "
                  "chose (or the options gave), steps and seconds, the validation metric "
                  "before and at the best step, and why it stopped."),
            ("table", head, body)]


def _measurement_blocks(report: RunReport) -> list[Block]:
    blocks: list[Block] = [("h2", "How it was measured"), ("kv", tables.method_rows(report))]
    head, body = cells.final_table(report)
    if body:
        blocks += [("h3", "Final side-by-side comparison"), ("table", head, body)]
    blocks += [("h2", "Machine and versions"), ("kv", tables.machine_rows(report))]
    versions = tables.version_rows(report)
    if versions:
        blocks += [("h3", "Library versions"), ("kv", versions)]
    blocks.append(("h2", "What could not be measured here"))
    head, body = cells.gaps_table(report)
    blocks.append(("table", head, body) if body else ("p", "Everything was measured."))
    return blocks


def build(report: RunReport, charts: list[dict], figures: DetectionFigures | None = None
          ) -> list[Block]:
    """All blocks of the report, title first (`figures`: a detector run's, drawn from its
    files)."""
    model = report.model
    title = f"infertune report: {model.get('name') or model.get('source') or 'model'}"
    blocks: list[Block] = [("h1", title)] + [("p", line) for line in
                                             cells.summary_lines(report)]
    blocks += _stage_blocks(report) + detection_blocks(report, figures)
    blocks += _chart_blocks(charts)
    blocks += _explain_blocks(report) + _training_blocks(report)
    blocks += [("h2", "All candidates"), ("table", *cells.candidates_table(report))]
    if cells.any_from_rounds(tables.candidate_rows(report)):
        blocks.append(("p", f.ROUNDS_NOTE))
    return blocks + _measurement_blocks(report)
