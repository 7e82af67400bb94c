"""Roll the model back in one command: ``python -m lifecycle.rollback [--canary]``.

Moves alias ``champion`` to the ``previous_champion`` version and ``previous_champion`` to the
version that was champion, so running it twice rolls forward again. With ``--canary`` the previous
champion serves as ``canary`` first and the canary DAG decides. The ``rollback`` DAG runs the same
function from the Airflow UI.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> None:
    import argparse

    from lifecycle import promotion
    from lifecycle.platform import env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canary", action="store_true", help="the previous champion serves as canary first")
    args = parser.parse_args(argv)
    env.apply()
    try:
        print(json.dumps(promotion.rollback(canary=args.canary)))
    except LookupError as err:
        sys.exit(f"rollback failed: {err}")


if __name__ == "__main__":
    main()
