"""A second use case through the whole loop, with no library change: loan default by customer.

``tests/loan_default`` declares it (``use_case(cfg)``, its generator and its Feast repo); this
module selects it with ``LIFECYCLE_USE_CASE=loan_default`` in a state folder of its own and runs
the DAGs with dag.test(), in lifecycle order: ingest → validate → features → train → promote →
package (bento build and smoke test against the served bento) → score. The settings are set
before the DagBag parses the DAG files and restored afterwards, so other modules keep card fraud.
"""

import datetime as dt
import os
from pathlib import Path

import pytest
from dagruns import ingest_run, states, use_case_dags, xcom

from conftest import ROOT
from lifecycle import contract, lake, prediction_reader, pseudonym, settings, tracking
from lifecycle.aliases import CHALLENGER, CHAMPION
from lifecycle.devtools import datagen

STATE = ROOT / ".local" / "tests" / "loan_default"
SETTINGS = {
    "LIFECYCLE_USE_CASE": "loan_default",
    "LIFECYCLE_STATE_DIR": str(STATE),
    "LIFECYCLE_MODEL_NAME": "loan-default",
    "LIFECYCLE_EXPERIMENT": "loan-default",
    "LIFECYCLE_BENTO_NAME": "loan_default_service",
}
DAYS = [dt.date(2026, 11, 2) + dt.timedelta(days=i) for i in range(9)]
CUTOFF = dt.datetime.combine(DAYS[-1], dt.time(12), tzinfo=dt.UTC)  # train runs at noon of the last day


@pytest.fixture(scope="module")
def dags():
    with use_case_dags(SETTINGS, ROOT / "dags") as bag:
        yield bag


@pytest.fixture
def uc(dags):
    return contract.current()


def test_the_use_case_is_loan_default(uc):
    assert (uc.name, uc.events, uc.id, uc.time, uc.entities) == (
        "loan_default",
        "applications",
        "application_id",
        "applied_at",
        ("customer_id",),
    )
    assert uc.numerics == ("loan_amount", "term_months", "hour") and uc.categoricals == ("purpose", "employment")


def test_ingest_lands_each_day(dags):
    for day in DAYS:
        datagen.land(day)
        run = ingest_run(dags, day)
        assert run.state == "success", states(run)
    assert lake.dates("raw", "applications") == lake.dates("raw", "labels") == DAYS
    assert lake.landing_file("applications", DAYS[0]).exists()


def test_validate_curates_every_day(dags, uc):
    run = dags["validate"].test()
    assert run.state == "success", states(run)
    assert [(r["date"], r["status"]) for r in xcom(run, "quality_gate")] == [(d.isoformat(), "curated") for d in DAYS]
    assert lake.dates("curated", "applications") == lake.dates("curated", "labels") == DAYS
    curated = lake.read_parquet(lake.partition("curated", "applications", DAYS[0]))
    assert list(curated.columns) == list(uc.event_columns) and len(curated) >= 500
    assert str(curated["applied_at"].dtype) == "datetime64[ns, UTC]"


def test_features_builds_customer_stats_and_fills_the_online_store(dags, uc):
    from lifecycle.feature_store import get_store

    run = dags["features"].test()
    assert run.state == "success", states(run)
    assert xcom(run, "materialize") == [d.isoformat() for d in DAYS]
    assert lake.dates("features", "customer_stats") == DAYS
    newest = lake.read_parquet(lake.partition("features", "customer_stats", DAYS[-1])).set_index("customer_id")
    assert newest["customer_app_count_14d"].dtype == "int64" and (newest["customer_app_count_14d"] > 0).all()
    customers = list(newest.index[:20])
    store = get_store()
    got = store.get_online_features(
        features=store.get_feature_service(uc.feature_service),
        entity_rows=[*({"customer_id": c} for c in customers), {"customer_id": "never-seen"}],
    ).to_dict()
    for col in newest.columns.drop("event_timestamp"):
        assert got[col][:20] == newest.loc[customers, col].tolist(), col
        assert got[col][20] is None, col  # an unknown customer: no stored features


def test_train_registers_a_challenger(dags):
    run = dags["train"].test(run_after=CUTOFF, logical_date=None, run_conf={"seed": 7, "reason": "loan test"})
    assert run.state == "success", states(run)
    assert states(run) == {
        "training_set": "success",
        "train_sklearn_logistic": "success",
        "train_xgboost": "success",
        "register_challenger": "success",
    }
    info = xcom(run, "training_set")
    assert info["last_day"] == DAYS[-1].isoformat() and info["train_rows"] > 2000 and info["holdout_rows"] > 100
    assert {"amount_to_customer_avg", "customer_avg_loan_amount_14d", "hour", "loan_amount"} <= set(info["numeric"])
    mv = tracking.version_by_alias(CHALLENGER)
    assert mv is not None and mv.version == 1 and mv.name == "loan-default"
    assert mv.tags["dataset_digest"] == info["digest"] and mv.tags["trigger"] == "loan test"


def test_promote_approves_the_first_model(dags):
    run = dags["promote"].test()
    assert run.state == "success", states(run)
    assert states(run) == {"compare": "success", "approve": "success"}
    assert str(xcom(run, "approve")) == "1"
    assert tracking.version_by_alias(CHAMPION) is None  # not live before its bento passed the smoke test


def test_package_ships_the_use_case_and_answers_the_golden_requests(dags):
    import bentoml

    run = dags["package"].test(run_conf={"version": "1"})
    tag = xcom(run, "build_bento")
    assert tag and tag.startswith("loan_default_service:v1-"), states(run)
    src = Path(bentoml.bentos.get(tag).path) / "src"
    assert (src / "loan_default" / "__init__.py").exists(), (
        f"the bento does not ship the use case's package (lifecycle.contract.package_dir): {sorted(os.listdir(src))}"
    )
    assert (src / "loan_default" / "feature_repo" / "loan_definitions.py").exists()
    assert run.state == "success", states(run)
    skipped = {"approval", "refused"}  # approvals are off here: the release needs no human
    assert {t for t, state in states(run).items() if state != "success"} == skipped, states(run)
    result = xcom(run, "smoke_test")
    assert [r["status"] for r in result["results"]] == [200, 200, 400, 400, 400, 401]
    assert all(r["ok"] for r in result["results"])
    answers = [r["answer"] for r in result["results"] if r["status"] == 200]
    assert [a["application_id"] for a in answers] == ["golden-1", "golden-2"]
    assert all(0.0 <= a["default_probability"] <= 1.0 and a["model_version"] == "1" for a in answers)
    assert [a["known_customer"] for a in answers] == [True, False]  # u0001 has stored features; never-seen not
    assert all(a["feature_service"] == "loan_default_v1" for a in answers)
    assert tracking.version_by_alias(CHAMPION).version == 1


def test_score_logs_default_probabilities_by_application(dags):
    day = DAYS[-1]
    run = dags["score"].test(run_conf={"dates": [day.isoformat()]})
    assert run.state == "success", states(run)
    curated = lake.read_parquet(lake.partition("curated", "applications", day))
    logged = prediction_reader.read(days=[day], source="batch")
    assert len(logged) == len(curated) and logged["application_id"].is_unique
    names = pseudonym.of(settings.load())  # the log keeps the ids' pseudonyms
    assert set(logged["application_id"]) == set(names.many(curated["application_id"]))
    assert set(logged["customer_id"]) == set(names.many(curated["customer_id"]))
    assert {"customer_id", "default_probability", "input_amount_to_customer_avg", "input_employment"} <= set(logged)
    assert "fraud_probability" not in logged and "transaction_id" not in logged
    assert logged["default_probability"].between(0, 1).all()
    assert set(logged["model_version"]) == {"1"} and set(logged["arm"]) == {CHAMPION}
    assert logged["input_amount_to_customer_avg"].notna().mean() > 0.9  # most customers applied before
    # the score separates: the applications that defaulted score higher on average
    labels = lake.read_range("curated", "labels", DAYS[0], DAYS[-1])
    joined = logged.merge(labels.assign(application_id=names.many(labels["application_id"])), on="application_id")
    assert len(joined) > 100
    means = joined.groupby("defaulted")["default_probability"].mean()
    assert means[1] > means[0]
