import datetime as dt

import pandas as pd

from lifecycle import datagen, features, ingest, settings, training
from lifecycle.feature_store import get_store

DAY = dt.date(2026, 10, 10)


def _tx(rows):
    return pd.DataFrame(rows, columns=["card_id", "merchant_id", "amount", "channel", "country", "event_timestamp"]) \
        .assign(event_timestamp=lambda f: pd.to_datetime(f["event_timestamp"], utc=True))


def test_snapshot_aggregates_the_seven_days_ending_with_the_day():
    tx = _tx([
        ("c1", "m1", 10.0, "online", "US", "2026-10-10T10:00:00Z"),
        ("c1", "m1", 30.0, "pos", "GB", "2026-10-04T10:00:00Z"),
        ("c1", "m2", 99.0, "pos", "US", "2026-10-03T23:59:59Z"),  # 8th day back: outside the window
        ("c2", "m2", 5.0, "pos", "US", "2026-10-11T00:00:00Z"),   # the next day: not yet known
    ])
    snap = features.snapshot(tx, DAY)
    card = snap["card_stats"].set_index("card_id")
    assert list(card.index) == ["c1"]
    assert card.loc["c1", "card_txn_count_7d"] == 2 and card.loc["c1", "card_txn_count_1d"] == 1
    assert card.loc["c1", "card_avg_amount_7d"] == 20.0 and card.loc["c1", "card_max_amount_7d"] == 30.0
    assert card.loc["c1", "card_online_share_7d"] == 0.5 and card.loc["c1", "card_country_count_7d"] == 2
    assert (snap["card_stats"]["event_timestamp"] == pd.Timestamp("2026-10-11T00:00:00Z")).all()
    assert snap["merchant_stats"].set_index("merchant_id").loc["m1", "merchant_txn_count_7d"] == 2


def test_late_day_rebuilds_every_snapshot_whose_window_holds_it():
    curated = [dt.date(2026, 10, d) for d in range(1, 20)]
    assert features.affected_days([dt.date(2026, 10, 5)], curated) == [dt.date(2026, 10, d) for d in range(5, 12)]
    assert features.affected_days([dt.date(2026, 10, 19)], curated) == [dt.date(2026, 10, 19)]


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
    online = get_store().get_online_features(features=["card_stats:card_avg_amount_7d"],
                                             entity_rows=[{"card_id": "c00001"}]).to_dict()
    latest = features.snapshot(training.lake.read_range("curated", "transactions", days[0], days[-1]),
                               days[-1])["card_stats"].set_index("card_id")
    assert online["card_avg_amount_7d"][0] == latest.loc["c00001", "card_avg_amount_7d"]
    datagen.land(days[0], "drifted")  # the day is corrected upstream and re-landed
    ingest.ingest_day(days[0])
    validation.validate_day(days[0])
    assert features.pending_days() == [days[0]]


def test_point_in_time_join_keeps_every_labeled_row_and_never_leaks(world):
    rows = training.labeled_transactions(pd.Timestamp.now(tz="UTC"))
    joined = training.point_in_time_features(rows)
    assert len(joined) == len(rows) and joined["transaction_id"].is_unique
    first_day = joined["event_timestamp"].dt.date == world[0]
    assert joined.loc[first_day, "card_avg_amount_7d"].isna().all()  # nothing was known before day 1
    later = joined[~first_day].dropna(subset=["card_avg_amount_7d"])
    assert len(later) > 0.7 * (~first_day).sum()
    # no leak: the features of a day-D transaction equal the snapshot stamped at the end of D-1
    sample = later.iloc[len(later) // 2]
    day = sample["event_timestamp"].date()
    snap = features.snapshot(training.lake.read_range("curated", "transactions", world[0], day),
                             day - dt.timedelta(days=1))["card_stats"].set_index("card_id")
    assert sample["card_avg_amount_7d"] == snap.loc[sample["card_id"], "card_avg_amount_7d"]


def test_online_store_serves_the_latest_snapshot_and_unknown_cards_as_missing(world):
    store = get_store()
    service = store.get_feature_service(settings.load().feature_service)
    got = store.get_online_features(features=service, entity_rows=[
        {"card_id": "c00001", "merchant_id": "m0001"}, {"card_id": "nobody", "merchant_id": "m0001"}]).to_dict()
    snap = features.snapshot(training.lake.read_range("curated", "transactions", world[0], world[-1]), world[-1])
    cards, merchants = snap["card_stats"].set_index("card_id"), snap["merchant_stats"].set_index("merchant_id")
    assert got["card_avg_amount_7d"][0] == cards.loc["c00001", "card_avg_amount_7d"]
    assert got["card_avg_amount_7d"][1] is None  # the unknown card; its known merchant is still served
    assert got["merchant_avg_amount_7d"] == [merchants.loc["m0001", "merchant_avg_amount_7d"]] * 2
