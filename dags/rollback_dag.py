"""
### rollback: champion ↔ previous_champion
Manual only. Moves alias `champion` back to the `previous_champion` version (and that alias to the
version that was champion, so a second run rolls forward). The same lever as
`python -m lifecycle.rollback`. Fails naming the model when there is no `previous_champion`.
"""
from airflow.sdk import dag, task

from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(schedule=None, start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=[*TAGS, "mlflow"], doc_md=__doc__)
def rollback():
    @task(retries=0)
    def swap_aliases() -> dict:
        """Champion back to the previous champion, in the MLflow registry."""
        from lifecycle.promotion import rollback as swap

        return swap()

    swap_aliases()


rollback()
