"""The approval gate's question: its trigger looks for the answer every second, not HITLTrigger's 5 s,
and the person's choice names the task that runs next."""

import datetime as dt

import pytest
from airflow.sdk.exceptions import TaskDeferred

from lifecycle import approval


def test_the_deferred_approval_polls_for_the_answer_every_second(monkeypatch):
    op = approval.Ask(
        task_id="approval",
        subject="Roll out?",
        body="gates passed",
        go="Roll out",
        go_to="rollout",
        reject_to="unapproved",
    )
    monkeypatch.setattr(op, "hitl_summary_extra", {}, raising=False)
    from airflow.providers.standard.triggers.hitl import HITLTrigger

    trigger = HITLTrigger(
        ti_id="0190a0a0-0000-7000-8000-000000000000",
        options=["Roll out", "Reject"],
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


def test_the_choice_names_the_next_task_and_no_answer_rejects():
    op = approval.Ask(
        task_id="approval", subject="Release v3?", body="promoted", go="Release", go_to="release", reject_to="refused"
    )
    assert (op.options, op.options_mapping, op.defaults) == (
        ["Release", "Reject"],
        {"Release": "release", "Reject": "refused"},
        ["Reject"],
    )
    assert op.response_timeout == dt.timedelta(hours=24)  # LIFECYCLE_APPROVAL_TIMEOUT_HOURS
    [notice] = op.notifiers
    assert (notice.kind, notice.subject, notice.required_actions) == (
        "approval_waiting",
        "approval waiting: Release v3?",
        True,
    )


class _Answered:
    """A task instance whose approval task pushed ``answer`` (None: nobody was asked or answered)."""

    def __init__(self, answer):
        self.answer = answer

    def xcom_pull(self, task_ids, key):
        return self.answer if (task_ids, key) == ("approval", approval.ANSWER) else None


def test_a_refused_branch_says_who_rejected_or_that_nobody_answered():
    by_admin = _Answered({"chosen_options": ["Reject"], "responded_by_user": {"id": "1", "name": "admin"}})
    assert approval.refused(by_admin, "rollback") == "rollback rejected by admin"
    assert approval.refused(_Answered(None), "release of v3 as champion") == (
        "release of v3 as champion: no answer in time"
    )
