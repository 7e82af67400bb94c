"""
### features: curated → Feast
Runs on **curated_events**. For every curated day without an up-to-date snapshot, rewrites
the daily card/merchant snapshot tables whose 7-day window contains it (late and backfilled days
included), applies the
definitions in `feature_repo/` (as `feast apply` does), and materializes those days into the online store.
Emits **online_features**.
"""

from airflow.sdk import dag, task

from lifecycle.assets import CURATED, FEATURES
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, dates_param, days_to_process


@dag(
    schedule=[CURATED],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "feast"],
    doc_md=__doc__,
    params=dates_param("rebuild"),
)
def features():
    @task
    def build_tables(*, triggering_asset_events=None, params=None) -> list[str]:
        """Rewrites the snapshot tables whose 7-day window holds a day to (re)build: stale or asked for."""
        from datetime import date

        from lifecycle import features

        days = days_to_process(features.pending_days(), params, triggering_asset_events, CURATED)
        return [d.isoformat() for d in features.build_tables([date.fromisoformat(d) for d in days])]

    @task(outlets=[FEATURES])
    def materialize(days: list[str], *, outlet_events=None) -> list[str]:
        """Registers the Feast definitions and loads those days into the online store."""
        from datetime import date

        from lifecycle import features

        loaded = [d.isoformat() for d in features.materialize([date.fromisoformat(d) for d in days])]
        outlet_events[FEATURES].extra = {"days": loaded}
        return loaded

    materialize(build_tables())


features()
