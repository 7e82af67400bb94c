"""Alerts: someone is told, once per event, through Airflow's own notifiers.

Channels (``LIFECYCLE_ALERT_CHANNELS``, none by default: alerts are off):
  email    the SMTP provider's ``SmtpNotifier`` over the Airflow connection ``lifecycle_smtp``
           to ``LIFECYCLE_ALERT_EMAIL_TO``
  webhook  the HTTP provider's ``HttpNotifier`` posting JSON (``text`` for chat tools, and the
           fields) to the Airflow connection ``lifecycle_webhook``
An alert says what happened (the subject), why, and where to look: the DAG run in the Airflow UI
and the report under ``/reports/``. Each has a key naming its event (a day and its bytes, a DAG
run's task, a transition); the lake's ``alerts/`` ledger records what was sent on which channel,
so a retried task or a re-run of the same event sends nothing twice, and a channel that failed is
tried again by the next attempt. A failed send is logged and recorded; it never fails the task
that raised the alert.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import logging

from airflow.sdk import BaseNotifier

from lifecycle import settings as _settings
from lifecycle import ui

KINDS = {
    "task_failed": "a task failed after its retries",
    "quarantine": "a day failed the quality gate and was quarantined",
    "feature_drift": "the monitored features drifted from the champion's training data",
    "model_degraded": "the live model's performance fell below its bounds",
    "canary_abort": "a canary was aborted",
    "approval_waiting": "a decision waits for a human under Required Actions",
    "approval_answered": "a human answered an approval",
    "rollback": "the champion was rolled back",
    "live_breach": "the live champion breached a bound (errors, latency, missing or old features) or went down",
}
HEADER = "X-Lifecycle-Alert"  # the kind, on every e-mail: a mail filter or a test counts by it
log = logging.getLogger(__name__)


def send(
    kind: str, subject: str, why: str, links: dict[str, str] | None = None, key: str | None = None, context=None
) -> dict | None:
    """Send one alert on every configured channel not yet sent for ``key`` (default: this kind in
    this DAG run's task); returns the ledger's record, None when alerts are off."""
    if kind not in KINDS:
        raise ValueError(f"alert kind {kind!r} is not one of {', '.join(KINDS)}")
    cfg = _settings.load()
    if not cfg.alert_channels:
        return None
    run = _run(context)
    links = {**({"DAG run": run["url"]} if run else {}), **(links or {})}
    key = key or (f"{kind}/{run['dag_id']}/{run['run_id']}/{run['task_id']}" if run else f"{kind}/{subject}")
    try:
        entry = ledger(key)
    except Exception as err:  # the lake unreadable: better a second alert than none
        log.warning("alert ledger unreadable for %s: %s", key, err)
        entry = None
    sent = dict(entry["sent"]) if entry else {}
    message = {
        "kind": kind,
        "subject": f"[{cfg.model_name}] {subject}",
        "why": why,
        "links": links,
        "key": key,
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    for channel in cfg.alert_channels:
        if sent.get(channel) is True:
            continue
        try:
            _notifier(channel, message, cfg).notify(context or {})
            sent[channel] = True
        except Exception as err:  # an alert that cannot go out never fails the task that raised it
            log.warning("alert %s not sent by %s: %s", key, channel, err)
            sent[channel] = f"{type(err).__name__}: {err}"[:500]
    record = {**message, "sent": sent}
    try:
        _write(key, record)
    except Exception as err:  # told, but not recorded: a retry may tell again
        log.warning("alert ledger not written for %s: %s", key, err)
    return record


def _run(context) -> dict | None:
    if context and "ti" in context:
        ti = context["ti"]
        return {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "url": ui.run_url(ti.dag_id, ti.run_id),
        }
    return ui.current_run()


def _notifier(channel: str, message: dict, cfg: _settings.Settings):
    if channel == "email":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=list(cfg.alert_email_to),
            from_email=cfg.alert_email_from,
            subject=message["subject"],
            html_content=as_html(message),
            smtp_conn_id=_settings.SMTP_CONN_ID,
            custom_headers={HEADER: message["kind"]},
        )
    from airflow.providers.http.notifications.http import HttpNotifier

    text = "\n".join([message["subject"], message["why"], *(f"{k}: {v}" for k, v in message["links"].items())])
    return HttpNotifier(
        http_conn_id=_settings.WEBHOOK_CONN_ID,
        json={"text": text, **message},
        headers={"Content-Type": "application/json"},
    )


def as_html(message: dict) -> str:
    why = html.escape(message["why"]).replace("\n", "<br>")
    links = "".join(f'<li><a href="{html.escape(u)}">{html.escape(n)}</a></li>' for n, u in message["links"].items())
    return (
        f"<p><b>{html.escape(message['subject'])}</b></p><p>{why}</p>"
        + (f"<ul>{links}</ul>" if links else "")
        + f"<p style='color:#666'>{html.escape(KINDS[message['kind']])} · {html.escape(message['at'])}</p>"
    )


def _path(key: str):
    from lifecycle import lake

    return lake.zone("alerts") / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def ledger(key: str) -> dict | None:
    """The ledger's record of the alert with ``key``, None when none was raised."""
    path = _path(key)
    return json.loads(path.read_text()) if path.exists() else None


def _write(key: str, record: dict) -> None:
    path = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}")
    staged.write_text(json.dumps(record, sort_keys=True))
    staged.rename(path)


def history() -> list[dict]:
    """Every alert raised, oldest first."""
    from lifecycle import lake

    folder = lake.zone("alerts")
    if not folder.exists():
        return []
    records = [json.loads(p.read_text()) for p in folder.iterdir() if p.name.endswith(".json") and p.name[0] != "."]
    return sorted(records, key=lambda r: r["at"])


def quarantined(day: str, detail: str, reports: dict[str, str], digest: str) -> dict | None:
    """A day failed the quality gate: the failed expectations and each dataset's Data Docs page."""
    return send(
        "quarantine",
        f"{day} quarantined: it failed the quality gate",
        detail,
        {f"Data Docs ({dataset})": url for dataset, url in reports.items()},
        key=f"quarantine/{day}/{digest}",
    )


def feature_drift(summary: dict) -> dict | None:
    columns = ", ".join(summary["drifted_columns"]) or "-"
    return send(
        "feature_drift",
        f"feature drift on {summary['window']}: share {summary['drift_share']:.2f}",
        f"{len(summary['drifted_columns'])} monitored columns drifted from champion v{summary['model_version']}'s "
        f"training data ({columns}); feature_drift was emitted and starts a train run",
        {"drift report": summary["report_url"]},
        key=f"feature_drift/{summary['model_version']}/{summary['as_of']}",
    )


def model_degraded(summary: dict) -> dict | None:
    return send(
        "model_degraded",
        f"champion v{summary['model_version']} degraded: live {summary['metric']} {summary['value']:.4f}",
        f"{summary['reason']}; model_degraded was emitted and starts a train run",
        {"performance report": summary["report_url"]},
        key=f"model_degraded/{summary['model_version']}/{summary['as_of']}",
    )


def transition(entry: dict) -> dict | None:
    """A canary abort or a rollback, as the deployment history recorded it."""
    from lifecycle import registry

    kind = {"abort": "canary_abort", "roll_back": "rollback"}[entry["transition"]]
    what = "canary aborted" if kind == "canary_abort" else "rolled back to champion"
    links = {"DAG run": entry["dag_run"]} if entry.get("dag_run") else {}
    return send(kind, f"v{entry['version']} {what}", registry.describe(entry), links, key=f"{kind}/{entry['at']}")


class Notice(BaseNotifier):
    """An alert as an Airflow notifier (``on_*_callback``, a HITL operator's ``notifiers``): subject
    and why are Jinja templates rendered with the task's context, like any notifier's fields."""

    template_fields = ("subject", "why")

    def __init__(self, kind: str, subject: str, why: str, required_actions: bool = False):
        super().__init__()
        self.kind, self.subject, self.why, self.required_actions = kind, subject, why, required_actions

    def notify(self, context) -> None:
        links = {"Required Actions": ui.required_actions_url()} if self.required_actions else {}
        send(self.kind, self.subject, self.why, links, context=context)


class TaskFailed(BaseNotifier):
    """``on_failure_callback``: a task failed after its last try (Airflow calls it once, not per retry)."""

    def notify(self, context) -> None:
        ti, error = context["ti"], context.get("exception")
        send(
            "task_failed",
            f"{ti.dag_id}.{ti.task_id} failed",
            f"{type(error).__name__}: {error}" if error else "the task failed (its log, linked below, says why)",
            {"task": ui.run_url(ti.dag_id, ti.run_id, ti.task_id)},
            key=f"task_failed/{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}/{ti.try_number}",
            context=context,
        )
