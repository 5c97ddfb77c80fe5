"""The search: candidate recipes trained at full scale with paired seeds, resumable, in the database.

For: choosing the ConvNet recipes (`conv`, `conv-long`) on validation at the scale they are used
at, in runs longer than a notebook can afford. `python -m helpers search` trains every candidate
of LADDERS once per seed on the first 50,000 training images, validates it on the last 10,000
after every epoch, writes each run to a database of its own (search.db: curves and metrics, no
predictions) as soon as it ends, and rewrites RESULTS (results/search.json), which
Conv_net.ipynb reads, saying which command, commit and date produced it. A candidate already in
the database for the same recipe, seed and data is not trained again, so the search can be
stopped with Ctrl-C and started again. Leaves out: the test set, which nothing here reads.

A ladder is a list of rows (name, base, changes): the recipe of a row is its base row's with one
change, so that a row's paired differences (its accuracy minus its base's, seed by seed: the
same seed gives both the same initial weights and batch order) measure that change alone.
"""
import json
import os
import platform
import subprocess
from datetime import datetime, timezone

from tqdm.auto import tqdm

from . import db, experiments, paths, pipeline

R = pipeline.RECIPES
# The budgets of training on 60,000 images here: conv about 3 minutes, conv-long about 30.
# Each ladder's first row: the recipe as it stood before the search (RECIPES follow what the rule keeps).
START = {
    "conv": dict(kind="conv", channels=(16, 32), kernel=5, hidden=(128,), padding=0, n_train=None, epochs=8,
                 batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine", augment=True),
    "conv-long": dict(kind="conv", channels=(32, 64), kernel=5, hidden=(256,), padding=0, n_train=None, epochs=20,
                      batch_size=128, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine", weight_decay=1e-4,
                      augment=True),
}
LADDERS = {
    "conv": [  # 3 minutes here: about 13 epochs without batch norm, 10 with it (2 threads, a quiet spell)
        ("conv today", None, START["conv"]),
        ("affine augmentation", "conv today", dict(augment="affine")),
        ("batch norm", "affine augmentation", dict(batchnorm=True)),
        ("batch norm, 10 epochs", "batch norm", dict(epochs=10)),
        ("12 epochs", "affine augmentation", dict(epochs=12)),
        ("dropout 0.3", "batch norm, 10 epochs", dict(dropout=0.3)),
        ("lr 0.1", "batch norm, 10 epochs", dict(lr=0.1)),
    ],
    "conv-long": [  # the last two rows were planned on "batch norm"; it did not pass the rule, so before
        # they were trained they were put on the row it keeps, where a change can still count
        ("conv-long today", None, START["conv-long"]),
        ("affine augmentation", "conv-long today", dict(augment="affine")),
        ("batch norm", "affine augmentation", dict(batchnorm=True)),
        ("dropout 0.4", "affine augmentation", dict(dropout=0.4)),
        ("40 epochs", "affine augmentation", dict(epochs=40)),
    ],
}
SEEDS = (0, 1)


def recipes(ladder):
    """[(name, base name or None, changes, recipe)] of a ladder, each recipe its base's with the changes."""
    built, rows = {}, []
    for name, base, changes in ladder:
        if name in built or (base is not None and base not in built):
            raise ValueError(f"ladder row {name!r}: names must be unique and a base must come before its row")
        built[name] = {**(built[base] if base else {}), **changes}
        rows.append((name, base, changes, built[name]))
    return rows


def _key(recipe, seed, final=False):
    """What identifies a run of recipe: its settings as JSON (tuples as lists), seed, final or not."""
    return json.dumps({**recipe, "seed": seed, "final": final}, sort_keys=True)


CURVE_COLUMNS = ("epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "seconds")
CURVE_KEYS = ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "seconds")  # training.fit's names


def done_runs(db_path, dataset_name):
    """{key: runs row as a dict} of the runs already in db_path on dataset_name (the latest per key)."""
    if not os.path.exists(db_path):
        return {}
    conn = db.connect(db_path, readonly=True)
    try:
        rows = conn.execute("SELECT id, config, valid_accuracy, train_accuracy, test_accuracy, train_seconds, "
                            "finished_at, versions FROM runs WHERE dataset = ? ORDER BY id", (dataset_name,)).fetchall()
        found = {}
        for run_id, config, valid, train, test, seconds, finished, versions in rows:
            curve = conn.execute(f"SELECT {', '.join(CURVE_COLUMNS)} FROM history WHERE run_id = ? ORDER BY epoch",
                                 (run_id,)).fetchall()
            found[json.dumps(json.loads(config), sort_keys=True)] = dict(
                run_id=run_id, valid_accuracy=valid, train_accuracy=train, train_seconds=seconds,
                commit=json.loads(versions).get("commit"), finished_at=finished,
                **({"test_accuracy": test} if test is not None else {}),
                history={key: [row[i] for row in curve] for i, key in enumerate(CURVE_KEYS)})
        return found
    finally:
        conn.close()


def _commit():
    """The commit of the code that ran, with '+changes' if the working tree had uncommitted changes."""
    try:
        git = ["git", "-C", str(paths.ROOT)]
        head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return head.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _recipe_key(config):
    return json.dumps({k: v for k, v in json.loads(json.dumps(config)).items() if k not in ("seed", "final")},
                      sort_keys=True)


def results(ladders, seeds, found, command, commit):
    """The results file's content: every row of every ladder with every run found for it so far, whatever
    seeds this search trained (seeds: the ones it trains; the file lists every seed found)."""
    by_recipe = {}  # recipe -> {seed: run} of the validated (not final) runs found
    for key, run in found.items():
        config = json.loads(key)
        if not config.get("final"):
            by_recipe.setdefault(_recipe_key(config), {})[config["seed"]] = run
    out = {"command": command, "commit": commit,
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "seeds": [], "split": "trained on the first 50,000 training images, validated on the last 10,000",
           "ladders": {}}
    for family, ladder in ladders.items():
        rows = []
        for name, base, changes, recipe in recipes(ladder):
            runs = [{"seed": s, **r} for s, r in sorted(by_recipe.get(_recipe_key(recipe), {}).items())]
            rows.append(dict(name=name, base=base, changes=changes, recipe=recipe, runs=runs))
        out["ladders"][family] = rows
    out["seeds"] = sorted({run["seed"] for ladder in out["ladders"].values() for row in ladder for run in row["runs"]}
                          | set(seeds))
    out["finals"] = finals(out, found)
    return out


def validation(content, recipe):
    """(validation accuracy, where it comes from) of recipe by the ladder row of content that holds it:
    the mean over that row's seeds; or () if no row with runs holds it."""
    recipe = json.loads(json.dumps(recipe))  # tuples as lists, as the file holds them
    for family, ladder in content["ladders"].items():
        for row in ladder:
            if json.loads(json.dumps(row["recipe"])) == recipe and row["runs"]:
                seeds = ", ".join(str(r["seed"]) for r in row["runs"])
                return (sum(r["valid_accuracy"] for r in row["runs"]) / len(row["runs"]),
                        f"the {family} ladder's row {row['name']!r}, the mean of seeds {seeds}")
    return ()


def finals(content, found):
    """{"name, seed s": the final run} of every final model in found of a recipe in pipeline.RECIPES, with
    the validation accuracy of its recipe where a ladder row of content holds that recipe (its seeds' mean)."""
    out = {}
    for key, run in found.items():
        config = json.loads(key)
        recipe = {k: v for k, v in config.items() if k not in ("seed", "final")}
        names = [name for name, r in pipeline.RECIPES.items() if json.loads(json.dumps(r)) == recipe]
        if not (config["final"] and names):
            continue
        chosen = dict(zip(("valid_accuracy", "valid_source"), validation(content, recipe)))
        out[f"{names[0]}, seed {config['seed']}"] = {"recipe": names[0], "seed": config["seed"], **run, **chosen}
    return out


def write_results(path, content):
    """Write the results file in one step (a temporary file, then renamed), so it is never half-written."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(content, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def search(dataset, *, ladders=None, seeds=SEEDS, only=None, db_path=None, results_path=None, dataset_name="mnist",
           processes=2, command="python -m helpers search", progress=True):
    """Train every run of ladders (only: of these ladders' names) not yet in db_path, write each as it ends,
    and the results file, which holds every ladder, after each; return the results. Runs go side by side
    (experiments.py: one process, one BLAS thread each)."""
    ladders = LADDERS if ladders is None else ladders
    db_path = paths.SEARCH_DB_PATH if db_path is None else db_path
    results_path = paths.SEARCH_RESULTS if results_path is None else results_path
    found, commit = done_runs(db_path, dataset_name), _commit()  # the code that runs: files may change meanwhile
    jobs, seen = [], set(found)
    for family, ladder in ladders.items():
        for name, _, _, recipe in recipes(ladder) if only is None or family in only else ():
            for seed in seeds:
                if _key(recipe, seed) not in seen:
                    seen.add(_key(recipe, seed))
                    jobs.append((recipe, dataset[0], seed, f"{family}: {name}", True))
    trained = [ladder for family, ladder in ladders.items() if only is None or family in only]
    total = sum(len(recipes(ladder)) for ladder in trained) * len(seeds)
    write_results(results_path, results(ladders, seeds, found, command, commit))
    if jobs:
        db.check_writable(db_path)
    bar = tqdm(total=total, initial=total - len(jobs), desc="search", disable=not progress, unit="run",
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
    try:
        for run in experiments.each_run(jobs, processes):
            run_id = pipeline.save_run(db_path, run, dataset, dataset_name, predictions=False, commit=commit)
            found = done_runs(db_path, dataset_name)
            write_results(results_path, results(ladders, seeds, found, command, commit))
            bar.update()
            bar.set_postfix_str(f"{run['name']}, seed {run['config']['seed']}: "
                                f"valid {run['metrics']['valid_accuracy']:.4f} (run {run_id})")
    finally:
        bar.close()
    return results(ladders, seeds, found, command, commit)


def final(dataset, name, *, seed=0, save=None, ladders=None, seeds=SEEDS, db_path=None, results_path=None,
          dataset_name="mnist", command=None, progress=True):
    """Train the named recipe's final model (all 60,000 training images, with every BLAS thread), measure
    it on the test set once, write the run to db_path and rewrite the results file; return the run.
    save: also save the model there (model_io)."""
    from . import model_io

    db_path = paths.SEARCH_DB_PATH if db_path is None else db_path
    results_path = paths.SEARCH_RESULTS if results_path is None else results_path
    if save:
        model_io.check_writable(save)
    db.check_writable(db_path)
    commit = _commit()
    ladders = LADDERS if ladders is None else ladders
    run = pipeline.train_recipe(name, dataset, seed=seed, name=f"final: {name}", progress=progress, final=True)
    pipeline.test_once(run, dataset)
    pipeline.save_run(db_path, run, dataset, dataset_name, predictions=False, commit=commit)
    content = results(ladders, seeds, done_runs(db_path, dataset_name), command or f"final {name}", commit)
    write_results(results_path, content)
    if save:  # with the validation accuracy of its recipe's ladder row, which predict ranks models by
        entry = content["finals"][f"{name}, seed {seed}"]
        valid = entry.get("valid_accuracy"), f"{entry['valid_source']} ({paths.shown(results_path)})" \
            if "valid_source" in entry else f"none: no ladder row of {paths.shown(results_path)} holds recipe {name}"
        model_io.save_model(run["model"], save, test_accuracy=run["metrics"]["test_accuracy"],
                            valid_accuracy=valid[0], valid_source=valid[1])
    return run


def chosen(content, family):
    """The row of a ladder that the rule keeps: follow the changes that passed it (table's `beyond spread`),
    from the first row through rows whose base was kept, and take the kept row with the best mean. With no
    change beyond the spread that is the first row: the recipe keeps what it had. -> (row name, recipe)."""
    t = table(content, family)
    kept = [t.index[0]]
    for idea, row in t.iloc[1:].iterrows():
        if row["base"] in kept and row["beyond spread"] == "yes":
            kept.append(idea)
    best = max(kept, key=lambda idea: t.loc[idea, "valid mean"] if t.loc[idea, "seeds"] else -1)
    return best, next(row["recipe"] for row in content["ladders"][family] if row["name"] == best)


def load(path=None):
    """The content of a results file (default: RESULTS), or ValueError naming the file and what is wrong."""
    path = paths.SEARCH_RESULTS if path is None else path
    try:
        with open(path) as f:
            content = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{paths.shown(path)}: no results yet; `python -m helpers search` writes them") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{paths.shown(path)}: not a results file of the search ({e})") from None
    if not isinstance(content, dict) or not {"command", "commit", "date", "seeds", "ladders"} <= set(content):
        raise ValueError(f"{paths.shown(path)}: not a results file of the search (it needs command, commit, "
                         f"date, seeds and ladders)")
    return content


def table(content, family):
    """The rows of one ladder of a results file as a DataFrame, percentages: valid mean over the seeds
    and each seed's; change: the mean over seeds of (row - base), seed by seed, with its min and max;
    beyond spread: 'yes' if every seed's change has the same sign and the mean change exceeds both
    rows' seed-to-seed spread (max - min), else 'no' (the seeds cannot tell the two apart);
    minutes: median training time of a run, one BLAS thread, two runs side by side."""
    import numpy as np
    import pandas as pd  # only the notebook needs tables

    rows, by_name = [], {row["name"]: row for row in content["ladders"][family]}
    for row in content["ladders"][family]:
        acc = {r["seed"]: 100 * r["valid_accuracy"] for r in row["runs"]}
        out = {"idea": row["name"], "base": row["base"] or "", "epochs": row["recipe"]["epochs"], "seeds": len(acc),
               "valid mean": np.mean(list(acc.values())) if acc else np.nan,
               **{f"seed {s}": acc.get(s, np.nan) for s in content["seeds"]},
               "change": np.nan, "change min": np.nan, "change max": np.nan, "beyond spread": "",
               "minutes": np.median([r["train_seconds"] for r in row["runs"]]) / 60 if acc else np.nan}
        base = {r["seed"]: 100 * r["valid_accuracy"] for r in by_name[row["base"]]["runs"]} if row["base"] else {}
        diffs = [acc[s] - base[s] for s in acc if s in base]
        if diffs:
            spread = max(max(d.values()) - min(d.values()) for d in (acc, base))
            same_sign = all(d > 0 for d in diffs) or all(d < 0 for d in diffs)
            out.update({"change": np.mean(diffs), "change min": min(diffs), "change max": max(diffs),
                        # larger by more than float rounding: a mean change equal to the spread is no result
                        "beyond spread": "yes" if same_sign and abs(np.mean(diffs)) > spread + 1e-9 else "no"})
        rows.append(out)
    return pd.DataFrame(rows).set_index("idea").round(3)
