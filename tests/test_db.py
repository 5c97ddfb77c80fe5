"""SQLite storage: schema, one transaction per run, and every way writing can fail."""
import functools
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from helpers import db, paths


def fake_run(n=50, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    logits = rng.standard_normal((n, 10))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    run = dict(name="test", config={"sizes": [784, 10], "seed": seed}, dataset="mnist",
               metrics=dict(train_accuracy=0.5, train_loss=1.0, valid_accuracy=0.45, valid_loss=1.1,
                            test_accuracy=0.4, test_loss=1.2, train_seconds=3.0, n_train=n),
               history={"epoch": [1, 2], "train_loss": [2.0, 1.0], "train_acc": [0.3, 0.5],
                        "valid_loss": np.array([2.1, 1.2], np.float32), "valid_acc": [0.3, 0.4], "seconds": [1.5, 3.0]},
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
    hist = conn.execute("SELECT epoch, valid_accuracy, test_accuracy FROM history WHERE run_id = ?",
                        (run_id,)).fetchall()
    assert hist == [(1, 0.3, None), (2, 0.4, None)]  # new runs never fill the per-epoch test columns
    run = conn.execute("SELECT n_train, valid_accuracy, test_accuracy, reported_split FROM runs").fetchone()
    assert run == (50, 0.45, 0.4, "test")
    types = conn.execute("SELECT DISTINCT typeof(valid_loss) || typeof(confidence) || typeof(p3) "
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
    ({"validation": None}, "split must be 'train', 'valid' or 'test'"),
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
    if "validation" in predictions:
        predictions = {"validation": fake_run()["predictions"]["test"]}
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
    with pytest.raises(db.DatabaseFileError, match="schema version 99, this code reads version 2"):
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


# Schema version 1, as helpers/db.py created it before the validation protocol (copied, not imported:
# the test must keep building the old file whatever the code becomes).
PROBS_V1 = ", ".join(f"p{d} REAL NOT NULL" for d in range(10))
SCHEMA_V1 = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    config TEXT NOT NULL, dataset TEXT NOT NULL,
    train_accuracy REAL, test_accuracy REAL, train_loss REAL, test_loss REAL, train_seconds REAL,
    versions TEXT NOT NULL);
CREATE TABLE history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, epoch INTEGER NOT NULL,
    train_loss REAL, train_accuracy REAL, test_loss REAL, test_accuracy REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch));
CREATE TABLE predictions (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split TEXT NOT NULL CHECK (split IN ('train', 'test')), idx INTEGER NOT NULL,
    input BLOB NOT NULL CHECK (length(input) = 784),
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9), predicted INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
    confidence REAL NOT NULL, {PROBS_V1}, PRIMARY KEY (run_id, split, idx));
CREATE INDEX predictions_by_digit ON predictions (run_id, split, label, predicted);
CREATE INDEX predictions_by_confidence ON predictions (run_id, split, confidence);
CREATE VIEW digit_accuracy AS SELECT run_id, split, label, COUNT(*) AS n, SUM(predicted = label) AS correct,
    AVG(predicted = label) AS accuracy FROM predictions GROUP BY run_id, split, label;
CREATE VIEW confusion AS SELECT run_id, split, label, predicted, COUNT(*) AS n
    FROM predictions GROUP BY run_id, split, label, predicted;
CREATE VIEW mistakes AS SELECT * FROM predictions WHERE predicted != label;
PRAGMA application_id = {db.APPLICATION_ID};
PRAGMA user_version = 1;
"""


def make_v1(path):
    """A version-1 database with two runs (one on 1,000 images, one on all), their history and predictions."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA_V1)
    rng = np.random.default_rng(0)
    for run_id, config in ((1, '{"n_train": 1000, "seed": 0}'), (2, '{"n_train": null, "seed": 1}')):
        conn.execute("INSERT INTO runs VALUES (?, 'old', 't0', 't1', ?, 'mnist', 0.9, 0.8, 0.3, 0.5, 2.5, '{}')",
                     (run_id, config))
        conn.executemany("INSERT INTO history VALUES (?,?,?,?,?,?,?)",
                         [(run_id, e, 1.0 / e, 0.5 + e / 10, 1.1 / e, 0.4 + e / 10, float(e)) for e in (1, 2, 3)])
        for split in ("train", "test"):
            conn.executemany(f"INSERT INTO predictions VALUES (?,?,?,?,?,?,?,{','.join('?' * 10)})",
                             [(run_id, split, i, rng.integers(0, 256, 784, dtype=np.uint8).tobytes(), i % 10,
                               (i * 3) % 10, 0.5, *([0.1] * 10)) for i in range(20)])
    conn.close()


def dump(path):
    """Every row of every table of a database file, read by plain sqlite3 (not read-only: a read-only
    connection to a WAL file leaves its -wal and -shm files behind)."""
    conn = sqlite3.connect(path)
    try:
        return ([tuple(r) for r in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")],
                {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                 for t in ("runs", "history", "predictions")},
                conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_version_1_file_is_migrated_with_every_run_kept(tmp_path):
    path = tmp_path / "database.db"
    make_v1(path)
    _, old, _ = dump(path)
    assert db.save_run(path, **fake_run()) == 3  # opening for writing migrates, then the run is added
    _, new, version = dump(path)
    assert version == db.SCHEMA_VERSION
    conn = sqlite3.connect(path)
    runs = conn.execute("SELECT id, n_train, test_accuracy, valid_accuracy, reported_split FROM runs").fetchall()
    assert runs == [(1, 1000, 0.8, None, "test"), (2, 60000, 0.8, None, "test"), (3, 50, 0.4, 0.45, "test")]
    history = conn.execute("SELECT run_id, epoch, train_loss, train_accuracy, test_loss, test_accuracy, seconds "
                           "FROM history WHERE run_id < 3").fetchall()
    assert history == old["history"]  # the v1 per-epoch figures stay in test_*, where they were measured
    assert conn.execute("SELECT COUNT(*) FROM history WHERE run_id < 3 AND valid_loss IS NOT NULL").fetchone()[0] == 0
    predictions = conn.execute("SELECT * FROM predictions WHERE run_id < 3 ORDER BY 1, 2, 3").fetchall()
    assert predictions == old["predictions"]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_a_migration_that_fails_halfway_leaves_the_version_1_file_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "database.db"
    make_v1(path)
    before = dump(path)
    # a NOT NULL violation after the new tables were made and the runs copied
    broken = db.schema.MIGRATE_1_TO_2.replace("DROP TABLE predictions_v1;",
                                              "INSERT INTO runs_v1 (id) VALUES (99);\nDROP TABLE predictions_v1;")
    assert broken != db.schema.MIGRATE_1_TO_2
    monkeypatch.setattr(db.schema, "MIGRATE_1_TO_2", broken)
    with pytest.raises(db.DatabaseFileError, match=r"database.db: could not migrate .*the file is unchanged.*NOT NULL"):
        db.save_run(path, **fake_run())
    assert dump(path) == before


def test_a_version_1_file_opened_read_only_says_how_to_migrate(tmp_path):
    path = tmp_path / "database.db"
    make_v1(path)
    before = dump(path)
    with pytest.raises(db.DatabaseFileError, match="schema version 1, .*python -m helpers migrate"):
        db.connect(path, readonly=True)
    assert dump(path) == before


def _save_after(barrier, folder, seed, results, trials):
    for trial in range(trials):
        barrier.wait()  # both processes open the new file of this trial at the same moment
        try:
            results.put((trial, db.save_run(folder / f"race{trial}.db", **fake_run(seed=seed), timeout=10)))
        except Exception as e:  # reported to the parent: the assertion shows it
            results.put((trial, repr(e)))


def test_two_processes_creating_a_new_database_both_add_their_run(tmp_path):
    # spawn, as try_seeds does: fork is unsafe in a process with threads (a DeprecationWarning since
    # Python 3.12) and no longer Linux's default from 3.14. Two processes run every trial: spawning
    # one costs a second, a fresh pair per trial would cost twenty.
    ctx, trials = multiprocessing.get_context("spawn"), 10
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_save_after, args=(barrier, tmp_path, seed, results, trials)) for seed in (0, 1)]
    for p in procs:
        p.start()
    got = {}
    for _ in range(2 * trials):
        trial, run_id = results.get(timeout=120)
        got.setdefault(trial, []).append(str(run_id))
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    for trial in range(trials):
        assert sorted(got[trial]) == ["1", "2"], (trial, got[trial])
        assert count_runs(tmp_path / f"race{trial}.db") == (2, 100)


@functools.cache
def as_a_user():
    """The command prefix that runs this interpreter as an ordinary user, who may not enter or write
    every folder; root may, which would hide the problem. As root: root without any capability, which
    obeys a folder's mode bits like its owner; failing that, uid 65534. Either must run this very
    interpreter: as uid 65534, a Python under a private home folder cannot load its own libpython, or
    loads another one (the system's). Skips, saying why, if neither can."""
    if os.geteuid() != 0:
        return ()
    why = []
    for prefix in (("setpriv", "--inh-caps=-all", "--bounding-set=-all"),
                   ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")):
        try:
            out = subprocess.run([*prefix, sys.executable, "-c", "import sys, helpers.db; print(sys.version)"],
                                 capture_output=True, text=True, cwd=paths.ROOT)
        except OSError as e:  # no setpriv
            why.append(f"{prefix[0]}: {e}")
            continue
        if out.returncode == 0 and out.stdout.strip() == sys.version:
            return prefix
        failed = out.stderr.strip().splitlines()[-1:] if out.returncode else [f"runs Python {out.stdout.strip()}"]
        why.append(f"{' '.join(prefix)}: {' '.join(failed) or f'exit status {out.returncode}'}")
    pytest.skip(f"cannot run {sys.executable} as an ordinary user here: {'; '.join(why)}")


def test_report_reads_a_wal_database_in_a_folder_it_cannot_write(tmp_path):
    prefix = as_a_user()
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # not under pytest's private tmp, which others cannot enter
    try:
        db.save_run(folder / "database.db", **fake_run())
        folder.chmod(0o555)
        assert not (folder / "database.db-wal").exists()  # the writer checkpointed and removed it
        code = (f"from helpers import db; c = db.connect({str(folder / 'database.db')!r}, readonly=True); "
                f"print(c.execute('SELECT COUNT(*) FROM runs').fetchone()[0]); c.close()")
        out = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.ROOT)
        assert (out.returncode, out.stdout.strip()) == (0, "1"), out.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["database.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_a_folder_or_an_empty_database_gets_a_clear_message(tmp_path):
    with pytest.raises(db.DatabaseFileError, match="runs.db: is a folder, not a database file"):
        (tmp_path / "runs.db").mkdir()
        db.check_writable(tmp_path / "runs.db")
    db.check_writable(tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()  # checking creates nothing
    db.connect(tmp_path / "empty.db").close()
    conn = db.connect(tmp_path / "empty.db", readonly=True)
    with pytest.raises(db.DatabaseFileError, match="empty.db: no runs yet. Run notebooks/Neural_net.ipynb"):
        db.require_runs(conn, tmp_path / "empty.db")
    conn.close()
