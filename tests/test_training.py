"""Training: optimisers, schedules, fit's history and errors, determinism, the baseline, saving."""
import numpy as np
import pytest

from helpers import data, experiments, model_io, nn, pipeline, training


@pytest.fixture(scope="module")
def small(mnist):
    (x_train, y_train), _ = mnist
    return (data.flatten(x_train[:2000]), y_train[:2000].astype(int),
            data.flatten(x_train[-500:]), y_train[-500:])  # 500 validation images


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
    X, y, X_valid, y_valid = small
    model = nn.MLP((784, 32, 10), seed=0)
    history = training.fit(model, X, y, X_valid, y_valid, epochs=3, batch_size=64, progress=False,
                           **{"lr": 0.1, **kwargs})
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["valid_acc"][-1] > 0.8
    assert list(history) == ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "seconds"]
    assert history["epoch"] == [1, 2, 3] and np.all(np.diff(history["seconds"]) > 0)


def test_weight_decay_shrinks_weights_not_biases():
    model = nn.MLP((4, 3, 2), seed=0)
    W, b = model.params[0].copy(), model.params[1].copy() + 1
    model.params[1][:] = b
    sgd = training.SGD(model.params, weight_decay=0.5, decay=model.decay)
    sgd.step([np.zeros_like(p) for p in model.params], lr=0.1)
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
    ((np.zeros((5, 784)), np.zeros(5, int), np.zeros((2, 784)), np.array([0, -1])), {}, "y_valid must lie in"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(optimizer="rmsprop"), "optimizer must be"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(epochs=0), "epochs and batch_size must be >= 1"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(schedule="warm"), "schedule must be"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(lr=float("nan")), r"lr must be a finite number > 0, got nan"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(lr=-1), r"lr must be a finite number > 0, got -1"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(lr=0), r"lr must be a finite number > 0, got 0"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(lr=float("inf")), r"lr must be a finite number > 0, got inf"),
    ((np.zeros((5, 784)), np.zeros(5, int)), dict(lr="fast"), r"lr must be a finite number > 0, got 'fast'"),
])
def test_fit_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.fit(nn.MLP((784, 4, 10)), *args, progress=False, **kwargs)


def test_the_original_baseline_reaches_about_90_percent_on_its_samples(mnist):
    run = pipeline.train_recipe("baseline", mnist, progress=False, curves=False)
    metrics, history = run["metrics"], run["history"]
    assert metrics["n_train"] == 1000 and 0.87 <= metrics["train_accuracy"] <= 0.96
    assert metrics["valid_accuracy"] < metrics["train_accuracy"]  # 1,000 samples do not generalise fully
    assert metrics["test_accuracy"] is None  # measured only by test_once
    assert len(history["epoch"]) == 1000 and np.isnan(history["valid_acc"]).all()
    assert pipeline.test_once(run, mnist) == metrics["test_accuracy"] < metrics["train_accuracy"]


class Untouchable:
    """Stands in for the test arrays: any use of them fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test images were read ({name})")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the test images were read (__array__)")

    def __getitem__(self, key):
        raise AssertionError("the test images were read (__getitem__)")

    def __len__(self):
        raise AssertionError("the test images were read (__len__)")


def test_training_never_reads_the_test_images(mnist):
    (x_train, y_train), _ = mnist
    sealed = ((x_train, y_train), (Untouchable(), Untouchable()))
    recipe = {**pipeline.RECIPES["default"], "epochs": 1, "n_train": 2000}
    run = pipeline.train_recipe(recipe, sealed, progress=False)
    assert run["metrics"]["n_train"] == 2000 and run["metrics"]["valid_accuracy"] > 0.5  # chance: 0.1
    assert run["history"]["valid_acc"][0] == run["metrics"]["valid_accuracy"]  # validation after the epoch
    final = pipeline.train_recipe(recipe, sealed, progress=False, final=True)
    assert final["metrics"]["valid_accuracy"] is None
    runs = experiments.try_seeds(recipe, sealed, seeds=(0, 1))
    assert [r["config"]["seed"] for r in runs] == [0, 1]
    with pytest.raises(AssertionError, match="the test images were read"):
        pipeline.test_once(run, sealed)  # the stand-in works: measuring the test set does read it


def test_validation_is_the_last_10000_training_images(mnist):
    (x_train, y_train), _ = mnist
    (x_fit, y_fit), (x_valid, y_valid) = data.split_validation(x_train, y_train)
    assert x_fit.shape == (50000, 28, 28) and x_valid.shape == (10000, 28, 28) and y_valid.shape == (10000,)
    assert np.array_equal(x_valid, x_train[50000:]) and np.array_equal(y_fit, y_train[:50000])
    with pytest.raises(ValueError, match="n_valid must lie in"):
        data.split_validation(x_train[:10], y_train[:10], n_valid=10)


def test_a_blow_up_on_the_last_step_is_caught(small):
    X, y, _, _ = small
    model = nn.MLP((784, 8, 10), seed=0)
    # One full-batch step with a huge learning rate: the loss before it is finite, the weights after it are not.
    with pytest.raises(training.TrainingDiverged, match="some weights are not finite after epoch 1"):
        with np.errstate(all="ignore"):
            training.fit(model, X, y, epochs=1, batch_size=None, lr=1e300, progress=False)


def test_table_sets_seeds_side_by_side_and_flags_changes_inside_the_spread():
    def run(acc, n=50000):
        return {"metrics": {"valid_accuracy": acc, "train_accuracy": 1.0, "n_train": n, "train_seconds": 1.0}}
    t = experiments.table({"a": [run(0.90), run(0.92)], "b": [run(0.93), run(0.935)], "c": [run(0.97), run(0.97)]})
    assert list(t.index) == ["a", "b", "c"]
    assert t.loc["a", "valid mean"] == 91.0 and t.loc["a", "valid min"] == 90.0 and t.loc["a", "valid max"] == 92.0
    assert t.loc["b", "change"] == pytest.approx(2.25) and t.loc["b", "beyond spread"] == "yes"
    assert t.loc["c", "beyond spread"] == "yes"
    t = experiments.table({"a": [run(0.90), run(0.92)], "b": [run(0.905), run(0.915)]})
    assert t.loc["b", "change"] == 0.0 and t.loc["b", "beyond spread"] == "no"


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
    arrays["W2"] = np.zeros((16, 10), np.float32)
    del arrays["activation"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(model_io.ModelFileError, match="partial.npz: not a model file"):
        model_io.load_model(tmp_path / "partial.npz")


def test_change_prints_the_diff_and_rejects_a_setting_that_does_not_exist(capsys):
    recipes = {"baseline": pipeline.RECIPES["baseline"]}
    recipe = experiments.change(recipes, "momentum", "baseline", momentum=0.9, lr=0.05)
    assert capsys.readouterr().out == "momentum = baseline, with momentum: 0.0 -> 0.9, lr: 0.5 -> 0.05\n"
    assert recipes["momentum"] is recipe and recipe == {**pipeline.RECIPES["baseline"], "momentum": 0.9, "lr": 0.05}
    assert pipeline.RECIPES["baseline"]["lr"] == 0.5  # the base recipe is not modified
    with pytest.raises(KeyError, match=r"\['weight_dacay'\] are not recipe settings"):
        experiments.change(recipes, "typo", "baseline", weight_dacay=1e-4)
    assert "typo" not in recipes


def test_validation_every_few_epochs_leaves_the_others_unmeasured(small):
    X, y, X_valid, y_valid = small
    history = training.fit(nn.MLP((784, 8, 10), seed=0), X[:300], y[:300], X_valid, y_valid, epochs=5,
                           valid_every=2, progress=False)
    measured = [not np.isnan(a) for a in history["valid_acc"]]
    assert measured == [False, True, False, True, True]  # every 2nd epoch, and always the last
    assert all(np.isnan(history["valid_loss"][i]) != m for i, m in enumerate(measured))


def test_seeds_trained_side_by_side_equal_seeds_trained_one_after_another(mnist):
    recipe = {**pipeline.RECIPES["default"], "epochs": 1, "n_train": 3000}
    apart = experiments.try_seeds(recipe, mnist, seeds=(2, 0, 1), name="apart", curves=False)  # a process each
    here = experiments.try_seeds(recipe, mnist, seeds=(2, 0, 1), name="here", curves=False, processes=1)
    assert [r["config"]["seed"] for r in apart] == [2, 0, 1]
    for a, b in zip(apart, here):
        assert all(np.array_equal(p, q) for p, q in zip(a["model"].params, b["model"].params))
        assert a["metrics"]["valid_accuracy"] == b["metrics"]["valid_accuracy"]
    assert not np.array_equal(apart[0]["model"].params[0], apart[1]["model"].params[0])  # seeds differ


def test_an_error_in_a_worker_reaches_the_caller_and_the_next_call_still_works(mnist):
    bad = {**pipeline.RECIPES["default"], "epochs": 1, "n_train": 500, "lr": 1e30}
    with pytest.raises(training.TrainingDiverged, match="try a smaller learning rate than 1e"):
        experiments.try_seeds(bad, mnist, seeds=(0, 1), curves=False)
    runs = experiments.try_seeds({**bad, "lr": 0.1}, mnist, seeds=(0, 1), curves=False)
    assert [r["config"]["seed"] for r in runs] == [0, 1]


def test_a_sweep_trains_each_value_like_try_seeds_and_reuses_the_known_runs(mnist):
    recipe = {**pipeline.RECIPES["default"], "epochs": 1, "n_train": 1000, "augment": False}
    known = experiments.try_seeds(recipe, mnist, seeds=(0, 1), curves=False)
    swept = experiments.sweep(recipe, mnist, "lr", [0.05, 0.1], seeds=(0, 1), known=known)
    assert list(swept) == [0.05, 0.1] and swept[0.1] is known  # recipe's own lr is 0.1
    alone = experiments.try_seeds({**recipe, "lr": 0.05}, mnist, seeds=(0, 1), curves=False)
    for a, b in zip(swept[0.05], alone):
        assert a["config"] == b["config"] and a["config"]["lr"] == 0.05
        assert all(np.array_equal(p, q) for p, q in zip(a["model"].params, b["model"].params))


def test_a_convnet_recipe_goes_through_the_same_protocol_as_an_mlp(mnist, tmp_path):
    (x_train, y_train), _ = mnist
    sealed = ((x_train, y_train), (Untouchable(), Untouchable()))
    training_settings = {k: v for k, v in pipeline.RECIPES["default"].items() if k not in pipeline.MODEL_KEYS}
    recipes = {"conv": {**training_settings, "kind": "conv", "channels": (4,), "kernel": 5, "hidden": (16,),
                        "padding": 0, "augment": False, "n_train": 2000}}
    conv = experiments.change(recipes, "conv 2 epochs", "conv", epochs=2)
    run = pipeline.train_recipe(conv, sealed, seed=1, progress=False)
    model = run["model"]
    assert model.architecture == {"kind": "conv", "channels": [4], "kernel": 5, "hidden": [16], "padding": 0}
    assert run["metrics"]["n_train"] == 2000 and run["metrics"]["valid_accuracy"] > 0.5  # chance: 0.1
    again = pipeline.train_recipe(conv, sealed, seed=1, progress=False)
    assert all(np.array_equal(p, q) for p, q in zip(model.params, again["model"].params))  # seeded
    run_id = pipeline.save_run(tmp_path / "db.sqlite", run, mnist)
    path = model_io.save_model(model, tmp_path / "conv.npz")
    assert run_id == 1 and model_io.load_model(path).architecture == model.architecture
