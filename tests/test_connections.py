"""Every SQLite connection helpers opens is closed, whatever way it ends. Python 3.13 warns
(ResourceWarning) of a connection left to the garbage collector; this test sees one on any Python."""
import contextlib
import sqlite3

import pytest
from test_db import fake_run, make_v1

from helpers import __main__ as cli
from helpers import db


def is_open(conn):
    try:
        conn.execute("SELECT 1")
        return True
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return False


def test_every_connection_is_closed_on_every_path(tmp_path, monkeypatch, capsys):
    good, empty, v1, other, newer, garbage, locked = (tmp_path / f"{n}.db" for n in (
        "good", "empty", "v1", "other", "newer", "garbage", "locked"))
    for path in (good, newer, locked):
        db.save_run(path, **fake_run())
    db.connect(empty).close()
    make_v1(v1)
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE t (x)")
    with contextlib.closing(sqlite3.connect(newer)) as conn:
        conn.execute("PRAGMA user_version = 3")
    garbage.write_bytes(b"not a database" * 100)
    holder = sqlite3.connect(locked, isolation_level=None)  # another writer, opened before the recording
    holder.execute("BEGIN IMMEDIATE")
    opened, real_connect = [], sqlite3.connect

    def recording(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(db.sqlite3, "connect", recording)
    try:
        for path, readonly in [(garbage, True), (garbage, False), (other, True), (other, False), (newer, True),
                               (newer, False), (v1, True), (locked, False)]:
            with pytest.raises(db.DatabaseFileError):
                db.connect(path, readonly=readonly, timeout=0.1)
        with pytest.raises(db.DatabaseFileError, match="could not write the run"):
            db.save_run(locked, **fake_run(), timeout=0.1)
        db.check_writable(good)
        cli.main(["report", "--db", str(good)])
        with pytest.raises(SystemExit, match="no runs yet"):
            cli.main(["report", "--db", str(empty)])
        cli.main(["migrate", "--db", str(v1)])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "run 1 (test, 50 images)" in capsys.readouterr().out
    assert len(opened) >= 12  # every case above opened its connection through sqlite3.connect
    assert [conn for conn in opened if is_open(conn)] == []
