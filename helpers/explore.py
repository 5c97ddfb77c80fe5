"""The explorer of Database_view.ipynb: choose a run, a true digit and a predicted digit, see those images.

`explorer(fetch, runs, start)` returns the widget: three dropdowns, a line of text and a gallery
image. `fetch(run_id, label, predicted)` is the notebook's own SQL query; it returns a DataFrame
with columns input (the 784-byte BLOBs), label, predicted, confidence and total (how many rows
matched before any LIMIT). The gallery is redrawn whenever a dropdown changes. Where no kernel runs
(a code host), the saved output shows a picture of the starting choice instead of a blank widget.
Like draw.py, this module may import the widget libraries; helpers/nn.py and the rest do not.
"""
import base64
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt

from . import db, plots_db

COLUMNS = ("input", "label", "predicted", "confidence", "total")


class Explorer(widgets.VBox):
    """The explorer. Its saved output also carries a line of text and a PNG of the starting
    gallery, which a page without a widget manager shows instead."""

    fallback_png = b""
    fallback_text = ""

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = self.fallback_text
        if self.fallback_png:
            bundle["image/png"] = base64.b64encode(self.fallback_png).decode("ascii")
        return bundle


def gallery(rows, caption):
    """(png bytes, status text) for the rows fetch returned; a text only if there are none."""
    if len(rows) == 0:
        return b"", f"{caption}: no such test images."
    total = int(rows["total"].iloc[0])
    fig = plots_db.digits(db.decode_images(rows["input"]), rows["label"].to_numpy(), rows["predicted"].to_numpy(),
                          rows["confidence"].to_numpy(), title=caption)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)  # sharp enough to read the captions in the saved picture
    plt.close(fig)
    shown = "all of them" if total == len(rows) else f"the {len(rows)} most confident"
    return buffer.getvalue(), f"{caption}: {total} test images, {shown} below."


def explorer(fetch, runs, start):
    """The widget. runs: {run_id: name} to choose from; start: (run_id, label, predicted) shown first."""
    if not runs:
        raise ValueError("runs: no run to explore; pass {run_id: name} with at least one run")
    run_id, label, predicted = start
    if run_id not in runs or not {label, predicted} <= set(range(10)):
        raise ValueError(f"start: {start!r} is not (run_id, label, predicted) with run_id in {sorted(runs)} "
                         f"and both digits in 0..9")
    run = widgets.Dropdown(options=[(f"{i} {name}", i) for i, name in runs.items()], value=run_id, description="run")
    true = widgets.Dropdown(options=list(range(10)), value=label, description="true digit")
    read = widgets.Dropdown(options=list(range(10)), value=predicted, description="read as")
    status = widgets.HTML()
    picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))

    def update(*_):
        rows = fetch(run.value, true.value, read.value)
        missing = [c for c in COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"fetch: its result lacks the columns {missing}; it must return {list(COLUMNS)}")
        caption = f"Run {run.value} ({runs[run.value]}): a true {true.value} read as {read.value}"
        picture.value, text = gallery(rows, caption)
        picture.layout.display = "" if picture.value else "none"
        status.value = f"<b>{text}</b>"
        return text

    for control in (run, true, read):
        control.observe(update, "value")
    widget = Explorer([widgets.HBox([run, true, read]), status, picture])
    text = update()
    widget.fallback_png = picture.value
    widget.fallback_text = f"[Explorer: it needs a running kernel. What it shows first: {text}]"
    return widget
