"""Model files whose arrays are not what a model holds (issue 24, item 8): weights that are not real
floats, an architecture nested too deep to parse. Each is refused with one message naming the file,
and the file is left as it was."""
import json

import numpy as np
import pytest

from helpers import model_io
from helpers.nn import MLP


def rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(path, **{**arrays, **changes})
    return path


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.int32, np.dtype([("re", "<f4"), ("im", "<f4")])])
def test_weights_that_are_not_real_floats_are_refused(tmp_path, dtype):
    path = model_io.save_model(MLP((784, 8, 10)), tmp_path / "m.npz")
    rewrite(path, W2=np.zeros((8, 10), dtype))
    before = path.read_bytes()
    with pytest.raises(model_io.ModelFileError, match=r"m.npz: .* real floats, but W2 \(.*\) are not"):
        model_io.load_model(path)
    assert path.read_bytes() == before
    rewrite(path, W2=np.zeros((8, 10), np.float64))  # a real float of another width still loads, as float32
    assert model_io.load_model(path).params[2].dtype == np.float32


def test_an_architecture_nested_too_deep_names_the_file(tmp_path):
    path = model_io.save_model(MLP((784, 8, 10)), tmp_path / "m.npz")
    rewrite(path, architecture=np.array("[" * 100_000 + "]" * 100_000))
    before = path.read_bytes()
    with pytest.raises(model_io.ModelFileError, match=r"m.npz: not a model file saved by helpers \(RecursionError"):
        model_io.load_model(path)
    assert path.read_bytes() == before
    with pytest.raises(RecursionError):  # what json does with it: the reason the message names
        json.loads("[" * 100_000 + "]" * 100_000)
