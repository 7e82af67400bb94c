"""The driver's idle check decides from Airflow's state; scripted API answers reproduce the race in
which the scheduler turns a queued asset event into a run between two of the check's requests."""

from pathlib import Path

from lifecycle.devtools.airflow_client import AirflowClient

NEW = {"dag_id": "features", "dag_run_id": "asset_triggered__2", "state": "queued"}
ACTIVE_RUNS = "/api/v2/dags/~/dagRuns?state=queued&state=running&order_by=id&limit=100&offset=0"
RUN_COUNT = "/api/v2/dags/~/dagRuns?limit=1"


class Scripted(AirflowClient):
    """Answers from a script: each request (method and path, query included) maps to the answers it
    gives, in order (the last repeats)."""

    def __init__(self, answers: dict[str, list[dict]]):
        super().__init__("http://airflow.invalid", Path("/nonexistent"))
        self.answers = answers
        self.asked: list[str] = []

    def _request(self, method, path, body=None, auth=True):
        key = path if method == "GET" else f"{method} {path}"
        self.asked.append(key)
        script = self.answers[key]
        return script.pop(0) if len(script) > 1 else script[0]


def _client(active: list[list[dict]], counts: list[int] = (5,), queued: list[dict] | None = None) -> Scripted:
    return Scripted(
        {
            ACTIVE_RUNS: [{"dag_runs": r} for r in active],
            RUN_COUNT: [{"total_entries": n} for n in counts],
            "/api/v2/dags?limit=100": [{"dags": [{"dag_id": "features"}, {"dag_id": "validate"}]}],
            "/api/v2/dags/features/assets/queuedEvents": [{"queued_events": queued or []}],
            "/api/v2/dags/validate/assets/queuedEvents": [{"queued_events": []}],
        }
    )


def test_idle_only_when_nothing_is_active_or_queued():
    assert _client([[]]).pending_work() == []
    assert _client([[NEW]]).pending_work() == ["features run asset_triggered__2 queued"]
    assert _client([[]], queued=[{"asset_id": 3}]).pending_work() == ["features queued asset event (asset 3)"]


def test_a_busy_deployment_is_answered_from_one_request():
    client = _client([[NEW]])
    client.pending_work()
    assert client.asked == [ACTIVE_RUNS]


def test_a_run_created_from_the_queue_while_the_check_ran_is_not_taken_for_idle():
    race = ["a run was created or changed while the queues were read"]
    # the queue entry becomes a run after the active runs were read, before the queues are read
    client = _client([[], [], [NEW]])
    assert client.pending_work() == race
    assert client.pending_work() == ["features run asset_triggered__2 queued"]
    # ... and that run ended before the runs were read again: only the count shows it
    assert _client([[]], counts=[5, 6]).pending_work() == race
    # a run created between the first read and the count is active at the read after the count
    client = _client([[], [NEW]], counts=[6])
    assert client.pending_work() == ["features run asset_triggered__2 queued"]
    assert client.asked == [ACTIVE_RUNS, RUN_COUNT, ACTIVE_RUNS]


def test_a_second_backfill_of_a_dag_waits_until_airflow_marks_the_first_complete():
    client = Scripted(
        {
            "/api/v2/backfills/7": [{"completed_at": None}, {"completed_at": None}, {"completed_at": "2026-11-28"}],
            "POST /api/v2/backfills": [{"id": 8}],
        }
    )
    client.backfill_ids = {7: "ingest", 6: "features"}
    client.backfill("ingest", "2026-10-10", "2026-10-12")
    assert client.asked == ["/api/v2/backfills/7"] * 3 + ["POST /api/v2/backfills"]
    assert client.backfill_ids == {6: "features", 8: "ingest"}


def test_lists_read_every_page_the_api_caps_at_its_page_limit():
    runs = [{"dag_id": "ingest", "dag_run_id": f"r{i}", "state": "success"} for i in range(130)]
    pages = [
        "/api/v2/dags/~/dagRuns?order_by=run_after&limit=100&offset=0",
        "/api/v2/dags/~/dagRuns?order_by=run_after&limit=100&offset=100",
    ]
    client = Scripted({pages[0]: [{"dag_runs": runs[:100]}], pages[1]: [{"dag_runs": runs[100:]}]})
    assert client.runs() == runs and client.asked == pages
