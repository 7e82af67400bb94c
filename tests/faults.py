"""Hostile conditions for the loop tests: every core kept busy by competing work, and task
processes killed with SIGKILL while they run (Airflow must retry them)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from lifecycle.devtools.airflow_client import AirflowClient

# The competing processes are shared by every loop that runs at once on this checkout (.ci/run
# runs both suites' loops together): one per core in all, as one suite alone has them. Each loop
# registers its process under users/; a competing process spins and exits once no registered loop
# is alive, so a killed test run leaves none behind. They run at nice 10 (a tenth of a task's
# weight), their session's autogroup too: each is a session of its own, and with the kernel's
# autogroups (on here) a process's nice only ranks it within its session, so at nice 0 or 10 alone
# each spinner weighed as much as a whole test suite's session (the two took 952 of the 3,460
# core-seconds of CI's first 29 minutes). A core never idles, so a wait that only works on an idle
# core still shows.
BUSY_DIR = Path(__file__).resolve().parents[1] / ".local" / "busy"
SPIN_NICE = 10


def _low_priority() -> None:
    """In the competing process before it runs: nice ``SPIN_NICE``, for its process and its session."""
    os.nice(SPIN_NICE)
    with contextlib.suppress(OSError):  # a kernel without autogroups: the process's nice is what counts
        Path("/proc/self/autogroup").write_text(str(SPIN_NICE))


SPIN = """
import os, sys, time
users = sys.argv[1]
def alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError):
        return False
checked = time.monotonic()
while True:
    if time.monotonic() - checked > 1:
        checked = time.monotonic()
        if not any(alive(p) for p in os.listdir(users)):
            break
"""


@contextlib.contextmanager
def _locked():
    (BUSY_DIR / "users").mkdir(parents=True, exist_ok=True)
    with open(BUSY_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _live(kind: str) -> list[int]:
    """The live processes registered under ``kind`` (spinners or users); ended ones are forgotten."""
    live = []
    for f in (BUSY_DIR / kind).glob("*"):
        if _running(int(f.name)):
            live.append(int(f.name))
        else:
            f.unlink()
    return live


@contextlib.contextmanager
def busy_cores(n: int | None = None):
    """One CPU-bound process per core (at nice ``SPIN_NICE``) for the duration of the block, shared
    with any other loop running at once; yields their pids."""
    n = n or os.cpu_count() or 2
    me = BUSY_DIR / "users" / str(os.getpid())
    with _locked():
        _live("users")
        me.touch()
        (BUSY_DIR / "spinners").mkdir(exist_ok=True)
        for _ in range(n - len(_live("spinners"))):
            proc = subprocess.Popen(
                [sys.executable, "-c", SPIN, str(BUSY_DIR / "users")],
                start_new_session=True,
                preexec_fn=_low_priority,
            )
            (BUSY_DIR / "spinners" / str(proc.pid)).touch()
        pids = _live("spinners")
    try:
        yield pids
    finally:
        with _locked():
            me.unlink()
            if not _live("users"):
                for pid in _live("spinners"):
                    os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                    (BUSY_DIR / "spinners" / str(pid)).unlink()


def still_busy(pids: list[int]) -> bool:
    """Whether every competing process lived until now (the load was kept up for the whole run)."""
    return all(_running(pid) for pid in pids)


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
