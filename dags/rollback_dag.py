"""
### rollback: champion ↔ previous_champion
Manual only. Moves alias `champion` back to the `previous_champion` version (and that alias to the
version that was champion, so a second run rolls forward). The same lever as
`python -m lifecycle.rollback`. With `as_canary` the previous champion serves as `canary` first and
the `canary` DAG decides from production evidence. With `LIFECYCLE_REQUIRE_APPROVAL` (and not
`LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL`) the rollback first waits for a human under Browse →
Required Actions. The move, its `reason` and its approver are recorded in the deployment history
with this run. Fails naming the model when there is no `previous_champion`. Emits
**model_released**. No task is retried: an alias swap never repeats.
"""

from airflow.sdk import Param, dag, task

from lifecycle import approval
from lifecycle.assets import RELEASED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 0},
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
    @task.branch
    def gate(*, params=None, ti=None) -> str:
        """Straight to the swap, or first to a human when a rollback to champion needs an approval."""
        from lifecycle import registry
        from lifecycle.aliases import PREVIOUS

        previous = registry.aliases().get(PREVIOUS)
        ti.xcom_push("previous", previous)
        needed = previous is not None and not params["as_canary"] and registry.needs_approval("roll_back")
        return "approval" if needed else "swap_aliases"

    @task(multiple_outputs=False, outlets=[RELEASED], trigger_rule="none_failed_min_one_success")
    def swap_aliases(*, params=None, ti=None, outlet_events=None) -> dict:
        """Champion back to the previous champion (or the previous champion as canary), in the MLflow registry."""
        from lifecycle import notes, registry, rollback

        moved = rollback.run(params["as_canary"], params["reason"], approval.approver(ti))
        notes.write(registry.describe(moved))
        outlet_events[RELEASED].extra = moved
        return moved

    @task
    def refused(*, ti=None) -> str:
        """The rollback was rejected, or not answered in time: no alias moves."""
        return approval.refused(ti, "rollback")

    asked = approval.Ask(
        task_id="approval",
        subject="Roll champion back to v{{ ti.xcom_pull(task_ids='gate', key='previous') }}?",
        body="{{ params.reason }}",
        go="Roll back",
        go_to="swap_aliases",
        reject_to="refused",
        doc_md="Asks a human under Browse → Required Actions whether to roll back (default: Reject).",
    )
    done = swap_aliases()
    gate() >> [asked, done]
    asked >> [done, refused()]


rollback()
