"""The notebook's exposition: the training loop written out is training.fit, and its plots say what they show."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from helpers import data, exercises, nn, plots, training  # noqa: E402


def hand_written_loop(model, X, Y, epochs, seed, lr=0.1, mu=0.9, batch_size=128):
    """The notebook's loop: shuffle, slice, forward, loss, backward, momentum update."""
    rng = np.random.default_rng(seed)
    velocity = [np.zeros_like(theta) for theta in model.params]
    losses = []
    for _ in range(epochs):
        perm, loss_sum = rng.permutation(len(X)), 0.0
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            P = model.forward(X[idx])
            loss_sum += nn.cross_entropy(model.log_p, Y[idx]) * len(idx)
            grads = model.backward(nn.softmax_cross_entropy_grad(P, Y[idx]))
            for theta, v, nabla in zip(model.params, velocity, grads):
                v *= mu
                v += nabla
                theta -= lr * v
        losses.append(loss_sum / len(X))
    return losses


def test_the_hand_written_loop_gives_fit_bit_for_bit_the_same_weights():
    rng = np.random.default_rng(0)
    X = rng.random((300, 20), dtype=np.float32)  # 300 = 2 full batches of 128 and one of 44
    y = rng.integers(0, 10, 300)
    mine = nn.MLP((20, 16, 10), seed=1)
    losses = hand_written_loop(mine, X, data.one_hot(y), epochs=2, seed=5)
    library = nn.MLP((20, 16, 10), seed=1)
    history = training.fit(library, X, y, epochs=2, batch_size=128, lr=0.1, momentum=0.9, schedule="constant",
                           seed=5, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(mine.params, library.params))
    np.testing.assert_allclose(losses, history["train_loss"], rtol=1e-6)
    assert not np.array_equal(mine.params[0], nn.MLP((20, 16, 10), seed=1).params[0])  # it did train


def test_another_seed_gives_other_weights_so_the_equality_means_something():
    rng = np.random.default_rng(0)
    X, y = rng.random((300, 20), dtype=np.float32), rng.integers(0, 10, 300)
    mine, library = nn.MLP((20, 16, 10), seed=1), nn.MLP((20, 16, 10), seed=1)
    hand_written_loop(mine, X, data.one_hot(y), epochs=1, seed=5)
    training.fit(library, X, y, epochs=1, lr=0.1, momentum=0.9, seed=6, progress=False)
    assert not np.array_equal(mine.params[0], library.params[0])


def labelled(ax):
    return bool(ax.get_xlabel()) and bool(ax.get_ylabel())


def test_first_layer_weights_share_one_symmetric_scale_with_a_colour_bar():
    W = np.random.default_rng(0).standard_normal((784, 40)).astype(np.float32)
    W[:, 3] *= 10  # one strong unit: every tile must use its scale
    dead = np.zeros(40, bool)
    dead[5] = True
    fig = plots.first_layer_weights(W, n=16, dead=dead)
    images = [im for ax in fig.axes for im in ax.get_images()]
    lim = np.abs(W[:, :16]).max()
    assert len(images) == 16 and all(np.allclose(im.get_clim(), (-lim, lim)) for im in images)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylabel() == "weight (pixel to unit)"
    assert [ax.get_title() for ax in fig.axes if ax.get_title().endswith("dead")] == ["unit 5 dead"]
    plt.close(fig)


def test_exposition_plots_label_their_axes():
    spreads = {"He": exercises.activation_spread(lambda d: np.sqrt(2 / d), depth=4, width=32, n=50)}
    path = np.array([[-2.0, 1.0], [-1.0, -0.5], [0.0, 0.0]])
    for fig in (plots.activations(), plots.init_spread(spreads),
                plots.descent_paths({"gd": path}, lambda a, b: a * a + b * b)):
        axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert axes and all(labelled(ax) for ax in axes)
        plt.close(fig)
    fig = plots.init_spread(spreads)
    assert list(fig.axes[0].get_xticks()) == [1, 2, 3, 4]  # whole layers
    plt.close(fig)
    fig = plots.descent_paths({"gd": path}, lambda a, b: a * a + b * b)
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"] == ["loss"]
    plt.close(fig)
