import subprocess

import pytest

from lifecycle import settings, tracking
from lifecycle.platform import env


def test_defaults_are_valid_and_state_is_under_one_folder(monkeypatch):
    monkeypatch.delenv("LIFECYCLE_STATE_DIR")
    cfg = settings.load()
    assert cfg.state_dir == settings.PROJECT_ROOT / ".local" / "state"
    assert cfg.lake_root == f"file://{cfg.state_dir}/lake"
    assert cfg.mlflow_tracking_uri.endswith(f"{cfg.state_dir}/mlflow/mlflow.db")
    assert 0 < cfg.drift_share_threshold < 1 and cfg.promotion_min_lift > 1


@pytest.mark.parametrize(
    "var,value,rule",
    [
        ("LIFECYCLE_DRIFT_SHARE_THRESHOLD", "lots", "must be a number"),
        ("LIFECYCLE_DRIFT_SHARE_THRESHOLD", "1.5", "between 0.0 and 1.0"),
        ("LIFECYCLE_HOLDOUT_DAYS", "2.5", "must be an integer"),
        ("LIFECYCLE_PRIMARY_METRIC", "accuracy", "one of pr_auc, roc_auc"),
        ("LIFECYCLE_SCHEDULE_START", "yesterday", "YYYY-MM-DD"),
        ("LIFECYCLE_MODEL_NAME", "  ", "must not be empty"),
        ("LIFECYCLE_MONITOR_MAX_ROWS", "999", "between 1000 and 100000000"),
        ("LIFECYCLE_LANDING_ROOT", "/data/landing", "must be a URL such as file:///data/landing"),
    ],
)
def test_malformed_setting_names_variable_and_rule(monkeypatch, var, value, rule):
    monkeypatch.setenv(var, value)
    with pytest.raises(settings.SettingError) as err:
        settings.load()
    assert var in str(err.value) and rule in str(err.value)


def test_environment_turns_telemetry_off_and_points_tools_at_state(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    e = env.environment()
    assert e["FEAST_USAGE"] == "False" and e["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert e["BENTOML_DO_NOT_TRACK"] == "true" and e["DO_NOT_TRACK"] == "1"
    assert e["AIRFLOW__CORE__EXECUTOR"] == "lifecycle.platform.preload.PreloadingLocalExecutor"
    assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/airflow/airflow.db"
    assert e["BENTOML_HOME"] == str(tmp_path / "bentoml")


def test_bad_airflow_port_is_rejected(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_AIRFLOW_PORT", "80a")
    with pytest.raises(settings.SettingError, match="LIFECYCLE_AIRFLOW_PORT"):
        env.environment()


SCALEOUT = {
    "LIFECYCLE_PROFILE": "scaleout",
    "LIFECYCLE_POSTGRES_URL": "postgresql://app:pw@db.internal:5433",
    "LIFECYCLE_DB_PREFIX": "prod",
    "LIFECYCLE_REDIS_URL": "redis://:s3cret@cache:6380/3",
    "LIFECYCLE_S3_ENDPOINT_URL": "http://minio:9000",
    "LIFECYCLE_S3_BUCKET": "ml-lake",
    "LIFECYCLE_S3_ACCESS_KEY": "AK",
    "LIFECYCLE_S3_SECRET_KEY": "SK",
    "LIFECYCLE_MLFLOW_URL": "http://mlflow:5000",
}


@pytest.fixture
def scaleout(monkeypatch, tmp_path):
    for key, value in {**SCALEOUT, "LIFECYCLE_STATE_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def test_one_switch_derives_every_store_of_the_scaleout_profile(scaleout):
    cfg = settings.load()
    assert cfg.profile == "scaleout"
    assert cfg.lake_root == f"s3://{settings.S3_CONN_ID}@ml-lake/lake"
    assert cfg.mlflow_tracking_uri == "http://mlflow:5000"
    assert cfg.mlflow_artifact_root.startswith("mlflow-artifacts:/")  # the server proxies S3
    assert cfg.services.database_url("airflow") == "postgresql+psycopg2://app:pw@db.internal:5433/prod_airflow"
    assert cfg.services.redis_db == 3


def test_scaleout_environment_is_celery_on_postgres_with_the_lake_connection(scaleout):
    import json

    e = env.environment()
    assert e["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@db.internal:5433/prod_airflow")
    assert e["AIRFLOW__CELERY__BROKER_URL"] == "redis://:s3cret@cache:6380/3"
    assert e["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://app:pw@db.internal:5433/prod_airflow"
    conn = json.loads(e[f"AIRFLOW_CONN_{settings.S3_CONN_ID.upper()}"])
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == "http://minio:9000"
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in e  # SQLite-only arguments stay embedded
    assert e["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_apply_drops_the_other_profiles_settings(scaleout, monkeypatch):
    import os

    saved = dict(os.environ)
    try:
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = "lifecycle.platform.sqlite_metadata.CONNECT_ARGS"
        env.apply()
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS" not in os.environ
        assert os.environ["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        os.environ["LIFECYCLE_PROFILE"] = "embedded"
        env.apply()
        assert "AIRFLOW__CELERY__BROKER_URL" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_feature_store_config_is_templated_per_profile(scaleout, monkeypatch):
    import yaml

    from lifecycle import feature_store

    conf = yaml.safe_load(feature_store.render())
    assert conf["online_store"] == {"type": "redis", "connection_string": "cache:6380,db=3,password=s3cret"}
    assert conf["registry"]["registry_type"] == "sql" and conf["registry"]["path"].endswith("/prod_feast")
    assert conf["offline_store"] == {
        "type": "lifecycle.lake_offline_store.LakeOfflineStore",
        "root": "s3://ml-lake/lake",
        "s3_endpoint_override": "http://minio:9000",
    }
    monkeypatch.setenv("LIFECYCLE_PROFILE", "embedded")
    conf = yaml.safe_load(feature_store.render())
    assert conf["online_store"]["type"] == "sqlite" and conf["registry"]["path"].endswith("registry.db")
    assert conf["offline_store"] == {
        "type": "lifecycle.lake_offline_store.LakeOfflineStore",
        "root": f"{scaleout}/lake",
    }


def test_the_commit_recorded_with_a_model_comes_from_the_setting_where_there_is_no_repository(monkeypatch):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=settings.PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert tracking.git_commit() == head and len(head) == 40
    monkeypatch.setenv("LIFECYCLE_GIT_COMMIT", "0123abc")
    assert tracking.git_commit() == "0123abc"
    monkeypatch.setenv("LIFECYCLE_GIT_COMMIT", "unknown")
    with pytest.raises(settings.SettingError, match="LIFECYCLE_GIT_COMMIT"):
        settings.load()
