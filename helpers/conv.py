"""Convolution and pooling layers in NumPy, each with its forward and backward pass side by side.

For: seeing how a convolution and a pooling layer compute their output and pass the gradient back,
fast enough to train on a CPU. The convolution is im2col: every k x k window of the input becomes
one row of a matrix (`sliding_window_view` finds the windows without copying), and one matrix
product with the filters gives every output pixel at once. Leaves out: dilation, groups, GPUs,
automatic differentiation. The other layers (dense, activations, dropout, batch norm) and the
layer interface are in `layers.py`; `sequential.Sequential` stacks them into a model.

Layout NCHW: x (n, c, h, w), n images of c channels of h x w pixels. Output size of a k x k window
moved s pixels at a time over an input padded by p zeros: (h + 2p - k) // s + 1.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer, _check_int, _check_x, column_sums, init_weights


def out_size(h, k, p=0, s=1):
    """The number of positions of a k-wide window, moved s at a time, on h + 2p pixels."""
    return (h + 2 * p - k) // s + 1


def im2col(x, k, p, s=1):
    """(n*ho*wo, k*k*c): one row per output pixel, its k x k window of x (n, h, w, c) (NHWC, padded
    by p zeros, windows s pixels apart) in the order of Conv2D.W's rows."""
    n, h, w, c = x.shape
    ho, wo = out_size(h, k, p, s), out_size(w, k, p, s)
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    if c == 1:  # rows of k values would copy slowly: copy k*k shifted images instead, 4 times faster
        cols_t = np.empty((k * k, n, ho, wo), x.dtype)
        for u in range(k):
            for v in range(k):
                cols_t[u * k + v] = x[:, u:u + s * (ho - 1) + 1:s, v:v + s * (wo - 1) + 1:s, 0]
        return cols_t.reshape(k * k, n * ho * wo).T  # the same matrix, stored column by column
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]  # (n, ho, wo, c, k, k): a view
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, k * k * c)  # the one copy


def col2im(dcols, x_shape, p, s=1):
    """dloss/dx (n, h, w, c) from dcols (k, k, n, ho, wo, c), the gradient sent through each kernel
    offset: the output pixel (i, j) read the input pixel (s*i + u, s*j + v) at offset (u, v), so it
    sends its gradient back there. k*k shifted additions instead of a scatter over every window."""
    k, _, n, ho, wo, c = dcols.shape
    _, h, w, _ = x_shape
    dx = np.zeros((n, h + 2 * p, w + 2 * p, c), dcols.dtype)
    for u in range(k):
        for v in range(k):
            dx[:, u:u + s * (ho - 1) + 1:s, v:v + s * (wo - 1) + 1:s] += dcols[u, v]
    return dx[:, p:p + h, p:p + w]  # the padding dropped


class Conv2D(Layer):
    """Convolution with `padding` zeros on every side and windows `stride` pixels apart (a
    cross-correlation, as in every deep-learning library: the filter is not flipped).

    x (n, c_in, h, w) -> out (n, c_out, (h + 2p - k) // s + 1, (w + 2p - k) // s + 1).
    W (k * k * c_in, c_out): row (u*k + v)*c_in + c is the weight of input channel c at kernel offset
    (u, v), so W[:, o].reshape(k, k, c_in) is filter o; b (c_out,). He initialisation (fan-in k*k*c_in).
    The output is stored channels-last (NHWC) and returned as an NCHW view, and layers after it
    keep that memory order: the windows of an NHWC image copy in runs of c values, which made
    im2col 4 times faster than from NCHW.
    input_grad=False skips dloss/dx (backward returns None): a first layer needs no gradient of pixels.
    """

    cache, kind = ("cols", "x_shape"), "conv"

    def __init__(self, c_in, c_out, k, padding=0, rng=0, dtype=np.float32, stride=1):
        self.c_in, self.c_out = _check_int("c_in", c_in, 1), _check_int("c_out", c_out, 1)
        self.k, self.padding = _check_int("k", k, 1), _check_int("padding", padding, 0)
        self.stride = _check_int("stride", stride, 1)
        rng = np.random.default_rng(rng)  # a Generator is used as it is, an int seeds a new one
        self.W = init_weights(rng, self.c_in * self.k ** 2, self.c_out, "relu", dtype)
        self.b = np.zeros(self.c_out, dtype)
        self.params, self.decay = [self.W, self.b], [True, False]

    def __repr__(self):
        stride = f", stride={self.stride}" if self.stride > 1 else ""
        return f"Conv2D({self.c_in}, {self.c_out}, k={self.k}, padding={self.padding}{stride})"

    @property
    def spec(self):
        return {"type": "conv", "channels": self.c_out, "kernel": self.k, "padding": self.padding,
                "stride": self.stride}

    def forward(self, x, train=True):
        _check_x("Conv2D", x, 4, self.c_in)
        n, c, h, w = x.shape
        k, p, s = self.k, self.padding, self.stride
        ho, wo = out_size(h, k, p, s), out_size(w, k, p, s)
        if ho < 1 or wo < 1:
            raise ValueError(f"Conv2D: a {h}x{w} input with padding {p} is smaller than the {k}x{k} kernel")
        cols = im2col(x.transpose(0, 2, 3, 1), k, p, s)  # NHWC: a view, contiguous after a layer here
        if train:
            self.cols, self.x_shape = cols, (n, c, h, w)
        out = cols @ self.W  # (n*ho*wo, c_out): every output pixel of every image in one product
        out += self.b
        return out.reshape(n, ho, wo, self.c_out).transpose(0, 3, 1, 2)  # NCHW view of NHWC memory, no copy

    def backward(self, dout):
        n, c, h, w = self.x_shape
        k, p = self.k, self.padding
        _, c_out, ho, wo = dout.shape
        d = dout.transpose(0, 2, 3, 1).reshape(n * ho * wo, c_out)  # rows in the order of self.cols
        self.grads = [self.cols.T @ d, column_sums(d)]  # as a dense layer's, with im2col rows as samples
        if not self.input_grad:
            return None
        # dloss/dcols = d W^T, as one batched product over the k*k kernel offsets, so that the gradient
        # sent through offset (u, v) is one contiguous block dcols[u, v] of shape (n, ho, wo, c).
        dcols = np.matmul(d, self.W.reshape(k * k, c, c_out).transpose(0, 2, 1)).reshape(k, k, n, ho, wo, c)
        return col2im(dcols, (n, h, w, c), p, self.stride).transpose(0, 3, 1, 2)  # an NCHW view of NHWC memory


class _Pool(Layer):
    """Pooling over non-overlapping size x size windows (stride = size): x (n, c, h, w) ->
    (n, c, h // size, w // size); a last row or column that does not fill a window is dropped (as
    PyTorch does) and gets a zero gradient."""

    def __init__(self, size=2):
        self.size = _check_int("size", size, 1)

    def __repr__(self):
        return f"{type(self).__name__}({self.size})"

    @property
    def spec(self):
        return {"type": self.kind, "size": self.size}

    def _offsets(self, x):
        """The size*size strided views x[:, :, i::s, j::s], one per position (i, j) in the window."""
        s, ho, wo = self.size, x.shape[2] // self.size, x.shape[3] // self.size
        return [x[:, :, i:ho * s:s, j:wo * s:s] for i in range(s) for j in range(s)]

    def _check(self, x):
        if x.ndim != 4 or x.shape[2] < self.size or x.shape[3] < self.size:
            raise ValueError(f"{type(self).__name__}: x must have shape (n, c, h, w) with h, w >= {self.size}, "
                             f"got {x.shape}")
        return self._offsets(x)


class MaxPool2D(_Pool):
    """Max-pooling. Backward routes each window's gradient to its maximum. Ties: to the first maximum
    in row-major order within the window (as numpy.argmax and PyTorch), so every window passes its
    gradient to exactly one input; sending it to every tied input would multiply it. After a ReLU,
    ties are mostly windows of zeros, whose gradient the ReLU stops anyway."""

    cache, kind = ("x", "first"), "maxpool"

    def forward(self, x, train=True):
        views = self._check(x)
        out = views[0].copy(order="K")  # keeps x's memory order
        for v in views[1:]:
            np.maximum(out, v, out=out)
        if not train:
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


class AvgPool2D(_Pool):
    """Average pooling: out = the mean of each window; backward gives each input of a window an equal
    share, dout / size^2."""

    cache, kind = ("like",), "avgpool"

    def forward(self, x, train=True):
        views = self._check(x)
        out = views[0].copy(order="K")
        for v in views[1:]:
            out += v
        out *= out.dtype.type(1 / self.size ** 2)
        self.like = x if train else None  # backward's dx takes x's memory order
        return out

    def backward(self, dout):
        dx = np.zeros_like(self.like, dout.dtype)
        share = dout * dout.dtype.type(1 / self.size ** 2)
        for view in self._offsets(dx):
            view[...] = share
        return dx


class GlobalAvgPool2D(Layer):
    """The mean of each channel over all its pixels: x (n, c, h, w) -> (n, c); backward spreads
    dout / (h*w) over every pixel. A shift of the image barely changes it (only the borders move)."""

    cache, kind = ("x_shape",), "globalavgpool"

    def forward(self, x, train=True):
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool2D: x must have shape (n, c, h, w), got {x.shape}")
        if train:
            self.x_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        n, c, h, w = self.x_shape
        dx = np.empty((n, h, w, c), dout.dtype).transpose(0, 3, 1, 2)  # NHWC memory, as after a Conv2D
        dx[...] = (dout / dout.dtype.type(h * w))[:, :, None, None]
        return dx
