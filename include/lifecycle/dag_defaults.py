"""What every DAG shares: owner, retries, start date, tags. Cheap to import at parse time."""
from datetime import UTC, datetime, timedelta

from lifecycle import settings as _settings

CFG = _settings.load()
START = datetime.fromisoformat(CFG.schedule_start).replace(tzinfo=UTC)
DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": 1,
    "retry_delay": timedelta(seconds=20),
}
TAGS = ["model-lifecycle"]


def events_extra(triggering_asset_events, asset, key: str) -> list:
    """Values of ``extra[key]`` from the events that triggered this run, oldest first."""
    events = sorted(triggering_asset_events.get(asset, []) if triggering_asset_events else [],
                    key=lambda e: e.timestamp)
    return [e.extra[key] for e in events if key in (e.extra or {})]
