"""The notebook's pipeline as a command: `python -m helpers train|predict|report|build-data`.

Run `python -m helpers --help` (or `python -m helpers train --help`) for the options.
"""
import argparse
import json
import sys

from . import data, db, model_io, paths, pipeline


def train(args):
    recipe = dict(pipeline.RECIPES[args.recipe])
    for key in ("epochs", "batch_size", "lr"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    if args.hidden is not None:
        recipe["sizes"] = (784, *args.hidden, 10)
    if args.activation is not None:
        recipe["activation"] = args.activation
    print(f"recipe {args.recipe}: {json.dumps(recipe)}")
    dataset = data.load_mnist(args.data)
    run = pipeline.train_recipe(recipe, dataset, seed=args.seed, name=args.recipe, progress=not args.quiet)
    if args.save:
        print(f"model saved to {model_io.save_model(run['model'], args.save)}")
    if not args.no_db:
        dataset_name = "mnist" if args.data is None else str(args.data)
        print(f"run {pipeline.save_run(args.db, run, dataset, dataset_name)} written to {args.db}")
    metrics = run["metrics"]
    print(f"train accuracy {metrics['train_accuracy']:.4f}, test accuracy {metrics['test_accuracy']:.4f}, "
          f"{metrics['train_seconds']:.1f} s of training")


def report(args):
    conn = db.connect(args.db, readonly=True)
    rows = conn.execute("SELECT id, name, test_accuracy, train_seconds FROM runs ORDER BY id DESC LIMIT ?",
                        (args.last,)).fetchall()
    conn.close()
    if not rows:
        sys.exit(f"{args.db}: no runs yet")
    for run_id, name, acc, secs in reversed(rows):
        print(f"run {run_id} ({name}): test accuracy {acc:.4f} after {secs:.1f} s of training")


def predict(args):
    from . import images  # Pillow is only needed here

    model = model_io.load_model(args.model)
    for path in args.paths:
        _, proba, _ = images.read(model, path)
        top = proba.argsort()[::-1][:3]
        print(f"{path}: {top[0]}  (" + ", ".join(f"{d}: {proba[d]:.3f}" for d in top) + ")")


def build_data(args):
    print(f"wrote {data.build_npz(args.source, args.dest)}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a recipe, write the run to the database, print the accuracy")
    p.add_argument("--recipe", choices=sorted(pipeline.RECIPES), default="default",
                   help="starting point (default: default)")
    p.add_argument("--hidden", type=int, nargs="+", metavar="N", help="hidden layer sizes, e.g. --hidden 512 256")
    p.add_argument("--activation", choices=["relu", "sigmoid", "tanh"], help="hidden activation")
    p.add_argument("--epochs", type=int, help="passes over the training set")
    p.add_argument("--batch-size", type=int, help="samples per gradient step")
    p.add_argument("--lr", type=float, help="initial learning rate")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and shuffling (default: 0)")
    p.add_argument("--data", help="an .npz or a folder of IDX files (default: data/mnist.npz)")
    p.add_argument("--db", default=paths.DB_PATH, help=f"SQLite file for the run (default: {paths.DB_PATH})")
    p.add_argument("--no-db", action="store_true", help="do not write the run to a database")
    p.add_argument("--save", nargs="?", const=paths.MODEL_PATH, metavar="PATH",
                   help=f"save the trained model (default path: {paths.MODEL_PATH})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=train)
    p = sub.add_parser("predict", help="classify your own digit images (PNG, JPEG) with a saved model")
    p.add_argument("paths", nargs="+", help="image files")
    p.add_argument("--model", default=paths.MODEL_PATH, help=f"saved model (default: {paths.MODEL_PATH})")
    p.set_defaults(func=predict)
    p = sub.add_parser("report", help="print the test accuracy of the latest runs in the database")
    p.add_argument("--db", default=paths.DB_PATH, help=f"SQLite file (default: {paths.DB_PATH})")
    p.add_argument("--last", type=int, default=2, help="how many runs (default: 2)")
    p.set_defaults(func=report)
    p = sub.add_parser("build-data", help="rebuild data/mnist.npz from the four original IDX files")
    p.add_argument("--source", default=paths.SHARED_MNIST, help=f"IDX folder (default: {paths.SHARED_MNIST})")
    p.add_argument("--dest", default=paths.DATA_PATH, help=f"output .npz (default: {paths.DATA_PATH})")
    p.set_defaults(func=build_data)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, RuntimeError, ArithmeticError) as e:  # our errors already name the file or argument
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
