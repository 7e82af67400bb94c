"""
### promote: challenger → champion (only if better)
Runs on **model_challenger**. Scores challenger and current champion on the challenger's
holdout; promotes only past the configured margin and guard rails (the first model must pass
an absolute floor). The old champion keeps alias `previous_champion` for rollback. The decision
and its numbers are logged to MLflow and this task's log. Emits **model_champion** only on promotion.
"""
from airflow.sdk import dag, task

from lifecycle.assets import CANDIDATE, PROMOTED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, events_extra


@dag(schedule=[CANDIDATE], start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=[*TAGS, "mlflow"], doc_md=__doc__)
def promote():
    @task
    def compare(*, triggering_asset_events=None) -> dict:
        import logging

        from lifecycle.promotion import compare as score

        versions = events_extra(triggering_asset_events, CANDIDATE, "version")
        decision = score(versions[-1] if versions else None).as_dict()
        logging.getLogger(__name__).info("promotion decision: %s", decision)
        return decision

    @task.short_circuit
    def is_better(decision: dict) -> bool:
        return decision["promote"]

    @task(outlets=[PROMOTED])
    def set_champion(decision: dict, *, outlet_events=None) -> dict:
        from lifecycle.promotion import Decision
        from lifecycle.promotion import promote as move_aliases

        aliases = move_aliases(Decision(**decision))
        outlet_events[PROMOTED].extra = {"version": decision["challenger_version"],
                                         decision["metric"]: decision["challenger"][decision["metric"]]}
        return aliases

    decision = compare()
    is_better(decision) >> set_champion(decision)


promote()
