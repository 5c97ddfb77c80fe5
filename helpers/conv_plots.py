"""Conv_net.ipynb's figures, each one function returning its matplotlib Figure.

A convolution by hand, filters, feature maps and accuracy against shift. The tiles of a figure share
one colour scale, so that a pale tile is a small one, not one the colour map stretched: symmetric for
filters (red positive, blue negative), from 0 for feature maps after ReLU. Shapes: filters
W (k*k*c_in, c_out) as Conv2D stores them; feature maps (c, h, w) of one image.
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import PercentFormatter


def by_hand(image, kernel, out, title="A 3x3 filter slid over one digit"):
    """The input image (h, w), the kernel (k, k) with its numbers written in, and the output (h-k+1, w-k+1),
    drawn on the input's pixel grid: output pixel (i, j) sits over the centre of its window."""
    fig, (ax_in, ax_k, ax_out) = plt.subplots(1, 3, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1, 0.6, 1]})
    (h, w), k = image.shape, len(kernel)
    ax_in.imshow(image, cmap="gray_r", extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax_in.set_title(f"input {h}x{w}")
    lim = float(np.abs(kernel).max())
    ax_k.imshow(kernel, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for (i, j), v in np.ndenumerate(kernel):
        ax_k.text(j, i, f"{v:g}", ha="center", va="center", fontsize=11,
                  color="white" if abs(v) > 0.6 * lim else "black")
    ax_k.set_title(f"kernel {k}x{k}")
    lim, c = float(np.abs(out).max()), (k - 1) / 2  # c: from a window's corner to its centre
    im = ax_out.imshow(out, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=(c - 0.5, c + out.shape[1] - 0.5,
                                                                          c + out.shape[0] - 0.5, c - 0.5))
    ax_out.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5))
    ax_out.set_title(f"output {out.shape[0]}x{out.shape[1]}")
    for ax in (ax_in, ax_k, ax_out):
        ax.set(xticks=[], yticks=[])
    fig.colorbar(im, ax=ax_out, shrink=0.8, label="filter response")
    fig.suptitle(title, y=1.02)
    return fig


def _grid(tiles, captions, title, ncols, label, signed=True):
    lim = float(np.abs(tiles).max()) or 1.0
    scale = dict(cmap="RdBu_r", vmin=-lim, vmax=lim) if signed else dict(cmap="Reds", vmin=0, vmax=lim)
    nrows = int(np.ceil(len(tiles) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.25 * ncols + 1.0, 1.35 * nrows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile, caption in zip(axes.flat, tiles, captions):
        im = ax.imshow(tile, **scale)
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    fig.colorbar(im, ax=axes, shrink=0.8, label=label)
    return fig


def filters(W, k, title="The first layer's filters", ncols=8):
    """The filters of a one-channel Conv2D: W (k*k, c_out), filter o is W[:, o] as a k x k image."""
    tiles = np.asarray(W).T.reshape(-1, k, k)
    return _grid(tiles, [f"filter {o}" for o in range(len(tiles))], title, ncols, "weight")


def feature_maps(maps, title="Feature maps", ncols=8):
    """maps (c, h, w), after ReLU (>= 0): one tile per channel."""
    return _grid(np.asarray(maps), [f"channel {c}" for c in range(len(maps))], title, ncols, "activation",
                 signed=False)


def shift_curves(shifts, accuracies, title="Accuracy on shifted digits", ylabel="validation accuracy"):
    """One line per model or direction: accuracies {label: [accuracy per shift, 0..1]}; the axis in %, from 0."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for label, acc in accuracies.items():
        ax.plot(shifts, acc, "o-", label=label)
    ax.axhline(0.1, color="grey", ls=":", label="chance (10%)")
    ax.set(xlabel="shift (pixels)", ylabel=ylabel, ylim=(0, 1), xticks=shifts, title=title)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig
