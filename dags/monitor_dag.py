"""
### monitor: drift report → feature_drift
Daily (02:00 UTC) or manual. Evidently's data-drift report between the champion's training
snapshot and the latest curated days, each column's threshold calibrated on the training period's
own window-to-window variation, saved as HTML and JSON under `reports/drift/<date>/<run>/` and
linked from `reports/index.html`. Emits **feature_drift** (extra: drift_share, drifted_columns,
report_uri and its `/reports/` report_url, as_of, the judged days' window and the judged champion's
model_version) and an alert only when the drifted-column share reaches the configured threshold.
"""

from airflow.sdk import CronTriggerTimetable, dag, task

from lifecycle.assets import DRIFT
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "evidently"],
    doc_md=__doc__,
)
def monitor():
    @task(multiple_outputs=False)
    def drift_report(*, dag_run=None) -> dict:
        """Evidently's data drift between the champion's training data and the latest curated days."""
        from lifecycle import monitoring, notes, thresholds

        try:
            summary = monitoring.drift_report(
                (dag_run.logical_date or dag_run.run_after).date(), thresholds.from_airflow()
            )
        except monitoring.NothingToMonitor as reason:
            raise notes.skipped(str(reason)) from reason
        notes.write(monitoring.describe(summary))
        return summary

    @task(outlets=[DRIFT])
    def emit_drift(summary: dict, *, outlet_events=None) -> None:
        """Emits feature_drift with the evidence; skipped (no event) below the drift-share threshold."""
        from airflow.sdk.exceptions import AirflowSkipException

        from lifecycle import alerts

        if not summary["drift"]:
            raise AirflowSkipException(f"drift share {summary['drift_share']} is below the threshold")
        outlet_events[DRIFT].extra = {
            k: summary[k]
            for k in ("drift_share", "drifted_columns", "report_uri", "report_url", "as_of", "window", "model_version")
        }
        alerts.feature_drift(summary)

    summary = drift_report()
    emit_drift(summary)


monitor()
