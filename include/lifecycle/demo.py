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

from lifecycle import datagen, features, lake, loadgen, packaging, prediction_log, promotion, services, setup, tracking
from lifecycle import settings as _settings
from lifecycle.airflow_client import AirflowServer
from lifecycle.schema import CHAMPION

DAG_IDS = {"ingest", "validate", "features", "train", "promote", "package", "monitor", "score", "performance"}
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
    traffic = serving = None
    try:
        server.start()
        server.wait_for_dags(DAG_IDS)
        log(f"[{time.monotonic() - t0:5.0f}s] Airflow up at {server.base}; landing {len(normal)} normal days")
        land_and_backfill(server, normal, "normal")
        log(f"[{time.monotonic() - t0:5.0f}s] first training run (manual)")
        server.trigger("train", {"reason": "bootstrap: first model"})
        server.wait_idle()
        first = tracking.version_by_alias(CHAMPION)
        log(f"[{time.monotonic() - t0:5.0f}s] version {first and first.version} released; replaying landed "
            "transactions through the live service")
        traffic = start_traffic(normal)
        log(f"[{time.monotonic() - t0:5.0f}s] landing {len(drifted)} drifted days")
        land_and_backfill(server, drifted, "drifted")
        log(f"[{time.monotonic() - t0:5.0f}s] monitoring (drift → asset-triggered training → release)")
        server.trigger("monitor")
        server.wait_idle()
        log(f"[{time.monotonic() - t0:5.0f}s] rollback and roll-forward under load")
        serving = exercise_aliases(traffic, first.version if first else None)
        log(f"[{time.monotonic() - t0:5.0f}s] landing a corrupt day ({corrupt})")
        land_and_backfill(server, [corrupt], "corrupt")
        summary = summarize(server.runs(), corrupt)  # while the tracking server is up
        summary["wall_seconds"] = round(time.monotonic() - t0, 1)
        if observe:
            summary["observed"] = observe(server)
    finally:
        if traffic is not None:
            traffic.stop()
        server.stop()  # SIGTERM: the live service flushes its prediction log
    if serving is not None:
        summary["serving"] = {**serving, "logged_rows": logged_rows({a.request_id for a in traffic.answers})}
    summary["airflow_peak_memory_mb"] = {"rss_sum": server.peak_rss // 2**20, "pss": server.peak_pss // 2**20}
    return summary


def start_traffic(days: list[dt.date], sample: int = 3000) -> loadgen.Load:
    """Replay landed transactions through the live service (2 paced connections) once it is ready."""
    cfg = _settings.load()
    base = f"http://127.0.0.1:{cfg.serving_port}"
    packaging.wait_ready(base, 120)
    frame = lake.read_range("curated", "transactions", days[0], days[-1]).sample(sample, random_state=cfg.seed)
    bodies = packaging.request_bodies(frame)
    return loadgen.Load(base, cfg.serving_api_key(), bodies, connections=2, pause=0.05).__enter__()


def exercise_aliases(traffic: loadgen.Load, first: str | None, min_requests: int = 2000) -> dict:
    """Under the replayed traffic: when the drift-triggered release reached the service, then a
    rollback and a roll-forward (each an alias move) and how long each took to answer."""
    champion = tracking.version_by_alias(CHAMPION)
    switch = None
    if champion is not None and str(champion.version) != str(first) and "released_at" in champion.tags:
        released = dt.datetime.fromisoformat(champion.tags["released_at"]).timestamp()
        switch = loadgen.wait_for_version(traffic, champion.version, released)
    moves = []
    for _ in range(2):  # rollback, then roll forward
        at = time.time()
        moved = promotion.rollback()
        moves.append(round(loadgen.wait_for_version(traffic, moved[CHAMPION], at), 3))
        time.sleep(2)
    while len(traffic.answers) < min_requests:
        time.sleep(0.5)
    traffic.stop()
    return {"requests": len(traffic.answers), "errors": len(traffic.errors()),
            "versions_served": sorted({a.model_version for a in traffic.answers if a.model_version}),
            "switch_seconds": round(switch, 3) if switch is not None else None,
            "rollback_seconds": moves[0], "roll_forward_seconds": moves[1], **traffic.percentiles()}


def logged_rows(request_ids: set[str]) -> int:
    """Rows of the prediction log answering the demo's requests (after the service's final flush)."""
    logged = prediction_log.read(source="live")
    return int(logged["request_id"].isin(request_ids).sum()) if len(logged) else 0


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
    serving = summary.get("serving")
    if serving is None:
        problems.append("the live service was not exercised")
    else:
        if serving["errors"] or serving["requests"] < 2000:
            problems.append(f"live service: {serving['errors']} failed of {serving['requests']} requests")
        if serving["logged_rows"] != serving["requests"]:
            problems.append(f"prediction log holds {serving['logged_rows']} rows for {serving['requests']} requests")
        if serving["switch_seconds"] is None or serving["switch_seconds"] >= 5:
            problems.append(f"the drift-triggered release reached the service in {serving['switch_seconds']} s")
        if max(serving["rollback_seconds"], serving["roll_forward_seconds"]) >= 5:
            problems.append("a rollback took 5 s or more to reach the service")
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
