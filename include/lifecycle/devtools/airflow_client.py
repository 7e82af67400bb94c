"""Drive a real Airflow the way a user would: through its REST API.

``AirflowClient`` talks to a running deployment (login, runs, backfills, task instances, and
waiting until Airflow has nothing left to do). ``AirflowServer`` also starts the deployment's
processes (``lifecycle.platform.cluster``), waits until Airflow and the MLflow server answer, and measures
the processes' peak memory. Used by ``make demo``, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from lifecycle import settings as _settings
from lifecycle.platform import env
from lifecycle.platform.cluster import LIVE, Supervisor, commands

ACTIVE = ("queued", "running")
PAGE = 100  # items a list request asks for: [api] maximum_page_limit, which caps any larger limit


class AirflowClient:
    """A logged-in REST client of the Airflow at ``base`` whose home (password file) is ``home``."""

    def __init__(self, base: str, home: Path) -> None:
        self.base, self.home = base, home
        self.token = ""
        self.backfill_ids: dict[int, str] = {}  # the backfills this client created: id -> dag id

    def login(self) -> bool:
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
        req = urllib.request.Request(
            self.base + path, json.dumps(body).encode() if body is not None else None, headers, method=method
        )
        tries = 3 if method == "GET" else 1  # a read asks again: an api-server stalled under load once in CI
        try:
            for attempt in range(1, tries + 1):
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        return json.loads(r.read() or b"{}")
                except TimeoutError:
                    if attempt == tries:
                        raise
        except urllib.error.HTTPError as err:
            raise RuntimeError(
                f"{method} {path} -> {err.code}: {err.read().decode()[:500]} "
                f"(the api-server's log is in {self.home / 'process-logs'})"
            ) from None

    def get(self, path: str) -> dict:
        return self._request("GET", path)

    def page(self, path: str) -> tuple[int, str]:
        """(status, text) of a page the api-server serves (a plugin's, such as /reports/deployment)."""
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, body)

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.get("/api/v2/dags?limit=100")["dags"]}

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dag_ids <= (found := self.dag_ids()):
                return
            time.sleep(0.5)
        raise TimeoutError(f"DAGs {sorted(dag_ids - found)} not parsed after {timeout}s")

    def backfill(self, dag_id: str, first: str, last: str, timeout: float = 120) -> dict:
        """Backfill ``dag_id`` over [first, last]. Airflow refuses a second backfill of a DAG until
        the scheduler marks the first complete (a check it runs every 30 s), so an earlier one of
        ours whose runs have all ended is waited for here, not in ``wait_idle``."""
        deadline = time.monotonic() + timeout
        for earlier in [b for b, d in self.backfill_ids.items() if d == dag_id]:
            while self.get(f"/api/v2/backfills/{earlier}")["completed_at"] is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{dag_id} backfill {earlier} not marked complete after {timeout}s")
                time.sleep(0.5)
            del self.backfill_ids[earlier]
        created = self.post(
            "/api/v2/backfills",
            {
                "dag_id": dag_id,
                "from_date": f"{first}T00:00:00Z",
                "to_date": f"{last}T23:59:59Z",
                "max_active_runs": 8,  # the ingest runs start together; parallelism bounds the tasks
                "reprocess_behavior": "completed",
                "run_backwards": False,
            },
        )
        self.backfill_ids[created["id"]] = dag_id
        return created

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        return self.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})

    def paged(self, path: str, key: str) -> list[dict]:
        """Every item of a list endpoint, page by page: the API lowers any ``limit`` to ``[api]
        maximum_page_limit`` (100), so one request with a larger limit returns the first 100 only."""
        items, sep = [], "&" if "?" in path else "?"
        while True:
            batch = self.get(f"{path}{sep}limit={PAGE}&offset={len(items)}")[key]
            items += batch
            if len(batch) < PAGE:
                return items

    def runs(self, dag_id: str = "~") -> list[dict]:
        return self.paged(f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after", "dag_runs")

    def task_instances(self, dag_id: str = "~", run_id: str = "~", **query: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='~')}/taskInstances"
        return self.paged(f"{path}?{urllib.parse.urlencode(query)}" if query else path, "task_instances")

    def asset_events(self, source_dag_id: str) -> list[dict]:
        """Asset events a DAG emitted, oldest first (name, extra, timestamp, the runs they created)."""
        return self.paged(f"/api/v2/assets/events?source_dag_id={source_dag_id}&order_by=timestamp", "asset_events")

    def approvals(self, dag_id: str = "~") -> list[dict]:
        """Human-in-the-loop requests waiting for an answer (the UI's Browse → Required Actions)."""
        return self.paged(f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails?response_received=false", "hitl_details")

    def respond(self, request: dict, option: str) -> dict:
        """Answer a human-in-the-loop request with ``option`` (e.g. Approve or Reject) as the logged-in user."""
        ti = request["task_instance"]
        path = (
            f"/api/v2/dags/{ti['dag_id']}/dagRuns/{urllib.parse.quote(ti['dag_run_id'], safe='')}"
            f"/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails"
        )
        return self._request("PATCH", path, {"chosen_options": [option], "params_input": {}})

    def run_count(self) -> int:
        return self.get("/api/v2/dags/~/dagRuns?limit=1")["total_entries"]

    def pending_work(self) -> list[str]:
        """What Airflow still has to do, from its own state; empty when it is idle.

        A finishing task records its outlet events and queues the consumer DAGs in the same
        transaction that ends it, while its run is still active; the scheduler turns a queue entry
        into a run and deletes it in one transaction; a backfill's runs are all created by the
        request that creates it. So at any one instant, remaining work shows as an active run or a
        queued asset event. The checks are requests at successive instants, though, so the runs are
        counted first and the active runs read after the count: a run is then either active at that
        read (busy), or ended before it (its outlet events were queued before the queues are read),
        or created after the count (the count read last differs). Runs are never deleted here. The
        first request asks for active runs only, so a busy deployment answers with a few rows.
        """
        if busy := self._active():
            return busy
        created = self.run_count()
        if busy := self._active():
            return busy
        for dag_id in sorted(self.dag_ids()):
            queued = self.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")["queued_events"]
            busy += [f"{dag_id} queued asset event (asset {q['asset_id']})" for q in queued]
        if not busy and (self._active() or self.run_count() != created):
            busy.append("a run was created or changed while the queues were read")
        return busy

    def _active(self) -> list[str]:
        states = "&".join(f"state={state}" for state in ACTIVE)
        runs = self.paged(f"/api/v2/dags/~/dagRuns?{states}&order_by=id", "dag_runs")
        return [f"{r['dag_id']} run {r['dag_run_id']} {r['state']}" for r in runs]

    def wait_idle(self, timeout: float = 1800, poll: float = 0.3, answer=None) -> None:
        """Until Airflow has no active run and no queued asset event (``pending_work``).
        A run waiting for a human stays active: ``answer(request)``, if given, names the option to
        respond with (None leaves the request waiting)."""
        deadline = time.monotonic() + timeout
        while (busy := self.pending_work()) and time.monotonic() < deadline:
            for request in self.approvals() if answer else []:
                if (option := answer(request)) is not None:
                    self.respond(request, option)
            time.sleep(poll)
        if busy:
            raise TimeoutError(f"Airflow still busy after {timeout}s: {busy[:10]}")


class AirflowServer(AirflowClient):
    """The deployment on the project's state, started and stopped by this object."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        """``environment``: settings (``LIFECYCLE_*``) for the deployment's processes only."""
        self.env = env.apply()
        super().__init__(self.env["AIRFLOW__API__BASE_URL"], Path(self.env["AIRFLOW_HOME"]))
        # the demo reports the deployment's peak memory; a task's peak lasts seconds
        self.supervisor = Supervisor(self.home / "process-logs", environment=environment, memory_every=2)

    @property
    def peak_rss(self) -> int:
        return self.supervisor.peak_rss

    @property
    def peak_pss(self) -> int:
        return self.supervisor.peak_pss

    def start(self, timeout: float = 240) -> None:
        """``launch``, then ``wait_ready``."""
        self.launch(timeout)
        self.wait_ready(timeout)

    def launch_scheduler(self) -> None:
        """Embedded profile: starts the scheduler before set-up migrates the metadata DB; it imports
        the task libraries first (``platform.scheduler``, 10-20 s) and then waits for the migration.
        Airflow's config file is written here first: a process that finds none writes its own with
        fresh secret keys (JWT, Fernet), and two at once (the scheduler, set-up's) would disagree."""
        if _settings.load().services is not None:
            return
        from airflow import configuration

        if Path(configuration.AIRFLOW_CONFIG) != self.home / "airflow.cfg":
            raise RuntimeError(
                f"Airflow was imported with the config {configuration.AIRFLOW_CONFIG}, not this deployment's "
                f"{self.home / 'airflow.cfg'}: apply lifecycle.platform.env before importing Airflow"
            )
        configuration.write_default_airflow_configuration_if_needed()
        self.supervisor.start(["scheduler"])

    def launch(self, timeout: float = 240) -> None:
        """Starts Airflow's processes not started yet (and the MLflow server); returns once the
        api-server answers. The embedded scheduler may still be importing the task libraries
        (``platform.scheduler``, 10-20 s); the demo lands its first days meanwhile."""
        self.supervisor.start([name for name in commands() if name != LIVE])
        self._wait_for(lambda health: self.login(), timeout, "the api-server")

    def wait_ready(self, timeout: float = 240) -> None:
        """Once the scheduler is healthy (and MLflow's server answers), starts the live service:
        its workers import torch, Feast and MLflow, which on two cores slowed the scheduler's own
        start (it imports the task libraries before it reports healthy)."""
        tracking = _settings.load().mlflow_tracking_uri

        def ready(health: dict) -> bool:
            if tracking.startswith("http"):
                urllib.request.urlopen(f"{tracking}/health", timeout=3).close()
            return health.get("scheduler", {}).get("status") == "healthy" and self.login()

        self._wait_for(ready, timeout, f"the scheduler (or MLflow at {tracking})")
        self.supervisor.start()

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        """Until ``ready(health)`` is true for the api-server's health answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervisor.check_alive()
            try:
                with urllib.request.urlopen(f"{self.base}/api/v2/monitor/health", timeout=3) as r:
                    if ready(json.loads(r.read())):
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready at {self.base} after {timeout}s; see {self.supervisor.log_dir}")

    def stop(self) -> None:
        self.supervisor.stop()
