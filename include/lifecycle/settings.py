"""Every tunable of the project, read from the environment: nowhere else reads a LIFECYCLE_* variable.

One module owns names, paths and thresholds so DAGs, tests and the BentoML service agree.
Each value is an environment variable ``LIFECYCLE_<NAME>`` with the documented default; a value
that does not parse or breaks its rule raises ``SettingError`` naming the variable and the rule.
``load()`` reads the environment each time it is called and caches nothing: a DAG file reads it
when it is parsed (``dag_defaults.CFG``; a task's process inherits the module its scheduler or
Celery worker imported, from the same environment), the live service when it starts
(``serving.CFG``), a task, a CLI or a test when it calls a library function that needs settings.
A process that starts others hands settings over as their environment, never by changing its own.

``LIFECYCLE_PROFILE`` is the one switch between backends: ``embedded`` (SQLite, LocalExecutor,
local lake, file/SQLite Feast, SQLite MLflow) or ``scaleout`` (PostgreSQL, Celery with Redis,
S3 lake, Redis online store, an MLflow tracking server). Only this module, ``env`` and the
templated store configs look at it; every other code path is the same on both.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROFILES = ("embedded", "scaleout")
S3_CONN_ID = "lifecycle_s3"  # the Airflow (amazon provider) connection the lake goes through
SMTP_CONN_ID = "lifecycle_smtp"  # the Airflow (smtp provider) connection e-mail alerts go through
WEBHOOK_CONN_ID = "lifecycle_webhook"  # the Airflow (http provider) connection webhook alerts are posted to
AIRFLOW_API_CONN_ID = "lifecycle_airflow_api"  # the api-server and the user run notes are written as
SERVICE_USER = "lifecycle"  # that user, in the deployments set-up makes (simple auth manager, role user)
ALERT_CHANNELS = ("email", "webhook")
# days the housekeeping DAG keeps each zone's data (by its day, a training set by its last day, a
# report by the day it is about, an MLflow run by its start); LIFECYCLE_RETENTION_DAYS overrides some
RETENTION_DAYS = {
    "landing": 30,
    "raw": 30,
    "quarantine": 90,
    "curated": 400,
    "features": 120,
    "training": 365,
    "reports": 365,
    "predictions": 400,
    "mlflow_runs": 365,
}
BUCKET_RULE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class SettingError(ValueError):
    """A malformed LIFECYCLE_* setting."""


@dataclass(frozen=True)
class Threshold:
    """A threshold a data engineer tunes: its setting (the deployment's default), bounds and meaning."""

    setting: str
    default: float
    lo: float
    hi: float
    meaning: str


# Defaults fit data of any base rate: floors are multiples of the level a chance ranking reaches
# on the same labels (PR-AUC: the positive rate; ROC-AUC: 0.5), drops are relative. A use case
# may declare its own (``UseCase.thresholds``); ``lifecycle.thresholds`` adds the Airflow Variables.
THRESHOLDS = {
    "promotion_min_lift": Threshold(
        "PROMOTION_MIN_LIFT", 1.2, 1.0, 100.0, "a challenger's primary metric must reach this multiple of chance"
    ),
    "promotion_margin": Threshold(
        "PROMOTION_MARGIN", 0.005, 0.0, 1.0, "gain in the primary metric a challenger needs over the champion"
    ),
    "max_latency_ms": Threshold("MAX_LATENCY_MS", 50.0, 0.001, 10_000.0, "single-row scoring CPU time limit (ms)"),
    "max_latency_ratio": Threshold(
        "MAX_LATENCY_RATIO", 2.0, 1.0, 100.0, "with a champion, the latency limit is at least this times its latency"
    ),
    "degraded_drop": Threshold(
        "DEGRADED_DROP", 0.3, 0.0, 1.0, "degraded when the live metric is this share below the holdout value"
    ),
    "degraded_min_lift": Threshold(
        "DEGRADED_MIN_LIFT", 1.1, 0.0, 100.0, "degraded when the live metric is below this multiple of chance"
    ),
    "drift_share_threshold": Threshold(
        "DRIFT_SHARE_THRESHOLD", 0.3, 0.0, 1.0, "share of monitored columns drifting that emits feature_drift"
    ),
    "canary_margin": Threshold(
        "CANARY_MARGIN", 0.0, 0.0, 1.0, "a canary's live metric may be this far below the champion's"
    ),
    "live_max_error_rate": Threshold(
        "LIVE_MAX_ERROR_RATE",
        0.01,
        0.0,
        1.0,
        "share of the live champion's rows failing to score that the watch acts on",
    ),
    "live_max_missing_share": Threshold(
        "LIVE_MAX_MISSING_SHARE",
        0.5,
        0.0,
        1.0,
        "share of live rows served without an entity's stored features that the watch alerts on",
    ),
    "slice_margin": Threshold(
        "SLICE_MARGIN",
        0.05,
        0.0,
        1.0,
        "a challenger is refused when its primary metric on a slice is more than this below the champion's "
        "and the bootstrap interval of the difference lies below zero",
    ),
    "slice_min_rows": Threshold(
        "SLICE_MIN_ROWS", 300, 10, 10**9, "holdout rows (with both classes) a slice needs to be judged"
    ),
    "max_calibration_share": Threshold(
        "MAX_CALIBRATION_SHARE",
        0.5,
        0.0,
        100.0,
        "a challenger's expected calibration error must be at most this share of its holdout's minority-class "
        "rate (the error of always answering the majority class)",
    ),
    "canary_max_psi": Threshold(
        "CANARY_MAX_PSI", 0.25, 0.001, 10.0, "PSI of the canary's scores vs the champion's beyond which it aborts"
    ),
}


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


def _bool(name: str, default: bool) -> bool:
    var, raw = _raw(name, str(default).lower())
    if raw.lower() not in ("true", "false"):
        raise SettingError(f"{var}={raw!r}: must be true or false")
    return raw.lower() == "true"


def _date(name: str, default: str) -> str:
    var, raw = _raw(name, default)
    try:
        dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingError(f"{var}={raw!r}: must be a date as YYYY-MM-DD") from None
    return raw


def _url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    var, raw = _raw(name, default)
    parts = urlsplit(raw)
    try:
        ok = parts.scheme in schemes and bool(parts.hostname) and parts.port is not None
    except ValueError:
        ok = False
    if not ok:
        raise SettingError(f"{var}={_redact(raw)!r}: must be a URL {schemes[0]}://host:port")
    return raw


def _redact(url: str) -> str:
    """A URL without its password, for messages and logs."""
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url


@dataclass(frozen=True)
class Services:
    """Where the scale-out profile's services are (None for the embedded profile)."""

    postgres_url: str
    db_prefix: str
    redis_url: str
    s3_endpoint_url: str
    s3_bucket: str
    s3_access_key: str
    s3_secret_key: str
    mlflow_url: str

    def database_url(self, purpose: str, driver: str = "postgresql+psycopg2") -> str:
        """The URL of this deployment's database for ``purpose`` (airflow, mlflow, feast)."""
        base = self.postgres_url.split("://", 1)[1].rstrip("/")
        return f"{driver}://{base}/{self.database(purpose)}"

    def database(self, purpose: str) -> str:
        return f"{self.db_prefix}_{purpose}"

    @property
    def redis_db(self) -> int:
        return int(urlsplit(self.redis_url).path.strip("/") or 0)


def _services() -> Services:
    prefix = _str("DB_PREFIX", "lifecycle")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", prefix):
        raise SettingError(
            f"LIFECYCLE_DB_PREFIX={prefix!r}: must be lowercase letters, digits or _ "
            "(at most 41), starting with a letter"
        )
    redis_url = _url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis",))
    if not re.fullmatch(r"/?([0-9]|1[0-5])?", urlsplit(redis_url).path):
        raise SettingError(f"LIFECYCLE_REDIS_URL={_redact(redis_url)!r}: the path must be a database number 0-15")
    bucket = _str("S3_BUCKET", "lifecycle")
    if not BUCKET_RULE.match(bucket) or ".." in bucket:
        raise SettingError(
            f"LIFECYCLE_S3_BUCKET={bucket!r}: must be an S3 bucket name (3-63 lowercase letters, digits, '.' or '-')"
        )
    keys = []
    for name in ("S3_ACCESS_KEY", "S3_SECRET_KEY"):
        var, raw = _raw(name, "")
        if not raw:
            raise SettingError(f"{var}: must be set for the scaleout profile (the lake's S3 credentials)")
        keys.append(raw)
    return Services(
        postgres_url=_url("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432", ("postgresql", "postgres")),
        db_prefix=prefix,
        redis_url=redis_url,
        s3_endpoint_url=_url("S3_ENDPOINT_URL", "http://127.0.0.1:9000", ("http", "https")),
        s3_bucket=bucket,
        s3_access_key=keys[0],
        s3_secret_key=keys[1],
        mlflow_url=_url("MLFLOW_URL", "http://127.0.0.1:5000", ("http", "https")),
    )


@dataclass(frozen=True)
class Settings:
    profile: str
    services: Services | None
    state_dir: Path
    lake_root: str
    landing_root: str  # where upstream delivers: the lake's landing zone, or a prefix behind its own connection
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    model_name: str
    experiment: str
    use_case: str  # the module declaring the use case (lifecycle.contract)
    # landing
    landing_timeout_minutes: float
    landing_poke_seconds: float
    landing_silence_days: int  # a scheduled ingest skips a day when nothing landed in this many days before it
    # quality gate
    min_rows_per_day: int
    max_amount: float
    label_max_delay_days: int
    # training
    seed: int
    holdout_days: int
    max_train_days: int
    max_fit_rows: int  # a candidate fits on a seeded sample of at most this many training rows
    eval_bootstrap: int  # bootstrap resamples behind each slice's confidence interval
    primary_metric: str
    # promotion
    promotion_margin: float
    promotion_min_lift: float  # THRESHOLDS says what each threshold means
    max_latency_ms: float
    max_latency_ratio: float
    slice_margin: float
    slice_min_rows: float
    max_calibration_share: float
    # monitoring
    drift_share_threshold: float
    monitor_window_days: int
    reference_max_rows: int
    monitor_max_rows: int  # rows of a window that a drift report compares (seeded sample beyond it)
    # live performance
    performance_window_days: int
    alert_rate: float
    min_labels: int
    degraded_drop: float
    degraded_min_lift: float
    # serving
    bento_name: str
    serving_port: int
    serving_workers: int
    serving_poll_seconds: float
    serving_max_body_bytes: int
    serving_max_batch: int
    serving_pin_version: str  # "" follows the aliases; a version number serves only that version
    serving_source: str  # the prediction log's source column for this service's rows
    canary_share: float
    shadow: bool
    canary_mode: bool  # a release of a new version goes to alias canary; the canary DAG decides the rollout
    canary_min_requests: int
    canary_max_error_rate: float
    canary_max_latency_ratio: float
    canary_max_psi: float
    live_max_error_rate: float
    live_max_missing_share: float
    canary_margin: float
    require_approval: bool
    rollback_without_approval: bool  # with require_approval, a rollback needs none (recorded as such)
    approval_timeout_hours: float
    prediction_flush_seconds: float
    watch_every_minutes: float  # the watch DAG's schedule
    watch_window_minutes: float  # the live rows a watch run judges
    watch_baseline_hours: float  # the champion's rows before the window: its usual latency
    watch_min_requests: int  # fewer rows in the window: no judgement on rates
    watch_rollback: bool  # a model-caused breach rolls back to a healthy previous champion
    serving_api_key_file: Path
    serving_api_key_value: str = field(repr=False)  # a secret: never in a repr or a log
    pseudonym_key_file: Path
    pseudonym_key_value: str = field(repr=False)  # the prediction log's and the ledger's HMAC key
    gpu_pool: str
    gpu_queue: str
    schedule_start: str
    airflow_port: int  # the api-server; the next two ports serve the worker's and triggerer's logs
    airflow_host: str  # where workers reach the api-server's execution API
    ui_url: str  # where a person opens the Airflow UI: the links in run notes, alerts and the history
    git_commit: str  # the source commit recorded with every model; "" asks git in the project folder
    retention_days: Mapping[str, int]  # per zone (RETENTION_DAYS): what the housekeeping DAG keeps
    alert_channels: tuple[str, ...]  # none: alerts are off
    alert_email_to: tuple[str, ...]
    alert_email_from: str

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def bentoml_home(self) -> Path:
        return self.state_dir / "bentoml"

    @property
    def cache_dir(self) -> Path:
        """Answers kept while their inputs are unchanged (the bento probe's)."""
        return self.state_dir / "cache"

    def fernet_key(self) -> str:
        """The key Airflow encrypts Variables and Connections with in its metadata DB: one per
        deployment, generated (readable by the owner only) under its Airflow home the first time
        anything asks, so every process of it (set-up's CLI, scheduler, tasks, in-process test runs)
        reads what another wrote."""
        path = self.airflow_home / "fernet.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_name(f".fernet.key.{os.getpid()}")
            with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            with contextlib.suppress(FileExistsError):  # written whole, then linked: no reader sees it empty
                os.link(staged, path)
            staged.unlink()
        return path.read_text().strip()

    def serving_api_key(self) -> str:
        """The live service's bearer token: LIFECYCLE_SERVING_API_KEY, else the key file's content
        (generated, readable by the owner only, the first time anything asks for it)."""
        if self.serving_api_key_value:
            return self.serving_api_key_value
        path = self.serving_api_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with (
                contextlib.suppress(FileExistsError),
                os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f,
            ):
                f.write(secrets.token_urlsafe(32))
        key = path.read_text().strip()
        if len(key) < 16:
            raise SettingError(f"{path} (LIFECYCLE_SERVING_API_KEY_FILE): the API key must have at least 16 characters")
        return key

    def pseudonym_key(self) -> bytes:
        """The key of the pseudonyms that stand for ids in the prediction log and the erasure
        ledger (``lifecycle.pseudonym``): LIFECYCLE_PSEUDONYM_KEY, else the key file's content
        (generated, readable by the owner only, the first time anything asks for it). The serving
        hosts and the Airflow workers must share it: a new key makes new pseudonyms."""
        if self.pseudonym_key_value:
            return self.pseudonym_key_value.encode()
        path = self.pseudonym_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            staged = path.with_name(f".{path.name}.{os.getpid()}")
            with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):  # written whole, then linked: no reader sees it empty
                os.link(staged, path)
            staged.unlink()
        key = path.read_text().strip()
        if len(key) < 32:
            raise SettingError(
                f"{path} (LIFECYCLE_PSEUDONYM_KEY_FILE): the pseudonym key must have at least 32 characters"
            )
        return key.encode()


def _landing(lake_root: str) -> str:
    var, raw = _raw("LANDING_ROOT", lake_root.rstrip("/") + "/landing")
    if "://" not in raw:
        raise SettingError(
            f"{var}={raw!r}: must be a URL such as file:///data/landing or s3://<connection id>@<bucket>/<prefix>"
        )
    return raw


def _alerts() -> dict:
    var, raw = _raw("ALERT_CHANNELS", "")
    channels = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    if unknown := [c for c in channels if c not in ALERT_CHANNELS]:
        raise SettingError(f"{var}={raw!r}: {', '.join(unknown)} not among {', '.join(ALERT_CHANNELS)}")
    to_var, to_raw = _raw("ALERT_EMAIL_TO", "")
    to = tuple(a.strip() for a in to_raw.split(",") if a.strip())
    sender = _str("ALERT_EMAIL_FROM", "model-lifecycle@localhost")
    for address in (*to, sender):
        if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", address):
            raise SettingError(
                f"{to_var if address in to else 'LIFECYCLE_ALERT_EMAIL_FROM'}: {address!r} is not an address"
            )
    if "email" in channels and not to:
        raise SettingError(f"{var}={raw!r}: e-mail alerts need LIFECYCLE_ALERT_EMAIL_TO (addresses, comma-separated)")
    return {"alert_channels": channels, "alert_email_to": to, "alert_email_from": sender}


def _retention(max_train_days: int, label_delay: int, performance_days: int) -> dict[str, int]:
    """RETENTION_DAYS with LIFECYCLE_RETENTION_DAYS ("zone=days,...") over it; a zone the loop still
    reads is kept at least as long as it reads it (training its days with their late labels, the
    performance window with its late labels)."""
    var, raw = _raw("RETENTION_DAYS", "")
    out = dict(RETENTION_DAYS)
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        zone, _, days = item.partition("=")
        if zone.strip() not in RETENTION_DAYS or not days.strip().isdigit() or int(days) < 1:
            raise SettingError(
                f"{var}={raw!r}: {item!r} is not <zone>=<days> with a zone of {', '.join(RETENTION_DAYS)} "
                "and at least 1 day"
            )
        out[zone.strip()] = int(days)
    floors = {
        "curated": (max_train_days + label_delay, "LIFECYCLE_MAX_TRAIN_DAYS + LIFECYCLE_LABEL_MAX_DELAY_DAYS"),
        "features": (max_train_days + label_delay, "LIFECYCLE_MAX_TRAIN_DAYS + LIFECYCLE_LABEL_MAX_DELAY_DAYS"),
        "predictions": (
            performance_days + label_delay,
            "LIFECYCLE_PERFORMANCE_WINDOW_DAYS + LIFECYCLE_LABEL_MAX_DELAY_DAYS",
        ),
    }
    for zone, (least, why) in floors.items():
        if out[zone] < least:
            raise SettingError(f"{var}: {zone}={out[zone]} is shorter than {why} ({least} days), which the loop reads")
    return out


def _ui_url(default: str) -> str:
    var, raw = _raw("UI_URL", default)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingError(f"{var}={raw!r}: must be the Airflow UI's address, http(s)://host[:port][/path]")
    return raw.rstrip("/")


def _pin() -> str:
    var, raw = _raw("SERVING_PIN_VERSION", "")
    if raw and not raw.isdigit():
        raise SettingError(f"{var}={raw!r}: must be a model version number, or empty to follow the aliases")
    return raw


def _commit() -> str:
    var, raw = _raw("GIT_COMMIT", "")
    if raw and not re.fullmatch(r"[0-9a-f]{7,40}", raw):
        raise SettingError(f"{var}={raw!r}: must be a git commit hash (7-40 hex digits), or empty to ask git")
    return raw


def _secret(name: str, least: int) -> str:
    var, raw = _raw(name, "")
    if raw and len(raw) < least:
        raise SettingError(f"{var}: must have at least {least} characters")  # never echo a secret
    return raw


RETIRED = {
    "PROMOTION_FLOOR": "PROMOTION_MIN_LIFT (a multiple of the holdout's chance level)",
    "DEGRADED_THRESHOLD": "DEGRADED_MIN_LIFT (a multiple of the live labels' chance level)",
    "DEGRADED_MARGIN": "DEGRADED_DROP (a share of the holdout value)",
}


def load() -> Settings:
    """Read and validate all settings from the environment."""
    for name, successor in RETIRED.items():
        if f"LIFECYCLE_{name}" in os.environ:
            raise SettingError(f"LIFECYCLE_{name} is retired: absolute thresholds did not fit data; use {successor}")
    state = Path(_str("STATE_DIR", str(PROJECT_ROOT / ".local" / "state"))).resolve()
    profile = _str("PROFILE", "embedded")
    if profile not in PROFILES:
        raise SettingError(f"LIFECYCLE_PROFILE={profile!r}: must be one of {', '.join(PROFILES)}")
    services = _services() if profile == "scaleout" else None
    if services:
        lake, tracking, artifacts = (
            f"s3://{S3_CONN_ID}@{services.s3_bucket}/lake",
            services.mlflow_url,
            "mlflow-artifacts:/experiments",
        )  # the server proxies S3 artifacts
    else:
        lake, tracking, artifacts = (
            f"file://{state}/lake",
            f"sqlite:///{state}/mlflow/mlflow.db",
            f"{state}/mlflow/artifacts",
        )
    metric = _str("PRIMARY_METRIC", "pr_auc")
    if metric not in ("pr_auc", "roc_auc"):
        raise SettingError(f"LIFECYCLE_PRIMARY_METRIC={metric!r}: must be one of pr_auc, roc_auc")
    max_train_days = _int("MAX_TRAIN_DAYS", 60, 2, 3650)
    label_delay = _int("LABEL_MAX_DELAY_DAYS", 14, 1, 365)
    performance_days = _int("PERFORMANCE_WINDOW_DAYS", 7, 1, 365)
    return Settings(
        profile=profile,
        services=services,
        state_dir=state,
        lake_root=(root := _str("LAKE_ROOT", lake)),
        landing_root=_landing(root),
        mlflow_tracking_uri=_str("MLFLOW_TRACKING_URI", tracking),
        mlflow_artifact_root=_str("MLFLOW_ARTIFACT_ROOT", artifacts),
        model_name=_str("MODEL_NAME", "fraud-detector"),
        experiment=_str("EXPERIMENT", "fraud-detection"),
        use_case=_str("USE_CASE", "usecases.fraud"),
        landing_timeout_minutes=_float("LANDING_TIMEOUT_MINUTES", 720.0, 0.1, 7 * 24 * 60.0),
        landing_poke_seconds=_float("LANDING_POKE_SECONDS", 30.0, 0.5, 3600.0),
        landing_silence_days=_int("LANDING_SILENCE_DAYS", 7, 1, 3650),
        min_rows_per_day=_int("MIN_ROWS_PER_DAY", 500, 1, 10**9),
        max_amount=_float("MAX_AMOUNT", 50_000.0, 1.0, 1e9),
        label_max_delay_days=label_delay,
        seed=_int("SEED", 42, 0, 2**31 - 1),
        holdout_days=_int("HOLDOUT_DAYS", 2, 1, 365),
        max_train_days=max_train_days,
        max_fit_rows=_int("MAX_FIT_ROWS", 2_000_000, 1000, 10**10),
        eval_bootstrap=_int("EVAL_BOOTSTRAP", 200, 0, 100_000),
        primary_metric=metric,
        monitor_window_days=_int("MONITOR_WINDOW_DAYS", 3, 1, 365),
        reference_max_rows=_int("REFERENCE_MAX_ROWS", 50_000, 100, 10**8),
        monitor_max_rows=_int("MONITOR_MAX_ROWS", 200_000, 1000, 10**8),
        performance_window_days=performance_days,
        alert_rate=_float("ALERT_RATE", 0.02, 0.0001, 0.5),
        min_labels=_int("MIN_LABELS", 1000, 10, 10**9),
        bento_name=_str("BENTO_NAME", "fraud_service"),
        serving_port=_int("SERVING_PORT", 3000, 1024, 65535),
        serving_workers=_int("SERVING_WORKERS", min(os.cpu_count() or 1, 4), 1, 64),  # one per core
        serving_poll_seconds=_float("SERVING_POLL_SECONDS", 1.0, 0.1, 60.0),
        serving_max_body_bytes=_int("SERVING_MAX_BODY_BYTES", 4 * 2**20, 1024, 2**30),
        serving_max_batch=_int("SERVING_MAX_BATCH", 10_000, 1, 1_000_000),
        serving_pin_version=_pin(),
        serving_source=_str("SERVING_SOURCE", "live"),
        canary_share=_float("CANARY_SHARE", 0.1, 0.0, 1.0),
        shadow=_bool("SHADOW", False),
        canary_mode=_bool("CANARY_MODE", True),
        canary_min_requests=_int("CANARY_MIN_REQUESTS", 200, 1, 10**9),
        canary_max_error_rate=_float("CANARY_MAX_ERROR_RATE", 0.01, 0.0, 1.0),
        canary_max_latency_ratio=_float("CANARY_MAX_LATENCY_RATIO", 2.0, 1.0, 100.0),
        require_approval=_bool("REQUIRE_APPROVAL", False),
        rollback_without_approval=_bool("ROLLBACK_WITHOUT_APPROVAL", False),
        approval_timeout_hours=_float("APPROVAL_TIMEOUT_HOURS", 24.0, 0.001, 24 * 30.0),
        prediction_flush_seconds=_float("PREDICTION_FLUSH_SECONDS", 2.0, 0.1, 5.0),
        watch_every_minutes=_float("WATCH_EVERY_MINUTES", 10.0, 1.0, 24 * 60.0),
        watch_window_minutes=_float("WATCH_WINDOW_MINUTES", 15.0, 1.0, 7 * 24 * 60.0),
        watch_baseline_hours=_float("WATCH_BASELINE_HOURS", 24.0, 0.0, 24 * 30.0),
        watch_min_requests=_int("WATCH_MIN_REQUESTS", 50, 1, 10**9),
        watch_rollback=_bool("WATCH_ROLLBACK", True),
        serving_api_key_file=Path(_str("SERVING_API_KEY_FILE", str(state / "serving" / "api-key"))),
        serving_api_key_value=_secret("SERVING_API_KEY", 16),
        pseudonym_key_file=Path(_str("PSEUDONYM_KEY_FILE", str(state / "secrets" / "pseudonym-key"))),
        pseudonym_key_value=_secret("PSEUDONYM_KEY", 32),
        gpu_pool=_str("GPU_POOL", "gpu"),
        gpu_queue=_str("GPU_QUEUE", "gpu"),
        schedule_start=_date("SCHEDULE_START", "2026-10-01"),
        airflow_port=(port := _int("AIRFLOW_PORT", 8080, 1024, 65533)),
        airflow_host=_str("AIRFLOW_HOST", "localhost"),
        ui_url=_ui_url(f"http://localhost:{port}"),
        git_commit=_commit(),
        retention_days=_retention(max_train_days, label_delay, performance_days),
        **_alerts(),
        **{name: _float(t.setting, t.default, t.lo, t.hi) for name, t in THRESHOLDS.items()},
    )
