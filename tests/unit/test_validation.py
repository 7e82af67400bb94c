import datetime as dt

import pytest

from conftest import land_days
from lifecycle import datagen, lake, validation

DAY = dt.date(2026, 10, 5)


def test_normal_batch_passes_to_curated_with_data_docs(state):
    land_days(DAY, 1)
    assert validation.pending_days() == [DAY]
    outcomes = validation.validate_day(DAY)
    assert validation.pending_days() == []
    assert [(o.dataset, o.success) for o in outcomes] == [("transactions", True), ("labels", True)]
    assert lake.dates("curated", "transactions") == [DAY] == lake.dates("curated", "labels")
    assert lake.manifest(lake.partition("curated", "transactions", DAY))["validated"] is True
    docs = lake.zone("reports") / "data_quality" / "transactions" / DAY.isoformat() / "index.html"
    assert docs.exists() and "<html" in docs.read_text().lower()
    assert "data_quality/transactions/2026-10-05/index.html" in (lake.zone("reports") / "index.html").read_text()


def test_corrupt_batch_is_quarantined_and_every_broken_rule_named(state):
    land_days(DAY, 1, "corrupt")
    tx, _ = datagen.generate_day(DAY, "corrupt")
    with pytest.raises(validation.QualityGateError) as err:
        validation.validate_day(DAY)
    msg = str(err.value)
    assert validation.pending_days() == []  # quarantined, not pending forever
    dup_ids = tx["transaction_id"].duplicated(keep=False).sum()
    for expected in ("expect_table_columns_to_match_set",
                     f"expect_column_values_to_not_be_null(merchant_id): {tx['merchant_id'].isna().sum()} unexpected",
                     f"expect_column_values_to_be_unique(transaction_id): {dup_ids} unexpected",
                     f"expect_column_values_to_be_between(amount): {(tx['amount'] < 0).sum()} unexpected",
                     f"expect_column_values_to_be_in_set(merchant_category): "
                     f"{(tx['merchant_category'] == 'casino').sum()} unexpected",
                     f"expect_column_values_to_be_between(event_timestamp): "
                     f"{(tx['event_timestamp'] == datagen.FUTURE).sum()} unexpected"):
        assert expected in msg, expected
    assert lake.dates("curated", "transactions") == [] and lake.dates("curated", "labels") == []
    assert lake.dates("quarantine", "transactions") == [DAY] == lake.dates("quarantine", "labels")
    assert lake.dates("raw", "transactions") == []  # moved, not copied
    kept = lake.read_parquet(lake.partition("quarantine", "transactions", DAY))
    assert len(kept) == 3030  # quarantined data is kept whole
    failures = lake.manifest(lake.partition("quarantine", "transactions", DAY))["failures"]
    assert {f["column"] for f in failures} >= {"merchant_id", "amount", "transaction_id", "event_timestamp"}
    assert (lake.zone("reports") / "data_quality" / "transactions" / DAY.isoformat() / "index.html").exists()
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
