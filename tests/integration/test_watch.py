"""The watch over a live champion, against a real service, MLflow registry, Feast stores and SMTP
server, the watch DAG run with dag.test(): a champion that fails to score is answered for by the
previous champion, alerted and rolled back; features that stall are alerted and never rolled back.

One module world: six featurized days, a seventh curated day served from the day-6 snapshot, v1 (a
working model, released) and v2 (a model out of step with its features: every score fails).
"""

import datetime as dt
import re
import time
import urllib.request

import pandas as pd
import pytest
from airflow.dag_processing.dagbag import DagBag
from dagruns import states

from conftest import ROOT, land_days, world_from
from lifecycle import (
    alerts,
    contract,
    feature_store,
    lake,
    packaging,
    prediction_reader,
    promotion,
    pseudonym,
    registry,
    settings,
    tracking,
    training,
    validation,
)
from lifecycle.aliases import CHAMPION, FALLBACK, PREVIOUS
from lifecycle.devtools import loadgen
from lifecycle.platform import setup


def broken(result: dict, parent: str) -> dict:
    """``result``'s model made to expect one input more than the feature service gives (every
    score raises), logged and digested as training logs a candidate."""
    import mlflow

    model = mlflow.pyfunc.load_model(f"runs:/{result['run_id']}/model").unwrap_python_model()
    model.estimator.n_features_in_ += 1
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(), run_name="broken", parent_run_id=parent, nested=True
    ) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=model, pip_requirements=["mlflow"])
        digest = tracking.logged_model_digest(info.model_uri)
        mlflow.set_tag("artifact_digest", digest)
    return {**result, "run_id": run.info.run_id, "artifact_digest": digest}


@pytest.fixture(scope="module")
def world(tmp_path_factory, featurized_template):
    state = tmp_path_factory.mktemp("watch")
    setup.main()  # airflow db migrate and the Variables: the in-process Airflow's metadata DB (the session's)
    bag = DagBag(dag_folder=str(ROOT / "dags"), include_examples=False)
    assert bag.import_errors == {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(state))
        days = world_from(featurized_template, 6)
        served_day = land_days(days[-1] + dt.timedelta(days=1), 1)[0]
        validation.validate_day(served_day)  # curated, not featurized: served from the day-6 snapshot
        info = training.build_training_set("watch__1", pd.Timestamp.now(tz="UTC"))
        parent = training.start_parent_run("watch__1", info, "test")
        good = training.train_candidate("sklearn_logistic", info, parent, seed=7)
        v1 = str(training.register_best([good], info, "watch__v1", "test")["version"])
        v2 = str(training.register_best([broken(good, parent)], info, "watch__v2", "test")["version"])
        promotion.release(v1, force=True)
        yield {"state": state, "v1": v1, "v2": v2, "day": served_day, "dag": bag.dags["watch"]}


@pytest.fixture
def live(world, monkeypatch, mailbox):
    """The live service on this world (one worker: /status counts all its rows), and the settings
    the watch's run in this process reads it with."""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    monkeypatch.setenv("LIFECYCLE_MAX_LATENCY_MS", "1000")  # a loaded 2-core machine: breaches are errors here
    env = {"LIFECYCLE_STATE_DIR": str(world["state"]), "LIFECYCLE_SERVING_POLL_SECONDS": "0.5"}
    with packaging.serving(packaging.SERVICE, {**env, "LIFECYCLE_SERVING_WORKERS": "1"}) as base:
        monkeypatch.setenv("LIFECYCLE_SERVING_PORT", base.rsplit(":", 1)[1])
        yield base, settings.load().serving_api_key(), mailbox


def bodies(day: dt.date, shift: dt.timedelta = dt.timedelta(0)) -> list[dict]:
    frame = lake.read_parquet(lake.partition("curated", "transactions", day)).head(300)
    frame["event_timestamp"] = frame["event_timestamp"] + shift
    return packaging.request_bodies(frame)


def send(base: str, key: str, requests: list[dict]) -> list:
    with loadgen.Load(base, key, requests, connections=2, total=len(requests)) as load:
        load.wait()
    assert load.errors() == [], load.errors()[:3]
    return load.answers


def wait_logged(request_ids: set[str]) -> pd.DataFrame:
    """The live rows of these requests, once the service's flush put them in the lake."""
    for _ in range(60):
        rows = prediction_reader.read(source="live")
        rows = rows[rows["request_id"].isin(request_ids)] if len(rows) else rows
        if len(rows) and set(rows["request_id"]) == request_ids:
            return rows
        time.sleep(0.5)
    raise AssertionError("the service did not log its answers within 30 s")


def test_a_failing_champion_is_answered_for_by_the_previous_one_then_rolled_back(world, live):
    base, key, mailbox = live
    registry.to_champion(world["v2"], "a test makes the broken version champion")
    assert registry.aliases()[PREVIOUS] == world["v1"]
    deadline = time.monotonic() + 30
    while packaging.post(f"{base}/status", {}, key)[1]["serving"][CHAMPION] != world["v2"]:
        assert time.monotonic() < deadline, "the service never followed the alias"
        time.sleep(0.2)
    answers = send(base, key, bodies(world["day"]))
    # every request answered, by v1 under arm fallback; v2's failure logged beside each
    assert {(a.status, a.arm, a.model_version) for a in answers} == {(200, FALLBACK, world["v1"])}
    rows = wait_logged({a.request_id for a in answers})
    failed = rows[rows["arm"] == CHAMPION]
    assert len(failed) == len(answers) and failed["model_version"].eq(world["v2"]).all()
    assert failed["error"].str.contains("expecting").all()  # sklearn's own words for the mismatch
    status = packaging.post(f"{base}/status", {}, key)[1]
    arms = status["live"]["arms"]
    assert arms[CHAMPION]["errors"] == arms[CHAMPION]["requests"] == len(answers)
    assert arms[FALLBACK]["error_rate"] == 0.0 and status["fallback"] == world["v1"]
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    series = f'lifecycle_rows_total{{arm="champion",model_version="{world["v2"]}",outcome="error"}}'
    errors = re.search(rf"{re.escape(series)} (\S+)", metrics)
    assert errors and float(errors.group(1)) == len(answers)

    run = world["dag"].test()
    assert run.state == "success" and states(run) == {
        "check": "success",
        "approval": "skipped",
        "roll_back": "success",
        "refused": "skipped",
    }
    assert registry.aliases()[CHAMPION] == world["v1"] and registry.aliases()[PREVIOUS] == world["v2"]
    moved = registry.latest()
    assert moved["transition"] == "roll_back" and moved["by"] == f"DAG run watch {run.run_id}"
    assert "error rate 1.0000 > 0.01" in moved["reason"]
    mail = {m[alerts.HEADER]: m for m in mailbox.messages()}
    assert mail["live_breach"]["Subject"] == f"[fraud-detector] live champion v{world['v2']}: error rate breached"
    assert f"rolling back to v{world['v1']}" in mail["live_breach"].get_body().get_content()
    assert mail["rollback"]["Subject"] == f"[fraud-detector] v{world['v1']} rolled back to champion"

    again = world["dag"].test()  # the same breach in the next run: v2 no longer serves, nothing to do
    assert states(again)["roll_back"] == "skipped" and registry.latest() == moved
    assert [m[alerts.HEADER] for m in mailbox.messages()].count("live_breach") == 1


def test_stalled_features_are_served_as_unknown_logged_with_their_age_and_alerted_only(world, live):
    base, key, mailbox = live
    before = registry.aliases()
    fresh = send(base, key, bodies(world["day"])[:100])
    stale_bodies = bodies(world["day"], dt.timedelta(days=3))  # the features DAG stalled 3 days ago
    stale = send(base, key, stale_bodies)
    assert all(a.status == 200 and a.arm == CHAMPION for a in fresh + stale)
    code, answer = packaging.post(f"{base}/predict", stale_bodies[0], key)
    assert code == 200 and answer[contract.current().known] is False  # the day-6 snapshot is past its TTL by then
    rows = wait_logged({a.request_id for a in fresh + stale}).set_index("request_id")
    # the logged age against Feast's own online read of the same snapshot's timestamp
    store = feature_store.get_store()
    names = pseudonym.of(settings.load())  # the log keeps the entities' pseudonyms: the raw ids they stand for
    raw = {names.one(b[c]): b[c] for b in bodies(world["day"])[:100] + stale_bodies for c in ("card_id", "merchant_id")}
    for answer in fresh[:5] + stale[:5]:
        row = rows.loc[answer.request_id]
        feats = store.get_online_features(
            features=store.get_feature_service("fraud_model_v1"),
            entity_rows=[{"card_id": raw[row["card_id"]], "merchant_id": raw[row["merchant_id"]]}],
        ).to_dict(include_event_timestamps=True)
        oldest = min(v[0] for k, v in feats.items() if k.endswith("__ts") and v[0])  # epoch seconds
        expected = pd.Timestamp(row["event_timestamp"]).timestamp() - oldest
        assert row["feature_age_s"] == pytest.approx(expected, abs=1.0)  # Feast's stamps are whole seconds
        assert bool(row["missing_features"]) == (answer in stale)

    run = world["dag"].test()
    assert run.state == "success" and states(run)["roll_back"] == "skipped"
    assert registry.aliases() == before  # a rollback cannot mend old features
    subjects = sorted(m["Subject"] for m in mailbox.messages() if m[alerts.HEADER] == "live_breach")
    v = world["v1"]
    assert subjects == [
        f"[fraud-detector] live champion v{v}: feature age breached",
        f"[fraud-detector] live champion v{v}: missing features breached",
    ]
