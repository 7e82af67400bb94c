"""Each DAG run in-process with dag.test() against real stores, in lifecycle order.

The tests share the session state (.local/tests/session) and build on each other, like the
loop itself: ingest → validate → features → train → promote → package → monitor.
"""

import datetime as dt
import html
import json
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from airflow.dag_processing.dagbag import DagBag
from dagruns import ingest_run, states, tries, xcom

from conftest import ROOT
from lifecycle import alerts, contract, lake, prediction_reader, pseudonym, registry, reports, settings, tracking, ui
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION
from lifecycle.devtools import datagen
from lifecycle.platform import setup

DAYS = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(6)]
CORRUPT = dt.date(2026, 10, 7)
# train runs "after" noon of the last day: the labels that became known that afternoon are in the
# lake, and the run must not use them (its cutoff is its run_after). No logical date: each run gets
# its own run id (one from run_after alone would repeat)
CUTOFF = dt.datetime.combine(DAYS[-1], dt.time(12), tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def dags():
    setup.main()  # airflow db migrate + gpu pool, on the session state
    bag = DagBag(dag_folder=str(ROOT / "dags"), include_examples=False)
    assert bag.import_errors == {}
    return bag.dags


def ingest(dags, day: dt.date, scenario: str = "normal"):
    datagen.land(day, scenario)
    return ingest_run(dags, day)


def test_ingest_lands_each_day(dags):
    for day in DAYS:
        run = ingest(dags, day)
        assert run.state == "success", states(run)
    assert lake.dates("raw", "transactions") == DAYS


def test_ingest_waits_deferred_for_late_files_then_lands_them(dags, monkeypatch):
    late = dt.date(2026, 10, 20)
    sensor = dags["ingest"].get_task("wait_for_files")
    monkeypatch.setattr(sensor, "poke_interval", 0.5)
    lander = threading.Timer(4, datagen.land, args=(late,))
    lander.start()  # the files land while the sensor is deferred
    try:
        started = time.monotonic()
        run = dags["ingest"].test(
            logical_date=dt.datetime.combine(late + dt.timedelta(days=1), dt.time(1), tzinfo=dt.UTC)
        )
    finally:
        lander.join()
    assert run.state == "success", states(run)
    assert time.monotonic() - started >= 4 and late in lake.dates("raw", "transactions")
    lake.remove(lake.partition("raw", "transactions", late))
    lake.remove(lake.partition("raw", "labels", late))


def test_ingest_names_the_files_that_never_landed(dags, monkeypatch, capfd):
    never = dt.date(2026, 10, 21)
    sensor = dags["ingest"].get_task("wait_for_files")
    monkeypatch.setattr(sensor, "poke_interval", 0.5)
    monkeypatch.setattr(sensor, "timeout_minutes", 0.05)
    run = dags["ingest"].test(logical_date=dt.datetime.combine(never + dt.timedelta(days=1), dt.time(1), tzinfo=dt.UTC))
    assert run.state == "failed" and states(run) == {"wait_for_files": "failed", "land": "upstream_failed"}
    out = capfd.readouterr()
    assert "LandingTimeout" in out.out + out.err
    named = f"transactions/{never}{{.csv,.parquet,/_SUCCESS}}"  # each form a day can land in
    assert named in out.out + out.err and "LIFECYCLE_LANDING_TIMEOUT_MINUTES" in out.out + out.err
    assert never not in lake.dates("raw", "transactions")


def test_validate_gates_good_days_and_quarantines_the_corrupt_one(dags, mailbox):
    run = dags["validate"].test()  # no dates given: every pending raw partition is gated
    assert run.state == "success"
    assert states(run) == {
        "quality_gate": "success",
        "curated_days": "success",
        "failed_days": "success",
    }
    assert [(r["date"], r["status"]) for r in xcom(run, "quality_gate")] == [(d.isoformat(), "curated") for d in DAYS]
    assert lake.dates("curated", "transactions") == DAYS
    assert ingest(dags, CORRUPT, "corrupt").state == "success"  # ingest lands anything readable
    bad = dags["validate"].test()
    assert bad.state == "failed"
    assert states(bad) == {
        "quality_gate": "success",
        "curated_days": "skipped",
        "failed_days": "failed",
    }
    assert [r["status"] for r in xcom(bad, "quality_gate")] == ["quarantined"]
    assert lake.dates("quarantine", "transactions") == [CORRUPT]
    assert CORRUPT not in lake.dates("curated", "transactions")
    # one alert, the quarantine's (failed_days failing for it is not a second one); none for good days
    [mail] = mailbox.messages()
    assert (mail[alerts.HEADER], mail["Subject"]) == (
        "quarantine",
        f"[fraud-detector] {CORRUPT} quarantined: it failed the quality gate",
    )
    body = mail.get_body(("html",)).get_content()
    detail = xcom(bad, "quality_gate")[0]["detail"].split("failed expectations: ", 1)[1]
    first = detail.split(" | ")[0].split("; ")[0]  # "transactions: <its first failed rule>"
    assert f"{html.escape(first)}<br>" in body  # a line per failed rule
    docs = f"{settings.load().ui_url}/reports/data_quality/transactions/{CORRUPT}/index.html"
    assert f'<a href="{docs}">Data Docs (transactions)</a>' in body
    assert f"/dags/validate/runs/{quote(bad.run_id, safe='')}" in body


def test_features_builds_snapshots_and_fills_the_online_store(dags):
    run = dags["features"].test()
    assert run.state == "success", states(run)
    assert xcom(run, "materialize") == [d.isoformat() for d in DAYS]
    assert lake.dates("features", "card_stats") == DAYS  # never the quarantined day
    # the online store serves each entity's newest snapshot: cards whose features changed on the last
    # day get the last day's values, not the day before's; an unknown card gets nothing
    from lifecycle.feature_store import get_store

    snap = {
        (name, day): lake.read_parquet(lake.partition("features", name, day)).set_index(key)
        for name, key in (("card_stats", "card_id"), ("merchant_stats", "merchant_id"))
        for day in DAYS[-2:]
    }
    newest, before = snap["card_stats", DAYS[-1]], snap["card_stats", DAYS[-2]]
    both = newest.index.intersection(before.index)
    changed = both[newest.loc[both, "card_avg_amount_7d"] != before.loc[both, "card_avg_amount_7d"]][:20]
    merchants = snap["merchant_stats", DAYS[-1]].index[:20]
    assert len(changed) == len(merchants) == 20
    store = get_store()
    rows = [{"card_id": c, "merchant_id": m} for c, m in zip(changed, merchants, strict=True)]
    got = store.get_online_features(
        features=store.get_feature_service(contract.current().feature_service),
        entity_rows=[*rows, {"card_id": "never-seen-card", "merchant_id": merchants[0]}],
    ).to_dict()
    for name, ids in (("card_stats", changed), ("merchant_stats", merchants)):
        expected = snap[name, DAYS[-1]].loc[list(ids)].drop(columns="event_timestamp")
        assert set(expected.columns) < set(got)
        for col in expected.columns:
            assert got[col][:20] == expected[col].tolist(), col
    assert {col: got[col][20] for col in newest.columns if col != "event_timestamp"} == dict.fromkeys(
        newest.columns.drop("event_timestamp")
    )  # the unknown card: every card feature missing
    assert (
        got["merchant_avg_amount_7d"][20]
        == snap["merchant_stats", DAYS[-1]].loc[merchants[0], "merchant_avg_amount_7d"]
    )


def test_train_registers_a_challenger_from_the_labels_known_at_its_cutoff(dags):
    import pandas as pd

    from lifecycle import training

    run = dags["train"].test(run_after=CUTOFF, logical_date=None, run_conf={"seed": 11, "reason": "integration test"})
    assert run.state == "success", states(run)
    assert set(states(run).values()) == {"success"}
    mv = tracking.version_by_alias(CHALLENGER)
    assert mv is not None and mv.version == 1 and mv.tags["trigger"] == "integration test"
    info = xcom(run, "training_set")
    assert info["last_day"] == DAYS[-1].isoformat()  # the corrupt day never reaches training
    assert mv.tags["dataset_digest"] == info["digest"] and mv.tags["training_set_uri"] == info["uri"]
    made_by = ui.run_url("train", run.run_id)  # the version's model card links the run that made it
    assert mv.tags["airflow_run_url"] == made_by
    card = (lake.zone("reports") / reports.card_page("1")).read_text()
    assert f'<a href="{html.escape(made_by)}">{html.escape(run.run_id)}</a>' in card
    # labels arrive late, in their own feed: the run used exactly the labels known at its cutoff
    labels = lake.read_range("curated", "labels", DAYS[0], CORRUPT)
    cutoff = pd.Timestamp(CUTOFF)
    late = labels[labels["labeled_at"] > cutoff]
    assert len(late) > 100 and late["labeled_at"].max().date() == DAYS[-1]  # known that afternoon, in the lake
    used = pd.concat([training.load_part(info["uri"], part) for part in training.PARTS])
    assert len(used) == info["train_rows"] + info["holdout_rows"]
    used = used[["transaction_id", "is_fraud"]].merge(
        labels, on="transaction_id", how="left", suffixes=("", "_curated"), validate="one_to_one"
    )
    assert (used["labeled_at"] <= cutoff).all() and (used["is_fraud"] == used["is_fraud_curated"]).all()
    assert set(used["transaction_id"]) == set(labels.loc[labels["labeled_at"] <= cutoff, "transaction_id"])
    assert not set(used["transaction_id"]) & set(late["transaction_id"])


def test_promote_approves_the_first_model_without_moving_an_alias(dags):
    run = dags["promote"].test()
    assert run.state == "success"
    assert states(run) == {"compare": "success", "approve": "success"}
    assert str(xcom(run, "approve")) == "1"  # XCom hands a numeric string back as a number
    assert tracking.version_by_alias(CHAMPION) is None  # not live before its bento passed the smoke test


def test_package_smoke_tests_the_approved_version_then_releases_it(dags):
    run = dags["package"].test(run_conf={"version": "1"})
    assert run.state == "success", states(run)
    assert states(run) == {
        "approved_version": "success",
        "build_bento": "success",
        "smoke_test": "success",
        "gate": "success",
        "approval": "skipped",  # approvals are off here (LIFECYCLE_REQUIRE_APPROVAL)
        "release": "success",
        "refused": "skipped",
    }
    result = xcom(run, "smoke_test")
    assert result["requests"] == 6 and all(r["ok"] for r in result["results"])
    assert {r["answer"].get("model_version") for r in result["results"] if r["status"] == 200} == {"1"}
    assert [r["status"] for r in result["results"]] == [200, 200, 400, 400, 400, 401]
    assert tracking.version_by_alias(CHAMPION).version == 1
    released = xcom(run, "release")
    assert (released["transition"], released["to"], released["by"]) == (
        "to_champion",
        {"champion": "1"},
        f"DAG run package {run.run_id}",
    )


def test_the_served_bento_ships_the_service_and_its_packages_only(dags):
    """The bento the package run built and smoke-tested above: the service's modules and the locked
    packages they need, not the DAGs, the platform plumbing, the development support or Airflow."""
    import bentoml

    bento = max(bentoml.bentos.list(settings.load().bento_name), key=lambda b: b.info.creation_time)
    root = Path(bento.path)
    src = {p.relative_to(root / "src").as_posix() for p in (root / "src").rglob("*") if p.is_file()}
    assert {"lifecycle/__init__.py", "lifecycle/serving.py", "lifecycle/live.py"} <= src, src
    assert not [f for f in src if f.startswith(("lifecycle/platform/", "lifecycle/devtools/", "dags/"))], src
    assert not [f for f in src if Path(f).stem in ("demo", "sandbox", "setup", "cluster", "env", "preload")], src
    (requirements,) = root.rglob("env/python/requirements.txt")
    lines = [line for line in requirements.read_text().splitlines() if line and not line.startswith("#")]
    lock = {line for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    assert not [line for line in lines if line.lower().startswith("apache-airflow")], lines
    assert any(line.startswith("bentoml==") for line in lines) and set(lines) < lock and len(lines) < len(lock) * 0.7


def test_a_failing_smoke_test_releases_nothing(dags, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_MAX_AMOUNT", "10")  # the golden requests' amounts now break the contract
    run = dags["package"].test(run_conf={"version": "1"})
    assert run.state == "failed"
    assert states(run)["smoke_test"] == "failed" and states(run)["release"] == "upstream_failed"
    assert tries(run)["smoke_test"] == 1  # wrong answers are not retried


def test_score_logs_each_day_once_per_version_with_source_batch(dags):
    days = DAYS[-2:]
    run = dags["score"].test(run_conf={"dates": [d.isoformat() for d in days]})
    assert run.state == "success", states(run)
    curated = {d: lake.read_parquet(lake.partition("curated", "transactions", d)) for d in days}
    logged = prediction_reader.read(days=days, source="batch")
    assert len(logged) == sum(len(f) for f in curated.values())
    names = pseudonym.of(settings.load())  # the log keeps the events' pseudonyms
    assert set(logged["transaction_id"]) == {names.one(t) for f in curated.values() for t in f["transaction_id"]}
    assert set(logged["model_version"]) == {"1"} and set(logged["arm"]) == {CHAMPION}
    assert logged["fraud_probability"].between(0, 1).all() and logged["input_amount"].notna().all()
    files = sorted(p.name for d in days for p in prediction_log_folder(d).iterdir())
    assert files == ["batch-v1-champion.parquet"] * 2
    again = dags["score"].test(run_conf={"dates": [days[-1].isoformat()]})  # a rerun replaces, never duplicates
    assert again.state == "success"
    assert len(prediction_reader.read(days=days, source="batch")) == len(logged)
    assert sorted(p.name for d in days for p in prediction_log_folder(d).iterdir()) == files
    skipped = dags["score"].test(run_conf={"dates": [CORRUPT.isoformat()]})
    assert states(skipped) == {"score_days": "skipped"}  # quarantined: not scored
    mixed = dags["score"].test(run_conf={"dates": [CORRUPT.isoformat(), days[-1].isoformat()]})
    assert states(mixed) == {"score_days": "success"}  # the curated day is scored, the quarantined one named
    result = xcom(mixed, "score_days")
    assert [d["date"] for d in result["days"]] == [days[-1].isoformat()]
    assert list(result["skipped"]) == [CORRUPT.isoformat()]
    assert "no curated partition" in result["skipped"][CORRUPT.isoformat()]


def test_performance_reports_the_champion_on_labeled_batch_scores(dags):
    run = dags["performance"].test(run_conf={"as_of": DAYS[-1].isoformat()})
    assert run.state == "success", states(run)
    assert states(run) == {"compact_log": "success", "evaluate": "success", "emit_degraded": "skipped"}
    summary = xcom(run, "evaluate")
    assert summary["model_version"] == "1" and summary["labels"] >= settings.load().min_labels
    assert summary["groups"]["1/champion"]["sources"] == {"batch": summary["labels"]}
    scored = {
        t for d in DAYS[-2:] for t in lake.read_parquet(lake.partition("curated", "transactions", d))["transaction_id"]
    }
    labeled = set(lake.read_range("curated", "labels", DAYS[0], CORRUPT)["transaction_id"])
    assert summary["labels"] == len(scored & labeled)  # every batch-scored transaction with a label, once
    assert not summary["degraded"] and "within bounds" in summary["reason"]
    report = reports.latest(f"performance/{DAYS[-1].isoformat()}").parent
    assert summary["report_uri"] == str(report / "report.html")
    assert summary["report_url"] == f"{settings.load().ui_url}/reports/performance/{DAYS[-1]}/{report.name}/report.html"
    assert json.loads((report / "report.json").read_text())["summary"] == {
        k: v for k, v in summary.items() if k not in ("report_uri", "report_url")
    }
    # the report's page and its row in the index link the Airflow run that made it and the model card
    made_by = ui.run_url("performance", run.run_id)
    assert summary["airflow_run"]["url"] == made_by and made_by in (report / "report.html").read_text()
    index = (lake.zone("reports") / reports.INDEX).read_text()
    assert f'href="{made_by}"' in index and f'href="{reports.card_page("1")}"' in index


def test_canary_has_nothing_to_decide_without_a_canary(dags):
    run = dags["canary"].test()
    assert run.state == "success"
    assert states(run) == {
        "decide": "success",  # short-circuits: everything after it skipped in one step
        "route": "skipped",
        "approval": "skipped",
        "rollout": "skipped",
        "abort": "skipped",
        "unapproved": "skipped",
    }
    assert tracking.version_by_alias(CHAMPION).version == 1  # nothing moved


def prediction_log_folder(day: dt.date):
    return lake.root() / "predictions" / settings.load().model_name / f"date={day.isoformat()}"


def test_monitor_reports_without_drift_on_normal_data(dags):
    run = dags["monitor"].test()
    assert run.state == "success"
    assert states(run) == {"drift_report": "success", "emit_drift": "skipped"}
    summary = xcom(run, "drift_report")
    assert summary["drift"] is False and summary["report_uri"].endswith("report.html")
    assert f'href="{ui.run_url("monitor", run.run_id)}"' in (lake.zone("reports") / reports.INDEX).read_text()


def test_retraining_on_the_same_data_with_the_same_seed_registers_nothing(dags):
    again = dags["train"].test(run_after=CUTOFF, logical_date=None, run_conf={"seed": 11, "reason": "same data"})
    assert again.state == "success", states(again)
    assert states(again) == {
        "training_set": "skipped",
        "train_sklearn_logistic": "skipped",
        "train_xgboost": "skipped",
        "train_pytorch_mlp": "skipped",
        "register_challenger": "skipped",
    }
    model = settings.load().model_name
    assert [str(v.version) for v in tracking.client().search_model_versions(f"name='{model}'")] == ["1"]
    assert not list((lake.zone("training")).glob(f"*{again.run_id.replace(':', '_').replace('+', '_')}*"))


def test_a_threshold_set_as_an_airflow_variable_decides_the_next_run(dags):
    """What Admin → Variables writes (the metadata DB) is read by the next promote run: no restart."""
    from airflow.models import Variable  # the metadata DB's model, which the UI writes (not a task's SDK client)

    other = dags["train"].test(run_after=CUTOFF, logical_date=None, run_conf={"seed": 12, "reason": "other seed"})
    assert other.state == "success" and tracking.version_by_alias(CHALLENGER).version == 2
    Variable.set("lifecycle_fraud_promotion_margin", "0.9", description="test: a margin no model clears")  # noqa: AIR311
    try:
        run = dags["promote"].test()
    finally:
        Variable.delete("lifecycle_fraud_promotion_margin")  # noqa: AIR311
    assert states(run) == {"compare": "success", "approve": "skipped"}
    decision = xcom(run, "compare")
    assert decision["thresholds"]["promotion_margin"] == {
        "value": 0.9,
        "source": "Variable lifecycle_fraud_promotion_margin",
    }
    # set-up listed every threshold as a Variable with the value in force then
    assert decision["thresholds"]["promotion_min_lift"] == {
        "value": 1.2,
        "source": "Variable lifecycle_fraud_promotion_min_lift",
    }
    assert any("below the margin 0.9" in r for r in decision["reasons"])
    assert tracking.version_by_alias(CHAMPION).version == 1 and tracking.version_by_alias(CHALLENGER) is None
    rejected = tracking.client().get_model_version(settings.load().model_name, "2")
    assert rejected.tags["promotion_decision"].startswith("rejected")
    retired = registry.history("2")[-1]
    assert (retired["transition"], retired["by"]) == ("retire", f"DAG run promote {run.run_id}")


def test_rollback_dag_and_command_swap_champion_and_previous_champion(dags, mailbox):
    import json
    import subprocess
    import sys

    from lifecycle.aliases import PREVIOUS

    model = settings.load().model_name
    assert tracking.version_by_alias(PREVIOUS) is None
    failed = dags["rollback"].test()
    assert failed.state == "failed"  # nothing to roll back to
    [mail] = mailbox.messages()  # the failed task, alerted once
    assert (mail[alerts.HEADER], mail["Subject"]) == ("task_failed", "[fraud-detector] rollback.swap_aliases failed")
    # (an in-process run's failure callback gets no exception in its context: the task runner's does)
    task = f"/dags/rollback/runs/{quote(failed.run_id, safe='')}/tasks/swap_aliases"
    assert f'{task}">task</a>' in mail.get_body(("html",)).get_content()
    tracking.client().set_registered_model_alias(model, PREVIOUS, "2")  # an operator's earlier release
    run = dags["rollback"].test()
    assert run.state == "success" and xcom(run, "swap_aliases")["to"] == {"champion": "2", PREVIOUS: "1"}
    rolled = mailbox.messages()[-1]  # a rollback is alerted, with the history's line
    assert (rolled[alerts.HEADER], rolled["Subject"]) == ("rollback", "[fraud-detector] v2 rolled back to champion")
    assert registry.latest()["by"] == f"DAG run rollback {run.run_id}"
    assert registry.latest()["reason"] == "rolled back from the Airflow UI"
    back = subprocess.run([sys.executable, "-m", "lifecycle.rollback"], capture_output=True, text=True, timeout=120)
    assert back.returncode == 0, back.stderr[-2000:]
    assert json.loads(back.stdout.strip().splitlines()[-1])["to"] == {"champion": "1", PREVIOUS: "2"}
    assert registry.latest()["by"].endswith("(command line)")
    assert tracking.version_by_alias(CHAMPION).version == 1 and tracking.version_by_alias(PREVIOUS).version == 2
    # as canary, the previous champion must have passed the offline gate: v2 was rejected by it
    refused = dags["rollback"].test(run_conf={"as_canary": True})
    assert refused.state == "failed" and tracking.version_by_alias(CANARY) is None
