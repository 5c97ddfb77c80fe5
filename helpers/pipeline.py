"""The named training recipes and the protocol they are judged by.

`train_recipe` trains one on the first 50,000 training images and measures it on the
last 10,000 (the validation set), or with final=True on all 60,000; it never reads the
test images; `check_dataset` checks a whole dataset (train, validation and test parts) before any
of that starts. `test_once` measures a final model on the test set, `save_run` records a
run in SQLite; `experiments.py` trains recipes with several seeds and sets them side by
side. The notebook, the command line (`python -m helpers train`) and the
benchmark all call these, so they share one code path. A recipe is a plain dict: the
MLP's `sizes`, `activation` and `loss`, `n_train` (how many training images to use;
None for all of them) and the keyword arguments of `training.fit`; or, for a ConvNet,
kind="conv" and its architecture (see models.py) in place of the MLP's three.
"""
import platform
import sqlite3
from datetime import datetime, timezone

import numpy as np

from . import data, db, models, provenance, training

RECIPES = {
    # The original: sigmoid, mean squared error, full-batch gradient descent on 1,000 images.
    "baseline": dict(sizes=(784, 30, 10), activation="sigmoid", loss="mse", n_train=1000,
                     epochs=1000, batch_size=None, optimizer="sgd", lr=0.5),
    # The default: ReLU, softmax cross-entropy, mini-batch SGD with momentum and a cosine
    # schedule, weight decay and random 2-pixel shifts of every image.
    "default": dict(sizes=(784, 256, 10), activation="relu", loss="cross_entropy", n_train=None,
                    epochs=20, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                    schedule="cosine", weight_decay=1e-4, augment=True),
    # Longer: a wider, deeper network and random 2-pixel shifts of every image.
    "long": dict(sizes=(784, 1024, 1024, 10), activation="relu", loss="cross_entropy", n_train=None,
                 epochs=40, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9,
                 weight_decay=1e-4, schedule="cosine", augment=True),
    # Conv_net.ipynb's convolutional network (models.py): conv 5x5 1->16, pool, conv 5x5 16->32, pool,
    # 512->128->10. Its learning rate and shifts are chosen on validation there (section 7); the
    # architecture, batch size and 8 epochs are those of the prototype it started from.
    "conv": dict(kind="conv", channels=(16, 32), kernel=5, hidden=(128,), padding=0, n_train=None, epochs=8,
                 batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine", augment=True),
    # Longer: twice the channels, twice the dense units, weight decay (picked by hand), random affine
    # distortions instead of shifts and 40 epochs: the row of the search's conv-long ladder that its rule keeps.
    "conv-long": dict(kind="conv", channels=(32, 64), kernel=5, hidden=(256,), padding=0, n_train=None,
                      epochs=40, batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine",
                      weight_decay=1e-4, augment="affine"),
}
MODEL_KEYS = models.KEYS  # the architecture: an MLP's sizes, activation, loss, or a ConvNet's (models.py)


def versions():
    """Library versions recorded with every run."""
    import tqdm  # only for its version

    return {"python": platform.python_version(), "numpy": np.__version__, "sqlite": sqlite3.sqlite_version,
            "tqdm": tqdm.__version__}


def prepare(dataset, n_train=None, final=False):
    """The training (and, unless final, validation) features of a load_mnist dataset.

    Returns X (n, 784) float32, y (n,), X_valid, y_valid: the first n_train of the first 50,000
    training images and the last 10,000, or with final=True the first n_train of all 60,000 and
    None, None. Only dataset[0] is read: the test images stay unseen.
    """
    x_train, y_train = dataset[0]
    if final:
        x_valid = y_valid = None
    else:
        (x_train, y_train), (x_valid, y_valid) = data.split_validation(x_train, y_train)
        x_valid = data.flatten(x_valid)
    return data.flatten(x_train[:n_train]), y_train[:n_train], x_valid, y_valid


def check_dataset(dataset, source, final=False, classes=10, side=28):
    """Raise data.DataError, naming source, unless a load_mnist dataset can be trained on and tested
    as train_recipe and test_once do: every part is checked before training, so that a bad test label
    is not found minutes later. Images side x side, labels in [0, classes), and without final more
    than data.N_VALID training images (the last N_VALID are the validation set)."""
    for (x, y), part in zip(dataset, ("train", "test")):
        if x.shape[1:] != (side, side):
            raise data.DataError(f"{source}: x_{part} holds {x.shape[1]}x{x.shape[2]} images; the networks "
                                 f"read {side}x{side}")
        if len(y) and y.max() >= classes:  # uint8 (load_mnist checks), so never below 0
            raise data.DataError(f"{source}: y_{part} must lie in [0, {classes}), found {y.min()}..{y.max()}")
    n = len(dataset[0][0])
    if not final and n <= data.N_VALID:
        raise data.DataError(f"{source}: {n:,} training images; the last {data.N_VALID:,} are the validation set, "
                             f"so training needs more (or --final, which trains on all of them)")


def train_recipe(recipe, dataset, *, seed=0, name=None, progress=True, final=False, curves=True):
    """Train a recipe (a name from RECIPES or a dict) on dataset, as returned by load_mnist.

    Returns a run: a dict with the trained `model`, its `history`, its `metrics` (accuracy and
    loss on the training images it used after training, and on the validation images unless
    final; None where not measured) and what `save_run` records. The test set is not touched.
    The model's `validation` is (accuracy or None, its source): this run's own, or for a final run
    the latest validation of the same recipe in this process (provenance.py).
    curves: validate during training too, for the history's curves: at most 100 times (after
    every epoch up to 100 epochs; a 1,000-epoch run every 10th, where validating costs more
    than training).
    """
    if isinstance(recipe, str):
        name = name or recipe
        recipe = RECIPES[recipe]
    fit_args = {k: v for k, v in recipe.items() if k not in MODEL_KEYS + ("n_train",)}
    X, y, X_valid, y_valid = prepare(dataset, recipe.get("n_train"), final)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    model = models.build(recipe, seed=seed)
    valid = (X_valid, y_valid) if curves else (None, None)
    history = training.fit(model, X, y, *valid, seed=seed, progress=progress, desc=name or "training",
                           valid_every=max(1, recipe["epochs"] // 100), **fit_args)
    train_loss, train_acc = training.evaluate(model, X, y)
    if final:
        valid_loss, valid_acc = None, None
    elif curves:  # fit always validates after the last epoch: no second pass over the same images
        valid_loss, valid_acc = history["valid_loss"][-1], history["valid_acc"][-1]
    else:
        valid_loss, valid_acc = training.evaluate(model, X_valid, y_valid)
    metrics = dict(n_train=len(X), train_accuracy=train_acc, train_loss=train_loss, valid_accuracy=valid_acc,
                   valid_loss=valid_loss, test_accuracy=None, test_loss=None, train_seconds=history["seconds"][-1])
    run = dict(name=name or "run", config={**recipe, "seed": seed, "final": final}, model=model, history=history,
               metrics=metrics, started_at=started)
    if not final:
        provenance.remember([run])
    model.validation = provenance.of_run(run)  # what model_io.save_model stores, so that no caller has to
    return run


def test_once(run, dataset):
    """Measure a finished run's model on the test images, once; fill and return its test accuracy."""
    x_test, y_test = dataset[1]
    loss, accuracy = training.evaluate(run["model"], data.flatten(x_test), y_test)
    run["metrics"].update(test_accuracy=accuracy, test_loss=loss)
    return accuracy


def save_run(db_path, run, dataset, dataset_name="mnist", predictions=True, commit=None):
    """Write a run to the SQLite file db_path with its predictions, and return the run id:
    on the validation images (unless final), on the test images (if test_once measured them)
    and, for a run on a small subset such as the baseline's 1,000, on its training images.
    predictions=False: the run, its metrics and curves only (the search's runs: 9 MB less each).
    commit: the code's commit, recorded with the library versions."""
    (x_train, y_train), (x_test, y_test) = dataset
    model, config = run["model"], run["config"]
    final, n_train = config.get("final", False), config.get("n_train")
    (x_fit, y_fit), valid = ((x_train, y_train), None) if final else data.split_validation(x_train, y_train)
    splits = {}
    if n_train is not None:  # a small training set is worth keeping: the baseline's 1,000 images
        splits["train"] = (x_fit[:n_train], y_fit[:n_train])
    if valid is not None:
        splits["valid"] = valid
    if run["metrics"]["test_accuracy"] is not None:
        splits["test"] = (x_test, y_test)
    predictions = {split: (x, y, model.predict_proba(data.flatten(x)))
                   for split, (x, y) in splits.items()} if predictions else {}
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return db.save_run(db_path, name=run["name"], config=config, dataset=dataset_name, metrics=run["metrics"],
                       history=run["history"], started_at=run["started_at"], finished_at=finished,
                       versions={**versions(), **({"commit": commit} if commit else {})}, predictions=predictions)
