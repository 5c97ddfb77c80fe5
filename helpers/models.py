"""The kinds of model by name, so that files, recipes and the database need no branch per kind.

An architecture is a plain dict that a model file (model_io) and a recipe (pipeline) hold:
    {"kind": "mlp", "sizes": [784, 256, 10], "activation": "relu", "loss": "cross_entropy"}
    {"kind": "conv", "channels": [16, 32], "kernel": 5, "hidden": [128], "padding": 0,
     "batchnorm": false, "dropout": 0.0, "pool": "max"}
    {"kind": "sequential", "input_shape": [1, 28, 28], "layers": [layer specs], "loss": "cross_entropy"}
(layer specs: see sequential.py). `build` makes the model and `array_shapes` gives the names and
shapes of its params and buffers without allocating them, so that a file can be checked before
anything is read. Every model has `architecture`. `memory_needed` estimates the memory a model
needs, from its architecture alone: `train` refuses to build, and `load_model` to load, more than MAX_BYTES.
"""
import math

import numpy as np

from . import convnet, sequential
from .nn import MLP

KINDS = {  # kind: (the model's class, its architecture's keys, their defaults)
    "mlp": (MLP, ("sizes", "activation", "loss"), {"activation": "relu", "loss": "cross_entropy"}),
    "conv": (convnet.ConvNet, ("channels", "kernel", "hidden", "padding", "batchnorm", "dropout", "pool"),
             {"channels": (16, 32), "kernel": 5, "hidden": (128,), "padding": 0, "batchnorm": False,
              "dropout": 0.0, "pool": "max"}),
    "sequential": (sequential.Sequential, ("layers", "input_shape", "loss"),
                   {"input_shape": (784,), "loss": "cross_entropy"}),
}
KEYS = ("kind", *sorted({key for _, keys, _ in KINDS.values() for key in keys}))  # every architecture key


def architecture(settings):
    """The architecture in a recipe or a stored dict: its kind ("mlp" if none) and that kind's keys."""
    if not isinstance(settings, dict):
        raise ValueError(f"an architecture must be a dict, got {type(settings).__name__}")
    kind = settings.get("kind", "mlp")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    _, keys, defaults = KINDS[kind]
    missing = [k for k in keys if k not in settings and k not in defaults]
    if missing:
        raise ValueError(f"a {kind!r} architecture needs {missing}")
    return {"kind": kind, **{k: settings.get(k, defaults.get(k)) for k in keys}}


def _plan(arch):
    """sequential.plan's rows for a conv or sequential architecture."""
    if arch["kind"] == "conv":
        keys = KINDS["conv"][1]
        return sequential.plan(convnet.specs(**{k: arch[k] for k in keys}), (1, convnet.SIDE, convnet.SIDE))
    shape = arch["input_shape"]
    if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3) or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"input_shape must be [d] or [c, h, w] of positive integers, got {shape!r}")
    return sequential.plan(arch["layers"], shape)


def array_shapes(settings):
    """({param name: shape}, {buffer name: shape}) of the model settings describe, in the order of its
    params, allocating nothing: W1, b1, W2, b2, ... (and gamma, beta, mean, var of a batch norm)."""
    arch = architecture(settings)
    if arch["kind"] != "mlp":
        rows = _plan(arch)
        return ({k: v for *_, params, _ in rows for k, v in params.items()},
                {k: v for *_, buffers in rows for k, v in buffers.items()})
    sizes = arch["sizes"]
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes!r}")
    pairs = zip(sizes[:-1], sizes[1:])
    params = {}
    for l, (d_in, d_out) in enumerate(pairs, 1):
        params[f"W{l}"], params[f"b{l}"] = (d_in, d_out), (d_out,)
    return params, {}


def param_shapes(settings):
    """[(shape of W1), (shape of b1), ...] of the model settings describe, allocating nothing."""
    return list(array_shapes(settings)[0].values())


def build(settings, seed=0, dtype=np.float32):
    """A new model, seeded, of the architecture in settings (a recipe or a stored dict)."""
    arch = architecture(settings)
    cls, keys, _ = KINDS[arch["kind"]]
    args = {"specs" if k == "layers" else k: arch[k] for k in keys}  # Sequential(specs, ...): a stack's layer specs
    return cls(**args, seed=seed, dtype=dtype)


# The limits of what train may build and load_model accepts, one set, so that what is saved can be loaded.
MAX_BYTES = 2 * 2**30  # the most memory a model may need (train's estimate, for training, is the larger)
MAX_SIZES = 100  # an MLP's sizes: its input, at most 98 hidden layers, its output
EVAL_BATCH = 10_000  # images measured at once by training.evaluate and predict_proba


def _numbers_per_image(arch):
    """Numbers one image's forward pass makes: its input, every layer's output and each conv layer's
    im2col patches (every k x k window of its input as a row, the largest array of a ConvNet)."""
    if arch["kind"] == "mlp":
        return sum(int(s) for s in arch["sizes"])
    shape = (1, convnet.SIDE, convnet.SIDE) if arch["kind"] == "conv" else tuple(arch["input_shape"])
    total = math.prod(shape)
    for spec, out, *_ in _plan(arch):
        if spec["type"] == "conv":
            total += math.prod(out[1:]) * spec["kernel"] ** 2 * shape[0]
        total += math.prod(out)
        shape = out
    return total


def memory_needed(settings, batch=EVAL_BATCH, training=True):
    """(bytes in all, bytes of weights, bytes of activations, images at once) of float32, roughly, that
    the model settings describe needs, allocating nothing. training: each weight four times (itself,
    its gradient, momentum, scratch) and three arrays per layer for the batch (output, what backward
    keeps, gradient); else each weight once and two arrays per layer. A model with a max_batch (a
    ConvNet: 1,000 images) works through a larger batch in pieces of that many."""
    arch = architecture(settings)
    params, buffers = array_shapes(arch)
    weights = sum(math.prod(int(n) for n in shape) for shape in (*params.values(), *buffers.values()))
    piece = KINDS[arch["kind"]][0].max_batch
    batch = batch if piece is None else min(batch, piece)
    weight_bytes = 4 * (4 if training else 1) * weights
    activation_bytes = 4 * (3 if training else 2) * batch * _numbers_per_image(arch)
    return weight_bytes + activation_bytes, weight_bytes, activation_bytes, batch
