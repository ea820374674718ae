"""The comparison's three plots, each readable at a glance: every point and curve is named where it is drawn.

- `loss_figure`: training loss (thin, dashed) and validation loss (solid) of every run, one colour per run,
  its name at the end of its validation curve.
- `rouge_figure`: ROUGE against trainable parameters (log x, a labelled tick at every decade: 1K, 10K, ...)
  with the 95% bootstrap intervals of evaluate.py as error bars.
- `cost_figure`: the same score against what training cost: wall time and peak memory.

The y range of the score plots is the runs' own (their intervals included). A baseline is drawn as a
labelled horizontal line when it lies near that range; one far outside (lead-3 at 55 while the methods score
1 to 3) is written above the plot, `baseline-lead3: 55.7 (above)`, instead of squashing the runs into a
sliver with invisible error bars. The choices of limits, ticks and label positions are pure functions of
the numbers (`quality_limits`, `decade_limits`, `count_label`, `spread_labels`, `label_sides`), tested
without drawing.

Drawing takes `plt` (matplotlib.pyplot, from the optional `plot` extra) as an argument, so this module
imports without matplotlib and the caller decides whether plots are made at all.
"""

from __future__ import annotations

import math
from pathlib import Path

from minisumm.tools.atomic import write_file

BASELINE_COLOUR = "dimgrey"
PNG_TITLE = "minisumm comparison"  # in every plot's metadata: how compare knows a plot it may replace
LABEL_OFFSET = 9  # points between a point and its name


# ------------------------------------------------------------------------------------------------ pure layout
def quality_limits(intervals: list[tuple[float, float]], baselines: dict[str, float], reach: float = 0.5,
                   margin: float = 0.08) -> tuple[tuple[float, float], dict[str, str]]:
    """y-limits for scores, and where each baseline goes: "inside" (a line) or "above"/"below" (text).

    The runs' intervals [(low, high), ...] always fit. A baseline joins the range when it lies within
    `reach` × the runs' span of it, so it can stretch the range by at most that much; a farther one is left
    out. `margin` × the final span pads both ends; the bottom stops at 0 (scores are not negative)."""
    low, high = min(lo for lo, _ in intervals), max(hi for _, hi in intervals)
    span = (high - low) or max(abs(high), 1.0)
    places = {}
    for name, value in baselines.items():
        places[name] = ("above" if value > high + reach * span else
                        "below" if value < low - reach * span else "inside")
    inside = [baselines[name] for name, place in places.items() if place == "inside"]
    bottom, top = min([low, *inside]), max([high, *inside])
    pad = margin * ((top - bottom) or span)
    return (max(bottom - pad, 0.0), top + pad), places


def decade_limits(values: list[float]) -> tuple[float, float]:
    """The powers of ten around `values` (all > 0), so every point lies between two labelled decades:
    2,560 .. 1,121,024 → (1e3, 1e7). A value that is itself a power of ten is not left on the frame."""
    low, high = min(values), max(values)
    bottom, top = 10.0 ** math.floor(math.log10(low)), 10.0 ** math.ceil(math.log10(high))
    return (bottom / 10 if bottom >= low else bottom), (top * 10 if top <= high else top)


def count_label(value: float) -> str:
    """A parameter count as a tick reads it: 1 → "1", 1000 → "1K", 1e5 → "100K", 1e6 → "1M", 1e9 → "1B"."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def time_unit(longest_s: float) -> tuple[float, str]:
    """Seconds per unit and its name for an axis whose longest time is `longest_s`: s, min or h."""
    return (1, "s") if longest_s < 600 else (60, "min") if longest_s < 36_000 else (3600, "h")


def spread_labels(positions: list[float], gap: float) -> list[float]:
    """Move label positions apart to at least `gap` each, keeping their order and staying as close as they
    can to where they were: overlapping neighbours are pushed up, then the group is centred on its points."""
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    placed = [positions[i] for i in order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    # a run of labels pushed up together is shifted back down by its mean displacement, which keeps the gaps
    start = 0
    for end in range(1, len(placed) + 1):
        if end == len(placed) or placed[end] > placed[end - 1] + gap:
            group = range(start, end)
            shift = sum(placed[k] - positions[order[k]] for k in group) / len(group)
            floor = placed[start - 1] + gap if start else -math.inf
            shift = min(shift, placed[start] - floor)
            for k in group:
                placed[k] -= shift
            start = end
    result = [0.0] * len(positions)
    for k, i in enumerate(order):
        result[i] = placed[k]
    return result


def label_sides(points: list[tuple[float, float, float, float]], sizes: list[tuple[float, float]], width: float,
                offset: float, half_cap: float) -> list[str]:
    """"right" or "left" of its point for each label, in display units measured from the axes' left edge.

    `points` are (x, y, bar low, bar high); `sizes` the labels' (width, height), each label centred on its
    point's y, `offset` from it. A label goes right of its point unless there it crosses another point's
    error bar (`half_cap` wide either side), a label already placed or the frame (0 .. `width`); then left
    if that is clear; else on the side where it crosses less."""
    bars = [(x - half_cap, low, x + half_cap, high) for x, _, low, high in points]
    placed, sides = [], []
    for i, ((x, y, _, _), (w, h)) in enumerate(zip(points, sizes)):
        boxes = {"right": (x + offset, y - h / 2, x + offset + w, y + h / 2),
                 "left": (x - offset - w, y - h / 2, x - offset, y + h / 2)}

        def crossings(box):
            others = [bar for j, bar in enumerate(bars) if j != i] + placed
            overlaps = sum(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)
            return overlaps + (box[0] < 0 or box[2] > width)
        side = "right" if crossings(boxes["right"]) <= crossings(boxes["left"]) else "left"
        sides.append(side)
        placed.append(boxes[side])
    return sides


# ------------------------------------------------------------------------------------------------ helpers
def run_colours(entries) -> dict[str, str]:
    """One colour per run (baselines are grey), the same in every plot: matplotlib's cycle C0, C1, ..."""
    runs = [e for e in entries if e.kind != "baseline"]
    return {entry.name: f"C{i % 10}" for i, entry in enumerate(runs)}


def score(entry, key: str) -> tuple[float, float, float] | None:
    """(low, mid, high) of one ROUGE score from eval/metrics.json; low = high = mid without an interval."""
    value = ((entry.evaluation or {}).get("rouge") or {}).get(key)
    if value is None:
        return None
    mid = value.get("mid", value.get("mean"))
    low, high = value.get("low"), value.get("high")
    return (mid, mid, mid) if low is None or high is None else (low, mid, high)


def _draw_scores(ax, runs, xs, key, colours):
    """Each run's score at its x with its interval as an error bar; call `_label_points` once limits are set."""
    for entry, x in zip(runs, xs):
        low, mid, high = score(entry, key)
        ax.errorbar([x], [mid], yerr=[[mid - low], [high - mid]], fmt="o", markersize=7, capsize=5,
                    elinewidth=1.8, capthick=1.8, color=colours[entry.name], zorder=3)


def _label_points(fig, ax, runs, xs, key, colours):
    """Each run's name and score beside its point, on the side where it hides no other point or label."""
    renderer = fig.canvas.get_renderer()
    left, bottom = ax.transAxes.transform((0, 0))
    labels, points, sizes = [], [], []
    for entry, x in zip(runs, xs):
        low, mid, high = score(entry, key)
        label = ax.annotate(f"{entry.name}  {mid:.1f}", (x, mid), xytext=(LABEL_OFFSET, 0),
                            textcoords="offset points", va="center", fontsize=9, color=colours[entry.name],
                            fontweight="bold")
        extent = label.get_window_extent(renderer)
        (px, py), (_, plow), (_, phigh) = ax.transData.transform([(x, mid), (x, low), (x, high)])
        labels.append(label)
        points.append((px - left, py - bottom, plow - bottom, phigh - bottom))
        sizes.append((extent.width, extent.height))
    pixels = fig.dpi / 72  # points to pixels
    frame = ax.transAxes.transform((1, 1))[0] - left
    for label, side in zip(labels, label_sides(points, sizes, frame, LABEL_OFFSET * pixels, 5 * pixels)):
        if side == "left":
            label.set_position((-LABEL_OFFSET, 0))
            label.set_horizontalalignment("right")


def _draw_baselines(ax, places, values, label_at: str | None):
    """Baselines inside the range as dashed grey lines, named at the axes' `label_at` end ("left", "right";
    None: unnamed); the others as one line of text above the axes."""
    for name, place in places.items():
        if place == "inside":
            ax.axhline(values[name], color=BASELINE_COLOUR, linestyle="--", linewidth=1.2, zorder=1)
            if label_at:
                ax.text(0.01 if label_at == "left" else 0.99, values[name], f"{name}  {values[name]:.1f}",
                        transform=ax.get_yaxis_transform(), ha=label_at, va="bottom", fontsize=8.5,
                        color=BASELINE_COLOUR)
    outside = [f"{name}: {values[name]:.1f} ({place})" for name, place in places.items() if place != "inside"]
    if outside and label_at:
        ax.text(0.0, 1.015, "off this scale: " + ";  ".join(outside), transform=ax.transAxes, va="bottom",
                fontsize=8.5, color=BASELINE_COLOUR)


def _scored(entries, key):
    """(runs with a score and trainable parameters, {baseline name: score})."""
    runs = [e for e in entries if e.kind != "baseline" and score(e, key) and e.summary.get("trainable_params")]
    baselines = {e.name: score(e, key)[1] for e in entries if e.kind == "baseline" and score(e, key)}
    return runs, baselines


def save_figure(plt, fig, path: Path) -> None:
    """Write `fig` as a PNG atomically (a failed or killed write never leaves half an image), then free it."""
    try:
        write_file(path, lambda temporary: fig.savefig(temporary, format="png", dpi=120,
                                                       metadata={"Title": PNG_TITLE}))
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------------ figures
def loss_figure(plt, entries, x_axis: str = "epoch"):
    """Validation loss (solid, dots) and training loss (thin, dashed) of every run with a log, in one colour
    per run, against `x_axis` ("epoch" or "step"); None when no run has validation records."""
    runs = [e for e in entries if e.curve]
    if not runs:
        return None
    colours = run_colours(entries)
    fig, ax = plt.subplots(figsize=(8, 5))
    ends = []
    for entry in runs:
        colour = colours[entry.name]
        if entry.train_curve:
            ax.plot([r.get(x_axis, r["step"]) for r in entry.train_curve], [r["loss"] for r in entry.train_curve],
                    linestyle="--", linewidth=1, alpha=0.75, color=colour)
        xs = [r.get(x_axis, r["step"]) for r in entry.curve]
        ax.plot(xs, [r["val_loss"] for r in entry.curve], marker="o", markersize=3.5, linewidth=2, color=colour)
        ends.append((entry, xs[-1], entry.curve[-1]["val_loss"]))
    bottom, top = ax.get_ylim()
    for (entry, x, y), label_y in zip(ends, spread_labels([y for _, _, y in ends], 0.045 * (top - bottom))):
        # x in points right of the curve's end, y in data: the names go in the margin, apart from each other
        ax.annotate(entry.name, (x, y), xytext=(8, label_y), textcoords=("offset points", "data"), va="center",
                    fontsize=9, color=colours[entry.name], fontweight="bold", annotation_clip=False)
    ax.plot([], [], color="black", linewidth=2, marker="o", markersize=3.5, label="validation loss")
    ax.plot([], [], color="black", linewidth=1, linestyle="--", alpha=0.75, label="training loss (logged steps)")
    ax.legend(fontsize=8.5, loc="upper right", frameon=False)
    ax.set(xlabel="optimizer step" if x_axis == "step" else "epoch", ylabel="loss (cross-entropy per summary token)")
    ax.set_title("Training and validation loss", loc="left", fontsize=12)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def rouge_figure(plt, entries, key: str, title: str):
    """`title` (the ROUGE score `key`) against trainable parameters, log x with every decade labelled;
    None when no run with trainable parameters was evaluated."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    runs, baselines = _scored(entries, key)
    if not runs:
        return None
    colours = run_colours(entries)
    fig, ax = plt.subplots(figsize=(8, 5))
    params = [e.summary["trainable_params"] for e in runs]
    _draw_scores(ax, runs, params, key, colours)
    limits, places = quality_limits([(score(e, key)[0], score(e, key)[2]) for e in runs], baselines)
    _draw_baselines(ax, places, baselines, "right")  # small models score low: the lower right is empty
    ax.set_xscale("log")
    ax.set_xlim(*decade_limits(params))
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=99))  # numticks high: no decade is skipped
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: count_label(value)))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=range(2, 10), numticks=99))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(*limits)
    ax.set(xlabel="trainable parameters (log scale)", ylabel=f"{title} (F × 100, 95% interval)")
    ax.set_title(f"{title} against trainable parameters", loc="left", fontsize=12, pad=18)
    ax.grid(alpha=0.3, which="major")
    fig.tight_layout()
    _label_points(fig, ax, runs, params, key, colours)
    return fig


def cost_figure(plt, entries, key: str, title: str, memory_label: str):
    """`title` against training wall time (left) and peak memory (right, described by `memory_label`);
    None when no evaluated run has both."""
    runs, baselines = _scored(entries, key)
    runs = [e for e in runs if e.summary.get("wall_time_s") is not None and e.summary.get("peak_memory_mb")]
    if not runs:
        return None
    colours = run_colours(entries)
    fig, (by_time, by_memory) = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    seconds, unit = time_unit(max(e.summary["wall_time_s"] for e in runs))
    limits, places = quality_limits([(score(e, key)[0], score(e, key)[2]) for e in runs], baselines)
    panels = ((by_time, [e.summary["wall_time_s"] / seconds for e in runs], f"training wall time ({unit})"),
              (by_memory, [e.summary["peak_memory_mb"] for e in runs], f"peak memory (MB): {memory_label}"))
    for ax, xs, xlabel in panels:
        _draw_scores(ax, runs, xs, key, colours)
        _draw_baselines(ax, places, baselines, "left" if ax is by_time else None)  # nothing costs ~0: left is empty
        ax.set_xlim(0, 1.3 * max(xs))  # from zero, so that a ratio of costs looks like one
        ax.set_xlabel(f"{xlabel}  (← cheaper)")
        ax.grid(alpha=0.3)
    by_time.set_ylim(*limits)
    by_time.set_ylabel(f"{title} (F × 100, 95% interval)  (higher is better)")
    fig.suptitle(f"{title} against the cost of training", x=0.01, ha="left", fontsize=12)
    fig.tight_layout()
    for ax, xs, _ in panels:
        _label_points(fig, ax, runs, xs, key, colours)
    return fig
