"""The embedded profile's scheduler: ``python -m lifecycle.platform.scheduler [airflow scheduler options]``.

It imports the task libraries (``preload.PRELOAD``) before Airflow's CLI starts. The import needs no
metadata DB, so a scheduler started beside set-up's migration (the demo starts it so) imports while
set-up migrates; it then waits for the migration, which Airflow's CLI refuses to start without, and
runs ``airflow scheduler``, whose executor (``preload.PreloadingLocalExecutor``) forks its workers
with the libraries imported. The scheduler reports healthy once tasks can start.
"""

from __future__ import annotations

import logging
import sys

MIGRATION_WAIT_SECONDS = 120  # Airflow's check_migrations looks once a second

log = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    from airflow.__main__ import main as airflow
    from airflow.utils import db

    from lifecycle.platform import preload

    seconds = preload.preload()
    db.check_migrations(MIGRATION_WAIT_SECONDS)
    log.info("imported the task libraries in %.1f s before starting the scheduler", seconds)
    sys.argv = ["airflow", "scheduler", *argv]
    airflow()


if __name__ == "__main__":
    main(sys.argv[1:])
