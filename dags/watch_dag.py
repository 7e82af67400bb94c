"""
### watch: the live champion, every few minutes
Every `LIFECYCLE_WATCH_EVERY_MINUTES` (and manually). Reads the rows the live service logged in
the last `LIFECYCLE_WATCH_WINDOW_MINUTES` and the service's `/status`, and judges the champion:
error rate (`live_max_error_rate`), p99 latency against its own usual p99 (`max_latency_ratio`,
`max_latency_ms`), the share of rows served without stored features (`live_max_missing_share`) and
the age of the stored features served against their TTL (thresholds read when the task runs:
Admin → Variables, `lifecycle_*`). Every breach alerts (`live_breach`). An error-rate or latency
breach rolls the champion back to a healthy `previous_champion` (`LIFECYCLE_WATCH_ROLLBACK`);
with `LIFECYCLE_REQUIRE_APPROVAL` (and not `LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL`) the rollback
first waits for a human under Browse → Required Actions. Old or missing features and a service
that does not answer alert only: a rollback cannot mend them. The run's note says what it found.
Emits **model_released** when it rolled back.
"""

from datetime import timedelta

from airflow.sdk import DeltaTriggerTimetable, dag, task

from lifecycle import approval
from lifecycle.assets import RELEASED
from lifecycle.dag_defaults import CFG, DEFAULT_ARGS, START, TAGS


@dag(
    schedule=DeltaTriggerTimetable(timedelta(minutes=CFG.watch_every_minutes)),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 0},  # the next run watches again
    tags=[*TAGS, "bentoml"],
    doc_md=__doc__,
)
def watch():
    @task.branch
    def check(*, ti=None) -> list[str]:
        """Judges the live champion's recent rows and the service's status; alerts each breach."""
        from lifecycle import notes, registry, thresholds
        from lifecycle import watch as watching

        verdict = watching.check(thresholds.from_airflow().values)
        ti.xcom_push("verdict", verdict)
        notes.write(watching.describe(verdict))
        if not verdict["rollback"]:
            return []
        return ["approval"] if registry.needs_approval("roll_back") else ["roll_back"]

    @task(multiple_outputs=False, outlets=[RELEASED], trigger_rule="none_failed_min_one_success")
    def roll_back(*, ti=None, outlet_events=None) -> dict:
        """Champion back to the healthy previous champion, recorded in the deployment history."""
        from lifecycle import notes, registry, rollback

        verdict = ti.xcom_pull(task_ids="check", key="verdict")
        breaches = "; ".join(b["why"] for b in verdict["breaches"])
        moved = rollback.run(False, f"watch: {breaches}", approval.approver(ti))
        notes.write(f"watch rolled back: {registry.describe(moved)}")
        outlet_events[RELEASED].extra = moved
        return moved

    @task
    def refused(*, ti=None) -> str:
        """The rollback was rejected, or not answered in time: no alias moves."""
        return approval.refused(ti, "watch: rollback")

    asked = approval.Ask(
        task_id="approval",
        subject="The live champion breached its bounds: roll back to "
        "v{{ ti.xcom_pull(task_ids='check', key='verdict')['previous_champion'] }}?",
        body="{{ ti.xcom_pull(task_ids='check', key='verdict')['why'] }}",
        go="Roll back",
        go_to="roll_back",
        reject_to="refused",
        doc_md="Asks a human under Browse → Required Actions whether to roll back (default: Reject).",
    )
    done = roll_back()
    check() >> [asked, done]
    asked >> [done, refused()]


watch()
