"""Checkers for the notebook's exercises: each takes your answer and prints a precise verdict.

For: knowing at once whether the function you wrote is right, and if not, which entry is off
and by how much. Every checker compares your answer with central finite differences of the
loss (the ground truth) or with the reference in `helpers`, prints one verdict and returns
True (accepted) or False (rejected). Tiny float64 problems keep the comparison exact to about
seven digits. Also `activation_spread`, the initialisation experiment that a plot and a check share.
"""
import numpy as np

from . import nn, training

TOL = 1e-6  # relative error: float64 finite differences agree with a correct gradient to ~1e-9


def _verdict(name, yours, reference, against, tol=TOL, quiet=False):
    """Compare entry by entry; print where the worst disagreement is. Returns True if within tol.

    quiet: print nothing when they agree (for a checker that sums up several parts in one line).
    """
    yours = np.asarray(yours, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if yours.shape != reference.shape:
        print(f"not yet: {name} has shape {yours.shape}, but it should be {reference.shape}")
        return False
    if not np.isfinite(yours).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(yours))[0])
        print(f"not yet: {name} holds {yours[where]} at entry {where}")
        return False
    rel = np.abs(yours - reference) / np.maximum(np.abs(yours) + np.abs(reference), 1e-8)
    where = np.unravel_index(np.argmax(rel), rel.shape) if rel.size else ()
    worst = float(rel[where]) if rel.size else 0.0
    if worst > tol:
        where = tuple(int(i) for i in where)
        print(f"not yet: {name}[{', '.join(map(str, where))}] is {yours[where]:.6g}, expected "
              f"{reference[where]:.6g} from {against} (off by {yours[where] - reference[where]:.3g}, "
              f"relative error {worst:.1e})")
        return False
    if not quiet:
        print(f"correct: all {rel.size} entries of {name} match {against} (largest relative error {worst:.1e})")
    return True


def _call(fn, name, *args):
    """Your function's result, or None with the exception printed (a checker never crashes on it)."""
    if not callable(fn):
        raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except Exception as e:  # any error in the learner's code is part of the verdict, not a crash
        print(f"not yet: {name} raised {type(e).__name__}: {e}")
        return None


def numerical_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar f() with respect to every entry of array x (in place)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f()
        x[i] = old - eps
        minus = f()
        x[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


def tiny_network(activation="tanh", seed=0):
    """A 6-5-4 float64 network with non-zero biases, a batch X (7, 6) and one-hot Y (7, 4)."""
    rng = np.random.default_rng(seed)
    model = nn.MLP((6, 5, 4), activation, "cross_entropy", seed=seed, dtype=np.float64)
    for b in model.params[1::2]:
        b[:] = rng.normal(0, 0.1, b.shape)
    X = rng.standard_normal((7, 6))
    Y = np.eye(4)[rng.integers(0, 4, 7)]
    return model, X, Y


def check_tanh_prime(tanh_prime):
    """Exercise: tanh_prime(a) is d tanh(z)/dz written with the output a = tanh(z), as nn does."""
    z = np.linspace(-3, 3, 13)
    yours = _call(tanh_prime, "tanh_prime", np.tanh(z))
    if yours is None:
        return False
    eps = 1e-6
    return _verdict("tanh_prime(tanh(z))", yours, (np.tanh(z + eps) - np.tanh(z - eps)) / (2 * eps),
                    "finite differences of tanh", tol=1e-8)


def check_bias_gradient(nabla_b):
    """Exercise: nabla_b(delta) is dL/db of the output layer, from delta = dL/dZ (n, k); returns (k,)."""
    model, X, Y = tiny_network()
    P = model.forward(X)
    yours = _call(nabla_b, "nabla_b", nn.softmax_cross_entropy_grad(P, Y))
    if yours is None:
        return False
    b = model.params[-1]
    return _verdict("nabla_b", yours, numerical_grad(lambda: model.loss_and_grads(X, Y)[0], b),
                    "finite differences of the loss")


def check_softmax_ce_delta(delta):
    """Exercise: delta(P, Y) is dL/dZ of the mean cross-entropy of P = softmax(Z) (n, k) against Y."""
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((5, 4)) * 2
    Y = np.eye(4)[rng.integers(0, 4, 5)]
    yours = _call(delta, "delta", nn.softmax(Z), Y)
    if yours is None:
        return False
    reference = numerical_grad(lambda: nn.cross_entropy(nn.log_softmax(Z), Y), Z)
    return _verdict("delta", yours, reference, "finite differences of the loss")


def check_layer_backward(layer_backward):
    """Exercise: layer_backward(delta, a_prev, W, f_prime) -> (nabla_W, nabla_b, delta_prev).

    Checked on the output layer (l = 2) of a tanh network: nabla_W and nabla_b against finite
    differences of W^2 and b^2; delta_prev through the gradient it gives the first layer, X^T delta_prev.
    """
    model, X, Y = tiny_network()
    P = model.forward(X)
    A1, (W1, _, W2, b2) = model.activations[1], model.params
    out = _call(layer_backward, "layer_backward", nn.softmax_cross_entropy_grad(P, Y), A1, W2.copy(), nn.tanh_prime)
    if out is None:
        return False
    if not (isinstance(out, tuple) and len(out) == 3):
        print(f"not yet: layer_backward should return a tuple (nabla_W, nabla_b, delta_prev), got {type(out).__name__}")
        return False
    loss = lambda: model.loss_and_grads(X, Y)[0]  # noqa: E731
    nabla_W, nabla_b, delta_prev = out
    ok = (_verdict("nabla_W", nabla_W, numerical_grad(loss, W2), "finite differences of the loss", quiet=True)
          and _verdict("nabla_b", nabla_b, numerical_grad(loss, b2), "finite differences of the loss", quiet=True)
          and _verdict("(X.T @ delta_prev)", X.T @ np.asarray(delta_prev), numerical_grad(loss, W1),
                       "finite differences of the first layer's weights", quiet=True))
    if ok:
        print("correct: nabla_W, nabla_b and delta_prev all match finite differences of the loss")
    return ok


def check_momentum_step(momentum_step):
    """Exercise: momentum_step(theta, v, nabla, lr, mu) -> (new theta, new v), as training.SGD does.

    Five steps on a fixed sequence of gradients, compared with SGD(momentum=mu) after each one;
    the verdict names the first step that differs.
    """
    rng = np.random.default_rng(2)
    theta, v, lr, mu = rng.standard_normal(4), np.zeros(4), 0.1, 0.9
    reference = [theta.copy()]
    opt = training.SGD(reference, momentum=mu)
    for step in range(1, 6):
        nabla = rng.standard_normal(4)
        out = _call(momentum_step, "momentum_step", theta.copy(), v.copy(), nabla.copy(), lr, mu)
        if out is None:
            return False
        if not (isinstance(out, tuple) and len(out) == 2):
            print(f"not yet: momentum_step should return a tuple (theta, v), got {type(out).__name__}")
            return False
        theta, v = (np.asarray(x, dtype=float) for x in out)
        opt.step([nabla], lr)
        if np.shape(theta) != (4,) or not np.allclose(theta, reference[0], rtol=1e-12, atol=0):
            return _verdict("theta", theta, reference[0], f"training.SGD after step {step}", tol=1e-12)
    print("correct: theta matches training.SGD after each of 5 steps")
    return True


def activation_spread(std, depth=10, width=256, activation="relu", n=500, seed=0):
    """Std of the activations after each of `depth` layers of width `width`, weights N(0, std(d_in)^2).

    std: a number, or a function of d_in (e.g. He: lambda d: np.sqrt(2 / d)). Returns (depth,) floats.
    """
    rng = np.random.default_rng(seed)
    f = nn.ACTIVATIONS[activation][0]
    a, spread = rng.standard_normal((n, width)), []
    for _ in range(depth):
        s = std(width) if callable(std) else std
        a = f(a @ (rng.standard_normal((width, width)) * s))
        spread.append(float(a.std()))
    return np.array(spread)


def check_spread_prediction(answer, std=0.1):
    """Exercise: predict what ten ReLU layers do to the spread of activations when every weight
    has standard deviation `std`: 'grows', 'shrinks' or 'steady' (layer 10 within 2x of layer 1)."""
    if answer not in ("grows", "shrinks", "steady"):
        raise ValueError(f"answer must be 'grows', 'shrinks' or 'steady', got {answer!r}")
    spread = activation_spread(std)
    ratio = spread[-1] / spread[0]
    truth = "grows" if ratio > 2 else "shrinks" if ratio < 0.5 else "steady"
    said = f"with std {std}, the spread goes from {spread[0]:.3g} at layer 1 to {spread[-1]:.3g} at layer 10"
    if answer != truth:
        print(f"not yet: you said {answer!r}, but {said} (x{ratio:.3g}): it {truth}")
        return False
    print(f"correct: {said} (x{ratio:.3g}): it {truth}")
    return True
