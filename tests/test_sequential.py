"""Models as stacks of layers (sequential.Sequential, convnet.ConvNet) and the one model interface
(nn.Classifier): whole-network gradients against finite differences, the MLP <-> Sequential bridge
bit for bit, train and eval mode, chunked batches, pickling, weight decay by role, and the results of
the recipes bit for bit as before the refactoring that made the interface one."""
import hashlib
import pickle

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from helpers import data, images, layers, models, nn, sequential, training
from helpers.convnet import ConvNet
from helpers.pipeline import MODEL_KEYS, RECIPES, prepare
from helpers.sequential import Sequential


def relative_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8)))


def net_grads_error(model, X, Y, entries=40, seed=0, before=lambda: None):
    """Worst relative error over every param, at `entries` random positions of each (all, if fewer):
    one finite difference costs two passes through the whole network. before() runs before each pass
    (it resets the dropout masks' generators, so that every pass drops the same units)."""
    before()
    _, grads = model.loss_and_grads(X, Y)
    rng, worst = np.random.default_rng(seed), 0.0

    def loss():
        before()
        return model.loss_and_grads(X, Y)[0]

    for g, p in zip(grads, model.params):
        flat = p.reshape(-1)  # a view: changing it changes the param
        for i in rng.permutation(flat.size)[:entries]:
            old = flat[i]
            flat[i] = old + 1e-5
            plus = loss()
            flat[i] = old - 1e-5
            minus = loss()
            flat[i] = old
            analytic, numerical = g.reshape(-1)[i], (plus - minus) / 2e-5
            if max(abs(analytic), abs(numerical)) < 1e-9:  # a gradient of 0 (a bias just before a batch norm,
                continue  # which subtracts it again): the finite difference is rounding noise, ~1e-11
            worst = max(worst, relative_error(analytic, numerical))
    return worst


def fixed_dropout(model):
    """before() for net_grads_error: every Dropout's generator reset to the same state."""
    drops = [layer for layer in model.layers if isinstance(layer, layers.Dropout)]
    return lambda: [setattr(d, "rng", np.random.default_rng(i)) for i, d in enumerate(drops)]


def randomise_shifts(model, seed=0):
    """Non-zero biases and batch-norm shifts, non-unit scales: zeros would hide a wrong gradient."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNorm):
            layer.gamma[:] = 1 + 0.3 * rng.standard_normal(layer.c)
        if layer.params:
            layer.params[1][:] = 0.1 * rng.standard_normal(layer.params[1].shape)


@pytest.mark.parametrize("kwargs", [dict(channels=(2, 3), kernel=3, hidden=5, padding=0),
                                    dict(channels=(2,), kernel=5, hidden=(), padding=2),
                                    dict(channels=3, kernel=3, hidden=(4, 3), padding=1),
                                    dict(channels=(2, 3), kernel=3, hidden=5, batchnorm=True, dropout=0.3, pool="avg")])
def test_convnet_gradients_match_finite_differences(kwargs):
    rng = np.random.default_rng(0)
    model = ConvNet(**kwargs, seed=1, dtype=np.float64)
    randomise_shifts(model)
    X, Y = rng.random((3, 28, 28)), data.one_hot(np.array([1, 7, 3]), 10, np.float64)
    assert net_grads_error(model, X, Y, before=fixed_dropout(model)) < 1e-6


MODERN = [  # strided convolutions, batch norm after conv and dense layers, dropout, global average pooling
    {"type": "conv", "channels": 3, "kernel": 3, "padding": 1, "stride": 2}, {"type": "batchnorm"}, {"type": "relu"},
    {"type": "conv", "channels": 4, "kernel": 3, "padding": 1}, {"type": "batchnorm"}, {"type": "tanh"},
    {"type": "avgpool", "size": 2}, {"type": "conv", "channels": 5, "kernel": 3, "stride": 2},
    {"type": "relu"}, {"type": "globalavgpool"}, {"type": "dense", "units": 6}, {"type": "batchnorm"},
    {"type": "sigmoid"}, {"type": "dropout", "p": 0.4}, {"type": "dense", "units": 10}]


def test_a_network_with_batch_norm_dropout_and_stride_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = Sequential(MODERN, (1, 12, 12), seed=2, dtype=np.float64)
    randomise_shifts(model, seed=1)
    X, Y = rng.random((4, 1, 12, 12)), data.one_hot(np.array([1, 7, 3, 3]), 10, np.float64)
    assert net_grads_error(model, X, Y, before=fixed_dropout(model)) < 1e-6
    _, grads = model.loss_and_grads(X, Y)
    assert np.abs(grads[1]).max() < 1e-15 < np.abs(grads[-1]).max()  # b1 feeds a batch norm, b8 the output
    assert [p.shape for p in model.params][:4] == [(9, 3), (3,), (3,), (3,)]  # W1, b1, gamma2, beta2
    assert model.param_names[:6] == ["W1", "b1", "gamma2", "beta2", "W3", "b3"]


def test_an_mlp_of_sequential_layers_with_mse_matches_finite_differences():
    rng = np.random.default_rng(0)
    specs = [{"type": "dense", "units": 5}, {"type": "batchnorm"}, {"type": "tanh"}, {"type": "dense", "units": 4}]
    model = Sequential(specs, (6,), loss="mse", seed=0, dtype=np.float64)
    randomise_shifts(model)
    assert net_grads_error(model, rng.random((5, 6)), data.one_hot(np.arange(5) % 4, 4, np.float64)) < 1e-6


def test_the_mlp_and_its_sequential_twin_agree_bit_for_bit():
    """MLP((784, 256, 10)) is Dense, ReLU, Dense: the same generator gives the same weights, and then
    the same probabilities and gradients, to the last bit (the same products in the same order)."""
    mlp = nn.MLP((784, 256, 10), seed=0)
    twin = Sequential([{"type": "dense", "units": 256}, {"type": "relu"}, {"type": "dense", "units": 10}], seed=0)
    assert all(np.array_equal(p, q) for p, q in zip(mlp.params, twin.params)) and len(twin.params) == 4
    X = np.random.default_rng(1).random((64, 784), dtype=np.float32)
    Y = data.one_hot(np.arange(64) % 10)
    np.testing.assert_array_equal(mlp.predict_proba(X), twin.predict_proba(X))
    (loss, grads), (twin_loss, twin_grads) = mlp.loss_and_grads(X, Y), twin.loss_and_grads(X, Y)
    assert loss == twin_loss and all(np.array_equal(g, h) for g, h in zip(grads, twin_grads))
    assert (twin.sizes, twin.depth, twin.decay, twin.param_names) == (mlp.sizes, mlp.depth, mlp.decay, mlp.param_names)
    assert [a.shape for a in twin.activations] == [a.shape for a in mlp.activations]


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
    model.forward(X)
    with pytest.raises(RuntimeError, match="max_batch=3"):
        model.backward(np.zeros((7, 10)))  # after a chunked forward the caches hold the last chunk only
    model.forward(X[:2], train=False)
    with pytest.raises(RuntimeError, match="training mode"):
        model.backward(np.zeros((2, 10)))  # an eval-mode forward kept nothing to go back through


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
    assert "batchnorm=True" in repr(ConvNet(batchnorm=True)) and "BatchNorm(16)" in repr(Sequential.__repr__(
        ConvNet(batchnorm=True)))


def test_same_seed_same_weights_and_other_seed_differs():
    a, b, c = ConvNet(seed=3), ConvNet(seed=3), ConvNet(seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    assert not np.array_equal(a.params[0], c.params[0])


def test_a_seed_gives_the_same_run_with_dropout_and_batch_norm(mnist):
    (x_train, y_train), _ = mnist
    X, y = data.flatten(x_train[:300]), y_train[:300].astype(int)
    runs = []
    for seed in (0, 0, 1):
        model = ConvNet(channels=(4,), hidden=16, batchnorm=True, dropout=0.5, seed=seed)
        training.fit(model, X, y, epochs=1, batch_size=50, lr=0.05, momentum=0.9, progress=False, seed=seed)
        runs.append(model)
    same = [np.array_equal(p, q) for p, q in zip(runs[0].params + list(runs[0].buffers.values()),
                                                 runs[1].params + list(runs[1].buffers.values()))]
    assert all(same) and not np.array_equal(runs[0].params[0], runs[2].params[0])


def test_eval_mode_predicts_each_image_alone_with_batch_norm_and_dropout(mnist):
    """predict_proba uses the running statistics and no dropout: an image's probabilities do not
    depend on the other images of its batch, nor on the call."""
    (x_train, y_train), _ = mnist
    X, y = data.flatten(x_train[:400]), y_train[:400].astype(int)
    model = ConvNet(channels=(4, 8), hidden=16, batchnorm=True, dropout=0.5, seed=0)
    training.fit(model, X, y, epochs=1, batch_size=100, lr=0.05, momentum=0.9, progress=False)
    assert not np.array_equal(model.buffers["mean2"], 0) and not np.array_equal(model.buffers["var2"], 1)
    batch = model.predict_proba(X[:50])
    np.testing.assert_allclose(model.predict_proba(X[7:8])[0], batch[7], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.predict_proba(X[:50]), batch)
    train_out = model.forward(X[:50])  # training mode: batch statistics and dropout, which differ
    assert np.abs(train_out - batch).max() > 1e-3


STRIDED = [{"type": "conv", "channels": 32, "kernel": 3, "padding": 1, "stride": 2}, {"type": "batchnorm"},
           {"type": "relu"}, {"type": "conv", "channels": 64, "kernel": 3, "padding": 1, "stride": 2},
           {"type": "batchnorm"}, {"type": "relu"}, {"type": "globalavgpool"}, {"type": "dense", "units": 128},
           {"type": "relu"}, {"type": "dropout", "p": 0.5}, {"type": "dense", "units": 10}]


@pytest.mark.parametrize("make", [lambda: nn.MLP((784, 256, 10), seed=0), lambda: ConvNet(seed=0),
                                  lambda: ConvNet(channels=(8, 16), batchnorm=True, dropout=0.3, seed=0),
                                  lambda: Sequential(STRIDED, (1, 28, 28), seed=0)])
def test_a_model_pickles_to_under_twice_its_weights_after_training_and_a_large_forward(make):
    model = make()
    X = np.random.default_rng(0).random((2000, 784), dtype=np.float32)
    weights = sum(a.nbytes for a in model.params + list(model.buffers.values()))
    sgd = training.SGD(model.params, momentum=0.9, weight_decay=1e-4, decay=model.decay)
    _, grads, _ = model.loss_grads_and_output(X[:128], data.one_hot(np.arange(128) % 10))
    sgd.step(grads, 0.01)
    model.forward(X)
    model.predict_proba(X)
    size = len(pickle.dumps(model))
    assert size < 2 * weights, f"{size:,} bytes pickled for {weights:,} bytes of weights"
    back = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(back.predict_proba(X[:5]), model.predict_proba(X[:5]))


def test_weight_decay_shrinks_weights_only_not_biases_or_batch_norm():
    model = ConvNet(channels=(2,), hidden=4, batchnorm=True, seed=0)
    before = [p.copy() for p in model.params]
    training.SGD(model.params, weight_decay=0.5, decay=model.decay).step([np.zeros_like(p) for p in model.params], 0.1)
    for name, old, new, decays in zip(model.param_names, before, model.params, model.decay):
        assert decays == name.startswith("W")
        np.testing.assert_allclose(new, old * 0.95 if decays else old, rtol=1e-6, err_msg=name)
    with pytest.raises(ValueError, match="weight_decay needs decay="):
        training.SGD(model.params, weight_decay=0.5)


@pytest.mark.parametrize("specs, shape, message", [
    ([], (784,), "non-empty list of layer specs"),
    ([{"type": "pool"}], (784,), r"layer 1: a spec must be a dict whose type is one of"),
    (["dense"], (784,), "layer 1: a spec must be a dict"),
    ([{"type": "dense", "units": 10, "size": 2}], (784,), r"layer 1 \(dense\) has no setting \['size'\]"),
    ([{"type": "dense", "units": 0}], (784,), r"layer 1 \(dense\): units must be an integer >= 1"),
    ([{"type": "dense"}], (784,), r"layer 1 \(dense\): units must be an integer >= 1, got None"),
    ([{"type": "dropout", "p": 1}, {"type": "dense", "units": 10}], (784,), r"p must be a number in \[0, 1\)"),
    ([{"type": "batchnorm", "eps": -1}, {"type": "dense", "units": 10}], (784,), "eps must be a number"),
    ([{"type": "conv", "channels": 2, "kernel": 3}], (784,), r"layer 1 \(conv\) needs images \(c, h, w\)"),
    ([{"type": "dense", "units": 10}], (1, 28, 28), r"needs a flat input.*add a flatten"),
    ([{"type": "conv", "channels": 2, "kernel": 5, "stride": 0}], (1, 28, 28), "stride must be an integer >= 1"),
    ([{"type": "conv", "channels": 2, "kernel": 9}], (1, 6, 6), r"6x6 input with padding 0 is smaller than the 9x9"),
    ([{"type": "maxpool", "size": 8}], (1, 6, 6), r"6x6 input is smaller than its 8x8 window"),
    ([{"type": "dense", "units": 10}, {"type": "relu"}], (784,), "must end with a dense layer"),
])
def test_bad_layer_specs_are_rejected_with_the_layer_named(specs, shape, message):
    with pytest.raises(ValueError, match=message):
        Sequential(specs, shape)
    if "end with a dense" not in message:  # plan checks shapes alone, as model_io does before reading a file
        with pytest.raises(ValueError, match=message):
            sequential.plan(specs, shape)


def test_sequential_of_built_layers_checks_their_shapes():
    rng = np.random.default_rng(0)
    made = [layers.Dense(784, 32, rng), layers.ReLU(), layers.Dense(32, 10, rng)]
    model = Sequential.of(made, (784,))
    assert model.sizes == (784, 32, 10) and model.predict(np.zeros((2, 784))).shape == (2,)
    with pytest.raises(ValueError, match=r"layer 3 \(Dense\(16, 10\)\) has params of shapes"):
        Sequential.of([layers.Dense(784, 32, rng), layers.ReLU(), layers.Dense(16, 10, rng)], (784,))


@pytest.mark.parametrize("make, message", [
    (lambda: ConvNet(channels=()), "channels must be an integer >= 1"),
    (lambda: ConvNet(channels=(16, 0)), "channels must be"),
    (lambda: ConvNet(hidden=(128, -1)), "hidden must be"),
    (lambda: ConvNet(kernel=0), "kernel must be an integer >= 1"),
    (lambda: ConvNet(padding=1.5), "padding must be an integer >= 0"),
    (lambda: ConvNet(channels=(8, 8, 8), kernel=5), "smaller than"),
    (lambda: ConvNet(pool="min"), "pool must be 'max' or 'avg'"),
    (lambda: ConvNet(batchnorm="yes"), "batchnorm must be true or false"),
    (lambda: ConvNet(dropout=1.5), r"p must be a number in \[0, 1\)"),
    (lambda: Sequential(MODERN, (1, 28, 28), loss="hinge"), "loss must be 'cross_entropy' or 'mse'"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_model_inputs_are_rejected_with_a_clear_message():
    model = ConvNet(channels=(2,), kernel=3, hidden=4)
    X = np.zeros((3, 784), np.float32)
    with pytest.raises(ValueError, match=r"X must have shape \(n, 28, 28\) or \(n, 784\).*got \(3, 100\)"):
        model.predict(np.zeros((3, 100)))
    assert model.predict(np.zeros((3, 1, 28, 28))).shape == (3,)  # (n, c, h, w) is an image batch too
    with pytest.raises(ValueError, match="X must have shape"):
        model.predict(np.zeros((3, 2, 28, 28)))
    bad = X.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        model.predict(bad)
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        model.predict(np.full((3, 784), "a"))
    with pytest.raises(ValueError, match=r"one-hot targets of shape \(3, 10\).*one_hot"):
        model.loss_and_grads(X, np.array([1, 2, 3]))
    for bad_y in (np.full((3, 10), np.inf), np.full((3, 10), "a")):  # the same check for every kind of model
        for m in (model, nn.MLP((784, 8, 10))):
            with pytest.raises(ValueError, match="Y must hold finite numbers"):
                m.loss_and_grads(X, bad_y)
    with pytest.raises(ValueError, match=r"y_train must lie in \[0, 10\)"):
        training.fit(model, X, np.array([0, 1, 10]), epochs=1, progress=False)


def test_fit_trains_a_convnet_with_batch_norm_and_dropout(mnist):
    (x_train, y_train), _ = mnist
    X, y = x_train[:2000] / np.float32(255), y_train[:2000].astype(int)  # (n, 28, 28): fit flattens it
    X_valid, y_valid = data.flatten(x_train[-500:]), y_train[-500:]
    model = ConvNet(channels=(8, 16), kernel=5, hidden=64, batchnorm=True, dropout=0.3, seed=0)
    before = training.evaluate(model, model.check_inputs(X), y)[0]
    history = training.fit(model, X, y, X_valid, y_valid, epochs=1, batch_size=64, lr=0.05, momentum=0.9,
                           weight_decay=1e-4, augment=True, progress=False)
    after = training.evaluate(model, model.check_inputs(X), y)[0]
    assert after < 0.6 * before and history["valid_acc"][0] > 0.8
    assert all(p.dtype == np.float32 and np.isfinite(p).all() for p in model.params)


def test_images_read_uses_any_model_through_the_interface(mnist):
    (x_train, _), _ = mnist
    for model, hidden_shape in ((ConvNet(channels=(2,), kernel=3, hidden=4, seed=0), (2, 26, 26)),
                                (ConvNet(channels=(2,), kernel=3, hidden=4, batchnorm=True, seed=0), (2, 26, 26)),
                                (nn.MLP((784, 16, 10), seed=0), (16,))):
        x28, proba, hidden = images.read(model, x_train[0])
        np.testing.assert_allclose(proba, model.predict_proba(x28.reshape(1, 784) / np.float32(255))[0], rtol=1e-6)
        assert hidden.shape == hidden_shape and (hidden >= 0).all() and hidden.any()


# The recipes' results before the refactoring (commit 6c7e2c6), one BLAS thread, recorded with the
# script this test runs: the sha256 of every param's bytes after training, and what fit reported.
# The three conv cases recorded again when the conv bias gradients became BLAS column sums
# (layers.column_sums, issue 23): a different order of additions, the losses the same to 7 digits.
BEFORE = {  # (recipe, training images, changes): (sha256[:16], last train loss, valid loss, valid accuracy)
    ("default", 3000, (("epochs", 1),)): ("0b808aefd67c96ba", 1.556854860941569, 0.8273995518684387, 0.763),
    ("conv", 1200, (("epochs", 1),)): ("160006a6428cb09c", 2.208424361546834, 1.7897844314575195, 0.458),
    ("conv", 2400, (("epochs", 1), ("batch_size", 1500))): (  # batches of 1,500: in chunks of max_batch 1,000
        "78e0fc00b14c6be1", 2.642148663600286, 2.3210158348083496, 0.249),
    ("baseline", 1000, (("epochs", 5),)): ("3fd8eabe75a5b8b8", 0.5450407862663269, 0.509899377822876, 0.131),
    ("conv-long", 600, (("epochs", 1), ("augment", True))): (  # shifts, as conv-long was when recorded
        "3a7d1c456ced8dd5", 2.6245532480875653, 1.9750479459762573, 0.437),
    ("default", 1000, (("epochs", 1), ("optimizer", "adam"), ("lr", 1e-3))): (
        "0b206396cb0a98ef", 2.1247661991119386, 1.939632773399353, 0.431),
}
RECORDED_ON = ("openblas", "Haswell", "2.4")  # BLAS, its kernels, NumPy: other kernels round differently


@pytest.mark.parametrize("case", BEFORE, ids=lambda case: f"{case[0]}-{case[1]}")
def test_the_recipes_train_to_the_same_weights_as_before_the_refactoring(case, mnist):
    name, n, changes = case
    recipe = {**RECIPES[name], **dict(changes)}
    X, y, X_valid, y_valid = prepare((mnist[0], None), n)
    with threadpool_limits(1):
        model = models.build(recipe, seed=3)
        history = training.fit(model, X, y, X_valid[:1000], y_valid[:1000], seed=3, progress=False,
                               **{k: v for k, v in recipe.items() if k not in MODEL_KEYS + ("n_train",)})
    fingerprint = hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in model.params)).hexdigest()[:16]
    got = (fingerprint, history["train_loss"][-1], history["valid_loss"][-1], history["valid_acc"][-1])
    blas = next((i for i in threadpool_info() if i["user_api"] == "blas"), {})
    if (blas.get("internal_api"), blas.get("architecture"), ".".join(np.__version__.split(".")[:2])) == RECORDED_ON:
        assert got == BEFORE[case]  # bit for bit
    else:  # another BLAS kernel sums in another order: the same up to float32 rounding, compounded by training
        assert got[1:3] == pytest.approx(BEFORE[case][1:3], rel=1e-3) and abs(got[3] - BEFORE[case][3]) <= 0.01
