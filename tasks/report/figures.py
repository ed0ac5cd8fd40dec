"""Figures for the report: our rows as bars with 95 % intervals beside the paper's rows as marks, per dataset,
with chance lines; and general vs fine-grained averages."""

from __future__ import annotations

import math
from pathlib import Path

from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.registry import DATASETS, paper_datasets
from clsbench.tasks.report.lmms_results import GROUP_COLUMNS, table_columns
from clsbench.tasks.report.records import CLIP, MLLM, REFERENCE, ModelResult


def _figure_style() -> dict:
    """Paper-size text: 7 pt fonts, reproducible SVG ids."""
    return {
        "font.size": 7,
        "axes.titlesize": 7,
        "legend.fontsize": 6,
        "svg.hashsalt": "clsbench",
        "svg.fonttype": "none",
    }


# Okabe & Ito's colour-blind-safe palette (Color Universal Design, 2008), in the order rows take it.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # the paper's rows: a (colour, marker) pair each


def _series_styles(models: list[ModelResult]) -> list[dict]:
    """One style per row, the same in every figure.

    Our rows are bars and take the palette's colours first, one each; the paper's reference rows are marks and
    share the colours our rows left, told apart by marker shape, so no reference mark wears one of our bars'
    colours while the palette has colours to spare."""
    ours = [model for model in models if model.kind != REFERENCE]
    ours_colours = {model.name: PALETTE[index % len(PALETTE)] for index, model in enumerate(ours)}
    spare = [colour for colour in PALETTE if colour not in ours_colours.values()] or list(PALETTE)
    styles, references = [], 0
    for model in models:
        if model.kind == REFERENCE:
            colour = spare[references % len(spare)]
            marker = MARKERS[(references // len(spare)) % len(MARKERS)]
            styles.append({"kind": "mark", "color": colour, "marker": marker})
            references += 1
        else:
            marker = "s" if model.kind == CLIP else "o"
            # CLIP-style bars hatched, so the kinds read apart in grey print; past the palette's length a second
            # hatch keeps every bar style distinct
            lap = [model.name for model in ours].index(model.name) // len(PALETTE)
            hatch = {(CLIP, 0): "////", (CLIP, 1): "\\\\\\\\", (MLLM, 1): "...."}.get((model.kind, min(lap, 1)))
            styles.append({"kind": "bar", "color": ours_colours[model.name], "marker": marker, "hatch": hatch})
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


LABEL_BASE = 1.0  # a bar's value label starts here (percent), inside the bar


def bar_figure(models: list[ModelResult], rows: dict[str, dict[str, float | None]], out: Path) -> list[Path]:
    """``bars.png``/``.svg``: see :func:`bar_chart`."""
    return _save(bar_chart(models, rows), out, "bars")


def bar_chart(models: list[ModelResult], rows: dict[str, dict[str, float | None]]):
    """One group per paper dataset (then the two averages): our rows as bars with their 95 % interval and value,
    the paper's rows as a mark each (spread across the group); a missing cell is an ``x`` on the axis."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patheffects import withStroke

    columns = table_columns()
    styles = _series_styles(models)
    ours = [(model, style) for model, style in zip(models, styles) if style["kind"] == "bar"]
    marks = [(model, style) for model, style in zip(models, styles) if style["kind"] == "mark"]
    with matplotlib.rc_context(_figure_style()):
        legend_rows = math.ceil((len(models) + 1) / 3)
        figure = Figure(figsize=(7.0, 2.6 + 0.11 * legend_rows), layout="constrained")
        axes = figure.add_subplot()
        width = min(0.28, 0.84 / max(len(ours), 1))
        for index, (model, style) in enumerate(ours):
            offset = (index - (len(ours) - 1) / 2) * width
            values = [rows[model.name][column] for column in columns]
            present = [(x, v) for x, v in enumerate(values) if v is not None]
            errors = [_error(model, columns[x], v) for x, v in present]
            axes.bar(
                [x + offset for x, _ in present],
                [v for _, v in present],
                width * 0.92,
                yerr=[[low for low, _ in errors], [high for _, high in errors]],
                error_kw={"elinewidth": 0.6, "capsize": 1.2, "capthick": 0.6, "ecolor": "0.15"},
                color=style["color"],
                hatch=style["hatch"],
                edgecolor="white" if style["hatch"] else "none",
                linewidth=0,
                label=model.name,
                zorder=2,
            )
            # the value at the bar's base, inside it: never on the paper's marks (Table 2's lowest cell is 18.6) nor
            # on the error bar's cap; a 0.0 cell draws no bar at all (height 0), its label says 0.0
            for x, value in present:
                axes.text(
                    x + offset,
                    LABEL_BASE,
                    f"{value:.1f}",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=4.5,
                    color="0.1",
                    zorder=4,
                    path_effects=[withStroke(linewidth=1.5, foreground="white")],  # legible on the bar's colour
                )
            absent = [x + offset for x, v in enumerate(values) if v is None]
            axes.plot(absent, [1.5] * len(absent), linestyle="", marker="x", markersize=3, color="0.3")
        spread = 0.84 / max(len(marks), 1)
        for index, (model, style) in enumerate(marks):
            offset = -0.42 + (index + 0.5) * spread
            values = [rows[model.name][column] for column in columns]
            present = [(x + offset, v) for x, v in enumerate(values) if v is not None]
            axes.plot(
                [x for x, _ in present],
                [v for _, v in present],
                linestyle="",
                marker=style["marker"],
                markersize=3.2,
                markerfacecolor=style["color"],
                markeredgecolor="0.2",
                markeredgewidth=0.3,
                label=model.name,
                zorder=3,
            )
        for x, level in enumerate(chance_levels()):  # chance: 1/26, and 1/10 for Logo
            axes.plot(
                [x - 0.45, x + 0.45],
                [level, level],
                color="0.25",
                linewidth=0.6,
                linestyle=(0, (1, 1)),
                label="chance" if x == 0 else None,
                zorder=1,
            )
        axes.axvline(len(chance_levels()) - 0.5, color="0.6", linewidth=0.6, linestyle=":")
        axes.set_xticks(range(len(columns)), [c.replace(" Avg.", "\nAvg.") for c in columns])
        axes.set_xlim(-0.5, len(columns) - 0.5)
        axes.set_ylim(0, 108)
        axes.set_yticks(range(0, 101, 20))
        axes.set_ylabel("Accuracy (%)")
        axes.grid(axis="y", linewidth=0.3, color="0.88")
        axes.set_axisbelow(True)
        axes.spines[["top", "right"]].set_visible(False)
        title = "bars: our rows, with 95 % Wilson intervals" + ("; marks: the paper's Table 2 rows" if marks else "")
        if any(record.split_subset for model, _ in ours for record in model.datasets.values()):
            title += "\n† bars from data copies smaller than the paper's splits: not comparable with its marks"
        axes.set_title(title, loc="left", color="0.3")
        handles = dict(zip(*reversed(axes.get_legend_handles_labels())))  # label -> handle
        order = [model.name for model, _ in ours] + ["chance"] + [model.name for model, _ in marks]
        figure.legend(
            [handles[label] for label in order],
            order,
            loc="outside lower center",
            ncol=3,
            frameon=False,
            handlelength=1.4,
            columnspacing=1.2,
        )
        return figure


def _error(model: ModelResult, column: str, value: float) -> tuple[float, float]:
    """The bar's error bar (points below, above): the 95 % Wilson interval of a dataset cell; none for averages."""
    key = next((k for k, spec in DATASETS.items() if spec.abbreviation == column), None)
    record = model.datasets.get(key) if key else None
    interval = record.interval() if record else None
    if not interval:
        return 0.0, 0.0
    return max(0.0, value - 100 * interval[0]), max(0.0, 100 * interval[1] - value)


def scatter_figure(models: list[ModelResult], rows: dict[str, dict[str, float | None]], out: Path) -> list[Path]:
    """``scatter.png``/``.svg``: see :func:`scatter_chart`."""
    return _save(scatter_chart(models, rows), out, "scatter")


def scatter_chart(models: list[ModelResult], rows: dict[str, dict[str, float | None]]):
    """General vs fine-grained average per row with both groups complete, in the row's colour (and, for the paper's
    rows, its marker); numbered points with a key below, numbers placed so that none overlaps another or a point."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    general, fine = GROUP_COLUMNS["general"], GROUP_COLUMNS["fine-grained"]
    points = [(m, rows[m.name][general], rows[m.name][fine]) for m in models]
    points = [(m, x, y) for m, x, y in points if x is not None and y is not None]
    styles = dict(zip((m.name for m in models), _series_styles(models)))
    with matplotlib.rc_context(_figure_style()):
        figure = Figure(figsize=(3.5, 3.2 + 0.11 * len(points)), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for number, (model, x, y) in enumerate(points, start=1):
            style = styles[model.name]
            axes.scatter(
                [x],
                [y],
                marker=style["marker"],
                s=16 if style["kind"] == "mark" else 28,
                color=style["color"],
                edgecolors="0.2" if style["kind"] == "mark" else "black",
                linewidths=0.3 if style["kind"] == "mark" else 0.8,
                zorder=3,
                clip_on=False,
                label=f"{number}  {model.name}",
            )
        if not points:
            axes.text(50, 50, "no model has both group averages", ha="center", va="center")
        values = [v for _, x, y in points for v in (x, y)] or [0, 100]
        low, high = max(0, min(values) - 5), min(100, max(values) + 5)
        axes.plot([low, high], [low, high], linestyle="--", linewidth=0.6, color="0.7")
        axes.set(xlim=(low, high), ylim=(low, high), aspect="equal", xlabel=f"{general} (%)", ylabel=f"{fine} (%)")
        if points:
            figure.legend(loc="outside lower center", ncol=1, frameon=False, handletextpad=0.3, markerscale=0.8)
        figure.canvas.draw()  # the layout is final: label placement works in display units
        _place_labels(axes, [(str(n), x, y) for n, (_, x, y) in enumerate(points, start=1)])
        return figure


# Where a point's number may go, in points from the point, nearest first; beyond the first ring a thin leader
# line joins the number to its point.
_NEAR_OFFSETS = [(4.5, 1.5), (4.5, -8), (-4.5, 1.5), (-4.5, -8), (0, 5.5), (0, -12.5)]
_LABEL_OFFSETS = _NEAR_OFFSETS + [
    (round(radius * math.cos(angle), 1), round(radius * math.sin(angle) - 3, 1))
    for radius in (10, 14, 18, 24, 30)
    for angle in (math.radians(degrees) for degrees in range(15, 375, 30))
]


def _place_labels(axes, labels: list[tuple[str, float, float]]) -> None:
    """Greedy: each number takes the nearest offset where its drawn box stays inside the axes, overlaps no placed
    number and no point, and reads as its point's (nearest it, or joined by a leader line that crosses no point)."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = axes.figure.canvas.get_renderer()
    dot = 3.5 * axes.figure.dpi / 72  # a point's half-size in pixels, with a margin
    inside = axes.bbox
    centres = [axes.transData.transform((x, y)) for _, x, y in labels]
    taken = [Bbox([[cx - dot, cy - dot], [cx + dot, cy + dot]]) for cx, cy in centres]
    leader = {"arrowstyle": "-", "linewidth": 0.3, "color": "0.45", "shrinkA": 0, "shrinkB": 2.5}
    for index, (text, x, y) in enumerate(labels):
        scores = []
        for order, offset in enumerate(_LABEL_OFFSETS):
            trial = _number(axes, text, x, y, offset, None)
            box = trial.get_window_extent(renderer)
            trial.remove()
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            hard = sum(box.overlaps(other) for other in taken) + (not within)
            if offset in _NEAR_OFFSETS:  # no leader line: the number should be nearest its own point
                soft = int(_nearest(box, centres) != index)
            else:  # a leader line should not run through another point
                soft = sum(_crosses(centres[index], box, c, dot) for i, c in enumerate(centres) if i != index)
            scores.append((hard, soft, order, offset))
            if not hard and not soft:
                break
        chosen = min(scores)[3]  # no overlap first, then the fewest ambiguities, then the nearest place
        annotation = _number(axes, text, x, y, chosen, None if chosen in _NEAR_OFFSETS else leader)
        annotation.update_positions(renderer)
        taken.append(Text.get_window_extent(annotation, renderer))  # the number, not its leader line


def _crosses(start, box, point, radius: float) -> bool:
    """Whether the segment from ``start`` to the box's centre passes within ``radius`` of ``point``."""
    (ax, ay), (px, py) = start, point
    bx, by = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / ((dx * dx + dy * dy) or 1.0)))
    return (ax + t * dx - px) ** 2 + (ay + t * dy - py) ** 2 < radius * radius


def _nearest(box, centres) -> int:
    """The index of the point nearest the box's centre."""
    x, y = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return min(range(len(centres)), key=lambda i: (centres[i][0] - x) ** 2 + (centres[i][1] - y) ** 2)


def _number(axes, text: str, x: float, y: float, offset: tuple[float, float], arrow: dict | None):
    """A point's number at ``offset`` points from it, aligned away from the point."""
    annotation = axes.annotate(
        text,
        (x, y),
        xytext=offset,
        textcoords="offset points",
        fontsize=6,
        ha="right" if offset[0] < 0 else ("center" if offset[0] == 0 else "left"),
        annotation_clip=False,
        arrowprops=arrow,
    )
    annotation.set_in_layout(False)
    return annotation


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
