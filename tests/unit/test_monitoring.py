import datetime as dt
import json

import pytest
from airflow.sdk import ObjectStoragePath

from conftest import land_days
from lifecycle import contract, lake, monitoring, promotion, settings, tracking, validation
from lifecycle.aliases import CHAMPION

UC = contract.current()
MONITORED = (*UC.numerics, *UC.categoricals)


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
        training.register_best(
            [training.train_candidate("sklearn_logistic", info, parent, 7)], info, "test__monitoring", "test"
        )
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


def page(summary: dict) -> dict:
    """What the published HTML report shows (Evidently embeds its widgets as JSON): the dataset
    verdict, the counters and each column's verdict and score."""
    import re

    html = ObjectStoragePath(summary["report_uri"]).read_text()
    verdict = re.search(
        r'"label": "Dataset Drift is (NOT )?detected\. Dataset drift detection threshold is ([\d.]+)"', html
    )
    counters = dict((label, value) for value, label in re.findall(r'\{"value": "([^"]*)", "label": "([^"]+)"\}', html))
    columns = re.findall(
        r'"column_name": "(\w+)", "column_type": "\w+", "stattest_name": "([^"]+)".*?'
        r'"data_drift": "(Detected|Not Detected)", "drift_score": ([-\d.e]+)\}',
        html,
        re.DOTALL,
    )
    return {
        "drift": verdict.group(1) is None,
        "threshold": float(verdict.group(2)),
        "columns": int(counters["Columns"]),
        "drifted": int(counters["Drifted Columns"]),
        "share": float(counters["Share of Drifted Columns"]),
        "per_column": {c: (test, verdict == "Detected", float(score)) for c, test, verdict, score in columns},
    }


def report_json(summary: dict) -> dict:
    return json.loads((ObjectStoragePath(summary["report_uri"]).parent / "report.json").read_text())


def assert_report_says(summary: dict, champion_version: str) -> None:
    """The HTML page and the JSON beside it state the numbers the drift decision was taken on."""
    data = report_json(summary)
    assert data["summary"] == {k: v for k, v in summary.items() if k not in ("report_uri", "report_url")}
    assert data["summary"]["model_version"] == champion_version
    drift = {m["config"]["column"]: m for m in data["metrics"] if m["config"]["type"].endswith(":ValueDrift")}
    assert sorted(drift) == sorted(MONITORED)
    shown = page(summary)
    assert (shown["drift"], shown["threshold"]) == (summary["drift"], summary["threshold"])
    assert (shown["columns"], shown["drifted"]) == (len(MONITORED), len(summary["drifted_columns"]))
    assert shown["share"] == round(summary["drift_share"], 3)
    shown_as = {"wasserstein": "Wasserstein distance (normed)", "jensenshannon": "Jensen-Shannon distance"}
    assert shown["per_column"] == {
        c: (shown_as[m["config"]["method"]], c in summary["drifted_columns"], round(m["value"], 6))
        for c, m in drift.items()
    }
    # each column's threshold in the report is the calibrated one the decision used
    assert {c: m["config"]["threshold"] for c, m in drift.items()} == {
        c: v["threshold"] for c, v in summary["calibration"].items()
    }
    # the reports index lists it with the same numbers
    days = summary["current_days"]
    row = "".join(
        f"<td>{v}</td>"
        for v in (
            summary["as_of"],
            f"{days[0]}..{days[-1]}",
            champion_version,
            f"{summary['drift_share']:.4f}",
            ", ".join(summary["drifted_columns"]) or "-",
            "yes" if summary["drift"] else "no",
        )
    )
    assert row in (lake.zone("reports") / "index.html").read_text()


def test_same_distribution_is_no_drift_and_reports_land(world, champion):
    summary = monitoring.drift_report(world[-1])
    assert summary["drift"] is False and summary["drift_share"] < summary["threshold"]
    assert summary["drifted_columns"] == [] and summary["drift_share"] == 0.0
    assert summary["current_days"] == [d.isoformat() for d in world[-3:]]
    assert_report_says(summary, str(champion.version))
    index = (lake.zone("reports") / "index.html").read_text()
    page = summary["report_uri"].split("/reports/", 1)[1]
    assert page.startswith(f"drift/{world[-1].isoformat()}/") and f'href="{page}"' in index
    assert summary["report_url"] == f"{settings.load().ui_url}/reports/{page}"  # what alerts and events link
    again = monitoring.drift_report(world[-1])  # a rerun for the same day: a page of its own, both listed
    assert again["report_uri"] != summary["report_uri"] and ObjectStoragePath(summary["report_uri"]).exists()
    assert f'href="{again["report_uri"].split("/reports/", 1)[1]}"' in (lake.zone("reports") / "index.html").read_text()


def test_drifted_days_cross_the_threshold(world, champion):
    drifted = land_days(world[-1] + dt.timedelta(days=1), 3, "drifted")
    for day in drifted:
        validation.validate_day(day)
    summary = monitoring.drift_report(drifted[-1])
    assert summary["drift"] is True and summary["drift_share"] >= summary["threshold"]
    assert {"amount", "merchant_category"} <= set(summary["drifted_columns"])
    assert summary["drift_share"] == len(summary["drifted_columns"]) / len(MONITORED)
    assert summary["current_days"] == [d.isoformat() for d in drifted]
    assert_report_says(summary, str(champion.version))
