"""Run notes: what a decisive run decided, shown in the Airflow UI's grid without opening a log.

A DAG run's note is set through Airflow's public REST API (``PATCH /api/v2/dags/{dag_id}/dagRuns/
{run_id}``, at most 1,000 characters): the Task SDK has no note setter. The task signs in as the
user of the Airflow connection ``lifecycle_airflow_api`` (host: the api-server; login, password),
which set-up creates for the deployment's own service user (``lifecycle``, role ``user``) and keeps
once it exists. A note that cannot be written is logged, never a failed task.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from urllib.parse import quote

from lifecycle import settings as _settings
from lifecycle import ui

MAX_CHARS = 1000  # the REST API's limit on a note
log = logging.getLogger(__name__)


def write(text: str) -> bool:
    """Set this DAG run's note to ``text`` (cut to ``MAX_CHARS``); False when it could not be."""
    run = ui.current_run()
    if run is None:
        return False
    note = text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(_settings.AIRFLOW_API_CONN_ID)
        base = conn.host.rstrip("/") if "://" in (conn.host or "") else f"http://{conn.host}:{conn.port}"
        token = _call(base + "/auth/token", "POST", {"username": conn.login, "password": conn.password})
        _call(
            f"{base}/api/v2/dags/{quote(run['dag_id'], safe='')}/dagRuns/{quote(run['run_id'], safe='')}"
            "?update_mask=note",
            "PATCH",
            {"note": note},
            token["access_token"],
        )
    except Exception as err:  # no connection, the api-server unreachable: the run goes on
        log.warning("run note not written (%s): %s", type(err).__name__, err)
        return False
    print(f"run note: {note}")
    return True


def skipped(reason: str) -> Exception:
    """The skip of a whole run, told in its note: ``raise notes.skipped(why)``."""
    from airflow.sdk.exceptions import AirflowSkipException

    write(f"skipped: {reason}")
    return AirflowSkipException(reason)


def _call(url: str, method: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")
