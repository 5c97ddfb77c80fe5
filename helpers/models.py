"""The kinds of model by name, so that files, recipes and the database need no branch per kind.

An architecture is a plain dict that a model file (model_io) and a recipe (pipeline) hold:
    {"kind": "mlp", "sizes": [784, 256, 10], "activation": "relu", "loss": "cross_entropy"}
    {"kind": "conv", "channels": [16, 32], "kernel": 5, "hidden": [128], "padding": 0}
`build` makes the model and `param_shapes` gives the shapes of its params without allocating
them, so that a file can be checked before anything is read. Every model has `architecture`.
"""
import numpy as np

from . import convnet
from .nn import MLP

KINDS = {  # kind: (the model's class, its architecture's keys, their defaults)
    "mlp": (MLP, ("sizes", "activation", "loss"), {"activation": "relu", "loss": "cross_entropy"}),
    "conv": (convnet.ConvNet, ("channels", "kernel", "hidden", "padding"),
             {"channels": (16, 32), "kernel": 5, "hidden": (128,), "padding": 0}),
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


def param_shapes(settings):
    """[(shape of W1), (shape of b1), ...] of the model settings describe, allocating nothing."""
    arch = architecture(settings)
    if arch["kind"] == "conv":
        return convnet.param_shapes(arch["channels"], arch["kernel"], arch["hidden"], arch["padding"])
    sizes = arch["sizes"]
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes!r}")
    return [s for d_in, d_out in zip(sizes[:-1], sizes[1:]) for s in ((d_in, d_out), (d_out,))]


def build(settings, seed=0, dtype=np.float32):
    """A new model, seeded, of the architecture in settings (a recipe or a stored dict)."""
    arch = architecture(settings)
    cls, keys, _ = KINDS[arch["kind"]]
    return cls(**{k: arch[k] for k in keys}, seed=seed, dtype=dtype)
