"""
### train: features → challenger
Runs when **feature_drift**, **model_degraded** or **data_erased** is emitted, weekly (Monday 03:00
UTC), or manually with params; the reason (drift share, the degraded metric with its report, or the
erasure) is
recorded on the MLflow runs and the registered version. A run with nothing new to learn is
skipped, saying why: no curated day yet (a manual run fails), a training set identical to one a
registered version was trained on with the same seed, or an asset-triggered run whose evidence is
already answered: both detectors judge the champion and may fire on the same days, and keep firing
while the answer is in canary (the judged version is no longer the champion, or a newer version
was registered after the event, serves as canary, or was already trained on the judged days and
rejected: the next attempt waits for evidence from a new day).
Builds a point-in-time training set from Feast's offline store joined with the labels known at
run time (every labeled row is asserted to come back), splits by time (last days = holdout),
trains the use case's candidates (XGBoost, a PyTorch MLP, a scikit-learn logistic baseline for
card fraud) as separate tasks in the `gpu` pool (CUDA when present, else CPU), logs each to
MLflow, and registers the best as a new version with alias `challenger`. Emits **model_challenger**.
"""

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from lifecycle import contract
from lifecycle.assets import CANDIDATE, DEGRADED, DRIFT, ERASED
from lifecycle.dag_defaults import CFG, DEFAULT_ARGS, START, TAGS


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=DRIFT | DEGRADED | ERASED
    ),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "mlflow", "gpu"],
    doc_md=__doc__,
    params={
        "seed": Param(CFG.seed, type="integer", description="Random seed for every candidate"),
        "reason": Param("manual", type="string", description="Why this manual run was started"),
    },
)
def train():
    @task(multiple_outputs=False)
    def training_set(*, run_id=None, dag_run=None, triggering_asset_events=None, params=None) -> dict:
        """Point-in-time training set with the labels known now; skipped, saying why, when nothing is new."""
        import pandas as pd

        from lifecycle import notes, training

        try:
            return training.prepare(
                run_id,
                dag_run.run_type,
                triggering_asset_events,
                params["reason"],
                pd.Timestamp(dag_run.run_after),
                params["seed"],
            )
        except training.NothingToTrain as nothing:
            raise notes.skipped(str(nothing)) from nothing

    @task(multiple_outputs=False, pool=CFG.gpu_pool, queue=CFG.gpu_queue)
    def fit(flavour: str, info: dict, *, params=None) -> dict:
        """Trains one candidate in the gpu pool and logs it to MLflow."""
        from lifecycle import training

        return training.train_candidate(flavour, info, info["parent_run_id"], params["seed"])

    @task(multiple_outputs=False, outlets=[CANDIDATE])
    def register_challenger(results: list[dict], info: dict, *, run_id=None, outlet_events=None) -> dict:
        """Registers the best candidate as a new version with alias challenger."""
        from lifecycle import notes, training

        registered = training.register_best(results, info, run_id, info["reason"])
        notes.write(
            f"registered v{registered['version']} as challenger ({registered['flavour']}, candidates "
            f"{registered['candidates']}) on {info['first_day']}..{info['last_day']}, for {info['reason']}"
        )
        outlet_events[CANDIDATE].extra = {"version": str(registered["version"]), "flavour": registered["flavour"]}
        return registered

    info = training_set()
    results = [fit.override(task_id=f"train_{flavour}")(flavour, info) for flavour in contract.current(CFG).candidates]
    register_challenger(results, info)


train()
