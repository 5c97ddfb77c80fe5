"""Turn any picture of a digit into an MNIST-like 28x28 input, the way the dataset itself was made.

MNIST's recipe (LeCun et al.): light ink on a dark background, the digit scaled to fit a 20x20
box keeping its aspect ratio (anti-aliased, so edges become grey levels), then placed in a
28x28 image so that its centre of mass sits at the centre. `to_mnist` applies the same steps
to a PNG/JPEG path or an array (grayscale, RGB or RGBA, light-on-dark or dark-on-light), using
Pillow for reading and resizing.
"""
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

INK_FRACTION = 0.1  # a pixel is ink when it is brighter than 10% of the brightest pixel
MAX_SIDE = 1024  # files are reduced to this while decoding: to_mnist ends at 20x20 anyway
MAX_PIXELS = 50_000_000  # after JPEG's draft; above this a PNG would need gigabytes to decode


class ImageError(ValueError):
    """The picture cannot be read, or holds no digit."""


def _read_file(path, name):
    """An image file -> (h, w) or (h, w, 4) array of at most MAX_SIDE pixels a side, upright.

    Big pictures are reduced while decoding (JPEG's draft) or right after (reduce), so memory
    stays near 5 bytes per pixel; 16-bit scans are scaled by their own range, not clipped at 255."""
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block forever, a device never end
        raise ImageError(f"{name}: not a regular file (a folder, a pipe or a device); give an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if max(w, h) > MAX_SIDE:
                    im.draft(None, (max(1, w * MAX_SIDE // max(w, h)), max(1, h * MAX_SIDE // max(w, h))))
                if im.size[0] * im.size[1] > MAX_PIXELS:
                    raise ImageError(f"{name}: {w}x{h} pixels is too large to read (at most {MAX_PIXELS:,} "
                                     f"pixels); save a smaller copy of the picture")
                if im.mode in ("I", "F") or im.mode.startswith("I;16"):
                    mode = "F"  # 16- and 32-bit grayscale: keep every level, scaled below
                elif "A" in im.getbands() or "transparency" in im.info:
                    mode = "RGBA"
                else:
                    mode = "L"
                im = im if im.mode == mode else im.convert(mode)
                factor = math.ceil(max(im.size) / MAX_SIDE)
                im = ImageOps.exif_transpose(im.reduce(factor) if factor > 1 else im)  # a phone photo upright
                a = np.asarray(im, dtype=np.float64)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: too large to read ({e})") from None
    except MemoryError:
        raise ImageError(f"{name}: too large to read in the memory available") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageError(f"{name}: not an image Pillow can read ({e})") from None
    if mode == "F":
        lo, hi = a.min(), a.max()
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return a


def _grayscale(image, name):
    """Any input -> (h, w) float array, 0 = black, 255 = white; transparent pixels count as white."""
    if isinstance(image, (str, Path)):
        image = _read_file(image, name)
    a = np.asarray(image, dtype=np.float64)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or a.size == 0:
        raise ImageError(f"{name}: expected a grayscale (h, w) or colour (h, w, 3 or 4) image, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ImageError(f"{name}: contains NaN or infinite values")
    white = 255.0 if a.max() > 1 else 1.0  # uint8-like or float in [0, 1]
    if a.ndim == 3:
        gray = a[..., :3].mean(axis=2)
        if a.shape[2] == 4:  # composite over white: a canvas drawing is ink on a transparent page
            alpha = a[..., 3] / white
            gray = gray * alpha + white * (1 - alpha)
        a = gray
    return a * (255.0 / white)


def is_empty(image):
    """True for a picture (any array to_mnist accepts) without any ink: one shade everywhere, transparent
    pixels counting as white. to_mnist refuses it, as blank; a drawing pad starts like this."""
    a = _grayscale(image, "image")
    return a.min() == a.max()


def to_mnist(image, name="image"):
    """A path or array -> (28, 28) uint8, light digit on black, centred like MNIST.

    Raises ImageError for an unreadable file or a blank (or almost blank) picture.
    """
    return mnist_steps(image, name)["mnist"]


def mnist_steps(image, name="image"):
    """The steps of to_mnist, each kept as an image so that a notebook can show them:

    page: (h, w) float64, the picture as light ink on a page of exactly 0;
    crop: (h', w') float64, cut to the ink's bounding box;
    fit: (at most 20, at most 20) float32 in 0..255, scaled so that its longer side is 20;
    mnist: (28, 28) uint8, the fit placed so that its centre of mass is at the centre (to_mnist's result);
    corner: (top, left), the row and column of mnist where the fit's first pixel landed.
    """
    name = str(image) if isinstance(image, (str, Path)) else name
    a = _grayscale(image, name)
    background = np.median(np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]))  # the page, seen at the edges
    if background > 127:  # dark ink on a light page: invert to MNIST's light-on-dark
        a, background = 255.0 - a, 255.0 - background
    page = np.clip(a - background, 0, 255)  # the page becomes exactly 0
    if page.max() < 32 or (page > INK_FRACTION * page.max()).sum() < 0.001 * page.size + 2:
        raise ImageError(f"{name}: the picture is blank or almost blank; draw or photograph a digit")
    rows, cols = np.nonzero(page > INK_FRACTION * page.max())
    crop = page[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow's (width, height)
    fit = np.asarray(Image.fromarray((crop * (255.0 / crop.max())).astype(np.float32), mode="F")
                     .resize(size, Image.Resampling.LANCZOS))
    fit = np.clip(fit, 0, 255)  # Lanczos overshoots a little at sharp edges
    return {"page": page, "crop": crop, "fit": fit, "mnist": _centre_of_mass_in_28(fit),
            "corner": _corner_in_28(fit)}


def read(model, picture):
    """What a trained MLP makes of a picture (any path or array to_mnist accepts):
    (x28 (28, 28) uint8, probabilities (10,), hidden activations of the first layer or None)."""
    x28 = to_mnist(picture)
    proba = model.predict_proba(x28.reshape(1, -1) / np.float32(255))[0]
    hidden = model.activations[1][0] if model.depth > 1 else None  # kept by the forward pass
    return x28, proba, hidden


def _corner_in_28(patch):
    """(top, left) of a patch of at most 20x20 in 28x28 that puts its centre of mass at the centre."""
    ys, xs = np.indices(patch.shape)
    total = patch.sum()
    cy, cx = (ys * patch).sum() / total, (xs * patch).sum() / total
    top = int(np.clip(round(13.5 - cy), 0, 28 - patch.shape[0]))  # 13.5: the centre of pixels 0..27
    left = int(np.clip(round(13.5 - cx), 0, 28 - patch.shape[1]))
    return top, left


def _centre_of_mass_in_28(patch):
    """Place a patch of at most 20x20 in 28x28 so that its centre of mass is at the centre."""
    top, left = _corner_in_28(patch)
    out = np.zeros((28, 28), np.float64)
    out[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return np.round(out).astype(np.uint8)


def enlarge(digit, rng, factor=4):
    """An MNIST digit as a reader might photograph it: `factor` times larger, dark ink on a light
    page, with random margins on each side. digit: (28, 28) uint8 -> (h, w) uint8."""
    side = 28 * factor
    big = np.asarray(Image.fromarray(255 - np.asarray(digit, np.uint8)).resize((side, side), Image.Resampling.BICUBIC))
    top, bottom, left, right = rng.integers(0, side // 2, size=4)
    page = np.full((top + side + bottom, left + side + right), 255, np.uint8)
    page[top:top + side, left:left + side] = big
    return page
