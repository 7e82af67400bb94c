import pytest

from lifecycle import env, settings


def test_defaults_are_valid_and_state_is_under_one_folder(monkeypatch):
    monkeypatch.delenv("LIFECYCLE_STATE_DIR")
    cfg = settings.load()
    assert cfg.state_dir == settings.PROJECT_ROOT / ".local" / "state"
    assert cfg.lake_root == f"file://{cfg.state_dir}/lake"
    assert cfg.mlflow_tracking_uri.endswith(f"{cfg.state_dir}/mlflow/mlflow.db")
    assert 0 < cfg.drift_share_threshold < 1 and cfg.promotion_floor > 0


@pytest.mark.parametrize("var,value,rule", [
    ("LIFECYCLE_DRIFT_SHARE_THRESHOLD", "lots", "must be a number"),
    ("LIFECYCLE_DRIFT_SHARE_THRESHOLD", "1.5", "between 0.0 and 1.0"),
    ("LIFECYCLE_HOLDOUT_DAYS", "2.5", "must be an integer"),
    ("LIFECYCLE_PRIMARY_METRIC", "accuracy", "one of pr_auc, roc_auc"),
    ("LIFECYCLE_SCHEDULE_START", "yesterday", "YYYY-MM-DD"),
    ("LIFECYCLE_MODEL_NAME", "  ", "must not be empty"),
])
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
    assert e["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/airflow/airflow.db"
    assert e["BENTOML_HOME"] == str(tmp_path / "bentoml")


def test_bad_airflow_port_is_rejected(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_AIRFLOW_PORT", "80a")
    with pytest.raises(settings.SettingError, match="LIFECYCLE_AIRFLOW_PORT"):
        env.environment()
