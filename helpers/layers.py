"""Layers for a convolutional network in NumPy, each with its forward and backward pass side by side.

For: seeing how a convolution, max-pooling, a dense layer and ReLU compute their output and pass
the gradient back, written out the way cs231n's layers.py and Nielsen's network.py are, and fast
enough to train on a CPU. The convolution is im2col: every k x k window of the input becomes one
row of a matrix (`sliding_window_view` finds the windows without copying), and one matrix product
with the filters gives every output pixel at once. Leaves out: strides other than 1, dilation,
groups, batch normalisation, dropout, GPUs, automatic differentiation. The model that stacks these
layers is `convnet.py`; the fully connected `nn.MLP` keeps its own code for the first notebook.

Layout NCHW: x (n, c, h, w), n images of c channels of h x w pixels.
Every layer has `params` (its arrays, updated in place by training) and `grads` ([] for both if none)
and two methods:
    out = forward(x, keep=True)   keeps what backward needs (keep=False: predicting only, faster)
    dx = backward(dout)           dout = dloss/dout, returns dloss/dx and sets `grads` (same order as params)
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .nn import init_weights


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_x(name, x, ndim, channels):
    if x.ndim != ndim or x.shape[1] != channels:
        want = "(n, {}, h, w)" if ndim == 4 else "(n, {})"
        raise ValueError(f"{name}: x must have shape {want.format(channels)}, got {x.shape}")


def im2col(x, k, p):
    """(n*ho*wo, k*k*c): one row per output pixel, its k x k window of x (n, h, w, c) (NHWC, padded
    by p zeros) in the order of Conv2D.W's rows."""
    n, h, w, c = x.shape
    ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    if c == 1:  # rows of k values would copy slowly: copy k*k shifted images instead, 4 times faster
        cols_t = np.empty((k * k, n, ho, wo), x.dtype)
        for u in range(k):
            for v in range(k):
                cols_t[u * k + v] = x[:, u:u + ho, v:v + wo, 0]
        return cols_t.reshape(k * k, n * ho * wo).T  # the same matrix, stored column by column
    windows = sliding_window_view(x, (k, k), axis=(1, 2))  # (n, ho, wo, c, k, k): a view, nothing copied
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, k * k * c)  # the one copy


def col2im(dcols, x_shape, p):
    """dloss/dx (n, h, w, c) from dcols (k, k, n, ho, wo, c), the gradient sent through each kernel
    offset: the output pixel (i, j) read the input pixel (i + u, j + v) at offset (u, v), so it sends
    its gradient back there. k*k shifted additions instead of a scatter over every window."""
    k, _, n, ho, wo, c = dcols.shape
    _, h, w, _ = x_shape
    dx = np.zeros((n, h + 2 * p, w + 2 * p, c), dcols.dtype)
    for u in range(k):
        for v in range(k):
            dx[:, u:u + ho, v:v + wo] += dcols[u, v]
    return dx[:, p:p + h, p:p + w]  # the padding dropped


class Conv2D:
    """Convolution with stride 1 and `padding` zeros on every side (a cross-correlation, as in
    every deep-learning library: the filter is not flipped).

    x (n, c_in, h, w) -> out (n, c_out, h + 2p - k + 1, w + 2p - k + 1).
    W (k * k * c_in, c_out): row (u*k + v)*c_in + c is the weight of input channel c at kernel offset
    (u, v), so W[:, o].reshape(k, k, c_in) is filter o; b (c_out,). He initialisation (fan-in k*k*c_in).
    The output is stored channels-last (NHWC) and returned as an NCHW view, and layers after it
    keep that memory order: the windows of an NHWC image copy in runs of c values, which made
    im2col 4 times faster than from NCHW.
    input_grad=False skips dloss/dx (backward returns None): a first layer needs no gradient of pixels.
    """

    def __init__(self, c_in, c_out, k, padding=0, rng=0, dtype=np.float32):
        self.c_in, self.c_out = _check_int("c_in", c_in, 1), _check_int("c_out", c_out, 1)
        self.k, self.padding = _check_int("k", k, 1), _check_int("padding", padding, 0)
        rng = np.random.default_rng(rng)  # a Generator is used as it is, an int seeds a new one
        self.W = init_weights(rng, self.c_in * self.k ** 2, self.c_out, "relu", dtype)
        self.b = np.zeros(self.c_out, dtype)
        self.params, self.input_grad = [self.W, self.b], True

    def __repr__(self):
        return f"Conv2D({self.c_in}, {self.c_out}, k={self.k}, padding={self.padding})"

    def forward(self, x, keep=True):
        _check_x("Conv2D", x, 4, self.c_in)
        n, c, h, w = x.shape
        k, p = self.k, self.padding
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"Conv2D: a {h}x{w} input with padding {p} is smaller than the {k}x{k} kernel")
        cols = im2col(x.transpose(0, 2, 3, 1), k, p)  # NHWC: a view, contiguous after a layer here
        if keep:
            self.cols, self.x_shape = cols, (n, c, h, w)
        out = cols @ self.W  # (n*ho*wo, c_out): every output pixel of every image in one product
        out += self.b
        return out.reshape(n, ho, wo, self.c_out).transpose(0, 3, 1, 2)  # NCHW view of NHWC memory, no copy

    def backward(self, dout):
        n, c, h, w = self.x_shape
        k, p = self.k, self.padding
        _, c_out, ho, wo = dout.shape
        d = dout.transpose(0, 2, 3, 1).reshape(n * ho * wo, c_out)  # rows in the order of self.cols
        self.grads = [self.cols.T @ d, d.sum(axis=0)]  # as a dense layer's, with im2col rows as samples
        if not self.input_grad:
            return None
        # dloss/dcols = d W^T, as one batched product over the k*k kernel offsets, so that the gradient
        # sent through offset (u, v) is one contiguous block dcols[u, v] of shape (n, ho, wo, c).
        dcols = np.matmul(d, self.W.reshape(k * k, c, c_out).transpose(0, 2, 1)).reshape(k, k, n, ho, wo, c)
        return col2im(dcols, (n, h, w, c), p).transpose(0, 3, 1, 2)  # an NCHW view of NHWC memory


class MaxPool2D:
    """Max-pooling over non-overlapping size x size windows (stride = size).

    x (n, c, h, w) -> out (n, c, h // size, w // size); a last row or column that does not fill a
    window is dropped (as PyTorch does) and gets a zero gradient.
    Backward routes each window's gradient to its maximum. Ties: to the first maximum in row-major
    order within the window (as numpy.argmax and PyTorch), so every window passes its gradient to
    exactly one input; sending it to every tied input would multiply it. After a ReLU, ties are
    mostly windows of zeros, whose gradient the ReLU stops anyway.
    """

    def __init__(self, size=2):
        self.size, self.params, self.grads = _check_int("size", size, 1), [], []

    def __repr__(self):
        return f"MaxPool2D({self.size})"

    def _offsets(self, x):
        """The size*size strided views x[:, :, i::s, j::s], one per position (i, j) in the window."""
        s, ho, wo = self.size, x.shape[2] // self.size, x.shape[3] // self.size
        return [x[:, :, i:ho * s:s, j:wo * s:s] for i in range(s) for j in range(s)]

    def forward(self, x, keep=True):
        if x.ndim != 4 or x.shape[2] < self.size or x.shape[3] < self.size:
            raise ValueError(f"MaxPool2D: x must have shape (n, c, h, w) with h, w >= {self.size}, got {x.shape}")
        views = self._offsets(x)
        out = views[0].copy(order="K")  # keeps x's memory order
        for v in views[1:]:
            np.maximum(out, v, out=out)
        if not keep:
            return out
        self.x, self.first = x, []  # first[m]: position m holds its window's first maximum
        taken = np.zeros_like(out, dtype=bool)  # in out's memory order, as every array here: 40% faster
        for v in views:
            is_first = v == out
            is_first &= ~taken
            taken |= is_first
            self.first.append(is_first)
        return out

    def backward(self, dout):
        dx = np.zeros_like(self.x, dout.dtype)  # in x's memory order (NHWC after a Conv2D): no copies later
        for view, is_first in zip(self._offsets(dx), self.first):
            np.multiply(dout, is_first, out=view)
        return dx


class ReLU:
    """max(x, 0), elementwise, for any shape; its gradient passes where x > 0 (0 at x = 0, as nn.relu_prime)."""

    params, grads = [], []  # no weights

    def __repr__(self):
        return "ReLU()"

    def forward(self, x, keep=True):
        if keep:
            self.mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * self.mask


class Flatten:
    """(n, c, h, w) -> (n, c*h*w), in NCHW order (channel by channel); backward restores the shape."""

    params, grads = [], []  # no weights

    def __repr__(self):
        return "Flatten()"

    def forward(self, x, keep=True):
        self.x_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self.x_shape)


class Dense:
    """Fully connected, as a layer of nn.MLP: out = x W + b. x (n, d_in) -> out (n, d_out).

    W (d_in, d_out) from nn.init_weights: He for a layer followed by ReLU (activation="relu"),
    Xavier/Glorot for the output layer (activation="output"); b (d_out,).
    """

    def __init__(self, d_in, d_out, rng=0, dtype=np.float32, activation="relu"):
        self.d_in, self.d_out = _check_int("d_in", d_in, 1), _check_int("d_out", d_out, 1)
        self.W = init_weights(np.random.default_rng(rng), self.d_in, self.d_out, activation, dtype)
        self.b = np.zeros(self.d_out, dtype)
        self.params = [self.W, self.b]

    def __repr__(self):
        return f"Dense({self.d_in}, {self.d_out})"

    def forward(self, x, keep=True):
        _check_x("Dense", x, 2, self.d_in)
        if keep:
            self.x = x
        out = x @ self.W
        out += self.b
        return out

    def backward(self, dout):
        self.grads = [self.x.T @ dout, dout.sum(axis=0)]
        return dout @ self.W.T
