"""One-time set-up of a deployment: services checked, Airflow metadata DB migrated (and MLflow's
store for the embedded profile), ``gpu`` pool, the thresholds' Airflow Variables, and the
connection run notes are written through (``lifecycle_airflow_api``, the service user's).

Scale-out: every service is checked first (a bad URL, password or missing bucket stops here with
the setting named) and the deployment's PostgreSQL databases are created. The pool gets one slot
per GPU found (at least one), so training tasks never oversubscribe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lifecycle import settings as _settings
from lifecycle import thresholds, tracking
from lifecycle.platform import env, services


def gpu_count() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")) if out.returncode == 0 else 0


# Airflow's CLI, one command after another in one interpreter: an `airflow` process spends ~2 s
# importing Airflow before it does anything
_CLI = "import json, sys\nfrom airflow.__main__ import main\nfor sys.argv in json.loads(sys.argv[1]): main()"


def airflow(*commands: list[str]) -> subprocess.Popen:
    """Starts ``airflow <command>`` for each of ``commands`` in order, in one process; ``wait`` it."""
    argv = [["airflow", *c] for c in commands]
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, json.dumps(argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait(proc: subprocess.Popen) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        ran = "; ".join(" ".join(argv) for argv in json.loads(proc.args[-1]))
        raise RuntimeError(f"`{ran}` failed ({proc.returncode}): {err[-2000:]}")


def service_user(cfg: _settings.Settings) -> str:
    """The password of the deployment's service user (run notes), added to the simple auth manager's
    password file if missing, under the lock the api-server takes on that file."""
    import fcntl
    import secrets

    path = cfg.airflow_home / "simple_auth_manager_passwords.json.generated"
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        passwords = json.loads(f.read() or "{}")
        if _settings.SERVICE_USER not in passwords:
            passwords[_settings.SERVICE_USER] = secrets.token_urlsafe(24)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(passwords) + "\n")
    return passwords[_settings.SERVICE_USER]


def connections(cfg: _settings.Settings) -> Path:
    """The connections set-up imports (an existing one is kept: Admin → Connections may have changed it)."""
    path = cfg.airflow_home / "connections.json"
    api = {
        "conn_type": "http",
        "host": f"http://{cfg.airflow_host}:{cfg.airflow_port}",
        "login": _settings.SERVICE_USER,
        "password": service_user(cfg),
        "description": "The api-server and the user run notes are written as",
    }
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(json.dumps({_settings.AIRFLOW_API_CONN_ID: api}))
    return path


def main() -> None:
    env.apply()
    cfg = _settings.load()
    for sub in ("airflow", "mlflow", "feast", "bentoml"):
        (cfg.state_dir / sub).mkdir(parents=True, exist_ok=True)
    if cfg.services:
        services.check()
        services.create_databases()
    slots = max(1, gpu_count())
    tunables = cfg.airflow_home / "threshold-variables.json"
    tunables.write_text(json.dumps(thresholds.as_variables(cfg), indent=2))
    migrating = airflow(
        ["db", "migrate"],
        ["pools", "set", cfg.gpu_pool, str(slots), f"Training tasks: one slot per GPU ({slots})"],
        # the thresholds in force, listed under Admin → Variables; a value tuned there is kept
        ["variables", "import", str(tunables), "--action-on-existing-key", "skip"],
        ["connections", "import", str(connections(cfg))],
    )
    try:
        if not cfg.services:
            # MLflow's SQLite store and the experiment, made here once (while Airflow migrates its
            # own): the live service and the first task creating them at the same time race the
            # store's migrations (seen: duplicate column)
            tracking.experiment_id()
    except BaseException:
        migrating.kill()
        migrating.wait()
        raise
    wait(migrating)
    (cfg.airflow_home / "connections.json").unlink()  # it holds a password: the metadata DB keeps it encrypted
    print(f"set-up done: state in {cfg.state_dir}, pool {cfg.gpu_pool!r} with {slots} slot(s)")


if __name__ == "__main__":
    try:
        main()
    except services.ServiceError as err:
        raise SystemExit(f"set-up failed: {err}") from None
