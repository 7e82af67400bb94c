"""Retention with the clock moved forward: everything past its zone's retention goes, except what a
live, canary or previous version or the deployment history points to, and the sweep is recorded."""

import datetime as dt

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from conftest import world_from
from lifecycle import (
    housekeeping,
    lake,
    prediction_maintenance,
    promotion,
    reports,
    scoring,
    settings,
    tracking,
    training,
)

LATER = dt.timedelta(days=3 * 365)  # every retention past


@pytest.fixture(scope="module")
def world(tmp_path_factory, featurized_template):
    """Six featurized days (with their Data Docs), v1 released (champion, in the history), v2 trained
    on a training set of its own and never released, batch scores of two days."""
    state = tmp_path_factory.mktemp("housekeeping")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(state))
        days = world_from(featurized_template, 6)
        versions = []
        for i in (1, 2):
            info = training.build_training_set(f"hk__{i}", pd.Timestamp.now(tz="UTC"))
            parent = training.start_parent_run(f"hk__v{i}", info, "test")
            result = training.train_candidate("sklearn_logistic", info, parent, seed=6 + i)
            versions.append(str(training.register_best([result], info, f"hk__v{i}", "test")["version"]))
        promotion.release(versions[0], force=True)
        scoring.score_days(days[-2:])
        yield {"state": state, "days": days, "versions": versions}


def _set_alias(alias: str, version: str | None) -> None:
    client, name = tracking.client(), settings.load().model_name
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)


def test_nothing_within_retention_is_deleted(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    record = housekeeping.sweep(world["days"][-1])
    assert record["deleted"] == {} and record["counts"] == {}
    assert len(list(lake.zone("housekeeping").iterdir())) == 1  # recorded all the same


def test_a_canary_is_pointed_to_and_a_dry_run_deletes_nothing(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    v1, v2 = world["versions"]
    _set_alias("challenger", None)
    _set_alias("canary", v2)  # an open decision
    try:
        before = sorted(p.path for p in lake.zone("training").iterdir())
        record = housekeeping.sweep(world["days"][-1] + LATER, dry_run=True)
    finally:
        _set_alias("canary", None)
    assert sorted(p.path for p in lake.zone("training").iterdir()) == before
    assert record["protected_versions"] == [v1, v2]
    assert sorted(record["kept_pointed_to"]["training"]) == ["hk__1", "hk__2"]
    assert record["deleted"]["landing"] and "training" not in record["deleted"]


def test_with_the_clock_moved_forward_only_what_the_lifecycle_points_to_stays(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    v1, v2 = world["versions"]
    cfg, client = settings.load(), tracking.client()
    mv1, mv2 = (client.get_model_version(cfg.model_name, v) for v in (v1, v2))
    sources = lake.manifest(ObjectStoragePath(mv1.tags["training_set_uri"]))["sources"]
    would = housekeeping.sweep(world["days"][-1] + LATER, dry_run=True)
    record = housekeeping.sweep(world["days"][-1] + LATER)
    assert record["deleted"] == would["deleted"]  # the dry run said exactly what goes
    assert record["protected_versions"] == [v1]  # champion and in the history; v2 nothing points to
    # every zone past its retention is empty, but for what v1 points to
    for dataset in ("transactions", "labels"):
        assert not (lake.zone("landing") / dataset).exists() or not list((lake.zone("landing") / dataset).iterdir())
        assert lake.dates("raw", dataset) == []
        kept = [d.isoformat() for d in lake.dates("curated", dataset)]
        assert kept == sorted(sources[dataset]) and kept  # the curated days v1 was made from
    assert all(lake.dates("features", t) == [] for t in ("card_stats", "merchant_stats"))
    assert [p.name for p in lake.zone("training").iterdir()] == ["hk__1"]
    assert prediction_maintenance.days(cfg) == []
    # MLflow: v1's training run and its parent stay; v2's are deleted
    run1 = client.get_run(mv1.run_id)
    assert run1.info.lifecycle_stage == "active"
    assert client.get_run(run1.data.tags["mlflow.parentRunId"]).info.lifecycle_stage == "active"
    assert client.get_run(mv2.run_id).info.lifecycle_stage == "deleted"
    assert mv2.run_id in record["deleted"]["mlflow_runs"] and mv1.run_id in record["kept_pointed_to"]["mlflow_runs"]
    # reports: the Data Docs of old days go; v1's model card stays, v2's goes, and the index says so
    assert not (lake.zone("reports") / "data_quality").exists() or not any(
        p.is_file() for p in (lake.zone("reports") / "data_quality").rglob("*")
    )
    assert (lake.zone("reports") / reports.card_page(v1)).exists()
    assert not (lake.zone("reports") / reports.card_page(v2)).exists()
    index = (lake.zone("reports") / "index.html").read_text()
    assert reports.card_page(v1) in index and reports.card_page(v2) not in index
    # the record lists what went
    assert record["counts"]["training"] == 1 and record["deleted"]["training"] == ["hk__2"]
    assert record["counts"]["predictions"] == 2 and record["counts"]["landing"] == 2 * len(world["days"])
    # what v1 points to still works: its training set is the one it was trained on
    assert training.stored_digest(mv1.tags["training_set_uri"]) == mv1.tags["dataset_digest"]


def test_a_retention_shorter_than_the_loop_reads_is_refused(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_RETENTION_DAYS", "curated=30")
    with pytest.raises(settings.SettingError, match="curated=30 is shorter than LIFECYCLE_MAX_TRAIN_DAYS"):
        settings.load()
    monkeypatch.setenv("LIFECYCLE_RETENTION_DAYS", "lake=3")
    with pytest.raises(settings.SettingError, match="'lake=3' is not <zone>=<days>"):
        settings.load()
    monkeypatch.setenv("LIFECYCLE_RETENTION_DAYS", "landing=7, reports=30")
    assert settings.load().retention_days["landing"] == 7 and settings.load().retention_days["reports"] == 30
