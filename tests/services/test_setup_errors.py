"""Bad settings stop at set-up with the service and the setting named, not deep inside a task."""

import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.devtools import s3_server
from lifecycle.platform import services

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = s3_server.start(tmp_path_factory.mktemp("s3") / "s3.log")
    client = services.s3_client(_services_for(server))
    client.create_bucket(Bucket="lifecycle-errors")
    yield server
    client.delete_bucket(Bucket="lifecycle-errors")
    server.stop()


def _services_for(server):
    from lifecycle.settings import Services

    return Services(
        "postgresql://postgres@127.0.0.1:5432",
        "x",
        "redis://127.0.0.1:6379/0",
        server.endpoint_url,
        "lifecycle-errors",
        server.access_key,
        server.secret_key,
        "http://127.0.0.1:5000",
    )


@pytest.fixture
def scaleout(s3, monkeypatch, tmp_path):
    values = {
        "LIFECYCLE_PROFILE": "scaleout",
        "LIFECYCLE_STATE_DIR": str(tmp_path),
        "LIFECYCLE_POSTGRES_URL": "postgresql://postgres@127.0.0.1:5432",
        "LIFECYCLE_DB_PREFIX": "lifecycle_err",
        "LIFECYCLE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "LIFECYCLE_S3_ENDPOINT_URL": s3.endpoint_url,
        "LIFECYCLE_S3_BUCKET": "lifecycle-errors",
        "LIFECYCLE_S3_ACCESS_KEY": s3.access_key,
        "LIFECYCLE_S3_SECRET_KEY": s3.secret_key,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_good_settings_pass_the_check(scaleout):
    services.check()


@pytest.mark.parametrize(
    "var,value,expected",
    [
        ("LIFECYCLE_S3_SECRET_KEY", "not-the-secret", ["S3 at", "rejected the credentials", "LIFECYCLE_S3_SECRET_KEY"]),
        ("LIFECYCLE_S3_ACCESS_KEY", "AKIAUNKNOWN", ["S3 at", "rejected the credentials", "LIFECYCLE_S3_ACCESS_KEY"]),
        ("LIFECYCLE_S3_BUCKET", "no-such-bucket", ["'no-such-bucket' does not exist", "LIFECYCLE_S3_BUCKET"]),
        ("LIFECYCLE_S3_ENDPOINT_URL", "http://127.0.0.1:9", ["S3 endpoint unreachable", "LIFECYCLE_S3_ENDPOINT_URL"]),
        ("LIFECYCLE_REDIS_URL", "redis://127.0.0.1:9/0", ["Redis unreachable at 127.0.0.1:9", "LIFECYCLE_REDIS_URL"]),
        (
            "LIFECYCLE_REDIS_URL",
            "redis://:wrong-password@127.0.0.1:6379/0",
            ["Redis at 127.0.0.1:6379", "LIFECYCLE_REDIS_URL"],
        ),
        (
            "LIFECYCLE_POSTGRES_URL",
            "postgresql://postgres@127.0.0.1:9",
            ["PostgreSQL at 127.0.0.1:9", "LIFECYCLE_POSTGRES_URL", "Connection refused"],
        ),
        (
            "LIFECYCLE_POSTGRES_URL",
            "postgresql://nobody@127.0.0.1:5432",
            ["PostgreSQL at 127.0.0.1:5432", "LIFECYCLE_POSTGRES_URL", "nobody"],
        ),
    ],
)
def test_bad_service_setting_is_named_at_setup(scaleout, var, value, expected):
    scaleout.setenv(var, value)
    with pytest.raises(services.ServiceError) as err:
        services.check()
    message = str(err.value)
    assert all(part in message for part in expected), message
    assert "wrong-password" not in message  # secrets never echoed
    assert message.count("\n  - ") == 1  # exactly one problem: the other services were fine


def test_setup_command_fails_cleanly_before_touching_airflow(scaleout, tmp_path):
    scaleout.setenv("LIFECYCLE_S3_BUCKET", "missing-bucket")
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle.platform.setup"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "set-up failed" in done.stderr and "LIFECYCLE_S3_BUCKET" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "airflow" / "airflow.cfg").exists()  # stopped before Airflow was set up


@pytest.mark.parametrize(
    "var,value,rule",
    [
        ("LIFECYCLE_PROFILE", "cluster", "one of embedded, scaleout"),
        ("LIFECYCLE_REDIS_URL", "redis://127.0.0.1:6379/42", "database number 0-15"),
        ("LIFECYCLE_REDIS_URL", "127.0.0.1:6379", "redis://host:port"),
        ("LIFECYCLE_S3_BUCKET", "Bad_Bucket", "S3 bucket name"),
        ("LIFECYCLE_S3_SECRET_KEY", "", "must be set for the scaleout profile"),
        ("LIFECYCLE_DB_PREFIX", "1-bad", "lowercase letters"),
    ],
)
def test_malformed_service_settings_are_rejected_before_any_connection(scaleout, var, value, rule):
    from lifecycle import settings

    scaleout.setenv(var, value)
    with pytest.raises(settings.SettingError) as err:
        settings.load()
    assert var in str(err.value) and rule in str(err.value)
