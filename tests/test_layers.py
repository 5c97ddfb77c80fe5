"""Layers (layers.py, conv.py): gradients against central finite differences in float64, the
convolution against a loop, train and eval mode, dropout and batch norm's statistics, input checks."""
import numpy as np
import pytest

from helpers import conv, exercises, layers


def relative_error(a, b):
    """Largest elementwise |a - b| / (|a| + |b|), as in test_nn.py (1e-8 floor for entries that are both ~0)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))


def numerical_grad(f, x):
    return exercises.numerical_grad(f, x, eps=1e-5)  # the exercises' checker, central differences


def check_layer(layer, x, seed=1, before=lambda: None):
    """Worst relative error of backward's dx and param gradients, for loss = sum(forward(x) * R), R random.
    before() runs before every forward: a dropout layer's generator is reset there, so its mask is fixed."""
    before()
    R = np.random.default_rng(seed).standard_normal(layer.forward(x).shape)
    dx = layer.backward(R.copy())

    def loss():
        before()
        return float(np.sum(layer.forward(x) * R))

    errors = [relative_error(dx, numerical_grad(loss, x))]
    errors += [relative_error(g, numerical_grad(loss, p)) for g, p in zip(layer.grads, layer.params)]
    return max(errors)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("c_in, c_out, k, padding, stride, h, w", [
    (1, 1, 3, 0, 1, 6, 5), (1, 4, 3, 1, 1, 6, 6), (3, 2, 3, 0, 1, 7, 6), (3, 4, 5, 2, 1, 6, 7), (2, 3, 1, 0, 1, 4, 4),
    (1, 2, 3, 0, 2, 7, 7), (3, 2, 3, 1, 2, 6, 7), (2, 3, 5, 2, 2, 8, 6), (2, 2, 3, 1, 3, 7, 8)])
def test_conv_gradients_match_finite_differences(c_in, c_out, k, padding, stride, h, w):
    layer = conv.Conv2D(c_in, c_out, k, padding, rng=0, dtype=np.float64, stride=stride)
    layer.b[:] = rand(c_out, seed=2)  # biases of zero would hide a wrong bias gradient less well
    assert check_layer(layer, rand(2, c_in, h, w)) < 1e-6


def naive_conv(x, W, b, k, p, s=1):
    """The definition, one output pixel at a time: out[n, o, y, x] = b[o] + sum over c, i, j."""
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    n, c, h, w = x.shape
    filters = W.T.reshape(-1, k, k, c).transpose(0, 3, 1, 2)  # (c_out, c, k, k)
    out = np.zeros((n, len(filters), (h - k) // s + 1, (w - k) // s + 1))
    for i in range(n):
        for o in range(len(filters)):
            for y in range(out.shape[2]):
                for xx in range(out.shape[3]):
                    out[i, o, y, xx] = np.sum(x[i, :, s * y:s * y + k, s * xx:s * xx + k] * filters[o]) + b[o]
    return out


@pytest.mark.parametrize("c_in, c_out, k, padding, stride", [
    (1, 3, 3, 0, 1), (3, 2, 3, 1, 1), (2, 4, 5, 2, 1), (2, 2, 1, 0, 1), (1, 3, 3, 1, 2), (3, 2, 5, 2, 2),
    (2, 2, 3, 0, 3)])
def test_conv_forward_equals_a_loop(c_in, c_out, k, padding, stride):
    layer = conv.Conv2D(c_in, c_out, k, padding, rng=3, dtype=np.float64, stride=stride)
    layer.b[:] = rand(c_out, seed=4)
    x = rand(2, c_in, 9, 8)
    out = layer.forward(x)
    assert out.shape[2:] == (conv.out_size(9, k, padding, stride), conv.out_size(8, k, padding, stride))
    np.testing.assert_allclose(out, naive_conv(x, layer.W, layer.b, k, padding, stride), rtol=1e-12, atol=1e-12)


def test_conv_first_layer_skips_the_input_gradient_but_not_its_params():
    layer = conv.Conv2D(1, 2, 3, 0, rng=0, dtype=np.float64)
    layer.input_grad = False
    x = rand(2, 1, 5, 5)
    assert layer.backward(np.ones_like(layer.forward(x))) is None
    np.testing.assert_allclose(layer.grads[1], [2 * 9, 2 * 9])  # db: the sum of dout over images and pixels


@pytest.mark.parametrize("shape", [(2, 3, 6, 4), (1, 2, 5, 7)])  # even sides, and odd ones (last row dropped)
def test_pooling_gradients_match_finite_differences(shape):
    assert check_layer(conv.MaxPool2D(2), rand(*shape)) < 1e-6
    assert check_layer(conv.AvgPool2D(2), rand(*shape)) < 1e-6
    assert check_layer(conv.GlobalAvgPool2D(), rand(*shape)) < 1e-6


def test_maxpool_forward_and_ties_go_to_the_first_maximum():
    x = np.array([[[[1, 5, 2, 2, 9], [3, 4, 2, 2, 9], [0, 0, 0, 0, 9]]]], np.float64)  # (1, 1, 3, 5)
    pool = conv.MaxPool2D(2)
    np.testing.assert_array_equal(pool.forward(x), [[[[5, 2]]]])
    dx = pool.backward(np.array([[[[10.0, 20.0]]]]))
    want = np.zeros_like(x)
    want[0, 0, 0, 1], want[0, 0, 0, 2] = 10, 20  # a four-way tie: all of it to the top-left one
    np.testing.assert_array_equal(dx, want)


def test_average_pools_are_means():
    x = rand(2, 3, 5, 6)
    np.testing.assert_allclose(conv.AvgPool2D(2).forward(x), x[:, :, :4].reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5)))
    np.testing.assert_allclose(conv.GlobalAvgPool2D().forward(x), x.mean(axis=(2, 3)))


def test_dense_activations_and_flatten_gradients_match_finite_differences():
    dense = layers.Dense(6, 4, rng=0, dtype=np.float64)
    dense.b[:] = rand(4, seed=5)
    assert check_layer(dense, rand(3, 6)) < 1e-6
    x = rand(3, 2, 4, 5)
    x[np.abs(x) < 1e-3] = 0.5  # no input within a finite-difference step of ReLU's kink at 0
    for activation in (layers.ReLU(), layers.Sigmoid(), layers.Tanh()):
        assert check_layer(activation, x) < 1e-6, activation
    assert check_layer(layers.Flatten(), rand(3, 2, 4, 5)) < 1e-6


def test_dense_reuses_the_mlp_initialisation():
    from helpers import nn
    assert np.array_equal(layers.Dense(784, 50, rng=7).W, nn.init_weights(np.random.default_rng(7), 784, 50,
                                                                           "relu", np.float32))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 4)])
def test_dropout_gradient_matches_finite_differences_with_a_fixed_mask(shape):
    layer = layers.Dropout(0.4)

    def same_mask():
        layer.rng = np.random.default_rng(9)

    assert check_layer(layer, rand(*shape), before=same_mask) < 1e-6
    assert 0 < (layer.mask == 0).sum() < layer.mask.size  # some dropped, some kept


def test_dropout_keeps_the_expected_value_and_is_the_identity_in_eval_mode():
    x = np.ones((200, 500), np.float32)
    out = layers.Dropout(0.25, rng=0).forward(x)
    assert set(np.unique(out)) == {0, np.float32(1 / 0.75)} and out.dtype == np.float32
    assert abs((out == 0).mean() - 0.25) < 0.01 and abs(out.mean() - 1) < 0.01  # 100,000 draws
    assert layers.Dropout(0.25, rng=0).forward(x, train=False) is x
    a, b = layers.Dropout(0.5, rng=3), layers.Dropout(0.5, rng=3)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))  # a seed gives the same masks
    assert not np.array_equal(a.forward(x), layers.Dropout(0.5, rng=4).forward(x))  # another seed, another mask


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 3, 2)])  # per feature of a dense layer, per channel of a conv
def test_batchnorm_gradient_matches_finite_differences(shape):
    layer = layers.BatchNorm(4, dtype=np.float64)
    layer.gamma[:], layer.beta[:] = rand(4, seed=6), rand(4, seed=7)
    x = rand(*shape) * 3 + 1
    assert check_layer(layer, x) < 1e-6


def test_batchnorm_normalises_with_the_batch_and_keeps_running_statistics():
    x = rand(50, 3, 4, 4, seed=2) * np.array([1.0, 2.0, 0.5])[:, None, None] + np.array([0.0, 5.0, -1.0])[:, None, None]
    layer = layers.BatchNorm(3, momentum=0.1, dtype=np.float64)
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)  # var / (var + eps)
    per_channel = x.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(layer.buffers["mean"], 0.1 * per_channel.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["var"], 0.9 + 0.1 * per_channel.var(axis=1, ddof=1), rtol=1e-12)
    layer.buffers["mean"][:], layer.buffers["var"][:] = 1.0, 4.0  # eval mode: the running statistics only
    np.testing.assert_allclose(layer.forward(x[:1], train=False), (x[:1] - 1) / np.sqrt(4 + 1e-5), rtol=1e-12)


LAYERS = [  # (make(dtype), input shape): one of each kind of layer
    (lambda dtype: conv.Conv2D(3, 2, 3, dtype=dtype, stride=2), (2, 3, 6, 6)),
    (lambda dtype: conv.MaxPool2D(2), (2, 3, 6, 6)), (lambda dtype: conv.AvgPool2D(2), (2, 3, 6, 6)),
    (lambda dtype: conv.GlobalAvgPool2D(), (2, 3, 6, 6)), (lambda dtype: layers.ReLU(), (2, 3, 6, 6)),
    (lambda dtype: layers.Tanh(), (2, 4)), (lambda dtype: layers.Sigmoid(), (2, 4)),
    (lambda dtype: layers.Flatten(), (2, 3, 6, 6)), (lambda dtype: layers.Dense(4, 3, dtype=dtype), (2, 4)),
    (lambda dtype: layers.Dropout(0.5), (2, 4)), (lambda dtype: layers.BatchNorm(3, dtype=dtype), (2, 3, 6, 6)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_eval_mode_keeps_nothing_and_is_deterministic(make, shape):
    layer, x = make(np.float64), rand(*shape)
    out = layer.forward(x, train=False)
    assert all(getattr(layer, name, None) is None for name in layer.cache), layer  # nothing kept for backward
    np.testing.assert_array_equal(layer.forward(x, train=False), out)
    if not isinstance(layer, (layers.Dropout, layers.BatchNorm)):  # the others compute the same in both modes
        np.testing.assert_array_equal(layer.forward(x), out)
        assert all(hasattr(layer, name) for name in layer.cache)


@pytest.mark.parametrize("make, shape", LAYERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layer_computes_in_its_dtype(make, shape, dtype):
    layer = make(dtype)
    out = layer.forward(rand(*shape).astype(dtype))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dtype and dx.dtype == dtype and all(g.dtype == dtype for g in layer.grads), layer
    assert all(p.dtype == dtype for p in layer.params) and all(b.dtype == dtype for b in layer.buffers.values())


def _nhwc(a):
    return a.transpose(0, 2, 3, 1).flags.c_contiguous  # an NCHW view of channels-last memory


def _spy(f, name, seen):
    def spy(*args, **kw):
        out = f(*args, **kw)
        seen.append((name, args[0], out))
        return out
    return spy


def test_every_image_array_between_layers_is_channels_last_forward_and_backward():
    """The layers read and write NHWC memory; one NCHW array between them costs a strided pass (Flatten's
    gradient in NCHW order made the max-pooling backward before it 7 times slower)."""
    from helpers.convnet import ConvNet

    model = ConvNet(channels=(4, 6), hidden=8, batchnorm=True, dropout=0.3)
    seen = []
    for layer in model.layers:
        for which in ("forward", "backward"):
            setattr(layer, which, _spy(getattr(layer, which), f"{layer!r}.{which}", seen))
    model.loss_grads_and_output(rand(5, 784).astype(np.float32), np.eye(10, dtype=np.float32)[[1, 2, 3, 4, 5]])
    images = [(name, a) for name, x, out in seen for a in (x, out) if a is not None and a.ndim == 4 and a.shape[1] > 1]
    assert {name for name, _ in images} >= {"Flatten().backward", "MaxPool2D(2).backward", "BatchNorm(6).forward"}
    assert all(_nhwc(a) for _, a in images), [name for name, a in images if not _nhwc(a)]


def test_column_sums_are_the_sums_of_the_columns():
    a = rand(1000, 7)
    np.testing.assert_allclose(layers.column_sums(a), a.sum(axis=0), rtol=1e-12)
    assert layers.column_sums(a.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("make, message", [
    (lambda: conv.Conv2D(0, 4, 3), "c_in must be an integer >= 1"),
    (lambda: conv.Conv2D(1, 4, 2.5), "k must be an integer >= 1"),
    (lambda: conv.Conv2D(1, 4, 3, padding=-1), "padding must be an integer >= 0"),
    (lambda: conv.Conv2D(1, 4, 3, stride=0), "stride must be an integer >= 1"),
    (lambda: conv.MaxPool2D(0), "size must be an integer >= 1"),
    (lambda: conv.AvgPool2D(1.5), "size must be an integer >= 1"),
    (lambda: layers.Dense(True, 3), "d_in must be an integer >= 1"),
    (lambda: layers.Dropout(1.0), r"p must be a number in \[0, 1\)"),
    (lambda: layers.Dropout("0.5"), r"p must be a number in \[0, 1\)"),
    (lambda: layers.BatchNorm(0), "c must be an integer >= 1"),
])
def test_bad_layer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_layer_inputs_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match=r"Conv2D: x must have shape \(n, 3, h, w\), got \(2, 1, 5, 5\)"):
        conv.Conv2D(3, 4, 3).forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match="smaller than the 5x5 kernel"):
        conv.Conv2D(1, 4, 5).forward(np.zeros((2, 1, 4, 8)))
    with pytest.raises(ValueError, match=r"MaxPool2D: x must have shape \(n, c, h, w\) with h, w >= 2"):
        conv.MaxPool2D(2).forward(np.zeros((2, 3, 1, 4)))
    with pytest.raises(ValueError, match=r"AvgPool2D: x must have shape \(n, c, h, w\) with h, w >= 3"):
        conv.AvgPool2D(3).forward(np.zeros((2, 3, 2, 4)))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2D: x must have shape \(n, c, h, w\), got \(2, 3\)"):
        conv.GlobalAvgPool2D().forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"Dense: x must have shape \(n, 6\), got \(2, 5\)"):
        layers.Dense(6, 3).forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"BatchNorm: x must have shape \(n, 4\) or \(n, 4, h, w\), got \(2, 3\)"):
        layers.BatchNorm(4).forward(np.zeros((2, 3)))
