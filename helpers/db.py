"""Store training runs and their predictions in SQLite (`database.db`), and read them back.

Tables `runs`, `history`, `predictions` and views `digit_accuracy`, `confusion`, `mistakes`: see
schema.py, which holds the SQL. `save_run` writes a run and all its rows in one transaction: they
appear together or not at all. Every failure raises `DatabaseFileError` naming the file.

Schema version 2 (the validation protocol: train on 50,000 images, choose on the last 10,000,
measure the test set once per final model). New runs fill history's valid_* columns; its
test_* columns hold only the figures of runs migrated from version 1, which were measured on
the test set after every epoch under the old protocol. A version-1 file is migrated when it
is opened for writing, in one transaction that keeps every run.
"""
import json
import math
import os
import sqlite3
from pathlib import Path

import numpy as np

from . import schema
from .schema import APPLICATION_ID, SCHEMA_VERSION

SPLITS = ("train", "valid", "test")
METRICS = ("train_accuracy", "train_loss", "valid_accuracy", "valid_loss", "test_accuracy", "test_loss")
HOW_TO_RUN = "Run notebooks/Neural_net.ipynb, `make run` or `python -m helpers train` first."


class DatabaseFileError(RuntimeError):
    """The database file cannot be opened, is not this project's, or cannot be written."""

    def _render_traceback_(self):  # in a notebook, IPython shows this message instead of a traceback
        return [f"{type(self).__name__}: {self}"]


def _open_readonly(path, timeout):
    # A WAL database needs its -shm file; in a folder we cannot write, SQLite cannot create it
    # ("attempt to write a readonly database"). With no -wal file there is nothing uncommitted
    # to read, so the file can be opened as immutable, which needs no -shm at all.
    uri = path.resolve().as_uri() + "?mode=ro"
    wal = path.with_name(path.name + "-wal")
    if not os.access(path.parent, os.W_OK) and not wal.exists():
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=timeout)


def connect(path, readonly=False, timeout=5.0):
    """Open (and if new, create; if version 1, migrate) the project's database.

    readonly: for viewers; never changes the file. timeout: seconds to wait for a lock.
    """
    path = Path(path)
    if path.is_dir():
        raise DatabaseFileError(f"{path}: is a folder, not a database file; pass a file name such as "
                                f"{path / 'database.db'}")
    if not path.parent.is_dir():
        raise DatabaseFileError(f"{path}: the folder {path.parent} does not exist")
    if readonly and not path.is_file():
        raise DatabaseFileError(f"{path}: no database yet. Run notebooks/Neural_net.ipynb (or `make run`) first.")
    if not readonly and path.exists() and not os.access(path, os.W_OK):
        raise DatabaseFileError(f"{path}: the file is read-only; nothing was changed. Pass another path.")
    if not readonly and not os.access(path.parent, os.W_OK):
        raise DatabaseFileError(f"{path}: the folder {path.parent} is not writable")
    try:
        conn = _open_readonly(path, timeout) if readonly else sqlite3.connect(path, timeout=timeout,
                                                                              isolation_level=None)
    except sqlite3.Error as e:
        raise DatabaseFileError(f"{path}: cannot be opened as a SQLite database ({e})") from None
    try:  # from here on, every way out but the return closes the connection
        if not readonly:  # emptiness is decided under the write lock: two processes creating the
            conn.execute("BEGIN IMMEDIATE")  # file at once both succeed, the second finding the tables
        state = conn.execute("SELECT * FROM pragma_application_id(), pragma_user_version(), "
                             "(SELECT COUNT(*) FROM sqlite_master)").fetchone()
        _check_or_set_up(conn, path, state, readonly)
        if not readonly and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:  # WAL: readers (the viewer) never block the writer. Set outside any transaction.
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.Error:  # busy for longer than timeout: the next writer sets it
                pass
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    except BaseException as e:  # Python 3.13 warns of a connection left to the garbage collector
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:  # the first error is the one to report
            pass
        finally:
            conn.close()
        if not isinstance(e, sqlite3.Error):
            raise
        if "locked" in str(e) and readonly:  # a reader waits only for a writer's exclusive lock
            raise DatabaseFileError(f"{path}: could not read the runs ({e} for {timeout} s: another process is "
                                    f"writing); try again when it has finished") from None
        if "locked" in str(e):
            raise DatabaseFileError(f"{path}: could not write the run ({e} for {timeout} s: another process is "
                                    f"writing); existing runs are unchanged") from None
        raise DatabaseFileError(f"{path}: cannot be opened as a SQLite database ({e})") from None


def _check_or_set_up(conn, path, state, readonly):
    app_id, version, tables = state
    if (app_id, version, tables) == (0, 0, 0) and not readonly:
        _run(conn, path, schema.SCHEMA, "cannot create the tables")
        return
    if app_id != APPLICATION_ID:
        raise DatabaseFileError(f"{path}: a SQLite database, but not one written by this project; "
                                f"nothing was changed. Pass another path.")
    if version == 1 and readonly:
        raise DatabaseFileError(f"{path}: schema version 1, this code reads version {SCHEMA_VERSION}. Open it "
                                f"once for writing to migrate it, every run kept: `python -m helpers migrate`")
    if version == 1:
        _run(conn, path, schema.MIGRATE_1_TO_2, "could not migrate from schema version 1 (the file is unchanged)")
        return
    if version != SCHEMA_VERSION:
        raise DatabaseFileError(f"{path}: schema version {version}, this code reads version "
                                f"{SCHEMA_VERSION}; nothing was changed.")
    if conn.in_transaction:
        conn.execute("COMMIT")


def _run(conn, path, script, what):
    """Run a DDL script inside the transaction connect opened, then commit; roll back on failure."""
    try:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        raise DatabaseFileError(f"{path}: {what} ({e})") from None


def check_writable(path):
    """Raise DatabaseFileError unless save_run could write a run to path; called before training.
    Creates nothing: an existing file is opened (a version-1 file migrated), a new one only checked."""
    path = Path(path)
    if path.exists() or path.is_dir():
        connect(path).close()
    elif not path.parent.is_dir():
        raise DatabaseFileError(f"{path}: the folder {path.parent} does not exist")
    elif not os.access(path.parent, os.W_OK):
        raise DatabaseFileError(f"{path}: the folder {path.parent} is not writable")


def require_runs(conn, path):
    """Raise DatabaseFileError if the database holds no run yet, saying what to run."""
    if conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0:
        raise DatabaseFileError(f"{path}: no runs yet. {HOW_TO_RUN}")


def _check_predictions(split, images, labels, proba):
    if split not in SPLITS:
        raise ValueError(f"predictions split must be 'train', 'valid' or 'test', got {split!r}")
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


def _number(value):
    """A figure as SQLite stores it: float, or None (NULL) for missing, None or NaN."""
    if value is None:
        return None
    value = float(value)  # float(): NumPy scalars would otherwise be stored as raw bytes
    return None if math.isnan(value) else value


def save_run(path, *, name, config, dataset, metrics, history, started_at, finished_at,
             versions, predictions, timeout=5.0):
    """Write one run, its history and its predictions in one transaction; return the run id.

    metrics: dict with train_accuracy, train_loss, valid_accuracy, valid_loss, test_accuracy,
    test_loss (any may be missing or None: NULL), train_seconds and n_train (images that trained
    the model). history: dict of lists as returned by training.fit (epoch, train_loss, train_acc,
    valid_loss, valid_acc, seconds; NaN or None: NULL). predictions: {split: (images (n, 28, 28)
    uint8, labels (n,), proba (n, 10))}, split in 'train', 'valid', 'test'. All input is checked
    before the file is touched.
    """
    checked = {split: _check_predictions(split, *arrays) for split, arrays in predictions.items()}
    config_json, versions_json = json.dumps(config, sort_keys=True), json.dumps(versions, sort_keys=True)
    figures = [_number(metrics.get(k)) for k in METRICS]
    reported = "test" if figures[METRICS.index("test_accuracy")] is not None else "valid"
    n_train = metrics.get("n_train", config.get("n_train") if isinstance(config, dict) else None)
    columns = ("train_loss", "train_acc", "valid_loss", "valid_acc", "seconds")
    history_rows = [(int(epoch), *(_number(history[c][i]) if c in history else None for c in columns))
                    for i, epoch in enumerate(history["epoch"])]
    conn = connect(path, timeout=timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        run_id = conn.execute(
            f"INSERT INTO runs (name, started_at, finished_at, config, dataset, n_train, {', '.join(METRICS)},"
            " train_seconds, reported_split, versions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (name, started_at, finished_at, config_json, dataset, None if n_train is None else int(n_train),
             *figures, _number(metrics["train_seconds"]), reported, versions_json)).lastrowid
        conn.executemany(
            "INSERT INTO history (run_id, epoch, train_loss, train_accuracy, valid_loss, valid_accuracy, seconds)"
            " VALUES (?,?,?,?,?,?,?)", ((run_id, *row) for row in history_rows))
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
