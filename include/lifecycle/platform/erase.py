"""``python -m lifecycle.platform.erase --ids-file F --reason R [--entity E]`` (``make erase``): the
erase DAG run in this process (``dag.test``) on the deployment's state, as a trigger from the
Airflow UI would run it, without a scheduler; prints the erasure's ledger record."""

import argparse
import json
import sys

from lifecycle.platform import env

# Airflow, which the DAG imports, reads AIRFLOW_HOME and its database once at its import
env.apply()

from lifecycle import erasure  # noqa: E402
from lifecycle import settings as _settings  # noqa: E402
from lifecycle.platform import setup  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lifecycle.platform.erase", description=__doc__)
    parser.add_argument("--ids-file", required=True, help="one id per line; deleted once the erasure is recorded")
    parser.add_argument("--reason", required=True, help="why, for the ledger (e.g. the request's reference)")
    parser.add_argument("--entity", default=None, help="the entity the ids are of (default: the routed entity)")
    args = parser.parse_args(argv)
    setup.main()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(_settings.PROJECT_ROOT / "dags"), include_examples=False)
    conf = {
        "ids_file": args.ids_file,
        "ids": "",
        "reason": args.reason,
        **({"entity": args.entity} if args.entity else {}),
    }
    run = bag.dags["erase"].test(run_conf=conf)
    done = [r for r in erasure.ledger() if r["erasure"].endswith(erasure.record_name(run.run_id))]
    print(json.dumps(done[-1] if done else {"run": run.run_id, "state": str(run.state)}, indent=2))
    return 0 if str(run.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
