"""
### rollback: champion ↔ previous_champion
Manual only. Moves alias `champion` back to the `previous_champion` version (and that alias to the
version that was champion, so a second run rolls forward). The same lever as
`python -m lifecycle.rollback`. With `as_canary` the previous champion serves as `canary` first and
the `canary` DAG decides from production evidence. The move and its `reason` are recorded in the
deployment history with this run. Fails naming the model when there is no `previous_champion`.
Emits **model_released**.
"""

from airflow.sdk import Param, dag, task

from lifecycle.assets import RELEASED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "mlflow"],
    doc_md=__doc__,
    params={
        "as_canary": Param(
            False, type="boolean", description="The previous champion serves as canary first; the canary DAG decides"
        ),
        "reason": Param(
            "rolled back from the Airflow UI", type="string", description="Why, for the deployment history"
        ),
    },
)
def rollback():
    @task(multiple_outputs=False, retries=0, outlets=[RELEASED])
    def swap_aliases(*, params=None, outlet_events=None) -> dict:
        """Champion back to the previous champion (or the previous champion as canary), in the MLflow registry."""
        from lifecycle import rollback

        moved = rollback.run(params["as_canary"], params["reason"])
        outlet_events[RELEASED].extra = moved
        return moved

    swap_aliases()


rollback()
