"""Erasure, proven after the loop ran: three cards' rows leave every file, key and log row of the
state folder (searched decoded by ``devtools.trace``, independent of the erasure), Feast and the
live service answer them as unknown, the next training set has none of their rows, the ledger's
counts are the ones counted here, and every other entity's data is what it was."""

import csv
import datetime as dt
import io
import json
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from airflow.dag_processing.dagbag import DagBag
from dagruns import states, xcom

from conftest import ROOT, land_days, world_from
from lifecycle import (
    erasure,
    feature_store,
    features,
    lake,
    packaging,
    prediction_reader,
    promotion,
    pseudonym,
    scoring,
    settings,
    tracking,
    training,
    validation,
)
from lifecycle.devtools import trace
from lifecycle.platform import setup

CARDS = 3
SESSION = Path(os.environ["LIFECYCLE_STATE_DIR"])  # where dag.test() keeps its runs: the session's Airflow


@pytest.fixture(scope="module")
def world(tmp_path_factory, featurized_template):
    """Six featurized days, a quarantined day, a released model, batch scores, and a live service
    that answered every event of the last day (its log flushed)."""
    state = tmp_path_factory.mktemp("erasure")
    setup.main()  # the session's Airflow database: the one Airflow's ORM was configured with
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(state))
        days = world_from(featurized_template, 6)
        corrupt = land_days(days[-1] + dt.timedelta(days=1), 1, "corrupt")[0]
        with pytest.raises(validation.QualityGateError):
            validation.validate_day(corrupt)  # quarantined, with its Data Docs
        info = training.build_training_set("erasure__1", pd.Timestamp.now(tz="UTC"))
        parent = training.start_parent_run("erasure__v1", info, "test")
        result = training.train_candidate("sklearn_logistic", info, parent, seed=7)
        version = str(training.register_best([result], info, "erasure__v1", "test")["version"])
        promotion.release(version, force=True)
        scoring.score_days(days[-2:])
        events = lake.read_parquet(lake.partition("curated", "transactions", days[-1]))
        cards = list(events["card_id"].value_counts().index[:CARDS])  # cards with events in every zone
        env = {"LIFECYCLE_STATE_DIR": str(state), "LIFECYCLE_SERVING_POLL_SECONDS": "0.5"}
        with packaging.serving(packaging.SERVICE, env) as base:
            key = settings.load().serving_api_key()
            bodies = packaging.request_bodies(events)
            for i in range(0, len(bodies), 500):
                code, _ = packaging.post(f"{base}/predict_batch", {"events": bodies[i : i + 500]}, key)
                assert code == 200
            _wait_logged(len(bodies))
            yield {"state": state, "days": days, "corrupt": corrupt, "cards": cards, "base": base, "key": key}


def _wait_logged(rows: int) -> None:
    deadline = time.monotonic() + 30
    while len(prediction_reader.read(source="live")) < rows and time.monotonic() < deadline:
        time.sleep(0.5)


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _expected(lake_files: dict[str, bytes], cards: set[str]) -> tuple[dict, set[str]]:
    """Rows of the cards, and of their events' labels, per zone and partition (or landing file),
    counted from the files themselves: Parquet with pyarrow, CSV with the csv module."""
    tables, csvs = {}, {}
    for name, data in lake_files.items():
        if name.endswith(".parquet") and not name.startswith(("predictions/", "erasures/")):
            tables[name] = pq.read_table(io.BytesIO(data))
        elif name.startswith("landing/") and name.endswith(".csv"):
            csvs[name] = list(csv.DictReader(io.StringIO(data.decode())))
    events = set()
    for t in tables.values():
        if {"card_id", "transaction_id"} <= set(t.column_names):
            mask = pc.is_in(t["card_id"].cast(pa.string()), pa.array(sorted(cards)))
            events |= set(t.filter(mask)["transaction_id"].to_pylist())
    for rows in csvs.values():
        events |= {r["transaction_id"] for r in rows if r.get("card_id") in cards}
    counts: dict[str, dict[str, int]] = {}
    for name, t in tables.items():
        zone, rest = name.split("/", 1)
        part = rest.rsplit("/", 1)[0]
        n = sum(
            pc.sum(pc.is_in(t[c].cast(pa.string()), pa.array(sorted(v)))).as_py() or 0
            for c, v in (("card_id", cards), ("transaction_id", events))
            if c in t.column_names and not (c == "transaction_id" and "card_id" in t.column_names)
        )
        if n:
            counts.setdefault(zone, {})
            counts[zone][part] = counts[zone].get(part, 0) + n
    for name, rows in csvs.items():
        n = sum(
            1 for r in rows if r.get("card_id") in cards or (r.get("transaction_id") in events and "card_id" not in r)
        )
        if n:
            counts.setdefault("landing", {})[name.removeprefix("landing/")] = n
    return counts, events


@pytest.fixture(scope="module")
def erased(world, tmp_path_factory):
    """The erase DAG run for the three cards (ids in a file outside the state folder), with the lake before it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
        bag = DagBag(dag_folder=str(ROOT / "dags"), include_examples=False)
        assert bag.import_errors == {}
        before = _files(world["state"] / "lake")
        held = trace.holding(world["state"], world["cards"])  # where they were: the searcher finds them
        hashed = pseudonym.of(settings.load()).many(world["cards"])
        logged = prediction_reader.read()
        logged = int(logged["card_id"].isin(hashed).sum())  # each of their events' rows names the card
        request = tmp_path_factory.mktemp("request") / "ids.txt"
        request.write_text("\n".join(world["cards"]) + "\n")
        started = time.monotonic()
        run = bag.dags["erase"].test(run_conf={"ids_file": str(request), "reason": "test request 1"})
        took = time.monotonic() - started
        return {
            "run": run,
            "before": before,
            "held": held,
            "logged": logged,
            "request": request,
            "bag": bag,
            "seconds": took,
        }


def test_the_erasure_succeeds_consumes_its_request_and_records_pseudonyms_only(world, erased, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    run = erased["run"]
    assert run.state == "success", states(run)
    assert states(run) == {"erase_rows": "success", "record": "success"}
    assert not erased["request"].exists()  # the request's file goes once its ids are erased
    [record] = erasure.ledger()
    names = pseudonym.of(settings.load())
    assert record["ids"] == sorted(names.many(world["cards"])) and record["entity"] == "card_id"
    assert record["reason"] == "test request 1" and record["key_id"] == names.key_id
    assert not any(c in json.dumps(record) for c in world["cards"])
    assert xcom(run, "erase_rows") == record


def test_no_file_of_the_state_folder_holds_the_cards_ids(world, erased):
    zones = {name.split("/")[1] for name in erased["held"] if name.startswith("lake/")}
    assert {"landing", "raw", "curated", "quarantine", "features", "training"} <= zones, erased["held"]
    assert "predictions" not in zones  # the log never held a raw id: it keeps pseudonyms
    assert "feast/online.db" in erased["held"]
    found = trace.holding(world["state"], world["cards"])
    assert found == {}, found
    found = trace.holding(SESSION / "airflow", world["cards"])  # the erase run's conf, XComs and logs
    assert found == {}, found


def test_the_ledger_counts_what_was_there_and_other_data_is_unchanged(world, erased, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    cards = set(world["cards"])
    expected, events = _expected(erased["before"], cards)
    [record] = erasure.ledger()
    lake_zones = {z: parts for z, parts in record["removed"].items() if z not in ("predictions", "reports", "alerts")}
    assert lake_zones == expected
    assert {"landing", "raw", "curated", "quarantine", "features", "training"} <= set(expected)
    assert record["events"] == len(events) > 0
    assert record["rows"]["predictions"] == erased["logged"] > 0  # live and batch rows, by their pseudonyms
    after = _files(world["state"] / "lake")
    # every manifest describes its partition as it is now: nothing downstream is rebuilt
    assert validation.pending_days() == [] and features.pending_days() == []
    for zone in ("raw", "curated", "features"):
        for name in [n for n in after if n.startswith(f"{zone}/") and n.endswith(lake.MANIFEST)]:
            manifest = json.loads(after[name])
            data = after.get(name.replace(lake.MANIFEST, "data.parquet"))
            assert data is None or manifest["data_sha256"] == lake.sha256(data), name
    for name, data in erased["before"].items():
        if name.startswith(("predictions/", "reports/", "alerts/")) or name.endswith(lake.MANIFEST):
            continue
        if name not in after:
            raise AssertionError(f"{name} is gone")
        if name.endswith(".parquet"):
            old, new = pq.read_table(io.BytesIO(data)), pq.read_table(io.BytesIO(after[name]))
            keep = pa.array([True] * old.num_rows)
            for column, values in (("card_id", cards), ("transaction_id", events)):
                if column in old.column_names:
                    keep = pc.and_(keep, pc.invert(pc.is_in(old[column].cast(pa.string()), pa.array(sorted(values)))))
            assert new.equals(old.filter(keep)), name  # other rows: the same values, types and order
            assert new.schema.metadata == old.schema.metadata, name
            if new.num_rows == old.num_rows:
                assert after[name] == data, name  # a file without their rows keeps its bytes
        elif name.endswith(".csv"):
            kept = [
                line
                for line, row in zip(
                    data.decode().splitlines(keepends=True)[1:], csv.DictReader(io.StringIO(data.decode())), strict=True
                )
                if row.get("card_id") not in cards and row.get("transaction_id") not in events
            ]
            assert after[name].decode().splitlines(keepends=True)[1:] == kept, name  # other lines byte for byte
        else:
            assert after[name] == data, name


def test_a_second_erasure_of_the_same_ids_changes_nothing_and_says_so(world, erased, monkeypatch, tmp_path):
    """(Before the service is asked about them again: rows it logs then are new, and a later erasure takes them.)"""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    lake_before = _files(world["state"] / "lake")
    run = (
        erased["bag"].dags["erase"].test(run_conf={"ids": ",".join(world["cards"]), "ids_file": "", "reason": "again"})
    )
    assert run.state == "success" and states(run) == {"erase_rows": "success", "record": "skipped"}
    summary = xcom(run, "erase_rows")
    assert summary["changed"] is False and summary["earlier"] == [erasure.ledger()[0]["erasure"]]
    assert len(erasure.ledger()) == 1
    assert "nothing left to erase" in erasure.describe(summary)
    after = _files(world["state"] / "lake")
    assert {k: v for k, v in after.items() if not k.startswith("predictions/")} == {
        k: v for k, v in lake_before.items() if not k.startswith("predictions/")
    }


def test_feast_and_the_live_service_answer_them_as_unknown(world, erased, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    store = feature_store.get_store()
    events = lake.read_parquet(lake.partition("curated", "transactions", world["days"][-2]))
    others = [c for c in events["card_id"].unique() if c not in world["cards"]][:3]
    online = store.get_online_features(
        features=["card_stats:card_txn_count_7d"], entity_rows=[{"card_id": c} for c in [*world["cards"], *others]]
    ).to_dict()
    assert online["card_txn_count_7d"][:CARDS] == [None] * CARDS
    assert all(v is not None for v in online["card_txn_count_7d"][CARDS:])
    day = world["days"][-1]
    bodies = [
        {**b, "card_id": card, "transaction_id": f"after-erasure-{card}", "event_timestamp": f"{day}T12:00:00Z"}
        for card, b in zip(world["cards"], packaging.request_bodies(events.head(CARDS)), strict=True)
    ]
    code, answers = packaging.post(f"{world['base']}/predict_batch", {"events": bodies}, world["key"])
    assert code == 200 and [a["known_card"] for a in answers] == [False] * CARDS


def test_the_log_and_the_next_training_set_have_none_of_their_rows(world, erased, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    names = pseudonym.of(settings.load())
    logged = prediction_reader.read()
    hashed = set(names.many(world["cards"]))
    later = set(names.many(f"after-erasure-{c}" for c in world["cards"]))  # asked after the erasure: new rows
    kept = logged[~logged["transaction_id"].isin(later)]
    assert len(kept) and not set(kept["card_id"]) & hashed
    info = training.build_training_set("erasure__2", pd.Timestamp.now(tz="UTC"))
    for part in ("train", "holdout"):
        rows = training.load_part(info["uri"], part)
        assert len(rows) and not set(rows["card_id"]) & set(world["cards"])


def test_versions_trained_on_them_are_tagged_and_retraining_is_asked_for(world, erased, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    [record] = erasure.ledger()
    mv = tracking.client().get_model_version(settings.load().model_name, "1")
    assert mv.tags["erased"] == record["erasure"]
    assert xcom(erased["run"], "record") == ["1"]
    with pytest.raises(training.ReproductionError, match=f"lost rows to erasure {record['erasure']}"):
        training.reproduce("1")
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:  # the event the train DAG is scheduled on
        [event] = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "data_erased")
        ).all()
        assert event.extra["erasure"] == record["erasure"] and event.extra["versions_tagged"] == ["1"]
        assert event.extra["rows"] == sum(record["rows"].values())


def test_a_request_without_ids_is_refused_naming_the_rule(world, monkeypatch, tmp_path):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    with pytest.raises(erasure.ErasureError, match="no ids given"):
        erasure.request_ids("", None)
    with pytest.raises(erasure.ErasureError, match="does not exist"):
        erasure.request_ids("", str(tmp_path / "missing.txt"))
    with pytest.raises(erasure.ErasureError, match="every id must be text"):
        erasure.request_ids([12], None)
    with pytest.raises(erasure.ErasureError, match="not one of the use case's"):
        erasure.Erasure("nobody_id", ["x"], "test")
    assert erasure.request_ids("a, b\nb", None) == ["a", "b"]
