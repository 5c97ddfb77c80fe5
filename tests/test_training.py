"""Training: optimisers, schedules, fit's history and errors, determinism, the baseline, saving."""
import numpy as np
import pytest

from helpers import data, model_io, nn, pipeline, training


@pytest.fixture(scope="module")
def small(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return data.flatten(x_train[:2000]), y_train[:2000].astype(int), data.flatten(x_test[:500]), y_test[:500]


def test_schedules():
    assert training.lr_at("constant", 0.1, 50, 100) == 0.1
    assert training.lr_at("cosine", 0.1, 0, 100) == 0.1
    assert training.lr_at("cosine", 0.1, 50, 100) == pytest.approx(0.05)
    assert training.lr_at("cosine", 0.1, 100, 100) == pytest.approx(0.0)
    assert [training.lr_at("step", 1.0, s, 100) for s in (0, 49, 50, 75)] == pytest.approx([1, 1, 0.1, 0.01])
    with pytest.raises(ValueError, match="schedule must be"):
        training.lr_at("linear", 0.1, 0, 10)


@pytest.mark.parametrize("kwargs", [dict(optimizer="sgd"), dict(optimizer="sgd", momentum=0.9),
                                    dict(optimizer="adam", lr=1e-3), dict(optimizer="sgd", weight_decay=1e-3)])
def test_every_optimiser_learns(small, kwargs):
    X, y, X_test, y_test = small
    model = nn.MLP((784, 32, 10), seed=0)
    history = training.fit(model, X, y, X_test, y_test, epochs=3, batch_size=64, progress=False,
                           **{"lr": 0.1, **kwargs})
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["test_acc"][-1] > 0.8
    assert list(history) == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    assert history["epoch"] == [1, 2, 3] and np.all(np.diff(history["seconds"]) > 0)


def test_weight_decay_shrinks_weights_not_biases():
    model = nn.MLP((4, 3, 2), seed=0)
    W, b = model.params[0].copy(), model.params[1].copy() + 1
    model.params[1][:] = b
    training.SGD(model.params, weight_decay=0.5).step([np.zeros_like(p) for p in model.params], lr=0.1)
    np.testing.assert_allclose(model.params[0], W * 0.95, rtol=1e-6)
    np.testing.assert_array_equal(model.params[1], b)


def test_same_seed_gives_bit_identical_weights(small):
    X, y, _, _ = small
    runs = []
    for _ in range(2):
        model = nn.MLP((784, 32, 10), seed=7)
        training.fit(model, X, y, epochs=2, batch_size=100, momentum=0.9, augment=True, seed=7, progress=False)
        runs.append(model.params)
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    other = nn.MLP((784, 32, 10), seed=7)
    training.fit(other, X, y, epochs=2, batch_size=100, momentum=0.9, augment=True, seed=8, progress=False)
    assert not np.array_equal(other.params[0], runs[0][0])


def test_divergence_stops_with_a_clear_error(small):
    X, y, _, _ = small
    model = nn.MLP((784, 32, 10), seed=0)
    message = r"at epoch 1, batch \d+: try a smaller learning rate than 1e\+30"
    with pytest.raises(training.TrainingDiverged, match=message):
        with np.errstate(all="ignore"):
            training.fit(model, X, y, epochs=2, lr=1e30, progress=False)


@pytest.mark.parametrize("args, kwargs, message", [
    ((np.zeros((5, 28, 28)), np.zeros(5, int)), {}, r"X must have shape \(n, 784\)"),
    ((np.zeros((5, 784)), np.zeros(4, int)), {}, r"y_train must be integer labels of shape \(5,\)"),
    ((np.zeros((5, 784)), np.zeros(5)), {}, "y_train must be integer labels"),
    ((np.zeros((5, 784)), np.full(5, 10)), {}, r"y_train must lie in \[0, 10\)"),
    ((np.zeros((5, 784)), np.zeros(5, int), np.zeros((2, 784)), np.array([0, -1])), {}, "y_test must lie in"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(optimizer="rmsprop"), "optimizer must be"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(epochs=0), "epochs and batch_size must be >= 1"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(schedule="warm"), "schedule must be"),
])
def test_fit_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.fit(nn.MLP((784, 4, 10)), *args, progress=False, **kwargs)


def test_the_original_baseline_reaches_about_90_percent_on_its_samples(mnist):
    run = pipeline.train_recipe("baseline", mnist, progress=False, eval_test_each_epoch=False)
    metrics, history = run["metrics"], run["history"]
    assert 0.87 <= metrics["train_accuracy"] <= 0.96
    assert metrics["test_accuracy"] < metrics["train_accuracy"]  # 1,000 samples do not generalise fully
    assert len(history["epoch"]) == 1000 and np.isnan(history["test_acc"]).all()


def test_save_and_load_round_trip(tmp_path, small):
    X = small[0][:10]
    model = nn.MLP((784, 16, 8, 10), "tanh", "mse", seed=4)
    path = model_io.save_model(model, tmp_path / "sub" / "m.npz")
    loaded = model_io.load_model(path, sizes=(784, 16, 8, 10))
    assert (loaded.sizes, loaded.activation, loaded.loss) == (model.sizes, "tanh", "mse")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.npz"]


def test_load_rejects_missing_damaged_and_mismatched_files(tmp_path):
    with pytest.raises(model_io.ModelFileError, match="no saved model here. Train one first"):
        model_io.load_model(tmp_path / "none.npz")
    path = model_io.save_model(nn.MLP((784, 16, 10)), tmp_path / "m.npz")
    with pytest.raises(model_io.ModelFileError, match=r"holds a network of sizes \(784, 16, 10\), expected"):
        model_io.load_model(path, sizes=(784, 32, 10))
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(path.read_bytes()[:300])
    with pytest.raises(model_io.ModelFileError, match="damaged.npz: not a model file"):
        model_io.load_model(damaged)
    with np.load(path) as f:
        arrays = dict(f)
    arrays["W2"] = np.zeros((17, 10), np.float32)
    np.savez(tmp_path / "shape.npz", **arrays)
    with pytest.raises(model_io.ModelFileError, match=r"W2 has shape \(17, 10\)"):
        model_io.load_model(tmp_path / "shape.npz")
    del arrays["activation"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(model_io.ModelFileError, match="partial.npz: not a model file"):
        model_io.load_model(tmp_path / "partial.npz")
