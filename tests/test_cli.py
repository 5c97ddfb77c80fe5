"""The command line: python -m helpers train / report / predict / build-data / migrate, as a user would call them."""
import contextlib
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from test_data import write_mnist_idx
from test_db import dump, fake_run, make_v1

from helpers import __main__ as cli
from helpers import data, db, model_io, paths, pipeline

QUICK = ["train", "--recipe", "baseline", "--epochs", "30", "--hidden", "16", "--lr", "1.0", "--quiet"]


def test_train_writes_a_run_saves_the_model_and_prints_the_accuracy(tmp_path, capsys):
    db_path, model_path = tmp_path / "runs.db", tmp_path / "m.npz"
    cli.main(QUICK + ["--seed", "3", "--db", str(db_path), "--save", str(model_path)])
    out = capsys.readouterr().out
    assert f"run 1 written to {db_path}" in out and f"model saved to {model_path}" in out
    conn = sqlite3.connect(db_path)
    name, config, n_train, valid_acc, test_acc, split = conn.execute(
        "SELECT name, config, n_train, valid_accuracy, test_accuracy, reported_split FROM runs").fetchone()
    counts = dict(conn.execute("SELECT split, COUNT(*) FROM predictions GROUP BY split").fetchall())
    conn.close()
    config = json.loads(config)
    assert name == "baseline" and config["sizes"] == [784, 16, 10] and config["epochs"] == 30
    assert config["lr"] == 1.0 and config["seed"] == 3 and config["final"] is False
    assert (n_train, split) == (1000, "test") and counts == {"train": 1000, "valid": 10000, "test": 10000}
    assert f"validation accuracy {valid_acc:.4f} (the last 10,000 training images, not trained on)" in out
    assert f"test accuracy {test_acc:.4f} (test set measured once)" in out
    cli.main(["report", "--db", str(db_path)])
    assert capsys.readouterr().out.startswith(
        f"run 1 (baseline, 1,000 images): test accuracy {test_acc:.4f} (test set measured once), "
        f"validation accuracy {valid_acc:.4f}, ")


def test_final_trains_on_every_training_image_and_report_says_so(tmp_path, capsys):
    db_path = tmp_path / "runs.db"
    cli.main(["train", "--recipe", "default", "--hidden", "8", "--epochs", "1", "--final", "--quiet",
              "--db", str(db_path)])
    out = capsys.readouterr().out
    assert "validation accuracy" not in out and "(test set measured once)" in out
    with contextlib.closing(sqlite3.connect(db_path)) as conn:  # `with conn` alone would not close it
        n_train, valid_acc, test_acc, secs = conn.execute(
            "SELECT n_train, valid_accuracy, test_accuracy, train_seconds FROM runs").fetchone()
    assert (n_train, valid_acc) == (60000, None)
    cli.main(["report", "--db", str(db_path), "--last", "1"])
    assert capsys.readouterr().out == (f"run 1 (default, 60,000 images): test accuracy {test_acc:.4f} "
                                       f"(final model, test set measured once), {secs:.1f} s of training\n")


def test_a_final_model_is_saved_with_the_validation_accuracy_of_its_recipe_from_the_database(tmp_path, capsys,
                                                                                              monkeypatch):
    from helpers import provenance

    monkeypatch.setattr(provenance, "_session", {})  # as in a fresh process: no other test's validations
    db_path, saved = tmp_path / "runs.db", [tmp_path / f"{name}.npz" for name in "abcd"]
    cli.main(QUICK + ["--final", "--no-db", "--save", str(saved[0])])  # nothing validated, no database read
    cli.main(QUICK + ["--seed", "1", "--db", str(db_path), "--save", str(saved[1])])  # validated: its own figure
    cli.main(QUICK + ["--final", "--db", str(db_path), "--save", str(saved[2])])  # seed 0: run 1's figure
    cli.main(QUICK + ["--final", "--epochs", "31", "--db", str(db_path), "--save", str(saved[3])])  # another recipe
    out = capsys.readouterr().out
    with contextlib.closing(sqlite3.connect(db_path)) as conn:  # closed: an open one fails the suite on 3.13
        (valid,) = conn.execute("SELECT valid_accuracy FROM runs WHERE id = 1").fetchone()
    split = "trained on 1,000 images, validated on the last 10,000"
    sources = ["none: recipe baseline (the same settings, any seed) was not validated in this session",
               f"this run: recipe baseline, seed 1, {split}", f"run 1 of {db_path}: recipe baseline, seed 1, {split}",
               f"none: no non-final run of recipe baseline (the same settings, any seed) in {db_path}"]
    assert [model_io.saved_valid_source(p) for p in saved] == sources
    assert [model_io.saved_valid_accuracy(p) for p in saved] == [None, valid, valid, None]
    assert all(model_io.saved_test_accuracy(p) is not None for p in saved)  # stored, to be printed only
    assert f"model saved to {saved[2]}, validation accuracy {valid:.4f} ({sources[2]})\n" in out
    assert f"model saved to {saved[3]}, validation accuracy none stored ({sources[3]})\n" in out
    assert model_io.best_saved([saved[0], saved[3], saved[2]]) == (saved[2], valid)


def test_report_names_the_split_of_a_run_without_test_figures(tmp_path, capsys):
    run = fake_run()
    run["metrics"].update(test_accuracy=None, test_loss=None)
    db.save_run(tmp_path / "runs.db", **run)
    cli.main(["report", "--db", str(tmp_path / "runs.db")])
    assert capsys.readouterr().out == ("run 1 (test, 50 images): validation accuracy 0.4500 (validation set; "
                                       "test set not measured), 3.0 s of training\n")


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "helpers", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for option in ("--recipe", "--hidden", "--activation", "--epochs", "--batch-size", "--lr", "--seed", "--final",
                   "--db", "--save", "--quiet"):
        assert option in out
    assert str(paths.ROOT) not in out  # default paths are shown relative to the repository


def test_errors_are_one_clear_line(tmp_path):
    (tmp_path / "notes.db").write_text("not a database " * 100)
    with pytest.raises(SystemExit, match="error: .*notes.db: cannot be opened as a SQLite database"):
        cli.main(["report", "--db", str(tmp_path / "notes.db")])
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(SystemExit, match="error: .*elsewhere: no train-images-idx3-ubyte"):
        cli.main(["build-data", "--source", str(tmp_path / "elsewhere"), "--dest", str(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "nan"], "argument --lr: the learning rate must be a finite number > 0, got 'nan'"),
    (["train", "--lr", "-1"], "argument --lr: the learning rate must be a finite number > 0, got '-1'"),
    (["train", "--lr", "inf"], "argument --lr: the learning rate must be a finite number > 0, got 'inf'"),
    (["train", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    (["train", "--hidden", "0"], "argument --hidden: must be an integer >= 1, got '0'"),
    (["train", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got '0'"),
    (["report", "--last", "0"], "argument --last: must be an integer >= 1, got '0'"),
    (["report", "--last", str(2**63)], f"argument --last: must be an integer from 1 to {2**63 - 1}, got '{2**63}'"),
    (["build-data"], "the following arguments are required: --source"),
])
def test_bad_options_name_the_option(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args + (["--db", str(tmp_path / "runs.db")] if args[0] != "build-data" else []))
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


def test_a_network_too_big_for_memory_is_refused_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"error: sizes \[784, 100000, 10\] .* GiB of memory, more than the 2 GiB"):
        cli.main(["train", "--hidden", "100000", "--db", str(tmp_path / "runs.db")])
    assert capsys.readouterr().out == "" and list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit, match=r"error: sizes \[784, 100000, 10\] with full batches would need about"):
        cli.main(["train", "--recipe", "baseline", "--hidden", "100000", "--db", str(tmp_path / "runs.db")])
    assert capsys.readouterr().out == "" and list(tmp_path.iterdir()) == []


def test_output_paths_are_checked_before_training(tmp_path, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started before the output paths were checked")

    monkeypatch.setattr(pipeline, "train_recipe", no_training)
    (tmp_path / "data").mkdir()
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    newer = tmp_path / "newer.db"
    db.save_run(newer, **fake_run())
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    before = {p: dump(p) for p in (newer,)} | {other: other.read_bytes()}
    for args, message in [
        (["--save", str(tmp_path / "data")], "data: is a folder; the model needs a file name"),
        (["--no-db", "--save", str(tmp_path / "m.npz" / "x.npz")], "x.npz: .*m.npz is a file, not a folder")
        if (tmp_path / "m.npz").write_bytes(b"x") else None,
        (["--db", str(tmp_path / "data")], "data: is a folder, not a database file"),
        (["--db", str(other)], "other.db: a SQLite database, but not one written by this project"),
        (["--db", str(newer)], "newer.db: schema version 3, this code reads version 2"),
        (["--db", str(tmp_path / "nowhere" / "runs.db")], "the folder .*nowhere does not exist"),
    ]:
        with pytest.raises(SystemExit, match="error: .*" + message):
            cli.main(["train", "--quiet"] + args)
    assert capsys.readouterr().out == ""
    assert dump(newer) == before[newer] and other.read_bytes() == before[other]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "m.npz", "newer.db", "other.db"]
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize("no_db", [False, True])
def test_a_diverged_model_is_not_saved_over_a_good_one(tmp_path, monkeypatch, no_db):
    good = model_io.save_model(model_io.MLP((784, 16, 10)), tmp_path / "m.npz")
    before = good.read_bytes()
    real = pipeline.train_recipe

    def diverging(*args, **kwargs):  # a blow-up on the very last step: finite loss, NaN weights
        run = real(*args, **kwargs)
        run["model"].params[0][0, 0] = np.nan
        return run

    monkeypatch.setattr(pipeline, "train_recipe", diverging)
    # the NaN weight makes the test images' probabilities NaN: found there, before save_model's own check
    with pytest.raises(SystemExit, match="error: the model diverged: .* not finite .*Nothing was saved; "
                                         ".*m.npz was left as it was"):
        cli.main(QUICK + ["--epochs", "1", "--save", str(good), "--db", str(tmp_path / "runs.db")]
                 + (["--no-db"] if no_db else []))
    assert good.read_bytes() == before and not (tmp_path / "runs.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_build_data_rebuilds_the_shipped_file(tmp_path, capsys):
    src = write_mnist_idx(tmp_path / "idx")
    cli.main(["build-data", "--source", str(src), "--dest", str(tmp_path / "mnist.npz")])
    assert (tmp_path / "mnist.npz").read_bytes()[:2] == b"PK"
    assert (tmp_path / "mnist.npz").stat().st_size == pytest.approx(paths.DATA_PATH.stat().st_size, rel=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx", "mnist.npz"]


def test_migrate_brings_a_version_1_database_up_to_date(tmp_path, capsys):
    make_v1(tmp_path / "old.db")
    runs_before = dump(tmp_path / "old.db")[1]["runs"]
    cli.main(["migrate", "--db", str(tmp_path / "old.db")])
    assert capsys.readouterr().out == f"{tmp_path / 'old.db'}: schema version 2\n"
    _, tables, version = dump(tmp_path / "old.db")
    assert version == 2 and [r[0] for r in tables["runs"]] == [r[0] for r in runs_before]
    cli.main(["report", "--db", str(tmp_path / "old.db")])
    assert capsys.readouterr().out.splitlines()[0].startswith("run 1 (old, 1,000 images): test accuracy 0.8000")


def test_the_conv_recipe_trains_from_the_command_line_like_the_others(tmp_path, capsys, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    small = tmp_path / "small.npz"  # 500 training images before the 10,000 validation images, 200 test images
    np.savez(small, x_train=np.concatenate([x_train[:500], x_train[50000:]]),
             y_train=np.concatenate([y_train[:500], y_train[50000:]]), x_test=x_test[:200], y_test=y_test[:200])
    db_path, model_path = tmp_path / "runs.db", tmp_path / "conv.npz"
    cli.main(["train", "--recipe", "conv", "--epochs", "1", "--hidden", "32", "--quiet", "--data", str(small),
              "--db", str(db_path), "--save", str(model_path)])
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "test accuracy" in out and f"model saved to {model_path}" in out
    model = model_io.load_model(model_path, inputs=784, outputs=10)
    assert model.architecture == {"kind": "conv", "channels": [16, 32], "kernel": 5, "hidden": [32], "padding": 0}
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        config = json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])
    assert config["kind"] == "conv" and config["hidden"] == [32] and "sizes" not in config
    with pytest.raises(SystemExit, match="--activation: the conv recipe's ConvNet uses ReLU only"):
        cli.main(["train", "--recipe", "conv", "--activation", "tanh", "--data", str(small), "--no-db"])
    with pytest.raises(SystemExit, match=r"hidden \[100000000\] with batches of 128 would need about"):
        cli.main(["train", "--recipe", "conv", "--hidden", "100000000", "--no-db"])


def test_train_and_predict_a_convnet_with_batch_norm_and_dropout(tmp_path, capsys, mnist):
    """predict reads one image at a time: with batch norm it must use the running statistics, so that
    the image alone gets the probabilities it gets inside a batch of others."""
    from PIL import Image

    from helpers import images

    (x_train, y_train), (x_test, y_test) = mnist
    small = tmp_path / "small.npz"
    np.savez(small, x_train=np.concatenate([x_train[:1000], x_train[50000:]]),
             y_train=np.concatenate([y_train[:1000], y_train[50000:]]), x_test=x_test[:200], y_test=y_test[:200])
    model_path = tmp_path / "bn.npz"
    cli.main(["train", "--recipe", "conv", "--epochs", "1", "--hidden", "32", "--batchnorm", "--dropout", "0.25",
              "--quiet", "--data", str(small), "--no-db", "--save", str(model_path)])
    assert f"model saved to {model_path}" in capsys.readouterr().out
    model = model_io.load_model(model_path, inputs=784, outputs=10)
    assert model.architecture == {"kind": "conv", "channels": [16, 32], "kernel": 5, "hidden": [32], "padding": 0,
                                  "batchnorm": True, "dropout": 0.25}
    assert not np.array_equal(model.buffers["var2"], 1)  # the running statistics were saved and read back
    x28 = images.to_mnist(x_test[3])
    Image.fromarray(x28).save(tmp_path / "digit.png")
    cli.main(["predict", str(tmp_path / "digit.png"), "--model", str(model_path)])
    line = capsys.readouterr().out.strip()
    seen, _, _ = images.read(model, tmp_path / "digit.png")  # the 28x28 that predict put through the model
    batch = np.concatenate([data.flatten(x_test[:3]), seen.reshape(1, 784) / np.float32(255),
                            data.flatten(x_test[4:20])])
    proba = model.predict_proba(batch)[3]
    top = proba.argsort()[::-1][:3]
    assert line == f"{tmp_path / 'digit.png'}: {top[0]}  (" + ", ".join(f"{d}: {proba[d]:.3f}" for d in top) + ")"
    with pytest.raises(SystemExit, match="--batchnorm: only a ConvNet recipe"):
        cli.main(["train", "--recipe", "default", "--batchnorm", "--no-db", "--data", str(small)])
    for bad in ("1", "-0.1", "half"):
        with pytest.raises(SystemExit):
            cli.main(["train", "--recipe", "conv", "--dropout", bad, "--no-db"])
        assert "--dropout: must be a number in [0, 1)" in capsys.readouterr().err
