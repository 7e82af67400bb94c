"""The loop through a real Airflow scheduler (airflow standalone, LocalExecutor), as a user runs it.

Runs the demo on its own state folder and port: backfilled ingest → validate → features,
a manual first training, drifted days, monitor → drift asset → asset-triggered training,
and a corrupt day that must never reach curated data, features or training.
"""
import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e
STATE = ROOT / ".local" / "tests" / "e2e"


@pytest.fixture(scope="module")
def summary():
    env = {**os.environ, "LIFECYCLE_STATE_DIR": str(STATE), "LIFECYCLE_AIRFLOW_PORT": "18180"}
    env.pop("AIRFLOW_HOME", None)
    out = ROOT / ".local" / "tests" / "e2e-summary.json"
    done = subprocess.run([sys.executable, "-m", "lifecycle.demo", "--normal-days", "8", "--drifted-days", "3",
                           "--summary-file", str(out)], env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture
def e2e_state(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(STATE))


def test_drift_asset_starts_training_and_a_new_version_is_registered(summary):
    dags = summary["dags"]
    assert dags["ingest"]["runs"] == {"backfill:success": 12}
    assert dags["train"]["runs"] == {"manual:success": 1, "asset_triggered:success": 1}
    assert dags["monitor"]["runs"] == {"manual:success": 1}
    assert dags["promote"]["runs"] == {"asset_triggered:success": 2}
    assert [v[0] for v in summary["model_versions"]] == [1, 2]
    assert summary["model_versions"][1][2].startswith("drift share")
    assert summary["aliases"]["champion"] in (1, 2)
    assert summary["drift_reports"] and summary["reports_index"].endswith("index.html")


def test_corrupt_batch_never_reaches_curated_features_or_training(summary, e2e_state):
    from airflow.sdk import ObjectStoragePath

    from lifecycle import lake

    corrupt = dt.date(2026, 10, 1) + dt.timedelta(days=11)
    assert summary["quarantined_days"] == [corrupt.isoformat()]
    assert not summary["corrupt_day_curated"]
    assert any(k.endswith(":failed") for k in summary["dags"]["validate"]["runs"])
    assert corrupt not in lake.dates("curated", "transactions")
    assert corrupt not in lake.dates("features", "card_stats")
    infos = [json.loads((p / "info.json").read_text()) for p in ObjectStoragePath(lake.zone("training")).iterdir()]
    assert len(infos) == 2 and all(dt.date.fromisoformat(i["last_day"]) < corrupt for i in infos)
