"""Draw a digit with the mouse in JupyterLab and watch the network read it; Draw.ipynb's figures.

`pad(models, best)` returns the drawing widget: an ipycanvas Canvas, a Clear button, and live
output (the 28x28 input and each model's ten probabilities, side by side). `show(models, picture)`
draws the same output for any picture. Where no kernel runs (a code host), the saved pad shows that
output for `example_drawing()` instead. This is the only module that imports the widget libraries.
"""
import base64
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from PIL import Image, ImageDraw

from . import conv_plots, data, images, plots

SIDE, PEN = 280, 20  # canvas pixels and pen width: 10x MNIST, strokes about as thick as its ink
SEVEN = (((95, 60), (200, 60), (120, 230)), ((110, 145), (185, 145)))
HINT = "Draw a digit in the box with the mouse."


def votes(model, x28):
    """(hidden, 10) what each unit of the last hidden layer adds to each digit's score for the input
    x28 (28, 28) uint8: its activation times its weight to that digit. A digit's score is its column's
    sum plus its bias. None for a model without hidden layer."""
    if model.depth < 2:
        return None
    model.predict_proba(np.reshape(x28, (1, 784)) / np.float32(255))  # this input's activations, not the last one's
    return model.activations[-2][0][:, None] * model.params[-2]


def compare(models, picture, title=None):
    """(figure, {name: digit}) for models {name: model}: the picture's 28x28 input, then each model's
    ten probabilities, side by side. images.ImageError for a blank picture."""
    x28 = images.to_mnist(picture)
    probas = {name: m.predict_proba(x28.reshape(1, -1) / np.float32(255))[0] for name, m in models.items()}
    fig, axes = plt.subplots(1, 1 + len(probas), figsize=(2.6 + 4.2 * len(probas), 3.0),
                             width_ratios=[1] + [1.9] * len(probas))
    axes[0].imshow(x28, cmap="gray")
    axes[0].set(xticks=[], yticks=[], title="the input (28x28)")
    for ax, (name, proba) in zip(axes[1:], probas.items()):
        plots.probabilities(proba, ax=ax, title=f"{name}: {int(np.argmax(proba))} ({np.max(proba):.2%})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, {name: int(np.argmax(proba)) for name, proba in probas.items()}


def show(models, picture, title=None):
    """Display what each model makes of a picture ({name: digit}); a clear message if it is blank."""
    try:
        fig, digits = compare(models, picture, title)
    except images.ImageError as e:
        print(e)
        return None
    display(fig)
    plt.close(fig)
    return digits


def example_drawing(strokes=SEVEN):
    """(280, 280) uint8: lines on a white page, as a mouse would draw them; by default a 7."""
    page = Image.new("L", (SIDE, SIDE), 255)
    pen = ImageDraw.Draw(page)
    for stroke in strokes:
        pen.line(stroke, fill=0, width=PEN, joint="curve")
    return np.asarray(page)


def steps(picture, title="From a drawing to MNIST's 28x28"):
    """to_mnist's steps side by side: the picture, the crop to the ink, the 20x20 fit, the 28x28 input.

    Drawn to scale in two pairs: the crop beside the drawing it comes from, the fit beside the 28x28
    input it goes into (with its 20x20 box outlined), so a 12x20 fit looks smaller than 28x28."""
    s = images.mnist_steps(picture)
    side = max(np.shape(picture)[:2])
    widths = [np.shape(picture)[1] / side, s["crop"].shape[1] / side, s["fit"].shape[1] / 28, 1]
    fig, axes = plt.subplots(1, 4, figsize=(11, 9.5 / sum(widths) + 1.2), width_ratios=widths)  # widths bind
    panels = [(picture, "the drawing"), (s["crop"], "inverted,\ncropped to the ink"), (s["fit"], "fit in\n20x20"),
              (s["mnist"], "in 28x28, centre of mass (+)\nat the centre, 20x20 dashed")]
    for ax, (image, caption) in zip(axes, panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set(xticks=[], yticks=[], title=f"{caption}\n{image.shape[1]} wide x {image.shape[0]} tall")
        ax.set_anchor("S")  # panels drawn to scale share a baseline
    ys, xs = np.indices(s["mnist"].shape)
    mass = s["mnist"].astype(float) / s["mnist"].sum()
    axes[3].plot((xs * mass).sum(), (ys * mass).sum(), "r+", ms=14)
    (top, left), (h, w) = s["corner"], s["fit"].shape
    axes[3].add_patch(plt.Rectangle((left - (20 - w) / 2 - 0.5, top - (20 - h) / 2 - 0.5), 20, 20, fill=False,
                                    ec="tab:orange", lw=1.2, ls="--"))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def not_digits(inputs, probas, names, title="Every input gets a digit"):
    """Inputs (n, 28, 28) over their probability bars (n, 10), captioned with names."""
    fig, axes = plt.subplots(2, len(inputs), figsize=(2.4 * len(inputs), 4.4), height_ratios=[1.3, 1])
    for (top, bottom), x, proba, name in zip(axes.T, inputs, probas, names):
        top.imshow(np.reshape(x, (28, 28)), cmap="gray")
        top.set(xticks=[], yticks=[], title=name)
        plots.probabilities(proba, ax=bottom, title=f"{int(np.argmax(proba))} with {np.max(proba):.2%}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


shifted = data.shifted  # Draw.ipynb's name for it


def keeps_ink(x, right, down):
    """(n,) bool: which images of x (n, 28, 28) lose no ink when shifted(x, right, down) moves them right
    and down by whole pixels (>= 0): those with no nonzero pixel in their last `right` columns or last
    `down` rows, the ones the move pushes off the frame. Measuring on these alone separates the move
    from the cropping."""
    x = np.asarray(x)
    off = x[:, :, x.shape[2] - right:].any(axis=(1, 2)) | x[:, x.shape[1] - down:, :].any(axis=(1, 2))
    return ~off


def shift_curve(shifts, accuracies, title="Test accuracy of the MLP on shifted digits"):
    """One line per direction: accuracies {label: [accuracy per shift]}; the axis starts at 0."""
    return conv_plots.shift_curves(shifts, accuracies, title, ylabel="test accuracy")


class Pad(widgets.HBox):
    """The drawing pad. Its saved output also carries a line of text and a picture of what it
    shows for the example 7, which a page without a widget manager (a code host) shows instead."""

    fallback_png = ""  # base64, as IPython stores images

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "[Drawing pad: it needs a running kernel. Here is what it shows for a drawn 7.]"
        if self.fallback_png:
            bundle["image/png"] = self.fallback_png
        return bundle


def png(fig):
    """A figure as base64 PNG text; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pad(models, best):
    """The drawing widget, ready to display: the drawing read by every model of models {name: model}
    side by side, and in bold the answer of models[best]."""
    from ipycanvas import Canvas  # only the live widget needs it

    canvas = Canvas(width=SIDE, height=SIDE, sync_image_data=True,
                    layout=widgets.Layout(border="1px solid #999", width=f"{SIDE}px", height=f"{SIDE}px"))
    canvas.stroke_style, canvas.line_width, canvas.line_cap, canvas.line_join = "black", PEN, "round", "round"
    clear = widgets.Button(description="Clear", icon="eraser")
    status = widgets.HTML(HINT)
    output = widgets.Output()
    pen = {"down": False, "at": None}

    def update(*_):
        if pen["down"] or canvas.image_data is None:
            return
        if images.is_empty(canvas.get_image_data()):  # not drawn on yet, or wiped: nothing is wrong, so
            output.clear_output()  # no "blank picture" message (a stroke too small still gets it)
            status.value = HINT
            return
        with output:
            output.clear_output(wait=True)
            digits = show(models, canvas.get_image_data())
        status.value = HINT if digits is None else f"<b>Prediction: {digits[best]}</b> by the {best}"

    def down(x, y):
        pen.update(down=True, at=(x, y))

    def move(x, y):
        if pen["down"]:
            canvas.stroke_line(*pen["at"], x, y)
            pen["at"] = (x, y)

    def up(x, y):
        pen["down"] = False
        update()

    def wipe(_):
        canvas.clear()
        output.clear_output()
        status.value = HINT

    canvas.on_mouse_down(down)
    canvas.on_mouse_move(move)
    canvas.on_mouse_up(up)
    canvas.observe(update, "image_data")  # the drawing reaches the kernel a moment after the stroke
    clear.on_click(wipe)
    pad_column = widgets.VBox([canvas, clear], layout=widgets.Layout(min_width=f"{SIDE + 10}px"))
    widget = Pad([pad_column, widgets.VBox([status, output])])
    fig, digits = compare(models, example_drawing())
    fig.suptitle(f"What the pad shows for a drawn 7, under the line: Prediction: {digits[best]} by the {best}")
    fig.tight_layout()  # again, to make room for the title
    widget.fallback_png = png(fig)
    return widget
