"""The executor's preload fills, before the fork, the per-process caches each task filled on first use."""

import subprocess
import sys

WARMED = """
from lifecycle.platform import env
env.apply()
from airflow.sdk import plugins_manager
from mlflow.utils import requirements_utils
assert requirements_utils._MODULES_TO_PACKAGES is None and plugins_manager._get_plugins.cache_info().currsize == 0
from lifecycle.platform import preload
preload.warm()
assert "mlflow" in requirements_utils._MODULES_TO_PACKAGES["mlflow"]
assert requirements_utils._PACKAGES_TO_MODULES["xgboost"] == "xgboost"
assert plugins_manager._get_plugins.cache_info().currsize == 1
names = [p.name for p in plugins_manager._get_plugins()[0]]
assert "lifecycle_reports" in names, names
print("warm")
"""


def test_warm_fills_mlflows_distribution_map_and_airflows_plugins():
    done = subprocess.run([sys.executable, "-c", WARMED], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("warm"), done.stderr[-3000:]


def test_only_the_scheduler_imports_when_it_makes_its_executor_and_only_once(monkeypatch):
    """``airflow scheduler`` makes its executor before it records its job (healthy means tasks can
    start), and ``python -m lifecycle.platform.scheduler`` has imported before; the api-server makes
    one to read a running task's log and must not import the task libraries."""
    from lifecycle.platform import preload

    calls = []
    monkeypatch.setattr(preload, "preload", lambda: calls.append(1) or 0.0)
    monkeypatch.setattr(sys, "argv", ["airflow", "api-server"])
    preload.PreloadingLocalExecutor()
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["airflow", "scheduler"])
    preload.PreloadingLocalExecutor()
    assert calls == [1]
    monkeypatch.setattr(preload, "_preloaded", True)  # what preload() sets
    preload.PreloadingLocalExecutor()._preload()  # and what start() does first
    assert calls == [1]


UNMIGRATED = """
from lifecycle.platform import preload, scheduler
preload.preload = lambda: 0.0
scheduler.MIGRATION_WAIT_SECONDS = 2
scheduler.main([])
"""


def test_the_scheduler_waits_for_the_migration_then_names_it(tmp_path):
    """Started beside set-up, the scheduler waits for the metadata DB's migration; one that never
    comes stops it with Airflow's message instead of starting the CLI on an empty DB."""
    import os

    db = tmp_path / "airflow.db"
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
    }
    done = subprocess.run(
        [sys.executable, "-c", UNMIGRATED], env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "There are still unapplied migrations after 2 seconds" in done.stderr, done.stderr[-3000:]
    assert "Starting the scheduler" not in done.stdout + done.stderr


def _executor(monkeypatch, tmp_path, wait_seconds):
    """The embedded profile's executor with its result queue and a metadata DB, no workers forked."""
    import multiprocessing
    import sqlite3

    from airflow.models.taskinstancekey import TaskInstanceKey

    from lifecycle.platform import preload

    path = tmp_path / "airflow.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS dag_run (state TEXT)")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{path}")
    monkeypatch.setattr(preload, "RESULT_WAIT_SECONDS", wait_seconds)
    monkeypatch.setattr(sys, "argv", ["airflow", "api-server"])
    executor = preload.PreloadingLocalExecutor()
    executor.result_queue, executor.activity_queue = multiprocessing.SimpleQueue(), multiprocessing.SimpleQueue()
    executor.workers, executor._unread_messages = {}, multiprocessing.Value("I", 0)
    key = TaskInstanceKey("ingest", "land", "manual__1", 1, -1)
    executor.running.add(key)
    return executor, key


def test_after_a_heartbeat_that_started_nothing_the_executor_returns_when_a_task_ends(monkeypatch, tmp_path):
    """The pause between scheduler loops ends with a task's end, so its downstream is scheduled
    at once; without an end or a commit the pause lasts RESULT_WAIT_SECONDS."""
    import threading
    import time

    from airflow.utils.state import TaskInstanceState

    executor, key = _executor(monkeypatch, tmp_path, wait_seconds=60)
    threading.Timer(0.2, executor.result_queue.put, [(key, TaskInstanceState.SUCCESS, None)]).start()
    started = time.monotonic()
    executor.heartbeat()
    assert 0.15 <= time.monotonic() - started < 30  # woken by the result, not the 60 s timeout
    assert executor.get_event_buffer() == {key: (TaskInstanceState.SUCCESS, None)}

    executor, key = _executor(monkeypatch, tmp_path, wait_seconds=0.2)
    started = time.monotonic()
    executor.heartbeat()
    assert time.monotonic() - started >= 0.2 and executor.get_event_buffer() == {}


def test_another_process_committing_to_the_metadata_db_ends_the_wait(monkeypatch, tmp_path):
    """A run triggered through the REST API, or a task's success written by the api-server before
    its process has exited, is scheduled at the next loop, not after the wait."""
    import sqlite3
    import threading
    import time

    executor, _ = _executor(monkeypatch, tmp_path, wait_seconds=60)

    def api_server_commits():
        with sqlite3.connect(tmp_path / "airflow.db") as db:
            db.execute("INSERT INTO dag_run VALUES ('queued')")

    threading.Timer(0.2, api_server_commits).start()
    started = time.monotonic()
    executor.heartbeat()
    assert 0.15 <= time.monotonic() - started < 30 and executor.get_event_buffer() == {}


def test_a_heartbeat_that_starts_a_task_does_not_wait(monkeypatch, tmp_path):
    import time

    from airflow.executors.local_executor import LocalExecutor

    handed = []
    monkeypatch.setattr(LocalExecutor, "_process_workloads", lambda self, workloads: handed.extend(workloads))
    executor, _ = _executor(monkeypatch, tmp_path, wait_seconds=60)
    workload = object()
    monkeypatch.setattr(executor, "_get_workloads_to_schedule", lambda open_slots: [("key", workload)])
    started = time.monotonic()
    executor.heartbeat()
    assert time.monotonic() - started < 30 and handed == [workload] and executor._sent == 1


def test_a_supervisor_whose_task_closed_its_sockets_waits_for_its_exit_not_the_heartbeat_interval():
    """The task process closes its sockets just before it exits: with none left, the supervisor
    returns the exit code when the process exits, not after a select() with nothing to wake it."""
    import socket
    import time
    import uuid

    import psutil
    import structlog
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    from lifecycle.platform import preload  # noqa: F401 (installs task_exit)

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watched = WatchedSubprocess(
            id=uuid.uuid4(),
            pid=child.pid,
            stdin=ours,
            process=psutil.Process(child.pid),
            process_log=structlog.get_logger(),
        )
        started = time.monotonic()
        assert watched._service_subprocess(max_wait_time=60) == 0
        assert time.monotonic() - started < 30  # ended by the exit, not the 60 s wait
