"""
### promote: is the challenger better than the champion?
Runs on **model_challenger**. Scores challenger and current champion on the challenger's
holdout; approves only past the configured margin and guard rails, and above the floor:
`promotion_min_lift` times what chance reaches on that holdout (its positive rate for PR-AUC).
Thresholds are read when the task runs (Admin → Variables, `lifecycle_*`). The decision, its
numbers and the thresholds it used are logged to MLflow, to the version's
`promotion_decision` tag and to this task's log. Emits **model_promoted** only on approval;
no alias moves here: `package` releases the version once its bento passed the smoke test.
"""

from airflow.sdk import dag, task

from lifecycle.assets import CANDIDATE, PROMOTED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, events_extra


@dag(
    schedule=[CANDIDATE],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "mlflow"],
    doc_md=__doc__,
)
def promote():
    @task(multiple_outputs=False)
    def compare(*, triggering_asset_events=None) -> dict:
        """Challenger vs champion on the same holdout; the decision with its reasons."""
        import logging

        from lifecycle import notes, promotion, thresholds

        versions = events_extra(triggering_asset_events, CANDIDATE, "version")
        decision = promotion.compare(versions[-1] if versions else None, thresholds.from_airflow()).as_dict()
        logging.getLogger(__name__).info("promotion decision: %s", decision)
        notes.write(promotion.describe(decision))
        return decision

    @task(outlets=[PROMOTED])
    def approve(decision: dict, *, outlet_events=None) -> str:
        """Hands the approved version to packaging; skipped (no event) unless the offline gate approved it."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not decision["promote"]:
            raise AirflowSkipException("not promoted: " + "; ".join(decision["reasons"]))
        outlet_events[PROMOTED].extra = {
            "version": decision["challenger_version"],
            decision["metric"]: decision["challenger"][decision["metric"]],
        }
        return decision["challenger_version"]

    decision = compare()
    approve(decision)


promote()
