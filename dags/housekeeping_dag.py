"""
### housekeeping: retention
Daily (06:00 UTC) once unpaused (it is created paused: deleting data is opted into; a
`dry_run` shows what it would delete), and manually (`as_of`, `dry_run`). Deletes what is older
than its zone's `LIFECYCLE_RETENTION_DAYS` (landing days; raw, curated, quarantine and features
partitions; training sets by their last day; reports by the day they are about, model cards with
their version; prediction-log days; MLflow runs by their start), never what the lifecycle points
to: for every version holding an alias (a live version or an open decision), with a move in
flight, or that served as champion, canary or previous champion in the deployment history: its
training set, the curated partitions it was made from, its model card, its runs and the reports
they or the history name. Records each sweep in `lake/housekeeping/` (what went, what old items
were kept and why).
"""

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(
    schedule=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    is_paused_upon_creation=True,  # deleting data is opted into: a deployment unpauses it
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "privacy"],
    doc_md=__doc__,
    params={
        "as_of": Param(
            None, type=["null", "string"], format="date", description="The day ages count to (default: today)"
        ),
        "dry_run": Param(False, type="boolean", description="Only say what would be deleted"),
    },
)
def housekeeping():
    @task(multiple_outputs=False)
    def sweep(*, params=None) -> dict:
        """Deletes what is past its zone's retention and nothing the lifecycle points to; records it."""
        import datetime as dt

        from lifecycle import housekeeping, notes

        as_of = dt.date.fromisoformat(params["as_of"]) if params["as_of"] else dt.datetime.now(dt.UTC).date()
        record = housekeeping.sweep(as_of, dry_run=params["dry_run"])
        notes.write(housekeeping.describe(record))
        return record

    sweep()


housekeeping()
