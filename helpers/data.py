"""Load MNIST, or any dataset in its IDX layout, with checks; turn it into network inputs.

`load_mnist()` returns `(x_train, y_train), (x_test, y_test)` exactly like keras's
`mnist.load_data()`: images `(n, 28, 28) uint8`, labels `(n,) uint8`. It reads the
committed `data/mnist.npz` (verified against the published SHA-256 of every array),
another `.npz` of that form, or a folder holding the four original IDX files, gzipped
or not (so Fashion-MNIST and other drop-in datasets work too). Every problem raises
one `DataError` naming the file and what is wrong; nothing is returned half-loaded.
"""
import gzip
import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import files, paths

SPLITS = ("x_train", "y_train", "x_test", "y_test")
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# SHA-256 of each array's bytes (C order), recorded from the original IDX files when mnist.npz was built.
MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


class DataError(ValueError):
    """A dataset file is missing, damaged or not of the expected form."""


def read_idx(path, max_bytes=files.MAX_ARRAY_BYTES):
    """Read one IDX file (optionally .gz) into a uint8 array of the shape its header gives.

    The header is read first and the declared size checked against max_bytes; then exactly that
    many bytes (plus one, to notice extra data) are read, so a gzip bomb is never decompressed."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(f"{path}: not an IDX file (wrong magic number {head.hex() or 'empty'})")
            if head[2] != 0x08:
                raise DataError(f"{path}: IDX data type 0x{head[2]:02x} is not 0x08 (unsigned byte)")
            ndim = head[3]
            dims = f.read(4 * ndim)
            if ndim == 0 or len(dims) < 4 * ndim:
                raise DataError(f"{path}: IDX header is truncated or declares {ndim} dimensions")
            shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            expected = int(np.prod(shape, dtype=object))
            if expected > max_bytes:
                raise DataError(f"{path}: header declares shape {shape}, {expected / 2**30:.1f} GiB; "
                                f"at most {max_bytes / 2**30:.0f} GiB is read")
            raw = f.read(expected + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot be read or decompressed ({e})") from None
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        actual = len(raw) if len(raw) < expected else "more"
        raise DataError(f"{path}: {what}: header {shape} needs {expected} data bytes, file has {actual}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape).copy()


def _check_arrays(arrays, source):
    """Shapes and dtypes that every caller of load_mnist can rely on."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataError(f"{source}: {split} arrays must be uint8, got {x.dtype} and {y.dtype}")
        if x.ndim != 3 or y.ndim != 1:
            raise DataError(f"{source}: x_{split} must be (n, h, w) and y_{split} (n,), got {x.shape} and {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{source}: {len(x)} {split} images but {len(y)} labels")
        if x.size == 0:
            raise DataError(f"{source}: x_{split} is empty (shape {x.shape}); a dataset needs images")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{source}: train images {arrays['x_train'].shape[1:]} and test images "
                        f"{arrays['x_test'].shape[1:]} differ in size")


def read_idx_folder(folder):
    """The four IDX files of a folder (name or name.gz) as a dict of arrays."""
    folder = Path(folder)
    arrays = {}
    for key, name in IDX_NAMES.items():
        found = [folder / n for n in (name + ".gz", name) if (folder / n).is_file()]
        if not found:
            raise DataError(f"{folder}: no {name}(.gz) in this folder")
        arrays[key] = read_idx(found[0])
    _check_arrays(arrays, folder)
    return arrays


def read_npz(path):
    """The four arrays of an .npz written like keras's mnist.npz."""
    path = Path(path)
    try:
        files.npz_shapes(path)  # declared sizes checked before anything is decompressed
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in SPLITS if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing}; expected {list(SPLITS)}")
            arrays = {k: f[k] for k in SPLITS}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, RuntimeError,
            NotImplementedError) as e:  # the last two: zip entries zipfile cannot read
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    _check_arrays(arrays, path)
    return arrays


def verify_mnist(arrays, source):
    """Raise DataError unless every array matches the published MNIST SHA-256."""
    for key, want in MNIST_SHA256.items():
        got = hashlib.sha256(np.ascontiguousarray(arrays[key]).tobytes()).hexdigest()
        if got != want:
            raise DataError(f"{source}: {key} does not match the MNIST checksum "
                            f"(sha256 {got[:12]}..., expected {want[:12]}...)")


def load_mnist(path=None, verify=None):
    """Return (x_train, y_train), (x_test, y_test) from an .npz file or an IDX folder.

    path: None for the committed data/mnist.npz. verify: check the MNIST checksums;
    by default only for the default file, so other IDX datasets load too.
    """
    if path is None:
        path = paths.DATA_PATH
        verify = True if verify is None else verify
        if not path.exists():
            raise DataError(f"{path}: missing. Rebuild it from the four original MNIST IDX files with "
                            f"`python -m helpers build-data --source FOLDER` (see README, The data).")
    path = Path(path)
    arrays = read_idx_folder(path) if path.is_dir() else read_npz(path)
    if verify:
        verify_mnist(arrays, path)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def build_npz(src, dest=None):
    """Convert the IDX folder `src` to a compressed, verified .npz at `dest`, atomically:
    a crash or a failure leaves dest as it was and no temporary file behind."""
    src, dest = Path(src), Path(dest or paths.DATA_PATH)
    arrays = read_idx_folder(src)
    verify_mnist(arrays, src)
    try:
        files.check_output_path(dest, "data file")
    except ValueError as e:
        raise DataError(str(e)) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    return files.atomic_write(dest, lambda tmp: np.savez_compressed(tmp, **arrays))


N_VALID = 10_000  # the last 10,000 training images: the validation set, as in Nielsen's book


def split_validation(x_train, y_train, n_valid=N_VALID):
    """Hold out the last n_valid training images for validation.

    Returns (x_train, y_train), (x_valid, y_valid): for MNIST (50000, 28, 28) / (50000,)
    and (10000, 28, 28) / (10000,). Every choice (recipe, learning rate, epochs) is made
    on the validation set; the test set is looked at once, for the final model.
    """
    if not 0 < n_valid < len(x_train) or len(x_train) != len(y_train):
        raise ValueError(f"n_valid must lie in (0, {len(x_train)}) with as many labels as images; "
                         f"got n_valid={n_valid}, {len(x_train)} images and {len(y_train)} labels")
    cut = len(x_train) - n_valid
    return (x_train[:cut], y_train[:cut]), (x_train[cut:], y_train[cut:])


def flatten(x):
    """Images (n, 28, 28) uint8 -> (n, 784) float32 in [0, 1]."""
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float32) / np.float32(255)


def one_hot(y, k=10, dtype=np.float32):
    """Labels (n,) ints in [0, k) -> (n, k) one-hot rows."""
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= k)):
        raise ValueError(f"labels must be a 1-D array of integers in [0, {k}), got shape {y.shape}")
    out = np.zeros((len(y), k), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


def shifted(x, right, down):
    """x: (n, 28, 28) moved right and down by whole pixels (>= 0), zero fill (no re-centring)."""
    out = np.zeros_like(x)
    out[:, down:, right:] = x[:, :28 - down, :28 - right]
    return out


def random_shift(x, rng, max_shift=2, out=None):
    """Move each flattened 28x28 image by up to max_shift pixels in x and y (zero fill).

    x: (n, 784) float32; out: an optional (n, 784) array to reuse. Augmentation for the
    default and long recipes: a digit moved by a pixel or two is still the same digit,
    so the network learns to ignore small changes of position.
    """
    n, side, m = len(x), 28, max_shift
    src = x.reshape(n, side, side)
    out = np.zeros_like(x) if out is None else out
    dst = out.reshape(n, side, side)
    dst[:] = 0
    dy, dx = rng.integers(-m, m + 1, size=(2, n))
    for sy in range(-m, m + 1):  # one vectorised copy per (sy, sx) offset: 25 copies, not n
        for sx in range(-m, m + 1):
            idx = np.flatnonzero((dy == sy) & (dx == sx))
            dst[idx, max(sy, 0):side + min(sy, 0), max(sx, 0):side + min(sx, 0)] = \
                src[idx, max(-sy, 0):side + min(-sy, 0), max(-sx, 0):side + min(-sx, 0)]
    return out
