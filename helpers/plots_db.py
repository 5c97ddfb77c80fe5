"""The plots of Database_view.ipynb, each one function returning its matplotlib Figure.

They take the DataFrames the notebook's SQL returns, so the queries stay in the notebook.
Bars start at zero; legends sit outside the bars.
"""
import matplotlib.pyplot as plt
import numpy as np


def per_digit_errors(table, title="Test error rate per digit"):
    """table: DataFrame indexed by digit 0..9, one column of error rates (0..1) per run.

    Error rates rather than accuracies: with accuracies near 1, bars from zero all look equal,
    and an axis that does not start at zero exaggerates differences.
    """
    fig, ax = plt.subplots(figsize=(9.5, 3.4))
    table.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set(xlabel="true digit", ylabel="error rate (axis from 0)", ylim=(0, None), title=title)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="run", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars
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
