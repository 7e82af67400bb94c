"""Landing a history without a generator (``lifecycle.land``) and ingest's landing forms.

The user's files are written here by hand from a few generated days: one CSV of events with
their columns shuffled, a renamed time column and an extra column, and a Parquet file of labels.
What lands per day is checked against a split computed independently (the ISO date text)."""

import datetime as dt
import json

import pandas as pd
import pytest

from lifecycle import contract, ingest, lake, land, validation
from lifecycle.devtools import datagen

DAY = dt.date(2026, 10, 5)


def history(days=3):
    """Events and labels of ``days`` generated days, as a user would have them in one table each."""
    events, labels = zip(*(datagen.generate_day(DAY + dt.timedelta(days=i)) for i in range(days)), strict=True)
    return pd.concat(events, ignore_index=True), pd.concat(labels, ignore_index=True)


def user_files(tmp_path, events, labels):
    ev = events.rename(columns={"event_timestamp": "ts"}).assign(note="x")
    ev = ev[list(reversed(ev.columns))]
    ev["ts"] = ev["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ev.to_csv(tmp_path / "events.csv", index=False)
    labels.to_parquet(tmp_path / "labels.parquet", index=False)
    return [str(tmp_path / "events.csv")], [str(tmp_path / "labels.parquet")]


def landed_frame(dataset, day):
    return pd.read_parquet((lake.zone("landing") / dataset / f"{day}.parquet").open("rb"))


def test_a_history_lands_by_day_and_ingests_like_generated_days(state, tmp_path):
    events, labels = history()
    ev_files, lb_files = user_files(tmp_path, events, labels)
    summary = land.land(ev_files, lb_files, rename={"ts": "event_timestamp"})

    uc = contract.current()
    event_days = sorted(events["event_timestamp"].dt.strftime("%Y-%m-%d").unique())
    label_days = sorted(labels["labeled_at"].dt.strftime("%Y-%m-%d").unique())
    assert summary["transactions"] == {
        "days": 3,
        "rows": len(events),
        "written": 3,
        "unchanged": 0,
        "first": event_days[0],
        "last": event_days[-1],
    }
    # a day lands both feeds: labels known after the last event day wait for a later delivery
    landed_labels = labels["labeled_at"].dt.strftime("%Y-%m-%d").isin(event_days)
    assert summary["labels"]["days"] == 3 and summary["labels"]["rows"] == int(landed_labels.sum())
    assert summary["labels_not_landed"] == int((~landed_labels).sum()) > 0 and label_days[-1] > event_days[-1]
    assert not (lake.zone("landing") / "labels" / f"{label_days[-1]}.parquet").exists()
    assert summary["left_out"] == {"events": ["note"], "labels": []}
    for day in event_days:
        got = landed_frame("transactions", day)
        want = events[events["event_timestamp"].dt.strftime("%Y-%m-%d") == day].reset_index(drop=True)
        assert list(got.columns) == list(uc.event_columns)
        pd.testing.assert_frame_equal(got, want[list(uc.event_columns)], check_dtype=False)
    for day in event_days:
        got = landed_frame("labels", day)
        assert len(got) == int((labels["labeled_at"].dt.strftime("%Y-%m-%d") == day).sum())

    manifests = ingest.ingest_day(DAY)
    assert manifests["transactions"]["rows"] == int((events["event_timestamp"].dt.date == DAY).sum())
    assert manifests["transactions"]["schema"]["event_timestamp"] == "datetime64[ns, UTC]"
    assert manifests["transactions"]["schema"]["card_id"] == "object"
    outcome = validation.gate_days([DAY])
    assert [o["status"] for o in outcome] == ["curated"]

    again = land.land(ev_files, lb_files, rename={"ts": "event_timestamp"})
    assert again["transactions"]["unchanged"] == 3 and again["transactions"]["written"] == 0


def test_naive_timestamps_are_read_in_the_given_zone(state, tmp_path):
    events, labels = history(1)
    ev = events.head(2).copy()
    local = pd.Series(["2026-10-05 22:30:00", "2026-10-05 10:00:00"])  # New York, UTC-4 in October
    ev["event_timestamp"] = local
    lb = labels[labels["transaction_id"].isin(ev["transaction_id"])].copy()
    lb["labeled_at"] = "2026-10-06 23:00:00"  # 03:00 UTC on the 7th
    ev.to_csv(tmp_path / "e.csv", index=False)
    lb.to_csv(tmp_path / "l.csv", index=False)
    land.land([str(tmp_path / "e.csv")], [str(tmp_path / "l.csv")], timezone="America/New_York")
    assert landed_frame("transactions", "2026-10-05")["event_timestamp"].tolist() == [
        pd.Timestamp("2026-10-05T14:00:00Z")
    ]
    assert landed_frame("transactions", "2026-10-06")["event_timestamp"].tolist() == [
        pd.Timestamp("2026-10-06T02:30:00Z")
    ]
    assert len(landed_frame("labels", "2026-10-06")) == 0  # 03:00 UTC on the 7th: after the last event day
    assert not (lake.zone("landing") / "labels" / "2026-10-07.parquet").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ev, lb: (ev.drop(columns="amount"), lb), r"events: missing column\(s\) \['amount'\]"),
        (lambda ev, lb: (ev.assign(event_timestamp="yesterday"), lb), r"not ISO-8601 timestamps, e\.g\. 'yesterday'"),
        (
            lambda ev, lb: (ev, lb.assign(labeled_at=pd.Timestamp("2026-10-01T00:00:00Z"))),
            r"became known before the first event day 2026-10-05",
        ),
        (lambda ev, lb: (ev, lb.drop(columns="labeled_at")), r"labels: missing column\(s\) \['labeled_at'\]"),
        (lambda ev, lb: (ev, lb.assign(is_fraud=0.5)), r"labels: \d+ value\(s\) of is_fraud are not whole numbers"),
        (
            lambda ev, lb: (
                ev.assign(
                    event_timestamp=ev["event_timestamp"]
                    .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
                    .where(ev.index > 0, "2026-10-05T00:00:01")
                ),
                lb,
            ),
            r"1 of \d+ timestamps have no offset while the others do \(e\.g\. '2026-10-05T00:00:01'\)",
        ),
    ],
)
def test_bad_input_is_named_and_nothing_lands(state, tmp_path, change, message):
    events, labels = history(1)
    ev, lb = change(events, labels)
    ev.to_parquet(tmp_path / "e.parquet", index=False)
    lb.to_parquet(tmp_path / "l.parquet", index=False)
    with pytest.raises(land.LandError, match=message):
        land.land([str(tmp_path / "e.parquet")], [str(tmp_path / "l.parquet")])
    assert not (lake.zone("landing") / "transactions").exists()


def test_a_day_landed_with_other_content_is_refused_unless_replaced(state, tmp_path):
    events, labels = history(1)
    ev_files, lb_files = user_files(tmp_path, events, labels)
    rename = {"ts": "event_timestamp"}
    land.land(ev_files, lb_files, rename=rename)
    before = (lake.zone("landing") / "transactions" / f"{DAY}.parquet").read_bytes()
    user_files(tmp_path, events.head(len(events) - 1), labels)
    with pytest.raises(land.LandError, match=r"1 day\(s\) already landed with other content.*nothing was written"):
        land.land(ev_files, lb_files, rename=rename)
    assert (lake.zone("landing") / "transactions" / f"{DAY}.parquet").read_bytes() == before
    land.land(ev_files, lb_files, rename=rename, replace=True)
    assert len(landed_frame("transactions", DAY.isoformat())) == len(events) - 1


def test_the_command_prints_what_landed_and_fails_naming_the_rule(state, tmp_path, capsys):
    events, labels = history(1)
    ev_files, lb_files = user_files(tmp_path, events, labels)
    assert land.main(["--events", *ev_files, "--labels", *lb_files]) == 2
    assert "missing column(s) ['event_timestamp']" in capsys.readouterr().err
    assert land.main(["--events", *ev_files, "--labels", *lb_files, "--timezone", "Mars/Olympus"]) == 2
    assert "not an IANA time zone name" in capsys.readouterr().err
    folder = tmp_path / "exports"
    folder.mkdir()
    (tmp_path / "events.csv").rename(folder / "events.csv")
    assert land.main(["--events", str(folder), "--labels", *lb_files, "--rename", "ts=event_timestamp"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["transactions"]["rows"] == len(events)


def test_ingest_reads_a_folder_once_it_holds_success_and_refuses_two_forms(state):
    events, labels = datagen.generate_day(DAY)
    folder = lake.zone("landing") / "transactions" / DAY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    half = len(events) // 2
    (folder / "part-0.parquet").write_bytes(lake.parquet_bytes(events.iloc[:half]))
    (folder / "part-1.csv").write_bytes(datagen.to_csv_bytes(events.iloc[half:]))
    (lake.zone("landing") / "labels" / f"{DAY}.csv").parent.mkdir(parents=True, exist_ok=True)
    (lake.zone("landing") / "labels" / f"{DAY}.csv").write_bytes(datagen.to_csv_bytes(labels.iloc[0:0]))
    assert ingest.landed("transactions", DAY) == []  # no _SUCCESS yet: still being written
    (folder / ingest.READY).write_bytes(b"")
    assert [p.name for p in ingest.landed("transactions", DAY)] == ["part-0.parquet", "part-1.csv"]
    manifest = ingest.ingest_day(DAY)["transactions"]
    assert manifest["rows"] == len(events)
    assert sorted(manifest["source_files"]) == ["part-0.parquet", "part-1.csv"]
    raw = lake.read_parquet(lake.partition("raw", "transactions", DAY))
    pd.testing.assert_frame_equal(raw, events.reset_index(drop=True), check_dtype=False)

    (lake.zone("landing") / "transactions" / f"{DAY}.csv").write_bytes(datagen.to_csv_bytes(events))
    with pytest.raises(ingest.LandingError, match=r"transactions of 2026-10-05 landed twice"):
        ingest.ingest_day(DAY)


def test_integer_ids_in_parquet_land_as_strings(state):
    events, labels = datagen.generate_day(DAY)
    ev = events.assign(card_id=range(len(events)))
    lb = labels.iloc[0:0]
    for dataset, frame in (("transactions", ev), ("labels", lb)):
        path = lake.zone("landing") / dataset / f"{DAY}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lake.parquet_bytes(frame))
    ingest.ingest_day(DAY)
    raw = lake.read_parquet(lake.partition("raw", "transactions", DAY))
    assert raw["card_id"].head(3).tolist() == ["0", "1", "2"]


def test_a_scheduled_ingest_skips_a_silent_feed_and_a_backfill_waits(state):
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

    from lifecycle import landing

    assert "nothing has landed under" in landing.silent(DAY)
    datagen.land(DAY)
    folder = lake.zone("landing") / "transactions" / (DAY + dt.timedelta(days=9)).isoformat()
    folder.mkdir(parents=True, exist_ok=True)  # being written: no _SUCCESS, not a landed day
    assert ingest.landed_days("transactions") == [DAY]
    assert landing.silent(DAY) is None
    assert landing.silent(DAY + dt.timedelta(days=7)) is None  # a late delivery is still waited for
    why = landing.silent(DAY + dt.timedelta(days=8))
    assert why.startswith(f"the latest day landed under {lake.zone('landing') / 'transactions'} is {DAY}, 8 days")
    sensor = landing.LandingSensor(task_id="wait_for_files", timeout_minutes=1, poke_seconds=1)
    later = pd.Timestamp(DAY + dt.timedelta(days=8), tz="UTC")
    with pytest.raises(AirflowSkipException, match=r"scheduled run for .* skipped: the latest day landed"):
        sensor.execute({"data_interval_start": later, "dag_run": SimpleNamespace(run_type="scheduled")})
    with pytest.raises(TaskDeferred):  # a backfill waits for its day
        sensor.execute({"data_interval_start": later, "dag_run": SimpleNamespace(run_type="backfill")})
    assert sensor.execute({"data_interval_start": pd.Timestamp(DAY, tz="UTC"), "dag_run": None}) is None
