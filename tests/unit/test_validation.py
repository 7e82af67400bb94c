import datetime as dt

import pandas as pd
import pytest
from usecases.fraud import datagen as fraud_datagen

from conftest import land_days
from lifecycle import ingest, lake, validation
from lifecycle.devtools import datagen

DAY = dt.date(2026, 10, 5)


def validation_page(dataset: str, day: dt.date) -> str:
    """The text of a day's Data Docs validation result page, which the docs' index links."""
    import html
    import re

    folder = lake.zone("reports") / "data_quality" / dataset / day.isoformat()
    [page] = [p for p in folder.rglob("*.html") if "/validations/" in p.path]
    assert page.path.removeprefix(folder.path.rstrip("/") + "/") in (folder / "index.html").read_text()
    markup = re.sub(r"<(style|script).*?</\1>", " ", page.read_text(), flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def test_normal_batch_passes_to_curated_with_data_docs(state):
    land_days(DAY, 1)
    assert validation.pending_days() == [DAY]
    outcomes = validation.validate_day(DAY)
    assert validation.pending_days() == []
    assert [(o.dataset, o.success) for o in outcomes] == [("transactions", True), ("labels", True)]
    assert lake.dates("curated", "transactions") == [DAY] == lake.dates("curated", "labels")
    assert lake.manifest(lake.partition("curated", "transactions", DAY))["validated"] is True
    for dataset in ("transactions", "labels"):
        page = validation_page(dataset, DAY)
        assert f"Expectation Suite: {dataset} " in page and "Status: Succeeded " in page
        assert "Unsuccessful Expectations 0 " in page and "Success Percent 100% " in page
    assert "data_quality/transactions/2026-10-05/index.html" in (lake.zone("reports") / "index.html").read_text()


def test_corrupt_batch_is_quarantined_and_every_broken_rule_named(state):
    land_days(DAY, 1, "corrupt")
    tx, _ = datagen.generate_day(DAY, "corrupt")
    with pytest.raises(validation.QualityGateError) as err:
        validation.validate_day(DAY)
    msg = str(err.value)
    assert validation.pending_days() == []  # quarantined, not pending forever
    dup_ids = tx["transaction_id"].duplicated(keep=False).sum()
    for expected in (
        "expect_table_columns_to_match_set",
        f"expect_column_values_to_not_be_null(merchant_id): {tx['merchant_id'].isna().sum()} unexpected",
        f"expect_column_values_to_be_unique(transaction_id): {dup_ids} unexpected",
        f"expect_column_values_to_be_between(amount): {(tx['amount'] < 0).sum()} unexpected",
        f"expect_column_values_to_be_in_set(merchant_category): "
        f"{(tx['merchant_category'] == 'casino').sum()} unexpected",
        f"expect_column_values_to_be_between(event_timestamp): "
        f"{(tx['event_timestamp'] == fraud_datagen.FUTURE).sum()} unexpected",
    ):
        assert expected in msg, expected
    assert lake.dates("curated", "transactions") == [] and lake.dates("curated", "labels") == []
    assert lake.dates("quarantine", "transactions") == [DAY] == lake.dates("quarantine", "labels")
    assert lake.dates("raw", "transactions") == []  # moved, not copied
    kept = lake.read_parquet(lake.partition("quarantine", "transactions", DAY))
    assert len(kept) == 3030  # quarantined data is kept whole
    failures = lake.manifest(lake.partition("quarantine", "transactions", DAY))["failures"]
    assert {f["column"] for f in failures} >= {"merchant_id", "amount", "transaction_id", "event_timestamp"}
    page = validation_page("transactions", DAY)  # the Data Docs say the same as the manifest
    assert "Status: Failed " in page and f"Unsuccessful Expectations {len(failures)} " in page
    assert f"{(tx['amount'] < 0).sum()} unexpected values found" in page
    # the retry of an attempt killed after it quarantined the batch fails the same way, naming the rules
    with pytest.raises(validation.QualityGateError, match="already quarantined.*expect_column_values_to_be_unique"):
        validation.validate_day(DAY)
    assert lake.dates("quarantine", "transactions") == [DAY] and lake.dates("curated", "transactions") == []


def test_too_few_rows_fail_the_row_count_rule(state, monkeypatch):
    land_days(DAY, 1)
    monkeypatch.setenv("LIFECYCLE_MIN_ROWS_PER_DAY", "5000")
    with pytest.raises(validation.QualityGateError, match="expect_table_row_count_to_be_between"):
        validation.validate_day(DAY)


def test_missing_raw_partition_is_a_clear_error(state):
    with pytest.raises(FileNotFoundError, match="raw partition .*date=2026-10-05 is missing"):
        validation.validate_day(DAY)


def test_labels_of_earlier_curated_days_pass_and_a_label_for_an_unknown_transaction_is_named(state):
    days = land_days(DAY, 2)
    for day in days:
        validation.validate_day(day)
    labels = lake.read_parquet(lake.partition("curated", "labels", days[1]))
    assert labels["transaction_id"].str.startswith(f"t{days[0]:%Y%m%d}").sum() > 500  # labels of the day before
    assert validation.EVENT_TIME not in labels  # the join is the gate's, not the data's
    # the next day lands a label for a transaction no curated day holds
    nxt = days[1] + dt.timedelta(days=1)
    datagen.land(nxt)
    landed = pd.read_csv(lake.landing_file("labels", nxt).open("rb"))
    bad = pd.DataFrame({"transaction_id": ["t_unknown_1"], "is_fraud": [1], "labeled_at": [f"{nxt}T08:00:00Z"]})
    lake.landing_file("labels", nxt).write_bytes(pd.concat([landed, bad]).to_csv(index=False).encode())
    ingest.ingest_day(nxt)
    with pytest.raises(validation.QualityGateError) as err:
        validation.validate_day(nxt)
    assert "expect_column_values_to_not_be_null(curated_event_time) [referential integrity" in str(err.value)
    assert ": 1 unexpected" in str(err.value).split("referential integrity")[1].split(";")[0]
    assert lake.dates("curated", "labels") == days and lake.dates("quarantine", "labels") == [nxt]


def test_a_label_known_before_its_transaction_is_named(state):
    days = land_days(DAY, 1)
    validation.validate_day(days[0])
    nxt = DAY + dt.timedelta(days=1)
    datagen.land(nxt)
    tx = pd.read_csv(lake.landing_file("transactions", nxt).open("rb"))
    landed = pd.read_csv(lake.landing_file("labels", nxt).open("rb"))
    early = pd.DataFrame(
        {"transaction_id": [tx["transaction_id"].iloc[-1]], "is_fraud": [0], "labeled_at": [f"{nxt}T00:00:01Z"]}
    )  # the day's last transaction is in the evening
    lake.landing_file("labels", nxt).write_bytes(pd.concat([landed, early]).to_csv(index=False).encode())
    ingest.ingest_day(nxt)
    with pytest.raises(
        validation.QualityGateError,
        match=r"expect_column_pair_values_a_to_be_greater_than_b\(labeled_at\) "
        r"\[a label is known after its event\]: 1 unexpected",
    ):
        validation.validate_day(nxt)


def test_days_are_gated_oldest_first_and_a_day_waits_for_an_earlier_landed_one(state):
    days = land_days(DAY, 3)
    assert [(r["date"], r["status"]) for r in validation.gate_days(days[::-1])] == [
        (d.isoformat(), "curated") for d in days
    ]  # day 2's labels met day 1's curated transactions
    later = [days[-1] + dt.timedelta(days=i) for i in (1, 2)]
    datagen.land(later[0])  # landed, not ingested yet (backfills ingest days in any order)
    land_days(later[1], 1)
    [result] = validation.gate_days([later[1]])
    assert result == {
        "date": later[1].isoformat(),
        "status": "waiting",
        "detail": f"waits for {later[0].isoformat()} to be gated first",
    }
    assert validation.pending_days() == [later[1]]  # left pending for the run that gates both
    ingest.ingest_day(later[0])
    assert [r["status"] for r in validation.gate_days(validation.pending_days())] == ["curated", "curated"]


def test_days_landed_while_a_run_gates_are_gated_by_that_run(state, monkeypatch):
    """A backfill's other runs land their days while the first day's validate run gates: that run
    gates them too, so one curated_events event names them all and the next run finds nothing."""
    first, second = land_days(DAY, 1)[0], DAY + dt.timedelta(days=1)
    datagen.land(second)
    validate_day = validation.validate_day

    def another_run_lands_meanwhile(day):
        if day == first:
            ingest.ingest_day(second)
        return validate_day(day)

    monkeypatch.setattr(validation, "validate_day", another_run_lands_meanwhile)
    assert [(r["date"], r["status"]) for r in validation.gate_until_drained([first])] == [
        (first.isoformat(), "curated"),
        (second.isoformat(), "curated"),
    ]
    assert validation.pending_days() == [] and validation.gate_until_drained([]) == []
    later = [second + dt.timedelta(days=i) for i in (1, 2)]
    datagen.land(later[0])  # landed, not ingested: the day after it waits, and the run ends
    land_days(later[1], 1)
    assert [(r["date"], r["status"]) for r in validation.gate_until_drained([later[1]])] == [
        (later[1].isoformat(), "waiting")
    ]


def test_a_day_an_earlier_run_gated_is_not_gated_again_unless_it_was_quarantined(state):
    """The next run's raw_events events name days the first run already gated: only a day that
    is not gated as landed stays (a quarantined one, so the run it woke fails naming it)."""
    from lifecycle.dag_defaults import days_to_process

    good, bad = land_days(DAY, 1)[0], land_days(DAY + dt.timedelta(days=1), 1, "corrupt")[0]
    validation.gate_days([good, bad])
    named = [good.isoformat(), bad.isoformat()]
    assert validation.not_regated(named, validation.pending_days()) == [bad.isoformat()]

    class Event:
        extra, timestamp = {"dates": named}, 0

    events = {"raw_events": [Event()]}
    asked = {"dates": [good.isoformat()]}  # a manual run's dates are gated again
    assert days_to_process([], {"dates": []}, events, "raw_events", validation.not_regated) == [bad.isoformat()]
    assert days_to_process([], asked, events, "raw_events", validation.not_regated) == named
    assert days_to_process([], {"dates": []}, events, "raw_events") == named
