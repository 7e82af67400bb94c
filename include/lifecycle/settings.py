"""Every tunable of the project, read once from the environment.

One module owns names, paths and thresholds so DAGs, tests and the BentoML service agree.
Each value is an environment variable ``LIFECYCLE_<NAME>`` with the documented default; a value
that does not parse or breaks its rule raises ``SettingError`` naming the variable and the rule.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SettingError(ValueError):
    """A malformed LIFECYCLE_* setting."""


def _raw(name: str, default: str) -> tuple[str, str]:
    var = f"LIFECYCLE_{name}"
    return var, os.environ.get(var, default)


def _number(name: str, default: float, lo: float, hi: float, cast: type = float):
    var, raw = _raw(name, str(default))
    kind = "an integer" if cast is int else "a number"
    try:
        value = cast(raw)
    except ValueError:
        raise SettingError(f"{var}={raw!r}: must be {kind} between {lo} and {hi}") from None
    if not lo <= value <= hi:
        raise SettingError(f"{var}={raw!r}: must be between {lo} and {hi}")
    return value


def _float(name: str, default: float, lo: float, hi: float) -> float:
    return _number(name, default, lo, hi, float)


def _int(name: str, default: int, lo: int, hi: int) -> int:
    return _number(name, default, lo, hi, int)


def _str(name: str, default: str) -> str:
    var, raw = _raw(name, default)
    if not raw.strip():
        raise SettingError(f"{var}: must not be empty")
    return raw


def _date(name: str, default: str) -> str:
    var, raw = _raw(name, default)
    try:
        dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingError(f"{var}={raw!r}: must be a date as YYYY-MM-DD") from None
    return raw


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    lake_root: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    model_name: str
    experiment: str
    feature_repo: Path
    feature_service: str
    # quality gate
    min_rows_per_day: int
    max_amount: float
    # training
    seed: int
    holdout_days: int
    max_train_days: int
    primary_metric: str
    # promotion
    promotion_margin: float
    promotion_floor: float
    max_latency_ms: float
    # monitoring
    drift_share_threshold: float
    monitor_window_days: int
    reference_max_rows: int
    # serving
    bento_name: str
    gpu_pool: str
    gpu_queue: str
    schedule_start: str

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def bentoml_home(self) -> Path:
        return self.state_dir / "bentoml"


def load() -> Settings:
    """Read and validate all settings from the environment."""
    state = Path(_str("STATE_DIR", str(PROJECT_ROOT / ".local" / "state"))).resolve()
    metric = _str("PRIMARY_METRIC", "pr_auc")
    if metric not in ("pr_auc", "roc_auc"):
        raise SettingError(f"LIFECYCLE_PRIMARY_METRIC={metric!r}: must be one of pr_auc, roc_auc")
    return Settings(
        state_dir=state,
        lake_root=_str("LAKE_ROOT", f"file://{state}/lake"),
        mlflow_tracking_uri=_str("MLFLOW_TRACKING_URI", f"sqlite:///{state}/mlflow/mlflow.db"),
        mlflow_artifact_root=_str("MLFLOW_ARTIFACT_ROOT", f"{state}/mlflow/artifacts"),
        model_name=_str("MODEL_NAME", "fraud-detector"),
        experiment=_str("EXPERIMENT", "fraud-detection"),
        feature_repo=Path(_str("FEATURE_REPO", str(PROJECT_ROOT / "feature_repo"))),
        feature_service=_str("FEATURE_SERVICE", "fraud_model_v1"),
        min_rows_per_day=_int("MIN_ROWS_PER_DAY", 500, 1, 10**9),
        max_amount=_float("MAX_AMOUNT", 50_000.0, 1.0, 1e9),
        seed=_int("SEED", 42, 0, 2**31 - 1),
        holdout_days=_int("HOLDOUT_DAYS", 2, 1, 365),
        max_train_days=_int("MAX_TRAIN_DAYS", 60, 2, 3650),
        primary_metric=metric,
        promotion_margin=_float("PROMOTION_MARGIN", 0.005, 0.0, 1.0),
        promotion_floor=_float("PROMOTION_FLOOR", 0.30, 0.0, 1.0),
        max_latency_ms=_float("MAX_LATENCY_MS", 50.0, 0.001, 10_000.0),
        drift_share_threshold=_float("DRIFT_SHARE_THRESHOLD", 0.3, 0.0, 1.0),
        monitor_window_days=_int("MONITOR_WINDOW_DAYS", 3, 1, 365),
        reference_max_rows=_int("REFERENCE_MAX_ROWS", 50_000, 100, 10**8),
        bento_name=_str("BENTO_NAME", "fraud_service"),
        gpu_pool=_str("GPU_POOL", "gpu"),
        gpu_queue=_str("GPU_QUEUE", "gpu"),
        schedule_start=_date("SCHEDULE_START", "2026-10-01"),
    )
