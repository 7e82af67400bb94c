"""Drive a real Airflow (``airflow standalone``) the way a user would: through its REST API.

Used by ``make demo`` and the end-to-end test; measures the process tree's peak memory.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from lifecycle import env

ACTIVE = ("queued", "running")


class AirflowServer:
    """``airflow standalone`` on the project's state, started and stopped by this object."""

    def __init__(self) -> None:
        self.env = env.apply()
        self.home = Path(self.env["AIRFLOW_HOME"])
        self.base = self.env["AIRFLOW__API__BASE_URL"]
        self.proc: subprocess.Popen | None = None
        self.token = ""
        self.peak_rss = self.peak_pss = 0
        self._stop = threading.Event()

    def start(self, timeout: float = 180) -> None:
        log = open(self.home / "standalone.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy())
        threading.Thread(target=self._sample_memory, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({self.proc.returncode}); see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=3) as r:
                    health = json.loads(r.read())
                if health.get("scheduler", {}).get("status") == "healthy" and self._login():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(2)
        raise TimeoutError(f"airflow standalone not healthy at {self.base} after {timeout}s")

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

    def _sample_memory(self) -> None:
        while not self._stop.is_set() and self.proc and self.proc.poll() is None:
            rss = pss = 0
            try:
                procs = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
                except psutil.Error:
                    continue
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            time.sleep(1)

    def stop(self) -> None:
        """Terminate standalone and every process it started (workers may leave its group)."""
        self._stop.set()
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            root = psutil.Process(self.proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            tree = []
        os.killpg(self.proc.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=30)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        self.proc.wait()
