"""
### validate: raw → curated (or quarantine)
Runs on **raw_transactions**. Every raw partition not yet gated (whatever events woke the run)
gets a Great Expectations suite (schema, types, nulls, ranges, allowed sets, unique ids, no
future timestamps, row count), one mapped task per day. Pass: curated partition and a
**curated_transactions** event. Fail: the batch moves to `quarantine/`, Data Docs are written
under `reports/data_quality/`, and the task fails naming each failed expectation; nothing
downstream runs for that day. Manual runs take `dates` to re-check.
"""
from airflow.sdk import dag, task

from lifecycle.assets import CURATED, RAW
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, dates_param, days_to_process


@dag(schedule=[RAW], start_date=START, catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=[*TAGS, "data-quality"], doc_md=__doc__,
     params=dates_param("validate"))
def validate():
    @task
    def landed_days(*, triggering_asset_events=None, params=None) -> list[str]:
        from lifecycle.validation import pending_days

        return days_to_process(pending_days(), params, triggering_asset_events, RAW)

    @task(outlets=[CURATED], map_index_template="{{ task.op_kwargs['day'] }}")
    def quality_gate(day: str, *, outlet_events=None) -> list[dict]:
        from datetime import date

        from airflow.sdk.exceptions import AirflowFailException

        from lifecycle.validation import QualityGateError, validate_day

        try:
            outcomes = validate_day(date.fromisoformat(day))
        except QualityGateError as err:
            raise AirflowFailException(str(err)) from err  # bad data: retrying cannot help
        outlet_events[CURATED].extra = {"date": day}
        return [{"dataset": o.dataset, "docs": o.docs_uri} for o in outcomes]

    quality_gate.expand(day=landed_days())


validate()
