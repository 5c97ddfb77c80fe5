"""Random affine distortions (augment.py): exact on maps whose result is known, against a loop on
random maps, seeded, bounded, and through fit."""
import numpy as np
import pytest

from helpers import augment, data, training
from helpers.nn import MLP


def images(n=6, seed=0):
    return np.random.default_rng(seed).random((n, 784), dtype=np.float32)


def identity(n):
    return np.tile(np.eye(2), (n, 1, 1)), np.zeros((n, 2))


def test_the_identity_map_changes_nothing():
    x = images()
    np.testing.assert_array_equal(augment.warp(x, *identity(len(x))), x)


def test_whole_and_half_pixel_translations_move_and_mix_pixels():
    x = images(2)
    inv, t = identity(2)
    t[:] = [1, -2]  # one row down, two columns left
    want = np.zeros((2, 28, 28), np.float32)
    want[:, 1:, :26] = x.reshape(2, 28, 28)[:, :27, 2:]
    np.testing.assert_allclose(augment.warp(x, inv, t).reshape(2, 28, 28), want, atol=1e-6)
    t[:] = [0.5, 0]  # halfway between two rows: their mean
    rows = x.reshape(2, 28, 28)
    np.testing.assert_allclose(augment.warp(x, inv, t).reshape(2, 28, 28)[:, 1:], (rows[:, :-1] + rows[:, 1:]) / 2,
                               atol=1e-6)


def test_a_quarter_turn_is_numpys_rot90():
    x = images(1)
    inv, t = np.array([[[0.0, 1.0], [-1.0, 0.0]]]), np.zeros((1, 2))  # R(90 degrees)^-1
    out = augment.warp(x, inv, t).reshape(28, 28)
    img = x.reshape(28, 28)
    assert any(np.allclose(out, np.rot90(img, k), atol=1e-5) for k in (1, 3))


def naive_warp(img, inv, t):
    """One pixel at a time, bilinear with zeros outside: the definition in augment.py's docstring."""
    out, c = np.zeros((28, 28)), 13.5
    for r in range(28):
        for col in range(28):
            qy, qx = inv @ (np.array([r, col]) - c - t) + c
            y0, x0 = int(np.floor(qy)), int(np.floor(qx))
            for yy, wy in ((y0, 1 - (qy - y0)), (y0 + 1, qy - y0)):
                for xx, wx in ((x0, 1 - (qx - x0)), (x0 + 1, qx - x0)):
                    if 0 <= yy < 28 and 0 <= xx < 28:
                        out[r, col] += wy * wx * img[yy, xx]
    return out


def test_random_maps_match_the_definition_pixel_by_pixel():
    x = images(4, seed=1)
    inv, t = augment.affine_maps(np.random.default_rng(2), 4, rotate=30, zoom=0.3, shear=0.3, shift=6)
    out = augment.warp(x, inv, t)
    for i in range(4):
        np.testing.assert_allclose(out[i].reshape(28, 28), naive_warp(x[i].reshape(28, 28), inv[i], t[i]), atol=2e-5)


def test_the_maps_stay_within_their_limits_and_a_seed_gives_the_same_images():
    inv, t = augment.affine_maps(np.random.default_rng(0), 10_000, rotate=12, zoom=0.1, shear=0, shift=2.5)
    assert np.abs(t).max() <= 2.5
    scale = np.sqrt(np.abs(np.linalg.det(inv)))  # 1 / zoom: no shear, a rotation keeps areas
    assert (1 / 1.1 - 1e-9 <= scale).all() and (scale <= 1 / 0.9 + 1e-9).all()
    angle = np.degrees(np.arctan2(-inv[:, 1, 0], inv[:, 1, 1]))
    assert np.abs(angle).max() <= 12 + 1e-9 and np.abs(angle).max() > 11.9
    x = data.flatten(data.load_mnist()[0][0][:300])
    a, b = augment.random_affine(x, np.random.default_rng(5)), augment.random_affine(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1 + 1e-6 and not np.array_equal(a, x)
    # most of a digit's ink stays in the picture
    assert np.median(a.sum(axis=1) / x.sum(axis=1)) > 0.9
    chunked = augment.random_affine(x, np.random.default_rng(5), chunk=7)
    np.testing.assert_array_equal(chunked, a)


def test_bad_limits_and_bad_augment_values_are_refused():
    with pytest.raises(ValueError, match=r"takes the limits \['rotate', 'shear', 'shift', 'zoom'\], not \['spin'\]"):
        augment.random_affine(images(), np.random.default_rng(0), spin=3)
    model = MLP((784, 8, 10))
    for bad in ("elastic", 2, None):
        with pytest.raises(ValueError, match=r"augment must be one of \[False, True, 'shift', 'affine'\]"):
            training.fit(model, images(10), np.arange(10), epochs=1, augment=bad, progress=False)


def test_fit_trains_on_new_distortions_each_epoch(mnist):
    (x_train, y_train), _ = mnist
    X, y = data.flatten(x_train[:3000]), y_train[:3000].astype(int)
    runs = [training.fit(MLP((784, 64, 10), seed=0), X, y, X[:500], y[:500], epochs=2, lr=0.1, momentum=0.9,
                         augment=aug, progress=False) for aug in ("affine", False)]
    affine, plain = runs
    assert affine["valid_acc"][-1] > 0.7  # it still learns digits (an MLP, two epochs of 3,000 images)
    assert affine["train_loss"][-1] > plain["train_loss"][-1]  # from harder images than the plain ones
