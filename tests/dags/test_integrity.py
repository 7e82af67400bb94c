"""The DAG package as the DAG processor sees it: imports, conventions, the asset graph."""

import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag

from conftest import ROOT
from lifecycle import assets, settings

EXPECTED = {
    # dag_id: (inlet assets of the schedule, outlet assets of its tasks)
    "ingest": (set(), {assets.RAW}),
    "validate": ({assets.RAW}, {assets.CURATED}),
    "features": ({assets.CURATED}, {assets.FEATURES}),
    "train": ({assets.DRIFT, assets.DEGRADED, assets.ERASED}, {assets.CANDIDATE}),
    "promote": ({assets.CANDIDATE}, {assets.PROMOTED}),
    "package": ({assets.PROMOTED}, {assets.PACKAGED, assets.RELEASED}),
    "monitor": (set(), {assets.DRIFT}),
    "rollback": (set(), {assets.RELEASED}),
    "score": ({assets.FEATURES}, {assets.PREDICTIONS}),
    "performance": ({assets.CURATED}, {assets.DEGRADED}),
    "canary": ({assets.RELEASED}, {assets.RELEASED}),
    "watch": (set(), {assets.RELEASED}),
    "erase": (set(), {assets.ERASED}),
    "housekeeping": (set(), set()),
}
NO_RETRY = {"rollback", "watch"}  # an alias swap never repeats; the next watch run watches again


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(ROOT / "dags"), include_examples=False)


def test_no_import_errors_and_every_dag_present(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_conventions(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "model-lifecycle" in dag.tags
    assert dag.doc_md and dag_id in dag.doc_md
    for t in dag.tasks:
        assert t.owner == "ml-platform"
        # a killed task process is retried (bad data fails at once regardless); an alias swap never repeats
        assert t.retries == 0 if dag_id in NO_RETRY else t.retries >= 1, t.task_id


def _schedule_assets(dag) -> set:
    cond = dag.timetable.asset_condition
    if cond is None:
        return set()
    return set(cond.objects) if hasattr(cond, "objects") else {cond}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_asset_graph_is_as_designed(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    inlets, outlets = EXPECTED[dag_id]
    assert {a.name for a in _schedule_assets(dag)} == {a.name for a in inlets}
    emitted = {o.name for t in dag.tasks for o in t.outlets}
    assert emitted == {a.name for a in outlets}


def test_train_runs_on_drift_or_weekly_and_candidates_use_the_gpu_pool(dagbag):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    dag = dagbag.dags["train"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert isinstance(dag.timetable.timetable, CronTriggerTimetable)
    assert "train" in dag.dag_id and set(dag.params) >= {"seed", "reason"}
    fits = [t for t in dag.tasks if t.task_id.startswith("train_")]
    assert sorted(t.task_id for t in fits) == ["train_pytorch_mlp", "train_sklearn_logistic", "train_xgboost"]
    cfg = settings.load()
    assert all(t.pool == cfg.gpu_pool and t.queue == cfg.gpu_queue for t in fits)
    assert all(t.pool != cfg.gpu_pool for t in dag.tasks if t not in fits)


def test_watch_runs_every_few_minutes_one_run_at_a_time(dagbag):
    from datetime import timedelta

    from airflow.sdk import DeltaTriggerTimetable

    dag = dagbag.dags["watch"]
    assert isinstance(dag.timetable, DeltaTriggerTimetable) and dag.max_active_runs == 1
    assert dag.timetable.delta == timedelta(minutes=settings.load().watch_every_minutes)


def test_dag_files_parse_without_heavy_imports():
    heavy = ["feast", "mlflow", "torch", "xgboost", "evidently", "great_expectations", "bentoml", "sklearn"]
    code = (
        "import sys, runpy, glob\n"
        f"[runpy.run_path(f) for f in sorted(glob.glob({str(ROOT / 'dags')!r} + '/*.py'))]\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_housekeeping_deletes_nothing_until_a_deployment_unpauses_it(dagbag):
    assert dagbag.dags["housekeeping"].is_paused_upon_creation is True
    assert type(dagbag.dags["erase"].timetable).__name__ == "NullTimetable"  # manual only
