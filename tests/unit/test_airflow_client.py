"""The driver's idle check decides from Airflow's state; scripted API answers reproduce the race in
which the scheduler turns a queued asset event into a run between two of the check's requests."""

from pathlib import Path

from lifecycle.devtools.airflow_client import AirflowClient

DONE = {"dag_id": "validate", "dag_run_id": "asset_triggered__1", "state": "success"}
NEW = {"dag_id": "features", "dag_run_id": "asset_triggered__2", "state": "queued"}


class Scripted(AirflowClient):
    """Answers from a script: each GET path maps to the answers it gives, in order (the last repeats)."""

    def __init__(self, answers: dict[str, list[dict]]):
        super().__init__("http://airflow.invalid", Path("/nonexistent"))
        self.answers = answers
        self.asked: list[str] = []

    def _request(self, method, path, body=None, auth=True):
        key = path.split("?")[0]
        self.asked.append(key)
        script = self.answers[key]
        return script.pop(0) if len(script) > 1 else script[0]


def _client(runs: list[list[dict]], queued: list[dict] | None = None, backfill_done: bool = True) -> Scripted:
    client = Scripted(
        {
            "/api/v2/dags/~/dagRuns": [{"dag_runs": r} for r in runs],
            "/api/v2/dags": [{"dags": [{"dag_id": "features"}, {"dag_id": "validate"}]}],
            "/api/v2/dags/features/assets/queuedEvents": [{"queued_events": queued or []}],
            "/api/v2/dags/validate/assets/queuedEvents": [{"queued_events": []}],
            "/api/v2/backfills/7": [{"completed_at": "2026-11-25T10:00:00Z" if backfill_done else None}],
        }
    )
    client.backfill_ids[7] = "ingest"
    return client


def test_idle_only_when_nothing_is_active_open_or_queued():
    assert _client([[DONE]]).pending_work() == []
    assert _client([[DONE, NEW]]).pending_work() == ["features run asset_triggered__2 queued"]
    assert _client([[DONE]], backfill_done=False).pending_work() == ["ingest backfill 7 not completed"]
    assert _client([[DONE]], queued=[{"asset_id": 3}]).pending_work() == ["features queued asset event (asset 3)"]


def test_a_run_created_from_the_queue_while_the_check_ran_is_not_taken_for_idle():
    # first read: nothing active; the queue entry becomes a run before the queues are read
    client = _client([[DONE], [DONE, NEW]])
    assert client.pending_work() == ["a run was created or changed while the queues were read"]
    assert client.asked.count("/api/v2/dags/~/dagRuns") == 2
    assert client.pending_work() == ["features run asset_triggered__2 queued"]


def test_lists_read_every_page_the_api_caps_at_its_page_limit():
    runs = [{"dag_id": "ingest", "dag_run_id": f"r{i}", "state": "success"} for i in range(130)]
    client = Scripted({"/api/v2/dags/~/dagRuns": [{"dag_runs": runs[:100]}, {"dag_runs": runs[100:]}]})
    assert client.runs() == runs and client.asked == ["/api/v2/dags/~/dagRuns"] * 2
