"""The process environment every tool of the embedded profile runs with, derived from settings.

``python -m lifecycle.env`` prints it as shell exports (the Makefile evaluates that), tests apply
it with ``apply()``; the Airflow processes inherit it. Telemetry is off for every tool.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from lifecycle import settings as _settings

# SQLite serializes writers: api-server, scheduler and dag-processor wait for each other instead of
# failing with "database is locked" (seen on backfill creation while the scheduler worked).
SQLITE_CONNECT_ARGS = {"timeout": 60}

TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "FEAST_USAGE": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
}


def api_port() -> int:
    raw = os.environ.get("LIFECYCLE_AIRFLOW_PORT", "8080")
    if not raw.isdigit() or not 1024 <= int(raw) <= 65533:
        raise _settings.SettingError(f"LIFECYCLE_AIRFLOW_PORT={raw!r}: must be a port number 1024-65533 "
                                     "(the next two ports serve Airflow's task logs)")
    return int(raw)


def environment() -> dict[str, str]:
    cfg = _settings.load()
    port = api_port()
    home = cfg.airflow_home
    root = _settings.PROJECT_ROOT
    return {
        **TELEMETRY_OFF,
        "LIFECYCLE_STATE_DIR": str(cfg.state_dir),
        "LIFECYCLE_AIRFLOW_PORT": str(port),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "3",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "lifecycle.env.SQLITE_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "lifecycle.env.SQLITE_CONNECT_ARGS",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__API__WORKERS": "1",
        # the log servers of worker and triggerer follow the api port, so two instances never collide
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 1),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 2),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "BENTOML_HOME": str(cfg.bentoml_home),
        "OMP_WAIT_POLICY": "PASSIVE",
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "",
        "GIT_PYTHON_REFRESH": "quiet",
        # subprocesses (airflow standalone, bentoml serve) must find the project's environment first
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def apply() -> dict[str, str]:
    env = environment()
    os.environ.update(env)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


if __name__ == "__main__":
    for key, value in environment().items():
        print(f"export {key}={shlex.quote(value)}")
