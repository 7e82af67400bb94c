"""
### score: curated day → prediction log (source=batch)
Runs when **online_features** is emitted (the days it loaded: their point-in-time features exist),
daily at 04:00 UTC for the day that ended, on backfills for their days, and manually for the
`dates` given. Each day's curated transactions are scored by the `champion` (and the `challenger`
with arm `shadow` when `LIFECYCLE_SHADOW` is on), one model call per arm, in one task for all
the run's days (each version loaded once), into
`predictions/<model>/date=<day>/batch-v<version>-<arm>.parquet`: a rerun for the same day and
version replaces the file. A day that is not curated, or a run before any champion exists, is
skipped, saying why.
Emits **batch_predictions**.
"""

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, dag, task

from lifecycle.assets import FEATURES, PREDICTIONS
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, dates_param, events_extra


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("0 4 * * *", timezone="UTC"), assets=FEATURES),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "scoring"],
    doc_md=__doc__,
    params=dates_param("score"),
)
def score():
    @task(multiple_outputs=False, outlets=[PREDICTIONS])
    def score_days(
        *, dag_run=None, data_interval_start=None, triggering_asset_events=None, params=None, outlet_events=None
    ):
        """Scores the run's days (features loaded, the interval's day, or asked for) into the prediction log."""
        from datetime import date

        from airflow.sdk.exceptions import AirflowSkipException

        from lifecycle import scoring

        days = [d for loaded in events_extra(triggering_asset_events, FEATURES, "days") for d in loaded]
        if dag_run.run_type in ("scheduled", "backfill"):
            days.append(data_interval_start.date().isoformat())
        days += params["dates"]
        try:
            result = scoring.score_days([date.fromisoformat(d) for d in days])
        except scoring.ScoringError as reason:  # no champion yet, or no day is curated
            raise AirflowSkipException(str(reason)) from reason
        for day, reason in result["skipped"].items():
            print(f"{day}: skipped: {reason}")
        outlet_events[PREDICTIONS].extra = {
            "dates": [d["date"] for d in result["days"]],
            "scored": sorted({f"v{s['version']} {s['arm']}" for d in result["days"] for s in d["scored"]}),
        }
        return result

    score_days()


score()
