"""The main job (``make demo``): the whole loop through a real Airflow scheduler.

Normal days land and are backfilled (ingest → validate → features); a manual train run makes
the first champion (→ promote → package); drifted days land, monitor sees drift, and the drift
asset starts an asset-triggered train run; a corrupt day lands and is quarantined. Ends with a
summary of runs, model versions and aliases, and report paths. State is reset first.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import time
from collections import Counter

from lifecycle import datagen, features, lake, services, setup, tracking
from lifecycle import settings as _settings
from lifecycle.airflow_client import AirflowServer

DAG_IDS = {"ingest", "validate", "features", "train", "promote", "package", "monitor"}
FIRST_DAY = dt.date(2026, 10, 1)


def _days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


def reset_state() -> None:
    """Local state, and for the scale-out profile what it keeps in its services."""
    services.reset()
    state = _settings.load().state_dir
    if state.exists():
        shutil.rmtree(state)


def land_and_backfill(server: AirflowServer, days: list[dt.date], scenario: str) -> None:
    for day in days:
        datagen.land(day, scenario)
    server.backfill("ingest", days[0].isoformat(), days[-1].isoformat())
    server.wait_idle()
    gated = set(lake.dates("curated", "transactions")) | set(lake.dates("quarantine", "transactions"))
    if missing := [d.isoformat() for d in days if d not in gated] + [d.isoformat() for d in features.pending_days()]:
        raise RuntimeError(f"days still pending after the asset chain went idle: {missing}")


def run(normal_days: int = 14, drifted_days: int = 4, log=functools.partial(print, flush=True),
        observe=None) -> dict:
    """The loop; ``observe(server)``, if given, runs while the deployment is still up (tests)."""
    t0 = time.monotonic()
    # The demo drives time itself (backfills, manual triggers): schedules start tomorrow.
    os.environ["LIFECYCLE_SCHEDULE_START"] = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    reset_state()
    setup.main()
    normal = _days(FIRST_DAY, normal_days)
    drifted = _days(normal[-1] + dt.timedelta(days=1), drifted_days)
    corrupt = drifted[-1] + dt.timedelta(days=1)
    server = AirflowServer()
    try:
        server.start()
        server.wait_for_dags(DAG_IDS)
        log(f"[{time.monotonic() - t0:5.0f}s] Airflow up at {server.base}; landing {len(normal)} normal days")
        land_and_backfill(server, normal, "normal")
        log(f"[{time.monotonic() - t0:5.0f}s] first training run (manual)")
        server.trigger("train", {"reason": "bootstrap: first model"})
        server.wait_idle()
        log(f"[{time.monotonic() - t0:5.0f}s] landing {len(drifted)} drifted days")
        land_and_backfill(server, drifted, "drifted")
        log(f"[{time.monotonic() - t0:5.0f}s] monitoring (drift → asset-triggered training)")
        server.trigger("monitor")
        server.wait_idle()
        log(f"[{time.monotonic() - t0:5.0f}s] landing a corrupt day ({corrupt})")
        land_and_backfill(server, [corrupt], "corrupt")
        summary = summarize(server.runs(), corrupt)  # while the tracking server is up
        summary["wall_seconds"] = round(time.monotonic() - t0, 1)
        if observe:
            summary["observed"] = observe(server)
    finally:
        server.stop()
    summary["airflow_peak_memory_mb"] = {"rss_sum": server.peak_rss // 2**20, "pss": server.peak_pss // 2**20}
    return summary


def _seconds(run: dict) -> float | None:
    if not (run.get("start_date") and run.get("end_date")):
        return None
    start, end = (dt.datetime.fromisoformat(run[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
    return (end - start).total_seconds()


def summarize(runs: list[dict], corrupt: dt.date) -> dict:
    cfg = _settings.load()
    client = tracking.client()
    by_dag: dict[str, dict] = {}
    for r in runs:
        entry = by_dag.setdefault(r["dag_id"], {"runs": Counter(), "seconds": []})
        entry["runs"][f"{r['run_type']}:{r['state']}"] += 1
        if (s := _seconds(r)) is not None:
            entry["seconds"].append(s)
    dags = {d: {"runs": dict(e["runs"]), "max_seconds": round(max(e["seconds"], default=0), 1),
                "total_seconds": round(sum(e["seconds"]), 1)} for d, e in sorted(by_dag.items())}
    versions = client.search_model_versions(f"name='{cfg.model_name}'")
    model = client.get_registered_model(cfg.model_name) if versions else None
    reports_zone = lake.zone("reports")
    return {
        "dags": dags,
        "model_versions": sorted((int(v.version), v.tags.get("flavour"), v.tags.get("trigger", "")[:60],
                                  v.tags.get("promotion_decision", "")[:90]) for v in versions),
        "aliases": dict(model.aliases) if model else {},
        "drift_reports": sorted(str(p) for p in (reports_zone / "drift").rglob("report.html")),
        "reports_index": str(reports_zone / "index.html"),
        "quarantined_days": [d.isoformat() for d in lake.dates("quarantine", "transactions")],
        "corrupt_day_curated": corrupt in lake.dates("curated", "transactions"),
        "feature_days": [d.isoformat() for d in lake.dates("features", "card_stats")][-1:],
    }


def check(summary: dict) -> list[str]:
    """What the demo promises; an empty list means it kept every promise."""
    problems = []
    if not summary["dags"].get("train", {}).get("runs", {}).get("asset_triggered:success"):
        problems.append("no successful asset-triggered train run")
    if len(summary["model_versions"]) < 2:
        problems.append(f"{len(summary['model_versions'])} model versions, expected at least 2")
    if "champion" not in summary["aliases"]:
        problems.append("no champion alias")
    if not summary["drift_reports"]:
        problems.append("no Evidently HTML report")
    if not summary["quarantined_days"] or summary["corrupt_day_curated"]:
        problems.append("the corrupt day was not quarantined, or reached curated data")
    return problems


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal-days", type=int, default=14)
    parser.add_argument("--drifted-days", type=int, default=4)
    parser.add_argument("--summary-file", help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    summary = run(args.normal_days, args.drifted_days)
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.summary_file:
        with open(args.summary_file, "w") as f:
            f.write(text)
    state = _settings.load().state_dir
    print(f"\nDemo finished in {summary['wall_seconds']} s. Reports: {summary['reports_index']}")
    print(f"Open the Airflow UI with `make airflow` (same state: {state}); log in as admin "
          f"with the password in {state}/airflow/simple_auth_manager_passwords.json.generated")
    if problems := check(summary):
        raise SystemExit("demo did not keep its promises: " + "; ".join(problems))


if __name__ == "__main__":
    main()
