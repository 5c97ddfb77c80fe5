"""Convolutional layers and ConvNet: gradients against finite differences, the convolution against a
loop, input checks, seeding, and training through training.fit."""
import numpy as np
import pytest

from helpers import data, exercises, images, layers, training
from helpers.convnet import ConvNet


def relative_error(a, b):
    """Largest elementwise |a - b| / (|a| + |b|), as in test_nn.py (1e-8 floor for entries that are both ~0)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))


def numerical_grad(f, x):
    return exercises.numerical_grad(f, x, eps=1e-5)  # the exercises' checker, central differences


def check_layer(layer, x, seed=1):
    """Worst relative error of backward's dx and param gradients, for loss = sum(forward(x) * R), R random."""
    R = np.random.default_rng(seed).standard_normal(layer.forward(x).shape)
    dx = layer.backward(R.copy())
    loss = lambda: float(np.sum(layer.forward(x) * R))  # noqa: E731
    errors = [relative_error(dx, numerical_grad(loss, x))]
    errors += [relative_error(g, numerical_grad(loss, p)) for g, p in zip(layer.grads, layer.params)]
    return max(errors)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("c_in, c_out, k, padding, h, w", [
    (1, 1, 3, 0, 6, 5), (1, 4, 3, 1, 6, 6), (3, 2, 3, 0, 7, 6), (3, 4, 5, 2, 6, 7), (2, 3, 1, 0, 4, 4)])
def test_conv_gradients_match_finite_differences(c_in, c_out, k, padding, h, w):
    conv = layers.Conv2D(c_in, c_out, k, padding, rng=0, dtype=np.float64)
    conv.b[:] = rand(c_out, seed=2)  # biases of zero would hide a wrong bias gradient less well
    assert check_layer(conv, rand(2, c_in, h, w)) < 1e-6


def naive_conv(x, W, b, k, p):
    """The definition, one output pixel at a time: out[n, o, y, x] = b[o] + sum over c, i, j."""
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    n, c, h, w = x.shape
    filters = W.T.reshape(-1, k, k, c).transpose(0, 3, 1, 2)  # (c_out, c, k, k)
    out = np.zeros((n, len(filters), h - k + 1, w - k + 1))
    for s in range(n):
        for o in range(len(filters)):
            for y in range(h - k + 1):
                for xx in range(w - k + 1):
                    out[s, o, y, xx] = np.sum(x[s, :, y:y + k, xx:xx + k] * filters[o]) + b[o]
    return out


@pytest.mark.parametrize("c_in, c_out, k, padding", [(1, 3, 3, 0), (3, 2, 3, 1), (2, 4, 5, 2), (2, 2, 1, 0)])
def test_conv_forward_equals_a_loop(c_in, c_out, k, padding):
    conv = layers.Conv2D(c_in, c_out, k, padding, rng=3, dtype=np.float64)
    conv.b[:] = rand(c_out, seed=4)
    x = rand(2, c_in, 9, 8)
    np.testing.assert_allclose(conv.forward(x), naive_conv(x, conv.W, conv.b, k, padding), rtol=1e-12, atol=1e-12)


def test_conv_first_layer_skips_the_input_gradient_but_not_its_params():
    conv = layers.Conv2D(1, 2, 3, 0, rng=0, dtype=np.float64)
    conv.input_grad = False
    x = rand(2, 1, 5, 5)
    assert conv.backward(np.ones_like(conv.forward(x))) is None
    np.testing.assert_allclose(conv.grads[1], [2 * 9, 2 * 9])  # db: the sum of dout over images and pixels


@pytest.mark.parametrize("shape", [(2, 3, 6, 4), (1, 2, 5, 7)])  # even sides, and odd ones (last row dropped)
def test_maxpool_gradient_matches_finite_differences(shape):
    assert check_layer(layers.MaxPool2D(2), rand(*shape)) < 1e-6


def test_maxpool_forward_and_ties_go_to_the_first_maximum():
    x = np.array([[[[1, 5, 2, 2, 9], [3, 4, 2, 2, 9], [0, 0, 0, 0, 9]]]], np.float64)  # (1, 1, 3, 5)
    pool = layers.MaxPool2D(2)
    np.testing.assert_array_equal(pool.forward(x), [[[[5, 2]]]])
    dx = pool.backward(np.array([[[[10.0, 20.0]]]]))
    want = np.zeros_like(x)
    want[0, 0, 0, 1], want[0, 0, 0, 2] = 10, 20  # a four-way tie: all of it to the top-left one
    np.testing.assert_array_equal(dx, want)


def test_dense_relu_and_flatten_gradients_match_finite_differences():
    dense = layers.Dense(6, 4, rng=0, dtype=np.float64)
    dense.b[:] = rand(4, seed=5)
    assert check_layer(dense, rand(3, 6)) < 1e-6
    x = rand(3, 2, 4, 5)
    x[np.abs(x) < 1e-3] = 0.5  # no input within a finite-difference step of the kink at 0
    assert check_layer(layers.ReLU(), x) < 1e-6
    assert check_layer(layers.Flatten(), rand(3, 2, 4, 5)) < 1e-6


def test_dense_reuses_the_mlp_initialisation():
    from helpers import nn
    assert np.array_equal(layers.Dense(784, 50, rng=7).W, nn.init_weights(np.random.default_rng(7), 784, 50,
                                                                           "relu", np.float32))


def net_grads_error(model, X, Y, entries=40, seed=0):
    """Worst relative error over every param, at `entries` random positions of each (all, if fewer):
    one finite difference costs two passes through the whole network."""
    _, grads = model.loss_and_grads(X, Y)
    rng, worst = np.random.default_rng(seed), 0.0
    for g, p in zip(grads, model.params):
        flat = p.reshape(-1)  # a view: changing it changes the param
        picked = rng.permutation(flat.size)[:entries]
        for i in picked:
            old = flat[i]
            flat[i] = old + 1e-5
            plus = model.loss_and_grads(X, Y)[0]
            flat[i] = old - 1e-5
            minus = model.loss_and_grads(X, Y)[0]
            flat[i] = old
            numerical = (plus - minus) / 2e-5
            worst = max(worst, relative_error(g.reshape(-1)[i], numerical))
    return worst


@pytest.mark.parametrize("kwargs", [dict(channels=(2, 3), kernel=3, hidden=5, padding=0),
                                    dict(channels=(2,), kernel=5, hidden=(), padding=2),
                                    dict(channels=3, kernel=3, hidden=(4, 3), padding=1)])
def test_convnet_gradients_match_finite_differences(kwargs):
    rng = np.random.default_rng(0)
    model = ConvNet(**kwargs, seed=1, dtype=np.float64)
    for p in model.params[1::2]:
        p[:] = 0.1 * rng.standard_normal(p.shape)
    X, Y = rng.random((3, 28, 28)), data.one_hot(np.array([1, 7, 3]), 10, np.float64)
    assert net_grads_error(model, X, Y) < 1e-6


def test_convnet_splits_large_batches_without_changing_the_result():
    rng = np.random.default_rng(0)
    model = ConvNet(channels=(2,), kernel=3, hidden=4, seed=0, dtype=np.float64)
    X, Y = rng.random((7, 784)), data.one_hot(rng.integers(0, 10, 7), 10, np.float64)
    loss, grads = model.loss_and_grads(X, Y)
    proba, evaluated = model.predict_proba(X), training.evaluate(model, X, Y.argmax(axis=1))
    model.max_batch = 3  # chunks of 3, 3 and 1 images
    loss3, grads3 = model.loss_and_grads(X, Y)
    assert loss3 == pytest.approx(loss, rel=1e-12) and evaluated[0] == pytest.approx(loss, rel=1e-12)
    assert training.evaluate(model, X, Y.argmax(axis=1)) == pytest.approx(evaluated, rel=1e-12)
    for g, g3 in zip(grads, grads3):
        np.testing.assert_allclose(g3, g, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.predict_proba(X), proba, rtol=1e-12)
    with pytest.raises(RuntimeError, match="max_batch=3"):
        model.backward(np.zeros((7, 10)))  # after a chunked forward the caches hold the last chunk only


def test_convnet_shapes_params_and_activations():
    model = ConvNet(channels=(16, 32), kernel=5, hidden=128, seed=0)
    assert model.sizes == (784, 512, 128, 10) and model.depth == 4
    assert [p.shape for p in model.params] == [(25, 16), (16,), (400, 32), (32,), (512, 128), (128,),
                                               (128, 10), (10,)]
    assert all(p.dtype == np.float32 for p in model.params)
    x = np.random.default_rng(0).random((2, 28, 28))
    proba = model.predict_proba(x)
    assert proba.shape == (2, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(x.reshape(2, 784)), proba.argmax(axis=1))
    assert [a.shape for a in model.activations] == [(2, 1, 28, 28), (2, 16, 24, 24), (2, 32, 8, 8), (2, 128),
                                                    (2, 10)]
    assert "channels=(16, 32)" in repr(model)


def test_same_seed_same_weights_and_other_seed_differs():
    a, b, c = ConvNet(seed=3), ConvNet(seed=3), ConvNet(seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    assert not np.array_equal(a.params[0], c.params[0])


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Conv2D(0, 4, 3), "c_in must be an integer >= 1"),
    (lambda: layers.Conv2D(1, 4, 2.5), "k must be an integer >= 1"),
    (lambda: layers.Conv2D(1, 4, 3, padding=-1), "padding must be an integer >= 0"),
    (lambda: layers.MaxPool2D(0), "size must be an integer >= 1"),
    (lambda: layers.Dense(True, 3), "d_in must be an integer >= 1"),
    (lambda: ConvNet(channels=()), "channels must be an integer >= 1"),
    (lambda: ConvNet(channels=(16, 0)), "channels must be"),
    (lambda: ConvNet(hidden=(128, -1)), "hidden must be"),
    (lambda: ConvNet(kernel=0), "kernel must be an integer >= 1"),
    (lambda: ConvNet(padding=1.5), "padding must be an integer >= 0"),
    (lambda: ConvNet(channels=(8, 8, 8), kernel=5), "shrink below 2x2"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_layer_inputs_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match=r"Conv2D: x must have shape \(n, 3, h, w\), got \(2, 1, 5, 5\)"):
        layers.Conv2D(3, 4, 3).forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match="smaller than the 5x5 kernel"):
        layers.Conv2D(1, 4, 5).forward(np.zeros((2, 1, 4, 8)))
    with pytest.raises(ValueError, match=r"MaxPool2D: x must have shape \(n, c, h, w\) with h, w >= 2"):
        layers.MaxPool2D(2).forward(np.zeros((2, 3, 1, 4)))
    with pytest.raises(ValueError, match=r"Dense: x must have shape \(n, 6\), got \(2, 5\)"):
        layers.Dense(6, 3).forward(np.zeros((2, 5)))


def test_bad_model_inputs_are_rejected_with_a_clear_message():
    model = ConvNet(channels=(2,), kernel=3, hidden=4)
    X = np.zeros((3, 784), np.float32)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 28, 28\) or \(n, 784\).*got \(3, 100\)"):
        model.predict(np.zeros((3, 100)))
    with pytest.raises(ValueError, match="X must have shape"):
        model.predict(np.zeros((3, 1, 28, 28)))
    bad = X.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        model.predict(bad)
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        model.predict(np.full((3, 784), "a"))
    with pytest.raises(ValueError, match=r"one-hot targets of shape \(3, 10\).*one_hot"):
        model.loss_and_grads(X, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="Y must hold finite numbers"):
        model.loss_and_grads(X, np.full((3, 10), np.inf))
    with pytest.raises(ValueError, match=r"y_train must lie in \[0, 10\)"):
        training.fit(model, X, np.array([0, 1, 10]), epochs=1, progress=False)


def test_fit_trains_a_convnet_unchanged(mnist):
    (x_train, y_train), _ = mnist
    X, y = x_train[:2000] / np.float32(255), y_train[:2000].astype(int)  # (n, 28, 28): fit flattens it
    X_valid, y_valid = data.flatten(x_train[-500:]), y_train[-500:]
    model = ConvNet(channels=(8, 16), kernel=5, hidden=64, seed=0)
    before = training.evaluate(model, model.check_inputs(X), y)[0]
    history = training.fit(model, X, y, X_valid, y_valid, epochs=1, batch_size=64, lr=0.05, momentum=0.9,
                           weight_decay=1e-4, augment=True, progress=False)
    after = training.evaluate(model, model.check_inputs(X), y)[0]
    assert after < 0.6 * before and history["valid_acc"][0] > 0.7
    assert all(p.dtype == np.float32 and np.isfinite(p).all() for p in model.params)


def test_images_read_uses_a_convnet_like_an_mlp(mnist):
    (x_train, _), _ = mnist
    model = ConvNet(channels=(2,), kernel=3, hidden=4, seed=0)
    x28, proba, hidden = images.read(model, x_train[0])
    np.testing.assert_allclose(proba, model.predict_proba(x28[None] / np.float32(255))[0], rtol=1e-6)
    assert hidden.shape == (2, 26, 26) and (hidden >= 0).all() and hidden.any()  # the first layer's feature maps


def test_forward_for_predicting_keeps_nothing_and_gives_the_same_output():
    x4, x2 = np.random.default_rng(0).standard_normal((2, 3, 6, 6)), np.random.default_rng(1).standard_normal((2, 4))
    for layer, x, cache in ((layers.Conv2D(3, 2, 3, dtype=np.float64), x4, "cols"), (layers.MaxPool2D(2), x4, "first"),
                            (layers.ReLU(), x4, "mask"), (layers.Dense(4, 3, dtype=np.float64), x2, "x")):
        out = layer.forward(x, keep=False)
        assert not hasattr(layer, cache), layer  # nothing kept for a backward pass
        np.testing.assert_array_equal(out, layer.forward(x))
        assert hasattr(layer, cache)
