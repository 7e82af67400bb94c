"""
### performance: predictions ⋈ labels → model_degraded
Daily (05:00 UTC), when labels land (**curated_events**: a curated day brings the labels
known that day), and manually (`as_of`). Batch scores of a day are joined by the next run. First
merges each day's small prediction-log files (one per flush of each serving process) into one. Joins
the prediction log (live and batch) of the last `LIFECYCLE_PERFORMANCE_WINDOW_DAYS` event days
with the labels that have arrived, per model version and arm; publishes an Evidently
classification report with prediction drift under `reports/performance/<as_of>/<run>/`, and logs the
live metrics to MLflow against each version. Emits **model_degraded** (extra: metric, value,
baseline, labels, window, report_uri and its `/reports/` report_url) and an alert when the
champion's live metric, over at least `LIFECYCLE_MIN_LABELS` labels, is below
`degraded_min_lift` times chance on those labels (their positive rate for PR-AUC) or more than
`degraded_drop` below its holdout value (thresholds read when the task runs: Admin → Variables,
`lifecycle_*`).
"""

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from lifecycle.assets import CURATED, DEGRADED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 5 * * *", timezone="UTC"), assets=CURATED),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "evidently", "mlflow"],
    doc_md=__doc__,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last event day of the window (default: the newest curated day)",
        )
    },
)
def performance():
    @task(multiple_outputs=False)
    def compact_log() -> dict:
        """Merges each day's many small prediction-log files (one per flush) into one."""
        from lifecycle import notes, prediction_maintenance

        merged = prediction_maintenance.compact()
        notes.write(f"{sum(merged.values())} files of {len(merged)} days merged" if merged else "nothing to merge")
        return merged

    @task(multiple_outputs=False)
    def evaluate(*, params=None) -> dict:
        """Joins predictions with labels, reports, logs to MLflow and decides."""
        from datetime import date

        from lifecycle import contract, lake, notes, performance, thresholds

        days = lake.dates("curated", contract.current().events)
        as_of = date.fromisoformat(params["as_of"]) if params["as_of"] else (days[-1] if days else None)
        if as_of is None:
            raise notes.skipped("no curated day yet: nothing to evaluate")
        try:
            summary = performance.evaluate(as_of, limits=thresholds.from_airflow())
        except performance.NothingToEvaluate as reason:
            raise notes.skipped(str(reason)) from reason
        verdict = "model_degraded emitted" if summary["degraded"] else "within bounds"
        notes.write(f"v{summary['model_version']} {verdict}: {summary['reason']}; report {summary['report_url']}")
        return summary

    @task(outlets=[DEGRADED])
    def emit_degraded(summary: dict, *, outlet_events=None) -> None:
        """Emits model_degraded with the evidence; skipped (no event) when the champion is within bounds."""
        from airflow.sdk.exceptions import AirflowSkipException

        from lifecycle import alerts

        if not summary["degraded"]:
            raise AirflowSkipException("not degraded: " + summary["reason"])
        outlet_events[DEGRADED].extra = {
            k: summary[k]
            for k in (
                "metric",
                "value",
                "baseline",
                "labels",
                "window",
                "report_uri",
                "report_url",
                "model_version",
                "reason",
            )
        }
        alerts.model_degraded(summary)

    summary = evaluate()
    compact_log() >> summary
    emit_degraded(summary)


performance()
