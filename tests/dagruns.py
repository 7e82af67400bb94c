"""Running DAGs with dag.test() and reading what a run left in the metadata database: task states
and return values."""

import contextlib
import datetime as dt
import importlib
import shutil
from pathlib import Path

from airflow.models import TaskInstance
from airflow.utils.session import create_session
from sqlalchemy import select


def _instances(session, dag_run):
    return session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
    )


def states(dag_run) -> dict[str, str]:
    """Task id (``[map index]`` for mapped ones) -> state."""
    with create_session() as session:
        tis = _instances(session, dag_run)
        return {f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: ti.state for ti in tis}


def tries(dag_run) -> dict[str, int]:
    """Task id -> how many times it ran (unmapped tasks)."""
    with create_session() as session:
        return {ti.task_id: ti.try_number for ti in _instances(session, dag_run)}


def xcom(dag_run, task_id):
    """What the task returned."""
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id,
                TaskInstance.run_id == dag_run.run_id,
                TaskInstance.task_id == task_id,
            )
        ).one()
        return ti.xcom_pull(task_ids=task_id, session=session)


def ingest_run(dags, day: dt.date):
    """The ingest DAG's run for ``day``: a manual run ingests the last complete interval, the day
    before its logical date, 01:00 UTC."""
    return dags["ingest"].test(logical_date=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), tzinfo=dt.UTC))


@contextlib.contextmanager
def use_case_dags(settings: dict[str, str], dags_folder: Path):
    """The DAGs as parsed under another use case's ``settings`` (LIFECYCLE_* variables, with a state
    folder of its own, emptied first), run in the session's metadata DB; the default use case's
    settings are back afterwards."""
    import pytest
    from airflow.dag_processing.dagbag import DagBag

    from lifecycle import dag_defaults
    from lifecycle.platform import env, setup

    setup.main()  # airflow db migrate + gpu pool: the in-process Airflow's metadata DB (the session's)
    shutil.rmtree(settings["LIFECYCLE_STATE_DIR"], ignore_errors=True)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in settings.items():
            mp.setenv(name, value)
        mp.setenv("MLFLOW_TRACKING_URI", env.environment()["MLFLOW_TRACKING_URI"])  # this state's MLflow
        importlib.reload(dag_defaults)  # its CFG is read once, when first imported
        bag = DagBag(dag_folder=str(dags_folder), include_examples=False)
        assert bag.import_errors == {}
        yield bag.dags
    importlib.reload(dag_defaults)  # back to the default use case's settings
