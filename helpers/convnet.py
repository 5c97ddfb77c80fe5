"""The convolutional network of Conv_net.ipynb: a `sequential.Sequential` built from a short architecture.

For: naming a ConvNet by a few numbers (its channels, kernel, dense layers) instead of a list of
layer specs; `models.py` builds it from a model file or a recipe. Leaves out: inputs other than
28x28 images of one channel.

ConvNet(channels=(16, 32), kernel=5, hidden=128) is, for each channel count, a Conv2D (kernel x kernel,
stride 1, `padding` zeros), a ReLU and a 2x2 MaxPool2D, then Flatten and dense layers of `hidden`
units with ReLU, then 10 outputs with softmax:
    (n, 1, 28, 28) -conv 5x5-> (n, 16, 24, 24) -pool-> (n, 16, 12, 12) -conv 5x5-> (n, 32, 8, 8)
    -pool-> (n, 32, 4, 4) -flatten-> (n, 512) -dense-> (n, 128) -dense-> (n, 10)
batchnorm=True adds a BatchNorm after every conv and hidden dense layer, before its ReLU;
dropout=p a Dropout(p) after the ReLU of every hidden dense layer; pool="avg" average pooling.
As for every model (nn.Classifier): params [W1, b1, W2, b2, ...]; sizes the widths of the input, the
flattened conv output, the dense layers and the output, (784, 512, 128, 10) above; depth L the
number of layers with weights (4 above); and after forward, activations[0] the input and
activations[l] the output of the l-th ReLU (for a conv layer before pooling: its feature maps),
activations[-1] the probabilities.
"""
import numpy as np

from .layers import _check_int
from .sequential import Sequential

SIDE, CLASSES = 28, 10


def _sizes(name, value, allow_empty):
    values = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if (not values and not allow_empty) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                               or v < 1 for v in values):
        raise ValueError(f"{name} must be an integer >= 1 or a sequence of them, got {value!r}")
    return tuple(int(v) for v in values)


def specs(channels=(16, 32), kernel=5, hidden=128, padding=0, batchnorm=False, dropout=0.0, pool="max"):
    """The layer specs (sequential.py) of a ConvNet, checked: channels and hidden are integers >= 1."""
    channels, hidden = _sizes("channels", channels, allow_empty=False), _sizes("hidden", hidden, allow_empty=True)
    kernel, padding = _check_int("kernel", kernel, 1), _check_int("padding", padding, 0)
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    if not isinstance(batchnorm, (bool, np.bool_)):
        raise ValueError(f"batchnorm must be true or false, got {batchnorm!r}")
    norm = [{"type": "batchnorm"}] if batchnorm else []
    layers = []
    for c in channels:
        layers += [{"type": "conv", "channels": c, "kernel": kernel, "padding": padding}, *norm,
                   {"type": "relu"}, {"type": f"{pool}pool", "size": 2}]
    layers.append({"type": "flatten"})
    for units in hidden:
        layers += [{"type": "dense", "units": units}, *norm, {"type": "relu"}]
        layers += [{"type": "dropout", "p": dropout}] if dropout else []
    return layers + [{"type": "dense", "units": CLASSES}]


class ConvNet(Sequential):
    """Convolutional network; X (n, 28, 28) or (n, 784) float, Y (n, 10) one-hot.

    max_batch: forward runs larger inputs in chunks of this many images and loss_and_grads sums
    their gradients, so that memory stays bounded (im2col makes the first layer's input 25 times
    larger) and a full-batch gradient is still exact.
    """

    max_batch = 1000
    ADDED = {"batchnorm": False, "dropout": 0.0, "pool": "max"}  # and their defaults

    def __init__(self, channels=(16, 32), kernel=5, hidden=128, padding=0, seed=0, dtype=np.float32,
                 batchnorm=False, dropout=0.0, pool="max"):
        layers = specs(channels, kernel, hidden, padding, batchnorm, dropout, pool)
        super().__init__(layers, (1, SIDE, SIDE), "cross_entropy", seed, dtype)
        self.channels = tuple(s["channels"] for s in self.specs if s["type"] == "conv")
        self.hidden = tuple(self.sizes[2:-1])
        self.kernel, self.padding, self.batchnorm, self.dropout, self.pool = (
            int(kernel), int(padding), bool(batchnorm), float(dropout), pool)

    @property
    def architecture(self):
        """What model_io stores and models.build reads: a plain dict, JSON-ready. The layers added since
        the first ConvNet (batchnorm, dropout, pool) only when not at their defaults, so that a plain
        ConvNet's files and database rows read as they always have."""
        extra = {k: getattr(self, k) for k, default in self.ADDED.items() if getattr(self, k) != default}
        return {"kind": "conv", "channels": list(self.channels), "kernel": self.kernel, "hidden": list(self.hidden),
                "padding": self.padding, **extra}

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k, default in self.ADDED.items()
                        if getattr(self, k) != default)
        return (f"ConvNet(channels={self.channels}, kernel={self.kernel}, hidden={self.hidden}, "
                f"padding={self.padding}{extra})")
