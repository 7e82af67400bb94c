"""Why an asset-triggered training run starts, and when its evidence is already answered."""

import datetime as dt
from types import SimpleNamespace

import pytest

from lifecycle import training
from lifecycle.assets import DEGRADED, DRIFT, ERASED

T = 1_000.0  # the evidence's emission time (epoch seconds)
DRIFT_ON_V1 = (T, {"model_version": "1", "drift_share": 0.4})


def test_evidence_on_the_serving_champion_with_no_successor_needs_training():
    assert training.answered([DRIFT_ON_V1], champion="1", versions={"1": T - 500}, canary=None) is None
    # a successor registered before the evidence (and not serving) does not answer it
    assert training.answered([DRIFT_ON_V1], "1", {"1": T - 500, "2": T - 100}, canary=None) is None


def test_a_version_registered_after_the_evidence_answers_it():
    assert (
        training.answered([DRIFT_ON_V1], "1", {"1": T - 500, "2": T + 60}, None)
        == "v2 was registered after the evidence on v1"
    )


def test_a_newer_canary_or_a_new_champion_answers_it():
    assert (
        training.answered([DRIFT_ON_V1], "1", {"1": 0, "2": T - 100}, canary="2")
        == "v2, newer than v1, is already serving as canary"
    )
    assert (
        training.answered([DRIFT_ON_V1], "2", {"1": 0, "2": T - 100}, canary=None)
        == "v1 is no longer the champion (v2 is)"
    )
    # an older canary (an operator's re-release of v1) answers nothing about champion v2
    assert training.answered([(T, {"model_version": "2"})], "2", {"1": 0, "2": 10}, canary="1") is None


def test_a_newer_version_already_trained_on_the_judged_days_answers_it():
    degraded = (T, {"model_version": "2", "metric": "pr_auc", "window": "2026-10-09..2026-10-15"})
    versions = {"1": 0, "2": 10, "3": T - 30}  # v3 was trained on the first degraded evidence, then rejected
    assert (
        training.answered([degraded], "2", versions, None, {"2": "2026-10-08", "3": "2026-10-15"})
        == "v3 was already trained on data through 2026-10-15, the last day of the evidence on v2"
    )
    # evidence from a later day is new: train again
    later = (T, {"model_version": "2", "window": "2026-10-10..2026-10-16"})
    assert training.answered([later], "2", versions, None, {"2": "2026-10-08", "3": "2026-10-15"}) is None
    drift = (T, {"model_version": "2", "as_of": "2026-11-27", "window": "2026-10-13..2026-10-15"})
    assert training.answered([drift], "2", versions, None, {"3": "2026-10-15"}).startswith("v3 was already")
    assert training.answered([degraded], "2", versions, None) is None  # no training window known


def test_every_event_must_be_answered():
    degraded_on_v2 = (T + 5, {"model_version": "2", "metric": "pr_auc"})
    versions = {"1": 0, "2": T - 100}
    assert training.answered([DRIFT_ON_V1, degraded_on_v2], "2", versions, None) is None
    assert training.answered([], "2", versions, None) is None
    assert training.answered([(T, {})], "2", versions, None) is None  # names no version: posted by hand


def test_trigger_reason_names_the_newest_evidence():
    at = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
    events = {
        DRIFT: [SimpleNamespace(timestamp=at, extra={"drift_share": 0.4, "report_uri": "r1"})],
        DEGRADED: [
            SimpleNamespace(
                timestamp=at + dt.timedelta(seconds=1),
                extra={"metric": "pr_auc", "value": 0.1, "labels": 2000, "model_version": "2", "report_uri": "r2"},
            )
        ],
    }
    assert (
        training.trigger_reason(events, "asset_triggered", "manual")
        == "degraded: live pr_auc 0.1 over 2000 labels (v2, r2)"
    )
    assert training.trigger_reason({DRIFT: events[DRIFT]}, "asset_triggered", "x") == "drift share 0.4 (r1)"
    assert training.trigger_reason(None, "manual", "bootstrap") == "bootstrap"
    assert training.trigger_reason(None, "scheduled", "manual") == "scheduled"


def test_trigger_skips_answered_evidence_and_otherwise_gives_the_reason(monkeypatch):
    at = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
    events = {DRIFT: [SimpleNamespace(timestamp=at, extra={"drift_share": 0.4, "report_uri": "r1"})]}
    asked = []

    def answered_by_registry(triggering_asset_events):  # stands in for the MLflow registry's answer
        asked.append(triggering_asset_events)
        return "v2 was registered after the evidence on v1"

    monkeypatch.setattr(training, "trigger_answered", answered_by_registry)
    with pytest.raises(training.EvidenceAnswered) as skipped:
        training.trigger("asset_triggered", events, "manual")
    assert (
        str(skipped.value)
        == "the evidence that triggered this run is already answered: v2 was registered after the evidence on v1"
    )
    assert asked == [events]

    # only asset-triggered runs ask the registry: a manual or scheduled run always trains
    assert training.trigger("manual", None, "bootstrap") == "bootstrap"
    assert training.trigger("scheduled", None, "manual") == "scheduled"
    assert asked == [events]

    monkeypatch.setattr(training, "trigger_answered", lambda triggering_asset_events: None)
    assert training.trigger("asset_triggered", events, "manual") == "drift share 0.4 (r1)"


def test_prepare_skips_only_what_has_nothing_new_and_lets_a_retry_go_on(state, monkeypatch):
    """No curated day skips a scheduled run (a manual one fails); other data errors fail any run;
    the training set of another run's registered version is skipped and its new copy removed; a
    retried run that finds its own version goes on, its version's training set kept."""
    from airflow.sdk import ObjectStoragePath

    from lifecycle import lake

    folder = lake.zone("training") / "run-2"
    built = {"uri": str(folder), "digest": "d1", "first_day": "2026-10-01", "last_day": "2026-10-06"}

    def build(run_key, cutoff):
        (folder / "train.parquet").parent.mkdir(parents=True, exist_ok=True)
        (folder / "train.parquet").write_bytes(b"x")
        return dict(built)

    monkeypatch.setattr(training, "trigger", lambda *a: "why")
    monkeypatch.setattr(training, "start_parent_run", lambda *a: "parent")
    for error, run_type, outcome in (
        (training.NoCuratedData("no curated days"), "scheduled", training.NothingToTrain),
        (training.NoCuratedData("no curated days"), "manual", training.NoCuratedData),
        (training.TrainingDataError("one class"), "scheduled", training.TrainingDataError),
    ):
        monkeypatch.setattr(training, "build_training_set", lambda *a, e=error: (_ for _ in ()).throw(e))
        with pytest.raises(outcome):
            training.prepare("run-2", run_type, None, "r", None, 7)
    monkeypatch.setattr(training, "build_training_set", build)
    other = SimpleNamespace(version="1", tags={"airflow_run": "run-1", "training_set_uri": "file:///elsewhere"})
    monkeypatch.setattr(training, "registered_on", lambda digest, seed: other)
    with pytest.raises(training.NothingToTrain, match="is the one version 1 was trained on with seed 7"):
        training.prepare("run-2", "scheduled", None, "r", None, 7)
    assert not ObjectStoragePath(built["uri"]).exists()
    own = SimpleNamespace(version="2", tags={"airflow_run": "run-2", "training_set_uri": built["uri"]})
    monkeypatch.setattr(training, "registered_on", lambda digest, seed: own)
    info = training.prepare("run-2", "scheduled", None, "r", None, 7)
    assert info["parent_run_id"] == "parent" and (folder / "train.parquet").exists()


def test_an_erasure_is_never_answered_and_names_itself(monkeypatch):
    at = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
    erased = SimpleNamespace(
        timestamp=at + dt.timedelta(seconds=5),
        extra={"erasure": "erasure-manual__1", "entity": "card_id", "ids": 3, "rows": 12},
    )
    drift = SimpleNamespace(timestamp=at, extra={"model_version": "1", "drift_share": 0.4, "report_uri": "r1"})
    events = {DRIFT: [drift], ERASED: [erased]}
    # the registry is never asked: the training data changed whatever the drift evidence's answer
    monkeypatch.setattr(training, "answered", lambda *a, **k: pytest.fail("asked whether an erasure is answered"))
    assert training.trigger_answered(events) is None
    assert (
        training.trigger("asset_triggered", events, "manual") == "data erased: erasure-manual__1 (12 rows of 3 card_id)"
    )
