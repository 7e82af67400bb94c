"""
### package: champion → BentoML service
Runs on **model_champion**. Imports the champion from the MLflow registry into the BentoML
store, builds the bento (service + online features from the same Feast feature service), starts
it on a free local port, checks golden requests (scores, model version, HTTP 400 on bad input),
and stops it. Emits **fraud_service_bento** when the smoke test passes.
"""
from airflow.sdk import dag, task

from lifecycle.assets import PACKAGED, PROMOTED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(schedule=[PROMOTED], start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=[*TAGS, "bentoml"], doc_md=__doc__)
def package():
    @task
    def import_champion() -> dict:
        from lifecycle.packaging import import_champion as copy_model

        return copy_model()

    @task
    def build_bento(model: dict) -> str:
        from lifecycle.packaging import build

        return build(model["mlflow_version"])

    @task(outlets=[PACKAGED])
    def smoke_test(bento: str, model: dict, *, outlet_events=None) -> dict:
        from lifecycle.packaging import smoke_test as check

        result = check(bento, model["mlflow_version"])
        outlet_events[PACKAGED].extra = {"bento": bento, "mlflow_version": model["mlflow_version"]}
        return result

    model = import_champion()
    smoke_test(build_bento(model), model)


package()
