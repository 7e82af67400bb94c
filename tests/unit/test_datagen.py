import datetime as dt
import os
import subprocess
import sys

import pandas as pd
import pytest
from usecases.fraud import datagen as fraud_datagen

from lifecycle import contract
from lifecycle.devtools import datagen

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
    assert tuple(tx.columns) == contract.current().event_columns
    assert tx["transaction_id"].is_unique and tx.notna().all().all()
    assert (tx["amount"] > 0).all()
    assert (tx["event_timestamp"].dt.date == DAY).all()
    assert 0.005 < labels["is_fraud"].mean() < 0.05
    assert (labels["labeled_at"] >= tx["event_timestamp"]).all()  # labels arrive later


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
    assert (tx["event_timestamp"] > fraud_datagen.FUTURE - dt.timedelta(days=1)).sum() >= 10


def test_unknown_scenario_is_named():
    with pytest.raises(datagen.ScenarioError, match="'chaos' is not one of normal, drifted, concept, corrupt"):
        datagen.generate_day(DAY, "chaos")


def test_concept_keeps_every_input_and_changes_who_is_fraud():
    normal, nl = datagen.generate_day(DAY)
    concept, cl = datagen.generate_day(DAY, "concept")
    assert datagen.to_csv_bytes(concept) == datagen.to_csv_bytes(normal)  # nothing a data-drift check can see
    both = (nl["is_fraud"] & cl["is_fraud"]).sum()
    assert cl["is_fraud"].sum() > 40 and both < 0.1 * cl["is_fraud"].sum()
    staples = concept["merchant_category"].isin(["fuel", "pharmacy", "grocery"])
    assert cl.loc[staples, "is_fraud"].mean() > 3 * cl.loc[~staples, "is_fraud"].mean()


def test_labels_land_on_the_day_they_become_known(state):
    from lifecycle import lake

    days = [DAY + dt.timedelta(days=i) for i in range(fraud_datagen.LABEL_MAX_DAYS + 1)]
    for day in days:
        datagen.land(day, "corrupt" if day == days[1] else "normal")
    landed = {d: pd.read_csv(lake.landing_file("labels", d).open("rb"), parse_dates=["labeled_at"]) for d in days}
    for day, labels in landed.items():
        assert (labels["labeled_at"].dt.date == day).all()
    every = pd.concat(landed.values(), ignore_index=True)
    assert every["transaction_id"].is_unique
    truth = datagen.generate_day(days[0])[1]
    # every label of the first day's transactions is known within LABEL_MAX_DAYS, on the day its time says
    assert set(every["transaction_id"][every["transaction_id"].str.startswith(f"t{days[0]:%Y%m%d}")]) == set(
        truth["transaction_id"]
    )
    later = every.merge(truth, on="transaction_id", suffixes=("", "_truth"))
    assert (later["labeled_at"] == later["labeled_at_truth"]).all()
    assert (later["is_fraud"] == later["is_fraud_truth"]).all()
    assert (later["labeled_at"].dt.date > days[0]).mean() > 0.5  # most arrive on a later day
    assert not every["transaction_id"].str.startswith(f"t{days[1]:%Y%m%d}").any()  # a corrupt extract is never labeled


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "lifecycle.devtools.datagen", "--start", DAY.isoformat()],
        ["-c", "import lifecycle.devtools.demo"],  # make demo's module, imported as it starts
    ],
    ids=["datagen", "demo"],
)
def test_entry_points_keep_airflow_home_in_the_state(tmp_path, argv):
    """Airflow reads AIRFLOW_HOME once, at its import (through lifecycle.lake); unset, it makes ~/airflow."""
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    environ.update(HOME=str(home), LIFECYCLE_STATE_DIR=str(state))
    out = subprocess.run([sys.executable, *argv], env=environ, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list(home.iterdir()) == []
    if argv[0] == "-m":
        assert (state / "lake" / "landing" / "transactions" / f"{DAY.isoformat()}.csv").is_file()
