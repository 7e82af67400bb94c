"""Test environment: all state under .local/tests/, set before Airflow is imported.

Each unit test that touches the lake, MLflow or Feast gets its own state folder through the
``state`` fixture (settings are read from the environment on every call). A run's session
state is ``.local/tests/<--state-name>`` (default ``session``), wiped when the run starts: two
suites run at once (``.ci/run``) with different names.
"""

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption(
        "--state-name",
        default="session",
        help="this run's state folder under .local/tests/ (wiped at start; concurrent runs need distinct names)",
    )


def pytest_configure(config):
    """The run's state folder and the tools' environment, before any test module imports Airflow."""
    session_state = ROOT / ".local" / "tests" / config.getoption("--state-name")
    shutil.rmtree(session_state, ignore_errors=True)
    os.environ["LIFECYCLE_STATE_DIR"] = str(session_state)
    os.environ.setdefault("LIFECYCLE_AIRFLOW_PORT", "18080")
    os.environ.setdefault("LIFECYCLE_SERVING_PORT", "18090")

    from hypothesis import settings as hypothesis_settings
    from hypothesis.configuration import set_hypothesis_home_dir
    from hypothesis.database import DirectoryBasedExampleDatabase

    from lifecycle.platform import env

    env.apply()
    _one_in_process_execution_api()
    # hypothesis keeps its examples and its constants cache under .local, like every other generated file
    set_hypothesis_home_dir(ROOT / ".local" / "hypothesis")
    hypothesis_settings.register_profile(
        "lifecycle", database=DirectoryBasedExampleDatabase(ROOT / ".local" / "hypothesis")
    )
    hypothesis_settings.load_profile("lifecycle")


def _one_in_process_execution_api():
    """dag.test() builds Airflow's in-process execution API anew for every task it runs, and Cadwyn
    generates the API's versioned routes on each new instance's first request: ~2.5 s of CPU a task
    on this machine kind (an ingest run, two tasks whose work takes 0.2 s: 5.5 s; with one instance
    0.25 s). One instance serves every dag.test() task of the run, as one api-server serves every
    task of a deployment; each task still sets the DAG bag it reads."""
    import functools

    from airflow.sdk.execution_time import supervisor

    supervisor.in_process_api_server = functools.cache(supervisor.in_process_api_server)


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A private state folder (lake, MLflow, Feast) for one test."""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    return tmp_path


def land_days(first, n, scenario="normal"):
    """Land and ingest ``n`` generated days starting at ``first``; returns the days."""
    from lifecycle import ingest
    from lifecycle.devtools import datagen

    days = [first + dt.timedelta(days=i) for i in range(n)]
    for day in days:
        datagen.land(day, scenario)
        ingest.ingest_day(day)
    return days


WORLD = ROOT / ".local" / "tests" / "world"
WORLD_START = dt.date(2026, 10, 1)


@pytest.fixture(scope="session")
def _world_built():
    """Eight curated normal days with features in Feast: built once, shared read-mostly."""
    shutil.rmtree(WORLD, ignore_errors=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(WORLD))
        return featurized_days(WORLD_START, 8)


def featurized_days(first, n):
    """Land, validate and featurize ``n`` normal days (online store included); returns the days."""
    from lifecycle import features, validation

    days = land_days(first, n)
    for day in days:
        validation.validate_day(day)
    features.materialize(features.build_tables(days))
    return days


@pytest.fixture(scope="session")
def featurized_template(tmp_path_factory):
    """Six curated normal days from ``WORLD_START`` with their feature snapshots in the lake, built
    once per run for the module worlds that start from them (``world_from``: only the lake is read)."""
    path = tmp_path_factory.mktemp("featurized")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(path))
        return path, featurized_days(WORLD_START, 6)


def world_from(template, n):
    """The state folder set in ``LIFECYCLE_STATE_DIR`` made from ``template``: its lake copied, Feast
    applied and loaded from it (Feast's registry names its online store's path, so it is never
    copied), then featurized up to ``n`` normal days; returns the days. On the idle 2-core machine
    the copy and load take ~1.5 s where landing, validating and featurizing six days take ~21 s."""
    from lifecycle import features, settings

    path, days = template
    assert n >= len(days), f"the template holds {len(days)} days"
    shutil.copytree(path / "lake", settings.load().state_dir / "lake", dirs_exist_ok=True)
    features.materialize(days)
    more = n - len(days)
    return days + (featurized_days(days[-1] + dt.timedelta(days=1), more) if more else [])


@pytest.fixture
def world(_world_built, monkeypatch):
    """Point settings at the shared world; returns its curated days."""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(WORLD))
    return _world_built


@pytest.fixture
def mailbox(tmp_path, monkeypatch):
    """Alerts on, by e-mail to a real SMTP server process through the Airflow connection."""
    from lifecycle.devtools import smtp_server

    server = smtp_server.start(tmp_path / "mail", tmp_path / "smtp.log")
    monkeypatch.setenv("LIFECYCLE_ALERT_CHANNELS", "email")
    monkeypatch.setenv("LIFECYCLE_ALERT_EMAIL_TO", "data-team@example.com")
    monkeypatch.setenv("AIRFLOW_CONN_LIFECYCLE_SMTP", server.connection())
    yield server
    server.stop()
