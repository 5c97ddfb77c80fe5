"""A fully connected neural network in NumPy, with backpropagation written by hand.

For: seeing exactly how a multilayer perceptron turns pixels into ten scores (the
forward pass) and how the gradient of its loss flows back to every weight (the
backward pass). Leaves out: convolutions, GPUs, automatic differentiation. The
optimisers and the training loop are in `training.py`; this module knows no files.

Shapes: X (n, d) float, one row per sample; Y (n, k) one-hot; W (d_in, d_out); b (d_out,).
Names follow the math of the notebook:
    z = a_prev @ W + b        a = f(z)           (forward, layer by layer)
    delta = dloss/dz          nabla_W = a_prev.T @ delta,  nabla_b = sum(delta)
    delta_prev = (delta @ W.T) * f'(z_prev)       (backward, layer by layer)
Layers are numbered l = 1..L in both the code and the formulas (L = the number of layers).
"""
import numpy as np

# Activations. Each forward rule sits beside its derivative; the derivative is written
# with the output a = f(z), which the forward pass has already computed.


def sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), but never overflows for z << 0


def sigmoid_prime(a):
    return a * (1 - a)


def tanh(z):
    return np.tanh(z)


def tanh_prime(a):
    return 1 - a * a


def relu(z):
    return np.maximum(z, 0)


def relu_prime(a):
    return a > 0  # a boolean mask: multiplying by it is multiplying by 1 or 0


ACTIVATIONS = {"sigmoid": (sigmoid, sigmoid_prime), "tanh": (tanh, tanh_prime), "relu": (relu, relu_prime)}


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)  # shifting by the max changes nothing, and exp never overflows
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def softmax_backward(p, grad_p):
    """dL/dz from dL/dp through p = softmax(z), using its Jacobian diag(p) - p p^T."""
    return p * (grad_p - (grad_p * p).sum(axis=1, keepdims=True))


# Losses: the mean over the n samples of a batch, each with its gradient.


def mse(a, Y):
    return 0.5 * np.sum((a - Y) ** 2) / len(Y)


def mse_grad(a, Y):
    return (a - Y) / len(Y)


def cross_entropy(log_p, Y):
    """Cross-entropy against Y, from log p = log_softmax(z): log is never taken of a 0 that underflowed."""
    return -np.sum(Y * log_p) / len(Y)


def cross_entropy_grad(p, Y):
    """dL/dp for L = cross-entropy of probabilities p (the long way; see softmax_cross_entropy_grad)."""
    return -Y / p / len(Y)


def softmax_cross_entropy_grad(p, Y):
    """dL/dz through softmax and cross-entropy together: the Jacobians cancel to (p - Y) / n."""
    return (p - Y) / len(Y)


def init_weights(rng, d_in, d_out, activation, dtype):
    """He (ReLU) or Xavier/Glorot (sigmoid, tanh, output) normal init: keeps signal variance steady."""
    std = np.sqrt(2 / d_in) if activation == "relu" else np.sqrt(2 / (d_in + d_out))
    return (rng.standard_normal((d_in, d_out)) * std).astype(dtype)


class Classifier:
    """The model interface, written once: what `training.fit`, `training.evaluate`, `model_io`,
    `images.read` and the benchmark may use of any model. A subclass (`MLP` below, or
    `sequential.Sequential`, a stack of layers) provides:
        params        [arrays]: what the optimiser updates in place
        decay         [bool] beside params: True for weights, which weight decay shrinks; biases and
                      batch norm's scale and shift are not shrunk
        buffers       {name: array}: state training sets but not by gradient (batch norm's running
                      statistics); model_io saves it with the params. {} if none
        param_names   [str] beside params: the names in a model file ("W1", "b1", ...)
        sizes         (inputs, ..., classes); input_shape: one sample's shape, e.g. (784,) or (1, 28, 28)
        loss          "cross_entropy" (softmax output) or "mse" (sigmoid output)
        architecture  a JSON-ready dict that models.build turns back into the same kind of model
        forward(X, train=True) -> P (n, classes), the outputs; keeps log P as log_p for the loss.
                      train=True: training mode (dropout drops, batch norm uses the batch's statistics)
                      and keeps what backward needs; train=False: deterministic, for measuring.
        backward(delta) -> grads beside params, from delta = dloss/dZ of the output layer (n, classes).
                      No gradient of the pixels is computed: nothing learns from it.
        activations   after forward: [the input, the output of each hidden activation (for a ConvNet's
                      first, its feature maps), the outputs P]: what images.read and draw.py show
    and gets from here: check_inputs, check_targets, loss_and_delta, loss_and_grads (checked) and
    loss_grads_and_output (unchecked, for fit's inner loop), predict_proba, predict, classes, depth,
    and pickling without the last batch's caches (try_seeds sends models between processes).
    max_batch: a batch of more images is run in chunks of that many, and its gradient summed exactly.
    """

    max_batch = None  # None: any batch in one piece
    buffers = {}

    @property
    def classes(self):
        return self.sizes[-1]

    @property
    def depth(self):
        """L, the number of layers with weights."""
        return sum(self.decay)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("activations", "log_p")}

    def loss_and_delta(self, out, Y):
        """(mean loss, delta = dloss/dZ^L) for outputs out = forward(X) and one-hot Y, both (n, k)."""
        if self.loss == "cross_entropy":
            return cross_entropy(self.log_p, Y), softmax_cross_entropy_grad(out, Y)
        return mse(out, Y), mse_grad(out, Y) * sigmoid_prime(out)

    def loss_grads_and_output(self, X, Y):
        """(mean loss, grads, outputs) of a batch in training mode, X and Y already checked (fit checks
        the whole set once). A batch of more than max_batch images runs in chunks, each chunk's
        gradient weighted by its share, so that the sum is the gradient of the mean over all n."""
        n = len(X)
        if self.max_batch is None or n <= self.max_batch:
            out = self.forward(X)
            loss, delta = self.loss_and_delta(out, Y)
            return float(loss), self.backward(delta), out
        loss, grads, outs = 0.0, None, []
        for i in range(0, n, self.max_batch):
            out = self.forward(X[i:i + self.max_batch])
            part_loss, delta = self.loss_and_delta(out, Y[i:i + self.max_batch])
            share = len(out) / n
            part = self.backward(delta * share)
            loss += float(part_loss) * share
            grads = part if grads is None else [g + h for g, h in zip(grads, part)]
            outs.append(out)
        return loss, grads, np.concatenate(outs)

    def loss_and_grads(self, X, Y):
        """Mean loss over the batch and its gradient for every param. X: (n, *input_shape) or (n, d);
        Y: (n, k) one-hot."""
        X = self.check_inputs(X)
        loss, grads, _ = self.loss_grads_and_output(X, self.check_targets(Y, len(X)))
        return loss, grads

    def predict_proba(self, X, batch_size=10_000):
        """(n, k) class probabilities, in eval mode. For an MSE model, its sigmoid outputs scaled to sum to 1."""
        X = self.check_inputs(X)
        out = np.concatenate([self.forward(X[i:i + batch_size], train=False) for i in range(0, len(X), batch_size)])
        return out if self.loss == "cross_entropy" else out / out.sum(axis=1, keepdims=True)

    def predict(self, X):
        """(n,) predicted labels."""
        return self.predict_proba(X).argmax(axis=1)

    def check_inputs(self, X):
        """X as (n, d) of the model's dtype, d = sizes[0]; an image model also takes (n, h, w) or (n, c, h, w)."""
        X, d = np.asarray(X), self.sizes[0]
        shapes = [(d,)] + ([self.input_shape[-2:], self.input_shape] if len(self.input_shape) == 3 else [])
        if X.ndim < 2 or X.shape[1:] not in {tuple(s) for s in shapes}:
            if len(shapes) == 1:
                raise ValueError(f"X must have shape (n, {d}), one flattened sample per row; got "
                                 f"{X.shape}. For (n, 28, 28) images use helpers.data.flatten(x).")
            raise ValueError(f"X must have shape (n, {', '.join(map(str, shapes[1]))}) or (n, {d}), "
                             f"one image per sample; got {X.shape}")
        if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all():
            raise ValueError("X must hold finite numbers (no NaN or infinity)")
        return X.reshape(len(X), d).astype(self.dtype, copy=False)

    def check_targets(self, Y, n):
        Y, k = np.asarray(Y), self.classes
        if Y.shape != (n, k):
            raise ValueError(f"Y must be one-hot targets of shape ({n}, {k}), got {Y.shape}. "
                             f"For integer labels use helpers.data.one_hot(y, {k}).")
        if not np.issubdtype(Y.dtype, np.number) or not np.isfinite(Y).all():
            raise ValueError("Y must hold finite numbers (no NaN or infinity)")
        return Y.astype(self.dtype, copy=False)


class MLP(Classifier):
    """A multilayer perceptron: sizes (784, ..., 10), hidden activation, and loss.

    loss="cross_entropy": softmax output. loss="mse": sigmoid output, as in the original.
    params: [W1, b1, W2, b2, ...], the arrays that training updates in place.
    """

    def __init__(self, sizes, activation="relu", loss="cross_entropy", seed=0, dtype=np.float32):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least an input and an output size, all >= 1; got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if loss not in ("cross_entropy", "mse"):
            raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")
        self.sizes, self.activation, self.loss, self.dtype = sizes, activation, loss, np.dtype(dtype)
        self.input_shape = sizes[:1]
        self.f, self.f_prime = ACTIVATIONS[activation]
        rng = np.random.default_rng(seed)
        self.params = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            act = activation if i < len(sizes) - 2 else "output"
            self.params += [init_weights(rng, d_in, d_out, act, self.dtype), np.zeros(d_out, self.dtype)]
        self.decay = [True, False] * (len(sizes) - 1)  # W^l decays, b^l does not
        self.param_names = [f"{name}{l}" for l in range(1, len(sizes)) for name in "Wb"]

    def __repr__(self):
        return f"MLP(sizes={self.sizes}, activation={self.activation!r}, loss={self.loss!r})"

    @property
    def architecture(self):
        """What model_io stores and models.build reads: a plain dict, JSON-ready."""
        return {"kind": "mlp", "sizes": list(self.sizes), "activation": self.activation, "loss": self.loss}

    def forward(self, X, train=True):
        """Output of the last layer, keeping every layer's activation for backward. X: (n, d).

        Layers are numbered l = 1..L as in the notebook's formulas: activations[l] is A^l,
        activations[0] is A^0 = X, and W^l, b^l sit at params[2l - 2], params[2l - 1].
        An MLP has no dropout or batch norm: train=False computes the same.
        """
        L = self.depth
        a = X
        self.activations = [a]
        for l in range(1, L + 1):
            W, b = self.params[2 * l - 2], self.params[2 * l - 1]
            z = a @ W  # Z^l = A^{l-1} W^l + b^l, the bias added in place to save a temporary
            z += b
            if l < L:
                a = self.f(z)  # A^l = f(Z^l)
            else:
                if self.loss == "cross_entropy":
                    self.log_p = log_softmax(z)  # kept for a stable cross-entropy
                    a = np.exp(self.log_p)  # = softmax(z)
                else:
                    a = sigmoid(z)
            self.activations.append(a)
        return a

    def backward(self, delta):
        """Gradients of every param, given delta = dloss/dZ^L of the output layer, (n, k)."""
        grads = [None] * len(self.params)
        for l in range(self.depth, 0, -1):  # delta holds delta^l = dloss/dZ^l
            a_prev = self.activations[l - 1]  # A^{l-1}
            grads[2 * l - 2] = a_prev.T @ delta  # nabla_W^l = (A^{l-1})^T delta^l
            grads[2 * l - 1] = delta.sum(axis=0)  # nabla_b^l = sum of delta^l over the batch
            if l > 1:  # delta^0 would be the gradient of the pixels: not needed
                delta = delta @ self.params[2 * l - 2].T  # delta^{l-1} = (delta^l (W^l)^T) * f'(Z^{l-1}),
                delta *= self.f_prime(a_prev)  # f' written with A^{l-1} = f(Z^{l-1}), already computed
        return grads
