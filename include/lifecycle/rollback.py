"""Roll the model back in one command: ``python -m lifecycle.rollback [--canary] [--reason TEXT]``.

``registry.roll_back``: alias ``champion`` moves to the ``previous_champion`` version and
``previous_champion`` to the version that was champion, so running it twice rolls forward again.
With ``--canary`` the previous champion serves as ``canary`` first and the canary DAG decides. The
move is recorded in the deployment history under this user's name (``--history`` prints it). The
``rollback`` DAG runs the same transitions from the Airflow UI.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> None:
    import argparse

    from lifecycle import registry
    from lifecycle.platform import env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canary", action="store_true", help="the previous champion serves as canary first")
    parser.add_argument("--reason", default="rolled back by hand", help="why, for the deployment history")
    parser.add_argument("--history", action="store_true", help="print the deployment history and move nothing")
    args = parser.parse_args(argv)
    env.apply()
    if args.history:
        print(registry.table(registry.history()))
        return
    try:
        print(json.dumps(run(args.canary, args.reason)))
    except (LookupError, ValueError, PermissionError) as err:  # nothing to roll back to; rejected; not approved
        sys.exit(f"rollback failed: {err}")


def run(canary: bool, reason: str, approved_by: str | None = None) -> dict:
    """The previous champion back as champion (with ``LIFECYCLE_REQUIRE_APPROVAL``, only with
    ``approved_by``, the rollback DAG's approver), or as canary first (a release: the version must
    have passed the offline gate); returns the history record."""
    from lifecycle import promotion, registry, settings
    from lifecycle.aliases import PREVIOUS

    if not canary:
        return registry.roll_back(reason, approved_by=approved_by)
    previous = registry.aliases().get(PREVIOUS)
    if previous is None:
        raise LookupError(f"model {settings.load().model_name!r} has no {PREVIOUS!r} version to roll back to")
    return promotion.release(previous, canary=True, reason=reason)


if __name__ == "__main__":
    main()
