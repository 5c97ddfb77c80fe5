"""Writing files atomically and reading .npz archives in bounded memory (NumPy only).

`atomic_write(dest, write)`: `write` fills a unique temporary file in dest's folder, which then
replaces dest in one step (os.replace); on any failure (Ctrl-C too) the temporary file is removed
and dest is untouched, so two processes saving the same path never mix their bytes.

`npz_shapes(path)`: {name: (shape, dtype)} of every array of an .npz, read from the .npy headers
only, so an archive that declares or decompresses to gigabytes is refused before it is loaded.
"""
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MAX_ARRAY_BYTES = 2**30  # 1 GiB: MNIST's largest array is 47 MB, the long recipe's largest weight 4 MB


def atomic_write(dest, write, suffix=".npz"):
    """Call write(tmp_path) for a unique temporary file beside dest, then move it onto dest."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + suffix, dir=dest.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def check_output_path(path, what="output file"):
    """Raise ValueError unless path can be written: not a folder, in a folder we can create or write."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; the {what} needs a file name, e.g. {path / 'model.npz'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # save_model creates missing folders
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: the folder {folder} is not writable")


def npz_shapes(path, max_bytes=MAX_ARRAY_BYTES):
    """{name: (shape, dtype)} of the arrays in the .npz at path, from their headers only.

    Raises ValueError for a file that is not an .npz of plain arrays (an entry encrypted or of a
    compression method zipfile cannot read too), or an array declaring more than max_bytes.
    Every array is checked before any of them is decompressed.
    """
    shapes = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename.removesuffix(".npy")
            try:
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(f)
            except (RuntimeError, NotImplementedError) as e:  # zipfile's words for encrypted, unknown method
                raise ValueError(f"zip entry {info.filename} cannot be read ({e})") from None
            if dtype.hasobject:
                raise ValueError(f"array {name} holds Python objects, not numbers")
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if size > max_bytes:
                raise ValueError(f"array {name} declares shape {shape} of {dtype}: {size / 2**30:.1f} GiB, "
                                 f"more than the {max_bytes / 2**30:.0f} GiB allowed")
            shapes[name] = (shape, dtype)
    return shapes
