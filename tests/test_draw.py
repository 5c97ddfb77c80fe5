"""Draw.ipynb's helpers: to_mnist's visible steps, the hidden units' votes, shifts, the pad's saved fallback."""
import base64
import io
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from helpers import draw, images, nn, paths, plots


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


def test_steps_figure_shows_the_four_sizes():
    fig = draw.steps(draw.example_drawing())
    titles = [ax.get_title() for ax in fig.axes]
    s = images.mnist_steps(draw.example_drawing())
    assert len(titles) == 4 and titles[0].endswith("280x280 pixels") and titles[3].endswith("28x28 pixels")
    assert titles[2].endswith(f"{s['fit'].shape[1]}x{s['fit'].shape[0]} pixels")
    plt.close(fig)


def test_votes_add_up_to_the_score():
    model = nn.MLP((784, 32, 10), seed=1)
    proba = model.predict_proba(np.random.default_rng(0).random((1, 784), np.float32))[0]
    logits = model.activations[-2][0] @ model.params[-2] + model.params[-1]
    for digit in (0, int(np.argmax(proba))):
        votes = draw.votes(model, digit)
        assert votes.shape == (32,)
        np.testing.assert_allclose(votes.sum() + model.params[-1][digit], logits[digit], rtol=1e-5)
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), proba, rtol=1e-5)
    assert draw.votes(nn.MLP((784, 10)), 3) is None  # no hidden layer, no votes


def test_votes_chart_ranks_the_largest_votes():
    votes = np.array([0.1, -3.0, 0.0, 2.0, 0.5, -0.2])
    fig = plots.hidden_votes(votes, 4, k=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["unit 4", "unit 3", "unit 1"]  # largest at the top
    assert [bar.get_width() for bar in ax.patches] == [0.5, 2.0, -3.0]
    plt.close(fig)


def test_shifted_moves_without_recentring():
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    np.testing.assert_array_equal(draw.shifted(x, 0, 0), x)
    out = draw.shifted(x, 2, 5)
    np.testing.assert_array_equal(out[:, 5:, 2:], x[:, :-5, :-2])
    assert out[:, :5].max() == 0 and out[:, :, :2].max() == 0 and out.shape == x.shape


def png_size(b64):
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        assert im.format == "PNG"
        return im.size


def test_the_pad_saves_a_static_example_instead_of_its_repr():
    model = nn.MLP((784, 16, 10), seed=0)
    bundle = draw.pad(model)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab with a kernel: the live pad
    assert "HBox(" not in bundle["text/plain"] and "needs a running kernel" in bundle["text/plain"]
    assert png_size(bundle["image/png"])[0] > 600  # the readout of the example 7


def test_the_committed_notebook_is_executed_and_shows_the_fallback():
    nb = json.loads((paths.ROOT / "notebooks" / "Draw.ipynb").read_text())
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] for cell in code)
    assert str(paths.ROOT) not in json.dumps([cell["outputs"] for cell in code])
    pad = code[-1]["outputs"][-1]["data"]
    assert "HBox(" not in "".join(pad["text/plain"]) and png_size(pad["image/png"])[0] > 600
