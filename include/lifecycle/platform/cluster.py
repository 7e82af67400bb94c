"""The processes of a deployment, derived from settings: what runs, and a supervisor for them.

Both profiles run Airflow's api-server, scheduler, dag-processor and triggerer and the live model
service as separate processes, each logging unbuffered to its own file, so what a process printed
before it stopped (a traceback, an access-log line) is on disk. Embedded: tasks run in the
scheduler's LocalExecutor. Scale-out adds the MLflow tracking server and two Celery workers (queue
``default``, and the training queue). docker-compose runs the same commands, one per container:
``python -m lifecycle.platform.cluster run <name>``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from lifecycle import settings as _settings
from lifecycle.platform import env

SERVICE = "lifecycle.serving:ModelService"  # the live BentoML service, as `bentoml serve` names it
LIVE = "model"  # its process


def commands() -> dict[str, tuple[list[str], dict[str, str]]]:
    """Process name -> (argv, extra environment), in start order."""
    cfg = _settings.load()
    airflow = [sys.executable, "-m", "airflow"]
    port = cfg.airflow_port
    svc = cfg.services
    components = {
        "api-server": ([*airflow, "api-server", "--port", str(port)], {}),
        # embedded: the task libraries imported first, for the LocalExecutor's workers to inherit
        "scheduler": (
            [sys.executable, "-m", "lifecycle.platform.scheduler"] if svc is None else [*airflow, "scheduler"],
            {},
        ),
        "dag-processor": ([*airflow, "dag-processor"], {}),
        "triggerer": ([*airflow, "triggerer"], {}),
        # the live service: follows the registry's aliases, so it starts before any model exists
        LIVE: (
            [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "0.0.0.0", "--port", str(cfg.serving_port)],
            {},
        ),
    }
    if svc is None:
        return components
    mlflow = urlsplit(svc.mlflow_url)
    local = mlflow.hostname in ("127.0.0.1", "localhost")
    hosts = ",".join(f"{h}:{mlflow.port},{h}" for h in {mlflow.hostname, "localhost", "127.0.0.1"})
    worker = [*airflow, "celery", "worker", "--concurrency"]
    return {
        "mlflow": (
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                svc.database_url("mlflow"),
                "--artifacts-destination",
                f"s3://{svc.s3_bucket}/mlflow",
                "--serve-artifacts",
                "--host",
                "127.0.0.1" if local else "0.0.0.0",
                "--port",
                str(mlflow.port),
                "--workers",
                "1",
                "--allowed-hosts",
                hosts,
            ],
            {},
        ),
        **components,
        "worker-default": ([*worker, "2", "--queues", "default", "--celery-hostname", "default@%h"], {}),
        # training tasks: one at a time, like the pool; its own log-server port beside the other worker
        "worker-gpu": (
            [*worker, "1", "--queues", cfg.gpu_queue, "--celery-hostname", "gpu@%h"],
            {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 3)},
        ),
    }


class PortTaken(RuntimeError):
    """A port a process of the deployment needs is in use by another process."""


def ports(names) -> list[tuple[int, str]]:
    """The ports the processes ``names`` listen on, each with the setting that chooses it."""
    cfg = _settings.load()
    base = cfg.airflow_port
    by_process = {
        "api-server": [(base, "LIFECYCLE_AIRFLOW_PORT: the Airflow UI and API")],
        "triggerer": [(base + 2, "LIFECYCLE_AIRFLOW_PORT + 2: the triggerer's log server")],
        LIVE: [(cfg.serving_port, "LIFECYCLE_SERVING_PORT: the live model service")],
    }
    if cfg.services is None:  # the LocalExecutor's workers are the scheduler's: it serves their logs
        by_process["scheduler"] = [(base + 1, "LIFECYCLE_AIRFLOW_PORT + 1: the task log server")]
    else:
        by_process["worker-default"] = [(base + 1, "LIFECYCLE_AIRFLOW_PORT + 1: the default worker's log server")]
        by_process["worker-gpu"] = [(base + 3, "LIFECYCLE_AIRFLOW_PORT + 3: the training worker's log server")]
        mlflow = urlsplit(cfg.services.mlflow_url)
        if mlflow.hostname in ("127.0.0.1", "localhost"):
            by_process["mlflow"] = [(mlflow.port, "LIFECYCLE_MLFLOW_URL: the MLflow tracking server")]
    return [port for name in names for port in by_process.get(name, [])]


def check_ports(names) -> None:
    """Refuse to start when a port the processes ``names`` need is taken (a second deployment on the
    same machine would otherwise log into the first one's Airflow), naming the port, its setting and
    the process holding it."""
    import socket

    taken = []
    for port, setting in ports(names):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                taken.append(f"port {port} ({setting}) is in use{_holder(port)}")
    if taken:
        raise PortTaken("; ".join(taken) + ": stop what holds it, or choose another port with the setting")


def _holder(port: int) -> str:
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                proc = psutil.Process(conn.pid)
                return f" by pid {conn.pid} ({' '.join(proc.cmdline()[:4])[:120]})"
    except psutil.Error:
        pass
    return ""


class Supervisor:
    """Starts ``programs`` (default: the profile's ``commands()``), each in its own session logging
    unbuffered to ``<log_dir>/<name>.log`` with this process's environment plus ``environment``;
    samples their memory every ``memory_every`` seconds if given, stops them and their children.
    A sample reads every process's proportional set size, which the kernel computes by walking its
    page tables: at 1 s that took ~9% of a core on an idle embedded deployment."""

    def __init__(
        self,
        log_dir: Path,
        programs: dict[str, tuple[list[str], dict[str, str]]] | None = None,
        environment: dict[str, str] | None = None,
        memory_every: float | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.programs = programs
        self.environment = environment or {}
        self.memory_every = memory_every
        self.procs: dict[str, subprocess.Popen] = {}
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()

    def start(self, names: list[str] | None = None) -> None:
        """Starts the programs in ``names`` (default: all) that are not running yet; the profile's
        own programs only once the ports they need are free (``check_ports``)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        first = not self.procs
        if self.programs is None:
            check_ports([n for n in commands() if n not in self.procs and (names is None or n in names)])
        for name, (argv, extra) in (self.programs or commands()).items():
            if name in self.procs or (names is not None and name not in names):
                continue
            with open(self.log_dir / f"{name}.log", "ab") as log:
                self.procs[name] = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, **self.environment, "PYTHONUNBUFFERED": "1", **extra},
                )
        if self.memory_every and first:
            threading.Thread(target=self._sample_memory, daemon=True).start()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.log_dir / name}.log")

    def _tree(self) -> list[psutil.Process]:
        procs = []
        for proc in self.procs.values():
            try:
                root = psutil.Process(proc.pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        return procs

    def _sample_memory(self) -> None:
        while not self._stop.is_set():
            rss = pss = 0
            for p in self._tree():
                try:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
                except psutil.Error:
                    continue
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self._stop.wait(self.memory_every)

    def stop(self) -> None:
        """Terminate every process group (workers and servers may start children of their own)."""
        self._stop.set()
        tree = self._tree()
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        _, alive = psutil.wait_procs(tree, timeout=30)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        for proc in self.procs.values():
            proc.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def up() -> None:
    """Every process of the profile in the foreground until Ctrl-C or until one of them exits."""
    cfg = _settings.load()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background or by a service manager
        signal.signal(signum, _interrupt)
    supervisor = Supervisor(cfg.airflow_home / "process-logs")
    supervisor.start()
    print(
        f"{', '.join(supervisor.procs)} started ({cfg.profile} profile); Airflow at "
        f"{os.environ['AIRFLOW__API__BASE_URL']}; logs in {supervisor.log_dir}; Ctrl-C stops all",
        flush=True,
    )
    try:
        while True:
            supervisor.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="Run the deployment's processes: all of them in the foreground "
        "(up), or one (run NAME, the docker-compose entry)."
    )
    parser.add_argument("action", choices=["up", "run"])
    parser.add_argument("name", nargs="?", choices=list(commands()))
    args = parser.parse_args(argv)
    env.apply()
    try:
        if args.action == "up":
            return up()
        if args.name is None:
            parser.error("run needs a process name")
        check_ports([args.name])
    except PortTaken as err:
        raise SystemExit(f"not started: {err}") from None
    argv_, extra = commands()[args.name]
    os.environ.update(extra)
    os.execv(argv_[0], argv_)


if __name__ == "__main__":
    main()
