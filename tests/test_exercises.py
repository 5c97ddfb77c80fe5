"""Every exercise checker accepts the solution and rejects a wrong answer with a precise message."""
import re

import numpy as np
import pytest

from helpers import exercises as ex


def tanh_prime(a):
    return 1 - a * a


def nabla_b(delta):
    return delta.sum(axis=0)


def softmax_ce_delta(P, Y):
    return (P - Y) / len(Y)


def layer_backward(delta, a_prev, W, f_prime):
    return a_prev.T @ delta, delta.sum(axis=0), (delta @ W.T) * f_prime(a_prev)


def momentum_step(theta, v, nabla, lr, mu):
    v = mu * v + nabla
    return theta - lr * v, v


SOLUTIONS = [(ex.check_tanh_prime, tanh_prime), (ex.check_bias_gradient, nabla_b),
             (ex.check_softmax_ce_delta, softmax_ce_delta), (ex.check_layer_backward, layer_backward),
             (ex.check_momentum_step, momentum_step), (ex.check_spread_prediction, "grows")]


@pytest.mark.parametrize("check, solution", SOLUTIONS, ids=[c.__name__ for c, _ in SOLUTIONS])
def test_the_solution_is_accepted(check, solution, capsys):
    assert check(solution) is True
    assert capsys.readouterr().out.startswith("correct: ")


WRONG = [
    (ex.check_tanh_prime, lambda a: 1 - a, r"tanh_prime\(tanh\(z\)\)\[0\] is 1\.99505, expected 0\.00986"),
    (ex.check_bias_gradient, lambda d: d.mean(axis=0), r"nabla_b\[\d\] is .* expected .* finite differences"),
    (ex.check_softmax_ce_delta, lambda P, Y: P - Y, r"delta\[\d, \d\] is .* \(off by .*, relative error"),
    (ex.check_layer_backward, lambda d, a, W, fp: (a.T @ d, d.sum(axis=0), d @ W.T),  # forgot f'
     r"\(X\.T @ delta_prev\)\[\d, \d\] is .* first layer's weights"),
    (ex.check_layer_backward, lambda d, a, W, fp: (a.T @ d, d.mean(axis=0), (d @ W.T) * fp(a)),
     r"nabla_b\[\d\] is"),
    (ex.check_momentum_step, lambda t, v, g, lr, mu: (t - lr * (mu * v + (1 - mu) * g), mu * v + (1 - mu) * g),
     r"theta\[\d\] is .* from training\.SGD after step 1"),
    (ex.check_spread_prediction, "steady", r"you said 'steady', but with std 0\.1, .* it grows"),
]


@pytest.mark.parametrize("check, wrong, message", WRONG, ids=[c.__name__ for c, _, _ in WRONG])
def test_a_wrong_answer_is_rejected_with_where_and_by_how_much(check, wrong, message, capsys):
    assert check(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("not yet: ")
    assert len(out.strip().splitlines()) == 1
    assert re.search(message, out), out


def test_wrong_shape_non_finite_and_wrong_return_type_are_named(capsys):
    assert not ex.check_bias_gradient(lambda d: d.sum(axis=1))
    assert "nabla_b has shape (7,), but it should be (4,)" in capsys.readouterr().out
    assert not ex.check_tanh_prime(lambda a: np.full_like(a, np.nan))
    assert "tanh_prime(tanh(z)) holds nan at entry (0,)" in capsys.readouterr().out
    assert not ex.check_layer_backward(lambda d, a, W, fp: a.T @ d)
    assert "should return a tuple (nabla_W, nabla_b, delta_prev), got ndarray" in capsys.readouterr().out
    assert not ex.check_momentum_step(lambda t, v, g, lr, mu: t)
    assert "should return a tuple (theta, v), got ndarray" in capsys.readouterr().out


def test_an_exception_in_the_answer_is_a_verdict_not_a_crash(capsys):
    assert not ex.check_softmax_ce_delta(lambda P, Y: P @ Y)
    assert capsys.readouterr().out.startswith("not yet: delta raised ValueError: matmul")


def test_a_checker_rejects_what_is_not_an_answer():
    with pytest.raises(TypeError, match="tanh_prime must be a function, got float"):
        ex.check_tanh_prime(0.5)
    with pytest.raises(ValueError, match="answer must be 'grows', 'shrinks' or 'steady', got 'up'"):
        ex.check_spread_prediction("up")


def test_activation_spread_separates_the_three_initialisations():
    naive, xavier, he = (ex.activation_spread(s) for s in (0.01, lambda d: np.sqrt(1 / d), lambda d: np.sqrt(2 / d)))
    assert naive[-1] < 1e-6 * naive[0]  # each layer multiplies the spread by about 0.11
    assert xavier[-1] < 0.1 * xavier[0]  # by about 1/sqrt(2): ReLU halves the variance
    assert 0.5 < he[-1] / he[0] < 2
