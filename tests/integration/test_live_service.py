"""The live service (`bentoml serve lifecycle.serving:ModelService`) against real stores: it follows
the registry's aliases under load, routes a canary share sticky per card, logs every answer,
refuses a tampered version, guards its HTTP surface, and scores like training.

One module world: six featurized days, a seventh curated day whose transactions the online store
serves with the same snapshot as the point-in-time join (the parity sample), and three versions.
"""

import datetime as dt
import http.client
import json
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from conftest import land_days, world_from
from lifecycle import (
    contract,
    lake,
    live,
    packaging,
    point_in_time,
    prediction_log,
    prediction_reader,
    promotion,
    pseudonym,
    registry,
    settings,
    tracking,
    training,
    validation,
)
from lifecycle.aliases import CANARY, CHAMPION, PREVIOUS
from lifecycle.devtools import loadgen

POLL = "0.5"

GOOD = contract.current().example  # the use case's valid request


@pytest.fixture(scope="module")
def world(tmp_path_factory, featurized_template):
    state = tmp_path_factory.mktemp("live")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(state))
        days = world_from(featurized_template, 6)
        parity_day = land_days(days[-1] + dt.timedelta(days=1), 1)[0]
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
    env = {
        "LIFECYCLE_STATE_DIR": str(world["state"]),
        "LIFECYCLE_SERVING_POLL_SECONDS": POLL,
        **{f"LIFECYCLE_{k.upper()}": str(v) for k, v in overrides.items()},
    }
    return packaging.serving(packaging.SERVICE, env)


@pytest.fixture(scope="module")
def service(world):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
        # one worker: each worker follows the registry on its own poll, so /status (which reaches one
        # of them) could say the canary is live while another worker still routes every card to champion
        with serve(
            world, serving_max_body_bytes=65536, serving_max_batch=50, canary_share=0.3, serving_workers=1
        ) as base:
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
    body = json.dumps(GOOD).encode()
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
    body = json.dumps(GOOD).encode()
    cases = [
        ({**auth, "Content-Type": "multipart/form-data"}, body, 415),  # no boundary: answered 500 before
        ({**auth, "Content-Type": "text/plain"}, body, 415),
        (auth, body, 415),
        (json_type, b"{not json", 400),
        (json_type, json.dumps({**GOOD, "amount": -5}).encode(), 400),
        (json_type, json.dumps({**GOOD, "amount": 0}).encode(), 400),
        (json_type, json.dumps({**GOOD, "country": "XX"}).encode(), 400),
        (json_type, json.dumps({**GOOD, "padding": "x" * 70_000}).encode(), 413),
    ]
    for headers, data, expected in cases:
        code, answer = raw(service, "POST", "/predict", data, headers)
        assert code == expected, (headers, data[:80], code, answer[:300])
    too_many = json.dumps({"events": [GOOD] * 51}).encode()
    assert raw(service, "POST", "/predict_batch", too_many, json_type)[0] == 400
    chunks = iter([b'{"events": [', *[json.dumps(GOOD).encode() + b"," for _ in range(400)], b"]}"])
    url = urlsplit(service)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("POST", "/predict_batch", chunks, {**json_type, "Transfer-Encoding": "chunked"}, encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (413, {"error": "body exceeds the limit of 65536 bytes"})


def logged_rows(service: str, key: str) -> int:
    """Rows the (one-worker) service has put in the prediction log, flushed or still buffered."""
    counts = status(service, key)["prediction_log"]
    return counts["logged_rows"] + counts["writing_rows"] + counts["buffered_rows"]


def problems(answer: bytes, model: str = "Transaction") -> list[tuple[tuple, str, str]]:
    """A 400's validation details as (location, error type, message); its error names the
    contract's request model (or its batch), never one of BentoML's own classes."""
    body = json.loads(answer)
    n = len(body["detail"])
    assert set(body) == {"error", "detail"} and body["error"] == f"{n} validation error for {model}", body
    return [(tuple(d["loc"]), d["type"], d["msg"]) for d in body["detail"]]


def test_contract_breaches_answer_400_naming_the_field_and_the_rule_and_are_never_logged(world, service, key):
    """Each breach of the request contract answers 400 with the field and the rule it broke; bodies
    too large answer 413 and bodies that are not JSON 415, saying why. None reaches a model, so none
    is in the prediction log, and the service answers good requests after them."""
    cfg = settings.load()
    auth = {"Authorization": f"Bearer {key}"}
    json_type = {**auth, "Content-Type": "application/json"}
    good = {**GOOD, "transaction_id": "good-after-breaches"}
    bad = lambda name, **change: {**GOOD, "transaction_id": f"breach-{name}", **change}  # noqa: E731
    missing = {k: v for k, v in bad("missing").items() if k != "card_id"}
    before = logged_rows(service, key)
    breaches = [  # (body, the field, pydantic's error type, words of the message)
        (missing, ("card_id",), "missing", "Field required"),
        (bad("amount-text", amount="12.5"), ("amount",), "float_type", "Input should be a valid number"),
        (bad("amount-negative", amount=-5), ("amount",), "greater_than_equal", "greater than or equal to 0.01"),
        (bad("amount-zero", amount=0), ("amount",), "greater_than_equal", "greater than or equal to 0.01"),
        (
            bad("amount-huge", amount=cfg.max_amount + 1),
            ("amount",),
            "less_than_equal",
            f"less than or equal to {cfg.max_amount:g}",
        ),
        (bad("country", country="XX"), ("country",), "literal_error", "Input should be 'US', 'GB'"),
        (bad("category", merchant_category="casino"), ("merchant_category",), "literal_error", "Input should be"),
        (bad("card-empty", card_id=""), ("card_id",), "string_too_short", "at least 1 character"),
        (bad("card-number", card_id=12345), ("card_id",), "string_type", "Input should be a valid string"),
        (
            bad("time-naive", event_timestamp="2026-10-20T12:00:00"),
            ("event_timestamp",),
            "value_error",
            "must be an RFC 3339 timestamp with a zone",
        ),
        (
            bad("time-number", event_timestamp=1760961600),
            ("event_timestamp",),
            "value_error",
            "must be an RFC 3339 timestamp with a zone",
        ),
    ]
    for body, field, kind, words in breaches:
        code, answer = raw(service, "POST", "/predict", json.dumps(body).encode(), json_type)
        assert code == 400, (body, code, answer[:300])
        [(loc, got_kind, msg)] = problems(answer)
        assert (loc[-len(field) :], got_kind) == (field, kind) and words in msg, (body, loc, got_kind, msg)
    # a batch names the row and the field; too many rows name the limit
    rows = [bad(f"batch-{i}") for i in range(5)]
    rows[3] = bad("batch-3", amount=-1)
    code, answer = raw(service, "POST", "/predict_batch", json.dumps({"events": rows}).encode(), json_type)
    [(loc, kind, msg)] = problems(answer, "TransactionBatch")
    assert code == 400 and (loc[-3:], kind) == (("events", 3, "amount"), "greater_than_equal"), answer[:300]
    too_many = {"events": [bad(f"many-{i}") for i in range(51)]}
    code, answer = raw(service, "POST", "/predict_batch", json.dumps(too_many).encode(), json_type)
    [(loc, kind, msg)] = problems(answer, "TransactionBatch")
    assert code == 400 and (loc[-1:], kind) == (("events",), "too_long") and "at most 50 items" in msg, answer
    code, answer = raw(service, "POST", "/predict", b'{"transaction_id": "breach-json", ', json_type)
    [(loc, kind, msg)] = problems(answer)
    assert (code, loc, kind) == (400, (), "json_invalid") and msg.startswith("Invalid JSON"), answer[:300]
    # bodies over the limit (65536 here) and bodies that are not JSON are refused before any parsing
    oversized = json.dumps({**bad("oversized"), "padding": "x" * 70_000}).encode()
    code, answer = raw(service, "POST", "/predict", oversized, json_type)
    assert (code, json.loads(answer)) == (
        413,
        {"error": f"body of {len(oversized)} bytes exceeds the limit of 65536 bytes"},
    )
    body = json.dumps(bad("not-json")).encode()
    for media, shown in (
        ("text/plain", "'text/plain'"),
        ("multipart/form-data", "'multipart/form-data'"),
        (None, "'none'"),
    ):
        headers = {**auth, "Content-Type": media} if media else auth
        code, answer = raw(service, "POST", "/predict", body, headers)
        assert (code, json.loads(answer)) == (
            415,
            {"error": f"content type {shown} is not supported: send application/json"},
        ), media
    # the service still answers; a field the contract does not name is ignored (the published schema
    # allows additional properties): scored as the request without it
    answers = []
    for body in (good, {**good, "note": "not in the contract"}):
        code, answer = raw(service, "POST", "/predict", json.dumps(body).encode(), json_type)
        assert code == 200, answer[:300]
        answers.append(json.loads(answer))
    assert [(a["transaction_id"], a["model_version"]) for a in answers] == [(good["transaction_id"], "1")] * 2
    assert answers[0]["fraud_probability"] == answers[1]["fraud_probability"]
    assert logged_rows(service, key) == before + 2  # only the two answered requests were scored and logged
    deadline, answered = time.monotonic() + 10, {a["request_id"] for a in answers}
    while time.monotonic() < deadline:  # flushed every LIFECYCLE_PREDICTION_FLUSH_SECONDS
        logged = prediction_reader.read(days=[dt.date.fromisoformat(good["event_timestamp"][:10])])
        if len(logged) and answered <= set(logged["request_id"]):
            break
        time.sleep(0.5)
    names = pseudonym.of(settings.load())  # the log keeps ids as pseudonyms, never the raw ones
    tried = [good, *(b for b, *_ in breaches), *rows, *too_many["events"], bad("oversized"), bad("not-json")]
    mine = logged[logged["transaction_id"].isin(names.many(r.get("transaction_id") for r in tried))]
    assert sorted(mine["request_id"]) == sorted(answered) and set(mine["transaction_id"]) == {
        names.one(good["transaction_id"])
    }
    assert not set(logged["transaction_id"]) & {r.get("transaction_id") for r in tried}  # no raw id
    # each refusal is one line of the service's log, naming the request model: no traceback
    log = (world["state"] / "bentoml" / f"serve-{urlsplit(service).port}.log").read_text()
    assert "Traceback" not in log
    refused = "[WARNING] [entry_service:fraud_service:1] Exception on /predict [POST]: 1 validation error(s) for"
    assert log.count(f"{refused} Transaction (") >= len(breaches) + 1
    assert log.count("Exception on /predict_batch [POST]: 1 validation error(s) for TransactionBatch (") >= 2


def test_each_entity_says_whether_it_had_stored_features(service, key, world):
    json_type = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    # within the features' TTL of the day-6 snapshot (served as unknown later: the training join's rule)
    at = {"event_timestamp": f"{world['parity_day']}T12:00:00Z"}
    answers = {}
    for name, change in (
        ("both", {}),
        ("new-merchant", {"merchant_id": "m-never-seen"}),
        ("new-card", {"card_id": "c-never-seen"}),
    ):
        code, answer = raw(
            service,
            "POST",
            "/predict",
            json.dumps({**GOOD, **at, "transaction_id": f"known-{name}", **change}).encode(),
            json_type,
        )
        assert code == 200, answer[:300]
        answers[name] = json.loads(answer)
    assert (answers["both"]["known_card"], answers["both"]["known_merchant"]) == (True, True)
    assert (answers["new-merchant"]["known_card"], answers["new-merchant"]["known_merchant"]) == (True, False)
    assert (answers["new-card"]["known_card"], answers["new-card"]["known_merchant"]) == (False, True)


def test_batch_answers_every_row_with_version_and_arm(service, key, world):
    rows = transactions(world["parity_day"], 50)
    code, answers = packaging.post(f"{service}/predict_batch", {"events": rows}, key)
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
        time.sleep(2)
    assert load.errors() == [], load.errors()[:3]
    assert switch < 5 and rollback < 5, (switch, rollback)
    # the load ran through every phase; once switched, only the new version answered: requests sent
    # 1 s after a move never saw the old one (how many requests fit depends on the machine's load)
    before = [a for a in load.answers if a.sent_at < released]
    late = [a for a in load.answers if released + switch + 1 < a.sent_at < rolled]
    back = [a for a in load.answers if a.sent_at > rolled + rollback + 1]
    assert before and {a.model_version for a in before} == {v1}
    assert late and {a.model_version for a in late} == {v2}
    assert back and {a.model_version for a in back} == {v1}
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
                code, answers = packaging.post(f"{service}/predict_batch", {"events": rows[i : i + 50]}, key)
                assert code == 200
                for row, a in zip(rows[i : i + 50], answers, strict=True):
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
        code, answer = packaging.post(f"{service}/predict", GOOD, key)
        assert code == 200 and answer["model_version"] == v1
    finally:
        set_alias(CHAMPION, v1)


def logged_answers(answers: list[dict], day: dt.date) -> pd.DataFrame:
    """The prediction log's rows of ``answers`` (events of ``day``), once the service flushed them (10 s at most)."""
    ids = {a["request_id"] for a in answers}
    deadline = time.monotonic() + 10
    while True:
        logged = prediction_reader.read(days=[day])
        logged = logged[logged["request_id"].isin(ids)] if len(logged) else logged
        if len(logged) == len(ids) or time.monotonic() > deadline:
            return logged
        time.sleep(0.5)


def test_training_and_serving_agree_on_features_and_probability(service, key, world):
    """For labeled transactions of the parity day, up to half of them sharing a card or a merchant and
    a second with another transaction: the point-in-time features and the probability training
    computes equal what the live service read from the online store and answered."""
    import mlflow

    labeled = training.labeled_events(pd.Timestamp.now(tz="UTC"))
    day = lake.read_parquet(lake.partition("curated", "transactions", world["parity_day"]))
    day = day[day["transaction_id"].isin(labeled["transaction_id"])]
    shared = day.duplicated(["card_id", "event_timestamp"], keep=False) | day.duplicated(
        ["merchant_id", "event_timestamp"], keep=False
    )
    assert shared.sum() >= 5
    picked = day[shared].head(20)
    rows = packaging.request_bodies(pd.concat([picked, day[~shared].head(40 - len(picked))]))
    assert len(rows) == 40  # labels of the day's transactions that arrived the same day
    code, answers = packaging.post(f"{service}/predict_batch", {"events": rows}, key)
    assert code == 200 and {a["model_version"] for a in answers} == {"1"}
    ids = [r["transaction_id"] for r in rows]
    offline = point_in_time.features(labeled[labeled["transaction_id"].isin(ids)])
    offline = offline.set_index("transaction_id").loc[ids]
    assert offline["card_avg_amount_7d"].notna().sum() > 20  # most cards have a snapshot: a real comparison
    model = mlflow.pyfunc.load_model(f"models:/{settings.load().model_name}/1").unwrap_python_model()
    np.testing.assert_allclose(
        [a["fraud_probability"] for a in answers], model.predict_proba(offline), rtol=1e-9, atol=1e-12
    )
    logged = logged_answers(answers, world["parity_day"]).set_index("transaction_id")
    logged = logged.loc[pseudonym.of(settings.load()).many(offline.index)]
    expected = model.inputs(offline.reset_index())
    for col, values in expected.items():
        got = logged[f"input_{col}"].to_numpy()
        if values.dtype.kind in "OU":  # categoricals
            assert list(got) == list(values), col
        else:
            np.testing.assert_allclose(got.astype(float), values, rtol=1e-9, equal_nan=True, err_msg=col)


def test_an_explained_answer_gives_the_inputs_that_drove_its_score_and_the_log_keeps_them(service, key, world):
    """Half a batch asks for reasons: those answers name the five inputs with the largest log-odds
    contributions of the model that scored them (the champion, a logistic regression: each input
    moved alone to its baseline through scikit-learn's own pipeline is the reference); the others
    carry none; the prediction log keeps exactly what was answered, and the audit tells it."""
    import mlflow

    from lifecycle import audit

    rows = transactions(world["parity_day"], 20)
    asked = [dict(r, explain=i % 2 == 0) for i, r in enumerate(rows)]
    code, answers = packaging.post(f"{service}/predict_batch", {"events": asked}, key)
    assert code == 200 and {a["model_version"] for a in answers} == {"1"}
    model = mlflow.pyfunc.load_model(f"models:/{settings.load().model_name}/1").unwrap_python_model()
    imputer = model.prep.named_transformers_["num"].named_steps["simpleimputer"]
    logged = logged_answers(answers, world["parity_day"]).set_index("request_id")
    names = [*model.numeric, *model.categorical]
    for i, answer in enumerate(answers):
        row = logged.loc[answer["request_id"]]
        if i % 2:
            assert answer["reasons"] is None and answer["explained_by"] is None and pd.isna(row["reasons"])
            continue
        assert answer["explained_by"].startswith("baseline substitution")
        assert json.loads(row["reasons"]) == answer["reasons"]
        inputs = pd.DataFrame([{n: row[f"input_{n}"] for n in names}])

        def logit(frame):
            return model.estimator.decision_function(model.prep.transform(frame))[0]

        want = {}
        for n in names:
            moved = inputs.copy()
            moved[n] = "never-seen" if n in model.categorical else imputer.statistics_[model.numeric.index(n)]
            want[n] = logit(inputs) - logit(moved)
        top = sorted(want, key=lambda n: -abs(want[n]))[:5]
        assert [r["input"] for r in answer["reasons"]] == top
        assert [r["contribution"] for r in answer["reasons"]] == pytest.approx([want[n] for n in top], rel=1e-6)
        for r in answer["reasons"]:
            value = row[f"input_{r['input']}"]
            assert r["value"] == (None if pd.isna(value) else value if isinstance(value, str) else float(value))
    first = answers[0]  # an auditor asking about it is told the same reasons, and where the model card is
    told = audit.answer(first["request_id"])
    assert told["answers"][0]["reasons"] == first["reasons"] and told["answers"][0]["model_card"].endswith(
        "v1/index.html"
    )
    assert f"reasons given: {first['reasons'][0]['input']}=" in audit.text(told)


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
    logged = prediction_reader.read(source="sigterm-test")
    assert len(logged) == 600 and set(logged["request_id"]) == {a.request_id for a in load.answers}
    assert counts["logged_rows"] + counts["writing_rows"] + counts["buffered_rows"] == 600
    assert set(logged["event_timestamp"].dt.date) == {world["parity_day"]}
    assert logged["latency_ms"].gt(0).all() and logged["model_version"].eq("1").all()
    assert (Path(prediction_log.folder(settings.load())) / f"date={world['parity_day']}").is_dir()
    audit_of_one_live_request(load.answers[123].request_id, logged, bodies)


def audit_of_one_live_request(request_id: str, logged: pd.DataFrame, bodies: list[dict]) -> None:
    """The audit answer for a request the live service answered (one of ``bodies``): each part
    checked against the record it comes from (the log row, the registry, the training set's
    manifest, the history)."""
    from airflow.sdk import ObjectStoragePath

    from lifecycle import audit

    cfg, uc = settings.load(), contract.current()
    row = logged.set_index("request_id").loc[request_id]
    names = pseudonym.of(cfg)
    [event] = [b[uc.id] for b in bodies if names.one(b[uc.id]) == row[uc.id]]  # the raw id the log never holds
    result = audit.answer(request_id)
    [one] = result["answers"]
    assert (one["request_id"], one[uc.id], one["arm"], one["returned"]) == (request_id, row[uc.id], CHAMPION, True)
    assert (one["model_version"], one["score"], one["source"]) == ("1", row[uc.score], "sigterm-test")
    assert one["inputs"] == {c.removeprefix("input_"): row[c] for c in logged.columns if c.startswith("input_")}
    assert one["inputs"] and one["entities"] == {e: row[e] for e in uc.entities}
    because = one["serving_because"]  # the fixture's release of version 1, before any request
    assert (because["transition"], because["by"].endswith("(command line)")) == ("to_champion", True)
    assert because["reason"] == "released by hand without an offline decision"
    mv = tracking.client().get_model_version(cfg.model_name, "1")
    made = result["models"]["1"]
    assert (made["training_run"], made["code_commit"], made["artifact_digest"]) == (
        mv.run_id,
        mv.tags["git_commit"],
        mv.tags["artifact_digest"],
    )
    manifest = lake.manifest(ObjectStoragePath(mv.tags["training_set_uri"]))
    assert made["training_set"]["digest"] == manifest["digest"] == mv.tags["dataset_digest"]
    days = made["training_set"]["curated_partitions"][uc.events]
    assert list(days) == [
        d.isoformat() for d in lake.dates("curated", uc.events) if d.isoformat() <= manifest["last_day"]
    ]
    assert all(
        days[d] == lake.manifest(lake.partition("curated", uc.events, dt.date.fromisoformat(d)))["data_sha256"]
        for d in days
    )
    assert [m["transition"] for m in made["moves"]][:2] == ["nominate", "to_champion"]
    assert one in audit.answer(event)["answers"]  # by the event's id: every request of that event
    assert f"request {request_id} at " in audit.text(result)
    with pytest.raises(audit.NotLogged, match="no logged prediction has request_id or transaction_id 'nope'"):
        audit.answer("nope")


def test_a_worker_killed_under_load_loses_no_answered_prediction(world, monkeypatch):
    """SIGKILL, right after answering or not: the journal (``prediction_writer``) holds what the
    dead worker answered and a surviving or restarted worker writes it to the lake."""
    import psutil

    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    key = settings.load().serving_api_key()
    bodies = transactions(world["parity_day"])
    source = "sigkill-test"

    def workers(port: int) -> list[psutil.Process]:
        """This service's workers: they share its listening socket (their environment is not
        readable: setproctitle writes over it)."""
        found = []
        for p in psutil.Process().children(recursive=True):
            try:
                if "_bentoml_impl.worker" in " ".join(p.cmdline()) and any(
                    c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in p.net_connections("tcp")
                ):
                    found.append(p)
            except psutil.Error:
                continue
        return found

    # the longest flush interval: most of what the killed worker answered is only in its journal
    with serve(world, prediction_flush_seconds=5, serving_source=source, serving_workers=2) as base:
        with loadgen.Load(base, key, bodies, connections=4) as load:
            time.sleep(4)
            victims = workers(urlsplit(base).port)
            assert len(victims) == 2
            answered_before = sum(a.status == 200 for a in load.answers)
            victims[0].send_signal(signal.SIGKILL)
            time.sleep(4)
    answered = {a.request_id for a in load.answers if a.status == 200}
    assert answered_before > 100 and len(answered) > answered_before
    # only requests the killed worker held when it died failed, with a closed connection
    assert all(a.status == 0 for a in load.errors()) and len(load.errors()) <= 8
    logged = set(prediction_reader.read(source=source)["request_id"])
    assert answered <= logged, f"{len(answered - logged)} of {len(answered)} answered predictions are not in the log"
    journal = settings.load().state_dir / "serving" / "journal" / settings.load().model_name
    assert not [p.name for p in journal.iterdir() if f"-{victims[0].pid}-" in p.name]  # replayed, then removed


def test_rollback_command_moves_champion_and_previous(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    v1, v2, _ = world["versions"]
    promotion.release(v2, force=True, canary=False)
    moved = registry.roll_back("test")["to"]
    assert (moved[CHAMPION], moved[PREVIOUS]) == (v1, v2)


def test_the_openapi_document_is_valid_3_0_and_the_service_keeps_to_it(service, key, world):
    import subprocess
    import sys

    code, doc = raw(service, "GET", "/docs.json", b"", {})
    doc = json.loads(doc)
    assert code == 200 and doc["openapi"].startswith("3.0") and "exclusiveMinimum" not in json.dumps(doc)
    predict = doc["paths"]["/predict"]["post"]
    assert {"200", "400", "401", "413", "415", "503"} <= set(predict["responses"]) and "500" not in predict["responses"]
    schemathesis = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{service}/docs.json",
            "-H",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--max-examples",
            "60",
            "--seed",
            "1",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=world["state"],
    )  # its cache folder
    assert done.returncode == 0 and "No issues found" in done.stdout, done.stdout[-4000:]


def test_shadow_scores_the_challenger_on_every_request_and_never_returns_it(world, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(world["state"]))
    v1, v2, _ = world["versions"]
    set_alias("challenger", v2)
    key = settings.load().serving_api_key()
    bodies = transactions(world["parity_day"], 30)
    with serve(world, shadow="true", serving_source="shadow-test") as base:
        code, answers = packaging.post(f"{base}/predict_batch", {"events": bodies}, key)
    assert code == 200 and {(a["arm"], a["model_version"]) for a in answers} == {(CHAMPION, v1)}
    logged = prediction_reader.read(source="shadow-test")
    assert len(logged) == 60 and logged.groupby("arm")["model_version"].agg(set).to_dict() == {
        CHAMPION: {v1},
        "shadow": {v2},
    }
    by_arm = logged.pivot(index="request_id", columns="arm", values="transaction_id")
    assert set(by_arm.index) == {a["request_id"] for a in answers} and by_arm.notna().all().all()
