"""The command line: python -m helpers train / report / build-data, as a user would call them."""
import json
import sqlite3
import subprocess
import sys

import pytest

from helpers import __main__ as cli
from helpers import paths


def test_train_writes_a_run_saves_the_model_and_prints_the_accuracy(tmp_path, capsys):
    db_path, model_path = tmp_path / "runs.db", tmp_path / "m.npz"
    cli.main(["train", "--recipe", "baseline", "--epochs", "30", "--hidden", "16", "--lr", "1.0", "--seed", "3",
              "--db", str(db_path), "--save", str(model_path), "--quiet"])
    out = capsys.readouterr().out
    assert f"run 1 written to {db_path}" in out and f"model saved to {model_path}" in out
    conn = sqlite3.connect(db_path)
    name, config, test_acc = conn.execute("SELECT name, config, test_accuracy FROM runs").fetchone()
    n_test, n_train = (conn.execute("SELECT COUNT(*) FROM predictions WHERE split = ?", (s,)).fetchone()[0]
                       for s in ("test", "train"))
    conn.close()
    config = json.loads(config)
    assert name == "baseline" and config["sizes"] == [784, 16, 10] and config["epochs"] == 30
    assert config["lr"] == 1.0 and config["seed"] == 3
    assert (n_test, n_train) == (10000, 1000)
    assert f"test accuracy {test_acc:.4f}" in out
    cli.main(["report", "--db", str(db_path)])
    assert f"run 1 (baseline): test accuracy {test_acc:.4f}" in capsys.readouterr().out


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, "-m", "helpers", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for option in ("--recipe", "--hidden", "--activation", "--epochs", "--batch-size", "--lr", "--seed", "--db",
                   "--save", "--quiet"):
        assert option in out


def test_errors_are_one_clear_line(tmp_path):
    (tmp_path / "notes.db").write_text("not a database " * 100)
    with pytest.raises(SystemExit, match="error: .*notes.db: cannot be opened as a SQLite database"):
        cli.main(["report", "--db", str(tmp_path / "notes.db")])
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(SystemExit, match="error: .*elsewhere: no train-images-idx3-ubyte"):
        cli.main(["build-data", "--source", str(tmp_path / "elsewhere"), "--dest", str(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()


def test_build_data_rebuilds_the_shipped_file(tmp_path, capsys):
    cli.main(["build-data", "--dest", str(tmp_path / "mnist.npz")])
    assert (tmp_path / "mnist.npz").read_bytes()[:2] == b"PK"
    assert (tmp_path / "mnist.npz").stat().st_size == pytest.approx(paths.DATA_PATH.stat().st_size, rel=0.01)
