"""Random affine distortions of 28x28 digits, vectorised over a batch: rotation, scale, shear and
sub-pixel translation, sampled bilinearly.

For: training a ConvNet on digits as writers vary them (slant, size, position), the augmentation
of MNIST's best single networks; `training.fit(augment="affine")` draws a new one for every image
in every epoch. `data.random_shift` is the simpler whole-pixel shift. Leaves out: elastic
distortions (Simard et al., 2003), colour or noise (MNIST has neither).

Each image gets its own map. With c = (13.5, 13.5) the centre, the output pixel p reads the input at
    q = A^-1 (p - c - t) + c,    A = R(angle) @ [[1, shear], [0, 1]] @ diag(zoom, zoom)
(R a rotation; p, q as (row, column)), so the digit is scaled, sheared, rotated about its centre and
moved by t. The value at q is the bilinear mix of its 4 neighbouring pixels; outside the image is 0.
"""
import numpy as np

SIDE = 28
DEFAULTS = {"rotate": 12.0, "zoom": 0.1, "shear": 0.15, "shift": 2.5}  # degrees, fraction, slope, pixels


def affine_maps(rng, n, rotate=12.0, zoom=0.1, shear=0.15, shift=2.5):
    """(inverse maps (n, 2, 2), translations t (n, 2)), each parameter drawn uniformly from
    [-rotate, rotate] degrees, zoom from [1 - zoom, 1 + zoom], shear from [-shear, shear], t from
    [-shift, shift] pixels on each axis."""
    angle = np.deg2rad(rng.uniform(-rotate, rotate, n))
    z = rng.uniform(1 - zoom, 1 + zoom, n)
    k = rng.uniform(-shear, shear, n)
    t = rng.uniform(-shift, shift, (n, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    # A = R S Z with S = [[1, k], [0, 1]]; its inverse Z^-1 S^-1 R^-1, S^-1 = [[1, -k], [0, 1]], R^-1 = R^T
    inv = np.empty((n, 2, 2))
    inv[:, 0, 0], inv[:, 0, 1] = (cos + k * sin) / z, (sin - k * cos) / z
    inv[:, 1, 0], inv[:, 1, 1] = -sin / z, cos / z
    return inv, t


def warp(x, inv, t, out=None):
    """Each flattened 28x28 image of x (n, 784) resampled at q = inv[i] (p - c - t[i]) + c, bilinearly,
    0 outside. out: an optional (n, 784) array to fill. Returns (n, 784) of x's dtype."""
    n = len(x)
    out = np.empty_like(x) if out is None else out
    rows, cols = np.divmod(np.arange(SIDE * SIDE), SIDE)
    p = (np.stack([rows, cols]) - (SIDE - 1) / 2).astype(np.float32)  # (2, 784), centred
    padded = np.zeros((n, SIDE + 4, SIDE + 4), x.dtype)  # 2 rows of zeros on every side: no bounds checks
    padded[:, 2:-2, 2:-2] = x.reshape(n, SIDE, SIDE)
    flat = padded.reshape(-1)
    inv, t = inv.astype(np.float32), t.astype(np.float32)  # float32: a 1e-6 pixel error is invisible, 2x faster
    q = inv[:, :, :1] * (p[0] - t[:, :1]) [:, None] + inv[:, :, 1:] * (p[1] - t[:, 1:])[:, None]  # (n, 2, 784)
    q += (SIDE - 1) / 2
    np.clip(q, -1, SIDE, out=q)  # beyond the border every neighbour is a zero of the padding
    q0 = np.floor(q)
    w = (q - q0).astype(x.dtype)  # the weight of the far neighbour on each axis
    i0 = q0.astype(np.intp) + 2  # index in the padded image
    base = i0[:, 0] * (SIDE + 4) + i0[:, 1]  # (n, 784), the top-left neighbour
    base += (np.arange(n) * (SIDE + 4) ** 2)[:, None]
    wy, wx = w[:, 0], w[:, 1]
    top = np.take(flat, base)
    top += (np.take(flat, base + 1) - top) * wx  # (1 - wx) a + wx b, one product fewer
    bottom = np.take(flat, base + SIDE + 4)
    bottom += (np.take(flat, base + SIDE + 5) - bottom) * wx
    bottom -= top
    bottom *= wy
    np.add(top, bottom, out=out)
    return out


def random_affine(x, rng, out=None, chunk=256, **limits):
    """x (n, 784) with every image under its own random affine map (affine_maps' limits, DEFAULTS
    unless given), in chunks of `chunk` images: small enough that the working arrays stay in cache
    (256: 0.9 s for 60,000 images here, 4,096: 2.3 s)."""
    unknown = set(limits) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"random_affine takes the limits {sorted(DEFAULTS)}, not {sorted(unknown)}")
    inv, t = affine_maps(rng, len(x), **{**DEFAULTS, **limits})
    out = np.empty_like(x) if out is None else out
    for i in range(0, len(x), chunk):
        warp(x[i:i + chunk], inv[i:i + chunk], t[i:i + chunk], out=out[i:i + chunk])
    return out
