"""A day whose rows each pass the contract but whose distribution no day of the lake looks like
is quarantined, naming the rule in the error and in Data Docs; drift passes (the monitor judges it)."""

import dataclasses
import datetime as dt
import shutil

import pandas as pd
import pytest

from conftest import land_days
from lifecycle import contract, distribution, ingest, lake, validation
from lifecycle.devtools import datagen

DAY = dt.date(2026, 10, 5)
HISTORY = 7


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """``HISTORY`` curated days, landed and gated once for the module (each test changes its own copy)."""
    path = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(path))
        for day in land_days(DAY, HISTORY):
            validation.validate_day(day)
    return path


@pytest.fixture
def curated(state, history):
    shutil.copytree(history / "lake", state / "lake")
    return DAY + dt.timedelta(days=HISTORY)


def land_changed(day: dt.date, change) -> pd.DataFrame:
    """Land ``day`` generated as normal, its events changed by ``change``; ingest it."""
    datagen.land(day)
    path = lake.landing_file("transactions", day)
    events = change(pd.read_csv(path.open("rb")))
    path.write_bytes(events.to_csv(index=False).encode())
    ingest.ingest_day(day)
    return events


def test_the_first_days_have_no_derived_bounds_and_later_ones_do(curated):
    uc = contract.current()
    assert distribution.rules("transactions", DAY, 9000, uc) == []  # no history before the first day
    rules = {r.key: r for r in distribution.rules("transactions", curated, 9000, uc)}
    sizes = [
        len(lake.read_parquet(lake.partition("curated", "transactions", d)))
        for d in lake.dates("curated", "transactions")
    ]
    assert (rules["rows"].lo, rules["rows"].hi) == (min(sizes) / 3, max(sizes) * 3)
    assert rules["rows"].source == f"derived from {HISTORY} curated days before {curated}"
    online = [
        (lake.read_parquet(lake.partition("curated", "transactions", d))["channel"] == "online").mean()
        for d in lake.dates("curated", "transactions")
    ]
    assert rules["channel=online"].lo < min(online) / 3 and rules["channel=online"].hi > 1 - (1 - max(online)) / 3
    assert {r.key for r in distribution.rules("labels", curated, 3000, uc)} == {"is_fraud=0", "is_fraud=1"}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda e: e.assign(channel="online"), "share of channel=online between"),
        (lambda e: e.head(len(e) // 5), "rows a day between"),
    ],
)
def test_an_impossible_day_is_quarantined_naming_the_rule(curated, change, rule):
    land_changed(curated, change)
    with pytest.raises(validation.QualityGateError, match=rule) as err:
        validation.validate_day(curated)
    assert f"derived from {HISTORY} curated days before {curated}" in str(err.value)
    assert curated in lake.dates("quarantine", "transactions") and curated not in lake.dates("curated", "transactions")
    from test_validation import validation_page

    assert rule in validation_page("transactions", curated)


def test_a_drifted_day_passes_the_gate(curated):
    land_days(curated, 1, "drifted")
    assert [o.success for o in validation.validate_day(curated)] == [True, True]


def test_a_declared_bound_replaces_the_derived_one(curated, monkeypatch):
    uc = dataclasses.replace(contract.current(), distribution={"channel=pos": (0.0, 0.4)})
    monkeypatch.setattr(contract, "current", lambda cfg=None: uc)
    land_days(curated, 1)
    with pytest.raises(
        validation.QualityGateError, match=r"share of channel=pos between 0 and 0.4 \(declared by use case fraud\)"
    ):
        validation.validate_day(curated)


def test_bounds_must_name_a_category_value_a_label_value_or_rows():
    with pytest.raises(contract.ContractError, match=r"distribution bounds for \['channel=fax'\]"):
        dataclasses.replace(contract.current(), distribution={"channel=fax": (0, 1)})
