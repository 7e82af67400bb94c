"""One approval gate: with ``LIFECYCLE_REQUIRE_APPROVAL``, every path to ``champion`` waits for a
human under Browse → Required Actions (``registry`` refuses a move to champion without an approver).

``Ask`` is Airflow's ``HITLBranchOperator``: the person's choice names the task that runs next
(``options_mapping``), the other branch is skipped, and no answer within
``LIFECYCLE_APPROVAL_TIMEOUT_HOURS`` takes the default (the refusing option). It also keeps who
answered (XCom ``answer``: the branch operator pushes only the branch), alerts the waiting request
(``approval_waiting``, its notifier) and the answer (``approval_answered``). The triggerer looks
for the answer every ``POKE_SECONDS`` (HITLTrigger's default is 5 s), so an answer resumes the run
within a second.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import HITLBranchOperator

from lifecycle import alerts
from lifecycle import settings as _settings

ANSWER = "answer"
POKE_SECONDS = 1.0


class Ask(HITLBranchOperator):
    """Asks ``subject`` (``body`` says why) with a ``go`` option leading to task ``go_to`` and a
    ``Reject`` option (the default on timeout) leading to ``reject_to``."""

    def __init__(self, *, subject: str, body: str, go: str, go_to: str, reject_to: str, **kwargs):
        cfg = _settings.load()
        super().__init__(
            subject=subject,
            body=body,
            options=[go, "Reject"],
            options_mapping={go: go_to, "Reject": reject_to},
            defaults=["Reject"],
            response_timeout=timedelta(hours=cfg.approval_timeout_hours),
            notifiers=[alerts.Notice("approval_waiting", f"approval waiting: {subject}", body, required_actions=True)],
            **kwargs,
        )

    def defer(self, *, trigger, **kwargs):
        trigger.poke_interval = POKE_SECONDS
        super().defer(trigger=trigger, **kwargs)

    def execute_complete(self, context, event: dict):
        if "error" not in event:
            user = event.get("responded_by_user")
            context["ti"].xcom_push(ANSWER, {"chosen_options": event["chosen_options"], "responded_by_user": user})
            by = f"by {user['name']}" if user else "by nobody: the response window passed, the default applied"
            alerts.send(
                "approval_answered",
                f"approval answered: {', '.join(event['chosen_options'])} {by}",
                f"{self.subject}\n{', '.join(event['chosen_options'])} {by}",
                context=context,
            )
        return super().execute_complete(context=context, event=event)


def approver(ti, task_id: str = "approval") -> str | None:
    """Who approved in this run (None when nobody was asked)."""
    answer = ti.xcom_pull(task_ids=task_id, key=ANSWER)
    user = answer.get("responded_by_user") if answer else None
    return user["name"] if user else None


def refused(ti, what: str) -> str:
    """A refusing branch's work: the run's note says ``what`` was rejected, and by whom, or that
    nobody answered in time; no alias moves. Returns the note."""
    from lifecycle import notes

    by = approver(ti)
    why = f"{what} rejected by {by}" if by else f"{what}: no answer in time"
    notes.write(why)
    return why
