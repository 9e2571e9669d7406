"""Blocks → Markdown. Charts are SVG files in `report_files/` next to report.md, linked
as images: Markdown cannot embed them, SVG stays small and sharp at any zoom, and GitHub,
GitLab and VS Code previews display it. A chart that failed to draw becomes its note.
A detector's example images are PNG files there too, linked the same way.
"""
from __future__ import annotations

from . import document
from .detection_figures import DetectionFigures, ExampleImage
from .run_report import RunReport


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render(report: RunReport, charts: list[dict], chart_paths: dict[str, str],
           figures: DetectionFigures | None = None) -> str:
    """Markdown text; `chart_paths` maps chart and image name → path relative to
    report.md."""
    out = []
    for block in document.build(report, charts, figures):
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            out.append(table(block[1], block[2]))
        elif kind == "kv":
            out.append(table(["item", "value"], [[k, v] for k, v in block[1]]))
        elif kind == "chart":
            out.append(_chart(block[1], chart_paths))
        elif kind == "image":
            out.append(_image(block[1], chart_paths))
    return "\n\n".join(out) + "\n"


def _chart(chart: dict, chart_paths: dict[str, str]) -> str:
    title = f"### {chart['title']}\n\n"
    if chart["name"] not in chart_paths:
        return title + f"*{chart['note']}*"
    return title + f"![{chart['title']}]({chart_paths[chart['name']]})\n\n{chart['caption']}"


def _image(image: ExampleImage, paths: dict[str, str]) -> str:
    return f"![{image.title}]({paths[image.name]})\n\n*{image.title}*: {image.caption}"
