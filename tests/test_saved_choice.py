"""predict's choice of a saved model: by the validation accuracy stored with each file, never its test
accuracy (issue 21), a file without one ranked last; a stored accuracy that is not one real float is not
ranked as one, and a best-ranked file that fails to load is skipped for the next, saying why (issue 24,
item 4)."""
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


def as_old(path):
    """Rewrite the model file at path as saved before validation accuracies were stored: without them."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k not in ("valid_accuracy", "valid_source")}
    np.savez(path, **arrays)
    return path


def saved(path, valid=None, test=None, seed=0):
    """An MLP saved at path with these accuracies, the validation one said to come from a run."""
    return model_io.save_model(MLP((784, 8, 10), seed=seed), path, test_accuracy=test, valid_accuracy=valid,
                               valid_source=None if valid is None else f"run {seed} of runs.db")


@pytest.mark.parametrize("value", [True, 1, "0.99", b"0.99", 0.99 + 0j, np.nan, 1.5])
@pytest.mark.parametrize("key", ["test_accuracy", "valid_accuracy"])
def test_a_stored_accuracy_that_is_not_a_real_float_in_0_1_is_not_read_as_one(tmp_path, key, value):
    odd = with_arrays(saved(tmp_path / "odd.npz", valid=0.9, test=0.9), **{key: np.array(value)})
    real = saved(tmp_path / "real.npz", valid=0.5, test=0.5, seed=1)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    read = {"test_accuracy": model_io.saved_test_accuracy, "valid_accuracy": model_io.saved_valid_accuracy}[key]
    assert read(odd) is None and read(real) == 0.5
    assert model_io.best_saved([odd, real]) == ((real, 0.5) if key == "valid_accuracy" else (odd, 0.9))
    f32 = tmp_path / "f32.npz"
    f32.write_bytes(odd.read_bytes())
    assert read(with_arrays(f32, **{key: np.float32(0.75)})) == 0.75  # a real float
    f32.unlink()
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_test_accuracy_chooses_nothing_and_a_file_without_a_validation_accuracy_ranks_last(tmp_path):
    old = as_old(saved(tmp_path / "old.npz", test=0.999))
    assert model_io.saved_valid_accuracy(old) is None and model_io.saved_valid_source(old) is None
    overfit = saved(tmp_path / "overfit.npz", valid=0.97, test=0.995, seed=1)  # the better test accuracy
    chosen = saved(tmp_path / "chosen.npz", valid=0.98, test=0.99, seed=2)
    assert model_io.best_saved([old, overfit, chosen]) == (chosen, 0.98)
    assert [p for p, _ in model_io.ranked_saved([old, overfit, chosen])] == [chosen, overfit, old]
    path, which = model_io.choose_best([old, overfit, chosen])
    assert path == chosen and which == (
        f"{chosen}, the highest validation accuracy stored in {old} (validation none stored, test 99.90%), "
        f"{overfit} (validation 97.00%, test 99.50%), {chosen} (validation 98.00%, test 99.00%); "
        f"its validation: run 2 of runs.db")
    assert model_io.load_best([old])[1:3] == (old, f"{old}, the highest validation accuracy stored in {old} "
                                              f"(validation none stored, test 99.90%); its validation: none stored")


def test_predict_chooses_by_validation_accuracy_and_prints_the_test_accuracy(tmp_path):
    d = tmp_path / "models"
    saved(d / "default.npz", valid=0.99, test=0.98)
    saved(d / "conv.npz", valid=0.98, test=0.995, seed=1)  # the better test accuracy, the worse validation one
    png = digit_png(tmp_path / "digit.png")
    out = run_cli(["predict", png], {"NN_MODELS_DIR": str(d), "NN_MODEL_PATH": "", "NN_CONV_MODEL_PATH": ""})
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.splitlines()[0] == (
        f"model: {d / 'default.npz'}, the highest validation accuracy stored in {d / 'default.npz'} "
        f"(validation 99.00%, test 98.00%), {d / 'conv.npz'} (validation 98.00%, test 99.50%); "
        f"its validation: run 0 of runs.db")


def test_predict_falls_back_to_the_next_saved_model_and_says_why(tmp_path):
    d = tmp_path / "models"
    best = saved(d / "default.npz", valid=0.99, test=0.5)
    with_arrays(best, W1=np.full((784, 8), np.nan, np.float32))  # ranked first, but cannot be loaded
    saved(d / "conv.npz", valid=0.5, test=0.99, seed=1)
    png = digit_png(tmp_path / "digit.png")
    before = {p: p.read_bytes() for p in d.iterdir()}
    env = {"NN_MODELS_DIR": str(d), "NN_MODEL_PATH": "", "NN_CONV_MODEL_PATH": ""}
    out = run_cli(["predict", png], env)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == (f"model: skipped {best}, it cannot be loaded: {best}: W1 holds NaN or "
                                  f"infinite values; this model cannot predict anything")
    chosen, read = out.stdout.strip().splitlines()
    assert chosen == (f"model: {d / 'conv.npz'}, the highest validation accuracy stored in {best} (validation "
                      f"99.00%, test 50.00%), {d / 'conv.npz'} (validation 50.00%, test 99.00%) of those that "
                      f"load; its validation: run 1 of runs.db")
    assert read.startswith(f"{png}: ") and {p: p.read_bytes() for p in d.iterdir()} == before
    with_arrays(d / "conv.npz", b1=np.full(8, np.inf, np.float32))  # none loads: one line with every reason
    before = {p: p.read_bytes() for p in d.iterdir()}
    one_line_error(run_cli(["predict", png], env), "no saved model could be loaded", f"skipped {best}",
                   f"skipped {d / 'conv.npz'}", "b1 holds NaN")
    assert {p: p.read_bytes() for p in d.iterdir()} == before

