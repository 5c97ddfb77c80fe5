"""Hostile files and folders at the command line (issue 24): each case builds the bad input, runs
`python -m helpers` as a user would, and checks the one-line message, the exit status and that
nothing stored changed."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_db import as_a_user, fake_run

from helpers import db, model_io, paths
from helpers.nn import MLP


def run_cli(args, env=None, as_user=False):
    """python -m helpers args in a fresh process; as_user: as an ordinary user (test_db.as_a_user)."""
    prefix = as_a_user() if as_user else ()
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT), **(env or {})}
    return subprocess.run([*prefix, sys.executable, "-m", "helpers", *map(str, args)], capture_output=True,
                          text=True, cwd=paths.ROOT, env=env)


def one_line_error(out, *parts):
    """The process failed with exit status 1 and one line on stderr naming every part, no traceback."""
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert all(str(part) in lines[0] for part in parts), (parts, lines[0])


@pytest.fixture
def locked_folder():
    """A folder under /tmp (pytest's own tmp is private to root) with a database and a model in a
    subfolder d that nobody but root may enter."""
    top = Path(tempfile.mkdtemp(dir="/tmp"))
    top.chmod(0o755)
    d = top / "d"
    d.mkdir()
    db.save_run(d / "database.db", **fake_run())
    model_io.save_model(MLP((784, 8, 10)), d / "default.npz")
    (top / "digit.png").write_bytes(b"")  # never read: the model fails first
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    d.chmod(0)
    try:
        yield top, d
    finally:
        d.chmod(0o755)
        assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # nothing stored changed
        shutil.rmtree(top)


def test_a_path_in_a_folder_the_user_cannot_enter_is_one_line(locked_folder):
    top, d = locked_folder
    no_env = {k: "" for k in ("NN_MODEL_PATH", "NN_CONV_MODEL_PATH")}
    for args, env, where in [
        (["report", "--db", d / "database.db"], {}, d / "database.db"),
        (["migrate", "--db", d / "database.db"], {}, d / "database.db"),
        (["train", "--quiet", "--db", d / "runs.db"], {}, d / "runs.db"),
        (["train", "--quiet", "--no-db", "--save", d / "m.npz"], {}, d / "m.npz"),
        (["predict", top / "digit.png", "--model", d / "default.npz"], {}, d / "default.npz"),
        (["predict", top / "digit.png"], {"NN_MODELS_DIR": str(d), **no_env}, d / "default.npz"),
    ]:
        one_line_error(run_cli(args, env, as_user=True), where, "Permission denied")


def unreadable_zip(src, dest, how):
    """A copy of the .npz src whose entries zipfile cannot read: how="encrypted" sets the encrypted flag,
    how="method" an unknown compression method (99), in every local and central header."""
    raw = bytearray(Path(src).read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at >= 0:
            if how == "encrypted":
                raw[at + flag_at] |= 1
            else:
                raw[at + flag_at + 2:at + flag_at + 4] = (99).to_bytes(2, "little")
            at = raw.find(signature, at + 4)
    Path(dest).write_bytes(bytes(raw))
    return Path(dest)


def digit_png(path):
    from PIL import Image
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 12:16] = 255  # a 1
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("how", ["encrypted", "method"])
def test_zip_entries_zipfile_cannot_read_name_the_file(tmp_path, mnist, how):
    good = model_io.save_model(MLP((784, 8, 10)), tmp_path / "good.npz", valid_accuracy=0.5, valid_source="run 1")
    (tmp_path / "models").mkdir()
    bad_model = unreadable_zip(good, tmp_path / "models" / "default.npz", how)
    model_io.save_model(MLP((784, 8, 10), seed=1), tmp_path / "models" / "conv.npz", valid_accuracy=0.3,
                        valid_source="run 2")
    (x_train, y_train), (x_test, y_test) = mnist
    np.savez(tmp_path / "data.npz", x_train=x_train[:20], y_train=y_train[:20], x_test=x_test[:5], y_test=y_test[:5])
    bad_data = unreadable_zip(tmp_path / "data.npz", tmp_path / "bad_data.npz", how)
    png = digit_png(tmp_path / "digit.png")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(model_io.ModelFileError, match="default.npz: not a model file .* cannot be read"):
        model_io.load_model(bad_model)
    assert model_io.saved_valid_accuracy(bad_model) is None
    one_line_error(run_cli(["predict", png, "--model", bad_model]), bad_model, "cannot be read")
    one_line_error(run_cli(["train", "--quiet", "--no-db", "--data", bad_data]), bad_data, "cannot be read")
    out = run_cli(["predict", png], {"NN_MODELS_DIR": str(tmp_path / "models"), "NN_MODEL_PATH": "",
                                     "NN_CONV_MODEL_PATH": ""})
    assert out.returncode == 0 and "model: " + str(tmp_path / "models" / "conv.npz") in out.stdout, out.stderr
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("final", [False, True])
def test_a_model_with_finite_weights_but_nan_outputs_is_not_saved(tmp_path, mnist, final):
    """lr 1e30 on one full batch: the weights stay finite but enormous, the probabilities are NaN."""
    (x_train, y_train), (x_test, y_test) = mnist
    small = tmp_path / "small.npz"  # 500 training images before the 10,000 validation images, 200 test images
    np.savez(small, x_train=np.concatenate([x_train[:500], x_train[50000:]]),
             y_train=np.concatenate([y_train[:500], y_train[50000:]]), x_test=x_test[:200], y_test=y_test[:200])
    good = model_io.save_model(MLP((784, 16, 10)), tmp_path / "default.npz", test_accuracy=0.9)
    db.save_run(tmp_path / "runs.db", **fake_run())
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    out = run_cli(["train", "--recipe", "default", "--hidden", "16", "--epochs", "1", "--batch-size", "60000",
                   "--lr", "1e30", "--quiet", "--data", small, "--save", good, "--db", tmp_path / "runs.db"]
                  + (["--final"] if final else []))
    one_line_error(out, "the model diverged", "probabilities on the", "not finite", "Nothing was saved",
                   f"{good} was left as it was")  # one line: no RuntimeWarning either
    assert "accuracy" not in out.stdout
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_bad_data_file_is_found_before_training_and_named(tmp_path, mnist, monkeypatch):
    from helpers import __main__ as cli
    from helpers import pipeline

    class Started(Exception):
        pass

    def started(*args, **kwargs):
        raise Started

    monkeypatch.setattr(pipeline, "train_recipe", started)
    (x_train, y_train), (x_test, y_test) = mnist
    x_train, y_train = (np.concatenate([a[:500], a[50000:]]) for a in (x_train, y_train))
    x_test, y_test = x_test[:200], y_test[:200]
    bad_test = y_test.copy()
    bad_test[7] = 200
    bad_train = y_train.copy()
    bad_train[-1] = 10
    for name, arrays, message in [
        ("test_labels", dict(y_test=bad_test), r"y_test must lie in \[0, 10\), found 0..200"),
        ("train_labels", dict(y_train=bad_train), r"y_train must lie in \[0, 10\), found 0..10"),
        ("big_images", dict(x_train=np.zeros((10500, 32, 32), np.uint8), x_test=np.zeros((200, 32, 32), np.uint8)),
         "x_train holds 32x32 images; the networks read 28x28"),
        ("few_images", dict(x_train=x_train[-10000:], y_train=y_train[-10000:]),
         "10,000 training images; the last 10,000 are the validation set, so training needs more"),
    ]:
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **arrays})
        before = path.read_bytes()
        for recipe in ("baseline", "conv"):
            with pytest.raises(SystemExit, match=f"^error: {path}: {message}"):
                cli.main(["train", "--recipe", recipe, "--quiet", "--data", str(path), "--db", str(tmp_path / "r.db"),
                          "--save", str(tmp_path / "m.npz")])
        assert path.read_bytes() == before
    with pytest.raises(Started):  # with --final the 10,000 are all training images: enough
        cli.main(["train", "--final", "--quiet", "--no-db", "--data", str(tmp_path / "few_images.npz")])
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "m.npz").exists()


def test_ctrl_c_is_one_line_exit_130_and_nothing_half_written(tmp_path):
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "helpers", "train", "--epochs", "50", "--quiet", "--save",
                             str(tmp_path / "m.npz"), "--db", str(tmp_path / "runs.db")], cwd=paths.ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("recipe default:")  # started: loading the data, then training
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "interrupted: `train` stopped; nothing was half-written", err
    assert list(tmp_path.iterdir()) == []  # no model, no database, no temporary file


def test_predict_reads_only_regular_files_and_never_waits_on_a_pipe(tmp_path):
    model = model_io.save_model(MLP((784, 8, 10)), tmp_path / "m.npz")
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "folder.png").mkdir()
    png = digit_png(tmp_path / "digit.png")
    out = subprocess.run([sys.executable, "-m", "helpers", "predict", str(tmp_path / "pipe.png"),
                          str(tmp_path / "folder.png"), str(png), "--model", str(model)], capture_output=True,
                         text=True, cwd=paths.ROOT, env={**os.environ, "PYTHONPATH": str(paths.ROOT)}, timeout=60)
    assert out.returncode == 1 and out.stdout.startswith(f"{png}: "), out.stderr  # the good one is still read
    assert out.stderr.splitlines() == [
        f"error: {tmp_path / 'pipe.png'}: not a regular file (a folder, a pipe or a device); give an image file",
        f"error: {tmp_path / 'folder.png'}: not a regular file (a folder, a pipe or a device); give an image file",
        "error: 2 of 3 files could not be read"]


def test_report_during_another_process_exclusive_write_says_it_could_not_read(tmp_path):
    import sqlite3

    from test_db import dump

    path = tmp_path / "runs.db"
    db.save_run(path, **fake_run())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE").fetchone()  # a rollback-journal database
    conn.close()
    before = dump(path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # what a writer holds while it commits, in this journal mode
    try:
        one_line_error(run_cli(["report", "--db", path]), path, "could not read the runs (database is locked",
                       "another process is writing")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert dump(path) == before
