"""Airflow's SQLite metadata DB (embedded profile): concurrent writers wait their turn, never fail.

SQLite (WAL) serializes writers with a busy timeout, but a transaction that starts by reading
and then writes cannot wait: if another process committed after its first read, the write fails
at once with "database is locked" (SQLITE_BUSY_SNAPSHOT; the busy handler is not called). With
pysqlite's default transaction handling a transaction starts at its first write, so this only
happens where SQLAlchemy opens one with ``SAVEPOINT`` (``Session.begin_nested``): Airflow's
backfill creation does, read first, for every run it creates. Under CPU load the gap between read
and write grows and ``POST /api/v2/backfills`` answered 500. Such a transaction here starts with
``BEGIN IMMEDIATE``, which takes the write lock up front and so waits like any other writer.

Airflow reads ``CONNECT_ARGS`` through ``[database] sql_alchemy_connect_args`` (an import path);
``sqlite3.connect(factory=...)`` is how the standard library lets a caller choose the connection class.
"""

from __future__ import annotations

import sqlite3

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


CONNECT_ARGS = {"timeout": BUSY_TIMEOUT_S, "factory": Connection}
ASYNC_CONNECT_ARGS = {"timeout": BUSY_TIMEOUT_S}  # aiosqlite: Airflow's async paths open no savepoints
