"""Store training runs and their predictions in SQLite (`database.db`), and read them back.

Tables: `runs` (one row per trained model: configuration as JSON, final metrics,
timings, library versions), `history` (one row per epoch), `predictions` (one row
per image: the raw 784 pixels as a BLOB in `input`, `label`, `predicted`,
`confidence`, and the ten probabilities p0..p9). Views: `digit_accuracy`,
`confusion`, `mistakes`. `save_run` writes a run and all its rows in one transaction:
they appear together or not at all. Every failure raises `DatabaseFileError` naming
the file.
"""
import json
import os
import sqlite3
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4D4E4953  # "MNIS": marks a database as this project's
PROBS = [f"p{d}" for d in range(10)]
SCHEMA = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset TEXT NOT NULL,
    train_accuracy REAL, test_accuracy REAL, train_loss REAL, test_loss REAL,
    train_seconds REAL,
    versions TEXT NOT NULL
);
CREATE TABLE history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL, train_accuracy REAL, test_loss REAL, test_accuracy REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE predictions (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split TEXT NOT NULL CHECK (split IN ('train', 'test')),
    idx INTEGER NOT NULL,
    input BLOB NOT NULL CHECK (length(input) = 784),
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
    confidence REAL NOT NULL,
    {", ".join(p + " REAL NOT NULL" for p in PROBS)},
    PRIMARY KEY (run_id, split, idx)
);
CREATE INDEX predictions_by_digit ON predictions (run_id, split, label, predicted);
CREATE INDEX predictions_by_confidence ON predictions (run_id, split, confidence);
CREATE VIEW digit_accuracy AS
    SELECT run_id, split, label, COUNT(*) AS n, SUM(predicted = label) AS correct,
           AVG(predicted = label) AS accuracy
    FROM predictions GROUP BY run_id, split, label;
CREATE VIEW confusion AS
    SELECT run_id, split, label, predicted, COUNT(*) AS n
    FROM predictions GROUP BY run_id, split, label, predicted;
CREATE VIEW mistakes AS
    SELECT * FROM predictions WHERE predicted != label;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""


class DatabaseFileError(RuntimeError):
    """The database file cannot be opened, is not this project's, or cannot be written."""

    def _render_traceback_(self):  # in a notebook, IPython shows this message instead of a traceback
        return [f"{type(self).__name__}: {self}"]


def connect(path, readonly=False, timeout=5.0):
    """Open (and if new, create) the project's database. timeout: seconds to wait for a lock."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DatabaseFileError(f"{path}: the folder {path.parent} does not exist")
    if not readonly and path.exists() and not os.access(path, os.W_OK):
        raise DatabaseFileError(f"{path}: the file is read-only; nothing was changed. Pass another path.")
    if not readonly and not os.access(path.parent, os.W_OK):
        raise DatabaseFileError(f"{path}: the folder {path.parent} is not writable")
    if readonly and not path.is_file():
        raise DatabaseFileError(f"{path}: no database yet. Run notebooks/Neural_net.ipynb (or `make run`) first.")
    try:
        if readonly:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout)
        else:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as e:
        raise DatabaseFileError(f"{path}: cannot be opened as a SQLite database ({e})") from None
    if (app_id, version, tables) == (0, 0, 0) and not readonly:
        _create(conn, path)
    elif app_id != APPLICATION_ID:
        conn.close()
        raise DatabaseFileError(f"{path}: a SQLite database, but not one written by this project; "
                                f"nothing was changed. Pass another path.")
    elif version != SCHEMA_VERSION:
        conn.close()
        raise DatabaseFileError(f"{path}: schema version {version}, this code reads version "
                                f"{SCHEMA_VERSION}; nothing was changed.")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _create(conn, path):
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # readers (the viewer) never block the writer
        conn.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
    except sqlite3.Error as e:
        conn.close()
        raise DatabaseFileError(f"{path}: cannot create the tables ({e})") from None


def _check_predictions(split, images, labels, proba):
    if split not in ("train", "test"):
        raise ValueError(f"predictions split must be 'train' or 'test', got {split!r}")
    images, labels, proba = np.asarray(images), np.asarray(labels), np.asarray(proba)
    n = len(labels)
    if images.dtype != np.uint8 or images.reshape(len(images), -1).shape != (n, 784):
        raise ValueError(f"{split} images must be {n} uint8 images of 784 pixels (n, 28, 28) or (n, 784), "
                         f"got {images.dtype} {images.shape}")
    in_range = n == 0 or 0 <= labels.min() <= labels.max() <= 9
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or not in_range:
        raise ValueError(f"{split} labels must be integers 0..9 of shape ({n},), got {labels.dtype} {labels.shape}")
    if proba.shape != (n, 10) or not np.isfinite(proba).all():
        raise ValueError(f"{split} probabilities must be finite, of shape ({n}, 10), got {proba.shape}")
    return images.reshape(n, 784), labels, proba.astype(np.float64)


def save_run(path, *, name, config, dataset, metrics, history, started_at, finished_at,
             versions, predictions, timeout=5.0):
    """Write one run, its history and its predictions in one transaction; return the run id.

    metrics: dict with train_accuracy, test_accuracy, train_loss, test_loss, train_seconds.
    history: dict of lists as returned by training.fit. predictions: {split: (images
    (n, 28, 28) uint8, labels (n,), proba (n, 10))}. All input is checked before the file is touched.
    """
    checked = {split: _check_predictions(split, *arrays) for split, arrays in predictions.items()}
    config_json, versions_json = json.dumps(config, sort_keys=True), json.dumps(versions, sort_keys=True)
    conn = connect(path, timeout=timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        run_id = conn.execute(
            "INSERT INTO runs (name, started_at, finished_at, config, dataset, train_accuracy, test_accuracy,"
            " train_loss, test_loss, train_seconds, versions) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (name, started_at, finished_at, config_json, dataset,
             *(float(metrics[k]) for k in ("train_accuracy", "test_accuracy", "train_loss", "test_loss",
                                           "train_seconds")), versions_json)).lastrowid
        columns = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds")
        conn.executemany(  # float(): NumPy scalars would otherwise be stored as raw bytes
            "INSERT INTO history VALUES (?,?,?,?,?,?,?)",
            ((run_id, int(epoch), *(float(history[c][i]) for c in columns))
             for i, epoch in enumerate(history["epoch"])))
        sql = f"INSERT INTO predictions VALUES (?,?,?,?,?,?,?,{','.join('?' * 10)})"
        for split, (images, labels, proba) in checked.items():
            predicted, confidence, rows = proba.argmax(axis=1).tolist(), proba.max(axis=1).tolist(), proba.tolist()
            conn.executemany(sql, (
                (run_id, split, i, images[i].tobytes(), int(labels[i]), predicted[i], confidence[i], *rows[i])
                for i in range(len(labels))))
        conn.execute("COMMIT")
        return run_id
    except BaseException as e:  # KeyboardInterrupt too: nothing of this run stays behind
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.Error):
            raise DatabaseFileError(f"{path}: could not write the run ({e}); existing runs are unchanged") from None
        raise
    finally:
        conn.close()


def decode_images(blobs):
    """The `input` BLOBs of predictions rows -> (n, 28, 28) uint8 images."""
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(-1, 28, 28)
