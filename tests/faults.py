"""Hostile conditions for the loop tests: every core kept busy by competing work, and task
processes killed with SIGKILL while they run (Airflow must retry them)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle.devtools.airflow_client import AirflowClient

BUSY_LOOP = "while True: pass"


@contextlib.contextmanager
def busy_cores(n: int | None = None):
    """One CPU-bound process per core (normal priority) for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n or os.cpu_count() or 2)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def still_busy(procs) -> bool:
    """Whether every busy process lived until now (the load was kept up for the whole run)."""
    return all(p.poll() is None for p in procs)


@dataclass
class Kill:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    rendered_map_index: str | None
    pid: int
    try_number: int
    final_state: str | None = None
    final_try: int | None = None


@dataclass
class TaskKiller:
    """SIGKILLs the first running instance of each (dag_id, task_id, seconds) once it has run that
    long (mid-work, past its imports), then follows it to its final state. Runs in a thread beside
    a deployment at ``base``/``home``."""

    base: str
    home: Path
    targets: list[tuple[str, str, float]]
    kills: list[Kill] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        client = AirflowClient(self.base, self.home)
        todo = list(self.targets)
        while not self._stop.is_set():
            try:
                if not client.token and not client.login():
                    raise OSError("not up yet")
                for target in list(todo):
                    if (kill := self._kill_running(client, *target)) is not None:
                        self.kills.append(kill)
                        todo.remove(target)
                for kill in self.kills:
                    if kill.final_state is None:
                        self._follow(client, kill)
            except (OSError, RuntimeError, KeyError, ValueError) as err:  # the server may be starting or stopping
                self.errors.append(str(err)[:200])
            self._stop.wait(0.5)

    def _kill_running(self, client: AirflowClient, dag_id: str, task_id: str, after: float) -> Kill | None:
        now = dt.datetime.now(dt.UTC)
        for ti in client.task_instances(dag_id, task_id=task_id, state="running"):
            started = dt.datetime.fromisoformat(ti["start_date"].replace("Z", "+00:00")) if ti["start_date"] else now
            if ti.get("pid") and (now - started).total_seconds() >= after:
                os.kill(ti["pid"], signal.SIGKILL)
                return Kill(
                    dag_id,
                    task_id,
                    ti["dag_run_id"],
                    ti["map_index"],
                    ti.get("rendered_map_index"),
                    ti["pid"],
                    ti["try_number"],
                )
        return None

    def _follow(self, client: AirflowClient, kill: Kill) -> None:
        for ti in client.task_instances(kill.dag_id, kill.run_id, task_id=kill.task_id):
            if ti["map_index"] == kill.map_index and ti["state"] in ("success", "failed", "skipped", "upstream_failed"):
                kill.final_state, kill.final_try = ti["state"], ti["try_number"]
