"""
### score: curated day → prediction log (source=batch)
Runs when **online_features** is emitted (the days it loaded: their point-in-time features exist),
daily at 04:00 UTC for the day that ended, on backfills for their days, and manually for the
`dates` given. Each day's curated transactions are scored by the `champion` (and the `challenger`
with arm `shadow` when `LIFECYCLE_SHADOW` is on), one model call per arm, into
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
    @task
    def days_to_score(*, dag_run=None, data_interval_start=None, triggering_asset_events=None, params=None) -> list:
        """The days this run scores: loaded features, the data interval's day, or the days asked for."""
        loaded = [d for days in events_extra(triggering_asset_events, FEATURES, "days") for d in days]
        if dag_run.run_type in ("scheduled", "backfill"):
            loaded.append(data_interval_start.date().isoformat())
        return sorted(set(loaded) | set(params["dates"]))

    @task(multiple_outputs=False, outlets=[PREDICTIONS], map_index_template="{{ task.op_kwargs['day'] }}")
    def score_day(day: str, *, outlet_events=None) -> dict:
        """Scores one day with every configured arm into the prediction log."""
        from datetime import date

        from airflow.sdk.exceptions import AirflowSkipException

        from lifecycle import scoring

        try:
            result = scoring.score_day(date.fromisoformat(day))
        except scoring.ScoringError as reason:  # no champion yet, or the day is not curated
            raise AirflowSkipException(str(reason)) from reason
        outlet_events[PREDICTIONS].extra = {
            "dates": [day],
            "scored": [f"v{s['version']} {s['arm']}" for s in result["scored"]],
        }
        return result

    # a mapped task does not take its doc from the docstring: hand it over
    score_day.override(doc_md=score_day.__doc__).expand(day=days_to_score())


score()
