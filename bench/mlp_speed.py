"""Sections 1, 2 and 6 of BENCHMARKS.md: one epoch of 784-256-10 in helpers, PyTorch, scikit-learn and a
NumPy peer, taking turns; what each optimisation bought; where the time goes; and scaling."""
import statistics
import time

import numpy as np
from common import BATCH, LR, SIZES, THREADS

from helpers import data, nn, training


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
        _, grads, _ = model.loss_grads_and_output(X[idx], Y[idx])
        for theta, nabla in zip(model.params, grads):
            if inplace:
                nabla *= LR
                theta -= nabla
            else:
                theta -= LR * nabla  # allocates a temporary the size of theta
    return time.perf_counter() - t


class LongWayMLP(nn.MLP):
    """The output delta through the softmax Jacobian and dL/dp, instead of the fused p - y."""

    def loss_and_delta(self, out, Y):
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
