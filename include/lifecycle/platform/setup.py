"""One-time set-up of a deployment: services checked, Airflow metadata DB migrated (and MLflow's
store for the embedded profile), ``gpu`` pool.

Scale-out: every service is checked first (a bad URL, password or missing bucket stops here with
the setting named) and the deployment's PostgreSQL databases are created. The pool gets one slot
per GPU found (at least one), so training tasks never oversubscribe.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys

from lifecycle import settings as _settings
from lifecycle import tracking
from lifecycle.platform import env, services


def gpu_count() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")) if out.returncode == 0 else 0


def airflow(*args: str) -> str:
    cmd = [sys.executable, "-m", "airflow", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def main() -> None:
    env.apply()
    cfg = _settings.load()
    for sub in ("airflow", "mlflow", "feast", "bentoml"):
        (cfg.state_dir / sub).mkdir(parents=True, exist_ok=True)
    if cfg.services:
        services.check()
        services.create_databases()
    airflow("db", "migrate")
    if not cfg.services:
        with sqlite3.connect(cfg.airflow_home / "airflow.db") as db:  # readers no longer block the writer
            db.execute("PRAGMA journal_mode=WAL")
        # MLflow's SQLite store and the experiment, made here once: the live service and the first
        # task creating them at the same time race the store's migrations (seen: duplicate column)
        tracking.experiment_id()
    slots = max(1, gpu_count())
    airflow("pools", "set", cfg.gpu_pool, str(slots), f"Training tasks: one slot per GPU ({slots})")
    print(f"set-up done: state in {cfg.state_dir}, pool {cfg.gpu_pool!r} with {slots} slot(s)")


if __name__ == "__main__":
    try:
        main()
    except services.ServiceError as err:
        raise SystemExit(f"set-up failed: {err}") from None
