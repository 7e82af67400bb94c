"""Drive a real Airflow the way a user would: through its REST API.

Starts the deployment's processes (``lifecycle.cluster``: standalone, or the scale-out set),
waits until Airflow and the MLflow server answer, and measures the processes' peak memory.
Used by ``make demo``, the end-to-end tests and the benchmarks.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from lifecycle import env
from lifecycle import settings as _settings
from lifecycle.cluster import Supervisor

ACTIVE = ("queued", "running")


class AirflowServer:
    """The deployment on the project's state, started and stopped by this object."""

    def __init__(self) -> None:
        self.env = env.apply()
        self.home = Path(self.env["AIRFLOW_HOME"])
        self.base = self.env["AIRFLOW__API__BASE_URL"]
        self.supervisor = Supervisor(self.home / "process-logs")
        self.token = ""

    @property
    def peak_rss(self) -> int:
        return self.supervisor.peak_rss

    @property
    def peak_pss(self) -> int:
        return self.supervisor.peak_pss

    def start(self, timeout: float = 240) -> None:
        self.supervisor.start()
        tracking = _settings.load().mlflow_tracking_uri
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervisor.check_alive()
            try:
                with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=3) as r:
                    health = json.loads(r.read())
                if tracking.startswith("http"):
                    urllib.request.urlopen(f"{tracking}/health", timeout=3).close()
                if health.get("scheduler", {}).get("status") == "healthy" and self._login():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(2)
        raise TimeoutError(f"Airflow not healthy at {self.base} (or MLflow at {tracking}) after {timeout}s; "
                           f"see {self.supervisor.log_dir}")

    def _login(self) -> bool:
        pw_file = self.home / "simple_auth_manager_passwords.json.generated"
        if not pw_file.exists():
            return False
        password = json.loads(pw_file.read_text())["admin"]
        answer = self._request("POST", "/auth/token", {"username": "admin", "password": password}, auth=False)
        self.token = answer["access_token"]
        return True

    def _request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, json.dumps(body).encode() if body is not None else None,
                                     headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {path} -> {err.code}: {err.read().decode()[:500]}") from None

    def get(self, path: str) -> dict:
        return self._request("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, body)

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {d["dag_id"] for d in self.get("/api/v2/dags?limit=100")["dags"]}
            if dag_ids <= found:
                return
            time.sleep(2)
        raise TimeoutError(f"DAGs {sorted(dag_ids - found)} not parsed after {timeout}s")

    def backfill(self, dag_id: str, first: str, last: str) -> dict:
        return self.post("/api/v2/backfills", {
            "dag_id": dag_id, "from_date": f"{first}T00:00:00Z", "to_date": f"{last}T23:59:59Z",
            "max_active_runs": 3, "reprocess_behavior": "completed", "run_backwards": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})

    def runs(self, dag_id: str = "~") -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=1000&order_by=run_after")["dag_runs"]

    def wait_idle(self, quiet: float = 15, timeout: float = 900) -> None:
        """Until no run is queued or running for ``quiet`` seconds (asset-triggered runs start late)."""
        deadline, idle_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            busy = [r for r in self.runs() if r["state"] in ACTIVE]
            if busy:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                return
            time.sleep(2)
        raise TimeoutError(f"Airflow still busy after {timeout}s: {[(r['dag_id'], r['state']) for r in busy]}")

    def stop(self) -> None:
        self.supervisor.stop()
