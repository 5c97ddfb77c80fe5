"""predict's choice of a saved model (issue 24, item 4): a stored accuracy that is not one real float is
not ranked as one, and a best-ranked file that fails to load is skipped for the next, saying why."""
import numpy as np
import pytest
from test_bad_input import digit_png, one_line_error, run_cli

from helpers import model_io
from helpers.nn import MLP


def with_arrays(path, **changes):
    """Rewrite the model file at path with some arrays replaced (np.savez: what a tampered file looks like)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(path, **{**arrays, **changes})
    return path


@pytest.mark.parametrize("value", [True, 1, "0.99", b"0.99", 0.99 + 0j])
def test_a_stored_accuracy_that_is_not_a_real_float_is_not_ranked(tmp_path, value):
    odd = with_arrays(model_io.save_model(MLP((784, 8, 10)), tmp_path / "odd.npz"), test_accuracy=np.array(value))
    real = model_io.save_model(MLP((784, 8, 10), seed=1), tmp_path / "real.npz", test_accuracy=0.5)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert model_io.saved_test_accuracy(odd) is None
    assert model_io.best_saved([odd, real]) == (real, 0.5)
    f32 = tmp_path / "f32.npz"
    f32.write_bytes(odd.read_bytes())
    assert model_io.saved_test_accuracy(with_arrays(f32, test_accuracy=np.float32(0.75))) == 0.75  # a real float
    f32.unlink()
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_predict_falls_back_to_the_next_saved_model_and_says_why(tmp_path):
    d = tmp_path / "models"
    best = model_io.save_model(MLP((784, 8, 10)), d / "default.npz", test_accuracy=0.99)
    with_arrays(best, W1=np.full((784, 8), np.nan, np.float32))  # ranked first, but cannot be loaded
    model_io.save_model(MLP((784, 8, 10), seed=1), d / "conv.npz", test_accuracy=0.5)
    png = digit_png(tmp_path / "digit.png")
    before = {p: p.read_bytes() for p in d.iterdir()}
    env = {"NN_MODELS_DIR": str(d), "NN_MODEL_PATH": "", "NN_CONV_MODEL_PATH": ""}
    out = run_cli(["predict", png], env)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == (f"model: skipped {best}, it cannot be loaded: {best}: W1 holds NaN or "
                                  f"infinite values; this model cannot predict anything")
    chosen, read = out.stdout.strip().splitlines()
    assert chosen == (f"model: {d / 'conv.npz'}, the highest test accuracy stored in {best} (99.00%), "
                      f"{d / 'conv.npz'} (50.00%) of those that load")
    assert read.startswith(f"{png}: ") and {p: p.read_bytes() for p in d.iterdir()} == before
    with_arrays(d / "conv.npz", b1=np.full(8, np.inf, np.float32))  # none loads: one line with every reason
    before = {p: p.read_bytes() for p in d.iterdir()}
    one_line_error(run_cli(["predict", png], env), "no saved model could be loaded", f"skipped {best}",
                   f"skipped {d / 'conv.npz'}", "b1 holds NaN")
    assert {p: p.read_bytes() for p in d.iterdir()} == before

