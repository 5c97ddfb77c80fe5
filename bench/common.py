"""What every benchmark section shares: repeats summarised as median [min-max], and the machine's peak."""
import os
import statistics
import time

import numpy as np

THREADS = os.cpu_count()
SIZES, BATCH, LR = (784, 256, 10), 128, 0.1


def accuracy_row(name, run, first):
    """A time-to-accuracy table row: seconds to each threshold of first ({threshold: seconds or None}, in
    column order), then the final run's test accuracy and training seconds."""
    cells = [f"{s:.1f} s" if s is not None else "not reached" for s in first.values()]
    return (f"| {name} | " + " | ".join(cells) +
            f" | {run['metrics']['test_accuracy']:.2%} | {run['history']['seconds'][-1]:.1f} |")


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



def verdict(ok):
    return "met" if ok else "**not met**"
