"""Saving and loading models: round trip, concurrent saves, and every file that must be refused."""
import io
import json
import multiprocessing
import zipfile

import numpy as np
import pytest

from helpers import model_io
from helpers.nn import MLP


def small_model(seed=0, sizes=(784, 8, 10)):
    return MLP(sizes, seed=seed)


def write_npz(path, arrays, headers=()):
    """An .npz of arrays, plus members that hold only an .npy header (name, shape, dtype) and
    a little compressed data: what a file declaring a huge array looks like."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a)
            z.writestr(name + ".npy", buf.getvalue())
        for name, shape, dtype in headers:
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                       "shape": shape})
            z.writestr(name + ".npy", buf.getvalue() + bytes(4_000_000))  # 4 MB of zeros, deflated to 4 KB


def model_arrays(model):
    arrays = {f"{'Wb'[i % 2]}{i // 2 + 1}": p for i, p in enumerate(model.params)}
    return dict(sizes=np.array(model.sizes), activation=np.array("relu"), loss=np.array("cross_entropy"), **arrays)


def test_round_trip_leaves_no_temporary_file(tmp_path):
    model = small_model()
    model_io.save_model(model, tmp_path / "m.npz")
    loaded = model_io.load_model(tmp_path / "m.npz", inputs=784, outputs=10)
    for a, b in zip(model.params, loaded.params):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_nan_model_is_not_saved_over_a_good_one(tmp_path):
    path = model_io.save_model(small_model(), tmp_path / "m.npz")
    before = path.read_bytes()
    bad = small_model(seed=1)
    bad.params[2][3, 4] = np.nan
    with pytest.raises(model_io.ModelFileError, match=r"m.npz: not saved: W2 hold NaN or infinite"):
        model_io.save_model(bad, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_load_rejects_non_finite_weights(tmp_path):
    arrays = model_arrays(small_model())
    arrays["b1"] = np.full(8, np.inf, np.float32)
    write_npz(tmp_path / "inf.npz", arrays)
    with pytest.raises(model_io.ModelFileError, match="inf.npz: b1 holds NaN or infinite values"):
        model_io.load_model(tmp_path / "inf.npz")


def _save_many(barrier, folder, seed, trials):
    for trial in range(trials):
        barrier.wait()  # both processes start saving to this trial's path at the same moment
        for _ in range(5):
            model_io.save_model(small_model(seed, sizes=(784, 64, 10)), folder / f"m{trial}.npz")


def test_two_processes_saving_the_same_path_never_corrupt_it(tmp_path):
    # spawn, as try_seeds does (fork: unsafe with threads, and not Linux's default from Python 3.14);
    # the same two processes run every trial, since spawning one costs about a second
    ctx, trials = multiprocessing.get_context("spawn"), 10
    expected = {seed: small_model(seed, sizes=(784, 64, 10)).params[0] for seed in (0, 1)}
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_save_many, args=(barrier, tmp_path, seed, trials)) for seed in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    for trial in range(trials):
        W1 = model_io.load_model(tmp_path / f"m{trial}.npz").params[0]  # a whole file, from one of the two
        assert any(np.array_equal(W1, w) for w in expected.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"m{t}.npz" for t in range(trials))


def test_saving_to_a_folder_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(model_io.ModelFileError, match="data: is a folder; the model needs a file name"):
        model_io.save_model(small_model(), tmp_path / "data")
    assert [p.name for p in tmp_path.iterdir()] == ["data"] and not any((tmp_path / "data").iterdir())


@pytest.mark.parametrize("make, message", [
    # sizes declares a billion hidden units; the weights declare what sizes says: refused from the headers
    (lambda p: write_npz(p, {"sizes": np.array([784, 10**9, 10]), "activation": np.array("relu"),
                             "loss": np.array("cross_entropy")}, [("W1", (784, 10**9), "<f4")]),
     r"model.npz: not a model file .*W1 declares shape \(784, 1000000000\) of float32: 2920.6 GiB"),
    # a zipped 4.4 GB W1 in a few kilobytes
    (lambda p: write_npz(p, model_arrays(small_model()), [("W9", (784, 1_400_000), "<f4")]),
     r"W9 declares shape \(784, 1400000\).*GiB, more than the 1 GiB allowed"),
    (lambda p: write_npz(p, model_arrays(small_model()) | {"sizes": np.array([784, 10**9, 10])}),
     r"W1 has shape \(784, 8\), but sizes \(784, 1000000000, 10\) need \(784, 1000000000\)"),
    (lambda p: write_npz(p, model_arrays(small_model()) | {"sizes": np.array([[784, 8, 10]])}),
     r"`sizes` must be a list of 2 to 100 positive integers, got int64 of shape \(1, 3\)"),
    (lambda p: np.save(p, np.zeros(3)), "not a model file saved by helpers"),
    (lambda p: write_npz(p, {"W1": np.zeros((2, 2))}), r"not a model file saved by helpers \(no `sizes` array\)"),
    (lambda p: write_npz(p, {"a": np.array([None, 1], dtype=object)}, []), "holds Python objects"),
])
def test_hostile_model_files_are_refused_before_allocating(tmp_path, make, message):
    path = tmp_path / "model.npz"
    make(path)
    if not path.exists():  # np.save added .npy
        path = tmp_path / "model.npz.npy"
    before = path.read_bytes()
    with pytest.raises(model_io.ModelFileError, match=message):
        model_io.load_model(path)
    assert path.read_bytes() == before


def test_a_model_that_does_not_read_digits_is_refused(tmp_path):
    path = model_io.save_model(small_model(sizes=(784, 256)), tmp_path / "m.npz")
    with pytest.raises(model_io.ModelFileError, match="m.npz: the network has 256 outputs, a digit classifier needs"):
        model_io.load_model(path, inputs=784, outputs=10)
    path = model_io.save_model(small_model(sizes=(100, 10)), tmp_path / "m.npz")
    with pytest.raises(model_io.ModelFileError, match="the network has 100 inputs, a digit classifier needs 784"):
        model_io.load_model(path, inputs=784, outputs=10)


def test_a_convnet_round_trips_and_a_file_without_an_architecture_is_an_mlp(tmp_path):
    from helpers.convnet import ConvNet

    net = ConvNet(channels=(2, 3), kernel=3, hidden=(8,), padding=1, seed=4)
    loaded = model_io.load_model(model_io.save_model(net, tmp_path / "conv.npz"), inputs=784, outputs=10)
    assert type(loaded) is ConvNet and loaded.architecture == net.architecture and loaded.sizes == net.sizes
    assert all(np.array_equal(p, q) for p, q in zip(loaded.params, net.params))
    x = np.random.default_rng(0).random((5, 784), np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), net.predict_proba(x))
    write_npz(tmp_path / "old.npz", model_arrays(small_model(seed=3)))  # as saved before ConvNets
    old = model_io.load_model(tmp_path / "old.npz")
    assert type(old) is MLP and all(np.array_equal(p, q) for p, q in zip(old.params, small_model(seed=3).params))


def conv_arrays(arch, **changes):
    from helpers import models

    net = models.build(arch)
    arrays = {f"{'Wb'[i % 2]}{i // 2 + 1}": p for i, p in enumerate(net.params)} | changes
    return dict(architecture=np.array(json.dumps(arch)), sizes=np.array(net.sizes), activation=np.array("relu"),
                loss=np.array("cross_entropy"), **arrays)


CONV = {"kind": "conv", "channels": [2], "kernel": 3, "hidden": [], "padding": 0}


@pytest.mark.parametrize("arrays, message", [
    (conv_arrays(CONV, W1=np.zeros((9, 5), np.float32)), r"W1 has shape \(9, 5\), but the architecture needs \(9, 2\)"),
    ({**conv_arrays(CONV), "architecture": np.array(json.dumps({**CONV, "kind": "rnn"}))},
     r"cannot be built: kind must be one of \['conv', 'mlp', 'sequential'\], got 'rnn'"),
    ({**conv_arrays(CONV), "architecture": np.array(json.dumps({**CONV, "kernel": 40}))},
     r"cannot be built: layer 1 \(conv\): a 28x28 input with padding 0 is smaller than the 40x40 kernel"),
    ({**conv_arrays(CONV), "architecture": np.array("{not json")},
     r"not a model file saved by helpers \(JSONDecodeError"),
])
def test_a_convnet_file_that_does_not_match_its_architecture_is_refused(tmp_path, arrays, message):
    write_npz(tmp_path / "conv.npz", arrays)
    with pytest.raises(model_io.ModelFileError, match=message):
        model_io.load_model(tmp_path / "conv.npz")


def test_a_network_that_does_not_fit_in_memory_is_one_clear_error(tmp_path, monkeypatch):
    from helpers import models
    from helpers.convnet import ConvNet

    mlp = model_io.save_model(small_model(), tmp_path / "mlp.npz")
    conv = model_io.save_model(ConvNet(channels=(2,), kernel=3, hidden=()), tmp_path / "conv.npz")

    def no_memory(*args, **kwargs):  # what allocating a network too large for this machine raises
        raise MemoryError

    monkeypatch.setattr(models, "build", no_memory)
    with pytest.raises(model_io.ModelFileError, match=r"mlp.npz: the network of sizes \(784, 8, 10\) does not fit"):
        model_io.load_model(mlp)
    with pytest.raises(model_io.ModelFileError, match=r"conv.npz: the network \{'kind': 'conv'.* does not fit"):
        model_io.load_model(conv)


def test_the_best_saved_model_is_the_one_with_the_highest_stored_validation_accuracy(tmp_path):
    paths = [tmp_path / name for name in ("a.npz", "b.npz", "c.npz", "missing.npz", "d.npz")]
    model_io.save_model(small_model(), paths[0], test_accuracy=0.999, valid_accuracy=0.98, valid_source="run 1")
    model_io.save_model(small_model(), paths[1], test_accuracy=0.98, valid_accuracy=0.993, valid_source="run 2")
    model_io.save_model(small_model(), paths[2], test_accuracy=1.0)  # no validation accuracy: ranks below the others
    write_npz(paths[4], {**model_arrays(small_model()), "valid_accuracy": np.array([0.999, 0.999])})  # not one number
    assert model_io.saved_valid_accuracy(paths[1]) == pytest.approx(0.993)
    assert model_io.saved_valid_source(paths[1]) == "run 2" and model_io.saved_test_accuracy(paths[1]) == 0.98
    assert model_io.saved_valid_accuracy(paths[2]) is None and model_io.saved_valid_accuracy(paths[4]) is None
    assert model_io.saved_valid_source(paths[2]) == "none: saved without one"
    assert model_io.best_saved(paths) == (paths[1], pytest.approx(0.993))
    assert model_io.best_saved([paths[2], paths[4]]) == (paths[2], None)  # none known: the first that exists
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert model_io.saved_valid_accuracy(tmp_path / "broken.npz") is None
    assert model_io.saved_valid_source(tmp_path / "broken.npz") is None
    write_npz(paths[4], {**model_arrays(small_model()), "valid_source": np.array("x" * 5000)})  # not a sentence
    assert model_io.saved_valid_source(paths[4]) is None and model_io.load_model(paths[4]).sizes == (784, 8, 10)
    with pytest.raises(model_io.ModelFileError, match="no saved model in .*missing.npz"):
        model_io.best_saved([paths[3]])


def test_a_validation_accuracy_is_saved_only_in_0_1_and_with_where_it_came_from(tmp_path):
    for valid, source in ((0.9, None), (0.9, ""), (1.5, "run 1"), (np.nan, "run 1")):
        with pytest.raises(model_io.ModelFileError, match="m.npz: not saved: a validation accuracy is a number"):
            model_io.save_model(small_model(), tmp_path / "m.npz", valid_accuracy=valid, valid_source=source)
        assert not (tmp_path / "m.npz").exists()


def test_a_final_model_is_saved_with_the_validation_of_its_recipe_in_this_process(tmp_path, mnist, monkeypatch):
    from helpers import experiments, pipeline, provenance

    monkeypatch.setattr(provenance, "_session", {})  # no other test's validations
    recipe = {**pipeline.RECIPES["baseline"], "sizes": (784, 16, 10), "epochs": 3}
    final = pipeline.train_recipe(recipe, mnist, name="small", progress=False, final=True)
    assert final["model"].validation == (None, "none: recipe small (the same settings, any seed) was not validated "
                                               "in this session")
    runs = experiments.try_seeds(recipe, mnist, seeds=(0, 1), name="small", curves=False, processes=1)
    other = pipeline.train_recipe({**recipe, "lr": 0.3}, mnist, seed=5, name="other", progress=False)
    final = pipeline.train_recipe(recipe, mnist, seed=7, name="small", progress=False, final=True)
    mean = (runs[0]["metrics"]["valid_accuracy"] + runs[1]["metrics"]["valid_accuracy"]) / 2
    source = "validated in this session: recipe small, mean of seeds 0, 1, trained on 1,000 images, validated " \
             "on the last 10,000"
    assert final["model"].validation == (pytest.approx(mean), source)
    path = model_io.save_model(final["model"], tmp_path / "final.npz", test_accuracy=0.5)  # as the notebooks save
    assert model_io.saved_valid_accuracy(path) == pytest.approx(mean) and model_io.saved_valid_source(path) == source
    mine = model_io.save_model(other["model"], tmp_path / "other.npz")  # a validated run: its own figure
    assert model_io.saved_valid_accuracy(mine) == pytest.approx(other["metrics"]["valid_accuracy"])
    assert model_io.saved_valid_source(mine) == ("this run: recipe other, seed 5, trained on 1,000 images, "
                                                 "validated on the last 10,000")


def test_models_with_batch_norm_and_stacks_of_layers_round_trip_with_their_running_statistics(tmp_path):
    from helpers import training
    from helpers.convnet import ConvNet
    from helpers.sequential import Sequential

    X = np.random.default_rng(0).random((64, 784), np.float32)
    y = np.arange(64) % 10
    specs = [{"type": "dense", "units": 16}, {"type": "batchnorm"}, {"type": "relu"}, {"type": "dropout", "p": 0.2},
             {"type": "dense", "units": 10}]
    for net in (ConvNet(channels=(2,), kernel=3, hidden=(8,), batchnorm=True, dropout=0.5, pool="avg", seed=1),
                Sequential(specs, (784,), seed=2)):
        training.fit(net, X, y, epochs=1, batch_size=16, progress=False)
        loaded = model_io.load_model(model_io.save_model(net, tmp_path / "m.npz"), inputs=784, outputs=10)
        assert type(loaded) is type(net) and loaded.architecture == net.architecture
        assert all(np.array_equal(p, q) for p, q in zip(loaded.params, net.params))
        assert loaded.buffers.keys() == net.buffers.keys() and all(
            np.array_equal(loaded.buffers[k], v) for k, v in net.buffers.items())
        np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_a_convnet_file_saved_before_batch_norm_existed_loads_as_it_was(tmp_path):
    """Files of the first ConvNet: an architecture without batchnorm, dropout or pool, arrays W1, b1, ..."""
    from helpers.convnet import ConvNet

    net = ConvNet(channels=(2,), kernel=3, hidden=(), seed=5)
    weights = {f"{'Wb'[i % 2]}{i // 2 + 1}": p for i, p in enumerate(net.params)}
    write_npz(tmp_path / "old.npz", conv_arrays(CONV) | weights)
    old = model_io.load_model(tmp_path / "old.npz", inputs=784, outputs=10)
    assert old.architecture == CONV and old.layers[-1].W.shape == (338, 10)
    x = np.random.default_rng(0).random((3, 784), np.float32)
    np.testing.assert_array_equal(old.predict_proba(x), net.predict_proba(x))


BN = {"kind": "conv", "channels": [2], "kernel": 3, "hidden": [], "padding": 0, "batchnorm": True}


@pytest.mark.parametrize("drop, change, message", [
    ("mean2", {}, r"mean2 has shape None, but the architecture needs \(2,\)"),
    (None, {"var2": np.ones(3, np.float32)}, r"var2 has shape \(3,\), but the architecture needs \(2,\)"),
    (None, {"var2": np.full(2, np.nan, np.float32)}, "var2 holds NaN or infinite values"),
    (None, {"gamma2": np.ones((2, 1), np.float32)}, r"gamma2 has shape \(2, 1\), but the architecture needs \(2,\)"),
])
def test_a_batch_norm_file_with_missing_or_bad_statistics_is_refused(tmp_path, drop, change, message):
    from helpers import models

    net = models.build(BN)
    arrays = conv_arrays(BN) | dict(zip(net.param_names, net.params)) | net.buffers | change
    arrays.pop(drop, None)
    write_npz(tmp_path / "bn.npz", arrays)
    with pytest.raises(model_io.ModelFileError, match=message):
        model_io.load_model(tmp_path / "bn.npz")
