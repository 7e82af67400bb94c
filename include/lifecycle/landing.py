"""Waiting for a day's landing files the Airflow way: a deferrable sensor and its trigger.

A scheduled run skips, saying why, when its feed is silent (``silent``): nothing landed yet, or
nothing for days (a finished history); a backfilled or manual run always waits.

While the files are absent the ingest task holds no worker slot: it defers to the triggerer,
which checks the lake (file or S3) every ``LIFECYCLE_LANDING_POKE_SECONDS`` until the files are
there or the deadline (``LIFECYCLE_LANDING_TIMEOUT_MINUTES`` after the first check) passes, then
fails naming the files that never landed. Cheap to import: the DAG file builds the sensor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent


class LandingTimeout(AirflowSensorTimeout):
    """A day's landing files were not all there by the deadline (a sensor timeout: never retried)."""


def missing(day: dt.date) -> list[str]:
    """The day's feeds that have not landed yet (``ingest.landed``), named by where they are expected."""
    from lifecycle import contract, ingest, lake

    return [
        f"{lake.zone('landing') / ds / day.isoformat()}{{.csv,.parquet,/{ingest.READY}}}"
        for ds in contract.current().datasets
        if not ingest.landed(ds, day)
    ]


def silent(day: dt.date) -> str | None:
    """Why a scheduled ingest of ``day`` has nothing to wait for, or None: its events feed never
    landed anything, or landed nothing in the ``LIFECYCLE_LANDING_SILENCE_DAYS`` before it (a
    history landed once and finished, or a feed that stopped: waiting hours for it helps no one)."""
    from lifecycle import contract, ingest, lake
    from lifecycle import settings as _settings

    cfg = _settings.load()
    events = contract.current(cfg).events
    days = [d for d in ingest.landed_days(events) if d <= day]
    where = lake.zone("landing") / events
    if day in days:
        return None
    if not days:
        return f"nothing has landed under {where} up to {day}: land files, then backfill ingest for their days"
    if (day - days[-1]).days > cfg.landing_silence_days:
        return (
            f"the latest day landed under {where} is {days[-1]}, {(day - days[-1]).days} days before {day} "
            f"(more than LIFECYCLE_LANDING_SILENCE_DAYS={cfg.landing_silence_days}): the feed looks finished or "
            "stopped; backfill ingest once it delivers again"
        )
    return None


class LandingTrigger(BaseTrigger):
    """Fires once: when every landing file of ``day`` exists, or at ``deadline`` with what is missing."""

    def __init__(self, day: str, deadline: str, poke_seconds: float):
        super().__init__()
        self.day, self.deadline, self.poke_seconds = day, deadline, poke_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "lifecycle.landing.LandingTrigger",
            {"day": self.day, "deadline": self.deadline, "poke_seconds": self.poke_seconds},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = dt.datetime.fromisoformat(self.deadline)
        while True:
            absent = await asyncio.to_thread(missing, dt.date.fromisoformat(self.day))
            if not absent or dt.datetime.now(dt.UTC) >= deadline:
                yield TriggerEvent({"day": self.day, "missing": absent})
                return
            await asyncio.sleep(self.poke_seconds)


class LandingSensor(BaseSensorOperator):
    """Succeeds once the run's day has all its landing files; defers while it waits."""

    def __init__(self, *, timeout_minutes: float, poke_seconds: float, **kwargs):
        super().__init__(timeout=timeout_minutes * 60, poke_interval=poke_seconds, **kwargs)
        self.timeout_minutes = timeout_minutes

    def poke(self, context) -> bool:
        return not missing(context["data_interval_start"].date())

    def execute(self, context) -> None:
        day = context["data_interval_start"].date()
        if not (absent := missing(day)):
            return
        if context["dag_run"].run_type == "scheduled" and (why := silent(day)):
            from lifecycle import notes

            raise notes.skipped(f"scheduled run for {day} skipped: {why}")
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=self.timeout_minutes)
        self.log.info("waiting for %s until %s (deferred: no worker slot is held)", absent, deadline)
        self.defer(
            trigger=LandingTrigger(day.isoformat(), deadline.isoformat(), self.poke_interval),
            method_name="execute_complete",
            timeout=dt.timedelta(minutes=self.timeout_minutes + 5),
        )

    def execute_complete(self, context, event: dict) -> None:
        if event["missing"]:
            raise LandingTimeout(
                f"{event['day']}: {', '.join(event['missing'])} not landed within "
                f"{self.timeout_minutes:g} minutes (LIFECYCLE_LANDING_TIMEOUT_MINUTES); "
                "land the files, then clear this task to wait again"
            )
        self.log.info("landing files of %s are there", event["day"])
