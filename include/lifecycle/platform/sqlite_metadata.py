"""Airflow's SQLite metadata DB (embedded profile): concurrent writers wait their turn, never fail.

SQLite (WAL) serializes writers with a busy timeout, but a transaction that starts by reading
and then writes cannot wait: if another process committed after its first read, the write fails
at once with "database is locked" (SQLITE_BUSY_SNAPSHOT; the busy handler is not called). With
pysqlite's default transaction handling a transaction starts at its first write, so this only
happens where SQLAlchemy opens one with ``SAVEPOINT`` (``Session.begin_nested``): Airflow's
backfill creation does, read first, for every run it creates. Under CPU load the gap between read
and write grows and ``POST /api/v2/backfills`` answered 500. Such a transaction here starts with
``BEGIN IMMEDIATE``, which takes the write lock up front and so waits like any other writer.

SQLite's ``CURRENT_TIMESTAMP``, what SQLAlchemy makes of ``func.now()``, has whole seconds
("2026-11-28 14:16:22"), while Airflow stores its timestamps as text with microseconds
("2026-11-28 14:16:22.300591"). The scheduler starts a queued run, and examines a running one,
only ``WHERE run_after <= now()``: a run created at 14:16:22.3 waited until 14:16:23 for both,
0.5 s on average per run and up to 1 s twice. Here ``now()`` has the stored format.

Airflow reads ``CONNECT_ARGS`` through ``[database] sql_alchemy_connect_args`` (an import path);
``sqlite3.connect(factory=...)`` is how the standard library lets a caller choose the connection class.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import now

BUSY_TIMEOUT_S = 60


class _Cursor(sqlite3.Cursor):
    def execute(self, sql, parameters=()):
        if not self.connection.in_transaction and sql.lstrip()[:9].upper() == "SAVEPOINT":
            super().execute("BEGIN IMMEDIATE")
        return super().execute(sql, parameters)


class Connection(sqlite3.Connection):
    """A pysqlite connection whose savepoint-opened transactions take the write lock first."""

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)


@compiles(now, "sqlite")
def _now_with_microseconds(element, compiler, **kw) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"  # %f is SS.SSS: the stored SS.ffffff


CONNECT_ARGS = {"timeout": BUSY_TIMEOUT_S, "factory": Connection}
ASYNC_CONNECT_ARGS = {"timeout": BUSY_TIMEOUT_S}  # aiosqlite: Airflow's async paths open no savepoints
