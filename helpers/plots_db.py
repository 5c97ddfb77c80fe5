"""The plots of Database_view.ipynb, each one function returning its matplotlib Figure.

They take the DataFrames the notebook's SQL returns, so the queries stay in the notebook.
Bars start at zero; no legend covers the data.
"""
import matplotlib.pyplot as plt
import numpy as np


def per_digit_errors(table, title="Test error rate per digit"):
    """table: DataFrame indexed by digit 0..9, one column of error rates (0..1) per run.

    One panel per run, each with its own y-axis from zero: on a shared axis, a run with 1% errors
    would be flat beside one with 20%. Error rates rather than accuracies: with accuracies near 1,
    bars from zero all look equal, and an axis that does not start at zero exaggerates differences.
    """
    fig, axes = plt.subplots(1, len(table.columns), figsize=(4.8 * len(table.columns), 3.2), squeeze=False)
    for ax, run in zip(axes.flat, table.columns):
        ax.bar(table.index, table[run], color="tab:blue")
        ax.set(xticks=table.index, xlabel="true digit", ylabel="error rate (axis from 0)", ylim=(0, None),
               title=f"run {run}")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.1%}"))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def digits(images, labels, predicted, confidence, title, ncols=10):
    """A gallery of digits: 'true 4' above each image, 'read 9 (87%)' below it, red where it is wrong.

    images: (n, 784) or (n, 28, 28) uint8; labels, predicted: (n,) digits; confidence: (n,) in 0..1.
    Only the reading turns red, so the true label always reads as the fact it is.
    """
    images = np.asarray(images).reshape(-1, 28, 28)
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.6 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            ax.axis("off")
            continue
        ax.imshow(images[i], cmap="gray_r")
        ax.set(xticks=[], yticks=[])
        ax.spines[:].set_visible(False)  # not axis("off"): that would hide the reading below
        ax.set_title(f"true {labels[i]}", fontsize=8)
        ax.set_xlabel(f"read {predicted[i]} ({confidence[i]:.0%})", fontsize=8,
                      color="black" if predicted[i] == labels[i] else "red")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reliability(bins, title="Reliability diagram (test set)"):
    """Accuracy against confidence, one line per run.

    bins: DataFrame with columns run, confidence (mean confidence of the bin), accuracy and
    images (how many images fell in the bin; the marker's area grows with it). A calibrated
    model's points lie on the diagonal; above it, the model is right more often than it claims.
    """
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="calibrated: accuracy = confidence")
    for run, rows in bins.groupby("run", sort=False):
        line, = ax.plot(rows["confidence"], rows["accuracy"], "-", lw=1, label=run)
        ax.scatter(rows["confidence"], rows["accuracy"], s=8 + 3 * np.sqrt(rows["images"]), color=line.get_color(),
                   alpha=0.7)
    ax.set(xlabel="confidence (mean of the bin)", ylabel="accuracy in the bin", xlim=(0, 1.02), ylim=(0, 1.02),
           title=title, aspect="equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", title="marker area: images in the bin", title_fontsize=7)
    fig.tight_layout()
    return fig
