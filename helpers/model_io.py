"""Save a trained MLP to one .npz file (architecture and weights) and load it back.

The file holds `sizes`, `activation` and `loss` next to the arrays W1, b1, W2, b2, ...
so that it can be loaded with no other information. No pickles: np.load is called
with allow_pickle=False, so a model file cannot run code.
"""
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .nn import MLP


class ModelFileError(ValueError):
    """A model file is missing, damaged, or holds a network of another shape."""

    def _render_traceback_(self):  # in a notebook, IPython shows this message instead of a traceback
        return [f"{type(self).__name__}: {self}"]


def save_model(model, path):
    """Write model to path (.npz), atomically: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{'Wb'[i % 2]}{i // 2 + 1}": p for i, p in enumerate(model.params)}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, sizes=np.array(model.sizes), activation=np.array(model.activation),
             loss=np.array(model.loss), **arrays)
    os.replace(tmp, path)
    return path


def load_model(path, sizes=None):
    """Load an MLP saved by save_model. sizes: if given, the architecture the caller expects."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no saved model here. Train one first: run notebooks/Neural_net.ipynb "
                             f"or `python -m helpers train`.")
    try:
        with np.load(path, allow_pickle=False) as f:
            files = dict(f)
            saved = tuple(int(s) for s in files["sizes"])
            model = MLP(saved, str(files["activation"]), str(files["loss"]))
            for i in range(len(model.params)):
                key = f"{'Wb'[i % 2]}{i // 2 + 1}"
                if files[key].shape != model.params[i].shape:
                    raise ModelFileError(f"{path}: {key} has shape {files[key].shape}, but sizes {saved} "
                                         f"need {model.params[i].shape}")
                model.params[i][...] = files[key]
    except ModelFileError:
        raise
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ModelFileError(f"{path}: not a model file saved by helpers ({type(e).__name__}: {e})") from None
    if sizes is not None and tuple(sizes) != saved:
        raise ModelFileError(f"{path}: holds a network of sizes {saved}, expected {tuple(sizes)}")
    return model
