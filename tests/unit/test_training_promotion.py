import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from lifecycle import contract, promotion, registry, settings, tracking, training
from lifecycle.aliases import CHALLENGER, CHAMPION
from lifecycle.training import FLAVOURS as CANDIDATES

METRICS = {"pr_auc": 0.60, "roc_auc": 0.90, "log_loss": 0.1, "latency_ms_p50": 5.0, "positive_rate": 0.05, "ece": 0.01}


def test_first_model_needs_the_floor_relative_to_its_holdout():
    cfg = dataclasses.replace(settings.load(), promotion_min_lift=1.2)
    assert promotion.decide(METRICS, None, cfg) == (True, ["first model, pr_auc 0.6000 above the floor 0.0600"])
    # a real data set's case: positive rate 0.20, the best model 0.28 (an absolute 0.30 rejected it)
    assert promotion.decide({**METRICS, "pr_auc": 0.28, "positive_rate": 0.2}, None, cfg)[0]
    ok, reasons = promotion.decide({**METRICS, "pr_auc": 0.22, "positive_rate": 0.2}, None, cfg)
    assert (ok, reasons) == (False, ["pr_auc 0.2200 is below the floor 0.2400 (1.2 x chance 0.2000 on this holdout)"])
    roc = dataclasses.replace(cfg, primary_metric="roc_auc")
    assert not promotion.decide({**METRICS, "roc_auc": 0.58}, None, roc)[0]  # 1.2 x 0.5


def test_challenger_must_beat_champion_by_the_margin_without_regressing():
    cfg = dataclasses.replace(settings.load(), promotion_margin=0.01)
    assert promotion.decide({**METRICS, "pr_auc": 0.62}, METRICS, cfg)[0]
    ok, reasons = promotion.decide({**METRICS, "pr_auc": 0.605}, METRICS, cfg)
    assert not ok and "below the margin" in reasons[0]
    ok, reasons = promotion.decide({**METRICS, "pr_auc": 0.7, "roc_auc": 0.8}, METRICS, cfg)
    assert not ok and "roc_auc 0.8000 regresses" in reasons[0]
    ok, reasons = promotion.decide({**METRICS, "pr_auc": 0.7, "latency_ms_p50": 1e4}, METRICS, cfg)
    assert not ok and "latency" in reasons[0]


@pytest.fixture(scope="module")
def trained(_world_built):
    """One full training round on the shared world (module-scoped: it costs ~20 s)."""
    from conftest import WORLD

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(WORLD))
        info = training.build_training_set("test__round1", pd.Timestamp.now(tz="UTC"))
        parent = training.start_parent_run("test__round1", info, "test")
        results = [training.train_candidate(f, info, parent, seed=7) for f in CANDIDATES]
        registered = training.register_best(results, info, "test__round1", "test")
    return info, results, registered


def test_training_set_is_time_split_and_complete(world, trained):
    info, _, _ = trained
    train, holdout = training.load_part(info["uri"], "train"), training.load_part(info["uri"], "holdout")
    labeled = training.labeled_events(pd.Timestamp.now(tz="UTC"))
    assert len(train) + len(holdout) == len(labeled) == info["train_rows"] + info["holdout_rows"]
    assert train["event_timestamp"].max() < holdout["event_timestamp"].min()
    assert sorted(holdout["event_timestamp"].dt.date.unique()) == world[-2:]  # default 2 holdout days


def test_a_label_known_after_the_cutoff_never_reaches_a_training_set(world):
    from lifecycle import lake

    cutoff = pd.Timestamp(world[5], tz="UTC") + pd.Timedelta(hours=12)
    labels = lake.read_range("curated", "labels", world[0], world[-1])
    late = labels[labels["labeled_at"] > cutoff]
    tx_day = pd.to_datetime(late["transaction_id"].str[1:9], format="%Y%m%d").dt.date
    assert (tx_day <= world[2]).sum() > 20  # late labels of transactions long before the cutoff exist
    rows = training.labeled_events(cutoff)
    assert set(rows["transaction_id"]) == set(labels.loc[labels["labeled_at"] <= cutoff, "transaction_id"])
    info = training.build_training_set("test__cutoff", cutoff)
    used = pd.concat([training.load_part(info["uri"], part) for part in ("train", "holdout")])
    assert len(used) == len(rows) and not set(used["transaction_id"]) & set(late["transaction_id"])


def test_every_candidate_is_tracked_and_the_best_is_challenger(world, trained):
    info, results, registered = trained
    assert [r["flavour"] for r in results] == list(CANDIDATES)
    client = tracking.client()
    for r in results:
        run = client.get_run(r["run_id"])
        assert {"pr_auc", "roc_auc", "log_loss", "latency_ms_p50"} <= set(run.data.metrics)
        assert run.data.tags["dataset_digest"] == info["digest"] and run.data.params["seed"] == "7"
        assert run.data.params["device"] == training.device() == "cpu"
        assert run.data.metrics["roc_auc"] > 0.8
        # the evaluation in depth: calibration, the alert budget, slices with intervals, importance
        assert {"ece", "brier", "precision_at_alert", "recall_at_alert"} <= set(run.data.metrics)
        judged = mlflow.artifacts.load_dict(f"runs:/{r['run_id']}/evaluation/evaluation.json")
        assert judged["rows"] == info["holdout_rows"] and judged["models"]["model"]["reliability"]
        assert {s["column"] for s in judged["slices"]} == {"country", "channel", "merchant_category"}
        for s in (s for s in judged["slices"] if s["judged"]):
            low, high = s["models"]["model"]["interval"]
            assert low <= s["models"]["model"]["pr_auc"] <= high
            name = f"slice_{s['column']}_{s['value']}_pr_auc"
            assert run.data.metrics[name] == pytest.approx(s["models"]["model"]["pr_auc"])
        drivers = mlflow.artifacts.load_dict(f"runs:/{r['run_id']}/evaluation/importance.json")
        assert {i["name"] for i in drivers["inputs"]} == {*info["numeric"], *contract.current().categoricals}
    best = max(results, key=lambda r: r["metrics"]["pr_auc"])
    mv = tracking.version_by_alias(CHALLENGER)
    assert mv.version == registered["version"] and mv.tags["flavour"] == best["flavour"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=settings.PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert mv.tags["training_set_uri"] == info["uri"] and mv.tags["git_commit"] == head and len(head) == 40


def test_a_retried_training_step_reuses_what_its_killed_attempt_made(world, trained):
    from mlflow.entities import RunStatus

    info, results, registered = trained
    client = tracking.client()
    parent = client.get_run(results[0]["run_id"]).data.tags["mlflow.parentRunId"]
    assert training.start_parent_run("test__round1", info, "test") == parent
    # a killed attempt leaves its MLflow run RUNNING; the retry reuses the finished run and ends that one
    stale = client.create_run(tracking.experiment_id(), tags={"mlflow.parentRunId": parent, "flavour": "xgboost"})
    again = training.train_candidate("xgboost", info, parent, seed=7)
    assert again == next(r for r in results if r["flavour"] == "xgboost")
    assert client.get_run(stale.info.run_id).info.status == RunStatus.to_string(RunStatus.KILLED)
    # registering again (the retry of a task killed after it registered) finds the same version
    assert training.register_best(results, info, "test__round1", "test")["version"] == registered["version"]
    assert (
        len(
            client.search_model_versions(f"name = '{settings.load().model_name}' and tags.airflow_run = 'test__round1'")
        )
        == 1
    )
    assert training.lake.manifest(ObjectStoragePath(info["uri"]))["digest"] == info["digest"]


def test_a_registered_version_loads_and_scores_in_a_clean_process(world, trained, tmp_path):
    """No LIFECYCLE_* variable, and the project's own code off the path: what the model needs comes
    from the model (its code_paths); it scores the holdout exactly as in this process."""
    info, _, registered = trained
    cfg = settings.load()
    uri = f"models:/{cfg.model_name}/{registered['version']}"
    info_model = mlflow.models.get_model_info(uri)
    columns = [c["name"] for c in info_model.signature.inputs.to_dict()]
    assert columns[0] == contract.current().time and "amount" in columns and "country" in columns
    assert info_model.signature.outputs.to_dict() == [{"type": "double", "name": "fraud_probability", "required": True}]
    local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "model"))
    requirements = open(os.path.join(local, "requirements.txt")).read().split()
    lock = set(open(settings.PROJECT_ROOT / "requirements.lock").read().split())
    pins = [r for r in requirements if "==" in r]
    assert pins and set(pins) <= lock and any(r.startswith("mlflow==") for r in pins)
    assert sorted(os.listdir(os.path.join(local, "code"))) == ["lifecycle", "usecases"]
    holdout = training.load_part(info["uri"], "holdout").head(500)
    training.example(contract.current(), holdout[columns]).to_parquet(tmp_path / "rows.parquet")  # as signed
    include = str(settings.PROJECT_ROOT / "include")
    script = (
        "import sys, json\n"
        f"sys.path = [p for p in sys.path if not p.startswith({include!r})]\n"
        "import mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({local!r})\n"
        f"scores = model.predict(pd.read_parquet({str(tmp_path / 'rows.parquet')!r}))\n"
        "import lifecycle\n"
        "print(json.dumps({'scores': [float(x) for x in scores], 'code': lifecycle.__file__}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["code"].startswith(os.path.join(local, "code"))
    here = mlflow.pyfunc.load_model(uri).unwrap_python_model().predict_proba(holdout)
    np.testing.assert_array_equal(np.array(got["scores"]), here)


def test_mlflow_models_serve_answers_the_input_example(world, trained, tmp_path):
    import socket

    _, _, registered = trained
    cfg = settings.load()
    tracking.client().set_registered_model_alias(cfg.model_name, "serve_check", registered["version"])
    uri = f"models:/{cfg.model_name}@serve_check"
    example = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path))
    payload = open(os.path.join(example, "serving_input_example.json")).read()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    env |= {"MLFLOW_TRACKING_URI": cfg.mlflow_tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-w",
            "1",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "w"),
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 120 s"
                time.sleep(0.5)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=payload.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert r.status == 200
            answer = json.loads(r.read())
    finally:
        server.terminate()
        server.wait(30)
        tracking.client().delete_registered_model_alias(cfg.model_name, "serve_check")
    rows = pd.DataFrame(**json.loads(payload)["dataframe_split"])
    model = mlflow.pyfunc.load_model(f"models:/{cfg.model_name}/{registered['version']}").unwrap_python_model()
    want = model.predict_proba(rows)
    np.testing.assert_allclose(answer["predictions"], want, rtol=1e-9)


def promotion_run(challenger_version):
    """The one MLflow run that recorded the decision on ``challenger_version``."""
    experiment = tracking.client().get_experiment_by_name(f"{settings.load().experiment}-promotion")
    runs = tracking.client().search_runs(
        [experiment.experiment_id], f"tags.challenger_version = '{challenger_version}'"
    )
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def test_promotion_moves_aliases_and_a_worse_model_is_never_promoted(world, trained):
    _, results, registered = trained
    cfg, client = settings.load(), tracking.client()
    first_version = str(registered["version"])
    best = max(results, key=lambda r: r["metrics"]["pr_auc"])

    promotion.compare()
    assert aliases() == {CHALLENGER: first_version}  # deciding moves no alias: release does
    tags = client.get_model_version(cfg.model_name, first_version).tags
    assert tags["promotion_decision"].startswith("promoted: first model, pr_auc ")
    run = promotion_run(first_version)
    assert (run.info.run_name, run.data.tags["decision"], run.data.tags["champion_version"]) == (
        f"v{first_version} vs none",
        "promote",
        "None",
    )
    assert run.data.metrics["challenger_pr_auc"] == pytest.approx(best["metrics"]["pr_auc"], abs=1e-9)
    floor = cfg.promotion_min_lift * run.data.metrics["challenger_positive_rate"]
    assert run.data.metrics["challenger_pr_auc"] >= floor
    assert run.data.params["threshold_promotion_min_lift"] == str(cfg.promotion_min_lift)
    assert not [k for k in run.data.metrics if k.startswith("champion_")]

    released = promotion.release(first_version)
    assert aliases() == {CHAMPION: first_version}  # the challenger is now the champion, nothing to roll back to
    assert (released["transition"], released["from"], released["to"]) == (
        "to_champion",
        {CHALLENGER: first_version},
        {CHAMPION: first_version},
    )
    assert released["reason"] == tags["promotion_decision"]
    assert "released_at" in client.get_model_version(cfg.model_name, first_version).tags

    # a challenger trained on shuffled labels is worse: rejected, champion untouched
    info = training.build_training_set("test__worse", pd.Timestamp.now(tz="UTC"))
    train = training.load_part(info["uri"], "train")
    rng = np.random.default_rng(0)
    train["is_fraud"] = rng.permutation(train["is_fraud"].to_numpy())
    (ObjectStoragePath(info["uri"]) / "train.parquet").write_bytes(training.lake.parquet_bytes(train))
    parent = training.start_parent_run("test__worse", info, "test")
    worse = str(
        training.register_best(
            [training.train_candidate("sklearn_logistic", info, parent, 7)], info, "test__worse", "test"
        )["version"]
    )
    assert aliases() == {CHAMPION: first_version, CHALLENGER: worse}
    promotion.compare()
    assert aliases() == {CHAMPION: first_version}  # a rejected version never keeps the challenger alias
    run = promotion_run(worse)
    assert (run.info.run_name, run.data.tags["decision"], run.data.tags["champion_version"]) == (
        f"v{worse} vs {first_version}",
        "reject",
        first_version,
    )
    metrics = run.data.metrics
    # the champion is scored again on the challenger's holdout, the same rows as its own
    assert metrics["champion_pr_auc"] == pytest.approx(best["metrics"]["pr_auc"], abs=1e-9)
    assert metrics["challenger_pr_auc"] < metrics["champion_pr_auc"] - cfg.promotion_margin
    # every rule it broke is named with the numbers logged for this decision
    gain = metrics["challenger_pr_auc"] - metrics["champion_pr_auc"]
    rate = metrics["challenger_positive_rate"]
    floor = cfg.promotion_min_lift * rate  # shuffled labels: a ranking by chance, PR-AUC near the positive rate
    assert metrics["challenger_pr_auc"] < floor
    # and the slices where it is worse beyond the margin and the interval, judged on the same rows
    judged = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/evaluation/evaluation.json")
    slices = promotion.slice_regressions(judged["slices"], "pr_auc", cfg.slice_margin)
    assert slices and all(" on country=" in r or " on channel=" in r or " on merchant_category=" in r for r in slices)
    reasons = "; ".join(
        [
            f"pr_auc {metrics['challenger_pr_auc']:.4f} is below the floor {floor:.4f} "
            f"({cfg.promotion_min_lift:g} x chance {rate:.4f} on this holdout)",
            *slices,
            f"pr_auc gain {gain:+.4f} over champion is below the margin {cfg.promotion_margin}",
            f"roc_auc {metrics['challenger_roc_auc']:.4f} regresses from {metrics['champion_roc_auc']:.4f}",
        ]
    )
    assert client.get_model_version(cfg.model_name, worse).tags["promotion_decision"] == f"rejected: {reasons}"
    assert run.data.tags["reasons"] == reasons
    retired = registry.history(worse)[-1]
    assert (retired["transition"], retired["reason"], retired["evidence"]) == (
        "retire",
        f"rejected: {reasons}",
        f"MLflow run {run.info.run_id}",
    )
    with pytest.raises(ValueError, match=f"version {worse} was not promoted by the offline gate"):
        promotion.release(worse)
    assert aliases() == {CHAMPION: first_version}
    assert "released_at" not in client.get_model_version(cfg.model_name, worse).tags
    # (the world's lake is shared with test_reproducibility's private registry: its nominations are there too)
    moves = [(e["transition"], e["version"]) for e in registry.history()]
    assert moves[-3:] == [("to_champion", first_version), ("nominate", worse), ("retire", worse)]
    assert ("nominate", first_version) in moves[: moves.index(("to_champion", first_version))]


@pytest.fixture
def versions(state):
    """A registry of its own: the model with three versions (no artifacts: aliases only need
    versions), none of them live."""
    import tempfile

    client, name = tracking.client(), settings.load().model_name
    client.create_registered_model(name)
    source = tempfile.mkdtemp(dir=state)
    return [str(client.create_model_version(name, source=source).version) for _ in range(3)]


def aliases() -> dict[str, str]:
    """Every alias of the model and the version it names."""
    model = tracking.client().get_registered_model(settings.load().model_name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def fail_alias_reads(monkeypatch, code: str):
    """Every client method that reads an alias raises an MlflowException with ``code``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos import databricks_pb2

    def fail(*args, **kwargs):
        raise MlflowException(f"registry says {code}", error_code=databricks_pb2.ErrorCode.Value(code))

    for method in ("get_registered_model", "get_model_version_by_alias"):
        monkeypatch.setattr(MlflowClient, method, fail)


def test_every_version_has_a_model_card_in_the_reports_zone_and_its_mlflow_run(world, trained):
    """After the promotion test: the released first version's card and the rejected one's, each
    from the registry and the records, listed in the index, logged to the run, linked from MLflow."""
    import html
    import re

    from lifecycle import lake, reports, ui

    cfg, client = settings.load(), tracking.client()
    versions = sorted(
        (v for v in client.search_model_versions(f"name = '{cfg.model_name}'") if v.tags.get("promotion_decision")),
        key=lambda v: int(v.version),
    )
    assert len(versions) >= 2
    index = (lake.zone("reports") / reports.INDEX).read_text()
    for mv in versions:
        version = str(mv.version)
        page = lake.zone("reports") / reports.card_page(version)
        text = page.read_text()
        card = json.loads((page.parent / "card.json").read_text())
        assert card["version"] == version and card["purpose"] == contract.current().purpose
        assert card["training_set"]["digest"] == mv.tags["dataset_digest"]
        assert html.escape(card["training_set"]["days"]) in text and mv.tags["git_commit"] in text
        assert card["aliases"] == sorted(a for a, v in registry.aliases().items() if v == version)
        assert [m["transition"] for m in card["moves"]] == [e["transition"] for e in registry.history(version)]
        assert {c["flavour"] for c in card["candidates"]} >= {mv.tags["flavour"]}
        assert [c["chosen"] for c in card["candidates"]].count(True) == 1
        assert "<svg" in text and "reliability curve" in text  # the calibration plot
        judged = [s for s in card["evaluation"]["slices"] if s["judged"]]
        assert judged and all(html.escape(f"{s['column']} = {s['value']}") in text for s in judged)
        assert card["importance"]["inputs"] and html.escape(card["importance"]["inputs"][0]["name"]) in text
        decision = mv.tags["promotion_decision"].split(":")[0]  # promoted / rejected
        assert card["promotion"][-1]["decision"] == {"promoted": "promote", "rejected": "reject"}[decision]
        assert html.escape(card["promotion"][-1]["reasons"]) in text
        logged = mlflow.artifacts.download_artifacts(f"runs:/{mv.run_id}/model_card/index.html")
        assert open(logged).read() == text
        described = client.get_model_version(cfg.model_name, version).description
        assert ui.report_url(page) in described
        assert f'href="{reports.card_page(version)}"' in index
    assert re.search(r"regresses .* 95% interval", text)  # the rejected one names the slices


def test_only_a_missing_model_or_alias_means_no_version(state, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import ErrorCode

    assert tracking.version_by_alias(CHAMPION) is None  # no registered model yet
    client, name = tracking.client(), settings.load().model_name
    client.create_registered_model(name)
    assert tracking.version_by_alias(CHAMPION) is None  # registered, no version holds the alias
    version = client.create_model_version(name, source=str(state)).version
    client.set_registered_model_alias(name, CHAMPION, version)
    assert tracking.version_by_alias(CHAMPION).version == version
    fail_alias_reads(monkeypatch, "RESOURCE_DOES_NOT_EXIST")
    assert tracking.version_by_alias(CHAMPION) is None
    for code in set(ErrorCode.keys()) - {"RESOURCE_DOES_NOT_EXIST"}:  # INVALID_PARAMETER_VALUE among them
        fail_alias_reads(monkeypatch, code)
        with pytest.raises(MlflowException, match=f"registry says {code}"):
            tracking.version_by_alias(CHAMPION)


def test_a_registry_failure_looking_up_the_champion_fails_the_comparison_and_records_nothing(versions, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    cfg, client = settings.load(), tracking.client()
    champion, challenger, _ = versions
    client.set_registered_model_alias(cfg.model_name, CHAMPION, champion)
    client.set_registered_model_alias(cfg.model_name, CHALLENGER, challenger)
    with monkeypatch.context() as m:
        fail_alias_reads(m, "TEMPORARILY_UNAVAILABLE")
        with pytest.raises(MlflowException, match="registry says TEMPORARILY_UNAVAILABLE") as err:
            promotion.compare(challenger)  # not "no champion": that would judge it on the floor alone
    assert err.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert "promotion_decision" not in client.get_model_version(cfg.model_name, challenger).tags
    assert aliases() == {CHAMPION: champion, CHALLENGER: challenger}
    assert mlflow.get_experiment_by_name(f"{cfg.experiment}-promotion") is None  # no decision was logged


class Stalling:
    """A pyfunc-like model whose every call first waits ``stall`` seconds without using a CPU, as a
    call does while other processes hold every core, then scores ``column`` (little CPU work)."""

    def __init__(self, column: str, stall: float):
        self.column, self.stall = column, stall

    def predict_proba(self, frame):
        time.sleep(self.stall)
        return frame[self.column].to_numpy()

    def unwrap_python_model(self):  # what mlflow.pyfunc.load_model returns, and what promotion scores
        return self


def test_a_busy_machine_does_not_turn_a_promotion_into_a_rejection(versions, monkeypatch):
    import mlflow

    LABEL = contract.current().label

    monkeypatch.setenv("LIFECYCLE_MAX_LATENCY_MS", "5")
    cfg, client = settings.load(), tracking.client()
    champion, challenger, _ = versions
    y = np.arange(200) % 2
    holdout = pd.DataFrame({LABEL: y, "sharp": 0.1 + 0.8 * y, "blunt": np.random.default_rng(0).random(200)})
    holdout = holdout.assign(**dict.fromkeys(contract.current().slices, "one value"))
    monkeypatch.setattr(training, "load_part", lambda uri, part: holdout)
    client.set_model_version_tag(cfg.model_name, challenger, "training_set_uri", "memory://test")
    stall = 0.01  # 10 ms of waiting per call, twice the 5 ms limit
    models = {
        f"models:/{cfg.model_name}/{challenger}": Stalling("sharp", stall),
        f"models:/{cfg.model_name}/{champion}": Stalling("blunt", 0.0),
    }
    monkeypatch.setattr(mlflow.pyfunc, "load_model", models.__getitem__)
    # read by the wall clock, these calls take longer than the limit: the stall would reject the challenger
    wall = training.scoring_latency(
        {"challenger": training.Scorer(models[f"models:/{cfg.model_name}/{challenger}"])},
        holdout.head(10),
        clock=time.perf_counter,
    )
    assert wall["challenger"] >= stall * 1000 > cfg.max_latency_ms
    first = promotion.compare(challenger)  # no champion: the absolute limit alone
    first_model = "first model, pr_auc 1.0000 above the floor 0.6000"  # 1.2 x its positive rate 0.5
    assert (first.promote, first.reasons) == (True, [first_model])
    assert first.thresholds["max_latency_ms"] == {"value": 5.0, "source": "LIFECYCLE_MAX_LATENCY_MS"}
    assert first.challenger["latency_ms_p50"] < cfg.max_latency_ms
    assert client.get_model_version(cfg.model_name, challenger).tags["promotion_decision"] == f"promoted: {first_model}"
    # with a champion, the waits land on the challenger's turns only
    client.set_registered_model_alias(cfg.model_name, CHAMPION, champion)
    second = promotion.compare(challenger)
    assert (second.promote, second.reasons) == (True, ["pr_auc beats champion by the margin"])
    assert (
        client.get_model_version(cfg.model_name, challenger).tags["promotion_decision"]
        == "promoted: pr_auc beats champion by the margin"
    )
    experiment = client.get_experiment_by_name(f"{cfg.experiment}-promotion").experiment_id
    [run] = client.search_runs([experiment], f"tags.champion_version = '{champion}'")
    assert run.data.tags["decision"] == "promote"
    assert run.data.metrics["challenger_latency_ms_p50"] < cfg.max_latency_ms
