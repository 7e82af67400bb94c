"""
### erase: a data subject's rows out of every zone, store and log → data_erased
Manual only. Give the entity ids (`ids`, one per line or comma) or `ids_file`, a file of them (a
path on the workers or a lake URL, one id per line), and a `reason`. Removes every row of those
entities (`entity`, by default the use case's routed entity: the card holder's card) and of their
events' labels from the landing, raw, curated, quarantine, features and training zones and the
prediction log (found by the ids' pseudonyms), rewriting each touched partition atomically with a
new manifest; deletes their online-store keys; redacts the ids from reports and alerts that show
sample values. The erasure ledger (`lake/erasures/`) records what went, per zone and partition,
with the ids only as pseudonyms; registered versions whose training set lost rows get the tag
`erased`. Emits **data_erased**, which starts a retraining without them. A second run for the same
ids changes nothing and says so. `ids_file` is deleted once the erasure is recorded; ids typed into
`ids` stay with this run in Airflow's metadata database: give a file for ids that must leave no trace.
"""

from airflow.sdk import Param, dag, task

from lifecycle import contract
from lifecycle.assets import ERASED
from lifecycle.dag_defaults import CFG, DEFAULT_ARGS, START, TAGS

UC = contract.current(CFG)


@dag(
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "privacy"],
    doc_md=__doc__,
    params={
        "entity": Param(UC.route_by, enum=list(UC.entities), description="The entity whose ids are given"),
        "ids": Param("", type="string", description="Ids, one per line or comma (kept with this run: prefer ids_file)"),
        "ids_file": Param("", type="string", description="A file of ids, one per line: deleted once they are erased"),
        "reason": Param(
            type="string", minLength=1, description="Why, for the erasure ledger (e.g. the request's reference)"
        ),
    },
)
def erase():
    @task(multiple_outputs=False)
    def erase_rows(*, run_id=None, params=None) -> dict:
        """Removes the entities' rows from every zone, the prediction log and the online store; records the erasure."""
        from lifecycle import erasure, notes

        ids = erasure.request_ids(params["ids"], params["ids_file"] or None)
        summary = erasure.erase(params["entity"], ids, params["reason"], erasure_id=f"erasure-{run_id}")
        erasure.forget_request(params["ids_file"] or None)
        notes.write(erasure.describe(summary))
        return summary

    @task(outlets=[ERASED])
    def record(summary: dict, *, outlet_events=None) -> list[str]:
        """Tags the versions trained on the erased rows and emits data_erased; skipped when nothing was removed."""
        from airflow.sdk.exceptions import AirflowSkipException

        from lifecycle import erasure

        if not summary["changed"]:
            raise AirflowSkipException("nothing was removed: no retraining")
        tagged = erasure.tag_versions(summary)
        outlet_events[ERASED].extra = {
            "erasure": summary["erasure"],
            "entity": summary["entity"],
            "ids": len(summary["ids"]),
            "rows": sum(summary["rows"].values()),
            "versions_tagged": tagged,
        }
        return tagged

    record(erase_rows())


erase()
