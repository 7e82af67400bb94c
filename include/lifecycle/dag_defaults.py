"""What every DAG shares: owner, retries, failure alerts, start date, tags. Cheap to import at parse time."""

from datetime import UTC, datetime, timedelta

from lifecycle import alerts
from lifecycle import settings as _settings

CFG = _settings.load()
START = datetime.fromisoformat(CFG.schedule_start).replace(tzinfo=UTC)
DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": 1,
    "retry_delay": timedelta(seconds=20),
    "on_failure_callback": [alerts.TaskFailed()],  # sends only when alerts are on (LIFECYCLE_ALERT_CHANNELS)
}
TAGS = ["model-lifecycle"]


def dates_param(purpose: str):
    """The ``dates`` param of a DAG that works per day: days to (re)process on a manual run."""
    from airflow.sdk import Param

    return {"dates": Param([], type="array", description=f"Days (YYYY-MM-DD) to {purpose} on a manual run")}


def days_to_process(pending, params, triggering_asset_events, asset, still_to_do=None) -> list[str]:
    """Pending days (the lake's word), requested days and the days named by triggering events,
    those ``still_to_do(named, pending)`` keeps when given (a run's event can name a day an
    earlier run did).

    Events only wake the DAG: one can fall outside every run's event window when producers run
    concurrently, so what is pending in the lake decides the work.
    """
    named = sorted({d for days in events_extra(triggering_asset_events, asset, "dates") for d in days})
    if still_to_do:
        named = still_to_do(named, pending)
    return sorted({d.isoformat() for d in pending} | set(params["dates"]) | set(named))


def events_extra(triggering_asset_events, asset, key: str) -> list:
    """Values of ``extra[key]`` from the events that triggered this run, oldest first."""
    events = sorted(
        triggering_asset_events.get(asset, []) if triggering_asset_events else [], key=lambda e: e.timestamp
    )
    return [e.extra[key] for e in events if key in (e.extra or {})]
