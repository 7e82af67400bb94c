"""The loop through a real Airflow scheduler (LocalExecutor), as a user runs it, on a busy machine.

Runs the demo on its own state folder and port: backfilled ingest → validate → features,
a manual first training, stable days on which neither detector fires, drifted days with
retraining into a canary that is rolled out after an approval given through the REST API, a worse
canary that is aborted, concept-drift days whose labels make performance emit model_degraded,
which starts a train run, and a corrupt day that must never reach curated data, features or
training. Every core is kept
busy by competing processes for the whole run, and one quality gate and one training candidate
are killed with SIGKILL mid-run: Airflow retries them and the loop ends as an undisturbed one.
"""

import datetime as dt
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import faults
import pytest

from conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]
STATE = ROOT / ".local" / "tests" / "e2e"
PORT, SERVING_PORT = "18180", "18184"  # beside the other tests' deployments (make test runs them at once)
# seconds into the task: mid-work (the task libraries are imported before the fork, so a task
# starts working at once; the logistic candidate fits longest, ~8 s on a busy 2-core machine)
KILLED = [("validate", "quality_gate", 4), ("train", "train_sklearn_logistic", 3)]


@pytest.fixture(scope="module")
def loop():
    env = {
        **os.environ,
        "LIFECYCLE_STATE_DIR": str(STATE),
        "LIFECYCLE_AIRFLOW_PORT": PORT,
        "LIFECYCLE_SERVING_PORT": SERVING_PORT,
    }
    env.pop("AIRFLOW_HOME", None)
    out = ROOT / ".local" / "tests" / "e2e-summary.json"
    out.unlink(missing_ok=True)
    killer = faults.TaskKiller(f"http://localhost:{PORT}", STATE / "airflow", KILLED)
    with faults.busy_cores() as load, killer:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "lifecycle.devtools.demo",
                "--normal-days",
                "8",
                "--drifted-days",
                "3",
                "--concept-days",
                "4",
                "--summary-file",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=2400,
        )
        loaded = faults.still_busy(load)
    STATE.with_name("e2e-loop.log").write_text(done.stdout)  # the loop's timeline, kept for reading after CI
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return SimpleNamespace(
        summary=json.loads(out.read_text()),
        kills={k.task_id: k for k in killer.kills},
        killer_errors=killer.errors,
        loaded=loaded,
    )


@pytest.fixture
def e2e_state(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(STATE))


def test_drift_and_degradation_start_training_and_each_run_answers_new_evidence(loop):
    assert loop.loaded, "the competing processes did not run for the whole loop"
    summary = loop.summary
    dags = summary["dags"]
    assert dags["ingest"]["runs"] == {"backfill:success": 8 + 3 + 4 + 1}
    assert dags["train"]["runs"]["manual:success"] == 1 and set(dags["train"]["runs"]) == {
        "manual:success",
        "asset_triggered:success",
    }
    assert dags["monitor"]["runs"] == {"manual:success": 3}  # stable days, drifted days, concept days
    versions = summary["model_versions"]
    assert [v[0] for v in versions] == [1, 2, 3]
    assert versions[1][2].startswith(("drift share", "degraded")) and versions[2][2].startswith("degraded")
    assert summary["stable"] == {"feature_drift_events": 0, "model_degraded_events": 0}
    assert [e["model_version"] for e in summary["drift"]["events"]] == ["1"]  # the drifted days only
    assert summary["drift"]["concept_days_drift"]["drift"] is False
    degraded = [e for e in summary["performance"]["model_degraded"] if e["concept_day"]]
    assert degraded and all(e["model_version"] == "2" and e["value"] < e["baseline"] for e in degraded)
    aliases = {k: str(v) for k, v in summary["aliases"].items()}
    assert (aliases["champion"], aliases["previous_champion"]) == ("2", "1")
    # the degraded-triggered version is a canary only if the offline gate promoted it, else it is retired
    assert (
        aliases.get("canary") == aliases.get("challenger") == ("3" if versions[2][3].startswith("promoted") else None)
    )
    assert summary["drift_reports"] and summary["performance"]["reports"]


def test_a_better_canary_is_rolled_out_after_approval_and_a_worse_one_is_aborted(loop):
    decisions = [(d["version"], d["champion"], d["outcome"]) for d in loop.summary["canary"]]
    assert decisions == [("2", "1", "rollout"), ("1", "2", "abort")]
    rollout, abort = loop.summary["canary"]
    assert rollout["reason"].endswith("approved by admin") and "quality: pass" in rollout["reason"]
    assert ": fail" in abort["reason"]


def test_corrupt_batch_never_reaches_curated_features_or_training(loop, e2e_state):
    from airflow.sdk import ObjectStoragePath

    from lifecycle import lake

    corrupt = dt.date(2026, 10, 1) + dt.timedelta(days=8 + 3 + 4)
    assert loop.summary["quarantined_days"] == [corrupt.isoformat()]
    assert not loop.summary["corrupt_day_curated"]
    assert any(k.endswith(":failed") for k in loop.summary["dags"]["validate"]["runs"])
    assert corrupt not in lake.dates("curated", "transactions")
    assert corrupt not in lake.dates("features", "card_stats")
    infos = [lake.manifest(p) for p in ObjectStoragePath(lake.zone("training")).iterdir()]
    assert len(infos) == 3 and all(dt.date.fromisoformat(i["last_day"]) < corrupt for i in infos)


def test_a_killed_quality_gate_is_retried_and_curates_each_day_once(loop, e2e_state):
    from lifecycle import lake

    kill = loop.kills.get("quality_gate")
    assert kill, f"no quality gate was killed; killer errors: {loop.killer_errors[-5:]}"
    assert (kill.final_state, kill.final_try) == ("success", kill.try_number + 1)
    curated = lake.dates("curated", "transactions")
    assert len(curated) == 8 + 3 + 4  # every normal, drifted and concept day, each once, the killed run's included
    for day in curated:
        for dataset in ("transactions", "labels"):
            raw, made = (lake.manifest(lake.partition(z, dataset, day)) for z in ("raw", "curated"))
            assert made["data_sha256"] == raw["data_sha256"] and made["validated"] is True
            assert (lake.partition("curated", dataset, day) / "data.parquet").read_bytes() == (
                lake.partition("raw", dataset, day) / "data.parquet"
            ).read_bytes()
    assert list((STATE / "lake").rglob("_staging-*")) == []  # no half-written partition anywhere


def test_a_killed_training_candidate_is_retried_and_the_run_registers_one_version(loop, e2e_state):
    from lifecycle import settings, tracking

    kill = loop.kills.get("train_sklearn_logistic")
    assert kill, f"no training candidate was killed; killer errors: {loop.killer_errors[-5:]}"
    assert (kill.final_state, kill.final_try) == ("success", kill.try_number + 1)
    client = tracking.client()
    versions = client.search_model_versions(
        f"name = '{settings.load().model_name}' and tags.airflow_run = '{kill.run_id}'"
    )
    assert len(versions) == 1
    parent = client.search_runs([tracking.experiment_id()], f"tags.airflow_run = '{kill.run_id}'")
    assert len(parent) == 1
    children = client.search_runs([tracking.experiment_id()], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")
    finished = sorted(r.data.tags["flavour"] for r in children if r.info.status == "FINISHED")
    assert finished == ["pytorch_mlp", "sklearn_logistic", "xgboost"]
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children)


def test_every_process_log_is_complete_after_the_deployment_stopped(loop):
    logs = STATE / "airflow" / "process-logs"
    assert sorted(p.name for p in logs.iterdir()) == [
        "api-server.log",
        "dag-processor.log",
        "model.log",
        "scheduler.log",
        "triggerer.log",
    ]
    tail = (logs / "api-server.log").read_text().rstrip().splitlines()[-5:]
    assert any("Finished server process" in line for line in tail), tail  # written up to its last line


def test_the_live_service_followed_every_release_and_rollback_under_load(loop):
    serving = loop.summary["serving"]
    assert serving["requests"] >= 2000 and serving["errors"] == 0
    assert serving["logged_rows"] == serving["requests"]  # every answer in the prediction log after SIGTERM
    assert serving["switch_seconds"] < 5 and serving["rollback_seconds"] < 5 and serving["roll_forward_seconds"] < 5
    assert serving["versions_served"][:2] == ["1", "2"]  # (and v3, when it became the canary)
    # one successful package run per version the offline gate promoted (v1, v2, and v3 when it was)
    promoted = [v[0] for v in loop.summary["model_versions"] if v[3].startswith("promoted")]
    assert promoted[:2] == [1, 2]
    assert loop.summary["dags"]["package"]["runs"] == {"asset_triggered:success": len(promoted)}


def test_the_data_team_was_told_each_event_once_with_its_links(loop):
    """The alert e-mails the demo's SMTP server received (a real server process), read as a mail
    client reads them."""
    import email
    import email.policy

    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((STATE / "mail").glob("*.eml"))
    ]
    kinds = [m["X-Lifecycle-Alert"] for m in mails]
    assert kinds.count("quarantine") == 1 and kinds.count("canary_abort") == 1  # once, retries and all
    by_kind = {m["X-Lifecycle-Alert"]: m for m in mails}
    corrupt = loop.summary["quarantined_days"][0]
    body = by_kind["quarantine"].get_body(("html",)).get_content()
    assert corrupt in by_kind["quarantine"]["Subject"] and "expect_column" in body
    assert f'href="http://localhost:{PORT}/reports/data_quality/transactions/{corrupt}/index.html"' in body
    waiting = by_kind["approval_waiting"].get_body(("html",)).get_content()
    assert f'href="http://localhost:{PORT}/required_actions"' in waiting and "quality: pass" in waiting
    assert by_kind["approval_answered"]["Subject"].endswith("by admin")
    drift = by_kind["feature_drift"].get_body(("html",)).get_content()
    assert f'href="http://localhost:{PORT}/reports/drift/' in drift
    assert loop.summary["alerts_received"] == dict(sorted({k: kinds.count(k) for k in set(kinds)}.items()))


def test_every_alias_move_is_in_the_history_and_one_live_request_is_audited(loop):
    moves = loop.summary["deployments"]
    assert [m["transition"] for m in moves][:2] == ["nominate", "to_champion"]
    assert moves[1]["approved_by"] == "admin"  # the first model became champion only once a human said so
    assert all(a["to"] == b["from"] for a, b in zip(moves, moves[1:], strict=False))
    assert {m["transition"] for m in moves} >= {
        "nominate",
        "to_champion",
        "to_canary",
        "roll_forward",
        "abort",
        "roll_back",
    }
    audit = loop.summary["audit"]
    answer = (STATE / "audit-example.txt").read_text()
    assert f"request {audit['request_id']} at " in answer
    assert re.search(r"serving because: (roll_back|to_canary) at .* by ", answer), answer  # champion or canary
    assert "training set digest" in answer and "promotion: promote vs champion" in answer
    notes = loop.summary["run_notes"]
    assert any(n.startswith("v1 promoted: ") for n in notes["promote"])
    assert any(n.startswith("roll_forward v2 ") and "approved by admin" in n for n in notes["canary"])
