"""Optimisers, learning-rate schedules and the training loop `fit`.

For: turning the gradients of a model's `loss_and_grads` (nn.Classifier) into better weights,
one mini-batch at a time. Leaves out: early stopping, checkpoints during training.

Each optimiser's `step(grads, lr)` updates `model.params` in place:
    gradient descent  theta <- theta - lr * nabla
    momentum          v <- mu * v + nabla;  theta <- theta - lr * v
    Adam              m, v <- running means of nabla and nabla^2;  theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
Weight decay (L2) adds wd * W to the gradient of every weight, chosen by role (`decay`, from the
model: True for weights; biases and batch norm's scale and shift are never shrunk).
"""
import math
import time

import numpy as np
from tqdm.auto import tqdm

from . import parallel
from .augment import random_affine
from .data import one_hot, random_shift

# augment: what each epoch does to the training images (shifts: data.py; affine maps: augment.py)
AUGMENTS = {False: None, True: random_shift, "shift": random_shift, "affine": random_affine}


def _decay(params, weight_decay, decay):
    if weight_decay and (decay is None or len(decay) != len(params)):
        raise ValueError("weight_decay needs decay=[True or False beside each param] (a model's `decay`), "
                         "to know which params are weights")
    return list(decay) if decay is not None else [False] * len(params)


class SGD:
    """Gradient descent, with momentum when mu > 0. decay: beside params, True where weight decay applies."""

    def __init__(self, params, momentum=0.0, weight_decay=0.0, decay=None):
        self.params, self.mu, self.wd = params, momentum, weight_decay
        self.decay = _decay(params, weight_decay, decay)
        self.v = [np.zeros_like(p) for p in params] if momentum else None
        self.scratch = [np.empty_like(p) for p in params] if weight_decay else None

    def step(self, grads, lr):
        # In-place updates: the gradient arrays are fresh each step, so their memory is reused
        # as scratch instead of allocating temporaries the size of every weight matrix.
        for i, (theta, nabla) in enumerate(zip(self.params, grads)):
            if self.wd and self.decay[i]:  # a weight, not a bias
                nabla += np.multiply(theta, self.wd, out=self.scratch[i])  # nabla + wd * theta
            if self.v is not None:
                self.v[i] *= self.mu
                self.v[i] += nabla  # v = mu * v + nabla
                nabla = np.multiply(self.v[i], lr, out=nabla)  # lr * v
            else:
                nabla *= lr
            theta -= nabla


class Adam:
    """Adam (Kingma & Ba, 2015) with L2 weight decay added to the gradient."""

    def __init__(self, params, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decay=None):
        self.params, self.b1, self.b2, self.eps, self.wd = params, beta1, beta2, eps, weight_decay
        self.decay = _decay(params, weight_decay, decay)
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads, lr):
        self.t += 1
        lr_t = lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)  # bias correction
        for i, (theta, nabla) in enumerate(zip(self.params, grads)):
            if self.wd and self.decay[i]:
                nabla += self.wd * theta
            self.m[i] += (1 - self.b1) * (nabla - self.m[i])
            self.v[i] += (1 - self.b2) * (nabla * nabla - self.v[i])
            theta -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + self.eps)


def lr_at(schedule, lr, step, total):
    """Learning rate at step of total: 'constant', 'cosine' (to 0), or 'step' (/10 at 50% and 75%)."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return 0.5 * lr * (1 + math.cos(math.pi * step / total))
    if schedule == "step":
        return lr * 0.1 ** ((step >= total // 2) + (step >= 3 * total // 4))
    raise ValueError(f"schedule must be 'constant', 'cosine' or 'step', got {schedule!r}")


def evaluate(model, X, y, batch_size=10_000):
    """(mean loss, accuracy) of model on features X (n, d) and integer labels y (n,), in eval mode.
    Raises TrainingDiverged if the outputs or the loss are not finite: finite but enormous weights
    can give NaN probabilities, and such a model has diverged however its weights look."""
    loss, correct = 0.0, 0
    for i in range(0, len(X), batch_size):
        xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below, in words
            out = model.forward(xb, train=False)
            batch_loss = float(model.loss_and_delta(out, one_hot(yb, out.shape[1], out.dtype))[0])
        if not (math.isfinite(batch_loss) and np.isfinite(out).all()):
            raise TrainingDiverged(f"the model diverged: its loss or probabilities on the {len(X):,} images it "
                                   f"was measured on are not finite (loss {batch_loss}); try a smaller learning rate")
        loss += batch_loss * len(xb)
        correct += int((out.argmax(axis=1) == yb).sum())
    return loss / len(X), correct / len(X)


def check_lr(lr, name="lr"):
    """The learning rate as a float, or ValueError: it must be a finite number above 0."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {lr!r}")
    return value


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or infinite."""


def check_labels(model, X, y, name):
    y = np.asarray(y)
    k = model.classes
    if y.shape != (len(X),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be integer labels of shape ({len(X)},), got {y.dtype} {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"{name} must lie in [0, {k}), found {y.min()}..{y.max()}")
    return y


def fit(model, x_train, y_train, x_valid=None, y_valid=None, *, epochs=10, batch_size=128,
        optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=0.0, schedule="constant",
        augment=False, seed=0, progress=True, desc="training", valid_every=1):
    """Train model in place with mini-batches; return the per-epoch history as a dict of lists.

    x_*: (n, 784) float32 features, y_*: (n,) integer labels; the validation set (x_valid,
    y_valid) is only measured, never learned from. fit never sees the test set: that is
    measured once, on the final model. batch_size=None: full batch. optimizer: 'sgd'
    (momentum if > 0) or 'adam'. augment: True or 'shift', random shifts of up to 2 pixels;
    'affine', random rotation, zoom, shear and sub-pixel shift (augment.py), new for every epoch.
    History keys: epoch, train_loss, train_acc (running means over the epoch's batches, taken
    while the weights still change), valid_loss, valid_acc (after every valid_every-th epoch and
    the last one, if validation data is given; NaN otherwise), seconds (training time so far,
    validation excluded).
    """
    lr = check_lr(lr)
    x_train = model.check_inputs(x_train)
    y_train = check_labels(model, x_train, y_train, "y_train")
    if x_valid is not None:
        x_valid = model.check_inputs(x_valid)
        y_valid = check_labels(model, x_valid, y_valid, "y_valid")
    n = len(x_train)
    batch_size = n if batch_size is None else int(batch_size)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if optimizer == "sgd":
        opt = SGD(model.params, momentum, weight_decay, model.decay)
    elif optimizer == "adam":
        opt = Adam(model.params, weight_decay=weight_decay, decay=model.decay)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    lr_at(schedule, lr, 0, 1)  # reject an unknown schedule before any work
    if not isinstance(augment, (bool, str)) or augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {list(AUGMENTS)}, got {augment!r}")
    distort = AUGMENTS[augment]
    rng = np.random.default_rng(seed)
    Y_train = one_hot(y_train, model.classes, model.dtype)
    steps_per_epoch = math.ceil(n / batch_size)
    total, step, seconds = epochs * steps_per_epoch, 0, 0.0
    history = {k: [] for k in ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "seconds")}
    shifted = np.empty_like(x_train) if distort else None  # one buffer for every epoch's changed images
    predicted = np.empty(n, np.intp)
    train_step = parallel.step_for(model, rng)  # split over the cores' threads where the model allows
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        X = distort(x_train, rng, out=shifted) if distort else x_train
        perm = rng.permutation(n)
        loss_sum = 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a non-finite loss raises below
            for i in range(0, n, batch_size):
                # Each batch is gathered by index: the same speed as one shuffled copy of the whole
                # set per epoch, within the noise (BENCHMARKS.md), without a 188 MB copy per epoch.
                idx = perm[i:i + batch_size]
                loss, grads, out = train_step(X[idx], Y_train[idx])  # training mode
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"the loss became {loss} at epoch {epoch}, batch {i // batch_size + 1}: "
                                           f"try a smaller learning rate than {lr}")
                opt.step(grads, lr_at(schedule, lr, step, total))
                step += 1
                loss_sum += loss * len(out)
                np.argmax(out, axis=1, out=predicted[i:i + batch_size])  # compared with the labels once per epoch
        correct = int((predicted == y_train[perm]).sum())
        seconds += time.perf_counter() - t0
        measure = x_valid is not None and (epoch % valid_every == 0 or epoch == epochs)
        valid_loss, valid_acc = evaluate(model, x_valid, y_valid) if measure else (math.nan, math.nan)
        row = (epoch, loss_sum / n, correct / n, valid_loss, valid_acc, seconds)
        for key, value in zip(history, row):
            history[key].append(value)
        shown = dict(loss=f"{row[1]:.4f}", acc=f"{row[2]:.4f}")
        bar.set_postfix(shown if x_valid is None else {**shown, "valid_acc": f"{valid_acc:.4f}"})
    train_step.close()
    # The loss is checked before each step, so a blow-up on the very last step would go unseen.
    if not all(np.isfinite(p).all() for p in model.params):
        raise TrainingDiverged(f"some weights are not finite after epoch {epochs}: "
                               f"try a smaller learning rate than {lr}")
    return history
