"""Figures for the report: grouped bars per dataset with chance lines, and general vs fine-grained averages."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.registry import paper_datasets
from clsbench.tasks.report.lmms_results import GROUP_COLUMNS, table_columns
from clsbench.tasks.report.records import CLIP, REFERENCE, ModelResult


def _figure_style() -> dict:
    """Paper-size text: 7 pt fonts, reproducible SVG ids."""
    return {
        "font.size": 7,
        "axes.titlesize": 7,
        "legend.fontsize": 6,
        "svg.hashsalt": "clsbench",
        "svg.fonttype": "none",
    }


def _series_styles(models: list[ModelResult]) -> list[dict]:
    """One style per row, the same in every figure: MLLMs in solid colours, CLIP-style models in hatched
    greys, the paper's reference rows as outlines, so the kinds read apart in print."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    greys = ("0.45", "0.65", "0.82", "0.3", "0.55", "0.92")
    styles, counts = [], Counter()
    for model in models:
        index = counts[model.kind]
        counts[model.kind] += 1
        if model.kind == CLIP:
            styles.append({"color": greys[index % len(greys)], "hatch": "////", "edgecolor": "0.15", "linewidth": 0.4})
        elif model.kind == REFERENCE:
            outline = colormaps["tab20"].colors[index % 20]
            styles.append({"color": "white", "edgecolor": outline, "linewidth": 0.8, "linestyle": "--"})
        else:
            styles.append({"color": colours[index % len(colours)], "edgecolor": "none"})
    return styles


def chance_levels() -> list[float]:
    """Chance accuracy (%) per paper dataset column: one over the options shown (26, or the class count if fewer)."""
    levels = []
    for spec in paper_datasets():
        classes = len(spec.classnames) if spec.classnames else MAX_OPTIONS
        levels.append(100 / min(MAX_OPTIONS, classes))
    return levels


def _save(figure, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    figure.savefig(paths[0], dpi=300)
    figure.savefig(paths[1], metadata={"Date": None})
    return paths


def bar_figure(models: list[ModelResult], rows: dict[str, dict[str, float | None]], out: Path) -> list[Path]:
    """Grouped bars, one group per paper dataset (then the two averages); a missing cell is an ``x`` on the axis."""
    import matplotlib
    from matplotlib.figure import Figure

    columns = table_columns()
    with matplotlib.rc_context(_figure_style()):
        figure = Figure(figsize=(7.0, 2.4 + 0.12 * math.ceil(len(models) / 3)), layout="constrained")
        axes = figure.add_subplot()
        width = 0.84 / max(len(models), 1)
        for index, (model, style) in enumerate(zip(models, _series_styles(models))):
            offset = (index - (len(models) - 1) / 2) * width
            values = [rows[model.name][column] for column in columns]
            present = [(x + offset, v) for x, v in enumerate(values) if v is not None]
            axes.bar([x for x, _ in present], [v for _, v in present], width, label=model.name, **style)
            zeros = [x for x, v in present if v == 0]  # a 0.0 cell is a result, not a gap: mark it on the axis
            axes.plot(
                zeros,
                [0.8] * len(zeros),
                linestyle="",
                marker="_",
                markersize=6,
                markeredgewidth=1.5,
                color=style.get("edgecolor") if style.get("color") == "white" else style["color"],
            )
            absent = [x + offset for x, v in enumerate(values) if v is None]
            axes.plot(absent, [1.5] * len(absent), linestyle="", marker="x", markersize=3, color="0.3")
        for x, level in enumerate(chance_levels()):  # chance: 1/26, and 1/10 for Logo
            axes.plot(
                [x - 0.45, x + 0.45],
                [level, level],
                color="0.25",
                linewidth=0.6,
                linestyle=(0, (1, 1)),
                label="chance" if x == 0 else None,
            )
        axes.axvline(len(chance_levels()) - 0.5, color="0.6", linewidth=0.6, linestyle=":")
        axes.set_xticks(range(len(columns)), [c.replace(" Avg.", "\nAvg.") for c in columns])
        axes.set_xlim(-0.5, len(columns) - 0.5)
        axes.set_ylim(0, 100)
        axes.set_ylabel("Accuracy (%)")
        axes.grid(axis="y", linewidth=0.3, color="0.85")
        axes.set_axisbelow(True)
        axes.spines[["top", "right"]].set_visible(False)
        figure.legend(loc="outside lower center", ncol=min(3, max(len(models), 1)), frameon=False)
        return _save(figure, out, "bars")


def scatter_figure(models: list[ModelResult], rows: dict[str, dict[str, float | None]], out: Path) -> list[Path]:
    """General vs fine-grained average per model (models with both groups complete): numbered points and a
    key below, so long model names stay readable at single-column width."""
    import matplotlib
    from matplotlib.figure import Figure

    general, fine = GROUP_COLUMNS["general"], GROUP_COLUMNS["fine-grained"]
    points = [(m, rows[m.name][general], rows[m.name][fine]) for m in models]
    points = [(m, x, y) for m, x, y in points if x is not None and y is not None]
    with matplotlib.rc_context(_figure_style()):
        figure = Figure(figsize=(3.5, 3.2 + 0.11 * len(points)), layout="constrained")
        axes = figure.add_subplot()
        styles = dict(zip((m.name for m in models), _series_styles(models)))
        for number, (model, x, y) in enumerate(points, start=1):
            style = styles[model.name]
            colour = style["edgecolor"] if style.get("color") == "white" else style["color"]  # the bars' colour
            marker = {CLIP: "s", REFERENCE: "D"}.get(model.kind, "o")
            axes.scatter(
                [x], [y], marker=marker, s=16, color=colour, zorder=3, clip_on=False, label=f"{number}  {model.name}"
            )
            axes.annotate(str(number), (x, y), xytext=(3, 2), textcoords="offset points", fontsize=6)
        if not points:
            axes.text(50, 50, "no model has both group averages", ha="center", va="center")
        values = [v for _, x, y in points for v in (x, y)] or [0, 100]
        low, high = max(0, min(values) - 5), min(100, max(values) + 5)
        axes.plot([low, high], [low, high], linestyle="--", linewidth=0.6, color="0.7")
        axes.set(xlim=(low, high), ylim=(low, high), aspect="equal", xlabel=f"{general} (%)", ylabel=f"{fine} (%)")
        if points:
            figure.legend(loc="outside lower center", ncol=1, frameon=False, handletextpad=0.3, markerscale=0.8)
        return _save(figure, out, "scatter")
