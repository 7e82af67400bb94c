"""Every alias move is a named transition of ``lifecycle.registry``, recorded once in the history."""

import json

import pytest

from lifecycle import lake, promotion, registry, rollback, settings, tracking
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, PREVIOUS


@pytest.fixture
def versions(state):
    """The model with four versions (no artifacts: aliases only need versions), none live."""
    import tempfile

    client, name = tracking.client(), settings.load().model_name
    client.create_registered_model(name)
    source = tempfile.mkdtemp(dir=state)
    return [str(client.create_model_version(name, source=source).version) for _ in range(4)]


def held() -> dict[str, str]:
    """Every alias of the model, as MLflow holds it (not through the module under test)."""
    model = tracking.client().get_registered_model(settings.load().model_name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def records() -> list[dict]:
    """The history's objects, read straight from the lake's folder, in name (time) order."""
    folder = lake.zone("deployments") / settings.load().model_name
    names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    return [json.loads((folder / n).read_text()) for n in names]


def test_each_transition_moves_by_its_rule_and_is_recorded_once(versions):
    v1, v2, v3, v4 = versions
    cfg, client = settings.load(), tracking.client()
    registry.nominate(v1, "trained")
    registry.to_champion(v1, "first model")
    assert held() == {CHAMPION: v1}  # the champion leaves challenger
    with pytest.raises(LookupError, match="no 'previous_champion' version"):
        registry.roll_back("nothing to go back to")
    registry.nominate(v2, "retrained")
    registry.retire(v2, "rejected: below the margin")
    assert held() == {CHAMPION: v1}
    registry.nominate(v3, "retrained")
    with pytest.raises(LookupError, match=f"version {v3} is not the canary"):
        registry.roll_forward(v3, "not a canary")
    canary = registry.to_canary(v3, "promoted")
    assert held() == {CHAMPION: v1, CHALLENGER: v3, CANARY: v3}
    assert client.get_model_version(cfg.model_name, v3).tags["canary_started_at"] <= canary["at"]
    registry.roll_forward(v3, "gates passed", approved_by="admin")
    assert held() == {CHAMPION: v3, PREVIOUS: v1}  # out of canary and challenger
    registry.nominate(v4, "retrained")
    registry.to_canary(v4, "promoted")
    registry.abort(v4, "operational: fail")
    assert held() == {CHAMPION: v3, PREVIOUS: v1, CHALLENGER: v4}
    back = registry.roll_back("latency after release")
    assert held() == {CHAMPION: v1, PREVIOUS: v3, CHALLENGER: v4}
    again = registry.roll_back("it was not the model")
    assert held() == {CHAMPION: v3, PREVIOUS: v1, CHALLENGER: v4}  # a second rollback rolls forward

    history = records()
    assert history == registry.history()
    assert [(e["transition"], e["version"]) for e in history] == [
        ("nominate", v1),
        ("to_champion", v1),
        ("nominate", v2),
        ("retire", v2),
        ("nominate", v3),
        ("to_canary", v3),
        ("roll_forward", v3),
        ("nominate", v4),
        ("to_canary", v4),
        ("abort", v4),
        ("roll_back", v1),
        ("roll_back", v3),
    ]
    assert [e["at"] for e in history] == sorted(e["at"] for e in history)
    # each record's "from" is the one before's "to": nothing moved that the history does not explain
    assert all(a["to"] == b["from"] for a, b in zip(history, history[1:], strict=False))
    assert history[6]["to"] == {CHAMPION: v3, PREVIOUS: v1} and history[6]["approved_by"] == "admin"
    assert (back["from"], back["to"]) == ({CHAMPION: v3, PREVIOUS: v1, CHALLENGER: v4}, history[-2]["to"])
    assert again["recorded"] and again["reason"] == "it was not the model"
    assert all(e["by"].endswith("(command line)") and e["dag_run"] is None for e in history)
    # the version carries each of its moves as a tag, in words
    tags = client.get_model_version(cfg.model_name, v3).tags
    moves = sorted(v for k, v in tags.items() if k.startswith(registry.TAG_PREFIX))
    assert len(moves) == 4 and moves[0].startswith(f"nominate v{v3} (challenger -→{v3})")
    assert any(
        m.startswith(f"roll_forward v{v3} (champion {v1}→{v3}, canary {v3}→-, challenger {v3}→-, ") for m in moves
    )
    assert any(", approved by admin: gates passed" in m for m in moves)
    assert "released_at" in tags


def test_a_move_repeated_by_a_retry_is_recorded_once(versions):
    v1, v2, *_ = versions
    registry.to_champion(v1, "first")
    first = registry.to_champion(v2, "second")
    retried = registry.to_champion(v2, "second")  # the task's retry: nothing moves
    assert (first["recorded"], retried["recorded"]) == (True, False)
    assert [e["transition"] for e in records()] == ["to_champion", "to_champion"]
    assert not registry.retire(v2, "not a challenger")["recorded"]
    # a move made outside the module (a hand in the MLflow UI) is recorded as such before the next
    # transition, which then records only its own moves
    client, name = tracking.client(), settings.load().model_name
    client.delete_registered_model_alias(name, PREVIOUS)
    registry.nominate(v1, "retrained on more days")
    outside, nominated = records()[-2:]
    assert (outside["transition"], outside["from"], outside["to"]) == (
        "outside_registry",
        {CHAMPION: v2, PREVIOUS: v1},
        {CHAMPION: v2},
    )
    assert outside["by"].startswith("unknown") and outside["version"] == v1
    assert (nominated["from"], nominated["to"]) == ({CHAMPION: v2}, {CHAMPION: v2, CHALLENGER: v1})
    tags = client.get_model_version(name, v1).tags
    assert any(v.startswith("outside_registry") for k, v in tags.items() if k.startswith(registry.TAG_PREFIX))


def test_an_attempt_that_died_part_way_is_finished_and_recorded_once_by_its_retry(versions, monkeypatch):
    v1, v2, *_ = versions
    client = tracking.client()
    registry.to_champion(v1, "first")
    registry.nominate(v2, "retrained")
    real = client.set_registered_model_alias

    def dies_after_the_champion(model, alias, version):
        real(model, alias, version)
        if alias == CHAMPION:
            raise SystemExit("the task process died")

    monkeypatch.setattr(client, "set_registered_model_alias", dies_after_the_champion)
    monkeypatch.setattr(tracking, "client", lambda: client)
    with pytest.raises(SystemExit):
        registry.to_champion(v2, "release")
    assert held() == {CHAMPION: v2, CHALLENGER: v2}  # half moved: v1 is not previous_champion yet
    monkeypatch.setattr(client, "set_registered_model_alias", real)
    retried = registry.to_champion(v2, "release")
    assert held() == {CHAMPION: v2, PREVIOUS: v1}  # the retry finished the first attempt's moves
    assert retried["recorded"] and (retried["from"], retried["to"]) == (
        {CHAMPION: v1, CHALLENGER: v2},
        {CHAMPION: v2, PREVIOUS: v1},
    )
    assert [e["transition"] for e in records()] == ["to_champion", "nominate", "to_champion"]


def test_a_retry_of_a_recorded_move_completes_its_tag_and_alert(versions, monkeypatch):
    v1, v2, *_ = versions
    client, name = tracking.client(), settings.load().model_name
    registry.to_champion(v1, "first")
    registry.to_canary(v2, "promoted")
    sent = []
    monkeypatch.setattr(registry.alerts, "transition", sent.append)
    real = client.set_model_version_tag
    monkeypatch.setattr(tracking, "client", lambda: client)

    def dies_at_the_record_tag(model, version, key, value):
        if key.startswith(registry.TAG_PREFIX):
            raise SystemExit("the task process died")
        real(model, version, key, value)

    monkeypatch.setattr(client, "set_model_version_tag", dies_at_the_record_tag)
    with pytest.raises(SystemExit):
        registry.abort(v2, "operational: fail")  # recorded, then died before its tag and alert
    assert records()[-1]["transition"] == "abort" and sent == []
    monkeypatch.setattr(client, "set_model_version_tag", real)
    again = registry.abort(v2, "operational: fail")  # the task's retry
    assert not again["recorded"] and [e["transition"] for e in sent] == ["abort"]
    assert [e["transition"] for e in records()] == ["to_champion", "to_canary", "abort"]
    tags = client.get_model_version(name, v2).tags
    assert any(v.startswith("abort") for k, v in tags.items() if k.startswith(registry.TAG_PREFIX))


def test_the_command_line_rollback_records_its_user(versions, capsys):
    import os
    from unittest import mock

    v1, v2, *_ = versions
    with mock.patch.dict(os.environ):  # the command sets its deployment's environment (env.apply)
        command_line(v1, v2, capsys)
    assert held() == {CHAMPION: v1, PREVIOUS: v2, CANARY: v2}


def command_line(v1, v2, capsys):
    import getpass

    registry.to_champion(v1, "first")
    registry.to_champion(v2, "second")
    rollback.main(["--reason", "p99 latency doubled"])
    printed = json.loads(capsys.readouterr().out)
    assert (printed["transition"], printed["to"]) == ("roll_back", {CHAMPION: v1, PREVIOUS: v2})
    assert records()[-1]["by"] == f"{getpass.getuser()} (command line)"
    assert records()[-1]["reason"] == "p99 latency doubled"
    with pytest.raises(SystemExit, match=f"rollback failed: version {v2} was not promoted by the offline gate"):
        rollback.main(["--canary"])  # as canary the previous champion is released again: it needs the gate
    name = settings.load().model_name
    tracking.client().set_model_version_tag(name, v2, "promotion_decision", "promoted: test")
    rollback.main(["--canary"])  # v2 is the previous champion: it serves as canary first
    capsys.readouterr()
    rollback.main(["--history"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["when", "(UTC)", "transition", "version", "champion", "canary", "by", "why"]
    assert [line.split()[2] for line in table[1:]] == ["to_champion", "to_champion", "roll_back", "to_canary"]


def test_with_approvals_required_no_move_to_champion_goes_without_a_human(versions, monkeypatch, capsys):
    import os
    from unittest import mock

    v1, v2, *_ = versions
    monkeypatch.setenv("LIFECYCLE_REQUIRE_APPROVAL", "true")
    for move in (lambda: registry.to_champion(v1, "first"), lambda: promotion.release(v1, force=True)):
        with pytest.raises(registry.ApprovalRequired, match=f"to_champion of v{v1} to 'champion' needs a human"):
            move()
    assert held() == {} and records() == []
    registry.to_champion(v1, "first", approved_by="alice")
    registry.to_canary(v2, "promoted")  # a canary serves a share: it needs none
    with pytest.raises(registry.ApprovalRequired, match="roll_forward"):
        registry.roll_forward(v2, "gates passed")
    registry.roll_forward(v2, "gates passed", approved_by="bob")
    with mock.patch.dict(os.environ), pytest.raises(SystemExit, match="rollback failed: roll_back of .* needs a human"):
        rollback.main(["--reason", "from the command line"])  # nobody to ask there
    assert held() == {CHAMPION: v2, PREVIOUS: v1}
    monkeypatch.setenv("LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL", "true")  # a rollback may go through, recorded so
    back = registry.roll_back("p99 doubled")
    assert held() == {CHAMPION: v1, PREVIOUS: v2}
    assert back["approved_by"] == "nobody: LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL lets a rollback through"
    assert [(e["transition"], e["approved_by"]) for e in records()] == [
        ("to_champion", "alice"),
        ("to_canary", None),
        ("roll_forward", "bob"),
        ("roll_back", back["approved_by"]),
    ]
