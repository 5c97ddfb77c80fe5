"""Section 7 of BENCHMARKS.md: helpers' ConvNets against the same networks in PyTorch, where their time
goes, what each optimisation bought, and (from the search's results file) how long the chosen conv
recipes take to reach 99.0%, 99.3%, 99.5% and 99.6% validation, and their final models' test accuracy.

Three architectures (ARCHS): the conv recipe's ConvNet() (conv 5x5 1->16, ReLU, max-pool 2, conv 5x5
16->32, ReLU, max-pool 2, 512->128->10), conv-long's (32 and 64 channels, 1024->256->10), and
conv-long's with batch norm after every conv and hidden dense layer and dropout 0.4 (the layers the
search tried; a step with batch norm is not split over threads, parallel.py). The PyTorch twin is
built from the same layer specs. SGD with momentum 0.9, batches of 128, float32, both on the
machine's threads. helpers and PyTorch take turns round by round (a round: ROUND batches each, the
same images), so that the machine's slow and fast spells cancel in each round's ratio.

    python bench/conv_speed.py [--repeats 7] [--out BENCHMARKS.md]
rewrites section 7 (between its markers) in --out, as `make bench` writes it: it trains nothing (about
8 minutes); the time to accuracy comes from the search's committed results file.
"""
import argparse
import contextlib
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import numpy as np
from common import BATCH, THREADS, fmt, verdict
from numpy.lib.stride_tricks import sliding_window_view

from helpers import conv, data, layers, parallel, paths, search, sequential, training
from helpers.convnet import ConvNet

ROUND = 25  # batches per turn
THRESHOLDS = (0.99, 0.993, 0.995, 0.996)  # validation accuracies timed
TARGETS = {"conv": (0.9945, 180), "conv-long": (0.996, 1800)}  # test accuracy within seconds of training
SPEED_TARGET = 1.25  # helpers' time per batch at most this many times PyTorch's, for every architecture
ARCHS = {"conv": {}, "conv-long": dict(channels=(32, 64), hidden=256),
         "conv-long + batch norm, dropout 0.4": dict(channels=(32, 64), hidden=256, batchnorm=True, dropout=0.4)}
BEGIN, END = "<!-- section 7: python bench/conv_speed.py rewrites what follows -->", "<!-- end of section 7 -->"


def torch_twin(model):
    """The same network as helpers' Sequential `model`, in PyTorch, from its layer specs."""
    import torch.nn as tn

    mods, shape = [], model.input_shape
    for spec, out_shape, _, _ in sequential.plan(model.specs, model.input_shape):
        kind, c_in = spec["type"], shape[0]
        if kind == "conv":
            mods.append(tn.Conv2d(c_in, spec["channels"], spec["kernel"], spec["stride"], spec["padding"]))
        elif kind == "dense":
            mods.append(tn.Linear(shape[0], spec["units"]))
        elif kind == "batchnorm":
            mods.append((tn.BatchNorm2d if len(shape) == 3 else tn.BatchNorm1d)(c_in, momentum=spec["momentum"]))
        elif kind == "maxpool":
            mods.append(tn.MaxPool2d(spec["size"]))
        elif kind == "dropout":
            mods.append(tn.Dropout(spec["p"]))
        else:
            mods.append({"relu": tn.ReLU, "flatten": tn.Flatten}[kind]())
        shape = out_shape
    return tn.Sequential(*mods)


def _rounds(X, y, kw):
    """Two functions, each training ROUND batches: helpers' ConvNet(**kw) and its PyTorch twin."""
    import torch

    n = ROUND * BATCH
    x_t, y_t = torch.from_numpy(X[:n].reshape(-1, 1, 28, 28)), torch.from_numpy(y[:n].astype(np.int64))
    Y = data.one_hot(y[:n], 10, np.float32)
    model = ConvNet(seed=0, **kw)
    net = torch_twin(model)
    opt, loss_fn = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), torch.nn.CrossEntropyLoss()

    def torch_round():
        for i in range(0, n, BATCH):
            opt.zero_grad()
            loss_fn(net(x_t[i:i + BATCH]), y_t[i:i + BATCH]).backward()
            opt.step()
    return _helpers_round(model, X[:n], Y), torch_round


def _helpers_round(model, X, Y, split=True):
    """A function training model on X, Y (ROUND batches) as fit does: SGD with momentum, fit's step
    (split over the threads where the model allows, parallel.py) or, split=False, the step in one thread."""
    sgd = training.SGD(model.params, momentum=0.9)
    step = parallel.step_for(model, np.random.default_rng(0)) if split else model.loss_grads_and_output

    def helpers_round():
        for i in range(0, len(X), BATCH):
            _, grads, _ = step(X[i:i + BATCH], Y[i:i + BATCH])
            sgd.step(grads, 0.05)
    return helpers_round


def _timed(run, per=ROUND):
    t = time.perf_counter()
    run()
    return 1000 * (time.perf_counter() - t) / per  # ms per batch


def speed(X, y, repeats):
    """{arch: ([helpers ms per batch], [PyTorch ms per batch], [ratio helpers / PyTorch])}, one value per
    round; the architectures and the two implementations all take turns within each repeat."""
    runs = {name: _rounds(X, y, kw) for name, kw in ARCHS.items()}
    for pair in runs.values():
        for run in pair:
            run()  # warm-up: first calls allocate
    out = {name: ([], [], []) for name in runs}
    for _ in range(repeats):
        for name, (ours, theirs) in runs.items():
            a, b = _timed(ours), _timed(theirs)
            out[name][0].append(a), out[name][1].append(b), out[name][2].append(a / b)
    return out


def prediction(X_test, repeats):
    """{arch: ([helpers images/s], [PyTorch images/s])}: all of X_test in eval mode, 1,000 images at a time
    (helpers' ConvNet.max_batch), PyTorch under torch.inference_mode; taking turns."""
    import torch

    x_t, nets = torch.from_numpy(X_test.reshape(-1, 1, 28, 28)), {}
    for name, kw in ARCHS.items():
        model = ConvNet(seed=0, **kw)
        net = torch_twin(model).eval()
        nets[name] = (lambda m=model: m.predict_proba(X_test), lambda net=net: _torch_predict(net, x_t))
    out = {name: ([], []) for name in nets}
    for _ in range(repeats):
        for name, pair in nets.items():
            for i, run in enumerate(pair):
                out[name][i].append(len(X_test) / (_timed(run, 1) / 1000))
    return out


def _torch_predict(net, x):
    import torch

    with torch.inference_mode():
        return torch.cat([torch.softmax(net(x[i:i + 1000]), 1) for i in range(0, len(x), 1000)])


PARTS = {conv.Conv2D: "convolutions: matrix products and bias", conv.MaxPool2D: "max-pooling, forward and backward",
         layers.ReLU: "ReLU, forward and backward", layers.Dense: "dense layers", layers.Flatten: "rest",
         layers.BatchNorm: "batch norm, forward and backward", layers.Dropout: "dropout, forward and backward"}


def where_the_time_goes(X, y, repeats, kw):
    """{part: share of helpers' training step} of ConvNet(**kw), from the layers' own calls, timed while training."""
    n = ROUND * BATCH
    Y = data.one_hot(y[:n], 10, np.float32)
    model = ConvNet(seed=0, **kw)
    spent = defaultdict(float)

    def timed(part, f):
        def wrapper(*args):
            t = time.perf_counter()
            out = f(*args)
            spent[part] += time.perf_counter() - t
            return out
        return wrapper

    products = PARTS[conv.Conv2D]
    for layer in model.layers:
        layer.forward, layer.backward = (timed(PARTS[type(layer)], f) for f in (layer.forward, layer.backward))
    originals = conv.im2col, conv.col2im
    conv.im2col, conv.col2im = timed("im2col copies", conv.im2col), timed("col2im accumulation", conv.col2im)
    try:
        model.loss_grads_and_output(X[:BATCH], Y[:BATCH])  # warm-up
        spent.clear()
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


# --- What each optimisation bought: the old way patched in, one at a time, taking turns ------------


def _flatten_nchw_backward(self, dout):
    return dout.reshape(self.like.shape)  # C order: NCHW, unlike the NHWC memory of the layers before


def _im2col_no_one_channel_path(x, k, p, s=1):
    n, h, w, c = x.shape
    if p:
        x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * c)


def _nchw_outputs(f):
    def wrapper(self, x, *args):
        out = f(self, x, *args)
        return None if out is None else np.ascontiguousarray(out)  # every conv output and input gradient NCHW
    return wrapper


def _maxpool_c_order_masks(self, x, train=True):
    views = self._check(x)
    out = views[0].copy(order="K")
    for v in views[1:]:
        np.maximum(out, v, out=out)
    if train:
        self.x, self.first, taken = x, [], np.zeros(out.shape, dtype=bool)  # C order, not out's
        for v in views:
            is_first = (v == out) & ~taken
            taken |= is_first
            self.first.append(is_first)
    return out


def _conv_backward_one_product(self, dout):
    n, c, h, w = self.x_shape
    k, p = self.k, self.padding
    _, c_out, ho, wo = dout.shape
    d = dout.transpose(0, 2, 3, 1).reshape(n * ho * wo, c_out)
    self.grads = [self.cols.T @ d, layers.column_sums(d)]
    if not self.input_grad:
        return None
    dcols = (d @ self.W.T).reshape(n, ho, wo, k, k, c).transpose(3, 4, 0, 1, 2, 5)  # strided blocks
    return conv.col2im(dcols, (n, h, w, c), p, self.stride).transpose(0, 3, 1, 2)


VARIANTS = {  # name: the (object, attribute, old value) pairs that undo one optimisation
    "Flatten's gradient in NCHW order (instead of its input's NHWC memory)":
        [(layers.Flatten, "backward", _flatten_nchw_backward)],
    "bias gradients by a.sum(axis=0) (instead of ones @ a)": [(conv, "column_sums", lambda a: a.sum(axis=0))],
    "first layer's im2col by windows of one value (instead of 25 shifted copies)":
        [(conv, "im2col", _im2col_no_one_channel_path)],
    "conv outputs and gradients stored NCHW (instead of NHWC)":
        [(conv.Conv2D, "forward", _nchw_outputs(conv.Conv2D.forward)),
         (conv.Conv2D, "backward", _nchw_outputs(conv.Conv2D.backward))],
    "max-pooling's masks in C order (instead of the input's memory order)":
        [(conv.MaxPool2D, "forward", _maxpool_c_order_masks)],
    "dloss/dcols as one product d W^T (instead of one per kernel offset)":
        [(conv.Conv2D, "backward", _conv_backward_one_product)],
}


def _patched(pairs):
    """The (object, attribute, value) pairs patched in for a with-block, as unittest.mock does."""
    stack = contextlib.ExitStack()
    for obj, name, value in pairs:
        stack.enter_context(mock.patch.object(obj, name, value))
    return stack


def ablations(X, y, repeats):
    """{variant: [ms per batch of the conv recipe's ConvNet, one per repeat]}, every variant in each repeat."""
    n = ROUND * BATCH
    Y = data.one_hot(y[:n], 10, np.float32)
    X64, Y64 = X[:n].astype(np.float64), Y.astype(np.float64)

    variants = {"current code": ([], _helpers_round(ConvNet(seed=0), X[:n], Y))}
    variants.update({name: (pairs, _helpers_round(ConvNet(seed=0), X[:n], Y)) for name, pairs in VARIANTS.items()})
    variants["the batch in one thread, BLAS's threads only (instead of split over the cores, parallel.py)"] = (
        [], _helpers_round(ConvNet(seed=0), X[:n], Y, split=False))
    variants["float64 (instead of float32)"] = ([], _helpers_round(ConvNet(seed=0, dtype=np.float64), X64, Y64))
    times = {name: [] for name in variants}
    for r in range(repeats + 1):
        for name, (pairs, go) in variants.items():
            with _patched(pairs):
                ms = _timed(go)
            if r:  # the first repeat warms up
                times[name].append(ms)
    return times


def _ms(xs):
    return f"{statistics.median(xs):.1f} ms [{min(xs):.1f}–{max(xs):.1f}]"


def speed_report(times, predicted, shares, ablated, repeats, peak):
    """The markdown lines of section 7's speed part, between its markers."""
    import torch

    lines = [
        f"Written by `python bench/conv_speed.py --repeats {repeats}` on {time.strftime('%Y-%m-%d')} "
        f"({platform.machine()}, {THREADS} threads for NumPy's BLAS and PyTorch {torch.__version__}; this run's "
        f"float32 matrix-multiply peak {fmt(peak, 'GFLOP/s', 0)}, which says how busy the shared machine was). "
        "Training steps on batches of 128 (SGD with momentum), "
        f"{repeats} rounds of {ROUND} batches per implementation and architecture, taking turns; a ratio is the "
        "median of the rounds' ratios, [min–max] over rounds.",
        "",
        "| architecture | helpers, ms per batch | PyTorch, ms per batch | helpers' time / PyTorch's | "
        f"target at most {SPEED_TARGET}x |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, (ours, theirs, ratios) in times.items():
        r = statistics.median(ratios)
        lines.append(f"| {name} | {_ms(ours)} | {_ms(theirs)} | **{r:.2f}x** [{min(ratios):.2f}–{max(ratios):.2f}] | "
                     f"{verdict(r <= SPEED_TARGET)} |")
    lines += ["", "Prediction of the 10,000 test images in eval mode, 1,000 at a time (PyTorch under "
              "`torch.inference_mode`), images per second:", "",
              "| architecture | helpers | PyTorch | helpers / PyTorch | target at least 1x |",
              "| --- | --- | --- | --- | --- |"]
    for name, (ours, theirs) in predicted.items():
        r = statistics.median([a / b for a, b in zip(ours, theirs)])
        lines.append(f"| {name} | {statistics.median(ours):,.0f} | {statistics.median(theirs):,.0f} | {r:.2f}x | "
                     f"{verdict(r >= 1)} |")
    names = list(shares)
    parts = sorted({p for s in shares.values() for p in s}, key=lambda p: -max(s.get(p, 0) for s in shares.values()))
    lines += ["", "Where helpers' training step spends its time (each layer's calls timed while training, the "
              "batch in one thread):", "",
              "| part | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    lines += [f"| {p} | " + " | ".join(f"{shares[n].get(p, 0):.0%}" for n in names) + " |" for p in parts]
    base = statistics.median(ablated["current code"])
    lines += ["", "What each optimisation bought: the conv recipe's ConvNet with one optimisation undone at a time "
              "(the old way is in this file), all variants taking turns in every repeat:", "",
              "| variant | ms per batch | relative to current |", "| --- | --- | --- |"]
    lines += [f"| {name} | {_ms(v)} | {statistics.median(v) / base:.2f}x |" for name, v in ablated.items()]
    return lines


def measure_speed(X, y, X_test, repeats):
    """Everything speed_report needs, measured in this process."""
    from common import matmul_peak

    peak = matmul_peak(repeats)
    times = speed(X, y, repeats)
    predicted = prediction(X_test, repeats)
    shares = {name: where_the_time_goes(X, y, max(2, repeats // 2), kw) for name, kw in ARCHS.items()}
    ablated = ablations(X, y, repeats)
    return speed_report(times, predicted, shares, ablated, repeats, peak)


def accuracy_from_search(content):
    """Section 7's time-to-accuracy lines, from the search's results file (content: search.load()): for the
    row each ladder's rule keeps, the training seconds of each seed's run until its validation accuracy
    first reaches each threshold, and the final model of its recipe (seed 0), measured once on the test set."""
    lines = [
        "Time to accuracy, from the search's results file (`results/search.json`, written by "
        f"`{content['command']}` at commit {content['commit']}, {content['date']}): for the row of each ladder "
        "that the search's rule keeps, the training seconds on 50,000 images until the validation accuracy, "
        "measured after each epoch, first reaches each threshold, seed 0 / seed 1 (the search trains two runs "
        "side by side, one BLAS thread each); then the recipe's final model, on all 60,000 images with every "
        "thread (`python -m helpers search --final NAME`), measured once on the test set.",
        "",
        "| recipe (row kept) | " + " | ".join(f"valid {t:.1%}" for t in THRESHOLDS) +
        " | final model: test accuracy | final model: training seconds |",
        "| --- |" + " --- |" * (len(THRESHOLDS) + 2)]
    targets = []
    for family, (accuracy, seconds) in TARGETS.items():
        kept, _ = search.chosen(content, family)
        runs = next(row["runs"] for row in content["ladders"][family] if row["name"] == kept)
        cells = []
        for t in THRESHOLDS:
            firsts = [next((f"{s:.0f} s" for a, s in zip(r["history"]["valid_acc"], r["history"]["seconds"])
                            if a >= t), "not reached") for r in runs]
            cells.append(" / ".join(firsts))
        final = content.get("finals", {}).get(f"{family}, seed 0")
        if final:
            result = f"{final['test_accuracy']:.2%} | {final['train_seconds']:.0f}"
            ok = final["test_accuracy"] >= accuracy and final["train_seconds"] <= seconds
            targets.append(f"{family} at least {accuracy:.2%} within {seconds / 60:.0f} minutes: {verdict(ok)}")
        else:
            result = "not trained yet | "
            targets.append(f"{family}: its final model is not trained yet")
        lines.append(f"| {family} ({kept}) | " + " | ".join(cells) + f" | {result} |")
    return lines + ["", "Targets (final model, test set once): " + "; ".join(targets) + "."]


def section(X, y, X_test, repeats):
    """Section 7's markdown lines, between its markers: speed measured here, accuracy from the search's file."""
    return ["## 7. The convolutional network (Conv_net.ipynb): against PyTorch, and time to accuracy", "",
            BEGIN, *measure_speed(X, y, X_test, repeats), "", *accuracy_from_search(search.load()), END]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds of every timing (default 7)")
    parser.add_argument("--out", type=Path, default=paths.ROOT / "BENCHMARKS.md", help="report to update")
    args = parser.parse_args()
    text = args.out.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"error: {args.out}: needs one {BEGIN} and one {END} (run `make bench` to write it whole)")
    (x_train, y_train), (x_test, _) = data.load_mnist()
    lines = section(data.flatten(x_train), y_train, data.flatten(x_test), args.repeats)
    head, rest = text.split(BEGIN)
    args.out.write_text(head + "\n".join(lines[lines.index(BEGIN):]) + rest.split(END, 1)[1])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
