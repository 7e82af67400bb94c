"""Airflow's own backfill creation on the embedded SQLite metadata DB while another process commits
writes every few milliseconds (a scheduler under load): every backfill is created with its runs.

Without ``lifecycle.platform.sqlite_metadata`` this fails on the first backfill with "database is locked"
(the 500 of ``POST /api/v2/backfills`` seen while the machine was busy)."""

import datetime as dt
import multiprocessing
import sqlite3
import time

import pytest
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
from airflow.models import DagRun
from airflow.models.backfill import Backfill, _create_backfill
from airflow.utils.session import create_session
from sqlalchemy import func, select, update

from conftest import ROOT
from lifecycle import settings
from lifecycle.platform import setup


def _heartbeats(db_path: str, stop) -> None:
    db = sqlite3.connect(db_path, timeout=60)
    db.execute("CREATE TABLE IF NOT EXISTS _other_writer (n INTEGER)")
    db.commit()
    while not stop.is_set():
        db.execute("INSERT INTO _other_writer VALUES (1)")
        db.commit()
        time.sleep(0.002)
    db.execute("DROP TABLE _other_writer")
    db.commit()


@pytest.fixture(scope="module")
def ingest_dag():
    setup.main()
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = DagBag(dag_folder=str(ROOT / "dags" / "ingest_dag.py"), include_examples=False)
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags["ingest"]


def test_backfills_are_created_while_another_process_writes(ingest_dag):
    first = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    stop = multiprocessing.Event()
    writer = multiprocessing.Process(target=_heartbeats, args=(str(settings.load().airflow_home / "airflow.db"), stop))
    writer.start()
    try:
        time.sleep(0.5)
        for i in range(5):
            day = first + dt.timedelta(days=3 * i)
            backfill = _create_backfill(
                dag_id="ingest",
                from_date=day,
                to_date=day + dt.timedelta(days=2, hours=23),
                max_active_runs=1,
                reverse=False,
                dag_run_conf=None,
                triggering_user_name="test",
                reprocess_behavior="completed",
            )
            with create_session() as session:
                runs = session.scalar(select(func.count()).where(DagRun.backfill_id == backfill.id))
                assert runs == 3, f"backfill {i}: {runs} runs"
                session.execute(
                    update(Backfill).where(Backfill.id == backfill.id).values(completed_at=dt.datetime.now(dt.UTC))
                )  # the next one may start
    finally:
        stop.set()
        writer.join(30)
    assert writer.exitcode == 0
