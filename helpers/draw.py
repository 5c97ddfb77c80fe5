"""Draw a digit with the mouse in JupyterLab and watch the network read it.

`pad(model)` returns the drawing widget: an ipycanvas Canvas, a Clear button, and live output
(the 28x28 input, the ten probabilities, the hidden layer). `show(model, picture)` draws the same
output for any picture, which is how a saved notebook shows an example without a kernel.
This is the only module that imports the widget libraries.
"""
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from PIL import Image, ImageDraw

from . import images, plots

SIDE, PEN = 280, 20  # canvas pixels and pen width: 10x MNIST, strokes about as thick as its ink


def show(model, picture, title=None, with_picture=True):
    """Display what the network makes of a picture; a clear message if it is blank."""
    try:
        x28, proba, hidden = images.read(model, picture)
    except images.ImageError as e:
        print(e)
        return None
    fig = plots.prediction(np.asarray(picture) if with_picture else None, x28, proba, hidden, title=title)
    display(fig)
    plt.close(fig)
    return int(np.argmax(proba))


def example_drawing(strokes=(((95, 60), (200, 60), (120, 230)), ((110, 145), (185, 145)))):
    """A digit drawn with lines on a white page, as a mouse would draw it: by default a 7."""
    page = Image.new("L", (SIDE, SIDE), 255)
    pen = ImageDraw.Draw(page)
    for stroke in strokes:
        pen.line(stroke, fill=0, width=PEN, joint="curve")
    return np.asarray(page)


def pad(model):
    """The drawing widget, ready to display."""
    from ipycanvas import Canvas  # only the live widget needs it

    canvas = Canvas(width=SIDE, height=SIDE, sync_image_data=True,
                    layout=widgets.Layout(border="1px solid #999", width=f"{SIDE}px", height=f"{SIDE}px"))
    canvas.stroke_style, canvas.line_width, canvas.line_cap, canvas.line_join = "black", PEN, "round", "round"
    clear = widgets.Button(description="Clear", icon="eraser")
    status = widgets.HTML("Draw a digit in the box with the mouse.")
    output = widgets.Output()
    pen = {"down": False, "at": None}

    def update(*_):
        if pen["down"] or canvas.image_data is None:
            return
        with output:
            output.clear_output(wait=True)
            digit = show(model, canvas.get_image_data(), with_picture=False)  # the canvas is beside it
        status.value = "Draw a digit in the box with the mouse." if digit is None else f"<b>Prediction: {digit}</b>"

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
        status.value = "Draw a digit in the box with the mouse."

    canvas.on_mouse_down(down)
    canvas.on_mouse_move(move)
    canvas.on_mouse_up(up)
    canvas.observe(update, "image_data")  # the drawing reaches the kernel a moment after the stroke
    clear.on_click(wipe)
    pad_column = widgets.VBox([canvas, clear], layout=widgets.Layout(min_width=f"{SIDE + 10}px"))
    return widgets.HBox([pad_column, widgets.VBox([status, output])])
