"""The notebooks' plots, each one function returning its matplotlib Figure.

Every plot has a title, labelled axes and, where there is more than one line, a legend.
Images are (n, 28, 28) uint8 or (n, 784) floats; histories are the dicts `training.fit` returns.
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from . import nn


def show_digits(images, labels=None, predicted=None, confidence=None, ncols=10, title="MNIST digits"):
    """A grid of digits, each captioned with its label (and prediction and confidence, if given)."""
    images = np.asarray(images).reshape(-1, 28, 28)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.45 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i], cmap="gray_r")
        caption = "" if labels is None else f"label {labels[i]}"
        if predicted is not None:
            caption += f"\npred {predicted[i]}" + ("" if confidence is None else f" ({confidence[i]:.0%})")
        ax.set_title(caption, fontsize=8, color="black" if predicted is None or predicted[i] == labels[i] else "red")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_counts(y, title="How many images of each digit"):
    fig, ax = plt.subplots(figsize=(6, 2.8))
    counts = np.bincount(y, minlength=10)
    ax.bar(range(10), counts, color="tab:blue")
    ax.set(xticks=range(10), xlabel="digit", ylabel="images", title=title)
    return fig


def history(histories, title="Training curves", loss="cross-entropy"):
    """Loss and accuracy per epoch for one or more named runs: train (solid), validation (dashed) and,
    for runs recorded under the old protocol, test (dotted), where measured. loss: the loss's name."""
    if "epoch" in histories:
        histories = {"": histories}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    for (name, h), color in zip(histories.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        prefix = f"{name} " if name else ""
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, style in (("train", "-"), ("valid", "--"), ("test", ":")):
                values = np.asarray(h.get(f"{split}_{key}", []), dtype=float)  # SQL NULL (not measured) is NaN
                measured = np.isfinite(values)  # validation may be measured every few epochs only
                if measured.any():
                    ax.plot(np.asarray(h["epoch"])[measured], values[measured], style, color=color,
                            label=f"{prefix}{split}")
    ax_loss.set(xlabel="epoch", ylabel=f"{loss} (log scale)", title="Loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, k=10):
    """(k, k) counts: row = true label, column = predicted label."""
    return np.bincount(np.asarray(y_true) * k + np.asarray(y_pred), minlength=k * k).reshape(k, k)


def confusion(matrix, title="Confusion matrix (test set)"):
    """A heatmap of a confusion matrix with its counts written in the cells."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    im = ax.imshow(matrix, cmap="Blues", norm="log" if matrix.max() > 100 else None)
    for (i, j), n in np.ndenumerate(matrix):
        if n:
            ax.text(j, i, n, ha="center", va="center", fontsize=7, color="white" if i == j else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit", title=title)
    fig.colorbar(im, ax=ax, label="images")
    fig.tight_layout()
    return fig


def first_layer_weights(W, n=32, ncols=8, title="What the first layer looks for", units=None, dead=None,
                        outline=None):
    """The weights into hidden units, each a 28x28 image on one shared, symmetric colour scale.

    W: (784, hidden). units: which columns to show (default the first n). dead: optional (hidden,)
    bools; those tiles are captioned "dead" in grey. outline: optional (28, 28) input whose ink is
    drawn as a faint contour on every tile. One scale for all tiles, so a faint tile is
    a unit with small weights, not one that the colour map stretched.
    """
    units = np.arange(min(n, W.shape[1])) if units is None else np.asarray(units)
    lim = float(np.abs(W[:, units]).max())
    nrows = int(np.ceil(len(units) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols + 1.0, 1.4 * nrows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, u in zip(axes.flat, units):
        im = ax.imshow(W[:, u].reshape(28, 28), cmap="RdBu_r", vmin=-lim, vmax=lim)
        if outline is not None:
            ax.contour(np.reshape(outline, (28, 28)), levels=[0.5 * np.max(outline)], colors="black",
                       linewidths=0.8, alpha=0.5)
        is_dead = dead is not None and bool(dead[u])
        ax.set_title(f"unit {u}" + (" dead" if is_dead else ""), fontsize=9, color="grey" if is_dead else "black")
    fig.suptitle(title)
    fig.tight_layout()
    # red: ink on that pixel raises the unit's input; blue: lowers it
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight (pixel to unit)")
    return fig


def probabilities(proba, ax=None, title="What the network believes"):
    """A bar chart of the ten class probabilities of one image."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.6))
    ax.bar(range(10), proba, color=["tab:orange" if d == np.argmax(proba) else "tab:blue" for d in range(10)])
    ax.set(xticks=range(10), ylim=(0, 1), xlabel="digit", ylabel="probability", title=title)
    return ax.figure


def hidden_votes(votes, digit, k=8, ax=None):
    """The k hidden units that move the digit's score most (for or against), as horizontal bars
    from the largest vote for it (top) to the largest against (bottom).

    votes: (hidden,) activation x weight from each unit to the digit; the score is their sum plus a bias.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 0.28 * k + 1.2))
    top = np.argsort(-np.abs(votes), kind="stable")[:k]
    top = top[np.argsort(votes[top], kind="stable")]  # barh draws the first bar at the bottom
    ax.barh(range(len(top)), votes[top], color=np.where(votes[top] > 0, "tab:orange", "tab:blue"))
    ax.axvline(0, color="black", lw=0.8)
    ax.set(yticks=range(len(top)), yticklabels=[f"unit {u}" for u in top], xlabel=f"adds to the score of {digit}",
           title=f"the {len(top)} largest votes on {digit}, for or against")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(handles=[Patch(color=c, label=f"{side} {digit}") for c, side in (("tab:orange", "for"),
                                                                               ("tab:blue", "against"))],
              fontsize=8, loc="lower right")
    return ax.figure


def activations(lo=-5.0, hi=5.0):
    """The hidden activations of nn (sigmoid, tanh, ReLU) and their derivatives, on z in [lo, hi]."""
    z = np.linspace(lo, hi, 401)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, (f, f_prime) in nn.ACTIVATIONS.items():
        a = f(z)
        ax_f.plot(z, a, label=name)
        ax_d.plot(z, f_prime(a).astype(float), label=name)  # nn writes f' with the output a = f(z)
    ax_f.set(xlabel="z", ylabel="f(z)", title="Activations")
    ax_d.set(xlabel="z", ylabel="f'(z)", title="Their derivatives")
    for ax in (ax_f, ax_d):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def init_spread(spreads, title="Spread of the activations through ten ReLU layers"):
    """spreads: {name: (depth,) standard deviations of the activations after each layer}."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, spread in spreads.items():
        ax.plot(np.arange(1, len(spread) + 1), spread, "o-", label=name)
    depth = max(len(s) for s in spreads.values())
    ax.set(xlabel="layer", ylabel="std of the activations", yscale="log", xticks=range(1, depth + 1), title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def descent_paths(paths, loss, minimum=(0.0, 0.0), title="Gradient descent in a long, narrow valley"):
    """paths: {name: (steps + 1, 2) points}; loss(x, y): the function they descend, drawn as contours."""
    points = np.concatenate(list(paths.values()))
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad_x, pad_y = 0.1 * (x1 - x0) + 0.1, 0.1 * (y1 - y0) + 0.1
    gx, gy = np.meshgrid(np.linspace(x0 - pad_x, x1 + pad_x, 200), np.linspace(y0 - pad_y, y1 + pad_y, 200))
    fig, ax = plt.subplots(figsize=(9, 3.8))
    contours = ax.contour(gx, gy, loss(gx, gy), levels=12, cmap="viridis")
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], ".-", lw=1, ms=3, label=f"{name} ({len(path) - 1} steps)")
    ax.plot(*minimum, "k*", ms=10, label="minimum")
    ax.set(xlabel="$\\theta_1$ (the long, shallow direction)", ylabel="$\\theta_2$ (steep)", title=title)
    ax.legend(fontsize=8, loc="upper right")
    fig.colorbar(contours, ax=ax, label="loss")
    fig.tight_layout()
    return fig
