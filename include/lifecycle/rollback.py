"""Roll the model back in one command: ``python -m lifecycle.rollback``.

Moves alias ``champion`` to the ``previous_champion`` version and ``previous_champion`` to the
version that was champion, so running it twice rolls forward again. The ``rollback`` DAG runs the
same function from the Airflow UI.
"""
from __future__ import annotations

import json
import sys


def main() -> None:
    from lifecycle import env, promotion

    env.apply()
    try:
        print(json.dumps(promotion.rollback()))
    except LookupError as err:
        sys.exit(f"rollback failed: {err}")


if __name__ == "__main__":
    main()
