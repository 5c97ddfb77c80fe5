"""The notebook's pipeline as a command: `python -m helpers train|predict|report|search|build-data|migrate`.

Run `python -m helpers --help` (or `python -m helpers train --help`) for the options.
"""
import argparse
import contextlib
import json
import sys
from pathlib import Path

from . import data, db, model_io, models, paths, pipeline, provenance, training


def _positive(minimum, maximum=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be an integer from {minimum} to {maximum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _lr(text):
    try:
        return training.check_lr(text, name="the learning rate")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _dropout(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def train(args):
    recipe = dict(pipeline.RECIPES[args.recipe])
    for key in ("epochs", "batch_size", "lr"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    conv = recipe.get("kind") == "conv"
    if args.hidden is not None:
        recipe.update({"hidden": tuple(args.hidden)} if conv else {"sizes": (784, *args.hidden, 10)})
    if args.activation is not None:
        if conv:
            sys.exit(f"error: --activation: the {args.recipe} recipe's ConvNet uses ReLU only")
        recipe["activation"] = args.activation
    for key in ("batchnorm", "dropout"):  # layers of a ConvNet (convnet.py)
        if getattr(args, key) not in (None, False):
            if not conv:
                sys.exit(f"error: --{key}: only a ConvNet recipe (conv, conv-long) has it; "
                         f"the {args.recipe} recipe is an MLP")
            recipe[key] = getattr(args, key)
    if not conv and len(recipe["sizes"]) > models.MAX_SIZES:  # what could be saved but never loaded
        sys.exit(f"error: --hidden: at most {models.MAX_SIZES - 2} hidden layers (a model file holds at most "
                 f"{models.MAX_SIZES} sizes), got {len(recipe['sizes']) - 2}")
    # Output paths are checked now, not after minutes of training.
    if args.save:
        model_io.check_writable(args.save)
    if not args.no_db:
        db.check_writable(args.db)
    dataset = data.load_mnist(args.data)
    pipeline.check_dataset(dataset, paths.shown(args.data or paths.DATA_PATH), final=args.final)
    n = len(dataset[0][0]) - (0 if args.final else data.N_VALID)  # the training images: a batch holds at most all
    n = min(n, recipe.get("n_train") or n)
    need = models.memory_needed(recipe, max(min(recipe["batch_size"] or n, n), models.EVAL_BATCH))[0]
    if need > models.MAX_BYTES:
        what = f"hidden {list(recipe['hidden'])}" if conv else f"sizes {list(recipe['sizes'])}"
        batches = "full batches" if recipe["batch_size"] is None else f"batches of {recipe['batch_size']}"
        sys.exit(f"error: {what} with {batches} would need about "
                 f"{need / 2**30:.1f} GiB of memory, more than the {models.MAX_BYTES / 2**30:.0f} GiB allowed; "
                 f"choose fewer hidden units (--hidden) or a smaller --batch-size")
    print(f"recipe {args.recipe}: {json.dumps(recipe)}")
    try:  # a diverged model (TrainingDiverged) is never saved nor written to the database
        run = pipeline.train_recipe(recipe, dataset, seed=args.seed, name=args.recipe, progress=not args.quiet,
                                    final=args.final)
        metrics = run["metrics"]
        if not args.final:
            print(f"validation accuracy {metrics['valid_accuracy']:.4f} (the last {data.N_VALID:,} training "
                  f"images, not trained on)")
        pipeline.test_once(run, dataset)
    except training.TrainingDiverged as e:
        kept = f"; {paths.shown(args.save)} was left as it was" if args.save and Path(args.save).exists() else ""
        sys.exit(f"error: {e}. Nothing was saved{kept}, no run was written")
    dataset_name = "mnist" if args.data is None else str(args.data)
    if args.save:  # ranked by its recipe's validation accuracy: a final run's comes from the database
        valid, source = provenance.of_run(run, None if args.no_db else args.db, dataset_name)
        saved = model_io.save_model(run["model"], args.save, test_accuracy=metrics["test_accuracy"],
                                    valid_accuracy=valid, valid_source=source)
        print(f"model saved to {paths.shown(saved)}, validation accuracy "
              + ("none stored" if valid is None else f"{valid:.4f}") + f" ({source})")
    if not args.no_db:
        print(f"run {pipeline.save_run(args.db, run, dataset, dataset_name)} written to {paths.shown(args.db)}")
    print(f"train accuracy {metrics['train_accuracy']:.4f}, test accuracy {metrics['test_accuracy']:.4f} "
          f"(test set measured once), {metrics['train_seconds']:.1f} s of training")


def describe(row):
    """One report line for a runs row (id, name, n_train, valid_accuracy, test_accuracy, reported_split,
    train_seconds, config)."""
    run_id, name, n_train, valid_acc, test_acc, split, secs, config = row
    final = json.loads(config).get("final", False)
    images = f"{n_train:,} images" if n_train is not None else "training images not recorded"
    if split == "valid":
        figure = f"validation accuracy {valid_acc:.4f} (validation set; test set not measured)"
    else:
        figure = f"test accuracy {test_acc:.4f} ({'final model, ' if final else ''}test set measured once)"
        if valid_acc is not None:
            figure += f", validation accuracy {valid_acc:.4f}"
    seconds = f"{secs:.1f} s of training" if secs is not None else "training time not recorded"
    return f"run {run_id} ({name}, {images}): {figure}, {seconds}"


def report(args):
    with contextlib.closing(db.connect(args.db, readonly=True)) as conn:  # `with conn` alone would not close it
        rows = conn.execute("SELECT id, name, n_train, valid_accuracy, test_accuracy, reported_split, train_seconds,"
                            " config FROM runs ORDER BY id DESC LIMIT ?", (args.last,)).fetchall()
    if not rows:
        sys.exit(f"{paths.shown(args.db)}: no runs yet. {db.HOW_TO_RUN}")
    for row in reversed(rows):
        print(describe(row))


def predict(args):
    from . import images  # Pillow is only needed here

    if args.model is None:  # the best of the saved models that load, by the validation accuracy stored with each
        model, _, which, skipped = model_io.load_best(paths.SAVED_MODELS, paths.shown, inputs=784, outputs=10)
        for line in skipped:
            print(f"model: {line}", file=sys.stderr)
        print("model:", which)
    else:
        model = model_io.load_model(args.model, inputs=784, outputs=10)
    failed = 0
    for path in args.paths:  # a bad file is reported and the others are still read
        try:
            _, proba, _ = images.read(model, path)
        except images.ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        top = proba.argsort()[::-1][:3]
        print(f"{path}: {top[0]}  (" + ", ".join(f"{d}: {proba[d]:.3f}" for d in top) + ")")
    if failed:
        sys.exit(f"error: {failed} of {len(args.paths)} files could not be read")


def search(args):
    from . import search  # pandas-free, but only this command needs it

    unknown = sorted(set(args.only or ()) - set(search.LADDERS))
    if unknown:
        sys.exit(f"error: --only: no ladder {unknown}; the ladders are {sorted(search.LADDERS)}")
    dataset = data.load_mnist(args.data)
    pipeline.check_dataset(dataset, paths.shown(args.data or paths.DATA_PATH))
    command = "python -m helpers " + " ".join(args.argv)
    if args.final:
        run = search.final(dataset, args.final, seed=args.seeds[0], save=args.save, db_path=args.db,
                           results_path=args.results, command=command, progress=not args.quiet)
        print(f"{args.final}: test accuracy {run['metrics']['test_accuracy']:.4f} (final model, test set measured "
              f"once), {run['metrics']['train_seconds']:.1f} s of training; results in {paths.shown(args.results)}")
        return
    search.search(dataset, seeds=tuple(dict.fromkeys(args.seeds)), only=args.only, db_path=args.db,
                  results_path=args.results, dataset_name="mnist" if args.data is None else str(args.data),
                  processes=args.processes, command=command, progress=not args.quiet)
    print(f"results written to {paths.shown(args.results)}, runs in {paths.shown(args.db)}")


def build_data(args):
    print(f"wrote {paths.shown(data.build_npz(args.source, args.dest))}")


def migrate(args):
    db.connect(args.db).close()  # opening for writing migrates, in one transaction
    print(f"{paths.shown(args.db)}: schema version {db.SCHEMA_VERSION}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    db_default = paths.shown(paths.DB_PATH)
    p = sub.add_parser("train", help="train a recipe, write the run to the database, print the accuracy")
    p.add_argument("--recipe", choices=sorted(pipeline.RECIPES), default="default",
                   help="starting point (default: default)")
    p.add_argument("--hidden", type=_positive(1), nargs="+", metavar="N",
                   help="hidden layer sizes, e.g. --hidden 512 256")
    p.add_argument("--activation", choices=["relu", "sigmoid", "tanh"], help="hidden activation")
    p.add_argument("--batchnorm", action="store_true", help="a ConvNet recipe: batch norm after every conv and "
                   "hidden dense layer, before its ReLU")
    p.add_argument("--dropout", type=_dropout, metavar="P", help="a ConvNet recipe: dropout of P after every "
                   "hidden dense layer's ReLU, a number in [0, 1)")
    p.add_argument("--epochs", type=_positive(1), help="passes over the training set")
    p.add_argument("--batch-size", type=_positive(1), help="samples per gradient step")
    p.add_argument("--lr", type=_lr, help="initial learning rate, a finite number > 0")
    p.add_argument("--seed", type=_positive(0), default=0, help="seed for weights and shuffling (default: 0)")
    p.add_argument("--final", action="store_true",
                   help="train on all 60,000 training images, for a final model: once the recipe was chosen "
                        "on the validation set (the last 10,000), they can help the model too")
    p.add_argument("--data", help="an .npz or a folder of IDX files (default: data/mnist.npz)")
    p.add_argument("--db", default=paths.DB_PATH, help=f"SQLite file for the run (default: {db_default})")
    p.add_argument("--no-db", action="store_true", help="do not write the run to a database, nor look up a final "
                   "model's validation accuracy in one")
    p.add_argument("--save", nargs="?", const=paths.MODEL_PATH, metavar="PATH",
                   help=f"save the trained model (default path: {paths.shown(paths.MODEL_PATH)})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=train)
    p = sub.add_parser("predict", help="classify your own digit images (PNG, JPEG) with a saved model")
    p.add_argument("paths", nargs="+", help="image files")
    p.add_argument("--model", help="saved model (default: the one with the highest stored validation accuracy of "
                                   + ", ".join(paths.shown(p) for p in paths.SAVED_MODELS) + ")")
    p.set_defaults(func=predict)
    p = sub.add_parser("report", help="print the accuracy of the latest runs in the database")
    p.add_argument("--db", default=paths.DB_PATH, help=f"SQLite file (default: {db_default})")
    p.add_argument("--last", type=_positive(1, 2**63 - 1), default=2,  # 2**63 - 1: SQLite's largest INTEGER
                   help="how many runs (default: 2)")
    p.set_defaults(func=report)
    p = sub.add_parser("search", help="train the candidate recipes of search.py with paired seeds (hours; "
                       "resumable: runs already in its database are not trained again)")
    p.add_argument("--only", nargs="+", metavar="LADDER",
                   help="train only these ladders (default: all; the results file keeps every ladder)")
    p.add_argument("--seeds", type=_positive(0), nargs="+", default=[0, 1], help="seeds (default: 0 1)")
    p.add_argument("--processes", type=_positive(1, 8), default=2, help="runs side by side (default: 2)")
    p.add_argument("--data", help="an .npz or a folder of IDX files (default: data/mnist.npz)")
    p.add_argument("--db", default=paths.SEARCH_DB_PATH,
                   help=f"SQLite file of the search's runs (default: {paths.shown(paths.SEARCH_DB_PATH)})")
    p.add_argument("--results", default=paths.SEARCH_RESULTS,
                   help=f"results file (default: {paths.shown(paths.SEARCH_RESULTS)})")
    p.add_argument("--final", choices=sorted(pipeline.RECIPES), help="instead: train this recipe's final model "
                   "(all 60,000 images, the first --seeds seed), measure it on the test set once, record it")
    p.add_argument("--save", metavar="PATH", help="with --final: save the model there too")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=search)
    p = sub.add_parser("build-data", help="rebuild data/mnist.npz from the four original IDX files")
    p.add_argument("--source", required=True,
                   help="folder of the four MNIST IDX files (from Yann LeCun's MNIST page or a mirror)")
    p.add_argument("--dest", default=paths.DATA_PATH, help="output .npz (default: data/mnist.npz)")
    p.set_defaults(func=build_data)
    p = sub.add_parser("migrate", help="bring a database of an earlier schema version up to date, every run kept")
    p.add_argument("--db", default=paths.DB_PATH, help=f"SQLite file (default: {db_default})")
    p.set_defaults(func=migrate)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args.func(args)
    except (ValueError, RuntimeError, ArithmeticError) as e:  # our errors already name the file or argument
        sys.exit(f"error: {e}")
    except MemoryError:
        sys.exit(f"error: out of memory while running `{args.command}`; try a smaller network or file")
    except KeyboardInterrupt:  # Ctrl-C: files and runs are written in one step, so nothing is half-written
        print(f"interrupted: `{args.command}` stopped; nothing was half-written", file=sys.stderr)
        sys.exit(130)
    except OSError as e:  # e.g. a path inside a folder the user cannot enter: Path.is_file() raises there
        where = paths.shown(e.filename) if e.filename is not None else f"`{args.command}`"
        sys.exit(f"error: {where}: {e.strerror or e}")


if __name__ == "__main__":
    main()
