"""Where a model's validation accuracy comes from: the figure that `predict`, Draw.ipynb and
`model_io.choose_best` rank saved models by, so that the test set chooses nothing.

A run that was validated (not final) carries its own figure. A final model (all 60,000 training
images) has no validation images left, so it gets its recipe's figure as the protocol measured it
before the final training: in a notebook, the latest validation of the same recipe (every setting but
the seed) in this process (`experiments.try_seeds`, or `train_recipe`); on the command line, the
latest non-final run of the same recipe on the same data in the database. Else none, and the source
says so: such a model ranks last.
"""
import json
from pathlib import Path

import numpy as np

from . import data, db, paths

_session = {}  # recipe key -> (accuracy, source): the latest validation of each recipe in this process


def recipe_key(config):
    """A run's config as JSON without the seed and `final`: what makes two runs the same recipe."""
    return json.dumps({k: v for k, v in config.items() if k not in ("seed", "final")}, sort_keys=True)


def _split(n_train):
    trained = "images not recorded" if n_train is None else f"{n_train:,} images"
    return f"trained on {trained}, validated on the last {data.N_VALID:,}"


def remember(runs):
    """Record runs of one recipe (one or more seeds, validated) as this process's latest validation of it:
    the mean of their validation accuracies, the figure the notebooks' tables give."""
    seeds = [r["config"]["seed"] for r in runs]
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {', '.join(map(str, seeds))}"
    accuracy = float(np.mean([r["metrics"]["valid_accuracy"] for r in runs]))
    _session[recipe_key(runs[0]["config"])] = (accuracy, f"validated in this session: recipe {runs[0]['name']}, "
                                                         f"{which}, {_split(runs[0]['metrics']['n_train'])}")


def from_database(db_path, config, dataset="mnist"):
    """(accuracy, source) of the latest non-final run of config's recipe on dataset in db_path, or None
    (none there, or no file yet). A row whose config is not JSON is not this recipe's."""
    if not Path(db_path).is_file():
        return None
    conn = db.connect(db_path, readonly=True)
    try:
        rows = conn.execute("SELECT id, name, config, valid_accuracy, n_train FROM runs WHERE dataset = ? AND "
                            "valid_accuracy IS NOT NULL ORDER BY id DESC", (dataset,)).fetchall()
    finally:
        conn.close()
    key = recipe_key(config)
    for run_id, name, text, accuracy, n_train in rows:
        try:
            saved = json.loads(text)
        except ValueError:
            continue
        if isinstance(saved, dict) and not saved.get("final") and recipe_key(saved) == key:
            return accuracy, (f"run {run_id} of {paths.shown(db_path)}: recipe {name}, seed {saved.get('seed')}, "
                              f"{_split(n_train)}")
    return None


def of_run(run, db_path=None, dataset="mnist"):
    """(validation accuracy or None, where it comes from) for the model of a train_recipe run. A final
    run's comes from db_path if given (the command line: whatever else ran in this process is no record),
    else from this process's validations."""
    config, metrics = run["config"], run["metrics"]
    if not config.get("final") and metrics.get("valid_accuracy") is not None:
        return float(metrics["valid_accuracy"]), (f"this run: recipe {run['name']}, seed {config['seed']}, "
                                                  f"{_split(metrics['n_train'])}")
    if db_path is not None:
        found = from_database(db_path, config, dataset)
        where = f"no non-final run of recipe {run['name']} (the same settings, any seed) in {paths.shown(db_path)}"
    else:
        found = _session.get(recipe_key(config))
        where = f"recipe {run['name']} (the same settings, any seed) was not validated in this session"
    return found if found is not None else (None, f"none: {where}")
