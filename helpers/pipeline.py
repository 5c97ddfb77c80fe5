"""The named training recipes: `train_recipe` trains one, `save_run` records it in SQLite.

The notebook, the command line (`python -m helpers train`) and the benchmark all call
these, so they share one code path. A recipe is a plain dict: the MLP's
`sizes`, `activation` and `loss`, `n_train` (how many training images to use; None
for all 60,000) and the keyword arguments of `training.fit`.
"""
import platform
import sqlite3
from datetime import datetime, timezone

import numpy as np

from . import data, db, training
from .nn import MLP

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
}
MODEL_KEYS = ("sizes", "activation", "loss")


def versions():
    """Library versions recorded with every run."""
    import tqdm  # only for its version

    return {"python": platform.python_version(), "numpy": np.__version__, "sqlite": sqlite3.sqlite_version,
            "tqdm": tqdm.__version__}


def prepare(dataset, n_train=None):
    """(x_train, y_train), (x_test, y_test) as returned by load_mnist -> flattened float32 arrays."""
    (x_train, y_train), (x_test, y_test) = dataset
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    return data.flatten(x_train), y_train, data.flatten(x_test), y_test


def train_recipe(recipe, dataset, *, seed=0, name=None, progress=True, eval_test_each_epoch=True):
    """Train a recipe (a name from RECIPES or a dict) on dataset, as returned by load_mnist.

    Returns a run: a dict with the trained `model`, its `history`, final `metrics` (accuracy
    and loss on the training images it used and on all test images), and what `save_run` records.
    """
    if isinstance(recipe, str):
        name = name or recipe
        recipe = RECIPES[recipe]
    fit_args = {k: v for k, v in recipe.items() if k not in MODEL_KEYS + ("n_train",)}
    X, y, X_test, y_test = prepare(dataset, recipe.get("n_train"))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    model = MLP(recipe["sizes"], recipe["activation"], recipe["loss"], seed=seed)
    test = (X_test, y_test) if eval_test_each_epoch else (None, None)
    history = training.fit(model, X, y, *test, seed=seed, progress=progress, desc=name or "training", **fit_args)
    train_loss, train_acc = training.evaluate(model, X, y)
    test_loss, test_acc = training.evaluate(model, X_test, y_test)
    metrics = dict(train_accuracy=train_acc, test_accuracy=test_acc, train_loss=float(train_loss),
                   test_loss=float(test_loss), train_seconds=history["seconds"][-1])
    return dict(name=name or "run", config={**recipe, "seed": seed}, model=model, history=history,
                metrics=metrics, started_at=started)


def save_run(db_path, run, dataset, dataset_name="mnist"):
    """Write a run with its predictions on all test images (and, for a run on a subset,
    on the training images it used) to the SQLite file db_path; return the run id."""
    (x_train, y_train), (x_test, y_test) = dataset
    model, n_train = run["model"], run["config"].get("n_train")
    predictions = {"test": (x_test, y_test, model.predict_proba(data.flatten(x_test)))}
    if n_train is not None:  # a small training set is worth keeping: the baseline's 1,000 images
        x, y = x_train[:n_train], y_train[:n_train]
        predictions["train"] = (x, y, model.predict_proba(data.flatten(x)))
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return db.save_run(db_path, name=run["name"], config=run["config"], dataset=dataset_name,
                       metrics=run["metrics"], history=run["history"], started_at=run["started_at"],
                       finished_at=finished, versions=versions(), predictions=predictions)


def summary(run):
    """One row for a results table: training images, accuracies (as percentages) and seconds."""
    m = run["metrics"]
    return {"train images": run["config"].get("n_train") or 60_000, "train acc": f"{m['train_accuracy']:.2%}",
            "test acc": f"{m['test_accuracy']:.2%}", "seconds": round(m["train_seconds"], 1)}
