"""Layers in NumPy, each with its forward and backward pass side by side: dense, the activations,
flatten, dropout and batch normalisation. The convolution and the pooling layers are in `conv.py`;
`sequential.Sequential` stacks layers of both modules into a model.

For: seeing how each layer computes its output and passes the gradient back, written out the way
cs231n's layers.py and Nielsen's network.py are. Leaves out: GPUs, automatic differentiation.

Every layer has `params` (its arrays, updated in place by training), `decay` (True beside a weight
that weight decay shrinks), `grads` (set by backward, same order as params), `buffers` (state that
training sets but not by gradient) and two methods:
    out = forward(x, train=True)  train=True keeps what backward needs (and dropout drops, batch norm
                                  uses the batch's statistics); train=False keeps nothing, deterministic
    dx = backward(dout)           dout = dloss/dout; returns dloss/dx and sets `grads`
Shapes: x (n, d) for dense layers, (n, c, h, w) (NCHW) for images; elementwise layers take either.
"""
import numpy as np

from .nn import ACTIVATIONS, init_weights


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def column_sums(a):
    """a (m, c) -> (c,), the sum of each column, as a BLAS product ones @ a: 16 times faster than
    a.sum(axis=0) on a conv layer's (73728, 16) gradient (0.10 against 1.57 ms), whose few columns
    NumPy's pairwise summation walks with a stride."""
    return np.ones(len(a), a.dtype) @ a


def _check_x(name, x, ndim, channels):
    if x.ndim != ndim or x.shape[1] != channels:
        want = "(n, {}, h, w)" if ndim == 4 else "(n, {})"
        raise ValueError(f"{name}: x must have shape {want.format(channels)}, got {x.shape}")


class Layer:
    """What every layer shares: no params unless it sets them, and pickling without its caches
    (`cache` names what forward keeps for backward: a model sent between processes need not carry them)."""

    params, decay, grads, buffers, cache = [], [], [], {}, ()
    input_grad = True  # False: backward computes no dloss/dx (a first layer: nothing learns from the pixels)
    kind = None  # its type in a layer spec (sequential.py)

    @property
    def spec(self):
        """The layer spec that builds this layer again (sequential.py), JSON-ready."""
        return {"type": self.kind}

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self.cache and k != "grads"}

    def __repr__(self):
        return f"{type(self).__name__}()"


class Dense(Layer):
    """Fully connected, as a layer of nn.MLP: out = x W + b. x (n, d_in) -> out (n, d_out).

    W (d_in, d_out) from nn.init_weights: He for a layer followed by ReLU (activation="relu"),
    Xavier/Glorot otherwise (activation="output", "sigmoid" or "tanh"); b (d_out,).
    """

    cache, kind = ("x",), "dense"

    def __init__(self, d_in, d_out, rng=0, dtype=np.float32, activation="relu"):
        self.d_in, self.d_out = _check_int("d_in", d_in, 1), _check_int("d_out", d_out, 1)
        self.W = init_weights(np.random.default_rng(rng), self.d_in, self.d_out, activation, dtype)
        self.b = np.zeros(self.d_out, dtype)
        self.params, self.decay = [self.W, self.b], [True, False]

    def __repr__(self):
        return f"Dense({self.d_in}, {self.d_out})"

    @property
    def spec(self):
        return {"type": "dense", "units": self.d_out}

    def forward(self, x, train=True):
        _check_x("Dense", x, 2, self.d_in)
        if train:
            self.x = x
        out = x @ self.W
        out += self.b
        return out

    def backward(self, dout):
        self.grads = [self.x.T @ dout, dout.sum(axis=0)]  # as nn.MLP sums it, so that the two agree bit for bit
        return dout @ self.W.T if self.input_grad else None


class Activation(Layer):
    """a = f(x) elementwise, for any shape, with nn's f and f' (f' written with the output a, as in
    nn.MLP.backward): dx = dout * f'(a). ReLU, Sigmoid and Tanh below name the three."""

    cache = ("a",)

    def __init__(self):
        self.f, self.f_prime = ACTIVATIONS[self.kind]

    def forward(self, x, train=True):
        a = self.f(x)
        if train:
            self.a = a
        return a

    def backward(self, dout):
        return dout * self.f_prime(self.a)


class ReLU(Activation):
    kind = "relu"


class Sigmoid(Activation):
    kind = "sigmoid"


class Tanh(Activation):
    kind = "tanh"


class Flatten(Layer):
    """(n, c, h, w) -> (n, c*h*w), in NCHW order (channel by channel); backward restores the shape."""

    cache, kind = ("like",), "flatten"

    def forward(self, x, train=True):
        self.like = x if train else None  # backward's dx takes x's memory order
        return x.reshape(len(x), -1)

    def backward(self, dout):
        # in x's memory order (NHWC after a convolution), the order the layers before it read: an NCHW
        # dout made the max-pooling backward before it 7 times slower (1.18 against 0.16 ms, (128, 32, 8, 8))
        dx = np.empty_like(self.like, dout.dtype)
        dx[...] = dout.reshape(dx.shape)
        return dx


class Dropout(Layer):
    """Inverted dropout: in training, each value is kept with probability q = 1 - p and scaled by 1/q,
    so that its expected value is unchanged and eval mode is the identity (nothing to rescale then).

    forward: out = x * m, m = [u >= p] / q with u uniform on [0, 1), drawn from `rng` (a Generator,
    shared with the model's initialisation, so that one seed gives one run); backward: dx = dout * m.
    """

    cache, kind = ("mask",), "dropout"

    def __init__(self, p, rng=0):
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        self.p, self.rng = float(p), np.random.default_rng(rng)

    def __repr__(self):
        return f"Dropout({self.p})"

    @property
    def spec(self):
        return {"type": "dropout", "p": self.p}

    def forward(self, x, train=True):
        if not train or self.p == 0:
            self.mask = None
            return x
        self.mask = self.rng.random(x.shape, dtype=x.dtype) >= self.p  # keep with probability q
        self.mask = self.mask.astype(x.dtype) / x.dtype.type(1 - self.p)
        return x * self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask


class BatchNorm(Layer):
    """Batch normalisation (Ioffe and Szegedy, 2015) per feature of (n, d), or per channel of (n, c, h, w).

    Write x as (m, c): m = n rows for a dense layer, m = n*h*w pixels for a convolution's channels.
    Training mode, over the m rows:  mu = mean(x), var = mean((x - mu)^2)  (c,),
        x_hat = (x - mu) / sqrt(var + eps)  (m, c),   out = gamma * x_hat + beta  (m, c).
    The running mean and variance move towards each batch's, r <- (1 - momentum) r + momentum * batch
    (the variance unbiased, m / (m - 1) times var, as PyTorch keeps it); eval mode normalises with
    them instead, so that a prediction does not depend on the other images of its batch.
    Backward, with g = dloss/dout (m, c) and s = 1 / sqrt(var + eps) (c,):
        dgamma = sum_rows(g * x_hat),  dbeta = sum_rows(g)                        (c,)
        dx_hat = gamma * g;  x_hat depends on x directly and through mu and var:
        dx = s * (dx_hat - mean_rows(dx_hat) - x_hat * mean_rows(dx_hat * x_hat))
           = (gamma * s / m) * (m * g - dbeta - x_hat * dgamma)                     (m, c)
    the compact form (since sum_rows(x_hat) = 0 and d var / dx_i = 2 (x_i - mu) / m).
    """

    cache, kind = ("x_hat", "s"), "batchnorm"

    def __init__(self, c, momentum=0.1, eps=1e-5, dtype=np.float32):
        self.c = _check_int("BatchNorm: c", c, 1)
        self.momentum, self.eps = float(momentum), float(eps)
        self.gamma, self.beta = np.ones(self.c, dtype), np.zeros(self.c, dtype)
        self.params, self.decay = [self.gamma, self.beta], [False, False]
        self.buffers = {"mean": np.zeros(self.c, dtype), "var": np.ones(self.c, dtype)}

    def __repr__(self):
        return f"BatchNorm({self.c})"

    @property
    def spec(self):
        return {"type": "batchnorm", "momentum": self.momentum, "eps": self.eps}

    @staticmethod
    def _rows(x):  # (m, c) with channels last: a view of a convolution's NHWC memory
        return x if x.ndim == 2 else x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])

    @staticmethod
    def _like(rows, x):  # back to x's shape, as an NCHW view of NHWC memory
        n, c, h, w = x.shape if x.ndim == 4 else (0, 0, 0, 0)
        return rows if x.ndim == 2 else rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def forward(self, x, train=True):
        if x.ndim not in (2, 4) or x.shape[1] != self.c:
            raise ValueError(f"BatchNorm: x must have shape (n, {self.c}) or (n, {self.c}, h, w), got {x.shape}")
        rows = self._rows(x)
        if train:
            m, r = len(rows), self.momentum
            mu = column_sums(rows) / m
            xc = rows - mu
            var = column_sums(np.square(xc)) / m
            self.buffers["mean"] += r * (mu - self.buffers["mean"])
            self.buffers["var"] += r * (var * (m / max(m - 1, 1)) - self.buffers["var"])
        else:
            mu, var = self.buffers["mean"], self.buffers["var"]
            xc = rows - mu
        s = 1 / np.sqrt(var + self.eps)
        x_hat = np.multiply(xc, s, out=xc)  # in place: x - mu is not needed again
        if train:
            self.x_hat, self.s = x_hat, s
        out = x_hat * self.gamma
        out += self.beta
        return self._like(out, x)

    def backward(self, dout):
        g = self._rows(dout)
        m, x_hat = len(g), self.x_hat
        g_x_hat = g * x_hat
        self.grads = [column_sums(g_x_hat), column_sums(g)]  # dgamma, dbeta
        if not self.input_grad:
            return None
        dgamma, dbeta = self.grads
        # dx = (gamma * s / m) * (m * g - dbeta - x_hat * dgamma), in g_x_hat's memory, one pass per term
        dx = np.multiply(x_hat, dgamma / -m, out=g_x_hat)
        dx -= dbeta / m
        dx += g
        dx *= self.gamma * self.s
        return self._like(dx, dout)
