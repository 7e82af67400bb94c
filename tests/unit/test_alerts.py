"""Alerts through Airflow's notifiers to a real SMTP server process and a real webhook receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from lifecycle import alerts, settings
from lifecycle.devtools import smtp_server


class Webhook(BaseHTTPRequestHandler):
    """Records each POSTed JSON body; answers each status in ``answers`` once, then 200."""

    bodies: list = []
    answers: list = []

    def do_POST(self):  # noqa: N802
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def channels(state, monkeypatch):
    """E-mail and webhook on, each through its Airflow connection (an AIRFLOW_CONN_* variable)."""
    server = smtp_server.start(state / "mail", state / "smtp.log")
    Webhook.bodies, Webhook.answers = [], []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    for name, value in {
        "LIFECYCLE_ALERT_CHANNELS": "email,webhook",
        "LIFECYCLE_ALERT_EMAIL_TO": "data-team@example.com, oncall@example.com",
        "LIFECYCLE_UI_URL": "http://airflow.test:8080",
        "AIRFLOW_CONN_LIFECYCLE_SMTP": server.connection(),
        "AIRFLOW_CONN_LIFECYCLE_WEBHOOK": json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": hook.server_port, "schema": "http"}
        ),
    }.items():
        monkeypatch.setenv(name, value)
    yield server
    hook.shutdown()
    server.stop()


def test_alerts_are_off_by_default(state):
    assert settings.load().alert_channels == ()
    assert alerts.quarantined("2026-10-05", "transactions: amount out of range", {}, "abc") is None
    assert alerts.history() == []


def test_a_quarantined_day_is_told_once_on_each_channel(channels):
    page = "http://airflow.test:8080/reports/data_quality/transactions/2026-10-05/index.html"
    why = "transactions: ExpectColumnValuesToBeBetween(amount) failed on 12 rows"
    record = alerts.quarantined("2026-10-05", why, {"transactions": page}, "abc")
    assert record["sent"] == {"email": True, "webhook": True}
    [mail] = channels.messages()
    assert mail["Subject"] == "[fraud-detector] 2026-10-05 quarantined: it failed the quality gate"
    assert mail[alerts.HEADER] == "quarantine" and mail["From"] == "model-lifecycle@localhost"
    assert mail["To"] == "data-team@example.com, oncall@example.com"
    body = mail.get_body(("html",)).get_content()
    assert why in body and f'<a href="{page}">Data Docs (transactions)</a>' in body
    [posted] = Webhook.bodies
    assert posted["kind"] == "quarantine" and posted["links"] == {"Data Docs (transactions)": page}
    assert posted["text"].splitlines() == [mail["Subject"], why, f"Data Docs (transactions): {page}"]
    # the same event again (a retried task, a re-run of the same day): nothing is sent twice
    assert alerts.quarantined("2026-10-05", why, {"transactions": page}, "abc")["sent"] == record["sent"]
    assert len(channels.messages()) == 1 and len(Webhook.bodies) == 1
    assert [r["key"] for r in alerts.history()] == ["quarantine/2026-10-05/abc"]


def test_a_channel_that_failed_is_tried_again_and_never_fails_the_caller(channels):
    Webhook.answers = [503]
    first = alerts.model_degraded(
        {
            "model_version": "3",
            "metric": "pr_auc",
            "value": 0.21,
            "reason": "live pr_auc 0.2100 is below 1.1 x chance 0.2000",
            "report_url": "http://airflow.test:8080/reports/performance/2026-10-20/r1/report.html",
            "as_of": "2026-10-20",
        }
    )
    assert first["sent"]["email"] is True and "503" in first["sent"]["webhook"]
    again = alerts.send("model_degraded", "ignored", "ignored", key=first["key"])
    assert again["sent"] == {"email": True, "webhook": True}
    assert len(channels.messages()) == 1 and len(Webhook.bodies) == 2  # only the webhook was tried again


def test_a_failed_task_is_told_with_its_error_and_link(channels):
    ti = SimpleNamespace(dag_id="train", run_id="manual__1", task_id="train_xgboost", try_number=2, map_index=-1)
    alerts.TaskFailed()({"ti": ti, "exception": MemoryError("the GPU ran out of memory")})
    [mail] = channels.messages()
    assert mail["Subject"] == "[fraud-detector] train.train_xgboost failed" and mail[alerts.HEADER] == "task_failed"
    body = mail.get_body(("html",)).get_content()
    assert "MemoryError: the GPU ran out of memory" in body
    assert '"http://airflow.test:8080/dags/train/runs/manual__1/tasks/train_xgboost"' in body


def test_a_channel_without_its_settings_is_refused(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_ALERT_CHANNELS", "email,pager")
    with pytest.raises(settings.SettingError, match="pager not among email, webhook"):
        settings.load()
    monkeypatch.setenv("LIFECYCLE_ALERT_CHANNELS", "email")
    with pytest.raises(settings.SettingError, match="e-mail alerts need LIFECYCLE_ALERT_EMAIL_TO"):
        settings.load()
