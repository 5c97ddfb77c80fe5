"""Database_view.ipynb's helpers: the explorer widget (its gallery, its saved fallback, its checks) and its plots."""
import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import explore, plots_db


def fake_fetch(calls):
    """A stand-in for the notebook's SQL: n = 3 * label + predicted matching rows, the first 20 returned."""
    rng = np.random.default_rng(0)

    def fetch(run_id, label, predicted):
        calls.append((run_id, label, predicted))
        n = 3 * label + predicted
        shown = min(n, 20)
        images = rng.integers(0, 256, size=(shown, 784), dtype=np.uint8)
        return pd.DataFrame({"input": [row.tobytes() for row in images], "label": [label] * shown,
                             "predicted": [predicted] * shown, "confidence": np.linspace(0.9, 0.5, shown),
                             "total": [n] * shown})
    return fetch


def controls(widget):
    run, true, read = widget.children[0].children
    return run, true, read, widget.children[1], widget.children[2]


def test_explorer_redraws_the_gallery_when_a_choice_changes():
    calls = []
    widget = explore.explorer(fake_fetch(calls), {1: "baseline", 2: "default"}, start=(2, 4, 1))
    run, true, read, status, picture = controls(widget)
    assert calls == [(2, 4, 1)]
    assert status.value == "<b>Run 2 (default): a true 4 read as 1: 13 test images, all of them below.</b>"
    first = picture.value
    assert Image.open(io.BytesIO(first)).size[0] >= 1000  # captions readable in the saved picture
    run.value, true.value = 1, 9  # 28 matches: the gallery holds 20 of them
    assert calls[-1] == (1, 9, 1)
    assert status.value == "<b>Run 1 (baseline): a true 9 read as 1: 28 test images, the 20 most confident below.</b>"
    assert picture.value != first and picture.layout.display == ""


def test_explorer_says_when_nothing_matches():
    widget = explore.explorer(fake_fetch([]), {5: "default"}, start=(5, 0, 0))
    _, _, _, status, picture = controls(widget)
    assert status.value == "<b>Run 5 (default): a true 0 read as 0: no such test images.</b>"
    assert picture.value == b"" and picture.layout.display == "none"


def test_saved_explorer_shows_its_first_gallery_without_a_kernel():
    widget = explore.explorer(fake_fetch([]), {2: "default"}, start=(2, 3, 5))
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == controls(widget)[4].value
    assert bundle["text/plain"] == ("[Explorer: it needs a running kernel. What it shows first: "
                                    "Run 2 (default): a true 3 read as 5: 14 test images, all of them below.]")


@pytest.mark.parametrize("runs, start, message", [
    ({}, (1, 4, 9), "runs: no run to explore"),
    ({1: "baseline"}, (2, 4, 9), "start: (2, 4, 9) is not (run_id, label, predicted) with run_id in [1]"),
    ({1: "baseline"}, (1, 4, 10), "start: (1, 4, 10) is not"),
])
def test_explorer_rejects_a_bad_start(runs, start, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        explore.explorer(fake_fetch([]), runs, start)


def test_explorer_names_the_columns_a_fetch_forgot():
    def fetch(run_id, label, predicted):
        return pd.DataFrame({"input": [], "label": []})

    with pytest.raises(ValueError, match=r"fetch: its result lacks the columns \['predicted', 'confidence', 'total'\]"):
        explore.explorer(fetch, {1: "baseline"}, start=(1, 4, 9))


def test_per_digit_errors_give_each_run_its_own_axis_from_zero():
    table = pd.DataFrame({"1 baseline": np.linspace(0.03, 0.2, 10), "2 default": np.linspace(0.005, 0.02, 10)},
                         index=pd.Index(range(10), name="digit"))
    fig = plots_db.per_digit_errors(table)
    assert [ax.get_title() for ax in fig.axes] == ["run 1 baseline", "run 2 default"]
    for ax, run in zip(fig.axes, table.columns):
        assert ax.get_ylim()[0] == 0 and "from 0" in ax.get_ylabel()
        assert np.allclose([bar.get_height() for bar in ax.patches], table[run])
        assert ax.get_ylim()[1] < 1.2 * table[run].max()  # the small run's bars are not squashed
    plt.close(fig)


def test_digits_turn_only_a_wrong_reading_red():
    images = np.zeros((3, 784), dtype=np.uint8)
    fig = plots_db.digits(images, [4, 4, 7], [9, 4, 7], [0.5, 0.9, 0.99], title="three")
    shown = fig.axes[:3]
    assert [ax.get_title() for ax in shown] == ["true 4", "true 4", "true 7"]
    assert [ax.get_xlabel() for ax in shown] == ["read 9 (50%)", "read 4 (90%)", "read 7 (99%)"]
    assert [ax.xaxis.label.get_color() for ax in shown] == ["red", "black", "black"]
    assert {ax.title.get_color() for ax in shown} == {"black"}
    plt.close(fig)


def test_reliability_draws_one_line_per_run_and_the_diagonal():
    bins = pd.DataFrame({"run": ["1 baseline"] * 3 + ["2 default"] * 2, "confidence": [0.3, 0.5, 0.7, 0.8, 0.99],
                         "accuracy": [0.4, 0.8, 0.99, 0.85, 0.999], "images": [10, 100, 1000, 50, 9000]})
    fig = plots_db.reliability(bins)
    ax = fig.axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["calibrated: accuracy = confidence", "1 baseline", "2 default"]
    assert np.allclose(ax.lines[1].get_xydata(), [[0.3, 0.4], [0.5, 0.8], [0.7, 0.99]])
    assert ax.get_xlim()[0] == 0 and ax.get_ylim()[0] == 0
    plt.close(fig)
