"""Chart series → SVG text, with matplotlib's object API (no pyplot: no global figure
state, nothing to close, safe inside a long-running optimize).

Text stays text in the SVG (svg.fonttype "none"): the files are several times smaller than
with glyph outlines, the page's own sans-serif font draws it, and no font is embedded or
fetched. A fixed hash salt makes the output identical from run to run.
"""
from __future__ import annotations

import io
import math
from typing import Any, Callable

from . import charts
from . import fields as f
from .run_report import RunReport

RC = {"svg.fonttype": "none", "svg.hashsalt": "infertune", "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False}
WIDE = (7.0, 4.0)
LABEL_CHARS = 34


def short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def to_svg(draw: Callable[[Any], None], size: tuple[float, float] = WIDE,
           polar: bool = False, panels: int = 1) -> str:
    """Runs draw(ax) on a fresh figure (draw(axes), a list left to right, when `panels` > 1)
    and returns the SVG document text."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=size, layout="constrained")
        axes = [fig.add_subplot(1, panels, k + 1, projection="polar" if polar else None)
                for k in range(panels)]
        draw(axes[0] if panels == 1 else axes)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def pareto_svg(series: dict) -> str | None:
    points = series["points"]
    if not points:
        return None

    def draw(ax):
        sizes = [p["size_mb"] or 1.0 for p in points]
        biggest = max(sizes)
        for p, size in zip(points, sizes):
            colour = "tab:orange" if p["frontier"] else "tab:blue"
            ax.scatter(p["p50_ms"], p["drop"], s=30 + 400 * size / biggest, alpha=0.6,
                       color=colour, edgecolors="black", linewidths=0.5)
        if series["frontier"]:
            xs, ys = zip(*series["frontier"])
            ax.step(xs, ys, where="post", color="tab:orange", lw=1, label="Pareto front")
        for p in points:
            if p["pick"]:
                ax.scatter(p["p50_ms"], p["drop"], marker="*", s=260, color="gold",
                           edgecolors="black", zorder=5, label=f"pick: {short(p['label'])}")
        if series["max_drop"] is not None:
            ax.axhline(series["max_drop"], color="tab:red", ls="--", lw=1,
                       label=f"budget: drop ≤ {series['max_drop']:g}")
        ax.set_xscale("log")
        ax.set_xlabel("latency p50 (ms, log scale)")
        ax.set_ylabel("accuracy drop (points)")
        ax.legend(loc="best", fontsize=8)
    return to_svg(draw)


def per_layer_svg(rows: list[tuple[str, float]] | None, title: str) -> str | None:
    if not rows:
        return None

    def draw(ax):
        names = [short(n, 28) for n, _ in rows][::-1]
        ax.barh(names, [ms for _, ms in rows][::-1], color="tab:blue")
        ax.set_xlabel("time per call (ms)")
        ax.set_title(title)
    return to_svg(draw, (7.0, 0.9 + 0.28 * len(rows)))


def latency_svg(series: list[tuple[str, list[float], float | None]]) -> str | None:
    if not series:
        return None

    def draw(ax):
        rows = series[::-1]
        ax.boxplot([s for _, s, _ in rows], orientation="horizontal", showfliers=True,
                   tick_labels=[short(n) for n, _, _ in rows])
        rounds = [(p50, i + 1) for i, (_, _, p50) in enumerate(rows) if p50 is not None]
        if rounds:
            ax.scatter(*zip(*rounds), marker="D", s=28, color="tab:red", zorder=4,
                       label="median p50 of the side-by-side rounds")
            # Below the axes: inside, it hides a box.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7,
                      frameon=False)
        ax.set_xscale("log")
        ax.set_xlabel("latency of each timed call (ms, log scale)")
    return to_svg(draw, (7.0, 1.0 + 0.35 * len(series)))


def confusion_svg(matrix: list[list[float]] | None, title: str) -> str | None:
    if not matrix:
        return None
    n = len(matrix)

    def draw(ax):
        image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        ticks = range(n) if n <= 20 else range(0, n, max(1, n // 10))
        ax.set_xticks(list(ticks))
        ax.set_yticks(list(ticks))
        if n <= 12:
            for i, row in enumerate(matrix):
                for j, v in enumerate(row):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v > 0.5 else "black")
    return to_svg(draw, (4.2, 3.6))


def radar_svg(series: dict | None) -> str | None:
    if not series or len(series["axes"]) < 3:
        return None
    axes = series["axes"]
    angles = [2 * math.pi * i / len(axes) for i in range(len(axes))]

    def draw(ax):
        for name, values in series["series"].items():
            ax.plot(angles + angles[:1], values + values[:1], lw=1.5, label=short(name))
            ax.fill(angles + angles[:1], values + values[:1], alpha=0.1)
        ax.set_xticks(angles, axes)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper right", bbox_to_anchor=(1.45, 1.1), fontsize=7)
    return to_svg(draw, (6.0, 4.2), polar=True)


def roofline_svg(series: dict | None) -> str | None:
    if not series or not series["points"]:
        return None
    xs = [p["intensity"] for p in series["points"]]
    lo, hi = min(xs) / 4, max(xs) * 4

    def draw(ax):
        grid = [lo * (hi / lo) ** (i / 60) for i in range(61)]
        for key, name, style in (("fp32_gflops", "FP32 peak", "-"), ("int8_gops", "INT8 peak",
                                                                      "--")):
            if series[key]:
                ax.plot(grid, [min(series[key], series["mem_gbs"] * x) for x in grid],
                        color="grey", ls=style, lw=1, label=f"{name} {series[key]:g} GOP/s")
        for p in series["points"]:
            ax.scatter(p["intensity"], p["achieved_gops"], s=120 if p["pick"] else 30,
                       marker="*" if p["pick"] else "o", zorder=3, label=short(p["label"]))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (op/byte of weights, upper bound)")
        ax.set_ylabel("achieved GOP/s (2·MACs / p50)")
        # Below the axes: inside, it hides the points it names.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=2,
                  frameon=False)
    return to_svg(draw, (7.0, 4.6))


PR_STYLE = {"baseline": ("black", 2.0, "-"), "pick": ("tab:orange", 2.2, "-")}
PR_OTHERS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:cyan")


def pr_svg(series: list[dict] | None, precision_name: str = "precision") -> str | None:
    """Precision vs recall, IoU .5 on the left and averaged over IoU .50:.95 on the right,
    one legend below both; series: [{"label", "role" (baseline | pick | other),
    "curves": (PrCurve at .5, PrCurve at .5:.95)}]."""
    if not series:
        return None

    def draw(axes):
        others = iter(PR_OTHERS * len(series))
        for s in series:
            colour, width, dash = PR_STYLE.get(s["role"]) or (next(others), 1.0, "--")
            at50, mean = s["curves"]
            label = (f"{short(s['label'], 70)} (AP50 {100 * at50.ap:.1f}, "
                     f"mAP {100 * mean.ap:.1f})")
            for ax, curve in zip(axes, (at50, mean)):
                ax.plot(curve.recall, curve.precision, color=colour, lw=width, ls=dash,
                        drawstyle="steps-post", label=label if ax is axes[0] else None)
        for ax, curve in zip(axes, series[0]["curves"]):
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("recall")
            ax.set_ylabel(precision_name)
            ax.set_title(f"IoU {curve.iou}")
        # Below the axes: inside, it hides the curves.
        axes[0].figure.legend(loc="outside lower center", fontsize=7, frameon=False)
    return to_svg(draw, (8.0, 3.4 + 0.17 * len(series)), panels=2)


def render_charts(report: RunReport) -> list[dict[str, Any]]:
    """[{"name", "title", "caption", "svg" | None, "note"}] in report order.

    A chart with nothing to show is left out (what was not measured is listed once, in
    the report's "What could not be measured here" table); a chart that failed to draw
    stays, with svg None and the error as its note."""
    base, chosen = report.baseline, report.pick
    pick_label = short(chosen.label) if chosen else "the pick"
    specs = [
        ("pareto", "Pareto front: latency vs accuracy drop",
         "Marker area ∝ size; orange: on the front; star: the pick; dashed red: the budget. "
         "Latency: the p50 the tables show (from the side-by-side rounds where a candidate "
         "took part).", lambda: pareto_svg(charts.pareto_series(report))),
        ("layers_baseline", "Where time goes: baseline", "Measured time per layer.",
         lambda: per_layer_svg(charts.per_layer_series(base), "baseline")),
        ("layers_pick", "Where time goes: pick", "Measured time per layer.",
         lambda: per_layer_svg(charts.per_layer_series(chosen), pick_label)),
        ("latency", "Latency distributions", "Every timed call of each candidate's full "
         "measurement; box: quartiles, whiskers: 1.5 IQR; red diamond: the median p50 of the "
         "side-by-side rounds, where the candidate took part.",
         lambda: latency_svg(charts.latency_series(report))),
        ("confusion_baseline", "Confusion matrix: baseline", "Rows sum to 1.",
         lambda: confusion_svg(charts.confusion_series(base), "baseline")
         if report.labelled else None),
        ("confusion_pick", "Confusion matrix: pick", "Rows sum to 1.",
         lambda: confusion_svg(charts.confusion_series(chosen), pick_label)
         if report.labelled else None),
        ("radar", "Top candidates compared", "Each axis normalised so 1 is the best shown "
         "(see charts.radar_series).", lambda: radar_svg(charts.radar_series(report))),
        ("roofline", "Roofline", "Achieved operations per second (2·MACs / p50) against "
         "the machine's measured compute and memory ceilings. Intensity counts the weight "
         "bytes read once per call (plus activation bytes where profiled): a lower bound of "
         "the traffic, so an upper bound of the intensity.",
         lambda: roofline_svg(charts.roofline_series(report))),
    ]
    drawn = [draw_chart(name, title, caption, make) for name, title, caption, make in specs]
    return [chart for chart in drawn if chart is not None]


def draw_chart(name: str, title: str, caption: str, make: Callable[[], str | None]
               ) -> dict[str, Any] | None:
    """The chart dict of `make()`'s SVG; None when it has nothing to show."""
    # A chart that cannot be drawn is a result, not a crash: the report of a finished
    # optimize must still be written, and says which chart is missing and why.
    try:
        svg = make()
    except Exception as exc:  # noqa: BLE001 - any drawing failure, reported in the page
        return {"name": name, "title": title, "caption": caption, "svg": None,
                "note": f"chart could not be drawn ({type(exc).__name__}: {exc})"}
    if svg is None:
        return None
    return {"name": name, "title": title, "caption": caption, "svg": svg, "note": None}
