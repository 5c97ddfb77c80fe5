"""The notebooks' plots, each one function returning its matplotlib Figure.

Every plot has a title, labelled axes and, where there is more than one line, a legend.
Images are (n, 28, 28) uint8 or (n, 784) floats; histories are the dicts `training.fit` returns.
"""
import matplotlib.pyplot as plt
import numpy as np


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


def history(histories, title="Training curves"):
    """Loss and accuracy per epoch, train (solid) and test (dashed), for one or more named runs."""
    if "epoch" in histories:
        histories = {"": histories}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
    for (name, h), color in zip(histories.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        prefix = f"{name} " if name else ""
        for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(h["epoch"], h[f"train_{key}"], color=color, label=f"{prefix}train")
            test = np.asarray(h[f"test_{key}"], dtype=float)  # SQL NULL (not measured) becomes NaN
            if not np.all(np.isnan(test)):
                ax.plot(h["epoch"], test, "--", color=color, label=f"{prefix}test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
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


def first_layer_weights(W, n=32, ncols=8, title="What the first layer looks for"):
    """The weights into the first n hidden units, each shown as a 28x28 image. W: (784, hidden)."""
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.3 * nrows + 0.4))
    for i, ax in enumerate(axes.flat):
        w = W[:, i].reshape(28, 28)
        lim = np.abs(w).max()
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)  # red: ink here excites the unit; blue: inhibits
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def probabilities(proba, ax=None, title="What the network believes"):
    """A bar chart of the ten class probabilities of one image."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 2.6))
    ax.bar(range(10), proba, color=["tab:orange" if d == np.argmax(proba) else "tab:blue" for d in range(10)])
    ax.set(xticks=range(10), ylim=(0, 1), xlabel="digit", ylabel="probability", title=title)
    return ax.figure


def per_digit_accuracy(table, title="Test accuracy per digit"):
    """table: DataFrame indexed by digit, one column of accuracies per run."""
    ax = table.plot.bar(figsize=(9, 3.5), rot=0, width=0.8)
    low = max(0.0, float(np.nanmin(table.to_numpy())) - 0.02)
    ax.set(xlabel="digit", ylabel="accuracy", ylim=(low, 1.0), title=title)
    ax.legend(title="run", fontsize=8)
    return ax.figure


def prediction(drawing, x28, proba, hidden=None, title=None):
    """What the network sees and believes: the picture (if drawing is not None), its 28x28 input,
    the ten probabilities and (optionally) the hidden layer's activations as a square image."""
    kinds = ["picture"] * (drawing is not None) + ["input", "proba"] + ["hidden"] * (hidden is not None)
    widths = {"picture": 1, "input": 1, "proba": 2.2, "hidden": 1}
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.1 * len(kinds) + 1.5, 3.0),
                             gridspec_kw={"width_ratios": [widths[k] for k in kinds]})
    ax = dict(zip(kinds, axes))
    if drawing is not None:
        ax["picture"].imshow(drawing, cmap="gray" if np.ndim(drawing) == 2 else None)
        ax["picture"].set(xticks=[], yticks=[], title="your picture")
    ax["input"].imshow(x28, cmap="gray")
    ax["input"].set(xticks=[], yticks=[], title="what the network gets (28x28)")
    probabilities(proba, ax=ax["proba"], title=f"prediction: {int(np.argmax(proba))} ({np.max(proba):.0%})")
    if hidden is not None:
        side = int(np.ceil(np.sqrt(hidden.size)))
        ax["hidden"].imshow(np.pad(hidden, (0, side * side - hidden.size)).reshape(side, side), cmap="magma")
        ax["hidden"].set(xticks=[], yticks=[], title=f"{hidden.size} hidden units")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
