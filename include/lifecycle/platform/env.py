"""The process environment every tool runs with, derived from settings (either profile).

``python -m lifecycle.platform.env`` prints it as shell exports (the Makefile evaluates that), tests apply
it with ``apply()``; the Airflow processes inherit it. Telemetry is off for every tool.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from lifecycle import settings as _settings

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


def _backends(cfg: _settings.Settings) -> dict[str, str]:
    """Executor, metadata DB, broker and lake credentials of the configured profile."""
    home = cfg.airflow_home
    svc = cfg.services
    if svc is None:
        return {
            # LocalExecutor, with the task libraries imported before its workers fork
            "AIRFLOW__CORE__EXECUTOR": "lifecycle.platform.preload.PreloadingLocalExecutor",
            # the scheduler sleeps this long after a loop that queued nothing (default 1 s); the
            # executor's wait for a task's end (preload.RESULT_WAIT_SECONDS) is the pause instead
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.05",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            # api-server, scheduler, dag-processor and tasks write concurrently: they wait, never fail
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "lifecycle.platform.sqlite_metadata.CONNECT_ARGS",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": (
                "lifecycle.platform.sqlite_metadata.ASYNC_CONNECT_ARGS"
            ),
        }
    s3 = {
        "conn_type": "aws",
        "login": svc.s3_access_key,
        "password": svc.s3_secret_key,
        "extra": {"endpoint_url": svc.s3_endpoint_url, "region_name": "us-east-1"},
    }
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        # the scheduler sleeps this long after a loop that queued nothing (default 1 s): each hop
        # between dependent tasks and runs waits on it
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": svc.database_url("airflow"),
        "AIRFLOW__CELERY__BROKER_URL": svc.redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + svc.database_url("airflow", "postgresql"),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "lifecycle.platform.preload.CELERY_CONFIG",
        f"AIRFLOW_CONN_{_settings.S3_CONN_ID.upper()}": json.dumps(s3),
        # the same credentials for the libraries that talk to S3 themselves (Feast/pyarrow, the MLflow server)
        "AWS_ACCESS_KEY_ID": svc.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": svc.s3_secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": svc.s3_endpoint_url,
        "MLFLOW_S3_ENDPOINT_URL": svc.s3_endpoint_url,
    }


def environment() -> dict[str, str]:
    cfg = _settings.load()
    port = cfg.airflow_port
    home = cfg.airflow_home
    root = _settings.PROJECT_ROOT
    internal = f"http://{cfg.airflow_host}:{port}"  # how workers reach the execution API
    return {
        **TELEMETRY_OFF,
        **_backends(cfg),
        "LIFECYCLE_STATE_DIR": str(cfg.state_dir),
        "LIFECYCLE_AIRFLOW_PORT": str(port),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__FERNET_KEY": cfg.fernet_key(),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # the people's admin, and the service user run notes are written as (set-up's connection)
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{_settings.SERVICE_USER}:user",
        "AIRFLOW__CORE__PARALLELISM": "3",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{internal}/execution/",
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "4",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": cfg.ui_url,  # what a browser opens
        "AIRFLOW__API__WORKERS": "1",
        # the log servers of worker and triggerer follow the api port, so two instances never collide
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 1),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 2),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # a running task's supervisor wakes and heartbeats this often (default 5 s); it notices the
        # task's exit at once (platform.task_exit). The default was tried: the demo's canary steps
        # took 3-5 s longer in both runs, but a later run at 1 s did too (bench/README.md, runs 26-31),
        # so no effect is shown either way and the setting stays as it was measured with
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # an unchanged DAG file is parsed again after this long (default 30 s: ~4% of a core on an
        # idle deployment); a changed one is parsed at the next listing (file_parsing_sort_mode
        # modified_time, the default, queues files modified since their last parse)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # mlflow server: ~0.5 GB instead of ~1.85 GB in 10 processes
        # artifacts stream through the tracking server; its presigned-URL downloads fail against
        # S3-compatible servers (seen: every chunk retried with back-off) and need S3 access on clients
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
        "BENTOML_HOME": str(cfg.bentoml_home),
        "OMP_WAIT_POLICY": "PASSIVE",
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "",
        "GIT_PYTHON_REFRESH": "quiet",
        # subprocesses (the Airflow processes, bentoml serve) must find the project's environment first
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


# Set by one profile only: a process that switches profiles (tests, benchmarks) drops them.
PROFILE_KEYS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",
    f"AIRFLOW_CONN_{_settings.S3_CONN_ID.upper()}",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
)


def apply() -> dict[str, str]:
    env = environment()
    for key in PROFILE_KEYS:
        if key not in env:
            os.environ.pop(key, None)
    os.environ.update(env)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


if __name__ == "__main__":
    for key, value in environment().items():
        print(f"export {key}={shlex.quote(value)}")
