"""Save a trained model (an MLP, a ConvNet, any Sequential) to one .npz file, architecture, weights
and buffers, and load it back.

The file holds the model's `architecture` (JSON, see models.py) and its `sizes`, `activation`
and `loss` next to its arrays by name (W1, b1, W2, b2, ..., gamma3, beta3 of a batch norm, and its
running statistics mean3, var3, which training sets without a gradient), so that it can be
loaded with no other information; a file with no `architecture`, as saved before ConvNets, is an MLP. It may
also hold `valid_accuracy` and `valid_source`, the validation accuracy of the model's recipe and where it was
measured (provenance.py), which saved models are ranked by, and `test_accuracy`, which is only printed. No pickles:
np.load is called with allow_pickle=False, so a model file cannot run code. Every array's
declared shape, and the memory the architecture needs (models.memory_needed), are checked before
anything is decompressed or allocated, and weights that are not finite (a diverged training) are never
saved or loaded.
"""
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import files, models
from .nn import MLP  # noqa: F401  (tests and older code use model_io.MLP)


class ModelFileError(ValueError):
    """A model file is missing, damaged, or holds a network of another shape."""

    def _render_traceback_(self):  # in a notebook, IPython shows this message instead of a traceback
        return [f"{type(self).__name__}: {self}"]


# A model file's arrays that are not weights.
_META = ("architecture", "sizes", "activation", "loss", "test_accuracy", "valid_accuracy", "valid_source")
MAX_SOURCE = 1000  # characters of valid_source read back: a sentence, never a file's worth of text


def _key(i):
    return f"{'Wb'[i % 2]}{i // 2 + 1}"  # an MLP's params alternate W1, b1, W2, b2, ...


def _arrays(model):
    """{name in the file: array}: the params, then the buffers (batch norm's running statistics)."""
    return {**dict(zip(model.param_names, model.params)), **model.buffers}


def check_writable(path):
    """Raise ModelFileError unless save_model could write path; called before a long training."""
    try:
        files.check_output_path(path, "model")
    except ValueError as e:
        raise ModelFileError(str(e)) from None


def save_model(model, path, test_accuracy=None, valid_accuracy=None, valid_source=None):
    """Write model to path (.npz), atomically: a crash or a concurrent save never leaves a
    half-written file. Refuses (ModelFileError, nothing written) weights that are not finite.
    test_accuracy: the final model's, measured once, stored to be printed. valid_accuracy: its recipe's
    validation accuracy, which `ranked_saved` ranks files by, and valid_source where it was measured;
    if neither is given, the model's `validation` (train_recipe sets it, see provenance.py)."""
    path = Path(path)
    if valid_accuracy is None and valid_source is None:
        valid_accuracy, valid_source = getattr(model, "validation", (None, "none: saved without one"))
    if valid_accuracy is not None and not (valid_source and 0 <= float(valid_accuracy) <= 1):
        raise ModelFileError(f"{path}: not saved: a validation accuracy is a number in [0, 1] with a "
                             f"valid_source saying where it was measured, got {valid_accuracy!r}, {valid_source!r}")
    bad = [name for name, p in _arrays(model).items() if not np.isfinite(p).all()]
    if bad:
        raise ModelFileError(f"{path}: not saved: {', '.join(bad)} hold NaN or infinite values "
                             f"(the training diverged); the file was left as it was")
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = _arrays(model)
    if test_accuracy is not None:
        arrays["test_accuracy"] = np.array(float(test_accuracy))
    if valid_accuracy is not None:
        arrays["valid_accuracy"] = np.array(float(valid_accuracy))
    if valid_source is not None:
        arrays["valid_source"] = np.array(str(valid_source)[:MAX_SOURCE])
    files.atomic_write(path, lambda tmp: np.savez(tmp, architecture=np.array(json.dumps(model.architecture)),
                                                  sizes=np.array(model.sizes), activation=np.array(model.activation),
                                                  loss=np.array(model.loss), **arrays))
    return path


def _stored(path, key, kind):
    """The one value stored under key in the model file at path if it is of dtype kind ("f": a real float,
    "U": a string), else None (none stored, another type or shape, or the file is not readable)."""
    try:
        shape, dtype = files.npz_shapes(path).get(key, (None, None))
        if shape != () or dtype.kind != kind or (kind == "U" and dtype.itemsize > 4 * MAX_SOURCE):
            return None  # "0.99" or True would convert to a float, but was never measured
        with np.load(path, allow_pickle=False) as f:
            return f[key][()]
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
            RuntimeError, NotImplementedError):
        return None


def _accuracy(path, key):
    value = _stored(path, key, "f")
    return float(value) if value is not None and 0 <= value <= 1 else None


def saved_test_accuracy(path):
    """The test accuracy save_model stored in the file at path, or None (none stored, not one real float
    in [0, 1]: a bool, an int, a str or bytes is not an accuracy, or the file is not readable)."""
    return _accuracy(path, "test_accuracy")


def saved_valid_accuracy(path):
    """The validation accuracy save_model stored in the file at path, or None, as saved_test_accuracy."""
    return _accuracy(path, "valid_accuracy")


def saved_valid_source(path):
    """Where the stored validation accuracy was measured (a string), or None: a file saved before it was kept."""
    value = _stored(path, "valid_source", "U")
    return None if value is None else str(value)


def ranked_saved(candidates):
    """[(path, its validation accuracy or None)] of the candidate files that exist, best first: the highest
    stored validation accuracy first, files without one after those with one, ties in the candidates' order.
    The test accuracy ranks nothing: the test set chooses no model."""
    existing = [Path(p) for p in candidates if Path(p).is_file()]
    if not existing:
        raise ModelFileError(f"no saved model in {', '.join(str(p) for p in candidates)}. Train one first: run "
                             f"notebooks/Neural_net.ipynb or `python -m helpers train --save`.")
    scored = [(p, saved_valid_accuracy(p)) for p in existing]
    return sorted(scored, key=lambda item: -1.0 if item[1] is None else item[1], reverse=True)  # stable


def best_saved(candidates):
    """(path, its validation accuracy or None): the first of ranked_saved(candidates)."""
    return ranked_saved(candidates)[0]


def _percent(accuracy):
    return "none stored" if accuracy is None else f"{accuracy:.2%}"


def _which(path, ranked, candidates, shown, skipped=False):
    """The line saying which file was chosen and why: every saved file's validation accuracy (and test
    accuracy, printed only), in the candidates' order, and where the chosen file's figure comes from."""
    order = [Path(p) for p in candidates]
    saved = ", ".join(f"{shown(p)} (validation {_percent(a)}, test {_percent(saved_test_accuracy(p))})"
                      for p, a in sorted(ranked, key=lambda item: order.index(item[0])))
    source = saved_valid_source(path) or "none stored"
    return (f"{shown(path)}, the highest validation accuracy stored in {saved}"
            + (" of those that load" if skipped else "") + f"; its validation: {source}")


def choose_best(candidates, shown=str):
    """(path, a line saying which file and why) for best_saved(candidates); shown prints a path."""
    ranked = ranked_saved(candidates)
    return ranked[0][0], _which(ranked[0][0], ranked, candidates, shown)


def load_best(candidates, shown=str, **kwargs):
    """(model, its path, a line saying which and why, [a line per file skipped, saying why]): the best
    ranked of the saved candidates that loads (load_model(path, **kwargs)); one that fails to load is
    skipped for the next, and if none loads, ModelFileError gives every reason."""
    ranked, skipped = ranked_saved(candidates), []
    for path, _ in ranked:
        try:
            model = load_model(path, **kwargs)
        except ModelFileError as e:
            skipped.append(f"skipped {shown(path)}, it cannot be loaded: {e}")
            continue
        return model, path, _which(path, ranked, candidates, shown, bool(skipped)), skipped
    raise ModelFileError("no saved model could be loaded: " + "; ".join(skipped))


def _declared_sizes(path, f, shapes):
    """The `sizes` of the file, checked against every weight's declared shape (nothing allocated yet)."""
    if "sizes" not in shapes:
        raise ModelFileError(f"{path}: not a model file saved by helpers (no `sizes` array)")
    sizes = f["sizes"]
    if sizes.ndim != 1 or not 2 <= len(sizes) <= models.MAX_SIZES or not np.issubdtype(sizes.dtype, np.integer) \
            or sizes.min() < 1:
        raise ModelFileError(f"{path}: `sizes` must be a list of 2 to {models.MAX_SIZES} positive integers, "
                             f"got {sizes.dtype} of shape {sizes.shape}")
    saved = tuple(int(s) for s in sizes)
    for i in range(2 * (len(saved) - 1)):
        key, want = _key(i), (saved[i // 2], saved[i // 2 + 1]) if i % 2 == 0 else (saved[i // 2 + 1],)
        if key not in shapes:
            raise ModelFileError(f"{path}: no array {key}, which sizes {saved} need")
        if shapes[key][0] != want:
            raise ModelFileError(f"{path}: {key} has shape {shapes[key][0]}, but sizes {saved} need {want}")
    return saved


def _build_declared(path, f, shapes):
    """The model the file declares, built only once every array's declared shape matches it."""
    arch = json.loads(str(f["architecture"])) if "architecture" in shapes else {"kind": "mlp"}
    if not isinstance(arch, dict) or arch.get("kind", "mlp") == "mlp":
        saved = _declared_sizes(path, f, shapes)
        arch, what = {"kind": "mlp", "sizes": saved, "activation": str(f["activation"]),
                      "loss": str(f["loss"])}, f"of sizes {saved}"
    else:
        try:
            params, buffers = models.array_shapes(arch)
        except (ValueError, TypeError, KeyError) as e:
            raise ModelFileError(f"{path}: its architecture {arch} cannot be built: {e}") from None
        for key, want in {**params, **buffers}.items():
            got = shapes.get(key, (None,))[0]
            if got != tuple(want):
                raise ModelFileError(f"{path}: {key} has shape {got}, but the architecture needs {tuple(want)}")
        what = str(arch)
    need, weights, activations, batch = models.memory_needed(arch, training=False)
    if need > models.MAX_BYTES:  # a small file of zeros can declare gigabytes: refused before any is read
        raise ModelFileError(f"{path}: the network {what} would need about {need / 2**30:.1f} GiB of memory "
                             f"({weights / 2**30:.2f} GiB of weights, {activations / 2**30:.1f} GiB for a batch of "
                             f"{batch:,} images), more than the {models.MAX_BYTES / 2**30:.0f} GiB allowed")
    try:
        return models.build(arch)
    except MemoryError:
        raise ModelFileError(f"{path}: the network {what} does not fit in memory") from None


def load_model(path, sizes=None, inputs=None, outputs=None,
               made_by="notebooks/Neural_net.ipynb or `python -m helpers train`"):
    """Load a model of any kind (models.KINDS: an MLP, a ConvNet, a Sequential) saved by save_model.

    sizes: if given, the architecture the caller expects; inputs/outputs: if given, the number
    of inputs and outputs it must have (784 and 10 to read MNIST digits); made_by: what to run
    to make the file, said when it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no saved model here. Train one first: run {made_by}.")
    try:
        shapes = files.npz_shapes(path)
        odd = [f"{key} ({dtype})" for key, (_, dtype) in shapes.items() if key not in _META and dtype.kind != "f"]
        if odd:  # complex, bool, int or structured weights would be cast silently on loading
            raise ModelFileError(f"{path}: a model's arrays are real floats, but {', '.join(odd)} are not")
        with np.load(path, allow_pickle=False) as f:
            model = _build_declared(path, f, shapes)
            for key, array in _arrays(model).items():
                array[...] = f[key]
                if not np.isfinite(array).all():
                    raise ModelFileError(f"{path}: {key} holds NaN or infinite values; "
                                         f"this model cannot predict anything")
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
            RuntimeError, NotImplementedError) as e:
        raise ModelFileError(f"{path}: not a model file saved by helpers ({type(e).__name__}: {e})") from None
    except MemoryError:  # reading the weights; building the network is checked in _build_declared
        raise ModelFileError(f"{path}: the network's weights do not fit in memory") from None
    saved = model.sizes
    if sizes is not None and tuple(sizes) != saved:
        raise ModelFileError(f"{path}: holds a network of sizes {saved}, expected {tuple(sizes)}")
    for n, want, what in ((saved[0], inputs, "inputs"), (saved[-1], outputs, "outputs")):
        if want is not None and n != want:
            raise ModelFileError(f"{path}: the network has {n} {what}, a digit classifier needs {want} "
                                 f"(sizes {saved})")
    return model
