"""Canary decisions on real evidence: live traffic through the serving code (in process) with the
canary arm and shadow scores in the prediction log, labels from the lake, versions in MLflow."""

import datetime as dt
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from conftest import world_from
from lifecycle import canary, lake, live, promotion, registry, scoring, settings, tracking, training
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, PREVIOUS


def register(flavour: str, key: str, seed: int, shuffle: bool = False) -> str:
    info = training.build_training_set(key, pd.Timestamp.now(tz="UTC"))
    if shuffle:  # a model that learned noise: what a broken training job registers
        from airflow.sdk import ObjectStoragePath

        part = ObjectStoragePath(info["uri"]) / "train.parquet"
        frame = training.load_part(info["uri"], "train")
        frame["is_fraud"] = np.random.default_rng(seed).permutation(frame["is_fraud"].to_numpy())
        part.write_bytes(lake.parquet_bytes(frame))
    parent = training.start_parent_run(key, info, "test")
    result = training.train_candidate(flavour, info, parent, seed=seed)
    return str(training.register_best([result], info, key, "test")["version"])


def replay(days: list[dt.date]) -> None:
    """Every curated transaction of ``days`` through the live model, 100 per request."""
    from lifecycle.serving import Request, _columns

    model = live.LiveModel(settings.load()).start()
    try:
        model.follower.refresh()
        frame = lake.read_range("curated", "transactions", days[0], days[-1])
        from lifecycle import packaging

        bodies = [Request(**b).model_dump() for b in packaging.request_bodies(frame)]
        for i in range(0, len(bodies), 100):
            model.predict(_columns(bodies[i : i + 100]))
    finally:
        model.close()


@pytest.fixture(scope="module")
def canary_world(tmp_path_factory, featurized_template):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(tmp_path_factory.mktemp("canary")))
        for name, value in {
            "CANARY_MODE": "true",
            "CANARY_SHARE": "0.5",
            "MIN_LABELS": "500",
            "CANARY_MIN_REQUESTS": "200",
            "SERVING_POLL_SECONDS": "60",
        }.items():
            mp.setenv(f"LIFECYCLE_{name}", value)
        days = world_from(featurized_template, 8)
        first = register("xgboost", "canary__v1", seed=7)
        promotion.release(first, force=True)
        yield {"days": days, "first": first, "mp": mp}


def test_a_worse_canary_is_aborted_and_the_champion_keeps_serving(canary_world):
    worse = register("sklearn_logistic", "canary__worse", seed=3, shuffle=True)
    released = promotion.release(worse, force=True)
    assert (released["transition"], released["to"]) == (
        "to_canary",
        {CHAMPION: canary_world["first"], CANARY: worse, CHALLENGER: worse},  # still the challenger: shadowed
    )
    assert released["at"] >= tracking.version_by_alias(CANARY).tags["canary_started_at"]
    assert scoring.arms(settings.load()) == [(CHAMPION, canary_world["first"]), ("shadow", worse)]  # batch too
    replay(canary_world["days"][2:6])
    decision = canary.decide()
    assert decision["decision"] == canary.ABORT, decision["reasons"]
    gates = decision["gates"]
    assert gates["operational"]["result"] == canary.PASS and gates["operational"]["requests"] > 3000
    assert gates["quality"]["result"] == canary.FAIL and gates["quality"]["labels"] >= 500
    assert gates["quality"]["canary"] < gates["quality"]["champion"]
    aborted = canary.abort(decision, "; ".join(r for r in decision["reasons"] if ": fail" in r))
    assert tracking.version_by_alias(CANARY) is None
    assert str(tracking.version_by_alias(CHAMPION).version) == canary_world["first"]
    mv = tracking.client().get_model_version(settings.load().model_name, worse)
    assert mv.tags["canary_outcome"] == "abort" and "quality: fail" in mv.tags["canary_reason"]
    runs = tracking.client().search_runs(
        [tracking.experiment_id()], f"tags.kind = 'canary_decision' and tags.canary_version = '{worse}'"
    )
    assert len(runs) == 1 and runs[0].data.tags["outcome"] == "abort"
    assert (aborted["transition"], aborted["evidence"]) == ("abort", f"MLflow run {runs[0].info.run_id}")
    assert registry.history(worse)[-1] == {k: v for k, v in aborted.items() if k != "recorded"}
    assert runs[0].data.metrics["quality_labels"] >= 500


def test_a_canary_as_good_as_the_champion_is_rolled_out(canary_world):
    canary_world["mp"].setenv("LIFECYCLE_CANARY_MARGIN", "0.1")
    good = register("xgboost", "canary__good", seed=11)
    promotion.release(good, force=True)
    replay(canary_world["days"][2:6])
    decision = canary.decide()
    assert decision["decision"] == canary.ROLLOUT, decision["reasons"]
    assert decision["gates"]["distribution"]["psi"] < settings.load().canary_max_psi
    assert canary.rollout(decision, "test")["to"] == {CHAMPION: good, PREVIOUS: canary_world["first"]}
    assert tracking.version_by_alias(CANARY) is None and str(tracking.version_by_alias(CHAMPION).version) == good


def test_a_canary_that_fails_to_score_never_fails_a_request_and_is_aborted(canary_world):
    from lifecycle import packaging, prediction_reader
    from lifecycle.serving import Request, _columns

    champion = str(tracking.version_by_alias(CHAMPION).version)
    broken = register("xgboost", "canary__broken", seed=5)
    promotion.release(broken, force=True)
    model = live.LiveModel(settings.load()).start()
    try:
        model.follower.refresh()
        model.follower.routing.canary.model.numeric = ["amount"]  # its inputs no longer fit its trees
        frame = lake.read_parquet(lake.partition("curated", "transactions", canary_world["days"][6])).head(600)
        answers = []
        for i in range(0, 600, 50):
            rows = [Request(**b).model_dump() for b in packaging.request_bodies(frame.iloc[i : i + 50])]
            answers += model.predict(_columns(rows))
    finally:
        model.close()
    assert len(answers) == 600 and {(a["arm"], a["model_version"]) for a in answers} == {(CHAMPION, champion)}
    log = prediction_reader.read(days=[canary_world["days"][6]])
    failed = log[(log["arm"] == CANARY) & (log["model_version"] == broken)]
    assert len(failed) > 200 and failed["fraud_probability"].isna().all()
    assert (failed["error"] == "KeyError: 'hour'").all()  # why it failed, on every row
    decision = canary.decide()
    assert decision["decision"] == canary.ABORT
    assert decision["gates"]["operational"]["result"] == canary.FAIL
    assert decision["gates"]["operational"]["error_rate"] == 1.0
    canary.abort(decision, decision["gates"]["operational"]["why"])
    assert tracking.version_by_alias(CANARY) is None and str(tracking.version_by_alias(CHAMPION).version) == champion


@pytest.mark.timeout(900)
def test_a_rejected_rollout_approval_aborts_the_canary_through_a_real_scheduler(canary_world):
    """With LIFECYCLE_REQUIRE_APPROVAL the canary DAG, under a real scheduler, api-server and
    triggerer, asks before a rollout its gates allow; the user's Reject (REST API) aborts it."""
    from lifecycle.devtools import demo
    from lifecycle.devtools.airflow_client import AirflowServer
    from lifecycle.platform import setup

    mp = canary_world["mp"]
    for name, value in {
        "REQUIRE_APPROVAL": "true",
        "CANARY_MARGIN": "0.1",
        "AIRFLOW_PORT": "18190",
        "SERVING_PORT": "18194",
        "SCHEDULE_START": (dt.date.today() + dt.timedelta(days=1)).isoformat(),
    }.items():
        mp.setenv(f"LIFECYCLE_{name}", value)
    champion = str(tracking.version_by_alias(CHAMPION).version)
    candidate = register("xgboost", "canary__rejected", seed=13)
    promotion.release(candidate, force=True)
    replay(canary_world["days"][2:6])
    assert canary.decide()["decision"] == canary.ROLLOUT  # the gates alone would roll it out
    setup.main()
    server, asked = AirflowServer(), []
    try:
        server.start()
        server.wait_for_dags({"canary"})
        server.trigger("canary")
        server.wait_idle(
            timeout=600,
            answer=lambda request: (asked.append(request) or "Reject") if demo.answer_approval(request) else None,
        )  # answered as the demo's user answers
        run = server.runs("canary")[-1]
        states = {t["task_id"]: t["state"] for t in server.task_instances("canary", run["dag_run_id"])}
    finally:
        server.stop()
    assert [a["subject"] for a in asked] == [f"Roll canary v{candidate} out to champion?"]
    assert run["state"] == "success" and states["decide"] == states["approval"] == "success"
    assert states["rollout"] == states["abort"] == "skipped" and states["unapproved"] == "success"
    assert tracking.version_by_alias(CANARY) is None and str(tracking.version_by_alias(CHAMPION).version) == champion
    mv = tracking.client().get_model_version(settings.load().model_name, candidate)
    assert (mv.tags["canary_outcome"], mv.tags["canary_reason"]) == ("abort", "rollout rejected by admin")
    aborted = registry.history(candidate)[-1]
    assert (aborted["transition"], aborted["reason"]) == ("abort", "rollout rejected by admin")
    assert aborted["by"] == f"DAG run canary {run['dag_run_id']}" and aborted["dag_run"].endswith(
        f"/dags/canary/runs/{quote(run['dag_run_id'], safe='')}"
    )


def test_no_canary_is_named():
    with pytest.raises(canary.NoCanary, match="no canary alias"):
        canary.decide()
