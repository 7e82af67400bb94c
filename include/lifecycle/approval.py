"""Airflow's ApprovalOperator, keeping the answer of a Reject.

On Reject the operator skips its downstream tasks by raising, so the task runner never pushes its
return value and no later task could tell who rejected. This operator pushes the answer (chosen
option and the responding user, None when the response window passed and the default applied)
under XCom key ``answer`` first, whatever it is.
"""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import ApprovalOperator

ANSWER = "answer"


class RecordedApproval(ApprovalOperator):
    def execute_complete(self, context, event: dict):
        if "error" not in event:
            context["ti"].xcom_push(
                ANSWER, {"chosen_options": event["chosen_options"], "responded_by_user": event.get("responded_by_user")}
            )
        return super().execute_complete(context=context, event=event)
