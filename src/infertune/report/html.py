"""Blocks → one self-contained HTML page: charts are inline SVG, a detector's example images
inline PNG (base64 data: URLs), the CSS is inline, and
nothing is fetched (no script, font, image or stylesheet from anywhere), so the file can be
mailed or archived as is. Tables scroll sideways on narrow screens; charts scale to the
width of the screen.
"""
from __future__ import annotations

import base64
import html
import re

from . import document
from .detection_figures import DetectionFigures, ExampleImage
from .run_report import RunReport

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       padding: 0 1rem 3rem; max-width: 72rem; line-height: 1.45; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-top: 1.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin-top: 1.2rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f4f4f6; white-space: nowrap; }
td { min-width: 4rem; }
tr:nth-child(even) td { background: #fafafa; }
figure.chart { margin: 1rem 0; }
figure.chart svg { display: block; width: 100%; max-width: 46rem; height: auto; }
figure.chart[data-chart^="confusion"] svg { max-width: 26rem; }
figure.example img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #555; }
.na { color: #8a4b00; font-style: italic; }
@media (max-width: 40rem) { body { padding: 0 0.5rem 2rem; } h1 { font-size: 1.25rem; } }
"""


def _text(text: str) -> str:
    """Escaped text with Markdown's **bold** kept as <strong>."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(str(text)))


def table(head: list[str], body: list[list[str]]) -> str:
    thead = "".join(f"<th>{_text(h)}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>"
                   for row in body)
    return (f'<div class="scroll"><table><thead><tr>{thead}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def inline_svg(svg: str) -> str:
    """The <svg> element of an SVG document (no XML prolog or DOCTYPE inside HTML)."""
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    return svg[start:]


def chart(chart: dict) -> str:
    head = f"<h3>{_text(chart['title'])}</h3>"
    if chart["svg"] is None:
        return head + f'<p class="na" data-chart-missing="{chart["name"]}">' \
                      f'{_text(chart["note"])}</p>'
    return (f'{head}<figure class="chart" data-chart="{chart["name"]}" role="img" '
            f'aria-label="{html.escape(chart["title"])}">{inline_svg(chart["svg"])}'
            f"<figcaption>{_text(chart['caption'])}</figcaption></figure>")


def image(image: ExampleImage) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    return (f'<figure class="example" data-example="{image.name}">'
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(image.title)}">'
            f"<figcaption><strong>{_text(image.title)}</strong>: {_text(image.caption)}"
            "</figcaption></figure>")


def render(report: RunReport, charts: list[dict],
           figures: DetectionFigures | None = None) -> str:
    parts = []
    title = "infertune report"
    for block in document.build(report, charts, figures):
        kind = block[0]
        if kind == "h1":
            title = block[1]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{_text(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_text(block[1])}</p>")
        elif kind == "table":
            parts.append(table(block[1], block[2]))
        elif kind == "kv":
            parts.append(table(["item", "value"], [[k, v] for k, v in block[1]]))
        elif kind == "chart":
            parts.append(chart(block[1]))
        elif kind == "image":
            parts.append(image(block[1]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
