"""The supervisor of a deployment's processes: what a process printed before it was stopped is in
its log file (a traceback printed just before a stop used to stay in a pipe or buffer and vanish)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lifecycle import settings
from lifecycle.platform import cluster

# prints one line (no flush), then idles until it is terminated
LAST_WORDS = "import time; print('Traceback (most recent call last): the last words'); time.sleep(600)"


def test_output_printed_before_stop_is_in_the_log(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # the supervisor must not rely on the caller's shell
    supervisor = cluster.Supervisor(tmp_path, {"server": ([sys.executable, "-c", LAST_WORDS], {})})
    supervisor.start()
    log = tmp_path / "server.log"
    deadline = time.monotonic() + 30
    while "the last words" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    supervisor.stop()
    assert "Traceback (most recent call last): the last words" in log.read_text()
    # stopped (psutil reaped it, so Popen's returncode says nothing: it reads 0 after a stop)
    assert not psutil.pid_exists(supervisor.procs["server"].pid)


def test_both_profiles_run_airflow_as_separate_logged_processes(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_PROFILE", "embedded")
    embedded = cluster.commands()
    assert list(embedded) == ["api-server", "scheduler", "dag-processor", "triggerer", cluster.LIVE]
    assert embedded[cluster.LIVE][0][-6:] == [
        "serve",
        cluster.SERVICE,
        "--host",
        "0.0.0.0",
        "--port",
        str(cluster._settings.load().serving_port),
    ]
    assert embedded["api-server"][0][-3:] == ["api-server", "--port", str(settings.load().airflow_port)]
    # embedded: the task libraries imported before Airflow's CLI; scale-out: Celery's workers import them
    assert embedded["scheduler"][0][1:] == ["-m", "lifecycle.platform.scheduler"]
    monkeypatch.setenv("LIFECYCLE_PROFILE", "scaleout")
    monkeypatch.setenv("LIFECYCLE_S3_ACCESS_KEY", "key")
    monkeypatch.setenv("LIFECYCLE_S3_SECRET_KEY", "secret")
    assert cluster.commands()["scheduler"][0][1:] == ["-m", "airflow", "scheduler"]


def test_settings_reach_the_processes_as_their_environment_and_the_caller_keeps_its_own(tmp_path, monkeypatch):
    monkeypatch.delenv("LIFECYCLE_REQUIRE_APPROVAL", raising=False)
    show = "import os; print('approval=' + os.environ['LIFECYCLE_REQUIRE_APPROVAL'], flush=True)"
    supervisor = cluster.Supervisor(
        tmp_path, {"p": ([sys.executable, "-c", show], {})}, environment={"LIFECYCLE_REQUIRE_APPROVAL": "true"}
    )
    supervisor.start()
    supervisor.procs["p"].wait(30)
    supervisor.stop()
    assert "approval=true" in (tmp_path / "p.log").read_text()
    assert "LIFECYCLE_REQUIRE_APPROVAL" not in os.environ
    assert settings.load().require_approval is False


def test_memory_is_sampled_only_when_asked(tmp_path):
    """The demo reports its deployment's peak memory (every 2 s); ``make airflow`` samples nothing."""
    holds = "x = bytes(range(256)) * 2**18; import time; time.sleep(600)"  # 64 MB written: resident
    peaks = {}
    for every in (None, 0.2):
        supervisor = cluster.Supervisor(
            tmp_path / str(every), {"p": ([sys.executable, "-c", holds], {})}, memory_every=every
        )
        supervisor.start()
        time.sleep(2)
        supervisor.stop()
        peaks[every] = supervisor.peak_pss
    assert peaks[None] == 0 and peaks[0.2] >= 64 * 2**20


def test_programs_start_in_groups_each_once(tmp_path):
    """The demo starts Airflow's processes first and the live service once the scheduler is healthy."""
    idle = [sys.executable, "-c", "import time; time.sleep(600)"]
    supervisor = cluster.Supervisor(tmp_path, {"a": (idle, {}), "b": (idle, {}), "c": (idle, {})})
    try:
        supervisor.start(["a", "b"])
        assert sorted(supervisor.procs) == ["a", "b"]
        first = supervisor.procs["a"].pid
        supervisor.start()
        assert sorted(supervisor.procs) == ["a", "b", "c"] and supervisor.procs["a"].pid == first
    finally:
        supervisor.stop()
    assert not any(psutil.pid_exists(p.pid) for p in supervisor.procs.values())


def test_a_taken_port_stops_the_start_naming_the_port_its_setting_and_its_holder(monkeypatch):
    import socket

    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        monkeypatch.setenv("LIFECYCLE_SERVING_PORT", str(port))
        with pytest.raises(
            cluster.PortTaken,
            match=rf"port {port} \(LIFECYCLE_SERVING_PORT: the live model service\) is in use by pid {os.getpid()}",
        ):
            cluster.check_ports(cluster.commands())
        cluster.check_ports(["api-server", "scheduler"])  # the others are free
        done = subprocess.run(
            [sys.executable, "-m", "lifecycle.platform.cluster", "run", "model"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1 and f"not started: port {port} (LIFECYCLE_SERVING_PORT" in done.stderr
        supervisor = cluster.Supervisor(Path(os.environ["LIFECYCLE_STATE_DIR"]) / "logs")
        with pytest.raises(cluster.PortTaken):
            supervisor.start()
        assert supervisor.procs == {}  # nothing was started
    finally:
        holder.close()
