"""Your own digits: to_mnist on every kind of picture, its rejections, the proof on real data, predict."""
import numpy as np
import pytest
from PIL import Image

from helpers import __main__ as cli
from helpers import data, draw, images, model_io


def stroke_page(dark_on_light=True, size=(300, 220)):
    """A thick vertical bar (a '1') off-centre on a page."""
    page = np.zeros(size, np.uint8)
    page[40:200, 150:175] = 255
    return 255 - page if dark_on_light else page


def test_to_mnist_output_looks_like_mnist():
    out = images.to_mnist(stroke_page())
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows, cols = np.nonzero(out > 25)
    assert rows.max() - rows.min() + 1 in (20, 21) and cols.max() - cols.min() + 1 <= 5  # fits 20x20, tall
    ys, xs = np.indices(out.shape)
    assert abs((ys * out).sum() / out.sum() - 13.5) <= 0.5 and abs((xs * out).sum() / out.sum() - 13.5) <= 0.5
    assert out[0].max() == 0 and out[:, 0].max() == 0  # background is black


def test_every_kind_of_picture_gives_the_same_input():
    reference = images.to_mnist(stroke_page())
    light = stroke_page(dark_on_light=False)
    rgb = np.stack([stroke_page()] * 3, axis=2)
    rgba = np.zeros(stroke_page().shape + (4,), np.uint8)  # black ink on a transparent canvas
    rgba[..., 3] = 255 - stroke_page()
    for picture in (light, rgb, rgba, stroke_page() / 255.0):
        np.testing.assert_array_equal(images.to_mnist(picture), reference)


def test_png_and_jpeg_files(tmp_path):
    Image.fromarray(stroke_page()).save(tmp_path / "one.png")
    Image.fromarray(stroke_page()).convert("RGB").save(tmp_path / "one.jpg", quality=95)
    reference = images.to_mnist(stroke_page())
    np.testing.assert_array_equal(images.to_mnist(tmp_path / "one.png"), reference)
    assert np.abs(images.to_mnist(str(tmp_path / "one.jpg")).astype(int) - reference).max() <= 40  # lossy


@pytest.mark.parametrize("picture, message", [
    (np.full((100, 100), 255, np.uint8), "blank or almost blank"),
    (np.zeros((100, 100), np.uint8), "blank or almost blank"),
    (np.pad(np.full((1, 1), 0, np.uint8), 99, constant_values=255), "blank or almost blank"),  # one dot
    (np.zeros((5, 5, 2)), r"expected a grayscale \(h, w\) or colour"),
    (np.zeros((0, 5)), "expected a grayscale"),
    (np.full((5, 5), np.nan), "NaN or infinite"),
])
def test_bad_pictures_are_rejected(picture, message):
    with pytest.raises(images.ImageError, match=message):
        images.to_mnist(picture, name="drawing")


def test_unreadable_files_are_rejected(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(images.ImageError, match="notes.png: not an image Pillow can read"):
        images.to_mnist(tmp_path / "notes.png")
    with pytest.raises(images.ImageError, match="missing.png: file not found"):
        images.to_mnist(tmp_path / "missing.png")


def test_enlarged_test_digits_are_read_almost_as_well_as_the_originals(mnist, default_model):
    (_, _), (x_test, y_test) = mnist
    rng = np.random.default_rng(0)
    pages = [images.enlarge(x, rng) for x in x_test[:1000]]
    assert len({p.shape for p in pages}) > 100  # every page has its own margins
    assert min(p.shape[0] for p in pages) >= 112
    back = np.stack([images.to_mnist(p) for p in pages])
    original = (default_model.predict(data.flatten(x_test[:1000])) == y_test[:1000]).mean()
    recovered = (default_model.predict(data.flatten(back)) == y_test[:1000]).mean()
    assert recovered >= original - 0.01, (original, recovered)


def test_the_example_drawing_is_read_as_a_seven(default_model):
    x28, proba, hidden = images.read(default_model, draw.example_drawing())
    assert x28.shape == (28, 28) and proba.shape == (10,) and hidden.shape == (256,)
    assert int(np.argmax(proba)) == 7


def test_predict_command(tmp_path, capsys, default_model):
    model_path = model_io.save_model(default_model, tmp_path / "model.npz")
    Image.fromarray(draw.example_drawing()).save(tmp_path / "seven.png")
    cli.main(["predict", str(tmp_path / "seven.png"), "--model", str(model_path)])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'seven.png'}: 7  (7: ")
    assert line.count(": 0.") + line.count(": 1.0") == 3  # the top three probabilities


def test_predict_command_errors(tmp_path, capsys, default_model):
    Image.fromarray(draw.example_drawing()).save(tmp_path / "seven.png")
    with pytest.raises(SystemExit, match="no saved model here. Train one first"):
        cli.main(["predict", str(tmp_path / "seven.png"), "--model", str(tmp_path / "none.npz")])
    model_path = model_io.save_model(default_model, tmp_path / "model.npz")
    (tmp_path / "list.txt").write_text("1 2 3")
    with pytest.raises(SystemExit, match="list.txt: not an image Pillow can read"):
        cli.main(["predict", str(tmp_path / "list.txt"), "--model", str(model_path)])
