"""The network's math: gradients against finite differences, stability, input checks."""
import itertools
import warnings

import numpy as np
import pytest

from helpers import data, nn


def numerical_grads(model, X, Y, eps=1e-5):
    """Central finite differences of the loss with respect to every parameter entry."""
    grads = []
    for p in model.params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            plus = model.loss_and_grads(X, Y)[0]
            p[i] = old - eps
            minus = model.loss_and_grads(X, Y)[0]
            p[i] = old
            g[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def max_relative_error(a, b):
    return max(float(np.max(np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), 1e-8))) for x, y in zip(a, b))


def tiny_problem(d=5, k=4, n=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = data.one_hot(rng.integers(0, k, n), k, np.float64)
    return X, Y


@pytest.mark.parametrize("activation, loss, hidden", list(itertools.product(
    ["sigmoid", "tanh", "relu"], ["mse", "cross_entropy"], [(6,), (6, 5), (6, 5, 4)])))
def test_backprop_matches_finite_differences(activation, loss, hidden):
    X, Y = tiny_problem()
    model = nn.MLP((5, *hidden, 4), activation, loss, seed=3, dtype=np.float64)
    for i in range(1, len(model.params), 2):  # non-zero biases, so their gradients are tested too
        model.params[i][:] = np.random.default_rng(i).normal(0, 0.1, model.params[i].shape)
    _, grads = model.loss_and_grads(X, Y)
    assert [g.shape for g in grads] == [p.shape for p in model.params]
    assert max_relative_error(grads, numerical_grads(model, X, Y)) < 1e-6


def test_fused_softmax_cross_entropy_gradient_equals_the_long_chain_rule():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((8, 10)) * 3
    Y = data.one_hot(rng.integers(0, 10, 8), 10, np.float64)
    p = nn.softmax(z)
    long_way = nn.softmax_backward(p, nn.cross_entropy_grad(p, Y))
    np.testing.assert_allclose(nn.softmax_cross_entropy_grad(p, Y), long_way, atol=1e-12)
    # and the loss itself equals -mean(sum(Y log p))
    assert np.isclose(nn.cross_entropy(nn.log_softmax(z), Y), -np.mean(np.sum(Y * np.log(p), axis=1)))


def test_activation_derivatives_match_finite_differences():
    z = np.linspace(-4, 4, 81) + 0.0125  # avoid ReLU's kink at 0
    for name, (f, f_prime) in nn.ACTIVATIONS.items():
        numeric = (f(z + 1e-6) - f(z - 1e-6)) / 2e-6
        np.testing.assert_allclose(f_prime(f(z)), numeric, atol=1e-6, err_msg=name)


def test_sigmoid_softmax_and_cross_entropy_are_stable_at_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        s = nn.sigmoid(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32))
        p = nn.softmax(np.array([[1000.0, 0.0, -1000.0]]))
        loss = nn.cross_entropy(nn.log_softmax(np.array([[1000.0, 0.0, -1000.0]])), np.array([[0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(s, [0, 0, 0.5, 1, 1], atol=1e-7)
    np.testing.assert_allclose(p, [[1, 0, 0]], atol=1e-12)
    assert np.isfinite(loss) and np.isclose(loss, 2000.0)


def test_init_scales_follow_he_and_xavier():
    relu = nn.MLP((784, 2000, 10), "relu", seed=0)
    sig = nn.MLP((784, 2000, 10), "sigmoid", seed=0)
    assert abs(relu.params[0].std() / np.sqrt(2 / 784) - 1) < 0.02
    assert abs(sig.params[0].std() / np.sqrt(2 / (784 + 2000)) - 1) < 0.02
    assert relu.params[0].dtype == np.float32 and not relu.params[1].any()


def test_same_seed_same_weights_and_other_seed_differs():
    a, b, c = (nn.MLP((20, 8, 3), seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params))
    assert not np.array_equal(a.params[0], c.params[0])


def test_predict_proba_rows_are_probabilities():
    X, _ = tiny_problem(d=784, k=10, n=5)
    for loss in ("cross_entropy", "mse"):
        proba = nn.MLP((784, 16, 10), "sigmoid", loss).predict_proba(X)
        assert proba.shape == (5, 10) and np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(sizes=(784,)), "at least an input and an output"),
    (dict(sizes=(784, 0, 10)), "all >= 1"),
    (dict(sizes=(784, 10), activation="gelu"), "activation must be one of"),
    (dict(sizes=(784, 10), loss="hinge"), "loss must be"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.MLP(**kwargs)


def test_bad_inputs_are_rejected_with_a_clear_message():
    model = nn.MLP((784, 8, 10))
    X = np.zeros((3, 784), np.float32)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 784\).*flatten"):
        model.predict(np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 784\)"):
        model.predict(np.zeros((3, 100)))
    bad = X.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="finite"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"one-hot targets of shape \(3, 10\).*one_hot"):
        model.loss_and_grads(X, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="finite"):
        model.loss_and_grads(X, np.full((3, 10), np.inf))
