"""The comparison's plots: the layout decisions as pure functions (no matplotlib needed), then what the drawn
figures hold (skipped without matplotlib, the optional `plot` extra, as in CI).

The numbers are those users reported: lead-3 at 55.7 ROUGE-L while the methods scored 0.6 to 3.4 on a
150K-parameter model, which squashed the methods into the bottom 5% of the plot.
"""

import math

import pytest

from minisumm.tools import compare, plots
from test_compare import rouge, write_eval, write_run

# (low, high) of the methods' 95% intervals, mids 0.6, 1.4, 2.9, 3.4
SMALL_METHODS = [(0.1, 1.1), (0.9, 1.9), (2.4, 3.4), (2.9, 3.9)]


def test_a_far_baseline_does_not_squash_the_methods():
    (bottom, top), places = plots.quality_limits(SMALL_METHODS, {"baseline-lead3": 55.7, "baseline-zero-shot": 0.2})
    assert places == {"baseline-lead3": "above", "baseline-zero-shot": "inside"}
    assert 0 <= bottom <= 0.1 and 3.9 <= top < 5  # every interval fits, lead-3 does not stretch the axis
    assert (3.9 - 0.1) / (top - bottom) > 0.8  # the methods fill most of the height


def test_a_near_baseline_is_drawn_inside_and_a_low_one_is_below():
    limits, places = plots.quality_limits([(4.1, 7.5), (41.9, 53.5)], {"baseline-lead3": 56.4})
    assert places == {"baseline-lead3": "inside"} and limits[1] > 56.4
    limits, places = plots.quality_limits([(40.0, 50.0), (45.0, 52.0)], {"baseline-zero-shot": 2.0})
    assert places == {"baseline-zero-shot": "below"} and limits[0] > 2.0


@pytest.mark.parametrize("values, expected", [([2_560, 1_121_024], (1e3, 1e7)), ([1_000, 5_000], (1e2, 1e4)),
                                              ([15_360, 124_439_808], (1e4, 1e9)), ([4_096, 4_096], (1e3, 1e4))])
def test_decade_limits_enclose_every_point_between_two_decades(values, expected):
    low, high = plots.decade_limits(values)
    assert (low, high) == expected
    assert low < min(values) and max(values) < high


@pytest.mark.parametrize("value, expected", [(1, "1"), (1e3, "1K"), (1e5, "100K"), (1e6, "1M"), (1e9, "1B")])
def test_count_label(value, expected):
    assert plots.count_label(value) == expected


def test_spread_labels_keeps_a_gap_and_the_order_and_leaves_lone_labels_alone():
    positions = [1.02, 1.0, 3.0, 1.01]
    spread = plots.spread_labels(positions, 0.1)
    assert spread[2] == 3.0  # far from the others: unmoved
    close = sorted(spread[i] for i in (1, 3, 0))
    assert [spread[1], spread[3], spread[0]] == close  # the order of 1.0, 1.01, 1.02 is kept
    assert all(b - a >= 0.1 - 1e-12 for a, b in zip(close, close[1:]))
    assert math.isclose(sum(close) / 3, 1.01)  # centred on the points they name
    assert plots.spread_labels([1.0, 2.0], 0.1) == [1.0, 2.0]


def test_label_sides_move_a_label_that_would_hide_a_neighbour():
    # points at x=150 and x=200 (pixels), same height; labels 120 wide: the first one's right side crosses the
    # second point's error bar, so it goes left; the second fits on its right in a 400-pixel frame
    points = [(150, 50, 30, 70), (200, 50, 30, 70)]
    assert plots.label_sides(points, [(120, 12), (120, 12)], 400, 10, 5) == ["left", "right"]
    # with no room on the left either (x=100: it would leave the frame), it stays right
    assert plots.label_sides([(100, 50, 30, 70), (150, 50, 30, 70)], [(120, 12)] * 2, 400, 10, 5)[0] == "right"
    # far apart, both on the right; next to the frame's right edge, on the left
    assert plots.label_sides([(100, 50, 30, 70), (100, 300, 280, 320)], [(120, 12)] * 2, 400, 10, 5) == ["right"] * 2
    assert plots.label_sides([(350, 50, 30, 70)], [(120, 12)], 400, 10, 5) == ["left"]


# ------------------------------------------------------------------------------------------------ drawn figures
@pytest.fixture
def small_model_runs(tmp_path):
    """Four methods on a 150K-parameter model at 0.6 to 3.4 ROUGE-L, lead-3 at 55.7, zero-shot at 0.2."""
    root = tmp_path / "runs"
    for (method, trainable, mid), val_losses in zip(
            (("prompt", 1_280, 0.6), ("lora", 4_096, 1.4), ("last-layers", 70_000, 2.9), ("full", 153_408, 3.4)),
            ((6.9, 5.6, 5.2), (6.9, 5.0, 4.9), (6.9, 4.4, 3.9), (6.9, 4.0, 3.4))):
        write_run(root / method, method, trainable, 153_408, val_losses=val_losses)
        write_eval(root / method, {"examples": 40, "rouge": rouge(mid + 1, 0.1, mid, mid, spread=0.5)})
    for name, mid in (("lead3", 55.7), ("zero-shot", 0.2)):
        (root / f"baseline-{name}").mkdir()
        write_eval(root / f"baseline-{name}", {"source": name, "examples": 40, "rouge": rouge(mid, 0, mid, mid, 0.1)})
    entries, _ = compare.read_entries(sorted(root.iterdir()))
    return entries


@pytest.fixture
def plt():
    pytest.importorskip("matplotlib")
    pyplot = compare._pyplot()
    yield pyplot
    pyplot.close("all")


def texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def test_rouge_plot_names_every_point_and_labels_every_decade(small_model_runs, plt):
    fig = plots.rouge_figure(plt, small_model_runs, "rougeL", "ROUGE-L")
    (ax,) = fig.axes
    assert ax.get_ylim()[1] < 5  # lead-3 at 55.7 is written, not plotted
    assert "off this scale: baseline-lead3: 55.7 (above)" in texts(ax)
    assert "baseline-zero-shot  0.2" in texts(ax)  # inside the range: a labelled line
    assert {"prompt  0.6", "lora  1.4", "last-layers  2.9", "full  3.4"} <= set(texts(ax))
    low, high = ax.get_xlim()
    fig.canvas.draw()  # tick labels are set when drawn
    labelled = {tick.get_text() for tick, x in zip(ax.get_xticklabels(), ax.get_xticks()) if low <= x <= high}
    assert (low, high) == (1e3, 1e6) and labelled == {"1K", "10K", "100K", "1M"}
    # error bars: one vertical segment per run, 1.0 tall in data units (the interval 0.5 either side)
    bars = [segments for collection in ax.collections for segments in collection.get_segments()]
    assert sorted(round(b[1][1] - b[0][1], 6) for b in bars) == [1.0] * 4


def test_loss_plot_draws_validation_solid_and_training_dashed_in_one_colour_per_run(small_model_runs, plt):
    fig = plots.loss_figure(plt, small_model_runs)
    (ax,) = fig.axes
    drawn = [line for line in ax.get_lines() if len(line.get_xdata())]  # past the legend's empty proxies
    assert len(drawn) == 8  # four runs, two curves each
    for run, val_losses in (("prompt", [6.9, 5.6, 5.2]), ("full", [6.9, 4.0, 3.4])):
        solid = next(line for line in drawn if list(line.get_ydata()) == val_losses)
        dashed = next(line for line in drawn if line.get_linestyle() == "--"
                      and list(line.get_ydata()) == [round(v - 0.3, 10) for v in val_losses[1:]])
        assert solid.get_linestyle() == "-" and solid.get_color() == dashed.get_color()
        assert run in texts(ax)


def test_cost_plot_has_time_and_memory_panels_with_named_points(small_model_runs, plt):
    fig = plots.cost_figure(plt, small_model_runs, "rougeL", "ROUGE-L", "process resident set")
    by_time, by_memory = fig.axes
    assert "wall time (s)" in by_time.get_xlabel() and "process resident set" in by_memory.get_xlabel()
    for ax in (by_time, by_memory):
        assert {"prompt  0.6", "full  3.4"} <= set(texts(ax)) and ax.get_xlim()[0] == 0
    assert by_time.get_ylim()[1] < 5
