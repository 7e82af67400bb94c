"""Links a person opens: a DAG run or task in the Airflow UI, Required Actions, and a report under
the UI's ``/reports/`` pages (the reports plugin, behind Airflow's login), never a lake path."""

from __future__ import annotations

from urllib.parse import quote

from lifecycle import settings as _settings


def run_url(dag_id: str, run_id: str, task_id: str | None = None) -> str:
    url = f"{_settings.load().ui_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{url}/tasks/{quote(task_id, safe='')}" if task_id else url


def required_actions_url() -> str:
    return f"{_settings.load().ui_url}/required_actions"


def deployment_url() -> str:
    """The reports plugin's deployment page: what serves, approvals waiting, the history."""
    return f"{_settings.load().ui_url}/reports/deployment"


def report_url(path) -> str:
    """The ``/reports/`` URL of a file in the lake's reports zone, given as an ObjectStoragePath or
    its string (``file:///…``, ``s3://conn@bucket/…``)."""
    from lifecycle import lake

    base = lake.zone("reports").path.strip("/") + "/"
    text = path.path if hasattr(path, "path") else str(path)
    if "://" in text:
        text = text.split("://", 1)[1]
        head, _, rest = text.partition("/")
        text = f"{head.split('@')[-1]}/{rest}"  # s3: the connection id before the bucket
    text = text.strip("/")
    if not text.startswith(base):
        raise ValueError(f"{path} is not in the reports zone ({base})")
    return f"{_settings.load().ui_url}/reports/{quote(text.removeprefix(base))}"


def current_run() -> dict | None:
    """The DAG run and task this code runs in, with its UI link; None outside an Airflow task."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except (ImportError, RuntimeError):
        return None
    ti = context["ti"]
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "try_number": ti.try_number,
        "url": run_url(ti.dag_id, ti.run_id),
    }
