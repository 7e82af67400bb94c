"""Test environment: all state under .local/tests/, set before Airflow is imported.

Each unit test that touches the lake, MLflow or Feast gets its own state folder through the
``state`` fixture (settings are read from the environment on every call).
"""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION_STATE = ROOT / ".local" / "tests" / "session"
shutil.rmtree(SESSION_STATE, ignore_errors=True)
os.environ["LIFECYCLE_STATE_DIR"] = str(SESSION_STATE)
os.environ.setdefault("LIFECYCLE_AIRFLOW_PORT", "18080")
os.environ.setdefault("LIFECYCLE_SERVING_PORT", "18090")

from lifecycle.platform import env  # noqa: E402  (must follow the state dir)

env.apply()

from hypothesis import settings as hypothesis_settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

# hypothesis keeps its examples and its constants cache under .local, like every other generated file
set_hypothesis_home_dir(ROOT / ".local" / "hypothesis")
hypothesis_settings.register_profile(
    "lifecycle", database=DirectoryBasedExampleDatabase(ROOT / ".local" / "hypothesis")
)
hypothesis_settings.load_profile("lifecycle")


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A private state folder (lake, MLflow, Feast) for one test."""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(tmp_path))
    return tmp_path


def land_days(first, n, scenario="normal"):
    """Land and ingest ``n`` generated days starting at ``first``; returns the days."""
    import datetime as dt

    from lifecycle import ingest
    from lifecycle.devtools import datagen

    days = [first + dt.timedelta(days=i) for i in range(n)]
    for day in days:
        datagen.land(day, scenario)
        ingest.ingest_day(day)
    return days


WORLD = ROOT / ".local" / "tests" / "world"
WORLD_START = __import__("datetime").date(2026, 10, 1)


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


@pytest.fixture
def world(_world_built, monkeypatch):
    """Point settings at the shared world; returns its curated days."""
    monkeypatch.setenv("LIFECYCLE_STATE_DIR", str(WORLD))
    return _world_built
