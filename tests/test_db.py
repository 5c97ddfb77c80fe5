"""SQLite storage: schema, one transaction per run, and every way writing can fail."""
import os
import sqlite3

import numpy as np
import pytest

from helpers import db


def fake_run(n=50, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    logits = rng.standard_normal((n, 10))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    run = dict(name="test", config={"sizes": [784, 10], "seed": seed}, dataset="mnist",
               metrics=dict(train_accuracy=0.5, test_accuracy=0.4, train_loss=1.0, test_loss=1.2, train_seconds=3.0),
               history={"epoch": [1, 2], "train_loss": [2.0, 1.0], "train_acc": [0.3, 0.5],
                        "test_loss": np.array([2.1, 1.2], np.float32), "test_acc": [0.3, 0.4], "seconds": [1.5, 3.0]},
               started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:03+00:00",
               versions={"numpy": np.__version__}, predictions={"test": (images, labels, proba)})
    run.update(overrides)
    return run


def count_runs(path):
    conn = db.connect(path, readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0], \
            conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    finally:
        conn.close()


def test_a_run_round_trips_with_its_images_history_and_views(tmp_path):
    path = tmp_path / "database.db"
    run = fake_run()
    run_id = db.save_run(path, **run)
    images, labels, proba = run["predictions"]["test"]
    conn = db.connect(path, readonly=True)
    rows = conn.execute("SELECT idx, input, label, predicted, confidence, p0, p9 FROM predictions "
                        "WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
    assert len(rows) == 50
    np.testing.assert_array_equal(db.decode_images([r[1] for r in rows]), images)
    assert [r[2] for r in rows] == labels.tolist()
    assert [r[3] for r in rows] == proba.argmax(axis=1).tolist()
    np.testing.assert_allclose([r[4] for r in rows], proba.max(axis=1))
    np.testing.assert_allclose([(r[5], r[6]) for r in rows], proba[:, [0, 9]])
    hist = conn.execute("SELECT epoch, test_accuracy FROM history WHERE run_id = ?", (run_id,)).fetchall()
    assert hist == [(1, 0.3), (2, 0.4)]
    types = conn.execute("SELECT DISTINCT typeof(test_loss) || typeof(confidence) || typeof(p3) "
                         "FROM history JOIN predictions USING (run_id)").fetchall()
    assert types == [("realrealreal",)]  # NumPy scalars are stored as numbers, not bytes
    per_digit = dict(conn.execute("SELECT label, correct FROM digit_accuracy WHERE run_id = ?", (run_id,)).fetchall())
    for d, correct in per_digit.items():
        assert correct == int(((labels == d) & (proba.argmax(1) == d)).sum())
    total = conn.execute("SELECT SUM(n) FROM confusion WHERE run_id = ?", (run_id,)).fetchone()[0]
    wrong = conn.execute("SELECT COUNT(*) FROM mistakes WHERE run_id = ?", (run_id,)).fetchone()[0]
    assert total == 50 and wrong == int((proba.argmax(1) != labels).sum())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_rerunning_adds_a_run_and_foreign_keys_are_enforced(tmp_path):
    path = tmp_path / "database.db"
    first, second = db.save_run(path, **fake_run()), db.save_run(path, **fake_run(seed=1))
    assert second == first + 1 and count_runs(path) == (2, 100)
    conn = db.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        conn.execute("INSERT INTO history (run_id, epoch) VALUES (999, 1)")
    conn.close()


def test_an_error_midway_through_the_predictions_leaves_nothing_behind(tmp_path):
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER fail BEFORE INSERT ON predictions WHEN NEW.idx = 20 "
                 "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END")
    conn.close()
    with pytest.raises(db.DatabaseFileError, match="database.db: could not write the run .*disk full.*unchanged"):
        db.save_run(path, **fake_run(seed=1))
    assert count_runs(path) == (1, 50)


def test_keyboard_interrupt_midway_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    history = fake_run()["history"]

    class Interrupting(list):  # Ctrl-C while the second history row is being written
        def __getitem__(self, i):
            if i == 1:
                raise KeyboardInterrupt
            return super().__getitem__(i)

    history["seconds"] = Interrupting(history["seconds"])
    with pytest.raises(KeyboardInterrupt):
        db.save_run(path, **fake_run(history=history))
    assert count_runs(path) == (1, 50)


@pytest.mark.parametrize("predictions, message", [
    ({"valid": None}, "split must be 'train' or 'test'"),
    ({"test": (np.zeros((5, 28, 28), np.float32), np.zeros(5, int), np.full((5, 10), 0.1))}, "uint8 images"),
    ({"test": (np.zeros((5, 20, 20), np.uint8), np.zeros(5, int), np.full((5, 10), 0.1))}, "784 pixels"),
    ({"test": (np.zeros((5, 28, 28), np.uint8), np.zeros(4, int), np.full((5, 10), 0.1))}, "784 pixels"),
    ({"test": (np.zeros((5, 28, 28), np.uint8), np.full(5, 12), np.full((5, 10), 0.1))}, "labels must be integers"),
    ({"test": (np.zeros((5, 28, 28), np.uint8), np.zeros(5, int), np.full((5, 9), 0.1))}, r"shape \(5, 10\)"),
    ({"test": (np.zeros((5, 28, 28), np.uint8), np.zeros(5, int), np.full((5, 10), np.nan))}, "must be finite"),
])
def test_bad_arrays_are_rejected_before_the_file_is_touched(tmp_path, predictions, message):
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    before = path.read_bytes()
    if "valid" in predictions:
        predictions = {"valid": fake_run()["predictions"]["test"]}
    with pytest.raises(ValueError, match=message):
        db.save_run(path, **fake_run(predictions=predictions))
    assert path.read_bytes() == before and count_runs(path) == (1, 50)


def test_missing_folder(tmp_path):
    with pytest.raises(db.DatabaseFileError, match="the folder .*nowhere does not exist"):
        db.save_run(tmp_path / "nowhere" / "database.db", **fake_run())


def test_not_a_sqlite_file_is_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(db.DatabaseFileError, match="notes.db: cannot be opened as a SQLite database"):
        db.save_run(path, **fake_run())
    assert path.read_bytes() == before


def test_another_projects_database_and_another_version_are_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(db.DatabaseFileError, match="other.db: a SQLite database, but not one written by this project"):
        db.save_run(other, **fake_run())
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(db.DatabaseFileError, match="schema version 99, this code reads version 1"):
        db.save_run(path, **fake_run())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    conn.close()


def test_read_only_file(tmp_path, monkeypatch):
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    path.chmod(0o444)
    if os.geteuid() == 0:  # root may write any file, so ask the mode bits as an ordinary user would
        monkeypatch.setattr(db.os, "access", lambda p, mode: not (mode & os.W_OK) or bool(os.stat(p).st_mode & 0o222))
    try:
        with pytest.raises(db.DatabaseFileError, match="database.db: the file is read-only; nothing was changed"):
            db.save_run(path, **fake_run())
    finally:
        path.chmod(0o644)
    assert count_runs(path) == (1, 50)


def test_a_locked_database_waits_then_fails_clearly(tmp_path):
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(db.DatabaseFileError, match="database.db: could not write the run .*locked"):
            db.save_run(path, **fake_run(), timeout=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert db.save_run(path, **fake_run(), timeout=2) == 2


def test_reader_sees_the_database_while_a_writer_holds_the_lock(tmp_path):
    path = tmp_path / "database.db"
    db.save_run(path, **fake_run())
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM predictions")
    try:
        assert count_runs(path) == (1, 50)  # WAL: the viewer reads the last committed state
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_viewer_open_of_a_missing_database_says_what_to_run(tmp_path):
    with pytest.raises(db.DatabaseFileError, match="no database yet. Run notebooks/Neural_net.ipynb"):
        db.connect(tmp_path / "database.db", readonly=True)
