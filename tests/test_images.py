"""Your own digits: to_mnist on every kind of picture, its rejections, the proof on real data, predict."""
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from helpers import __main__ as cli
from helpers import data, draw, images, model_io
from helpers.nn import MLP


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


def test_predict_without_a_model_uses_the_best_saved_one_and_says_which(tmp_path, capsys, monkeypatch, default_model):
    worse = model_io.save_model(default_model, tmp_path / "worse.npz", test_accuracy=0.99, valid_accuracy=0.9,
                                valid_source="run 1")  # the better test accuracy chooses nothing
    better = model_io.save_model(default_model, tmp_path / "better.npz", test_accuracy=0.9, valid_accuracy=0.99,
                                 valid_source="run 2")
    monkeypatch.setattr(cli.paths, "SAVED_MODELS", (worse, tmp_path / "none.npz", better))
    Image.fromarray(draw.example_drawing()).save(tmp_path / "seven.png")
    cli.main(["predict", str(tmp_path / "seven.png")])
    chosen, read = capsys.readouterr().out.strip().splitlines()
    assert chosen == (f"model: {better}, the highest validation accuracy stored in {worse} (validation 90.00%, "
                      f"test 99.00%), {better} (validation 99.00%, test 90.00%); its validation: run 2")
    assert read.startswith(f"{tmp_path / 'seven.png'}: 7  (7: ")


def test_predict_command_errors(tmp_path, capsys, default_model):
    Image.fromarray(draw.example_drawing()).save(tmp_path / "seven.png")
    with pytest.raises(SystemExit, match="no saved model here. Train one first"):
        cli.main(["predict", str(tmp_path / "seven.png"), "--model", str(tmp_path / "none.npz")])
    model_path = model_io.save_model(default_model, tmp_path / "model.npz")
    (tmp_path / "list.txt").write_text("1 2 3")
    with pytest.raises(SystemExit, match="error: 1 of 1 files could not be read"):
        cli.main(["predict", str(tmp_path / "list.txt"), "--model", str(model_path)])
    assert "list.txt: not an image Pillow can read" in capsys.readouterr().err


def png_header_only(path, width, height, bit_depth=1, colour_type=0):
    """A PNG whose header declares width x height and holds no pixel data: what Pillow reads on open."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side, message", [(20000, "too large to read"), (8000, "too large to read")])
def test_decompression_bombs_get_a_clear_message(tmp_path, side, message):
    # 20000x20000 is a Pillow DecompressionBombError; 8000x8000 (64 Mpx) is over our own limit
    png_header_only(tmp_path / "bomb.png", side, side)
    with pytest.raises(images.ImageError, match=f"bomb.png: .*{message}"):
        images.to_mnist(tmp_path / "bomb.png")


def test_a_big_rgba_png_is_read_in_bounded_memory(tmp_path):
    side = 6000  # 36 Mpx: about 70 bytes per pixel (2.5 GB) before the fix
    page = np.zeros((side, side, 4), np.uint8)  # black ink on a transparent canvas
    page[1000:5000, 2900:3300, 3] = 255
    Image.fromarray(page).save(tmp_path / "big.png")
    del page
    # Peak memory of a fresh process, in MiB. VmHWM starts afresh at exec; ru_maxrss would include
    # this pytest process's own peak on Linux, and is in bytes on macOS (which has no /proc).
    code = ("import os, resource, sys; from helpers import images; "
            f"x = images.to_mnist({str(tmp_path / 'big.png')!r}); "
            "peak = (int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))) // 1024 "
            "if os.path.exists('/proc/self/status') else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 20); "
            "print(x.sum() > 0, peak)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "True" and int(out[1]) < 12 * side * side / 2**20 + 100, out  # MiB: under 12 bytes per pixel


def test_sixteen_bit_grayscale_is_scaled_by_its_range(tmp_path):
    reference = images.to_mnist(stroke_page())
    sixteen = 20000 + stroke_page().astype(np.uint16) * 160  # ink at 20000, page at 60800: all above 255
    Image.fromarray(sixteen).save(tmp_path / "scan16.png")
    with Image.open(tmp_path / "scan16.png") as im:  # closed: an open file left to the collector fails the suite
        assert im.mode.startswith("I;16")
    np.testing.assert_array_equal(images.to_mnist(tmp_path / "scan16.png"), reference)


def test_exif_orientation_is_applied(tmp_path):
    upright = stroke_page()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": how phones save a portrait photo
    Image.fromarray(np.rot90(upright, k=1)).save(tmp_path / "phone.png", exif=exif)
    np.testing.assert_array_equal(images.to_mnist(tmp_path / "phone.png"), images.to_mnist(upright))


def test_a_big_jpeg_is_reduced_while_decoding(tmp_path):
    page = np.asarray(Image.fromarray(draw.example_drawing()).resize((3000, 4000)))  # a 12 Mpx phone photo
    Image.fromarray(page).save(tmp_path / "photo.jpg", quality=90)
    got, want = images.to_mnist(tmp_path / "photo.jpg").astype(int), images.to_mnist(page).astype(int)
    assert np.abs(got - want).max() <= 20  # lossy, and decoded at 1/4 scale


def test_predict_reports_every_bad_file_and_reads_the_rest(tmp_path, capsys):
    model_path = model_io.save_model(MLP((784, 16, 10)), tmp_path / "model.npz")
    Image.fromarray(draw.example_drawing()).save(tmp_path / "seven.png")
    (tmp_path / "notes.png").write_text("not an image")
    png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(SystemExit, match="error: 2 of 3 files could not be read"):
        cli.main(["predict", str(tmp_path / "notes.png"), str(tmp_path / "seven.png"), str(tmp_path / "bomb.png"),
                  "--model", str(model_path)])
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'seven.png'}: ")
    assert "notes.png: not an image Pillow can read" in err and "bomb.png: too large to read" in err


def test_predict_refuses_a_model_that_is_not_a_digit_classifier(tmp_path):
    model_path = model_io.save_model(MLP((784, 256)), tmp_path / "model.npz")
    Image.fromarray(draw.example_drawing()).save(tmp_path / "seven.png")
    with pytest.raises(SystemExit, match="model.npz: the network has 256 outputs, a digit classifier needs 10"):
        cli.main(["predict", str(tmp_path / "seven.png"), "--model", str(model_path)])
