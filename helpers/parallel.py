"""A training step split over threads, one part of the batch each, so that both cores do NumPy's loops.

For: a ConvNet's elementwise work (ReLU, max-pooling, im2col's copies, col2im's sums), which NumPy
runs on one core even while BLAS runs the matrix products on two. Each thread runs the forward and
backward pass of its part of the batch on its own replica of the model (the same weight arrays, its
own caches) with one BLAS thread, and the parts' gradients are added, each weighted by its share of
the batch, n_part / n: the gradient of the mean loss over the whole batch, as
`nn.Classifier.loss_grads_and_output` adds its chunks. The same numbers up to float rounding (the sums
run in another order), and the same seed gives the same weights.

Leaves out: models whose layers couple a batch's images (batch norm's statistics must be the whole
batch's) and models without layers (the first notebook's MLP): their steps run in one thread as
before; a machine whose BLAS has one thread (the search's processes) splits nothing.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from .layers import BatchNorm, Dropout


def step_for(model, rng):
    """fit's training step for model: a SplitStep over as many threads as BLAS has, or over one (then it
    calls model.loss_grads_and_output and nothing else). rng: a Generator, for the replicas' dropout."""
    controller = ThreadpoolController()
    layers = getattr(model, "layers", None)
    blas = [info["num_threads"] for info in controller.info() if info["user_api"] == "blas"]
    parts = min(blas, default=1)
    if layers is None or any(isinstance(layer, BatchNorm) for layer in layers):
        parts = 1
    return SplitStep(model, max(parts, 1), rng, controller)


def replica(model, rng):
    """A model sharing model's params and buffers, with its own layer objects (their caches); its
    dropout layers draw from generators spawned from rng (a Generator), so a seed gives one run."""
    twin = model.__class__.__new__(model.__class__)
    twin.__dict__.update(model.__dict__)
    twin.layers = []
    for layer in model.layers:
        copy = layer.__class__.__new__(layer.__class__)
        copy.__dict__.update(layer.__dict__)  # the same arrays: W, b, params, buffers
        if isinstance(layer, Dropout):
            copy.rng = rng.spawn(1)[0]
        twin.layers.append(copy)
    return twin


class SplitStep:
    """step(X, Y) -> (mean loss, grads, outputs), as model.loss_grads_and_output, over `parts` threads,
    each with one BLAS thread (controller: threadpoolctl's, which sets it for the step's duration)."""

    def __init__(self, model, parts, rng, controller):
        self.models = [model] + [replica(model, rng) for _ in range(parts - 1)]
        self.pool = ThreadPoolExecutor(parts) if parts > 1 else None
        self.controller = controller

    def __call__(self, X, Y):
        if self.pool is None:
            return self.models[0].loss_grads_and_output(X, Y)
        n = len(X)
        cuts = np.linspace(0, n, len(self.models) + 1).astype(int)
        with self.controller.limit(limits=1, user_api="blas"):
            jobs = [self.pool.submit(m.loss_grads_and_output, X[a:b], Y[a:b])
                    for m, a, b in zip(self.models, cuts[:-1], cuts[1:]) if b > a]
            parts = [job.result() for job in jobs]
        shares = [len(out) / n for _, _, out in parts]
        loss = sum(share * part_loss for share, (part_loss, _, _) in zip(shares, parts))
        grads = [g * g.dtype.type(shares[0]) for g in parts[0][1]]  # new arrays: the models' grads stay theirs
        for share, (_, part_grads, _) in zip(shares[1:], parts[1:]):
            for g, h in zip(grads, part_grads):
                g += h * h.dtype.type(share)
        return loss, grads, np.concatenate([out for _, _, out in parts])

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
