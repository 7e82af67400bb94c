"""
### ingest: landing zone → raw
Daily, for the day that just ended (the run's data interval), and backfillable: lands the day's
transactions and labels into `raw/<dataset>/date=YYYY-MM-DD/` with a manifest (rows, schema,
sha256, source). A rerun rewrites an identical partition. Emits **raw_transactions**.
"""
from airflow.sdk import CronDataIntervalTimetable, dag, task

from lifecycle.assets import RAW
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(schedule=CronDataIntervalTimetable("0 1 * * *", timezone="UTC"), start_date=START, catchup=False,
     max_active_runs=4, default_args=DEFAULT_ARGS, tags=[*TAGS, "lake"], doc_md=__doc__)
def ingest():
    @task(outlets=[RAW])
    def land(*, data_interval_start=None, outlet_events=None) -> dict:
        from lifecycle.ingest import ingest_day

        day = data_interval_start.date()
        manifests = ingest_day(day)
        outlet_events[RAW].extra = {"date": day.isoformat(), "rows": manifests["transactions"]["rows"],
                                    "sha256": manifests["transactions"]["source_sha256"]}
        return manifests

    land()


ingest()
