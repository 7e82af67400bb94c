"""The main job (``make demo``): the whole loop through a real Airflow scheduler.

Normal days land and are backfilled (ingest → validate → features); a manual train run makes
the first champion (→ promote → package → release); landed transactions are replayed through the
live service from then on, and on the stable days batch scores, monitor and performance find
nothing to act on. Drifted days land: monitor's drift asset starts an asset-triggered train run and
the new version goes to alias ``canary``; the canary DAG decides from its shadow scores, live
traffic and labels, and the demo's user approves the rollout through the REST API. The previous
champion is then tried as canary and aborted on the evidence. Concept-drift days land (same
inputs, new fraud pattern): performance emits ``model_degraded`` once their labels arrive, which
starts another train run. A corrupt day is quarantined. Ends with a summary of runs, model
versions, aliases, canary decisions, live performance and report paths. State is reset first.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import time
from collections import Counter

from lifecycle.platform import env

# Airflow, which lifecycle.lake imports, reads AIRFLOW_HOME once at its import; unset, it makes ~/airflow
env.apply()

from lifecycle import alerts, audit, contract, features, lake, packaging, prediction_reader, registry, reports, tracking  # noqa: E402
from lifecycle import settings as _settings  # noqa: E402
from lifecycle.aliases import CANARY, CHAMPION, SHADOW  # noqa: E402
from lifecycle.devtools import datagen, loadgen, smtp_server  # noqa: E402
from lifecycle.devtools.airflow_client import AirflowServer  # noqa: E402
from lifecycle.platform import cluster, services, setup  # noqa: E402

DAG_IDS = {
    "ingest",
    "validate",
    "features",
    "train",
    "promote",
    "package",
    "monitor",
    "score",
    "performance",
    "canary",
    "rollback",
    "watch",
}
FIRST_DAY = dt.date(2026, 10, 1)
STABLE_SCORED_DAYS = 3
ALERT_RECIPIENT = "data-team@localhost"
# what the demo's loop must have told its data team (a failed task, a rollback: only if one happened)
ALERTED = ("quarantine", "feature_drift", "model_degraded", "approval_waiting", "approval_answered", "canary_abort")
# how long the demo's user takes to answer a rollout approval, per profile (answer_approval)
APPROVAL_AFTER_SECONDS = {"embedded": 3, "scaleout": 5}


def _days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


def reset_state() -> None:
    """Local state, and for the scale-out profile what it keeps in its services."""
    services.reset()
    state = _settings.load().state_dir
    if state.exists():
        shutil.rmtree(state)


def land_and_backfill(server: AirflowServer, days: list[dt.date], scenario: str, landed: int = 0) -> None:
    """Land ``days`` (but the first ``landed``, already there) with ``scenario`` and backfill ingest
    over all of them; the asset chain must then have gated and featurized every day."""
    for day in days[landed:]:
        datagen.land(day, scenario)
    server.backfill("ingest", days[0].isoformat(), days[-1].isoformat())
    server.wait_idle(answer=answer_approval)
    gated = set(lake.dates("curated", contract.current().events)) | set(
        lake.dates("quarantine", contract.current().events)
    )
    if missing := [d.isoformat() for d in days if d not in gated] + [d.isoformat() for d in features.pending_days()]:
        raise RuntimeError(f"days still pending after the asset chain went idle: {missing}")


def run(
    normal_days: int = 8,
    drifted_days: int = 3,
    concept_days: int = 4,
    log=functools.partial(print, flush=True),
    observe=None,
) -> dict:
    """The loop through Airflow; ``observe(server)``, if given, runs while the deployment is still up (tests)."""
    t0 = time.monotonic()
    cluster.check_ports(cluster.commands())  # first: a deployment running on these ports may run on this state
    reset_state()
    state = _settings.load().state_dir
    mail = smtp_server.start(state / "mail", state / "mail.log")
    server = AirflowServer(
        environment={
            # the demo drives time itself (backfills, manual triggers): schedules start tomorrow
            "LIFECYCLE_SCHEDULE_START": (dt.date.today() + dt.timedelta(days=1)).isoformat(),
            # a rollout waits for a human; the demo's user answers through the REST API
            "LIFECYCLE_REQUIRE_APPROVAL": "true",
            # alerts by e-mail to a real SMTP server process, through the Airflow connection
            "LIFECYCLE_ALERT_CHANNELS": "email",
            "LIFECYCLE_ALERT_EMAIL_TO": ALERT_RECIPIENT,
            f"AIRFLOW_CONN_{_settings.SMTP_CONN_ID.upper()}": mail.connection(),
        }
    )
    held = {}

    def step(text: str) -> None:
        log(f"[{time.monotonic() - t0:5.0f}s] {text}")

    try:
        server.launch_scheduler()  # its import of the task libraries overlaps set-up
        setup.main()
        server.launch()
        days = loop_days(normal_days, drifted_days, concept_days)
        land_first(days)  # on the core the scheduler's start leaves idle
        server.wait_ready()
        server.wait_for_dags(DAG_IDS)
        done = loop(server, days, step, held, ready=f"Airflow up at {server.base}")
        summary = summarize(server, days["corrupt"], done["stable_until"], days["concept"])  # tracking server up
        held["traffic"].stop()
        summary["audit"] = audit_one(held["traffic"])  # while the tracking server is up (scale-out)
        summary["wall_seconds"] = round(time.monotonic() - t0, 1)
        if observe:
            summary["observed"] = observe(server)
    finally:
        if (traffic := held.get("traffic")) is not None:
            traffic.stop()
        server.stop()  # SIGTERM: the live service flushes its prediction log
        mail.stop()
    received = [m for m in mail.messages() if ALERT_RECIPIENT in m["To"]]
    summary["alerts_received"] = dict(sorted(Counter(m[alerts.HEADER] for m in received).items()))
    summary["alert_subjects"] = [m["Subject"] for m in received]
    traffic = held["traffic"]
    summary["serving"] = {
        **done["serving"],
        "requests": len(traffic.answers),
        "errors": len(traffic.errors()),
        "versions_served": sorted({a.model_version for a in traffic.answers if a.model_version}),
        "logged_rows": logged_rows({a.request_id for a in traffic.answers}),
        **traffic.percentiles(),
    }
    summary["airflow_peak_memory_mb"] = {"rss_sum": server.peak_rss // 2**20, "pss": server.peak_pss // 2**20}
    return summary


def audit_one(traffic: loadgen.Load) -> dict:
    """The audit answer for the last request the live service answered, once the service's next
    flush logged it: written whole to ``<state>/audit-example.txt``, summarized here."""
    request = next(a for a in reversed(traffic.answers) if a.status == 200 and a.request_id)
    deadline = time.monotonic() + 60
    while True:
        try:
            result = audit.answer(request.request_id)
            break
        except audit.NotLogged:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    path = _settings.load().state_dir / "audit-example.txt"
    path.write_text(audit.text(result) + "\n")
    [one] = [a for a in result["answers"] if a["returned"]]
    why = one["serving_because"]
    return {
        "request_id": request.request_id,
        "answered_by": f"v{one['model_version']} ({one['arm']})",
        "serving_because": f"{why['transition']} by {why['by']}" if why else None,
        "trained_on": result["models"][one["model_version"]]["training_set"]["days"],
        "file": str(path),
    }


def loop_days(normal_days: int, drifted_days: int, concept_days: int) -> dict:
    normal = _days(FIRST_DAY, normal_days)
    drifted = _days(normal[-1] + dt.timedelta(days=1), drifted_days)
    concept = _days(drifted[-1] + dt.timedelta(days=1), concept_days)
    return {"normal": normal, "drifted": drifted, "concept": concept, "corrupt": concept[-1] + dt.timedelta(days=1)}


def land_first(days: dict) -> None:
    """The normal days, landed before the loop starts (as a feed lands files whether or not the
    scheduler is up yet)."""
    for day in days["normal"]:
        datagen.land(day, "normal")


def loop(server, days: dict, step, held: dict, ready: str) -> dict:
    """The loop's steps on a started deployment, the normal days landed (``land_first``).
    ``server`` backfills, triggers and waits until idle: an ``AirflowServer``, or the in-process
    stand-in of bench/orchestration.py, which runs these same steps. The replayed traffic is put in
    ``held["traffic"]`` as it starts, for the caller to stop. ``ready`` starts the first step's
    text. Returns the alias moves' timings and when the stable days ended."""
    normal, drifted, concept, corrupt = days["normal"], days["drifted"], days["concept"], days["corrupt"]
    step(f"{ready}; {len(normal)} normal days landed: backfill ingest")
    land_and_backfill(server, normal, "normal", landed=len(normal))
    step("first training run (manual)")
    server.trigger("train", {"reason": "bootstrap: first model"})
    server.wait_idle(answer=answer_approval)
    first = tracking.version_by_alias(CHAMPION)
    step(
        f"version {first and first.version} released; replaying landed transactions through the live "
        "service; on the stable days: batch scores, monitor and performance"
    )
    traffic = held["traffic"] = start_traffic(normal)
    stable_check(server, normal)
    stable_until = time.time()
    step(f"landing {len(drifted)} drifted days, then monitoring (drift → train → canary)")
    land_and_backfill(server, drifted, "drifted")
    traffic.bodies = replay_bodies(drifted)
    server.trigger("monitor")
    server.wait_idle(answer=answer_approval)
    step("the canary DAG decides on the new version; the demo's user approves the rollout")
    decide_canary(server, traffic, newest_version())
    step("an operator tries the previous champion as canary (rollback DAG, as_canary)")
    server.trigger("rollback", {"as_canary": True})
    server.wait_idle(answer=answer_approval)
    decide_canary(server, traffic, str(first.version))
    step("rollback and roll-forward under load")
    serving = exercise_aliases(traffic, first.version if first else None)
    step(f"landing {len(concept)} concept-drift days (same inputs, new fraud pattern) and a corrupt day ({corrupt})")
    for day in concept:
        datagen.land(day, "concept")
    land_and_backfill(server, [*concept, corrupt], "corrupt", landed=len(concept))
    traffic.bodies = replay_bodies(concept)
    step("monitor and the daily performance run on the concept days")
    server.trigger("monitor")
    server.trigger("performance")
    server.wait_idle(answer=answer_approval)
    return {"serving": serving, "stable_until": stable_until}


def replay_bodies(days: list[dt.date], sample: int = 3000) -> list[dict]:
    """A seeded sample of the days' curated transactions as request bodies."""
    frame = lake.read_range("curated", contract.current().events, days[0], days[-1])
    return packaging.request_bodies(frame.sample(min(sample, len(frame)), random_state=_settings.load().seed))


def stable_check(server: AirflowServer, days: list[dt.date]) -> None:
    """On days like the champion's training data: batch scores of the last days (thousands of
    labeled predictions beside the live ones), then monitor and performance, which must emit
    neither feature_drift nor model_degraded."""
    server.trigger("score", {"dates": [d.isoformat() for d in days[-STABLE_SCORED_DAYS:]]})
    server.trigger("monitor")
    server.wait_idle(answer=answer_approval)
    server.trigger("performance")
    server.wait_idle(answer=answer_approval)


def answer_approval(request: dict) -> str | None:
    """The demo's user approves (the option going ahead: a release, a rollout, a rollback), as a
    person would: not within the first seconds.
    (Seen with Airflow 3.2: a response that fires the trigger before the scheduler has handled the
    deferring process's exit makes it mark the task up for retry, and the approval is asked again.
    A task's supervisor notices the exit at once (``platform.task_exit``), and the embedded
    scheduler handles it within ~0.1 s (``preload.PreloadingLocalExecutor.sync``); a Celery worker's
    result is read at the scheduler's next loop, up to its 0.5 s idle sleep later.)"""
    after = APPROVAL_AFTER_SECONDS[_settings.load().profile]
    old_enough = (dt.datetime.now(dt.UTC) - _instant(request["created_at"])).total_seconds() >= after
    return request["options"][0] if old_enough else None


def newest_version() -> str:
    cfg = _settings.load()
    return str(max(int(v.version) for v in tracking.client().search_model_versions(f"name='{cfg.model_name}'")))


def decide_canary(server: AirflowServer, traffic: loadgen.Load, version: str, tries: int = 6) -> None:
    """The canary DAG, once live traffic gave the canary its evidence (its own requests, and its
    shadow scores beside the champion's), until it rolls the canary out or aborts it; a rollout
    approval is answered by the demo's user through the REST API."""
    cfg = _settings.load()
    canary = tracking.client().get_model_version(cfg.model_name, version)
    if "canary_started_at" not in canary.tags:
        raise RuntimeError(f"v{version} was never released to alias canary")
    started = dt.datetime.fromisoformat(canary.tags["canary_started_at"]).timestamp()

    def decided() -> bool:
        return "canary_outcome" in tracking.client().get_model_version(cfg.model_name, version).tags

    paced = traffic.pause
    try:
        for _ in range(tries):
            if decided():
                return  # a run the release itself triggered already decided
            # unpaced until the canary has its evidence, paced again while the DAG decides (at full
            # speed through a canary run and its approval, the replay sent ~32,000 more requests a demo)
            traffic.pause, deadline = 0.0, time.monotonic() + 120
            while (
                sum(a.arm == CANARY and a.sent_at >= started for a in list(traffic.answers))
                < 2 * cfg.canary_min_requests
                and time.monotonic() < deadline
            ):
                time.sleep(1)
            traffic.pause = paced
            time.sleep(cfg.prediction_flush_seconds + 1)  # the live service's log buffer reaches the lake
            server.trigger("canary")
            server.wait_idle(answer=answer_approval)
    finally:
        traffic.pause = paced
    if not decided():
        raise RuntimeError(f"the canary DAG did not decide on v{version} in {tries} runs")


# seconds between a connection's requests: ~4 requests/s, a steady trickle of production traffic
# (a canary's evidence is gathered unpaced). The service spends ~5 ms of CPU a request (~7 ms on the
# scale-out profile), and a loaded machine's loop runs ~5x as long, so the pace sets the CPU it takes.
REPLAY_PAUSE = 0.5


def start_traffic(days: list[dt.date]) -> loadgen.Load:
    """Replay landed transactions through the live service (2 paced connections) once it is ready.
    A canary's evidence is gathered unpaced (``decide_canary``)."""
    cfg = _settings.load()
    base = f"http://127.0.0.1:{cfg.serving_port}"
    packaging.wait_ready(base, 120)
    return loadgen.Load(base, cfg.serving_api_key(), replay_bodies(days), connections=2, pause=REPLAY_PAUSE).__enter__()


def exercise_aliases(traffic: loadgen.Load, first: str | None) -> dict:
    """Under the replayed traffic: when the rolled-out canary reached the service as champion, then
    a rollback and a roll-forward (each an alias move) and how long each took to answer."""
    champion = tracking.version_by_alias(CHAMPION)
    switch = None
    if champion is not None and str(champion.version) != str(first) and "released_at" in champion.tags:
        released = dt.datetime.fromisoformat(champion.tags["released_at"]).timestamp()
        switch = loadgen.wait_for_version(traffic, champion.version, released)
    moves = []
    for why in ("demo: a rollback under load", "demo: the rollback rolled back (forward again)"):
        at = time.time()
        moved = registry.roll_back(why)
        moves.append(round(loadgen.wait_for_version(traffic, moved["to"][CHAMPION], at), 3))
        time.sleep(2)
    return {
        "switch_seconds": round(switch, 3) if switch is not None else None,
        "rollback_seconds": moves[0],
        "roll_forward_seconds": moves[1],
    }


def logged_rows(request_ids: set[str]) -> int:
    """Rows of the prediction log that answered the demo's requests (after the service's final flush);
    shadow scores of the same requests are logged beside them."""
    logged = prediction_reader.read(source="live")
    if not len(logged):
        return 0
    return int((logged["request_id"].isin(request_ids) & (logged["arm"] != SHADOW)).sum())


def _instant(text: str) -> dt.datetime:
    """A timestamp of Airflow's REST API (ISO 8601, ``Z`` for UTC)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(run: dict) -> float | None:
    if not (run.get("start_date") and run.get("end_date")):
        return None
    return (_instant(run["end_date"]) - _instant(run["start_date"])).total_seconds()


def _emitted_at(event: dict) -> float:
    return _instant(event["timestamp"]).timestamp()


def summarize(server: AirflowServer, corrupt: dt.date, stable_until: float, concept: list[dt.date]) -> dict:
    cfg = _settings.load()
    client = tracking.client()
    by_dag: dict[str, dict] = {}
    dag_runs = server.runs()
    history = registry.history()
    status, page = server.page("/reports/deployment")
    for r in dag_runs:
        entry = by_dag.setdefault(r["dag_id"], {"runs": Counter(), "seconds": []})
        entry["runs"][f"{r['run_type']}:{r['state']}"] += 1
        if (s := _seconds(r)) is not None:
            entry["seconds"].append(s)
    dags = {
        d: {
            "runs": dict(e["runs"]),
            "max_seconds": round(max(e["seconds"], default=0), 1),
            "total_seconds": round(sum(e["seconds"]), 1),
        }
        for d, e in sorted(by_dag.items())
    }
    versions = client.search_model_versions(f"name='{cfg.model_name}'")
    model = client.get_registered_model(cfg.model_name) if versions else None
    reports_zone = lake.zone("reports")
    drift, degraded = server.asset_events("monitor"), server.asset_events("performance")
    runs = client.search_runs([tracking.experiment_id()], "tags.kind = 'live_performance'", order_by=["start_time ASC"])
    latest = {(r.data.tags["model_version"], r.data.tags["arm"]): r for r in runs}
    decisions = client.search_runs(
        [tracking.experiment_id()], "tags.kind = 'canary_decision'", order_by=["start_time ASC"]
    )
    return {
        "dags": dags,
        "model_versions": sorted(
            (
                int(v.version),
                v.tags.get("flavour"),
                v.tags.get("trigger", "")[:60],
                v.tags.get("promotion_decision", "")[:90],
            )
            for v in versions
        ),
        "aliases": dict(model.aliases) if model else {},
        "deployments": history,
        "deployment_page": {
            "status": status,
            "moves_listed": sum(e["at"][:19].replace("T", " ") in page for e in history),
        },
        "run_notes": {
            d: [r["note"] for r in dag_runs if r["dag_id"] == d and r.get("note")]
            for d in ("validate", "train", "promote", "package", "canary", "monitor", "performance", "rollback")
        },
        "stable": {
            "feature_drift_events": sum(_emitted_at(e) <= stable_until for e in drift),
            "model_degraded_events": sum(_emitted_at(e) <= stable_until for e in degraded),
        },
        "performance": {
            "by_version": {
                f"v{v}/{arm}": {
                    "as_of": r.data.tags["window"].split("..")[-1],
                    f"live_{cfg.primary_metric}": r.data.metrics.get(f"live_{cfg.primary_metric}"),
                    "labels": int(r.data.metrics.get("live_labels", 0)),
                }
                for (v, arm), r in sorted(latest.items())
            },
            "model_degraded": [
                {
                    **{
                        k: e["extra"].get(k)
                        for k in ("model_version", "metric", "value", "baseline", "labels", "window")
                    },
                    "concept_day": concept_day(e["extra"].get("window"), concept),
                    "train_runs": [r["run_id"] for r in e["created_dagruns"]],
                }
                for e in degraded
            ],
            "reports": sorted(str(p) for p in (reports_zone / "performance").rglob("report.html")),
        },
        "canary": [
            {
                "version": r.data.tags["canary_version"],
                "champion": r.data.tags["champion_version"],
                "outcome": r.data.tags["outcome"],
                "reason": r.data.tags["reason"],
            }
            for r in decisions
        ],
        "drift": {
            "events": [{k: e["extra"].get(k) for k in ("model_version", "as_of", "drift_share")} for e in drift],
            "concept_days_drift": concept_drift(concept),
        },
        "drift_reports": sorted(str(p) for p in (reports_zone / "drift").rglob("report.html")),
        "reports_index": str(reports_zone / "index.html"),
        "model_cards": {
            str(v.version): str(reports_zone / reports.card_page(v.version))
            for v in sorted(versions, key=lambda v: int(v.version))
            if (reports_zone / reports.card_page(v.version)).exists()
        },
        "quarantined_days": [d.isoformat() for d in lake.dates("quarantine", contract.current().events)],
        "corrupt_day_curated": corrupt in lake.dates("curated", contract.current().events),
        "feature_days": [d.isoformat() for d in lake.dates("features", contract.current().feature_tables[0])][-1:],
    }


def concept_day(window: str | None, concept: list[dt.date]) -> int | None:
    """Which concept-drift day (1 = the first) a degradation window ends on, None if before them."""
    if not window or not concept:
        return None
    last = dt.date.fromisoformat(window.split("..")[-1])
    return (last - concept[0]).days + 1 if last >= concept[0] else None


def concept_drift(concept: list[dt.date]) -> dict | None:
    """The drift report of the concept-drift days (monitor ran on them): share and decision."""
    if not concept:
        return None
    page = reports.latest(f"drift/{concept[-1].isoformat()}")
    if page is None:
        return None
    summary = json.loads(page.read_text())["summary"]
    return {k: summary.get(k) for k in ("as_of", "model_version", "drift_share", "drift")}


def check(summary: dict) -> list[str]:
    """What the demo promises; an empty list means it kept every promise."""
    problems = []
    if not summary["dags"].get("train", {}).get("runs", {}).get("asset_triggered:success"):
        problems.append("no successful asset-triggered train run")
    if len(summary["model_versions"]) < 3:
        problems.append(f"{len(summary['model_versions'])} model versions, expected at least 3")
    if "champion" not in summary["aliases"]:
        problems.append("no champion alias")
    if not summary["drift_reports"]:
        problems.append("no Evidently HTML report")
    if uncarded := sorted({str(v[0]) for v in summary["model_versions"]} - set(summary["model_cards"]), key=int):
        problems.append(f"no model card for versions {', '.join(uncarded)}")
    if not summary["quarantined_days"] or summary["corrupt_day_curated"]:
        problems.append("the corrupt day was not quarantined, or reached curated data")
    stable = summary["stable"]
    if stable["feature_drift_events"] or stable["model_degraded_events"]:
        problems.append(f"on the stable days: {stable}")
    performance = summary["performance"]
    if not performance["reports"]:
        problems.append("no performance report")
    degraded = [e for e in performance["model_degraded"] if e["concept_day"]]
    if not degraded or not any(e["train_runs"] for e in degraded):
        problems.append("no model_degraded event on the concept days started a train run")
    if not any(v[2].startswith("degraded") for v in summary["model_versions"]):
        problems.append("no version was trained on a model_degraded trigger")
    if (summary["drift"]["concept_days_drift"] or {}).get("drift", True):
        problems.append(f"monitor on the concept days: {summary['drift']['concept_days_drift']}")
    outcomes = [(d["outcome"], d["reason"]) for d in summary["canary"]]
    if not any(o == "rollout" and "approved by " in r for o, r in outcomes):
        problems.append("no canary was rolled out after an approval")
    if not any(o == "abort" for o, _ in outcomes):
        problems.append("no canary was aborted")
    serving = summary.get("serving")
    if summary["deployment_page"] != {"status": 200, "moves_listed": len(summary["deployments"])}:
        problems.append(f"/reports/deployment does not list every move: {summary['deployment_page']}")
    if unnoted := [d for d in ("promote", "package", "canary", "validate") if not summary["run_notes"][d]]:
        problems.append(f"no run note on the runs of {', '.join(unnoted)}")
    if not summary["audit"]["serving_because"]:
        problems.append(f"the audit of a live request names no deployment record: {summary['audit']}")
    if missing := [kind for kind in ALERTED if kind not in summary["alerts_received"]]:
        problems.append(f"no {', '.join(missing)} alert reached the SMTP server")
    moves = summary["deployments"]
    unexplained = [b["at"] for a, b in zip(moves, moves[1:], strict=False) if a["to"] != b["from"]]
    if not moves or unexplained or moves[-1]["to"] != {k: str(v) for k, v in summary["aliases"].items()}:
        problems.append(f"the deployment history does not explain every alias move (at {unexplained})")
    if serving is None:
        problems.append("the live service was not exercised")
    else:
        if serving["errors"] or serving["requests"] < 2000:
            problems.append(f"live service: {serving['errors']} failed of {serving['requests']} requests")
        if serving["logged_rows"] != serving["requests"]:
            problems.append(f"prediction log holds {serving['logged_rows']} rows for {serving['requests']} requests")
        if serving["switch_seconds"] is None or serving["switch_seconds"] >= 5:
            problems.append(f"the canary's rollout reached the service in {serving['switch_seconds']} s")
        if max(serving["rollback_seconds"], serving["roll_forward_seconds"]) >= 5:
            problems.append("a rollback took 5 s or more to reach the service")
    return problems


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal-days", type=int, default=8)
    parser.add_argument("--drifted-days", type=int, default=3)
    parser.add_argument("--concept-days", type=int, default=4)
    parser.add_argument("--summary-file", help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    try:
        summary = run(args.normal_days, args.drifted_days, args.concept_days)
    except cluster.PortTaken as err:
        raise SystemExit(f"demo not started: {err}") from None
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.summary_file:
        with open(args.summary_file, "w") as f:
            f.write(text)
    state = _settings.load().state_dir
    print("\nDeployment history (python -m lifecycle.rollback --history):\n" + registry.table(summary["deployments"]))
    print(f"\nDemo finished in {summary['wall_seconds']} s. Reports: {summary['reports_index']}")
    print(
        f"Open the Airflow UI with `make airflow` (same state: {state}); log in as admin "
        f"with the password in {state}/airflow/simple_auth_manager_passwords.json.generated"
    )
    if problems := check(summary):
        raise SystemExit("demo did not keep its promises: " + "; ".join(problems))


if __name__ == "__main__":
    main()
