"""
### package: approved version → bento → smoke test → release
Runs on **model_promoted**. Builds the bento (the service code and the locked environment),
serves it pinned to the approved version on a free local port, checks golden requests (scores,
model version, HTTP 400 on bad input, 401 without the API key) and stops it: emits
**service_bento**. Only then moves alias `champion` to the version (the old one keeps
`previous_champion`): the live service follows within seconds. Emits **model_released**.
"""

from airflow.sdk import Param, dag, task

from lifecycle.assets import PACKAGED, PROMOTED, RELEASED
from lifecycle.dag_defaults import DEFAULT_ARGS, START, TAGS, events_extra


@dag(
    schedule=[PROMOTED],
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "bentoml"],
    doc_md=__doc__,
    params={"version": Param(None, type=["null", "string"], description="Version to package on a manual run")},
)
def package():
    @task
    def approved_version(params=None, *, triggering_asset_events=None) -> str:
        """The version promote approved (the newest event's), or the one a manual run names."""
        versions = events_extra(triggering_asset_events, PROMOTED, "version")
        if not versions and not params["version"]:
            raise ValueError("package needs a model_promoted event or the param 'version'")
        return str(versions[-1] if versions else params["version"])

    @task
    def build_bento(version: str) -> str:
        """Build the bento from the library and the committed lock."""
        from lifecycle import packaging

        return packaging.build(version)

    @task(multiple_outputs=False, outlets=[PACKAGED])
    def smoke_test(bento: str, version: str, *, outlet_events=None) -> dict:
        """Serve the bento pinned to the version; golden requests must answer as expected."""
        from airflow.sdk.exceptions import AirflowFailException

        from lifecycle import packaging

        try:
            result = packaging.smoke_test(bento, version)
        except packaging.GoldenRequestsFailed as wrong:
            raise AirflowFailException(str(wrong)) from wrong  # wrong answers: retrying cannot help
        outlet_events[PACKAGED].extra = {"bento": bento, "mlflow_version": version}
        return result

    @task(multiple_outputs=False, outlets=[RELEASED])
    def release(version: str, *, outlet_events=None) -> dict:
        """Move alias champion to the version: the live service follows."""
        from lifecycle import promotion

        released = promotion.release(version)
        outlet_events[RELEASED].extra = released
        return released

    version = approved_version()
    smoke_test(build_bento(version), version) >> release(version)


package()
