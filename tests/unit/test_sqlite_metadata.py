"""Airflow's SQLite metadata DB: a savepoint-opened transaction that reads, then writes, must wait
for a concurrent writer instead of failing with "database is locked" (the backfill API's 500)."""

import sqlite3
import threading
import time

import pytest

from lifecycle.platform import sqlite_metadata


def _db(tmp_path):
    path = tmp_path / "airflow.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE dag_run (id INTEGER PRIMARY KEY, state TEXT)")
        db.execute("INSERT INTO dag_run (state) VALUES ('success')")
    return path


def _other_writer_commits(path, started: threading.Event | None = None):
    """Another process's write (the scheduler's heartbeat) that commits while the savepoint is open."""
    db = sqlite3.connect(path, timeout=sqlite_metadata.BUSY_TIMEOUT_S)
    if started:
        started.set()
    db.execute("UPDATE dag_run SET state = 'running'")
    db.commit()
    db.close()


def _savepoint_read_then_write(db, between):
    cur = db.cursor()
    cur.execute("SAVEPOINT sa_savepoint_1")  # what SQLAlchemy's Session.begin_nested() sends
    cur.execute("SELECT count(*) FROM dag_run").fetchone()
    between()
    cur.execute("INSERT INTO dag_run (state) VALUES ('queued')")
    cur.execute("RELEASE SAVEPOINT sa_savepoint_1")
    db.commit()


def test_plain_pysqlite_fails_at_once_when_another_writer_committed_after_the_first_read(tmp_path):
    path = _db(tmp_path)
    db = sqlite3.connect(path, timeout=sqlite_metadata.BUSY_TIMEOUT_S)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        _savepoint_read_then_write(db, lambda: _other_writer_commits(path))


def test_the_metadata_connection_makes_the_other_writer_wait_and_both_commit(tmp_path):
    path = _db(tmp_path)
    db = sqlite3.connect(path, **sqlite_metadata.CONNECT_ARGS)
    started = threading.Event()
    other = threading.Thread(target=_other_writer_commits, args=(path, started))

    def start_other_writer():
        other.start()
        started.wait(5)

    _savepoint_read_then_write(db, start_other_writer)  # holds the write lock from its first statement
    other.join(10)
    assert not other.is_alive()
    assert db.execute("SELECT state FROM dag_run ORDER BY id").fetchall() == [("running",), ("running",)]
    assert not db.in_transaction


def test_plain_transactions_are_unchanged(tmp_path):
    db = sqlite3.connect(_db(tmp_path), **sqlite_metadata.CONNECT_ARGS)
    db.execute("INSERT INTO dag_run (state) VALUES ('queued')")
    assert db.in_transaction
    db.rollback()
    assert db.execute("SELECT count(*) FROM dag_run").fetchone() == (1,)


def test_now_has_the_stored_timestamps_microsecond_format(tmp_path):
    """A run created a moment ago (its ``run_after`` stored as text with microseconds) is due at
    once: ``run_after <= now()`` holds within the same second, which SQLite's CURRENT_TIMESTAMP
    (whole seconds) made false until the next second began."""
    import datetime as dt

    import sqlalchemy as sa
    from airflow.utils.sqlalchemy import UtcDateTime

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'airflow.db'}", connect_args=sqlite_metadata.CONNECT_ARGS)
    runs = sa.Table("dag_run", sa.MetaData(), sa.Column("run_after", UtcDateTime))
    runs.metadata.create_all(engine)
    with engine.begin() as db:
        for _ in range(20):  # 20 tries, 30 ms apart: some within the same second as their check
            created = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=2)
            db.execute(runs.delete())
            db.execute(runs.insert().values(run_after=created))
            assert db.execute(sa.select(runs.c.run_after <= sa.func.now())).scalar() == 1
            stamp = db.execute(sa.select(sa.func.now())).scalar()  # read back as SQLAlchemy's DateTime
            assert abs(stamp.replace(tzinfo=dt.UTC) - created).total_seconds() < 1
            time.sleep(0.03)
