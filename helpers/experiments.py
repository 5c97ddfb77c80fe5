"""Experiments on recipes: one change at a time, several seeds, and the table that compares them.

For: the notebook's improvement table. `change` derives a recipe from a named one and prints
the change as a diff; `try_seeds` trains a recipe once per seed, `sweep` once per seed and
value of one setting; `table` sets the runs side by side with their seed spread. Leaves out:
the test set (see `pipeline.test_once`), which no experiment here reads.

Runs train side by side, one process each with one BLAS thread: on batches of 128 a second
BLAS thread adds little, and a second process almost doubles the work done. The weights do
not depend on it (the same as training the runs one after another, tested). A script that
calls these needs Python's `if __name__ == "__main__":` guard, as with any multiprocessing.
"""
import atexit
import inspect
import multiprocessing
import signal

import numpy as np
from tqdm.auto import tqdm

from . import provenance, training
from .pipeline import MODEL_KEYS, train_recipe

_pools = {}  # worker pools by size, kept between calls: starting one costs about a second
BAR = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"  # no rate: runs side by side finish together


def change(recipes, name, base, **changes):
    """recipes[name] = recipes[base] with changes; print the change as a diff and return the recipe.

    Each notebook cell names the recipe it starts from, so running it again gives the same recipe.
    """
    defaults = {p.name: p.default for p in inspect.signature(training.fit).parameters.values()
                if p.kind == p.KEYWORD_ONLY and p.name not in ("seed", "progress", "desc")}  # train_recipe's
    settings = {*MODEL_KEYS, "n_train", *defaults}
    unknown = sorted(set(changes) - settings)
    if unknown:
        raise KeyError(f"{unknown} are not recipe settings; a recipe takes {sorted(settings)}")
    recipes[name] = {**recipes[base], **changes}
    print(f"{name} = {base}, with " + ", ".join(
        f"{key}: {recipes[base].get(key, defaults.get(key))!r} -> {value!r}" for key, value in changes.items()))
    return recipes[name]


def _init_worker():
    from threadpoolctl import threadpool_limits  # imported where it is needed

    threadpool_limits(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt reaches the notebook, which ends the pool


def _train(job):
    recipe, train_set, seed, name, curves = job
    return train_recipe(recipe, (train_set, None), seed=seed, name=name, progress=False, curves=curves)


def _pool(processes):
    if processes not in _pools:
        # spawn, not fork: a notebook kernel runs threads, and forking those can deadlock
        _pools[processes] = multiprocessing.get_context("spawn").Pool(processes, initializer=_init_worker)
        atexit.register(_close, _pools[processes])
    return _pools[processes]


def _close(pool):
    pool.close()
    pool.join()


def each_run(jobs, processes, ordered=True):
    """The runs of jobs (recipe, training images, seed, name, curves), each as soon as it ends, in
    the order of jobs (or, unless ordered, in the order they end). An error or an interrupt stops
    the other runs rather than letting them finish unseen."""
    from threadpoolctl import threadpool_limits

    processes = min(len(jobs), processes)
    if not jobs:
        return
    try:
        with threadpool_limits(1):  # here too, so that processes=1 gives the same weights
            if processes == 1:
                yield from map(_train, jobs)
            else:
                pool = _pool(processes)
                yield from (pool.imap if ordered else pool.imap_unordered)(_train, jobs)
    except BaseException:
        if processes in _pools:
            _pools.pop(processes).terminate()
        raise


def _train_all(jobs, bar, postfix, processes):
    """The runs of jobs (recipe, training images, seed, name, curves), in order."""
    runs = []
    try:
        for run in each_run(jobs, processes):
            runs.append(run)
            bar.update()
            bar.set_postfix_str(postfix(runs))
    finally:
        bar.close()
    return runs


def try_seeds(recipe, dataset, seeds=(0, 1, 2), name="run", curves=True, processes=3):
    """Train recipe once per seed on the 50,000 training images; return the runs, in seed order.

    processes: how many runs at once (1: one after another, here). Workers get only the training
    images. One progress bar counts the seeds and shows each run's validation accuracy. With
    curves, the first seed's run is also validated during training (see train_recipe), for its
    curves; every run is validated at the end. Their mean validation accuracy is remembered as the
    recipe's (provenance.py): a final model of it trained later in this process is saved with it.
    """
    jobs = [(recipe, dataset[0], seed, name, curves and seed == seeds[0]) for seed in seeds]
    bar = tqdm(total=len(jobs), desc=name, bar_format=BAR)
    runs = _train_all(jobs, bar, lambda runs: "valid_acc=" + " ".join(
        f"{r['metrics']['valid_accuracy']:.4f}" for r in runs), processes)
    provenance.remember(runs)  # the workers' own record is lost with them; a final run of this recipe reads it
    return runs


def sweep(recipe, dataset, key, values, seeds=(0, 1, 2), known=None, processes=3):
    """{value: runs of try_seeds} for recipe with recipe[key] = value, every run side by side.

    known: the runs of recipe itself, reused for its own value instead of training them again.
    One progress bar counts all the runs and shows the last one's validation accuracy.
    """
    todo = [v for v in values if known is None or v != recipe[key]]
    jobs = [({**recipe, key: v}, dataset[0], seed, f"{key} {v}", False) for v in todo for seed in seeds]
    bar = tqdm(total=len(jobs), desc=f"{key} sweep", bar_format=BAR)
    runs = _train_all(jobs, bar, lambda runs: f"{runs[-1]['name']}: valid_acc="
                      f"{runs[-1]['metrics']['valid_accuracy']:.4f}", processes)
    found = {v: runs[i * len(seeds):(i + 1) * len(seeds)] for i, v in enumerate(todo)}
    for value_runs in found.values():
        provenance.remember(value_runs)
    return {v: found[v] if v in found else known for v in values}


def table(rows):
    """rows: {idea: runs of try_seeds}, in order -> a DataFrame, one row per idea, percentages.

    valid mean, min and max over the seeds; change: the mean's change from the row above, in
    points; beyond spread: whether that change is larger than both rows' min-max spreads (if
    not, the seeds cannot tell the two recipes apart); seconds: median training time (the
    validation passes excluded).
    """
    import pandas as pd  # only the notebook needs tables

    out, previous = [], None
    for idea, runs in rows.items():
        acc = 100 * np.array([r["metrics"]["valid_accuracy"] for r in runs])
        row = {"idea": idea, "train images": runs[0]["metrics"]["n_train"], "seeds": len(runs),
               "train acc": 100 * np.mean([r["metrics"]["train_accuracy"] for r in runs]),
               "valid mean": acc.mean(), "valid min": acc.min(), "valid max": acc.max(),
               "change": np.nan, "beyond spread": "",  # nothing above the first row to compare with
               "seconds": float(np.median([r["metrics"]["train_seconds"] for r in runs]))}
        if previous is not None:
            row["change"] = row["valid mean"] - previous["valid mean"]
            spread = max(acc.max() - acc.min(), previous["valid max"] - previous["valid min"])
            row["beyond spread"] = "yes" if abs(row["change"]) > spread else "no"
        out.append(row)
        previous = row
    return pd.DataFrame(out).set_index("idea").round(2)
