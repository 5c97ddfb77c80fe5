"""A convolutional network for MNIST: a stack of the layers of `layers.py` with softmax cross-entropy.

For: going past what an MLP reaches, with the same interface as `nn.MLP`, so that `training.fit`,
`training.evaluate` and `images.read` use either model unchanged. Leaves out: other losses and
activations, inputs other than 28x28 images of one channel.

ConvNet(channels=(16, 32), kernel=5, hidden=128) is, for each channel count, a Conv2D (kernel x kernel,
stride 1, `padding` zeros), a ReLU and a 2x2 MaxPool2D, then Flatten and dense layers of `hidden`
units with ReLU, then 10 outputs with softmax:
    (n, 1, 28, 28) -conv 5x5-> (n, 16, 24, 24) -pool-> (n, 16, 12, 12) -conv 5x5-> (n, 32, 8, 8)
    -pool-> (n, 32, 4, 4) -flatten-> (n, 512) -dense-> (n, 128) -dense-> (n, 10)
As in nn.MLP: params [W1, b1, W2, b2, ...] (weights at even positions, so weight decay skips
biases); sizes the widths of the input, the flattened conv output, the dense layers and the output,
(784, 512, 128, 10) above; depth L the number of layers with weights (4 above); and after
forward, activations[0] the input and activations[l] the output of layer l after its ReLU
(before pooling: the feature maps), activations[L] the probabilities.
"""
import numpy as np

from .layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, _check_int
from .nn import cross_entropy, log_softmax, softmax_cross_entropy_grad

SIDE, CLASSES = 28, 10


def _sizes(name, value, allow_empty):
    values = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if (not values and not allow_empty) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                               or v < 1 for v in values):
        raise ValueError(f"{name} must be an integer >= 1 or a sequence of them, got {value!r}")
    return tuple(int(v) for v in values)


def plan(channels, kernel, hidden, padding):
    """Check an architecture and return its conv layers [(c_in, c_out), ...] and its sizes, allocating
    nothing: model_io checks a file's arrays against this before it builds the model."""
    channels = _sizes("channels", channels, allow_empty=False)
    hidden = _sizes("hidden", hidden, allow_empty=True)
    kernel, padding = _check_int("kernel", kernel, 1), _check_int("padding", padding, 0)
    convs, c, side = [], 1, SIDE
    for c_out in channels:
        side = side + 2 * padding - kernel + 1
        if side < 2:
            raise ValueError(f"channels={channels}, kernel={kernel}, padding={padding}: the images shrink "
                             f"below 2x2 before pooling; use fewer conv layers, a smaller kernel or padding")
        convs.append((c, c_out))
        c, side = c_out, side // 2
    return convs, (SIDE * SIDE, c * side * side, *hidden, CLASSES)


def param_shapes(channels, kernel, hidden, padding):
    """The shapes of a ConvNet's params, in order, without building it."""
    convs, sizes = plan(channels, kernel, hidden, padding)
    conv = [s for c_in, c_out in convs for s in ((kernel * kernel * c_in, c_out), (c_out,))]
    return conv + [s for d_in, d_out in zip(sizes[1:-1], sizes[2:]) for s in ((d_in, d_out), (d_out,))]


class ConvNet:
    """Convolutional network; X (n, 28, 28) or (n, 784) float, Y (n, 10) one-hot.

    max_batch: forward runs larger inputs in chunks of this many images and loss_and_grads sums
    their gradients, so that memory stays bounded (im2col makes the first layer's input 25 times
    larger) and a full-batch gradient is still exact.
    """

    activation, loss, max_batch = "relu", "cross_entropy", 1000

    def __init__(self, channels=(16, 32), kernel=5, hidden=128, padding=0, seed=0, dtype=np.float32):
        convs, self.sizes = plan(channels, kernel, hidden, padding)
        self.channels, self.hidden = tuple(c for _, c in convs), tuple(self.sizes[2:-1])
        self.kernel, self.padding, self.dtype = int(kernel), int(padding), np.dtype(dtype)
        rng = np.random.default_rng(seed)
        self.layers = []
        for c_in, c_out in convs:
            self.layers += [Conv2D(c_in, c_out, self.kernel, self.padding, rng, self.dtype), ReLU(), MaxPool2D(2)]
        self.layers.append(Flatten())
        for d_in, d_out in zip(self.sizes[1:-2], self.sizes[2:-1]):
            self.layers += [Dense(d_in, d_out, rng, self.dtype), ReLU()]
        self.layers.append(Dense(self.sizes[-2], CLASSES, rng, self.dtype, activation="output"))
        self.layers[0].input_grad = False  # as nn.MLP.backward: no gradient of the pixels
        self.params = [p for layer in self.layers for p in layer.params]
        self._backward_ready = False

    @property
    def architecture(self):
        """What model_io stores and models.build reads: a plain dict, JSON-ready."""
        return {"kind": "conv", "channels": list(self.channels), "kernel": self.kernel,
                "hidden": list(self.hidden), "padding": self.padding}

    def __repr__(self):
        return (f"ConvNet(channels={self.channels}, kernel={self.kernel}, hidden={self.hidden}, "
                f"padding={self.padding})")

    @property
    def depth(self):
        return len(self.params) // 2

    def forward(self, X):
        """(n, 10) probabilities; keeps what backward needs if n <= max_batch. X: (n, 784) or (n, 28, 28).
        Larger inputs (evaluating, predicting) run in chunks that keep nothing for backward, which is faster."""
        x = X.reshape(len(X), 1, SIDE, SIDE)
        if len(x) <= self.max_batch:
            return self._forward(x)
        out, log_p = [], []
        for i in range(0, len(x), self.max_batch):
            out.append(self._forward(x[i:i + self.max_batch], keep=False))
            log_p.append(self.log_p)
        self.log_p, self._backward_ready = np.concatenate(log_p), False  # the caches hold the last chunk only
        return np.concatenate(out)

    def _forward(self, x, keep=True):
        a, self.activations = x, [x]
        for layer in self.layers:
            a = layer.forward(a, keep)
            if isinstance(layer, ReLU):  # one after each layer with weights but the last
                self.activations.append(a)
        self.log_p = log_softmax(a)  # kept for a stable cross-entropy
        p = np.exp(self.log_p)
        self.activations.append(p)
        self._backward_ready = keep
        return p

    def backward(self, delta):
        """Gradients of every param (same order as params), given delta = dloss/dz of the output, (n, 10)."""
        if not self._backward_ready:
            raise RuntimeError(f"backward needs a forward of at most max_batch={self.max_batch} images just "
                               f"before it; use loss_and_grads, which splits larger batches")
        for layer in reversed(self.layers):
            delta = layer.backward(delta)
        return [g for layer in self.layers if layer.params for g in layer.grads]

    def _loss_and_delta(self, out, Y):
        return cross_entropy(self.log_p, Y), softmax_cross_entropy_grad(out, Y)

    def _loss_and_grads(self, X, Y):
        """loss_and_grads without input checks, for the training loop. Returns (loss, grads, out)."""
        n, loss, grads, outs = len(X), 0.0, None, []
        for i in range(0, n, self.max_batch):
            out = self._forward(X[i:i + self.max_batch].reshape(-1, 1, SIDE, SIDE))
            part_loss, delta = self._loss_and_delta(out, Y[i:i + self.max_batch])
            share = len(out) / n  # each chunk's mean weighted by its share: the mean over all n
            part = self.backward(delta * share if share < 1 else delta)
            loss += float(part_loss) * share
            grads = part if grads is None else [g + h for g, h in zip(grads, part)]
            outs.append(out)
        return loss, grads, outs[0] if len(outs) == 1 else np.concatenate(outs)

    def loss_and_grads(self, X, Y):
        """Mean loss over the batch and its gradient for every param. X: (n, 784) or (n, 28, 28); Y: (n, 10)."""
        X = self.check_inputs(X)
        Y = self.check_targets(Y, len(X))
        loss, grads, _ = self._loss_and_grads(X, Y)
        return loss, grads

    def predict_proba(self, X, batch_size=10_000):
        """(n, 10) class probabilities."""
        X = self.check_inputs(X)
        return np.concatenate([self.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])

    def predict(self, X):
        """(n,) predicted labels."""
        return self.predict_proba(X).argmax(axis=1)

    def check_inputs(self, X):
        """X as (n, 784) of the model's dtype: one layout for fit, random shifts and the database."""
        X = np.asarray(X)
        if X.ndim not in (2, 3) or X.shape[1:] not in ((SIDE * SIDE,), (SIDE, SIDE)):
            raise ValueError(f"X must have shape (n, {SIDE}, {SIDE}) or (n, {SIDE * SIDE}), one image per "
                             f"sample; got {X.shape}")
        if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all():
            raise ValueError("X must hold finite numbers (no NaN or infinity)")
        return X.reshape(len(X), SIDE * SIDE).astype(self.dtype, copy=False)

    def check_targets(self, Y, n):
        Y = np.asarray(Y)
        if Y.shape != (n, CLASSES):
            raise ValueError(f"Y must be one-hot targets of shape ({n}, {CLASSES}), got {Y.shape}. "
                             f"For integer labels use helpers.data.one_hot(y, {CLASSES}).")
        if not np.issubdtype(Y.dtype, np.number) or not np.isfinite(Y).all():
            raise ValueError("Y must hold finite numbers (no NaN or infinity)")
        return Y.astype(self.dtype, copy=False)
