import datetime as dt

import pandas as pd
import pytest

from lifecycle import contract, features, ingest, point_in_time, training
from lifecycle.devtools import datagen
from lifecycle.feature_store import get_store

DAY = dt.date(2026, 10, 10)
UC = contract.current()


def _tx(rows):
    return pd.DataFrame(
        rows, columns=["card_id", "merchant_id", "amount", "channel", "country", "event_timestamp"]
    ).assign(event_timestamp=lambda f: pd.to_datetime(f["event_timestamp"], utc=True))


def test_snapshot_aggregates_the_seven_days_ending_with_the_day():
    tx = _tx(
        [
            ("c1", "m1", 10.0, "online", "US", "2026-10-10T10:00:00Z"),
            ("c1", "m1", 30.0, "pos", "GB", "2026-10-04T10:00:00Z"),
            ("c1", "m2", 99.0, "pos", "US", "2026-10-03T23:59:59Z"),  # 8th day back: outside the window
            ("c2", "m2", 5.0, "pos", "US", "2026-10-11T00:00:00Z"),  # the next day: not yet known
        ]
    )
    snap = features.snapshot(tx, DAY, UC)
    card = snap["card_stats"].set_index("card_id")
    assert list(card.index) == ["c1"]
    assert card.loc["c1", "card_txn_count_7d"] == 2 and card.loc["c1", "card_txn_count_1d"] == 1
    assert card.loc["c1", "card_avg_amount_7d"] == 20.0 and card.loc["c1", "card_max_amount_7d"] == 30.0
    assert card.loc["c1", "card_online_share_7d"] == 0.5 and card.loc["c1", "card_country_count_7d"] == 2
    assert (snap["card_stats"]["event_timestamp"] == pd.Timestamp("2026-10-11T00:00:00Z")).all()
    assert snap["merchant_stats"].set_index("merchant_id").loc["m1", "merchant_txn_count_7d"] == 2


def test_late_day_rebuilds_every_snapshot_whose_window_holds_it():
    curated = [dt.date(2026, 10, d) for d in range(1, 20)]
    assert features.affected_days([dt.date(2026, 10, 5)], curated, 7) == [dt.date(2026, 10, d) for d in range(5, 12)]
    assert features.affected_days([dt.date(2026, 10, 19)], curated, 7) == [dt.date(2026, 10, 19)]


def test_pending_days_are_curated_days_without_an_up_to_date_snapshot(state):
    from conftest import land_days
    from lifecycle import validation

    days = land_days(DAY, 2)
    for day in days:
        validation.validate_day(day)
    assert features.pending_days() == days
    assert features.build_tables(features.pending_days()) == days
    assert features.pending_days() == []
    # a late change to the first day reloads every later snapshot too: the newest stays online
    assert features.materialize(days[:1]) == days
    online = (
        get_store()
        .get_online_features(features=["card_stats:card_avg_amount_7d"], entity_rows=[{"card_id": "c00001"}])
        .to_dict()
    )
    latest = features.snapshot(training.lake.read_range("curated", "transactions", days[0], days[-1]), days[-1], UC)[
        "card_stats"
    ].set_index("card_id")
    assert online["card_avg_amount_7d"][0] == latest.loc["c00001", "card_avg_amount_7d"]
    datagen.land(days[0], "drifted")  # the day is corrected upstream and re-landed
    ingest.ingest_day(days[0])
    validation.validate_day(days[0])
    assert features.pending_days() == [days[0]]


def test_point_in_time_join_keeps_every_labeled_row_and_never_leaks(world):
    rows = training.labeled_events(pd.Timestamp.now(tz="UTC"))
    joined = point_in_time.features(rows)
    assert len(joined) == len(rows) and joined["transaction_id"].is_unique
    first_day = joined["event_timestamp"].dt.date == world[0]
    assert joined.loc[first_day, "card_avg_amount_7d"].isna().all()  # nothing was known before day 1
    later = joined[~first_day].dropna(subset=["card_avg_amount_7d"])
    assert len(later) > 0.7 * (~first_day).sum()
    # no leak: the features of a day-D transaction equal the snapshot stamped at the end of D-1
    sample = later.iloc[len(later) // 2]
    day = sample["event_timestamp"].date()
    snap = features.snapshot(
        training.lake.read_range("curated", "transactions", world[0], day),
        day - dt.timedelta(days=1),
        UC,
    )["card_stats"].set_index("card_id")
    assert sample["card_avg_amount_7d"] == snap.loc[sample["card_id"], "card_avg_amount_7d"]


def test_events_sharing_a_card_and_a_second_keep_their_features_and_a_rebuild_is_the_same_bytes(world):
    """The generator's collisions (a card used twice in one second, batch-settling merchants) reach
    the training set with their features; the same days and cutoff give the same training set."""
    cutoff = pd.Timestamp(world[-1], tz="UTC") + pd.Timedelta(days=1)
    one = training.build_training_set("test__same_days_a", cutoff)
    two = training.build_training_set("test__same_days_b", cutoff)
    assert one["digest"] == two["digest"] and one["uri"] != two["uri"]
    rows = pd.concat([training.load_part(one["uri"], part) for part in training.PARTS], ignore_index=True)
    after_first = rows["event_timestamp"].dt.date > world[0]
    for key, feature in (("card_id", "card_avg_amount_7d"), ("merchant_id", "merchant_avg_amount_7d")):
        shared = rows.duplicated([key, "event_timestamp"], keep=False) & after_first
        assert shared.sum() > 20, key
        # rows of one entity at one instant get one value: all present or all missing, never split
        split = rows[shared].groupby([key, "event_timestamp"])[feature].agg(lambda v: v.notna().nunique())
        assert (split == 1).all(), key
    assert rows.loc[after_first, "merchant_avg_amount_7d"].notna().all()  # every merchant trades every day


def test_online_store_serves_the_latest_snapshot_and_unknown_cards_as_missing(world):
    store = get_store()
    service = store.get_feature_service(UC.feature_service)
    got = store.get_online_features(
        features=service,
        entity_rows=[{"card_id": "c00001", "merchant_id": "m0001"}, {"card_id": "nobody", "merchant_id": "m0001"}],
    ).to_dict()
    snap = features.snapshot(training.lake.read_range("curated", "transactions", world[0], world[-1]), world[-1], UC)
    cards, merchants = snap["card_stats"].set_index("card_id"), snap["merchant_stats"].set_index("merchant_id")
    assert got["card_avg_amount_7d"][0] == cards.loc["c00001", "card_avg_amount_7d"]
    assert got["card_avg_amount_7d"][1] is None  # the unknown card; its known merchant is still served
    assert got["merchant_avg_amount_7d"] == [merchants.loc["m0001", "merchant_avg_amount_7d"]] * 2


def test_the_offline_store_reads_the_relative_sources_under_the_profiles_lake_root(state, monkeypatch):
    import yaml
    from feast import FileSource
    from feast.repo_config import RepoConfig

    from lifecycle import feature_store, lake
    from lifecycle.lake_offline_store import located

    source = FileSource(name="card_stats_source", path="features/card_stats", timestamp_field="event_timestamp")
    config = get_store().config
    # where build_tables writes the table
    assert located(config, source).path == lake.local_path(lake.zone("features") / "card_stats")
    absolute = FileSource(name="elsewhere", path=str(state / "elsewhere"), timestamp_field="event_timestamp")
    assert located(config, absolute) is absolute
    for key, value in {
        "PROFILE": "scaleout",
        "S3_ENDPOINT_URL": "http://minio:9000",
        "S3_BUCKET": "ml-lake",
        "S3_ACCESS_KEY": "AK",
        "S3_SECRET_KEY": "SK",
    }.items():
        monkeypatch.setenv(f"LIFECYCLE_{key}", value)
    config = RepoConfig(**yaml.safe_load(feature_store.render()))  # Feast's own reading of the scale-out file
    on_s3 = located(config, source)
    assert (on_s3.path, on_s3.s3_endpoint_override) == ("s3://ml-lake/lake/features/card_stats", "http://minio:9000")
    assert source.path == "features/card_stats"  # the definition itself is left as it is


def test_the_feature_repo_imports_with_no_settings_and_no_project():
    import os
    import subprocess
    import sys

    # An installed project is importable from any folder: the probe refuses it outright.
    probe = (
        "import importlib.abc, sys\n"
        "class NoProject(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('lifecycle', 'usecases'):\n"
        "            raise ImportError(name + ' imported by the feature repo')\n"
        "sys.meta_path.insert(0, NoProject())\n"
        "sys.path.insert(0, '.')\n"
        "import definitions\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('lifecycle', 'usecases')]\n"
        "print(definitions.fraud_model.name, definitions.card_source.path, definitions.merchant_source.path)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "PYTHON"))}
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=UC.feature_repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [UC.feature_service, "features/card_stats", "features/merchant_stats"]


def test_feast_plan_on_the_repo_with_the_rendered_config_sees_what_the_library_applied(state):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT
    from lifecycle.feature_store import store_yaml_path

    features.apply_definitions(get_store())  # an empty lake: the declared entity columns need no data
    # the CLI imports the offline store the config names, lifecycle.lake_offline_store
    paths = [str(ROOT / "include"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "feast"), "-f", str(store_yaml_path()), "plan"],
        cwd=UC.feature_repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes to registry" in done.stdout and "No changes to infrastructure" in done.stdout, done.stdout


def test_a_label_snapshot_sees_only_the_labels_known_before_its_stamp():
    """An aggregate over labels (an entity's recent outcome rate) counts a label only when it was
    known before the snapshot's end (the stamp a point-in-time join compares with a row's time),
    and only for events inside its own window."""
    import dataclasses

    def outcomes(labeled, last_day):
        known = labeled[labeled["is_fraud"].notna()]
        return {"card_outcomes": known.groupby("card_id").agg(n=("is_fraud", "size"), rate=("is_fraud", "mean"))}

    uc = dataclasses.replace(contract.current(), label_snapshot=outcomes, label_window_days=2)
    day = dt.date(2026, 10, 5)
    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    at = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731
    events = (
        datagen.generate_day(day)[0]
        .head(5)
        .assign(
            **{
                "transaction_id": ["old", "t1", "t2", "t3", "t4"],
                "card_id": ["c"] * 5,
                "event_timestamp": [
                    at("2026-10-03 12:00"),
                    at("2026-10-04 09:00"),
                    at("2026-10-05 08:00"),
                    at("2026-10-05 20:00"),
                    at("2026-10-05 23:00"),
                ],
            }
        )
    )
    labels = pd.DataFrame(
        {
            "transaction_id": ["old", "t1", "t2", "t3", "t4"],
            "is_fraud": [1, 1, 0, 1, 1],
            # t3 known one second before the end, t4 exactly at it: t4 is not known yet
            "labeled_at": [
                at("2026-10-03 13:00"),
                at("2026-10-04 10:00"),
                at("2026-10-05 09:00"),
                end - pd.Timedelta(seconds=1),
                end,
            ],
        }
    )
    got = features.snapshot(events, day, uc, labels)["card_outcomes"]
    assert got.loc["c", "n"] == 3 and got.loc["c", "rate"] == pytest.approx(2 / 3)  # t1, t2, t3; not old, not t4
    assert (got[features.STAMP] == end).all()
    assert features.span_days(uc) == max(uc.window_days, 2)
