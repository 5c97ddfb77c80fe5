"""Section 7 of BENCHMARKS.md: helpers' ConvNet against the same network in PyTorch, where its time goes,
and (from run.py's time_to_accuracy) how long the conv recipes take to reach 99.0%, 99.3%, 99.5% and 99.6%.

The network of helpers/convnet.py, ConvNet(): conv 5x5 1->16, ReLU, max-pool 2, conv 5x5 16->32, ReLU,
max-pool 2, 512->128->10, softmax cross-entropy; SGD with momentum 0.9 (learning rate 0.05), batches
of 128, float32. The two take turns round by round (a round: ROUND batches each, the same images),
so that the machine's slow and fast spells cancel in the ratio of each round.
"""
import statistics
import time
from collections import defaultdict

import numpy as np
from common import BATCH, accuracy_row, fmt, verdict

from helpers import conv, data, layers, training
from helpers.convnet import ConvNet

ROUND = 40  # batches per turn
THRESHOLDS = (0.99, 0.993, 0.995, 0.996)  # validation accuracies timed
TARGETS = {"conv": (0.9945, 180), "conv-long": (0.996, 1800)}  # test accuracy within seconds of training


def _torch_net():
    import torch

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(512, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    return net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), torch.nn.CrossEntropyLoss()


def speed(X, y, repeats):
    """{name: [ms per batch, one per round]} and the per-round ratios PyTorch / helpers."""
    import torch

    n = ROUND * BATCH
    x_t, y_t = torch.from_numpy(X[:n].reshape(-1, 1, 28, 28)), torch.from_numpy(y[:n].astype(np.int64))
    Y = data.one_hot(y[:n], 10, np.float32)
    net, opt, loss_fn = _torch_net()
    model = ConvNet(seed=0)
    sgd = training.SGD(model.params, momentum=0.9)

    def torch_round():
        for i in range(0, n, BATCH):
            opt.zero_grad()
            loss_fn(net(x_t[i:i + BATCH]), y_t[i:i + BATCH]).backward()
            opt.step()

    def helpers_round():
        for i in range(0, n, BATCH):
            _, grads, _ = model.loss_grads_and_output(X[i:i + BATCH], Y[i:i + BATCH])
            sgd.step(grads, 0.05)

    rounds = {"helpers ConvNet": helpers_round, f"PyTorch {torch.__version__}": torch_round}
    for run in rounds.values():
        run()  # warm-up: first calls allocate
    times = {name: [] for name in rounds}
    for _ in range(repeats):
        for name, run in rounds.items():
            t = time.perf_counter()
            run()
            times[name].append(1000 * (time.perf_counter() - t) / ROUND)
    ours, theirs = times.values()
    return times, [a / b for a, b in zip(ours, theirs)]


def where_the_time_goes(X, y, repeats):
    """{part: share of helpers' training step}, from the layers' own calls, timed while training."""
    n = ROUND * BATCH
    Y = data.one_hot(y[:n], 10, np.float32)
    model = ConvNet(seed=0)
    spent = defaultdict(float)

    def timed(part, f):
        def wrapper(*args):
            t = time.perf_counter()
            out = f(*args)
            spent[part] += time.perf_counter() - t
            return out
        return wrapper

    products = "convolutions: matrix products and bias"
    parts = {conv.Conv2D: products, conv.MaxPool2D: "max-pooling, forward and backward",
             layers.ReLU: "ReLU, forward and backward", layers.Dense: "dense layers", layers.Flatten: "rest"}
    for layer in model.layers:
        layer.forward, layer.backward = (timed(parts[type(layer)], f) for f in (layer.forward, layer.backward))
    originals = conv.im2col, conv.col2im
    conv.im2col, conv.col2im = timed("im2col copies", conv.im2col), timed("col2im accumulation", conv.col2im)
    try:
        t = time.perf_counter()
        for _ in range(repeats):
            for i in range(0, n, BATCH):
                model.loss_grads_and_output(X[i:i + BATCH], Y[i:i + BATCH])
        total = time.perf_counter() - t
    finally:
        conv.im2col, conv.col2im = originals
    spent[products] -= spent["im2col copies"] + spent["col2im accumulation"]  # they were timed inside it
    spent["rest"] += total - sum(spent.values())  # softmax, loss, slicing the batch
    return {part: spent[part] / total for part in sorted(spent, key=spent.get, reverse=True)}


def report(times, ratios, shares, repeats, runs):
    """The markdown lines of section 7. runs: {recipe name: (final run, {threshold: seconds or None})}."""
    (ours_name, ours), (torch_name, theirs) = times.items()
    ratio = statistics.median(ratios)
    per_epoch = {name: [t * 469 / 1000 for t in v] for name, v in times.items()}  # 60,000 images
    lines = [
        "## 7. The convolutional network (Conv_net.ipynb): against PyTorch, and time to accuracy",
        "",
        "helpers' `ConvNet()` (conv 5x5 1->16, ReLU, max-pool 2, conv 5x5 16->32, ReLU, max-pool 2, 512->128->10, "
        "im2col in NumPy) and the same network in PyTorch: SGD with momentum 0.9, batches of 128, float32. "
        f"{repeats} rounds of {ROUND} batches each, taking turns; the ratio is the median of the rounds' ratios. "
        "Seconds per epoch are the batch time times 469 (60,000 images).",
        "",
        "| implementation | ms per batch | seconds per epoch |",
        "| --- | --- | --- |",
        f"| {ours_name} | {fmt(ours, 'ms', 1)} | {fmt(per_epoch[ours_name], 's', 1)} |",
        f"| {torch_name} | {fmt(theirs, 'ms', 1)} | {fmt(per_epoch[torch_name], 's', 1)} |",
        "",
        f"helpers takes **{ratio:.2f}x** PyTorch's time [{min(ratios):.2f}–{max(ratios):.2f}] (target: within 1.5x: "
        f"{verdict(ratio <= 1.5)}).",
        "",
        "Where helpers' training step spends its time (each layer's calls timed while training):",
        "",
        "| part | share |",
        "| --- | --- |",
        *[f"| {part} | {share:.0%} |" for part, share in shares.items()],
        "",
        "Time to accuracy, as in section 3: training seconds on 50,000 images until the validation accuracy, "
        "measured after each epoch, first reaches a threshold; then the final model on all 60,000 images, "
        "measured once on the test set.",
        "",
        "| recipe | " + " | ".join(f"valid {t:.1%}" for t in THRESHOLDS) + " | final model: test accuracy | "
        "final model: training seconds |",
        "| --- |" + " --- |" * (len(THRESHOLDS) + 2),
    ]
    lines += [accuracy_row(name, run, first) for name, (run, first) in runs.items()]
    targets = []
    for name, (accuracy, seconds) in TARGETS.items():
        if name not in runs:
            targets.append(f"{name}: not run in this benchmark")
        else:
            run = runs[name][0]
            ok = run["metrics"]["test_accuracy"] >= accuracy and run["history"]["seconds"][-1] <= seconds
            targets.append(f"{name} at least {accuracy:.2%} within {seconds / 60:.0f} minutes: {verdict(ok)}")
    lines += ["", "Targets (final model, test set once): " + "; ".join(targets) + "."]
    return lines
