"""Every move of a model's aliases, as named transitions with one deployment history.

The transitions and their rules (nothing else moves an alias):
  nominate      a newly registered version becomes ``challenger`` (scored in shadow when enabled)
  retire        a version the offline gate rejected loses ``challenger``
  to_canary     with a champion serving, a released version becomes ``canary`` (its evidence
                starts now: tag ``canary_started_at``)
  to_champion   a released version becomes ``champion`` (direct, without canary)
  roll_forward  the canary becomes ``champion`` once its gates passed
  abort         the canary loses ``canary``; the champion keeps serving every request
  roll_back     the ``previous_champion`` becomes ``champion`` again
Whichever way a version becomes champion (to_champion, roll_forward, roll_back), the old champion
becomes ``previous_champion``, the version leaves ``canary`` and ``challenger`` if it held them, and
it is tagged ``released_at``: a second roll_back rolls forward again. With
``LIFECYCLE_REQUIRE_APPROVAL`` none of them moves without the name of the human who approved it
(``approval``: the DAGs ask under Required Actions), except a roll_back when
``LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL`` lets it through, which is then recorded as such.

Each move is recorded, once, in the append-only history: one JSON object per move under the lake's
``deployments/<model>/`` (never rewritten, so an object store needs no lock) and a
``deployment_<time>`` tag on the version. A record says which transition, when, the aliases before
and after, who (the DAG run, with its UI link, or the command line's user), why, who approved, and
the evidence (a report or run). An abort or a rollback is also alerted (``alerts``).

Retries and hands: a move first writes its intent (the aliases before, the targets) beside the
history, so a retry of an attempt that died part-way finishes the same moves and records them as
one; a retry of a recorded move records nothing and completes its tag and alert. Aliases moved by
anything else since the last record (the MLflow UI) are recorded as ``outside_registry`` before
the next transition, never folded into it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import uuid

from lifecycle import alerts, lake, tracking, ui
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, PREVIOUS

ALIASES = (CHAMPION, CANARY, CHALLENGER, PREVIOUS)
TAG_PREFIX = "deployment_"


def aliases() -> dict[str, str]:
    """The lifecycle aliases as they are now ({} before the model is registered)."""
    from mlflow.exceptions import MlflowException

    cfg = _settings.load()
    try:
        held = tracking.client().get_registered_model(cfg.model_name).aliases
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    return {a: str(held[a]) for a in ALIASES if a in held}


def nominate(version: str, reason: str, evidence: str | None = None) -> dict:
    return _move("nominate", version, reason, {CHALLENGER: str(version)}, evidence)


def retire(version: str, reason: str, evidence: str | None = None) -> dict:
    held = aliases().get(CHALLENGER) == str(version)
    return _move("retire", version, reason, {CHALLENGER: None} if held else {}, evidence)


def to_canary(version: str, reason: str, evidence: str | None = None, approved_by: str | None = None) -> dict:
    cfg = _settings.load()
    now = aliases()
    if CHAMPION not in now:
        raise LookupError(f"model {cfg.model_name!r} has no {CHAMPION!r}: version {version} cannot be a canary")
    if now.get(CANARY) != str(version):  # its evidence starts now (a retried release keeps the start)
        tracking.client().set_model_version_tag(cfg.model_name, str(version), "canary_started_at", _now().isoformat())
    return _move("to_canary", version, reason, {CANARY: str(version)}, evidence, approved_by)


def to_champion(version: str, reason: str, evidence: str | None = None, approved_by: str | None = None) -> dict:
    return _champion("to_champion", str(version), reason, evidence, approved_by)


def roll_forward(version: str, reason: str, evidence: str | None = None, approved_by: str | None = None) -> dict:
    now = aliases()
    if str(version) not in (now.get(CANARY), now.get(CHAMPION)):  # champion already: a retried roll-forward
        raise LookupError(f"version {version} is not the canary: it cannot roll forward")
    return _champion("roll_forward", str(version), reason, evidence, approved_by)


def abort(version: str, reason: str, evidence: str | None = None, approved_by: str | None = None) -> dict:
    held = aliases().get(CANARY) == str(version)
    return _move("abort", version, reason, {CANARY: None} if held else {}, evidence, approved_by)


def roll_back(reason: str, evidence: str | None = None, approved_by: str | None = None) -> dict:
    cfg = _settings.load()
    previous = aliases().get(PREVIOUS)
    if previous is None:
        raise LookupError(f"model {cfg.model_name!r} has no {PREVIOUS!r} version to roll back to")
    return _champion("roll_back", previous, reason, evidence, approved_by)


class ApprovalRequired(PermissionError):
    """With LIFECYCLE_REQUIRE_APPROVAL, a move to champion needs the name of the human who approved it."""


def needs_approval(transition: str, cfg: _settings.Settings | None = None) -> bool:
    """Whether ``transition`` (to champion) waits for a human: the one rule, stated in this module's docstring."""
    cfg = cfg or _settings.load()
    return cfg.require_approval and not (transition == "roll_back" and cfg.rollback_without_approval)


def _champion(transition: str, version: str, reason: str, evidence, approved_by) -> dict:
    cfg = _settings.load()
    if not approved_by and needs_approval(transition, cfg):
        raise ApprovalRequired(
            f"{transition} of v{version} to {CHAMPION!r} needs a human's approval (LIFECYCLE_REQUIRE_APPROVAL): "
            "the package, canary and rollback DAGs ask under Browse → Required Actions"
            + (" (or let rollbacks through: LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL)" if transition == "roll_back" else "")
        )
    if not approved_by and cfg.require_approval:
        approved_by = "nobody: LIFECYCLE_ROLLBACK_WITHOUT_APPROVAL lets a rollback through"
    now = aliases()
    changes: dict[str, str | None] = {CHAMPION: version}
    if now.get(CHAMPION) not in (None, version):
        changes[PREVIOUS] = now[CHAMPION]
    elif now.get(PREVIOUS) == version:
        changes[PREVIOUS] = None
    for alias in (CANARY, CHALLENGER):
        if now.get(alias) == version:
            changes[alias] = None
    if now.get(CHAMPION) != version:
        tracking.client().set_model_version_tag(cfg.model_name, version, "released_at", _now().isoformat())
    return _move(transition, version, reason, changes, evidence, approved_by)


def _move(transition: str, version, reason: str, changes: dict, evidence, approved_by=None) -> dict:
    cfg = _settings.load()
    c = tracking.client()
    before, last = aliases(), latest()
    intent = _pending(transition, version, before)
    if intent is not None:  # an earlier attempt that died mid-move: finish its moves, record them as one
        changes, start = intent["changes"], intent["from"]
    else:
        if last is not None and last["to"] != before:
            _outside(last, before)
        start = before
        _write_pending(transition, version, {"changes": changes, "from": before})
    for alias, target in changes.items():
        if target is None and alias in before:
            c.delete_registered_model_alias(cfg.model_name, alias)
        elif target is not None and before.get(alias) != target:
            c.set_registered_model_alias(cfg.model_name, alias, target)
    after = aliases()
    entry = {
        "at": _now().isoformat(),
        "model": cfg.model_name,
        "transition": transition,
        "version": str(version),
        "from": start,
        "to": after,
        **actor(),
        "reason": reason,
        "approved_by": approved_by,
        "evidence": evidence,
    }
    if start == after:
        _pending_path(transition, version).unlink(missing_ok=True)
        if last is not None and (last["transition"], last["version"], last["to"]) == (transition, str(version), after):
            _finish(last)  # a retry of a recorded move: the tag and alert its attempt may not have made
        return {**entry, "recorded": False}
    _record(entry)
    _pending_path(transition, version).unlink(missing_ok=True)
    _finish(entry)
    return {**entry, "recorded": True}


def _pending_path(transition: str, version):
    return lake.zone("deployments") / "_pending" / _settings.load().model_name / f"{transition}-v{version}.json"


def _write_pending(transition: str, version, intent: dict) -> None:
    path = _pending_path(transition, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(intent, sort_keys=True))


def _pending(transition: str, version, now: dict) -> dict | None:
    """The intent an earlier attempt of this move wrote before moving, while the aliases are still
    part-way from its start to its targets (anything else moved since: stale, forgotten)."""
    path = _pending_path(transition, version)
    try:
        intent = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    start, changes = intent["from"], intent["changes"]
    if all(now.get(a) in (start.get(a), changes[a]) if a in changes else now.get(a) == start.get(a) for a in ALIASES):
        return intent
    path.unlink(missing_ok=True)
    return None


def _outside(last: dict, now: dict) -> None:
    """Record aliases moved since the last record by something other than this module (a hand in
    the MLflow UI or API), before the next move: the history never folds it into a transition."""
    moved = [a for a in ALIASES if last["to"].get(a) != now.get(a)]
    named = [now[a] for a in moved if now.get(a)] or [last["to"][a] for a in moved if last["to"].get(a)]
    entry = {
        "at": _now().isoformat(),
        "model": _settings.load().model_name,
        "transition": "outside_registry",
        "version": named[0],
        "from": last["to"],
        "to": now,
        "by": "unknown: not through lifecycle.registry (the MLflow UI or API)",
        "dag_run": None,
        "reason": "aliases moved outside the registry's transitions, found by the next transition",
        "approved_by": None,
        "evidence": None,
    }
    _record(entry)
    _finish(entry)


def _finish(entry: dict) -> None:
    """The record's tag on its version (MLflow), for an abort or a rollback its alert, and the model
    cards of the versions it moved: all idempotent, so a retry completes what a dead attempt left undone."""
    from mlflow.exceptions import MlflowException

    at = dt.datetime.fromisoformat(entry["at"]).strftime("%Y%m%dT%H%M%S%fZ")
    try:
        tracking.client().set_model_version_tag(
            entry["model"], entry["version"], f"{TAG_PREFIX}{at}", describe(entry)[:5000]
        )
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # a version deleted by hand keeps its record in the lake's history only
    if entry["transition"] in ("abort", "roll_back"):
        alerts.transition(entry)
    from lifecycle import model_card  # it reads this history

    model_card.refresh([entry["version"], *entry["from"].values(), *entry["to"].values()])


def actor() -> dict:
    """Who moves: the Airflow DAG run this runs in (with its UI link), else the command line's user."""
    if (run := ui.current_run()) is None:
        return {"by": f"{getpass.getuser()} (command line)", "dag_run": None}
    return {"by": f"DAG run {run['dag_id']} {run['run_id']}", "dag_run": run["url"]}


def describe(entry: dict) -> str:
    """One line for tags, run notes and alerts: the transition, what moved, who and why."""
    moved = [
        f"{alias} {entry['from'].get(alias, '-')}→{entry['to'].get(alias, '-')}"
        for alias in ALIASES
        if entry["from"].get(alias) != entry["to"].get(alias)
    ]
    approved = f", approved by {entry['approved_by']}" if entry.get("approved_by") else ""
    return (
        f"{entry['transition']} v{entry['version']} ({', '.join(moved) or 'no alias moved'}) "
        f"by {entry['by']}{approved}: {entry['reason']}"
    )


def _folder():
    return lake.zone("deployments") / _settings.load().model_name


def _record(entry: dict) -> None:
    at = dt.datetime.fromisoformat(entry["at"]).strftime("%Y%m%dT%H%M%S%fZ")
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{at}-{uuid.uuid4().hex[:8]}.json"
    staged = folder / f".{name}"  # written whole, then renamed: a reader never sees half a record
    staged.write_text(json.dumps(entry, sort_keys=True))
    staged.rename(folder / name)


def _names() -> list[str]:
    folder = _folder()
    return (
        sorted(p.name for p in folder.iterdir() if p.name.endswith(".json") and not p.name.startswith("."))
        if folder.exists()
        else []
    )


def history(version: str | None = None) -> list[dict]:
    """The model's deployment history, oldest first (only the moves of ``version`` when given)."""
    folder = _folder()
    entries = [json.loads((folder / name).read_text()) for name in _names()]
    return [e for e in entries if version is None or e["version"] == str(version)]


def latest() -> dict | None:
    names = _names()
    return json.loads((_folder() / names[-1]).read_text()) if names else None


def table(entries: list[dict]) -> str:
    """The history as a plain-text table (the CLI's and the closing notes' form)."""
    rows = [("when (UTC)", "transition", "version", "champion", "canary", "by", "why")]
    for e in entries:
        rows.append(
            (
                e["at"][:19].replace("T", " "),
                e["transition"],
                e["version"],
                f"{e['from'].get(CHAMPION, '-')}→{e['to'].get(CHAMPION, '-')}",
                f"{e['from'].get(CANARY, '-')}→{e['to'].get(CANARY, '-')}",
                e["by"] + (f", approved by {e['approved_by']}" if e.get("approved_by") else ""),
                e["reason"][:80],
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
