"""The live service (`bentoml serve lifecycle.serving:FraudService`) against real stores: it follows
the registry's aliases under load, routes a canary share sticky per card, logs every answer,
refuses a tampered version, guards its HTTP surface, and scores like training.

One module world: six featurized days, a seventh curated day whose transactions the online store
serves with the same snapshot as the point-in-time join (the parity sample), and three versions.
"""
import datetime as dt
import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from conftest import featurized_days, land_days
from lifecycle import (
    lake,
    live,
    loadgen,
    packaging,
    prediction_log,
    promotion,
    settings,
    tracking,
    training,
    validation,
)
from lifecycle.schema import CANARY, CHAMPION, PREVIOUS

FIRST = dt.date(2026, 10, 1)
POLL = "0.5"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    state = tmp_path_factory.mktemp("live")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(state))
        featurized_days(FIRST, 6)
        parity_day = land_days(FIRST + dt.timedelta(days=6), 1)[0]
        validation.validate_day(parity_day)  # curated, labeled, not featurized: served from the day-6 snapshot
        info = training.build_training_set("live__1", pd.Timestamp.now(tz="UTC"))
        versions = []
        for i, (flavour, seed) in enumerate((("sklearn_logistic", 7), ("xgboost", 7), ("sklearn_logistic", 9))):
            parent = training.start_parent_run(f"live__v{i + 1}", info, "test")
            result = training.train_candidate(flavour, info, parent, seed=seed)
            versions.append(str(training.register_best([result], info, f"live__v{i + 1}", "test")["version"]))
        promotion.release(versions[0], force=True)
        yield {"state": state, "versions": versions, "parity_day": parity_day}


def serve(world, **overrides):
    env = {"LIFECYCLE_STATE_DIR": str(world["state"]), "LIFECYCLE_SERVING_POLL_SECONDS": POLL,
           **{f"LIFECYCLE_{k.upper()}": str(v) for k, v in overrides.items()}}
    return packaging.serving(packaging.SERVICE, env)


@pytest.fixture(scope="module")
def service(world):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
        # one worker: each worker follows the registry on its own poll, so /status (which reaches one
        # of them) could say the canary is live while another worker still routes every card to champion
        with serve(world, serving_max_body_bytes=65536, serving_max_batch=50, canary_share=0.3,
                   serving_workers=1) as base:
            yield base


@pytest.fixture
def key(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    return settings.load().serving_api_key()


def transactions(day: dt.date, n: int | None = None) -> list[dict]:
    frame = lake.read_parquet(lake.partition("curated", "transactions", day))
    frame = frame.head(n) if n else frame
    return packaging.request_bodies(frame)


def raw(base: str, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(method, path, body, headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def status(base: str, key: str) -> dict:
    return packaging.post(f"{base}/status", {}, key)[1]


def set_alias(alias: str, version: str) -> float:
    tracking.client().set_registered_model_alias(settings.load().model_name, alias, version)
    return time.time()


def test_health_is_open_and_everything_else_needs_the_key(service, key):
    for path in ("/healthz", "/livez", "/readyz", "/docs.json"):
        assert raw(service, "GET", path, b"", {})[0] == 200, path
    body = json.dumps(packaging.GOOD).encode()
    json_type = {"Content-Type": "application/json"}
    assert raw(service, "POST", "/predict", body, json_type)[0] == 401
    wrong = {**json_type, "Authorization": "Bearer wrong-key-wrong-key"}
    assert raw(service, "POST", "/predict", body, wrong)[0] == 401
    assert raw(service, "POST", "/status", b"{}", json_type)[0] == 401
    code, answer = raw(service, "POST", "/predict", body, {**json_type, "Authorization": f"Bearer {key}"})
    assert code == 200 and json.loads(answer)["model_version"] == "1"
    log = (Path(settings.load().state_dir) / "bentoml").glob("serve-*.log")
    assert not any(key in p.read_text() for p in log)  # the key is never logged


def test_bad_requests_answer_4xx_never_5xx(service, key):
    auth = {"Authorization": f"Bearer {key}"}
    json_type = {**auth, "Content-Type": "application/json"}
    body = json.dumps(packaging.GOOD).encode()
    cases = [
        ({**auth, "Content-Type": "multipart/form-data"}, body, 415),  # no boundary: answered 500 before
        ({**auth, "Content-Type": "text/plain"}, body, 415),
        (auth, body, 415),
        (json_type, b"{not json", 400),
        (json_type, json.dumps({**packaging.GOOD, "amount": -5}).encode(), 400),
        (json_type, json.dumps({**packaging.GOOD, "amount": 0}).encode(), 400),
        (json_type, json.dumps({**packaging.GOOD, "country": "XX"}).encode(), 400),
        (json_type, json.dumps({**packaging.GOOD, "padding": "x" * 70_000}).encode(), 413),
    ]
    for headers, data, expected in cases:
        code, answer = raw(service, "POST", "/predict", data, headers)
        assert code == expected, (headers, data[:80], code, answer[:300])
    too_many = json.dumps({"transactions": [packaging.GOOD] * 51}).encode()
    assert raw(service, "POST", "/predict_batch", too_many, json_type)[0] == 400
    chunks = iter([b'{"transactions": [', *[json.dumps(packaging.GOOD).encode() + b"," for _ in range(400)], b"]}"])
    url = urlsplit(service)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("POST", "/predict_batch", chunks, {**json_type, "Transfer-Encoding": "chunked"}, encode_chunked=True)
    assert conn.getresponse().status == 413


def test_batch_answers_every_row_with_version_and_arm(service, key, world):
    rows = transactions(world["parity_day"], 50)
    code, answers = packaging.post(f"{service}/predict_batch", {"transactions": rows}, key)
    assert code == 200 and [a["transaction_id"] for a in answers] == [r["transaction_id"] for r in rows]
    assert {a["arm"] for a in answers} == {CHAMPION} and {a["model_version"] for a in answers} == {"1"}
    assert len({a["request_id"] for a in answers}) == 50


def test_buckets_are_uniform_and_stable():
    cards = [f"c{i:05d}" for i in range(20_000)]
    share = np.mean([live.bucket(c) < 0.1 for c in cards])
    assert abs(share - 0.1) < 0.01
    routing = live.Routing(champion=object(), canary=object())
    assert routing.arms(cards[:100], 0.1) == routing.arms(cards[:100], 0.1)
    assert set(routing.arms(cards, 0.0)) == {CHAMPION} and set(routing.arms(cards, 1.0)) == {CANARY}
    assert set(live.Routing(champion=object()).arms(cards, 0.5)) == {CHAMPION}  # no canary: all champion


def test_alias_moves_reach_the_service_under_load_without_a_failed_request(service, key, world):
    v1, v2, _ = world["versions"]
    bodies = transactions(world["parity_day"])
    with loadgen.Load(service, key, bodies, connections=4) as load:
        time.sleep(1)
        released = set_alias(CHAMPION, v2)
        switch = loadgen.wait_for_version(load, v2, released)
        time.sleep(2)
        rolled = set_alias(CHAMPION, v1)
        rollback = loadgen.wait_for_version(load, v1, rolled)
        time.sleep(1)
    assert load.errors() == [] and len(load.answers) > 500
    assert switch < 5 and rollback < 5, (switch, rollback)
    # once switched, only the new version answered: requests sent 1 s after the move never saw the old one
    late = [a for a in load.answers if released + switch + 1 < a.sent_at < rolled]
    assert late and {a.model_version for a in late} == {v2}
    print(f"switch {switch:.2f}s rollback {rollback:.2f}s over {len(load.answers)} requests, {load.percentiles()}")


def test_canary_share_is_sticky_per_card(service, key, world):
    v1, v2, _ = world["versions"]
    set_alias(CANARY, v2)
    try:
        deadline = time.monotonic() + 10
        while status(service, key)["serving"][CANARY] != v2 and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = transactions(world["parity_day"])
        first = {}
        for _ in range(2):  # every card twice: the same arm both times
            for i in range(0, len(rows), 50):
                code, answers = packaging.post(f"{service}/predict_batch", {"transactions": rows[i:i + 50]}, key)
                assert code == 200
                for row, a in zip(rows[i:i + 50], answers, strict=True):
                    assert a["model_version"] == (v2 if a["arm"] == CANARY else v1)
                    assert first.setdefault(row["card_id"], a["arm"]) == a["arm"], row["card_id"]
        share = np.mean([arm == CANARY for arm in first.values()])
        assert len(first) > 500 and abs(share - 0.3) < 0.06, (len(first), share)
    finally:
        tracking.client().delete_registered_model_alias(settings.load().model_name, CANARY)


def test_a_tampered_version_is_refused_and_the_loaded_model_keeps_serving(service, key, world):
    v1, _, v3 = world["versions"]
    client = tracking.client()
    logged = client.get_logged_model(client.get_model_version(settings.load().model_name, v3).source.split("/")[-1])
    artifact = Path(urlsplit(logged.artifact_location).path) / "python_model.pkl"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")  # stored bytes differ from the registered ones
    set_alias(CHAMPION, v3)
    try:
        deadline = time.monotonic() + 10
        while v3 not in status(service, key)["refused_versions"] and time.monotonic() < deadline:
            time.sleep(0.2)
        now = status(service, key)
        assert "artifact digest" in now["refused_versions"][v3] and now["serving"][CHAMPION] == v1
        code, answer = packaging.post(f"{service}/predict", packaging.GOOD, key)
        assert code == 200 and answer["model_version"] == v1
    finally:
        set_alias(CHAMPION, v1)


def test_training_and_serving_agree_on_features_and_probability(service, key, world):
    """For labeled transactions of the parity day: the point-in-time features and the probability
    training computes equal what the live service read from the online store and answered."""
    import mlflow

    from lifecycle.modeling import model_inputs

    labeled = training.labeled_transactions(pd.Timestamp.now(tz="UTC"))
    day = lake.read_parquet(lake.partition("curated", "transactions", world["parity_day"]))
    rows = packaging.request_bodies(day[day["transaction_id"].isin(labeled["transaction_id"])].head(40))
    assert len(rows) == 40  # labels of the day's transactions that arrived the same day
    code, answers = packaging.post(f"{service}/predict_batch", {"transactions": rows}, key)
    assert code == 200 and {a["model_version"] for a in answers} == {"1"}
    ids = [r["transaction_id"] for r in rows]
    offline = training.point_in_time_features(labeled[labeled["transaction_id"].isin(ids)])
    offline = offline.set_index("transaction_id").loc[ids]
    assert offline["card_avg_amount_7d"].notna().sum() > 20  # most cards have a snapshot: a real comparison
    model = mlflow.pyfunc.load_model(f"models:/{settings.load().model_name}/1").unwrap_python_model()
    np.testing.assert_allclose([a["fraud_probability"] for a in answers], model.predict_proba(offline),
                               rtol=1e-9, atol=1e-12)
    deadline = time.monotonic() + 10
    ids = {a["request_id"] for a in answers}
    while time.monotonic() < deadline:
        logged = prediction_log.read(days=[world["parity_day"]])
        logged = logged[logged["request_id"].isin(ids)] if len(logged) else logged
        if len(logged) == len(ids):
            break
        time.sleep(0.5)
    logged = logged.set_index("transaction_id").loc[offline.index]
    expected = model_inputs(offline.reset_index(), model.numeric)
    for col, values in expected.items():
        got = logged[f"input_{col}"].to_numpy()
        if values.dtype.kind in "OU":  # categoricals
            assert list(got) == list(values), col
        else:
            np.testing.assert_allclose(got.astype(float), values, rtol=1e-9, equal_nan=True, err_msg=col)


def test_every_answer_is_logged_and_sigterm_flushes_the_buffer(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    key = settings.load().serving_api_key()
    bodies = transactions(world["parity_day"])
    # the longest flush interval: rows answered in the last seconds are only on disk if SIGTERM flushed them
    # one worker: /status then counts every row this service logged
    with serve(world, prediction_flush_seconds=5, serving_source="sigterm-test", serving_workers=1) as base:
        with loadgen.Load(base, key, bodies, connections=2, total=600) as load:
            load.wait()
        counts = status(base, key)["prediction_log"]
    assert load.errors() == [] and len(load.answers) == 600
    logged = prediction_log.read(source="sigterm-test")
    assert len(logged) == 600 and set(logged["request_id"]) == {a.request_id for a in load.answers}
    assert counts["logged_rows"] + counts["buffered_rows"] == 600
    assert set(logged["event_timestamp"].dt.date) == {world["parity_day"]}
    assert logged["latency_ms"].gt(0).all() and logged["model_version"].eq("1").all()
    assert (Path(prediction_log.folder(settings.load())) / f"date={world['parity_day']}").is_dir()


def test_rollback_command_moves_champion_and_previous(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    v1, v2, _ = world["versions"]
    promotion.release(v2, force=True, canary=False)
    assert promotion.rollback() == {CHAMPION: v1, PREVIOUS: v2}


def test_the_openapi_document_is_valid_3_0_and_the_service_keeps_to_it(service, key, world):
    import subprocess
    import sys

    code, doc = raw(service, "GET", "/docs.json", b"", {})
    doc = json.loads(doc)
    assert code == 200 and doc["openapi"].startswith("3.0") and "exclusiveMinimum" not in json.dumps(doc)
    predict = doc["paths"]["/predict"]["post"]
    assert {"200", "400", "401", "413", "415", "503"} <= set(predict["responses"]) and "500" not in predict["responses"]
    schemathesis = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run([str(schemathesis), "run", f"{service}/docs.json", "-H", f"Authorization: Bearer {key}",
                           "--checks", "all", "--max-examples", "60", "--seed", "1", "--workers", "1"],
                          capture_output=True, text=True, timeout=600, cwd=world["state"])  # its cache folder
    assert done.returncode == 0 and "No issues found" in done.stdout, done.stdout[-4000:]


def test_shadow_scores_the_challenger_on_every_request_and_never_returns_it(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    v1, v2, _ = world["versions"]
    set_alias("challenger", v2)
    key = settings.load().serving_api_key()
    bodies = transactions(world["parity_day"], 30)
    with serve(world, shadow="true", serving_source="shadow-test") as base:
        code, answers = packaging.post(f"{base}/predict_batch", {"transactions": bodies}, key)
    assert code == 200 and {(a["arm"], a["model_version"]) for a in answers} == {(CHAMPION, v1)}
    logged = prediction_log.read(source="shadow-test")
    assert len(logged) == 60 and logged.groupby("arm")["model_version"].agg(set).to_dict() == \
        {CHAMPION: {v1}, "shadow": {v2}}
    by_arm = logged.pivot(index="request_id", columns="arm", values="transaction_id")
    assert set(by_arm.index) == {a["request_id"] for a in answers} and by_arm.notna().all().all()
