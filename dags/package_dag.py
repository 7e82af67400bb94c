"""
### package: approved version → bento → smoke test → release
Runs on **model_promoted**. Builds the bento (the service code and the locked environment),
serves it pinned to the approved version on a free local port, checks golden requests (scores,
model version, HTTP 400 on bad input, 401 without the API key) and stops it: emits
**service_bento**. Only then releases the version: alias `canary` while a champion serves (canary
mode), else `champion` (the old one keeps `previous_champion`); with `LIFECYCLE_REQUIRE_APPROVAL`
a release to champion first waits for a human under Browse → Required Actions (a rejection, or no
answer in time, moves nothing). The live service follows within seconds. Emits **model_released**.
"""

from airflow.sdk import Param, dag, task

from lifecycle import approval
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

    @task.branch
    def gate(version: str, *, ti=None) -> str:
        """Straight to release, or first to a human when the version would become champion with approvals on."""
        from lifecycle import promotion, registry, settings, tracking
        from lifecycle.aliases import CHAMPION

        cfg = settings.load()
        tags = tracking.client().get_model_version(cfg.model_name, version).tags
        ti.xcom_push("why", tags.get("promotion_decision", "no offline decision recorded"))
        needed = promotion.target(version) == CHAMPION and registry.needs_approval("to_champion", cfg)
        return "approval" if needed else "release"

    @task(multiple_outputs=False, outlets=[RELEASED], trigger_rule="none_failed_min_one_success")
    def release(version: str, *, ti=None, outlet_events=None) -> dict:
        """Move alias champion (or canary) to the version: the live service follows."""
        from lifecycle import notes, promotion, registry

        released = promotion.release(version, approved_by=approval.approver(ti))
        notes.write(registry.describe(released))
        outlet_events[RELEASED].extra = released
        return released

    @task
    def refused(version: str, *, ti=None) -> str:
        """The release was rejected, or not answered in time: no alias moves."""
        return approval.refused(ti, f"release of v{version} as champion")

    version = approved_version()
    branch = gate(version)
    asked = approval.Ask(
        task_id="approval",
        subject="Release v{{ ti.xcom_pull(task_ids='approved_version') }} as champion?",
        body="{{ ti.xcom_pull(task_ids='gate', key='why') }}",
        go="Release",
        go_to="release",
        reject_to="refused",
        doc_md="Asks a human under Browse → Required Actions whether the version becomes champion (default: Reject).",
    )
    done = release(version)
    smoke_test(build_bento(version), version) >> branch >> [asked, done]
    asked >> [done, refused(version)]


package()
