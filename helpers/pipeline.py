"""The named training recipes, and one function that trains a recipe and records it.

The notebook, the command line (`python -m helpers train`) and the benchmark all call
`train_recipe`, so they share one code path. A recipe is a plain dict: the MLP's
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
    # The default: ReLU, softmax cross-entropy, mini-batch SGD with momentum and a cosine schedule.
    "default": dict(sizes=(784, 512, 10), activation="relu", loss="cross_entropy", n_train=None,
                    epochs=15, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                    weight_decay=1e-4, schedule="cosine"),
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


def train_recipe(recipe, dataset, *, seed=0, name=None, db_path=None, dataset_name="mnist", progress=True,
                 eval_test_each_epoch=True):
    """Train the recipe (a name from RECIPES or a dict) and, if db_path is given, record the run.

    dataset: as returned by load_mnist. Returns (model, history, metrics, run_id or None).
    """
    if isinstance(recipe, str):
        name = name or recipe
        recipe = RECIPES[recipe]
    config = {**recipe, "seed": seed}
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
    run_id = None
    if db_path is not None:
        run_id = record_run(db_path, model, name or "run", config, dataset, dataset_name, metrics, history, started)
    return model, history, metrics, run_id


def record_run(db_path, model, name, config, dataset, dataset_name, metrics, history, started):
    """Predict all test images (and the training images the run used) and save the run."""
    (x_train, y_train), (x_test, y_test) = dataset
    n_train = config.get("n_train")
    predictions = {"test": (x_test, y_test, model.predict_proba(data.flatten(x_test)))}
    if n_train is not None:  # a small training set is worth keeping: the baseline's 1,000 images
        x, y = x_train[:n_train], y_train[:n_train]
        predictions["train"] = (x, y, model.predict_proba(data.flatten(x)))
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return db.save_run(db_path, name=name, config=config, dataset=dataset_name,
                       metrics=metrics, history=history, started_at=started, finished_at=finished,
                       versions=versions(), predictions=predictions)
