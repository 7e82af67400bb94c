import datetime as dt
import json

import pytest
from airflow.sdk import ObjectStoragePath

from conftest import land_days
from lifecycle import lake, monitoring, promotion, tracking, validation
from lifecycle.schema import CHAMPION


def test_no_champion_means_nothing_to_monitor(state):
    with pytest.raises(monitoring.NothingToMonitor, match="no champion"):
        monitoring.drift_report(dt.date(2026, 10, 1))


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """Its own state: six curated normal days, features, and a promoted logistic champion."""
    import pandas as pd

    from lifecycle import features, training

    root = tmp_path_factory.mktemp("monitoring")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(root))
        days = land_days(dt.date(2026, 10, 1), 6)
        for day in days:
            validation.validate_day(day)
        features.materialize(features.build_tables(days))
        info = training.build_training_set("test__monitoring", pd.Timestamp.now(tz="UTC"))
        parent = training.start_parent_run("test__monitoring", info, "test")
        training.register_best([training.train_candidate("sklearn_logistic", info, parent, 7)], info,
                               "test__monitoring", "test")
        promotion.release(promotion.compare().challenger_version)
    return root, days


@pytest.fixture
def world(monitored, monkeypatch):
    root, days = monitored
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(root))
    return days


@pytest.fixture
def champion(world):
    return tracking.version_by_alias(CHAMPION)


def test_same_distribution_is_no_drift_and_reports_land(world, champion):
    summary = monitoring.drift_report(world[-1])
    assert summary["drift"] is False and summary["drift_share"] < summary["threshold"]
    assert summary["current_days"] == [d.isoformat() for d in world[-3:]]
    html = ObjectStoragePath(summary["report_uri"])
    assert html.exists() and html.stat().st_size > 100_000
    data = json.loads((html.parent / "report.json").read_text())
    assert data["summary"]["model_version"] == str(champion.version)
    assert f"drift/{world[-1].isoformat()}/report.html" in (lake.zone("reports") / "index.html").read_text()


def test_drifted_days_cross_the_threshold(world, champion):
    drifted = land_days(world[-1] + dt.timedelta(days=1), 3, "drifted")
    for day in drifted:
        validation.validate_day(day)
    summary = monitoring.drift_report(drifted[-1])
    assert summary["drift"] is True and summary["drift_share"] >= summary["threshold"]
    assert {"amount", "merchant_category"} <= set(summary["drifted_columns"])
    assert summary["current_days"] == [d.isoformat() for d in drifted]
