"""The embedded end-to-end loop, unchanged, on the scale-out profile: PostgreSQL metadata,
CeleryExecutor with the Redis broker and two workers (queues ``default`` and ``gpu``), the lake in
a real S3 server, Feast's SQL registry and Redis online store, an MLflow tracking server with
PostgreSQL backend and S3 artifacts. As in the embedded loop test, every core is kept busy by
competing processes and one quality gate and one training candidate are killed mid-run (here on
the Celery workers). Every fact is collected while the deployment is up; the deployment's
databases, Redis keys and bucket must be gone afterwards.
"""

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import faults
import pytest

from lifecycle import contract, lake, packaging, performance, prediction_reader
from lifecycle import settings as _settings
from lifecycle.devtools import demo, sandbox
from lifecycle.platform import services

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.services, pytest.mark.timeout(4200)]  # the module fixture runs the whole loop
STATE = ROOT / ".local" / "tests" / "scaleout"
FIRST = dt.date(2026, 10, 1)
CORRUPT = FIRST + dt.timedelta(days=8 + 3 + 4)
# seconds into the task: mid-work (the task libraries are imported before the fork, so a task
# starts working at once; the logistic candidate fits longest, ~8 s on a busy 2-core machine)
KILLED = [("validate", "quality_gate", 4), ("train", "train_sklearn_logistic", 3)]

GOOD = contract.current().example  # the use case's valid request


def _workloads(log) -> list[str]:
    """task ids a Celery worker executed (from its own log)."""
    return re.findall(r"Executing workload in Celery: .*?task_id=(\w+)/", log.read_text())


def observe(server) -> dict:
    """What the scale-out services hold at the end of the loop (the deployment is still up)."""
    import psycopg2
    import redis
    from mlflow import MlflowClient

    cfg = _settings.load()
    svc = cfg.services
    with psycopg2.connect(svc.database_url("airflow", "postgresql")) as conn, conn.cursor() as cur:
        cur.execute("SELECT queue, count(*) FROM task_instance WHERE state = 'success' GROUP BY queue")
        queues = dict(cur.fetchall())
        cur.execute("SELECT DISTINCT task_id FROM task_instance WHERE queue = %s", (cfg.gpu_queue,))
        gpu_tasks = sorted(r[0] for r in cur.fetchall())
        cur.execute("SELECT count(*) FROM dag_run")
        dag_runs = cur.fetchone()[0]
    keys = [
        o["Key"]
        for page in services.s3_client().get_paginator("list_objects_v2").paginate(Bucket=svc.s3_bucket)
        for o in page.get("Contents", [])
    ]
    online = redis.Redis.from_url(svc.redis_url)
    client = MlflowClient(tracking_uri=svc.mlflow_url, registry_uri=svc.mlflow_url)
    versions = client.search_model_versions(f"name='{cfg.model_name}'")
    runs = [r["dag_run_id"] for r in server.runs("train")]
    per_run = [
        len(client.search_model_versions(f"name = '{cfg.model_name}' and tags.airflow_run = '{r}'")) for r in runs
    ]
    logs = server.supervisor.log_dir
    curated = lake.read_range("curated", "transactions", CORRUPT - dt.timedelta(days=1), CORRUPT - dt.timedelta(days=1))
    known = {
        **GOOD,
        "event_timestamp": f"{CORRUPT}T12:00:00Z",  # the day after the last snapshot: within the TTL
        "card_id": curated["card_id"].iloc[0],
        "merchant_id": curated["merchant_id"].iloc[0],
    }
    unknown = {**known, "card_id": "never-seen-card"}
    live = f"http://127.0.0.1:{cfg.serving_port}"  # the deployment's model service, following the registry
    served = [packaging.post(f"{live}/predict", body, cfg.serving_api_key()) for body in (known, unknown)]
    batch = prediction_reader.read(cfg, source="batch")
    joined = performance.labeled_predictions(CORRUPT - dt.timedelta(days=1), cfg)
    return {
        "batch_rows": len(batch),
        "batch_versions": sorted(set(batch["model_version"])) if len(batch) else [],
        "batch_files": sum(1 for k in keys if k.startswith("lake/predictions/") and "/batch-v" in k),
        "joined_rows": len(joined),
        "joined_sources": sorted(set(joined["source"])),
        "performance_reports": sorted({k.split("/")[3] for k in keys if k.startswith("lake/reports/performance/")}),
        "queues": queues,
        "gpu_tasks": gpu_tasks,
        "dag_runs": dag_runs,
        "workers": {name: _workloads(logs / f"worker-{name}.log") for name in ("default", "gpu")},
        "s3_prefixes": sorted({"/".join(k.split("/")[:2]) for k in keys}),
        "s3_objects": len(keys),
        "staging_objects": [k for k in keys if "/_staging-" in k],
        "versions_per_train_run": per_run,
        "redis_keys": online.dbsize(),
        "feast_keys": sum(1 for _ in online.scan_iter(match=b"*fraud_lifecycle", count=1000)),
        "mlflow_versions": sorted(int(v.version) for v in versions),
        "mlflow_sources": sorted({v.source.split(":")[0] for v in versions}),
        "champion": client.get_registered_model(cfg.model_name).aliases.get("champion"),
        "served": served,
    }


@pytest.fixture(scope="module")
def loop():
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    with sandbox.scaleout(STATE) as values:
        killer = faults.TaskKiller(f"http://localhost:{values['LIFECYCLE_AIRFLOW_PORT']}", STATE / "airflow", KILLED)
        with faults.busy_cores() as load, killer:
            with open(STATE.with_name("scaleout-loop.log"), "w") as steps:  # the timeline, read after CI
                summary = demo.run(8, 3, 4, log=lambda text: print(text, file=steps, flush=True), observe=observe)
            summary["loaded"] = faults.still_busy(load)
    # the runs' timings and the outcomes, kept for reading after CI as the embedded loop's are
    STATE.with_name("scaleout-summary.json").write_text(json.dumps(summary, indent=2, default=str))
    summary["kills"] = {k.task_id: k for k in killer.kills}
    summary["killer_errors"] = killer.errors
    import psycopg2
    import redis

    with psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (values["LIFECYCLE_DB_PREFIX"] + "%",))
        summary["leftover_databases"] = [r[0] for r in cur.fetchall()]
    summary["leftover_redis_keys"] = redis.Redis.from_url(values["LIFECYCLE_REDIS_URL"]).dbsize()
    summary["values"] = values
    return summary


def test_loop_completes_under_celery_with_canaries_and_retraining_on_drift_and_degradation(loop):
    assert loop["loaded"], "the competing processes did not run for the whole loop"
    assert demo.check(loop) == []
    dags = loop["dags"]
    assert dags["ingest"]["runs"] == {"backfill:success": 8 + 3 + 4 + 1}
    assert [v[0] for v in loop["model_versions"]] == [1, 2, 3] and loop["model_versions"][2][2].startswith("degraded")
    assert [(d["version"], d["outcome"]) for d in loop["canary"]] == [("2", "rollout"), ("1", "abort")]
    assert loop["quarantined_days"] == [CORRUPT.isoformat()] and not loop["corrupt_day_curated"]


def test_tasks_ran_on_both_queues_and_training_only_on_gpu(loop):
    seen = loop["observed"]
    assert seen["queues"]["default"] > 50 and seen["queues"]["gpu"] == 9  # 3 candidates x 3 training runs
    assert seen["gpu_tasks"] == ["train_pytorch_mlp", "train_sklearn_logistic", "train_xgboost"]
    workers = seen["workers"]
    retried = sum(k.task_id in seen["gpu_tasks"] for k in loop["kills"].values())  # the killed one ran twice
    assert sorted(set(workers["gpu"])) == seen["gpu_tasks"] and len(workers["gpu"]) == 9 + retried
    assert workers["default"] and not set(workers["default"]) & set(seen["gpu_tasks"])


def test_metadata_in_postgres_lake_in_s3_versions_in_mlflow_server(loop):
    seen = loop["observed"]
    assert seen["dag_runs"] == sum(sum(d["runs"].values()) for d in loop["dags"].values())
    assert {
        "lake/raw",
        "lake/curated",
        "lake/features",
        "lake/quarantine",
        "lake/reports",
        "lake/training",
        "lake/predictions",
        "mlflow/experiments",
    } <= set(seen["s3_prefixes"])
    assert seen["mlflow_versions"] == [1, 2, 3] and seen["champion"] == "2"
    assert seen["mlflow_sources"] in (["mlflow-artifacts"], ["models"])  # artifacts behind the server, never local
    assert all(r.startswith("s3://") for r in loop["drift_reports"])


def test_live_service_serves_online_features_from_redis_and_logs_to_s3(loop):
    seen = loop["observed"]
    serving = loop["serving"]
    assert serving["errors"] == 0 and serving["logged_rows"] == serving["requests"] >= 2000
    assert serving["rollback_seconds"] < 5 and serving["switch_seconds"] < 5
    assert seen["feast_keys"] > 1000 and seen["redis_keys"] >= seen["feast_keys"]
    (known_status, known), (unknown_status, unknown) = seen["served"]
    assert known_status == unknown_status == 200
    assert known["known_card"] is True and unknown["known_card"] is False
    assert known["known_merchant"] is unknown["known_merchant"] is True  # the unknown card's merchant is known
    assert known["model_version"] == seen["champion"]


def test_batch_scores_and_the_performance_join_live_on_s3(loop):
    seen = loop["observed"]
    assert seen["batch_rows"] >= 3000 and seen["batch_files"] >= 1 and set(seen["batch_versions"]) <= {"1", "2", "3"}
    assert seen["joined_sources"] == ["batch", "live"] and seen["joined_rows"] > 1000  # both joined with labels
    assert seen["performance_reports"] and loop["dags"]["performance"]["runs"].get("asset_triggered:success")


def test_killed_tasks_are_retried_by_celery_workers_to_the_same_outcome(loop):
    assert sorted(loop["kills"]) == ["quality_gate", "train_sklearn_logistic"], loop["killer_errors"][-5:]
    for kill in loop["kills"].values():
        assert (kill.final_state, kill.final_try) == ("success", kill.try_number + 1)
    seen = loop["observed"]
    per_run = seen["versions_per_train_run"]  # a run whose evidence was already answered registers none
    assert max(per_run) == 1 and sum(per_run) == 3
    assert seen["staging_objects"] == []  # no half-written partition in the S3 lake


def test_the_run_leaves_nothing_behind(loop):
    assert loop["leftover_databases"] == []
    assert loop["leftover_redis_keys"] == 0
