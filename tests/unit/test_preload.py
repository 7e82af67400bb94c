"""The executor's preload fills, before the fork, the per-process caches each task filled on first use."""

import subprocess
import sys

WARMED = """
from lifecycle.platform import env
env.apply()
from airflow.sdk import plugins_manager
from mlflow.utils import requirements_utils
assert requirements_utils._MODULES_TO_PACKAGES is None and plugins_manager._get_plugins.cache_info().currsize == 0
from lifecycle.platform import preload
preload.warm()
assert "mlflow" in requirements_utils._MODULES_TO_PACKAGES["mlflow"]
assert requirements_utils._PACKAGES_TO_MODULES["xgboost"] == "xgboost"
assert plugins_manager._get_plugins.cache_info().currsize == 1
names = [p.name for p in plugins_manager._get_plugins()[0]]
assert "lifecycle_reports" in names, names
print("warm")
"""


def test_warm_fills_mlflows_distribution_map_and_airflows_plugins():
    done = subprocess.run([sys.executable, "-c", WARMED], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("warm"), done.stderr[-3000:]


def test_only_the_scheduler_preloads_when_it_makes_its_executor(monkeypatch):
    """The scheduler makes its executor before it records its job (healthy means tasks can start);
    the api-server makes one to read a running task's log and must not import the task libraries."""
    from lifecycle.platform import preload

    calls = []
    monkeypatch.setattr(preload, "preload", lambda: calls.append(1) or 0.0)
    monkeypatch.setattr(sys, "argv", ["airflow", "api-server"])
    preload.PreloadingLocalExecutor()
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["airflow", "scheduler"])
    executor = preload.PreloadingLocalExecutor()
    assert calls == [1]
    executor._preload()  # what start() does first: already done
    assert calls == [1]
