"""The rollout approval's trigger looks for the answer every second, not HITLTrigger's 5 s."""

import datetime as dt

import pytest
from airflow.sdk.exceptions import TaskDeferred

from lifecycle import approval


def test_the_deferred_approval_polls_for_the_answer_every_second(monkeypatch):
    op = approval.RecordedApproval(task_id="approval", subject="Roll out?", defaults="Reject")
    monkeypatch.setattr(op, "hitl_summary_extra", {}, raising=False)
    from airflow.providers.standard.triggers.hitl import HITLTrigger

    trigger = HITLTrigger(
        ti_id="0190a0a0-0000-7000-8000-000000000000",
        options=["Approve", "Reject"],
        defaults=["Reject"],
        params={},
        multiple=False,
        timeout_datetime=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    assert trigger.poke_interval == 5.0  # the library's default
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=trigger, method_name="execute_complete")
    assert deferred.value.trigger.poke_interval == approval.POKE_SECONDS == 1.0
    assert deferred.value.trigger.serialize()[1]["poke_interval"] == 1.0  # what the triggerer runs
