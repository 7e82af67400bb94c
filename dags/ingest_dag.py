"""
### ingest: landing zone → raw
Daily, for the day that just ended (the run's data interval), and backfillable. A day lands two
feeds: its transactions, and the labels that became known that day (for that day's or earlier
transactions). `wait_for_files` defers to the triggerer until both files are there (no worker
slot held), failing with the missing paths after `LIFECYCLE_LANDING_TIMEOUT_MINUTES`; a scheduled
run skips, saying why, when nothing has landed yet or nothing in the
`LIFECYCLE_LANDING_SILENCE_DAYS` before its day (a finished history). `land`
copies them into `raw/<dataset>/date=YYYY-MM-DD/` with a manifest (rows, schema, sha256, source);
a rerun rewrites an identical partition. Emits **raw_events**.
"""

from airflow.sdk import CronDataIntervalTimetable, dag, task

from lifecycle import landing
from lifecycle.assets import RAW
from lifecycle.dag_defaults import CFG, DEFAULT_ARGS, START, TAGS


@dag(
    schedule=CronDataIntervalTimetable("0 1 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "lake"],
    doc_md=__doc__,
)
def ingest():
    wait_for_files = landing.LandingSensor(
        task_id="wait_for_files",
        timeout_minutes=CFG.landing_timeout_minutes,
        poke_seconds=CFG.landing_poke_seconds,
        doc_md="Waits (deferred) until the day's transactions and labels files have landed.",
    )

    @task(multiple_outputs=False, outlets=[RAW])
    def land(*, data_interval_start=None, outlet_events=None) -> dict:
        """Copies the day's landing files into raw partitions with manifests."""
        from lifecycle import ingest

        day = data_interval_start.date()
        manifests = ingest.ingest_day(day)
        events, labels = manifests.values()  # the use case's two feeds, events first
        outlet_events[RAW].extra = {
            "dates": [day.isoformat()],
            "rows": events["rows"],
            "labels": labels["rows"],
            "sha256": events["source_sha256"],
        }
        return manifests

    wait_for_files >> land()


ingest()
