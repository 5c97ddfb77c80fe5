"""Draw.ipynb's helpers: to_mnist's visible steps, the hidden units' votes, shifts, the pad's saved fallback."""
import base64
import io
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from helpers import convnet, draw, images, nn, paths, plots


def to_mnist_before_the_steps(image, name="image"):
    """images.to_mnist as it was before mnist_steps existed, verbatim: the reference for bit-for-bit."""
    a = images._grayscale(image, name)
    background = np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]))
    if background > 127:
        a, background = 255.0 - a, 255.0 - background
    a = np.clip(a - background, 0, 255)
    if a.max() < 32 or (a > images.INK_FRACTION * a.max()).sum() < 0.001 * a.size + 2:
        raise images.ImageError(f"{name}: the picture is blank or almost blank; draw or photograph a digit")
    rows, cols = np.nonzero(a > images.INK_FRACTION * a.max())
    a = a[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = a.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((a * (255.0 / a.max())).astype(np.float32), mode="F")
                       .resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0, 255)
    return images._centre_of_mass_in_28(small)


def pictures(mnist):
    """Drawings, letters, enlarged test digits in every layout to_mnist accepts."""
    (_, _), (x_test, _) = mnist
    rng = np.random.default_rng(0)
    seven = draw.example_drawing()
    rgba = np.zeros(seven.shape + (4,), np.uint8)  # black ink on a transparent canvas, as the pad sends it
    rgba[..., 3] = 255 - seven
    yield from (seven, seven / 255.0, 255 - seven, np.stack([seven] * 3, axis=2), rgba)
    yield draw.example_drawing(strokes=(((60, 250), (140, 30), (220, 250)), ((95, 160), (185, 160))))
    yield from (images.enlarge(x, rng) for x in x_test[:200])
    yield from x_test[200:400]  # already 28x28: cropped, refitted and re-centred


def test_to_mnist_is_bit_for_bit_what_it_was(mnist):
    n = 0
    for picture in pictures(mnist):
        out = images.to_mnist(picture)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, to_mnist_before_the_steps(picture))
        n += 1
    assert n == 406


def test_each_step_is_what_its_docstring_says(mnist):
    for picture in pictures(mnist):
        s = images.mnist_steps(picture)
        np.testing.assert_array_equal(s["mnist"], images.to_mnist(picture))
        assert s["page"].shape == np.shape(picture)[:2] and s["page"].min() == 0
        ink = s["crop"] > images.INK_FRACTION * s["crop"].max()
        assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()  # tight around the ink
        assert max(s["fit"].shape) == 20 and s["fit"].min() >= 0 and s["fit"].max() <= 255


def test_steps_reject_a_blank_picture_like_to_mnist():
    with pytest.raises(images.ImageError, match="drawing: the picture is blank"):
        images.mnist_steps(np.full((50, 50), 255, np.uint8), name="drawing")


def test_steps_figure_shows_the_four_sizes_to_scale_and_the_20x20_box():
    fig = draw.steps(draw.example_drawing())
    fig.canvas.draw()  # equal-aspect axes take their final size when drawn
    titles = [ax.get_title() for ax in fig.axes]
    s = images.mnist_steps(draw.example_drawing())
    (h, w), (top, left) = s["fit"].shape, s["corner"]
    assert len(titles) == 4 and titles[0].endswith("280 wide x 280 tall") and titles[3].endswith("28 wide x 28 tall")
    assert titles[2].endswith(f"{w} wide x {h} tall") and w < h == 20
    sizes = [ax.get_position().size for ax in fig.axes]  # (width, height) in figure fractions
    np.testing.assert_allclose(sizes[2] / sizes[3], (w / 28, 20 / 28), rtol=0.03)  # the fit at the input's scale
    np.testing.assert_allclose(sizes[1] / sizes[0], np.array(s["crop"].shape[::-1]) / 280, rtol=0.03)
    (box,) = fig.axes[3].patches
    assert (box.get_width(), box.get_height()) == (20, 20)
    assert box.get_x() <= left - 0.5 and box.get_x() + 20 >= left + w - 0.5 and box.get_y() == top - 0.5
    plt.close(fig)


def test_the_corner_is_where_the_fit_landed(mnist):
    for picture in list(pictures(mnist))[:20]:
        s = images.mnist_steps(picture)
        (top, left), (h, w) = s["corner"], s["fit"].shape
        np.testing.assert_array_equal(s["mnist"][top:top + h, left:left + w], np.round(s["fit"]).astype(np.uint8))
        assert s["mnist"].sum() == np.round(s["fit"]).astype(np.uint8).sum(dtype=int)  # nothing outside it


def test_votes_add_up_to_the_scores_of_their_own_input():
    model = nn.MLP((784, 32, 10), seed=1)
    x28, other = np.random.default_rng(0).integers(0, 256, (2, 28, 28)).astype(np.uint8)
    proba = model.predict_proba(x28.reshape(1, 784) / np.float32(255))[0]
    model.predict_proba(other.reshape(1, 784) / np.float32(255))  # a later forward pass must not leak in
    votes = draw.votes(model, x28)
    assert votes.shape == (32, 10)
    scores = votes.sum(axis=0) + model.params[-1]
    np.testing.assert_allclose(np.exp(scores) / np.exp(scores).sum(), proba, rtol=1e-5)
    assert draw.votes(nn.MLP((784, 10)), x28) is None  # no hidden layer, no votes


def test_votes_chart_shows_the_largest_votes_from_for_to_against():
    votes = np.array([0.1, -3.0, 0.0, 2.0, 0.5, -0.2])
    fig = plots.hidden_votes(votes, 4, k=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["unit 1", "unit 4", "unit 3"]  # bottom to top
    assert [bar.get_width() for bar in ax.patches] == [-3.0, 0.5, 2.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["for 4", "against 4"]
    assert ax.get_title() == "the 3 largest votes on 4, for or against"
    plt.close(fig)


def test_shifted_moves_without_recentring():
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    np.testing.assert_array_equal(draw.shifted(x, 0, 0), x)
    out = draw.shifted(x, 2, 5)
    np.testing.assert_array_equal(out[:, 5:, 2:], x[:, :-5, :-2])
    assert out[:, :5].max() == 0 and out[:, :, :2].max() == 0 and out.shape == x.shape


def test_keeps_ink_flags_the_images_a_move_would_crop():
    x = np.zeros((4, 28, 28), np.uint8)
    x[0, 10:15, 10:15] = 200  # ink ends at column 14 and row 14: 13 pixels to spare each way
    x[1, 5, 27] = 1  # one faint pixel in the last column
    x[2, 25, 3] = 90  # ink in row 25: 2 rows to spare below
    # x[3] is blank: nothing to lose
    assert draw.keeps_ink(x, 0, 0).tolist() == [True, True, True, True]
    assert draw.keeps_ink(x, 1, 0).tolist() == [True, False, True, True]
    assert draw.keeps_ink(x, 0, 2).tolist() == [True, True, True, True]
    assert draw.keeps_ink(x, 0, 3).tolist() == [True, True, False, True]
    assert draw.keeps_ink(x, 13, 13).tolist() == [True, False, False, True]
    assert draw.keeps_ink(x, 14, 0).tolist() == [False, False, True, True]
    assert draw.keeps_ink(x, 0, 14).tolist() == [False, True, False, True]


def test_keeps_ink_is_exactly_the_images_shifted_leaves_whole(mnist):
    (_, _), (x_test, _) = mnist
    x = x_test[:300]
    for right, down in [(0, 0), (1, 0), (0, 1), (3, 3), (6, 0), (0, 6), (6, 6), (27, 27)]:
        whole = draw.shifted(x, right, down).sum(axis=(1, 2), dtype=int) == x.sum(axis=(1, 2), dtype=int)
        np.testing.assert_array_equal(draw.keeps_ink(x, right, down), whole)
    assert 0 < draw.keeps_ink(x, 6, 6).sum() < draw.keeps_ink(x, 3, 3).sum() < 300  # both kinds occur


def png_size(b64):
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        assert im.format == "PNG"
        return im.size


def two_models():
    return {"MLP": nn.MLP((784, 16, 10), seed=0), "ConvNet": convnet.ConvNet((2, 3), hidden=8, seed=0)}


def test_the_pad_saves_a_static_example_instead_of_its_repr():
    bundle = draw.pad(two_models(), best="ConvNet")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab with a kernel: the live pad
    assert "HBox(" not in bundle["text/plain"] and "needs a running kernel" in bundle["text/plain"]
    assert png_size(bundle["image/png"])[0] > 900  # the example 7 read by both models, side by side


def test_the_committed_notebook_is_executed_and_shows_the_fallback():
    nb = json.loads((paths.ROOT / "notebooks" / "Draw.ipynb").read_text())
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] for cell in code)
    assert str(paths.ROOT) not in json.dumps([cell["outputs"] for cell in code])
    pad = code[-1]["outputs"][-1]["data"]
    assert "HBox(" not in "".join(pad["text/plain"]) and png_size(pad["image/png"])[0] > 600


def test_weights_of_the_voters_carry_the_drawing_outlined():
    W = np.random.default_rng(0).standard_normal((784, 12)).astype(np.float32)
    x28 = images.to_mnist(draw.example_drawing())
    fig = plots.first_layer_weights(W, units=[3, 7, 1], ncols=3, outline=x28)
    tiles = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in tiles] == ["unit 3", "unit 7", "unit 1"]
    assert all(len(ax.collections) == 1 for ax in tiles)  # one contour of the 7 on every tile
    plt.close(fig)


def test_compare_shows_every_model_side_by_side_as_precisely_as_the_notebook():
    models = two_models()
    fig, digits = draw.compare(models, draw.example_drawing())
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "the input (28x28)" and len(titles) == 3
    for (name, model), title in zip(models.items(), titles[1:]):
        _, proba, _ = images.read(model, draw.example_drawing())
        assert digits[name] == proba.argmax() and title == f"{name}: {digits[name]} ({proba.max():.2%})"
    plt.close(fig)


def test_show_says_what_is_wrong_with_a_blank_picture(capsys):
    assert draw.show(two_models(), np.full((280, 280), 255, np.uint8)) is None
    assert "the picture is blank" in capsys.readouterr().out



def test_an_empty_pad_says_only_what_to_do_and_a_drawing_gets_its_prediction(capsys):
    models = two_models()
    widget = draw.pad(models, best="ConvNet")
    (canvas, clear), (status, output) = widget.children[0].children, widget.children[1].children

    def sync(rgba):  # what the browser sends after each change: the canvas as PNG
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
        canvas.set_trait("image_data", buffer.getvalue())

    def ink(gray):  # black ink on the canvas's transparent page
        rgba = np.zeros(gray.shape + (4,), np.uint8)
        rgba[..., 3] = 255 - gray
        return rgba

    empty = np.zeros((draw.SIDE, draw.SIDE, 4), np.uint8)
    sync(empty)  # as the pad first appears, before anything is drawn
    assert status.value == draw.HINT and "blank" not in capsys.readouterr().out and output.outputs == ()
    sync(ink(draw.example_drawing()))
    fig, digits = draw.compare(models, draw.example_drawing())
    plt.close(fig)
    assert status.value == f"<b>Prediction: {digits['ConvNet']}</b> by the ConvNet"  # the 7, read from the PNG
    clear.click()
    sync(empty)  # the wiped canvas
    assert status.value == draw.HINT and "blank" not in capsys.readouterr().out
    dot = np.full((draw.SIDE, draw.SIDE), 255, np.uint8)
    dot[140:143, 140:143] = 0
    sync(ink(dot))  # some ink, too little to read: that is still said
    assert "the picture is blank or almost blank" in capsys.readouterr().out and status.value == draw.HINT
    assert images.is_empty(empty) and not images.is_empty(ink(dot)) and images.is_empty(np.full((5, 5), 7))
