"""Benchmarks: helpers side by side with PyTorch, scikit-learn and a NumPy peer; writes BENCHMARKS.md.

Run with `make bench` (installs bench/requirements.txt into bench/.venv; about 8 minutes, of
which the long recipe takes most). Every comparison runs in this one process, interleaved
repeat by repeat, and is reported as the median over repeats with min and max, and as a ratio.

    python bench/run.py [--repeats 5] [--skip-long] [--out BENCHMARKS.md]
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from helpers import data, db, nn, paths, pipeline, training

THREADS = os.cpu_count()
SIZES, BATCH, LR = (784, 256, 10), 128, 0.1


def stats(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs, unit="s", digits=3):
    med, lo, hi = stats(xs)
    return f"{med:.{digits}f} {unit} [{lo:.{digits}f}–{hi:.{digits}f}]"


def epoch_flops(n, sizes=SIZES):
    """Multiply-adds x2 of the matrix products in one epoch: forward X@W per layer, backward
    a_prev.T@delta per layer and delta@W.T for every layer but the first."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 2 * n * sum(i * o * (3 if k else 2) for k, (i, o) in enumerate(pairs))


def matmul_peak(repeats):
    a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
    a @ a
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return [2 * 4096 ** 3 / t / 1e9 for t in times]


# --- Contenders: each makes a fresh 784-256-10 network and trains one epoch of plain SGD --------


class Helpers:
    name = "helpers (this project)"

    def __init__(self, width=256, seed=0):
        self.model, self.seed = nn.MLP((784, width, 10), seed=seed), seed

    def epochs(self, X, y, n_epochs, batch=BATCH):
        self.seed += 1  # a new shuffle on every call
        h = training.fit(self.model, X, y, epochs=n_epochs, batch_size=batch, lr=LR, progress=False, seed=self.seed)
        return list(np.diff([0.0] + h["seconds"]))  # training time only, as fit measures it

    def accuracy(self, X, y):
        return float((self.model.predict(X) == y).mean())


class Torch:
    name = "PyTorch (CPU)"

    def __init__(self, width=256, seed=0):
        import torch

        self.torch = torch
        torch.set_num_threads(THREADS)
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(784, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss = torch.nn.CrossEntropyLoss()

    def epochs(self, X, y, n_epochs, batch=BATCH):
        torch = self.torch
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
        times = []
        for _ in range(n_epochs):
            t = time.perf_counter()
            perm = torch.randperm(len(Xt))
            for i in range(0, len(Xt), batch):
                idx = perm[i:i + batch]
                self.opt.zero_grad(set_to_none=True)
                self.loss(self.model(Xt[idx]), yt[idx]).backward()
                self.opt.step()
            times.append(time.perf_counter() - t)
        return times

    def accuracy(self, X, y):
        with self.torch.no_grad():
            return float((self.model(self.torch.from_numpy(X)).argmax(1).numpy() == y).mean())


class Sklearn:
    name = "scikit-learn MLPClassifier"

    def __init__(self, width=256, seed=0):
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier((width,), solver="sgd", batch_size=BATCH, learning_rate_init=LR, momentum=0.0,
                                   nesterovs_momentum=False, alpha=0.0, random_state=seed)

    def epochs(self, X, y, n_epochs, batch=BATCH):
        times = []
        for _ in range(n_epochs):
            t = time.perf_counter()
            self.model.partial_fit(X, y, classes=np.arange(10))  # one pass over the data
            times.append(time.perf_counter() - t)
        return times

    def accuracy(self, X, y):
        return float((self.model.predict(X) == y).mean())


class Peer:
    name = "neural-network-digits 1.2.2 (NumPy)"

    def __init__(self, width=256, seed=0):
        from nn_digits.neural_net.network import NeuralNetwork

        self.net = NeuralNetwork(layers=(784, width, 10), activation="relu", seed=seed)
        self.rng = np.random.default_rng(seed)

    def epochs(self, X, y, n_epochs, batch=BATCH):
        Y, times = data.one_hot(y), []
        for _ in range(n_epochs):
            t = time.perf_counter()
            perm = self.rng.permutation(len(X))
            for i in range(0, len(X), batch):
                idx = perm[i:i + batch]
                self.net.train_step(X[idx], Y[idx], lr=LR, momentum=0.0, l2=0.0)
            times.append(time.perf_counter() - t)
        return times

    def accuracy(self, X, y):
        return float((self.net.predict(X).argmax(1) == y).mean())


def speed(X, y, X_test, y_test, repeats):
    """Point 1: seconds per epoch and accuracy after 3 epochs. The contenders take turns epoch by
    epoch, so a slow spell of this shared machine hits them alike; each epoch's time is also divided
    by helpers' time in the same turn (paired ratios)."""
    contenders = [Helpers, Torch, Sklearn, Peer]
    times, paired, acc = {c.name: [] for c in contenders}, {c.name: [] for c in contenders}, {}
    for r in range(repeats):
        runners = [c(seed=r) for c in contenders]
        for _ in range(3):
            turn = {c.name: runner.epochs(X, y, 1)[0] for c, runner in zip(contenders, runners)}
            for name, t in turn.items():
                times[name].append(t)
                paired[name].append(t / turn[Helpers.name])
        for c, runner in zip(contenders, runners):
            acc[c.name] = runner.accuracy(X_test, y_test)
    return times, paired, acc


# --- What each optimisation bought: the old way and the new way, side by side -------------------


def ablation_epoch(model, X, Y, perm, *, gather=True, inplace=True):
    """One epoch of plain SGD written out, with the old (False) or current (True) data path and update."""
    t = time.perf_counter()
    if not gather:
        X, Y = X[perm], Y[perm]  # one shuffled copy of the whole set per epoch
    for i in range(0, len(X), BATCH):
        idx = perm[i:i + BATCH] if gather else slice(i, i + BATCH)
        _, grads, _ = model._loss_and_grads(X[idx], Y[idx])
        for theta, nabla in zip(model.params, grads):
            if inplace:
                nabla *= LR
                theta -= nabla
            else:
                theta -= LR * nabla  # allocates a temporary the size of theta
    return time.perf_counter() - t


class LongWayMLP(nn.MLP):
    """The output delta through the softmax Jacobian and dL/dp, instead of the fused p - y."""

    def _loss_and_delta(self, out, Y):
        return nn.cross_entropy(self.log_p, Y), nn.softmax_backward(out, nn.cross_entropy_grad(out, Y))


def ablations(X, y, repeats):
    Y = data.one_hot(y)
    variants = {
        "current code": lambda: ablation_epoch(nn.MLP(SIZES), X, Y, perm),
        "one shuffled copy per epoch (instead of per-batch gather)": lambda: ablation_epoch(
            nn.MLP(SIZES), X, Y, perm, gather=False),
        "update allocating lr * nabla (instead of in place)": lambda: ablation_epoch(
            nn.MLP(SIZES), X, Y, perm, inplace=False),
        "float ReLU mask (a > 0).astype (instead of boolean)": lambda: ablation_epoch(
            float_mask(nn.MLP(SIZES)), X, Y, perm),
        "softmax Jacobian chain (instead of fused p - y)": lambda: ablation_epoch(LongWayMLP(SIZES), X, Y, perm),
        "float64 (instead of float32)": lambda: ablation_epoch(
            nn.MLP(SIZES, dtype=np.float64), X.astype(np.float64), Y.astype(np.float64), perm),
    }
    times = {k: [] for k in variants}
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        perm = rng.permutation(len(X))
        for k, run in variants.items():
            times[k].append(run())
    return times


def float_mask(model):
    model.f_prime = lambda a: (a > 0).astype(a.dtype)
    return model


# --- Points 3 to 6 ----------------------------------------------------------------------------------


def time_to_accuracy(dataset, recipe):
    """The recipe on 50,000 images, validated after every epoch (time to each validation threshold), then
    its final model on all 60,000 images, measured once on the test set (the protocol of the notebook)."""
    run = pipeline.train_recipe(recipe, dataset, progress=False)
    h = run["history"]
    first = {t: next((s for a, s in zip(h["valid_acc"], h["seconds"]) if a >= t), None) for t in (0.98, 0.985, 0.99)}
    final = pipeline.train_recipe(recipe, dataset, progress=False, final=True)
    pipeline.test_once(final, dataset)
    return final, first


def inference_and_storage(model, dataset, repeats):
    (x_train, y_train), (x_test, y_test) = dataset
    X_test = data.flatten(x_test)
    predict, write, read = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        proba = model.predict_proba(X_test)
        predict.append(len(X_test) / (time.perf_counter() - t))
        with tempfile.TemporaryDirectory() as tmp:
            run = dict(name="bench", config={}, dataset="mnist", history={k: [] for k in (
                "epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "seconds")},
                metrics=dict(train_accuracy=0, test_accuracy=0, train_loss=0, test_loss=0, train_seconds=0,
                             n_train=60_000),
                started_at="", finished_at="", versions={}, predictions={"test": (x_test, y_test, proba)})
            path = Path(tmp) / "bench.db"
            db.connect(path).close()  # create the schema first: time only the run's transaction
            t = time.perf_counter()
            run_id = db.save_run(path, **run)
            write.append(time.perf_counter() - t)
            conn = db.connect(path, readonly=True)
            t = time.perf_counter()
            rows = conn.execute("SELECT label, accuracy FROM digit_accuracy WHERE run_id = ? AND split = 'test'",
                                (run_id,)).fetchall()
            read.append(time.perf_counter() - t)
            conn.close()
            assert len(rows) == 10
    return predict, write, read


PEAK_RSS = """
from helpers import data, pipeline
pipeline.train_recipe("default", data.load_mnist(), progress=False)
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


def peak_rss_mib():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (this process) through exec
    out = subprocess.run([sys.executable, "-c", PEAK_RSS], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024  # kB


def scaling(X, y, repeats):
    widths, batches = (128, 256, 512, 1024, 2048), (32, 64, 128, 256, 512, 1024)
    result = {"width": {}, "batch": {}}
    for kind, values in (("width", widths), ("batch", batches)):
        for v in values:
            width, batch = (v, BATCH) if kind == "width" else (256, v)
            times = {c.name: [] for c in (Helpers, Torch)}
            for _ in range(repeats):  # the two take turns, so a slow spell hits both
                for c in (Helpers, Torch):
                    times[c.name].append(c(width=width).epochs(X, y, 1, batch=batch)[0])
            for name, t in times.items():
                result[kind].setdefault(name, []).append(statistics.median(t))
    return widths, batches, result


def where_the_time_goes(X, y, repeats):
    """The epoch split into its floor and its overheads, each measured alone (all take turns):
    the two large products (X @ W1 and X.T @ delta1) for every batch; the shuffle (per-batch gather);
    and a whole epoch of a 784-8-10 network, whose matrix products are negligible: Python and
    per-call costs of ~45 small NumPy operations per step."""
    W1 = np.zeros((784, 256), np.float32)
    delta = np.zeros((BATCH, 256), np.float32)
    perm = np.random.default_rng(0).permutation(len(X))

    def products():
        t = time.perf_counter()
        for i in range(0, len(X), BATCH):
            xb = X[i:i + BATCH]
            xb @ W1
            xb.T @ delta[:len(xb)]
        return time.perf_counter() - t

    def gather():
        t = time.perf_counter()
        for i in range(0, len(X), BATCH):
            X[perm[i:i + BATCH]]
        return time.perf_counter() - t

    def tiny():
        return Helpers(width=8).epochs(X, y, 1)[0]

    parts = {"large matrix products": products, "per-batch gather": gather, "a 784-8-10 epoch": tiny}
    times = {k: [] for k in parts}
    for _ in range(repeats):
        for k, f in parts.items():
            times[k].append(f())
    return times


def plot_scaling(widths, batches, result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, xs in ((axes[0], "width", widths), (axes[1], "batch", batches)):
        for name, ys in result[kind].items():
            ax.plot(xs, ys, "o-", label=name)
        ax.set(xscale="log", ylabel="seconds per epoch (median)",
               xlabel="hidden units (batch 128)" if kind == "width" else "batch size (256 hidden units)",
               title="Epoch time as the hidden layer widens" if kind == "width" else "Epoch time against batch size")
        ax.set_xticks(xs, labels=[str(x) for x in xs])
        ax.xaxis.set_minor_formatter(NullFormatter())  # no "2x10^2" labels between the ticks
        ax.set_ylim(bottom=0)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def verdict(ok):
    return "met" if ok else "**not met**"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of every timing (default 5)")
    parser.add_argument("--skip-long", action="store_true", help="skip the long recipe (about 4 minutes)")
    parser.add_argument("--out", type=Path, default=paths.ROOT / "BENCHMARKS.md", help="report to write")
    args = parser.parse_args()
    import sklearn
    import torch

    dataset = data.load_mnist()
    (x_train, y_train), (x_test, y_test) = dataset
    X, y, X_test = data.flatten(x_train), y_train.astype(np.int64), data.flatten(x_test)
    def step(title):
        print(title, flush=True)

    step("1. training speed")
    times, paired, acc = speed(X, y, X_test, y_test, args.repeats)
    step("2. matrix-multiply peak, and what each optimisation bought")
    peak, abl = matmul_peak(args.repeats), ablations(X, y, args.repeats)
    split = where_the_time_goes(X, y, args.repeats)
    step("3. time to accuracy")
    default_run, first = time_to_accuracy(dataset, "default")
    long_run = None if args.skip_long else time_to_accuracy(dataset, "long")
    step("4. inference and storage")
    predict, write, read = inference_and_storage(default_run["model"], dataset, args.repeats)
    step("5. peak memory")
    rss = peak_rss_mib()
    step("6. scaling")
    widths, batches, scale = scaling(X, y, max(3, args.repeats // 2))
    plot_path = args.out.with_name("BENCHMARKS_scaling.png")
    plot_scaling(widths, batches, scale, plot_path)

    ours = statistics.median(times[Helpers.name])
    flops = epoch_flops(len(X))
    achieved, peak_med = flops / ours / 1e9, statistics.median(peak)
    ratio = {k: statistics.median(v) for k, v in paired.items()}
    import nn_digits  # noqa: F401  (its version is the pinned one)

    L = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`bench/run.py`) on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{THREADS} cores, Python {platform.python_version()}, NumPy {np.__version__}, PyTorch {torch.__version__} "
        f"({torch.get_num_threads()} threads), scikit-learn {sklearn.__version__}. Every number is a median over "
        f"{args.repeats} repeats measured in the same run, with [min–max]. This machine is shared and has slow "
        "and fast spells, so absolute seconds vary between runs; the side-by-side ratios are the result.",
        "",
        "## 1. Training speed: one epoch of 784-256-10",
        "",
        "ReLU, softmax cross-entropy, batches of 128, plain SGD (learning rate 0.1, no momentum, no weight decay), "
        f"float32, 60,000 images. {args.repeats} repeats of 3 epochs from a fresh network; the contenders take "
        "turns epoch by epoch. The time relative to helpers is the median of the ratios of epochs run in the "
        "same turn, so that the machine's slow and fast spells cancel.",
        "",
        "| implementation | seconds per epoch | time relative to helpers [min–max] | test accuracy after 3 epochs |",
        "| --- | --- | --- | --- |",
    ]
    L += [f"| {k} | {fmt(v)} | {ratio[k]:.2f}x [{min(paired[k]):.2f}–{max(paired[k]):.2f}] | {acc[k]:.2%} |"
          for k, v in times.items()]
    torch_x, peer_x = ratio[Torch.name], ratio[Peer.name]
    L += [
        "",
        f"helpers is **{torch_x:.2f}x** as fast as PyTorch on the CPU (target 1.5x: {verdict(torch_x >= 1.5)}) and "
        f"**{peer_x:.2f}x** as fast as the NumPy peer (target 1.25x: {verdict(peer_x >= 1.25)}).",
        "",
        "## 2. Distance to the machine's limit",
        "",
        f"One epoch is {flops / 1e9:.1f} GFLOP of matrix products (forward `X @ W` per layer; backward "
        "`a_prev.T @ delta` per layer and `delta @ W.T` for the second layer). The float32 matrix-multiply peak, "
        f"a 4096x4096 product with NumPy in this run, is {fmt(peak, 'GFLOP/s', 0)}. helpers achieves "
        f"{achieved:.0f} GFLOP/s, **{achieved / peak_med:.0%} of the peak** (target 70%: "
        f"{verdict(achieved / peak_med >= 0.7)}).",
        "",
        "Where the time goes (each part measured alone, taking turns; medians):",
        "",
        "| part of an epoch | seconds |",
        "| --- | --- |",
        f"| whole epoch of helpers (section 1) | {ours:.3f} |",
        *[f"| {k} | {fmt(v)} |" for k, v in split.items()],
        "",
        f"The two large products alone run at "
        f"{2 * 2 * len(X) * 784 * 256 / statistics.median(split['large matrix products']) / 1e9 / peak_med:.0%} "
        "of the peak. What stops the whole epoch short of 70% is the rest: shuffling 188 MB of images "
        "into batches, and 469 steps of small NumPy calls whose cost does not shrink with the network "
        "(the 784-8-10 epoch). Removing them would mean fusing operations below NumPy, which a "
        "from-scratch NumPy tutorial does not do.",
        "",
        "### What each optimisation bought",
        "",
        "The same epoch written out in `bench/run.py`, with one optimisation undone at a time "
        "(all variants take turns within each repeat):",
        "",
        "| variant | seconds per epoch | relative to current |",
        "| --- | --- | --- |",
    ]
    base = statistics.median(abl["current code"])
    L += [f"| {k} | {fmt(v)} | {statistics.median(v) / base:.2f}x |" for k, v in abl.items()]
    h = default_run["history"]
    L += [
        "",
        "## 3. Time to accuracy",
        "",
        "Training seconds (validation excluded) on the first 50,000 training images until the validation "
        "accuracy (the last 10,000 training images), measured after each epoch, first reaches a threshold; then "
        "the final model, the same recipe trained on all 60,000 images, measured once on the 10,000 test images.",
        "",
        "| recipe | valid 98.0% | valid 98.5% | valid 99.0% | final model: test accuracy | final model: training "
        "seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def row(name, run, first):
        cells = [f"{first[t]:.1f} s" if first[t] is not None else "not reached" for t in (0.98, 0.985, 0.99)]
        return (f"| {name} | " + " | ".join(cells) +
                f" | {run['metrics']['test_accuracy']:.2%} | {run['history']['seconds'][-1]:.1f} |")

    L.append(row("default (784-256-10, 20 epochs)", default_run, first))
    if long_run:
        L.append(row("long (784-1024-1024-10, 40 epochs)", *long_run))
    t98 = first[0.98]
    long_ok = long_run and (long_run[0]["metrics"]["test_accuracy"] >= 0.99 and
                            long_run[0]["history"]["seconds"][-1] <= 600)
    L += [
        "",
        f"Targets: validation accuracy 98.0% within 8 s: {verdict(t98 is not None and t98 <= 8)}; the default "
        f"recipe's final model at least 98.5% test accuracy within 60 s: "
        f"{verdict(default_run['metrics']['test_accuracy'] >= 0.985 and h['seconds'][-1] <= 60)}"
        + ("" if not long_run else f"; long recipe at least 99.0% within 600 s: {verdict(long_ok)}")
        + ".",
        "",
        "## 4. Inference and storage",
        "",
        f"- Predictions on the 10,000 test images: {fmt(predict, 'images/s', 0)}.",
        f"- Writing one run with 10,000 predictions and their images to SQLite (one transaction): {fmt(write)}.",
        f"- Reading the viewer's per-digit accuracy query back: {fmt([r * 1000 for r in read], 'ms', 1)}.",
        "",
        "## 5. Peak memory",
        "",
        f"Peak resident memory of a process that loads MNIST and trains the default recipe: {rss:.0f} MiB.",
        "",
        "## 6. Scaling",
        "",
        "Seconds per epoch (median) as the hidden layer widens and as the batch size changes:",
        "",
        "| hidden units | " + " | ".join(str(w) for w in widths) + " |",
        "| --- |" + " --- |" * len(widths),
    ]
    L += [f"| {k} | " + " | ".join(f"{t:.2f}" for t in v) + " |" for k, v in scale["width"].items()]
    L += ["", "| batch size | " + " | ".join(str(b) for b in batches) + " |", "| --- |" + " --- |" * len(batches)]
    L += [f"| {k} | " + " | ".join(f"{t:.2f}" for t in v) + " |" for k, v in scale["batch"].items()]
    L += ["", f"![Epoch time against width and batch size]({plot_path.name})", ""]
    args.out.write_text("\n".join(L))
    step(f"wrote {args.out} and {plot_path}")


if __name__ == "__main__":
    main()
