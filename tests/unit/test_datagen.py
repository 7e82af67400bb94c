import datetime as dt

import pytest

from lifecycle import datagen
from lifecycle.schema import TRANSACTION_COLUMNS

DAY = dt.date(2026, 10, 3)


def test_same_day_same_bytes_and_days_differ():
    a, la = datagen.generate_day(DAY)
    b, lb = datagen.generate_day(DAY)
    assert datagen.to_csv_bytes(a) == datagen.to_csv_bytes(b)
    assert datagen.to_csv_bytes(la) == datagen.to_csv_bytes(lb)
    c, _ = datagen.generate_day(DAY + dt.timedelta(days=1))
    assert datagen.to_csv_bytes(a) != datagen.to_csv_bytes(c)


def test_normal_day_honours_the_contract():
    tx, labels = datagen.generate_day(DAY)
    assert tuple(tx.columns) == TRANSACTION_COLUMNS
    assert tx["transaction_id"].is_unique and tx.notna().all().all()
    assert (tx["amount"] > 0).all()
    assert (tx["event_timestamp"].dt.date == DAY).all()
    assert 0.005 < labels["is_fraud"].mean() < 0.05
    assert (labels["labeled_at"] > tx["event_timestamp"]).all()  # labels arrive later


def test_drifted_shifts_amounts_categories_and_fraud_pattern():
    normal, nl = datagen.generate_day(DAY)
    drifted, dl = datagen.generate_day(DAY, "drifted")
    assert drifted["amount"].median() > 1.4 * normal["amount"].median()
    share = lambda f: f["merchant_category"].isin(["electronics", "travel", "digital_goods"]).mean()  # noqa: E731
    assert share(drifted) > share(normal) + 0.15
    fraud_amount = lambda tx, labels: tx.loc[labels["is_fraud"] == 1, "amount"].median()  # noqa: E731
    assert fraud_amount(drifted, dl) < 10 < fraud_amount(normal, nl)


def test_corrupt_breaks_every_rule():
    tx, _ = datagen.generate_day(DAY, "corrupt")
    assert "channel" not in tx.columns
    assert tx["merchant_id"].isna().sum() >= 40
    assert (tx["amount"] < 0).sum() >= 25
    assert tx["transaction_id"].duplicated().sum() == 30
    assert (tx["event_timestamp"] > datagen.FUTURE - dt.timedelta(days=1)).sum() >= 10


def test_unknown_scenario_is_named():
    with pytest.raises(datagen.ScenarioError, match="'chaos' is not one of normal, drifted, corrupt"):
        datagen.generate_day(DAY, "chaos")
