"""A model as a stack of layers (`layers.py`, `conv.py`), with softmax cross-entropy (or a sigmoid
and squared error) at the end: the second kind of model beside `nn.MLP`, with the same interface
(`nn.Classifier`), so that `training.fit`, `model_io` and `images.read` use either unchanged.

For: every network past the first notebook's MLP; `convnet.ConvNet` is one, built from its
architecture. Leaves out: branches (residual connections), other losses.

A stack is described by layer specs, plain JSON-ready dicts, one per layer:
    {"type": "conv", "channels": 32, "kernel": 5, "padding": 2, "stride": 1}   {"type": "batchnorm"}
    {"type": "relu"} (or "sigmoid", "tanh")   {"type": "maxpool", "size": 2} (or "avgpool")
    {"type": "globalavgpool"}   {"type": "flatten"}   {"type": "dense", "units": 256}
    {"type": "dropout", "p": 0.4}
`plan` checks specs against an input shape and gives every layer's output shape and the shapes
of its arrays, allocating nothing, so that a model file is checked before anything is read.
"""
import math

import numpy as np

from . import conv, layers
from .nn import Classifier, log_softmax, sigmoid

SPECS = {  # type: (the layer's keys with their defaults)
    "dense": {"units": None}, "conv": {"channels": None, "kernel": None, "padding": 0, "stride": 1},
    "maxpool": {"size": 2}, "avgpool": {"size": 2}, "globalavgpool": {}, "flatten": {},
    "relu": {}, "sigmoid": {}, "tanh": {}, "dropout": {"p": 0.5}, "batchnorm": {"momentum": 0.1, "eps": 1e-5},
}
ACTIVATIONS = {"relu": layers.ReLU, "sigmoid": layers.Sigmoid, "tanh": layers.Tanh}


def _spec(i, spec):
    """The spec with its defaults filled in, or ValueError naming layer i + 1."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in SPECS:
        raise ValueError(f"layer {i + 1}: a spec must be a dict whose type is one of {sorted(SPECS)}, got {spec!r}")
    extra = set(spec) - set(SPECS[kind]) - {"type"}
    if extra:
        raise ValueError(f"layer {i + 1} ({kind}) has no setting {sorted(extra)}; it takes {sorted(SPECS[kind])}")
    full = {"type": kind, **SPECS[kind], **spec}
    for key in ("units", "channels", "kernel", "size", "padding", "stride"):
        if key in full:
            full[key] = layers._check_int(f"layer {i + 1} ({kind}): {key}", full[key], 0 if key == "padding" else 1)
    for key, low, high in (("p", 0, 1), ("momentum", 0, 1), ("eps", 0, math.inf)):
        value = full.get(key, low)
        if key in full and (isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high):
            raise ValueError(f"layer {i + 1} ({kind}): {key} must be a number in [{low}, {high}), got {value!r}")
    return full


def plan(specs, input_shape):
    """[(spec with defaults, output shape, {name: param shape}, {name: buffer shape})], one per layer.

    Shapes are one sample's: (784,) or (1, 28, 28). Param names number the layers with params:
    W3, b3 for a dense or conv layer, gamma3, beta3 (and buffers mean3, var3) for a batch norm."""
    if not isinstance(specs, (list, tuple)) or not specs:
        raise ValueError(f"layers must be a non-empty list of layer specs, got {specs!r}")
    shape, rows, j = tuple(int(s) for s in input_shape), [], 0
    for i, spec in enumerate(specs):
        spec = _spec(i, spec)
        kind = spec["type"]
        params, buffers, image = {}, {}, len(shape) == 3
        if kind in ("conv", "maxpool", "avgpool", "globalavgpool") and not image:
            raise ValueError(f"layer {i + 1} ({kind}) needs images (c, h, w), but its input is {shape}")
        if kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"layer {i + 1} (dense) needs a flat input, but its input is {shape}: add a flatten")
            params, shape = {"W": (shape[0], spec["units"]), "b": (spec["units"],)}, (spec["units"],)
        elif kind == "conv":
            c, k, p, s = shape[0], spec["kernel"], spec["padding"], spec["stride"]
            ho, wo = conv.out_size(shape[1], k, p, s), conv.out_size(shape[2], k, p, s)
            if ho < 1 or wo < 1:
                raise ValueError(f"layer {i + 1} (conv): a {shape[1]}x{shape[2]} input with padding {p} is "
                                 f"smaller than the {k}x{k} kernel")
            params, shape = {"W": (k * k * c, spec["channels"]), "b": (spec["channels"],)}, (spec["channels"], ho, wo)
        elif kind in ("maxpool", "avgpool"):
            if min(shape[1:]) < spec["size"]:
                raise ValueError(f"layer {i + 1} ({kind}): a {shape[1]}x{shape[2]} input is smaller than its "
                                 f"{spec['size']}x{spec['size']} window")
            shape = (shape[0], shape[1] // spec["size"], shape[2] // spec["size"])
        elif kind in ("globalavgpool", "flatten"):
            shape = shape[:1] if kind == "globalavgpool" else (math.prod(shape),)
        elif kind == "batchnorm":
            params, buffers = {"gamma": shape[:1], "beta": shape[:1]}, {"mean": shape[:1], "var": shape[:1]}
        j += bool(params)
        named = [{f"{k}{j}": v for k, v in arrays.items()} for arrays in (params, buffers)]
        rows.append((spec, shape, *named))
    return rows


def _init_for(specs, i):
    """The activation whose initialisation suits layer i: the next activation before the next layer
    with weights (He for ReLU), or "output" (Xavier/Glorot) if none comes."""
    for spec in specs[i + 1:]:
        if spec["type"] in ACTIVATIONS:
            return spec["type"]
        if spec["type"] in ("dense", "conv"):
            break
    return "output"


def build_layers(specs, input_shape, rng, dtype):
    """The layers that specs describe, initialised in order from the Generator rng."""
    rows, made, shape = plan(specs, input_shape), [], tuple(input_shape)
    specs = [spec for spec, *_ in rows]
    for i, (spec, out_shape, _, _) in enumerate(rows):
        kind = spec["type"]
        if kind == "dense":
            made.append(layers.Dense(shape[0], spec["units"], rng, dtype, activation=_init_for(specs, i)))
        elif kind == "conv":
            made.append(conv.Conv2D(shape[0], spec["channels"], spec["kernel"], spec["padding"], rng, dtype,
                                    stride=spec["stride"]))
        elif kind == "batchnorm":
            made.append(layers.BatchNorm(shape[0], spec["momentum"], spec["eps"], dtype))
        elif kind == "dropout":
            made.append(layers.Dropout(spec["p"], rng))
        elif kind in ("maxpool", "avgpool"):
            made.append((conv.MaxPool2D if kind == "maxpool" else conv.AvgPool2D)(spec["size"]))
        else:
            made.append({"globalavgpool": conv.GlobalAvgPool2D, "flatten": layers.Flatten, **ACTIVATIONS}[kind]())
        shape = out_shape
    return made, rows


class Sequential(Classifier):
    """A stack of layers, trained as one model. Sequential(specs, input_shape, loss, seed, dtype)
    builds it from layer specs; Sequential.of(layers, input_shape) takes layers already built.

    activations, after forward: [the input, the output of each activation layer, the outputs P],
    as nn.MLP's (for a ConvNet, activations[1] holds the first layer's feature maps).
    """

    def __init__(self, specs, input_shape=(784,), loss="cross_entropy", seed=0, dtype=np.float32):
        if loss not in ("cross_entropy", "mse"):
            raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
        made, rows = build_layers(specs, input_shape, np.random.default_rng(seed), np.dtype(dtype))
        self._setup(made, input_shape, loss, rows)

    @classmethod
    def of(cls, made, input_shape, loss="cross_entropy"):
        rows = plan([layer.spec for layer in made], input_shape)
        for i, ((_, _, shapes, _), layer) in enumerate(zip(rows, made)):
            got = [p.shape for p in layer.params]
            if got != list(shapes.values()):
                raise ValueError(f"layer {i + 1} ({layer!r}) has params of shapes {got}, but its input "
                                 f"needs {list(shapes.values())}")
        model = cls.__new__(cls)
        model._setup(list(made), input_shape, loss, rows)
        return model

    def _setup(self, made, input_shape, loss, rows):
        self.layers, self.input_shape, self.loss = made, tuple(int(s) for s in input_shape), loss
        self.specs = [spec for spec, *_ in rows]
        if not any(layer.params for layer in made) or self.specs[-1]["type"] != "dense":
            raise ValueError("a Sequential must end with a dense layer, whose outputs are the class scores")
        self.param_names = [name for _, _, names, _ in rows for name in names]
        self.buffers = {name: array for (_, _, _, names), layer in zip(rows, made)
                        for name, array in zip(names, layer.buffers.values())}
        self.params = [p for layer in made for p in layer.params]
        self.decay = [d for layer in made for d in layer.decay]
        self.dtype = self.params[0].dtype
        first = next(i for i, layer in enumerate(made) if layer.params)  # nothing before it needs a gradient
        made[first].input_grad, self._first = False, first
        # sizes: the inputs, for images the input of the first dense layer, then every dense layer's units
        dense = [i for i, spec in enumerate(self.specs) if spec["type"] == "dense"]
        flat = (rows[dense[0] - 1][1][0],) if len(self.input_shape) == 3 else ()
        self.sizes = (math.prod(self.input_shape), *flat, *(self.specs[i]["units"] for i in dense))
        kinds = [spec["type"] for spec in self.specs if spec["type"] in ACTIVATIONS]
        self.activation = kinds[0] if kinds else "none"
        self._backward_ready = False

    @property
    def architecture(self):
        return {"kind": "sequential", "input_shape": list(self.input_shape), "layers": self.specs, "loss": self.loss}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(map(repr, self.layers))})"

    def forward(self, X, train=True):
        """(n, classes) outputs for X (n, *input_shape) or (n, d). More than max_batch images run in chunks,
        after which backward refuses: use loss_grads_and_output, which chunks and sums exactly."""
        x = X.reshape(len(X), *self.input_shape)
        if self.max_batch is None or len(x) <= self.max_batch:
            return self._forward(x, train)
        out, log_p = [], []
        for i in range(0, len(x), self.max_batch):
            out.append(self._forward(x[i:i + self.max_batch], train))
            log_p.append(self.log_p)
        self.log_p, self._backward_ready = np.concatenate(log_p), False  # the caches hold the last chunk only
        return np.concatenate(out)

    def _forward(self, x, train):
        a, self.activations = x, [x]
        for layer in self.layers:
            a = layer.forward(a, train)
            if isinstance(layer, layers.Activation):
                self.activations.append(a)
        if self.loss == "cross_entropy":
            self.log_p = log_softmax(a)  # kept for a stable cross-entropy
            a = np.exp(self.log_p)
        else:
            a = sigmoid(a)
        self.activations.append(a)
        self._backward_ready = train
        return a

    def backward(self, delta):
        """Gradients of every param (same order as params), given delta = dloss/dz of the output, (n, classes)."""
        if not self._backward_ready:
            raise RuntimeError(f"backward needs a forward in training mode of at most max_batch={self.max_batch} "
                               f"images just before it; use loss_and_grads, which splits larger batches")
        for layer in reversed(self.layers[self._first:]):
            delta = layer.backward(delta)
        return [g for layer in self.layers if layer.params for g in layer.grads]
