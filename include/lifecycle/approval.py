"""Airflow's ApprovalOperator, keeping the answer of a Reject.

On Reject the operator skips its downstream tasks by raising, so the task runner never pushes its
return value and no later task could tell who rejected. This operator pushes the answer (chosen
option and the responding user, None when the response window passed and the default applied)
under XCom key ``answer`` first, whatever it is. The triggerer looks for the answer every
``POKE_SECONDS`` (HITLTrigger's default is 5 s), so an answer resumes the run within a second.
"""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import ApprovalOperator

ANSWER = "answer"
POKE_SECONDS = 1.0


class RecordedApproval(ApprovalOperator):
    def defer(self, *, trigger, **kwargs):
        trigger.poke_interval = POKE_SECONDS
        super().defer(trigger=trigger, **kwargs)

    def execute_complete(self, context, event: dict):
        if "error" not in event:
            context["ti"].xcom_push(
                ANSWER, {"chosen_options": event["chosen_options"], "responded_by_user": event.get("responded_by_user")}
            )
        return super().execute_complete(context=context, event=event)
