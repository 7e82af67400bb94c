"""
### validate: raw → curated (or quarantine)
Runs on **raw_events**. Every raw partition not yet gated (whatever events woke the run, and
those landed while it gates; a day an earlier run gated is not gated again) gets Great
Expectations suites, oldest day first: transactions (schema, types, nulls, ranges, allowed sets,
unique ids, no future timestamps, row count) and labels (each names a curated transaction, is
known after it and on the file's day). Pass: curated partitions and a
**curated_events** event naming the days. Fail: the day moves to `quarantine/`, Data Docs
are written under `reports/data_quality/`, and `failed_days` fails naming each failed
expectation; the other days go on. Manual runs take `dates` to re-check.
"""

from airflow.sdk import dag, task

from lifecycle.assets import CURATED, RAW
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, dates_param, days_to_process


@dag(
    schedule=[RAW],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "data-quality"],
    doc_md=__doc__,
    params=dates_param("validate"),
)
def validate():
    @task
    def quality_gate(*, triggering_asset_events=None, params=None) -> list[dict]:
        """Gates the raw days not yet gated (those landed meanwhile too) and those asked for, oldest first."""
        from datetime import date

        from lifecycle import notes, validation

        days = days_to_process(validation.pending_days(), params, triggering_asset_events, RAW, validation.not_regated)
        results = validation.gate_until_drained([date.fromisoformat(d) for d in days])
        for r in results:
            print(f"{r['date']}: {r['status']}", r.get("detail", ""))
        notes.write(validation.describe_results(results))
        return results

    @task(outlets=[CURATED])
    def curated_days(results: list[dict], *, outlet_events=None) -> list[str]:
        """Emits curated_events naming the days that passed (skipped when none did)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not (days := [r["date"] for r in results if r["status"] == "curated"]):
            raise AirflowSkipException("no day passed the gate in this run: nothing new downstream")
        outlet_events[CURATED].extra = {"dates": days}
        return days

    @task(on_failure_callback=[])  # the quarantine itself was alerted, with its Data Docs
    def failed_days(results: list[dict]) -> None:
        """Fails naming every quarantined day and the expectations it broke."""
        from airflow.sdk.exceptions import AirflowFailException

        if failed := [r["detail"] for r in results if r["status"] == "quarantined"]:
            raise AirflowFailException(" || ".join(failed))  # bad data: retrying cannot help

    results = quality_gate()
    curated_days(results)
    failed_days(results)


validate()
