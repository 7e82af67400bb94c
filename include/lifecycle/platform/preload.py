"""The task libraries imported once, before Airflow forks the processes that run tasks.

Airflow's supervisor forks every task process from the worker that received it (``os.fork``
without exec on Linux): a LocalExecutor worker, itself forked from the scheduler, or a Celery
pool process, forked from the Celery worker. A module imported before those forks is in every
task at no cost. Without this each task pays its own imports again: feast ~5 s
with a bytecode cache, great_expectations, evidently, mlflow and scikit-learn 1.5-3 s each, on this
2-core machine kind. Importing, and caches filled from files on disk (``warm``), is all that
happens here: no thread pool, connection or file is left open, so the forks stay safe (checked with
XGBoost and PyTorch training in forked grandchildren). The embedded executor's wait for a change in
the metadata DB holds its SQLite connection only while it waits. Loading this module also makes the
task supervisors of this process and its forks notice a task's exit at once (``task_exit``).
"""

from __future__ import annotations

import functools
import importlib
import sqlite3
import sys
import time
from multiprocessing import connection

from airflow.configuration import conf
from airflow.executors.local_executor import LocalExecutor
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init
from sqlalchemy.engine import make_url

from lifecycle.platform import task_exit

task_exit.install()  # this module is the executor (embedded) and the Celery app's config (scale-out)

# What the stage modules import inside their functions; the stage modules themselves are light.
PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "sklearn.metrics",
    "mlflow",
    "mlflow.pyfunc",
    # what MLflow's first store call imports (alembic, mako, the SQL stores): 0.8 s of each task's
    # first registry or tracking call, measured in a fresh process
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
    "alembic.command",
    "git",  # MLflow's start_run looks for a git commit to tag the run with
    "feast",
    # what opening the Feast store imports (registry, online store, offline store): ~0.3 s a task
    "feast.infra.registry.file",
    "feast.infra.registry.sql",
    "feast.infra.online_stores.sqlite",
    "feast.infra.online_stores.redis",
    "feast.repo_operations",
    "lifecycle.lake_offline_store",  # Feast's DuckDB store: duckdb and ibis
    "ibis.backends.duckdb",  # what the first materialization loads (Feast's DuckDB store reads through ibis)
    "great_expectations",
    "evidently",
    "evidently.presets",
    "xgboost",
    "torch",
    "torch._dynamo",  # what a torch optimizer imports at its first step (torch._disable_dynamo): ~1.3 s a fit
    "s3fs",
    "lifecycle.features",
    "lifecycle.point_in_time",
    "lifecycle.training",
    "lifecycle.validation",
    "lifecycle.monitoring",
    "lifecycle.performance",
    "lifecycle.scoring",
    "lifecycle.canary",
    "lifecycle.promotion",
    "lifecycle.packaging",
    "lifecycle.ingest",
    "lifecycle.live",
    # what the DAG files import, which a task process parses first: ~35 ms a task without, ~15 with
    "airflow.sdk.definitions.decorators",
    "airflow.providers.standard.decorators.python",
    "airflow.providers.standard.decorators.branch_python",
    "airflow.providers.standard.decorators.short_circuit",
    "lifecycle.dag_defaults",
    "lifecycle.assets",
    "lifecycle.approval",
    "lifecycle.landing",
)


_preloaded = False


def preload(modules: tuple[str, ...] = PRELOAD) -> float:
    """Import ``modules`` and ``warm``; returns the seconds it took."""
    global _preloaded
    started = time.monotonic()
    for name in modules:
        importlib.import_module(name)
    warm()
    _preloaded = True
    return time.monotonic() - started


def warm() -> None:
    """Per-process caches a task would otherwise fill on first use: MLflow's map of the installed
    distributions (read on every model load: 0.25-0.65 s a task), Airflow's plugins (loaded by
    the lineage collector at a task's first object-storage read: ~0.2 s) and the configured use
    case's package (imported by the DAG files and most stages)."""
    from airflow.sdk import plugins_manager
    from mlflow.utils import requirements_utils

    from lifecycle import contract

    contract.current()

    requirements_utils._init_packages_to_modules_map()
    plugins_manager.get_hook_lineage_readers_plugins()


RESULT_WAIT_SECONDS = 0.5
POLL_SECONDS = 0.02  # PRAGMA data_version costs ~3 µs of CPU here


class PreloadingLocalExecutor(LocalExecutor):  # the embedded profile's executor
    """LocalExecutor whose workers (and so every task) start with ``PRELOAD`` imported.

    The deployment's scheduler imports them before Airflow's CLI starts (``platform.scheduler``);
    ``airflow scheduler`` started directly imports them when it makes its executor, which is before
    it records its job: either way it reports healthy once tasks can start. Other processes make an
    executor too (the api-server, to read a running task's log) and must not import the task
    libraries, so elsewhere only ``start`` imports them."""

    _sent = 0  # workloads (tasks, callbacks) the current heartbeat handed to the workers

    def __init__(self, *args, **kwargs) -> None:
        if sys.argv[1:2] == ["scheduler"]:
            self._preload()
        super().__init__(*args, **kwargs)

    def start(self) -> None:
        self._preload()
        super().start()

    def _preload(self) -> None:
        if not _preloaded:
            self.log.info("imported the task libraries in %.1f s before forking the workers", preload())

    def heartbeat(self) -> None:
        self._sent = 0
        super().heartbeat()

    def _process_workloads(self, workload_list) -> None:
        self._sent += len(workload_list)
        super()._process_workloads(workload_list)

    def sync(self) -> None:
        """Reads the workers' results; after a heartbeat that started nothing, first waits up to
        ``RESULT_WAIT_SECONDS`` for a task's end or for another process's commit to the metadata DB
        (a task's state or asset event through the api-server, a run triggered through the REST
        API, a fired trigger). The scheduler's own idle sleep is short in this profile (``env``):
        this wait is the pause between its loops, so the next loop usually schedules what changed
        within ``POLL_SECONDS`` instead of up to an idle sleep later (a commit made during the
        loop itself, before the wait began, still waits for the next change or the timeout)."""
        if not self._sent and self.result_queue.empty():
            self._wait_for_a_change()
        super().sync()

    @functools.cached_property
    def _metadata_db(self) -> str:
        return make_url(conf.get("database", "sql_alchemy_conn")).database

    def _wait_for_a_change(self) -> None:
        # connected for the wait only: a worker forked later (one replacing a worker that died)
        # must not inherit an open SQLite connection
        db = sqlite3.connect(self._metadata_db)
        try:
            seen = _data_version(db)
            deadline = time.monotonic() + RESULT_WAIT_SECONDS
            while time.monotonic() < deadline:
                if connection.wait([self.result_queue._reader], timeout=POLL_SECONDS) or _data_version(db) != seen:
                    return
        finally:
            db.close()


def _data_version(db: sqlite3.Connection) -> int:
    """SQLite's count of commits made by other connections to the database file."""
    return db.execute("PRAGMA data_version").fetchone()[0]


CELERY_CONFIG = DEFAULT_CELERY_CONFIG  # the scale-out profile's Celery app, with this module's hook


@worker_init.connect
def _preload_in_celery_worker(**_) -> None:
    """A Celery worker imports the task libraries before it forks its pool processes."""
    preload()
