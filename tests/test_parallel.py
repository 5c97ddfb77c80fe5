"""A training step split over threads gives the gradient of the whole batch, and the same seed the same run."""
import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from helpers import data, nn, parallel, training
from helpers.convnet import ConvNet


def batch(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 784), dtype=np.float32)
    return X, data.one_hot(rng.integers(0, 10, n), 10, np.float32)


@pytest.mark.parametrize("parts", [2, 3])
def test_a_split_step_is_the_whole_batch_step(parts):
    model, (X, Y) = ConvNet(channels=(3, 4), hidden=8, seed=0, dtype=np.float64), batch(41)
    loss, grads, out = model.loss_grads_and_output(X.astype(np.float64), Y.astype(np.float64))
    grads, out = [g.copy() for g in grads], out.copy()
    step = parallel.SplitStep(model, parts, np.random.default_rng(0), ThreadpoolController())
    split_loss, split_grads, split_out = step(X.astype(np.float64), Y.astype(np.float64))
    step.close()
    assert split_loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(split_out, out, rtol=1e-12)
    for g, h in zip(grads, split_grads):
        np.testing.assert_allclose(h, g, rtol=1e-9, atol=1e-15)


def test_replicas_share_the_weights_but_not_the_caches_and_draw_their_own_dropout():
    model = ConvNet(channels=(3,), hidden=8, dropout=0.5, seed=0)
    twin = parallel.replica(model, np.random.default_rng(1))
    assert all(p is q for p, q in zip(model.params, twin.params))
    assert all(a is not b for a, b in zip(model.layers, twin.layers))
    X, Y = batch(8)
    model.loss_grads_and_output(X, Y)
    twin.loss_grads_and_output(X, Y)
    masks = [layer.mask for m in (model, twin) for layer in m.layers if hasattr(layer, "p")]
    assert masks[0].shape == masks[1].shape and not np.array_equal(masks[0], masks[1])


def test_fit_splits_a_convnet_over_the_blas_threads_and_a_seed_still_gives_one_run(monkeypatch):
    calls = []
    original = parallel.SplitStep.__call__

    def counted(self, X, Y):
        calls.append(len(self.models))
        return original(self, X, Y)

    monkeypatch.setattr(parallel.SplitStep, "__call__", counted)
    X, Y = batch(64)
    y = Y.argmax(axis=1)
    runs = []
    for threads in (2, 2, 1):
        with threadpool_limits(threads):
            model = ConvNet(channels=(3,), hidden=8, dropout=0.3, seed=0)
            training.fit(model, X, y, epochs=2, batch_size=16, lr=0.05, seed=0, progress=False)
        runs.append(model.params)
    assert calls == [2] * 8 + [2] * 8 + [1] * 8
    assert all(np.array_equal(p, q) for p, q in zip(*runs[:2]))  # the same seed, the same weights
    assert all(np.allclose(p, q, atol=0.05) for p, q in zip(runs[0], runs[2]))  # another dropout draw


def test_models_that_must_see_the_whole_batch_are_not_split():
    with threadpool_limits(2):
        for model in (ConvNet(channels=(3,), hidden=8, batchnorm=True), nn.MLP((784, 8, 10))):
            step = parallel.step_for(model, np.random.default_rng(0))
            assert len(step.models) == 1 and step.pool is None
