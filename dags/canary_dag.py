"""
### canary: canary → champion, or abort
Every 30 minutes while a version holds alias `canary`, when **model_released** is emitted, and
manually. `decide` reads the prediction log since the canary started and applies three gates:
operational (the canary arm's requests, failed scoring, p99 latency vs the champion's),
distribution (PSI of the canary's shadow scores vs the champion's on the same transactions) and,
once `LIFECYCLE_MIN_LABELS` of those transactions are labeled, quality (its primary metric vs the
champion's on them). A failed operational or quality gate aborts (alias `canary` removed, reason
recorded); all three passed rolls out (`champion` = canary, the old one `previous_champion`);
otherwise the canary keeps serving and a later run decides. A moved score distribution holds the canary until labels
judge it. With `LIFECYCLE_REQUIRE_APPROVAL=true`, or when the canary's scores moved, a rollout waits
for a human under Browse → Required Actions; a rejection, or no answer within
`LIFECYCLE_APPROVAL_TIMEOUT_HOURS`, aborts and says so. Every outcome is an MLflow run
(`kind=canary_decision`) and tags on the version. Emits **model_released** on a rollout.
"""

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from lifecycle import approval
from lifecycle.assets import RELEASED
from lifecycle.dag_defaults import CFG, DEFAULT_ARGS, START, TAGS


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"), assets=RELEASED),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "mlflow", "serving"],
    doc_md=__doc__,
)
def canary():
    @task.short_circuit(multiple_outputs=False)
    def decide() -> dict | None:
        """Applies the operational, distribution and quality gates; without a canary the run ends here."""
        from lifecycle import canary, notes, thresholds

        try:
            decision = canary.decide(limits=thresholds.from_airflow())
        except canary.NoCanary as reason:
            notes.write(f"nothing to decide: {reason}")
            return None  # every task after this one is skipped
        print(f"v{decision['canary']} vs champion v{decision['champion']}: {decision['decision']}")
        print("\n".join(decision["reasons"]))
        notes.write(
            f"v{decision['canary']} vs champion v{decision['champion']}: {decision['decision']}; "
            + "; ".join(decision["reasons"])
        )
        return decision

    @task.branch
    def route(decision: dict) -> str | None:
        """Rollout (through approval when required or the scores moved), abort, or wait for more evidence."""
        from lifecycle import registry

        if decision["decision"] == "rollout":
            return "approval" if registry.needs_approval("roll_forward") or decision["review"] else "rollout"
        return "abort" if decision["decision"] == "abort" else None

    @task(multiple_outputs=False, outlets=[RELEASED], trigger_rule="none_failed_min_one_success")
    def rollout(decision: dict, *, ti=None, outlet_events=None) -> dict:
        """Moves champion to the canary's version; the old one becomes previous_champion."""
        from lifecycle import canary, notes, registry

        moved = canary.rollout(decision, "; ".join(decision["reasons"]), approved_by=approval.approver(ti))
        notes.write(registry.describe(moved))
        outlet_events[RELEASED].extra = moved
        return moved

    @task(multiple_outputs=False)
    def abort(decision: dict) -> dict:
        """Removes the canary alias, recording the failed gate."""
        from lifecycle import canary, notes, registry

        aborted = canary.abort(decision, "; ".join(r for r in decision["reasons"] if ": fail" in r))
        notes.write(registry.describe(aborted))
        return aborted

    @task(multiple_outputs=False)
    def unapproved(decision: dict, *, ti=None) -> dict:
        """Aborts a canary whose rollout was rejected, or not answered in time."""
        from lifecycle import canary, notes, registry

        by = approval.approver(ti)
        why = (
            f"rollout rejected by {by}"
            if by
            else f"no answer to the rollout approval within {CFG.approval_timeout_hours:g} h: rejected"
        )
        aborted = canary.abort(decision, why)
        notes.write(registry.describe(aborted))
        return aborted

    decision = decide()
    branch = route(decision)
    done = rollout(decision)
    asked = approval.Ask(
        task_id="approval",
        subject="Roll canary v{{ ti.xcom_pull(task_ids='decide')['canary'] }} out to champion?",
        body="{{ ti.xcom_pull(task_ids='decide')['reasons'] | join('\n') }}",
        go="Roll out",
        go_to="rollout",
        reject_to="unapproved",
        doc_md="Asks a human under Browse → Required Actions whether to roll the canary out (default: Reject).",
    )
    branch >> [asked, done, abort(decision)]
    asked >> [done, unapproved(decision)]


canary()
