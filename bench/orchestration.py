"""Orchestration overhead: the demo's loop through Airflow, then the same work as library calls.

    .local/venv/bin/python bench/orchestration.py [--normal-days 8 --drifted-days 3 --concept-days 4]
    .local/venv/bin/python bench/orchestration.py --only inprocess     # one phase (development)
    .local/venv/bin/python bench/orchestration.py --report-only        # the report from the last results
    .local/venv/bin/python bench/orchestration.py --smoke              # CI's check that it still runs (~1 min)

Phase A (``airflow``) is ``lifecycle.devtools.demo.run`` itself: Airflow's processes through
``lifecycle.platform.cluster``, the real scheduler, the demo's driver; its summary (``wall_seconds``,
``demo.check``'s problems) is kept, and while the deployment is still up the task instances, runs,
asset events and DAG structure are read through the REST client (``observe``).

Phase B (``inprocess``) runs the demo's own steps (``lifecycle.devtools.demo.loop``, as phase A does)
with the DAG tasks' library calls in one Python process in place of Airflow: a small dispatcher
stands in for the deployment (``backfill``, ``trigger``, ``wait_idle``). A task that emits an asset
queues the consumer DAGs (their events batched until they run, as Airflow does), and ``wait_idle``
drains the queue. Same days, scenarios, seeds and settings; the live service (``bentoml serve``,
started as the cluster starts it), the replayed traffic, the canary decisions, rollbacks and alias
moves are the demo's own functions.

Each phase runs in its own Python process with its own state folder (``.local/bench/orchestration/``),
one after the other, so modules, environment and caches never leak between them. The report:
both wall times and their ratio, the loop's steps side by side, and where Airflow's extra time
goes, from its metadata (REST): task start-up and runner overhead (a task instance's duration minus
the same library call in phase B), queue waits (``start_date - queued_dttm``), scheduling latency
between dependent tasks (queued minus the upstreams' end) and from a run's start to its first task,
asset event to the triggered run's start, manual/backfill run creation to start, a run's last task
to the run's end, and deferral waits (the rollout approval; ``wait_for_files`` finds its files
at its first check in the demo, so it is a task like the others, its library call that check).
Task-level sums add up time that overlapped (up to three tasks run at once): they explain the
difference, they are not slices of it.

``--smoke`` (``make bench-smoke``) measures nothing: it checks that both phases' code still fits the
code it drives (``demo.run`` and ``demo.loop`` take what the phases pass them, the REST client has
what ``observe`` reads, the stand-in has a method for every DAG and consumers for every asset) and
runs phase B's first steps for real on ``SMOKE_NORMAL_DAYS`` days in its own state folder (the
normal days backfilled through ingest, validate, features, score and performance with the demo's own
``land_and_backfill``; the first training run, promote, package and release; a monitor run; no live
service), then prints its calls. It fails (non-zero exit) wherever the bench could not run.

Not compared (no library-call equivalent): Airflow's metadata DB migration and pool (``setup.main``)
and the start of its four processes are phase A's start-up (the normal days land meanwhile; phase B
lands them at its start too); the demo user's approval delay
(``APPROVAL_AFTER_SECONDS``: phase B approves at once) shows as a deferral wait. Phase B's
approvals (a release to champion, a rollout) are recorded as approved by ``BENCH_APPROVER``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".local" / "bench" / "orchestration"
PHASES = ("airflow", "inprocess")
SMOKE_NORMAL_DAYS = 4  # --smoke: enough labeled events for the first training run
BENCH_APPROVER = "the bench (in-process, answered at once)"  # phase B's answer where phase A's user approves


# ---------------------------------------------------------------------------------------------
# phase A: the demo through Airflow


def observe(server) -> dict:
    """What the metadata DB knows about the loop's timing, read while the deployment is up."""
    upstream = {}
    for dag in sorted(d["dag_id"] for d in server.paged("/api/v2/dags", "dags")):
        tasks = server.get(f"/api/v2/dags/{dag}/tasks")["tasks"]
        upstream[dag] = {
            t["task_id"]: sorted(u["task_id"] for u in tasks if t["task_id"] in u["downstream_task_ids"]) for t in tasks
        }
    return {
        "runs": server.paged("/api/v2/dags/~/dagRuns?order_by=id", "dag_runs"),
        "task_instances": server.paged("/api/v2/dags/~/dagRuns/~/taskInstances?order_by=id", "task_instances"),
        "asset_events": server.paged("/api/v2/assets/events?order_by=timestamp", "asset_events"),
        "upstream": upstream,
    }


def phase_airflow(args) -> dict:
    from lifecycle.devtools import demo

    steps = []
    t0 = time.monotonic()

    def log(text: str) -> None:
        steps.append((round(time.monotonic() - t0, 2), text))
        print(text, file=sys.stderr, flush=True)

    summary = demo.run(args.normal_days, args.drifted_days, args.concept_days, log=log, observe=observe)
    observed = summary.pop("observed")
    return {
        "wall_seconds": summary["wall_seconds"],
        "steps": steps,
        "problems": demo.check(summary),
        "summary": summary,
        "observed": observed,
    }


# ---------------------------------------------------------------------------------------------
# phase B: the same library calls in one process


class Event:
    """An asset event as a task sees it in ``triggering_asset_events`` (extra, timestamp)."""

    def __init__(self, extra: dict) -> None:
        self.extra = extra
        self.timestamp = dt.datetime.now(dt.UTC)


class InProcess:
    """The DAGs' task calls, and a dispatcher standing in for the scheduler's asset triggering."""

    def __init__(self) -> None:
        from lifecycle import assets

        a = assets
        # which DAGs an asset triggers (their ``schedule``), as in dags/
        self.consumers = {
            a.RAW: ["validate"],
            a.CURATED: ["features", "performance"],
            a.FEATURES: ["score"],
            a.CANDIDATE: ["promote"],
            a.PROMOTED: ["package"],
            a.RELEASED: ["canary"],
            a.DRIFT: ["train"],
            a.DEGRADED: ["train"],
            a.ERASED: ["train"],  # the demo erases nothing: never emitted here
            a.PACKAGED: [],
            a.PREDICTIONS: [],
        }
        self.pending: dict[str, dict] = {}  # dag -> {asset: [events]}, in the order they were first queued
        self.calls: dict[str, list[float]] = defaultdict(list)  # "dag.task" -> seconds per call
        self.runs: dict[str, int] = defaultdict(int)
        self.answer_approvals = False
        self.created: list[tuple[str, str, dict]] = []  # manual and backfill runs not yet run

    @contextmanager
    def task(self, dag: str, task: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.calls[f"{dag}.{task}"].append(time.perf_counter() - start)

    def emit(self, asset, extra: dict) -> None:
        for dag in self.consumers[asset]:
            self.pending.setdefault(dag, {}).setdefault(asset, []).append(Event(extra))

    def drain(self) -> None:
        """Run asset-triggered DAGs until none is queued (the demo's ``wait_idle``)."""
        while self.pending:
            dag = next(iter(self.pending))
            events = self.pending.pop(dag)
            self.run(dag, "asset_triggered", events)

    def run(self, dag: str, run_type: str = "manual", events: dict | None = None, **params) -> None:
        self.runs[f"{dag}:{run_type}"] += 1
        getattr(self, dag)(events or {}, run_type, **params)

    # --- what demo.loop asks of a deployment (AirflowServer's methods) ---

    def backfill(self, dag_id: str, first: str, last: str) -> None:
        day, last_day = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        while day <= last_day:
            self.created.append((dag_id, "backfill", {"day": day}))
            day += dt.timedelta(days=1)

    def trigger(self, dag_id: str, conf: dict | None = None) -> None:
        self.created.append((dag_id, "manual", conf or {}))

    def wait_idle(self, answer=None) -> None:
        """Runs the created runs in order, then drains the queued DAGs; a rollout approval is
        answered at once when ``answer`` is given (the demo's user answers only while it waits
        for a canary decision)."""
        self.answer_approvals = answer is not None
        try:
            while self.created:
                dag_id, run_type, params = self.created.pop(0)
                self.run(dag_id, run_type, **params)
            self.drain()
        finally:
            self.answer_approvals = False

    # --- the DAGs, task by task (dags/*.py) ---

    def ingest(self, events, run_type, day: dt.date) -> None:
        from lifecycle import ingest, landing
        from lifecycle.assets import RAW

        with self.task("ingest", "wait_for_files"):  # the sensor's first check: the files are there
            if absent := landing.missing(day):
                raise RuntimeError(f"not landed: {absent}")
        with self.task("ingest", "land"):
            manifests = ingest.ingest_day(day)
            ev, labels = manifests.values()
        self.emit(RAW, {"dates": [day.isoformat()], "rows": ev["rows"], "labels": labels["rows"]})

    def validate(self, events, run_type) -> None:
        from lifecycle import validation
        from lifecycle.assets import CURATED, RAW
        from lifecycle.dag_defaults import days_to_process

        with self.task("validate", "quality_gate"):
            days = days_to_process(validation.pending_days(), {"dates": []}, events, RAW, validation.not_regated)
            results = validation.gate_until_drained([dt.date.fromisoformat(d) for d in days])
        with self.task("validate", "curated_days"):
            curated = [r["date"] for r in results if r["status"] == "curated"]
        if curated:
            self.emit(CURATED, {"dates": curated})
        with self.task("validate", "failed_days"):
            failed = [r["detail"] for r in results if r["status"] == "quarantined"]
        if failed:
            print(f"validate: quarantined ({len(failed)} day(s))", file=sys.stderr, flush=True)

    def features(self, events, run_type) -> None:
        from lifecycle import features
        from lifecycle.assets import CURATED, FEATURES
        from lifecycle.dag_defaults import days_to_process

        with self.task("features", "build_tables"):
            days = days_to_process(features.pending_days(), {"dates": []}, events, CURATED)
            built = features.build_tables([dt.date.fromisoformat(d) for d in days])
        with self.task("features", "materialize"):
            loaded = [d.isoformat() for d in features.materialize(built)]
        self.emit(FEATURES, {"days": loaded})

    def score(self, events, run_type, dates: list[str] = ()) -> None:
        from lifecycle import scoring
        from lifecycle.assets import FEATURES, PREDICTIONS
        from lifecycle.dag_defaults import events_extra

        with self.task("score", "score_days"):
            days = {d for ds in events_extra(events, FEATURES, "days") for d in ds} | set(dates)
            try:
                result = scoring.score_days([dt.date.fromisoformat(d) for d in days])
            except scoring.ScoringError:
                return
        scored = sorted({f"v{s['version']} {s['arm']}" for d in result["days"] for s in d["scored"]})
        self.emit(PREDICTIONS, {"dates": [d["date"] for d in result["days"]], "scored": scored})

    def performance(self, events, run_type) -> None:
        from lifecycle import contract, lake, performance, prediction_maintenance
        from lifecycle.assets import DEGRADED

        with self.task("performance", "compact_log"):
            prediction_maintenance.compact()
        with self.task("performance", "evaluate"):
            days = lake.dates("curated", contract.current().events)
            try:
                summary = performance.evaluate(days[-1]) if days else None
            except performance.NothingToEvaluate:
                summary = None
        if summary and summary["degraded"]:
            keys = ("metric", "value", "baseline", "labels", "window", "report_uri", "model_version", "reason")
            self.emit(DEGRADED, {k: summary[k] for k in keys})

    def monitor(self, events, run_type) -> None:
        from lifecycle import monitoring
        from lifecycle.assets import DRIFT

        with self.task("monitor", "drift_report"):
            try:  # a manual run: logical_date None, run_after now
                summary = monitoring.drift_report(dt.datetime.now(dt.UTC).date())
            except monitoring.NothingToMonitor:
                summary = None
        if summary and summary["drift"]:
            keys = ("drift_share", "drifted_columns", "report_uri", "as_of", "window", "model_version")
            self.emit(DRIFT, {k: summary[k] for k in keys})

    def train(self, events, run_type, reason: str = "manual") -> None:
        import pandas as pd

        from lifecycle import contract, training
        from lifecycle import settings as _settings
        from lifecycle.assets import CANDIDATE

        cfg = _settings.load()
        key = f"inprocess__train__{self.runs['train:' + run_type]}_{run_type}"
        with self.task("train", "training_set"):
            try:
                why = training.trigger(run_type, events, reason)
            except training.EvidenceAnswered:
                return
            info = training.build_training_set(key, cutoff=pd.Timestamp.now(tz="UTC"))
            info["reason"] = why
            info["parent_run_id"] = training.start_parent_run(key, info, why)
        results = []
        for flavour in contract.current(cfg).candidates:
            with self.task("train", f"train_{flavour}"):
                results.append(training.train_candidate(flavour, info, info["parent_run_id"], cfg.seed))
        with self.task("train", "register_challenger"):
            registered = training.register_best(results, info, key, why)
        self.emit(CANDIDATE, {"version": str(registered["version"]), "flavour": registered["flavour"]})

    def promote(self, events, run_type) -> None:
        from lifecycle import promotion
        from lifecycle.assets import CANDIDATE, PROMOTED
        from lifecycle.dag_defaults import events_extra

        with self.task("promote", "compare"):
            versions = events_extra(events, CANDIDATE, "version")
            decision = promotion.compare(versions[-1] if versions else None).as_dict()
        if decision["promote"]:
            metric = decision["metric"]
            self.emit(
                PROMOTED,
                {"version": decision["challenger_version"], metric: decision["challenger"][metric]},
            )

    def package(self, events, run_type) -> None:
        from lifecycle import packaging, promotion
        from lifecycle.assets import PACKAGED, PROMOTED, RELEASED
        from lifecycle.dag_defaults import events_extra

        version = str(events_extra(events, PROMOTED, "version")[-1])
        with self.task("package", "build_bento"):
            bento = packaging.build(version)
        with self.task("package", "smoke_test"):
            packaging.smoke_test(bento, version)
        self.emit(PACKAGED, {"bento": bento, "mlflow_version": version})
        with self.task("package", "release"):  # the demo's user approves a release to champion at once
            released = promotion.release(version, approved_by=BENCH_APPROVER)
        self.emit(RELEASED, released)

    def canary(self, events, run_type) -> None:
        from lifecycle import canary, registry
        from lifecycle.assets import RELEASED

        with self.task("canary", "decide"):
            try:
                decision = canary.decide()
            except canary.NoCanary:
                return
        if decision["decision"] == "rollout":
            if registry.needs_approval("roll_forward") or decision["review"]:
                if not self.answer_approvals:  # the run waits for a human, until a step's wait answers
                    print("canary: a rollout waits for an approval", file=sys.stderr, flush=True)
                    return
                approved = BENCH_APPROVER
            else:
                approved = None
            with self.task("canary", "rollout"):
                moved = canary.rollout(decision, "; ".join(decision["reasons"]), approved_by=approved)
            self.emit(RELEASED, moved)
        elif decision["decision"] == "abort":
            with self.task("canary", "abort"):
                canary.abort(decision, "; ".join(r for r in decision["reasons"] if ": fail" in r))

    def watch(self, events, run_type) -> None:
        from lifecycle import thresholds
        from lifecycle import watch as watching

        with self.task("watch", "check"):
            watching.check(thresholds.in_force().values)

    def rollback(self, events, run_type, as_canary: bool = False) -> None:
        from lifecycle import rollback
        from lifecycle.assets import RELEASED

        with self.task("rollback", "swap_aliases"):
            moved = rollback.run(as_canary, "rolled back by the bench", BENCH_APPROVER)
        self.emit(RELEASED, moved)


def phase_inprocess(args) -> dict:
    """``demo.loop`` itself, with ``InProcess`` as the deployment (same steps, same texts)."""
    from lifecycle import contract, lake, tracking
    from lifecycle import settings as _settings
    from lifecycle.devtools import demo
    from lifecycle.platform import cluster, env

    steps = []
    t0 = time.monotonic()

    def step(text: str) -> None:
        steps.append((round(time.monotonic() - t0, 2), text))
        print(text, file=sys.stderr, flush=True)

    deployment = {"LIFECYCLE_REQUIRE_APPROVAL": "true"}  # what demo.run gives its deployment's processes
    os.environ.update(deployment)
    demo.reset_state()
    env.apply()
    cfg = _settings.load()
    for sub in ("airflow", "mlflow", "feast", "bentoml"):  # setup.main's folders; no Airflow DB here
        (cfg.state_dir / sub).mkdir(parents=True, exist_ok=True)
    tracking.experiment_id()  # MLflow's store, as setup.main makes it before the live service starts
    model = {cluster.LIVE: cluster.commands()[cluster.LIVE]}  # the live service, started as the cluster starts it
    service = cluster.Supervisor(cfg.airflow_home / "process-logs", programs=model, environment=deployment)
    flow = InProcess()
    held = {}
    try:
        service.start()
        days = demo.loop_days(args.normal_days, args.drifted_days, args.concept_days)
        demo.land_first(days)  # phase A lands them while Airflow starts
        done = demo.loop(flow, days, step, held, ready="live service started")
        wall = round(time.monotonic() - t0, 1)
    finally:
        if (traffic := held.get("traffic")) is not None:
            traffic.stop()
        service.stop()
    versions = tracking.client().search_model_versions(f"name='{cfg.model_name}'")
    return {
        "wall_seconds": wall,
        "steps": steps,
        "calls": dict(flow.calls),
        "runs": dict(flow.runs),
        "model_versions": sorted(
            (int(v.version), v.tags.get("flavour"), v.tags.get("trigger", "")[:60]) for v in versions
        ),
        "quarantined_days": [d.isoformat() for d in lake.dates("quarantine", contract.current().events)],
        "serving": {**done["serving"], "requests": len(traffic.answers), "errors": len(traffic.errors())},
    }


def phase_smoke(args) -> dict:
    """``--smoke``: both phases' code checked against what it drives, and phase B's first steps run for
    real (see the module docstring); raises where the bench could not run."""
    import inspect

    from lifecycle import assets, tracking
    from lifecycle import settings as _settings
    from lifecycle.aliases import CHAMPION
    from lifecycle.devtools import demo
    from lifecycle.devtools.airflow_client import AirflowServer
    from lifecycle.platform import cluster, env

    # phase A: demo.run and the REST reads of ``observe``; phase B: demo.loop, the live service's command
    inspect.signature(demo.run).bind(args.normal_days, args.drifted_days, args.concept_days, log=print, observe=observe)
    inspect.signature(demo.loop).bind(None, {}, print, {}, ready="")
    cluster.commands()[cluster.LIVE]
    flow = InProcess()
    missing = [f"AirflowServer.{m}" for m in ("get", "paged") if not callable(getattr(AirflowServer, m, None))]
    missing += [f"InProcess.{m}" for m in ("backfill", "trigger", "wait_idle") if not callable(getattr(flow, m, None))]
    missing += [f"InProcess.{dag}" for dag in sorted(demo.DAG_IDS) if not callable(getattr(flow, dag, None))]
    every = [a for a in vars(assets).values() if isinstance(a, type(assets.RAW))]
    missing += [f"InProcess.consumers[{a.name}]" for a in every if a not in flow.consumers]
    if missing:
        raise RuntimeError(f"the bench no longer fits the code it drives: {', '.join(missing)} missing")
    # phase B's first steps, as phase_inprocess starts them (no live service: nothing replays yet)
    steps = []
    t0 = time.monotonic()
    os.environ["LIFECYCLE_REQUIRE_APPROVAL"] = "true"
    demo.reset_state()
    env.apply()
    cfg = _settings.load()
    for sub in ("airflow", "mlflow", "feast", "bentoml"):
        (cfg.state_dir / sub).mkdir(parents=True, exist_ok=True)
    tracking.experiment_id()
    days = demo.loop_days(SMOKE_NORMAL_DAYS, 1, 1)
    demo.land_first(days)
    steps.append((round(time.monotonic() - t0, 2), f"{SMOKE_NORMAL_DAYS} normal days landed: backfill ingest"))
    demo.land_and_backfill(flow, days["normal"], "normal", landed=len(days["normal"]))
    steps.append((round(time.monotonic() - t0, 2), "first training run (manual)"))
    flow.trigger("train", {"reason": "bootstrap: first model"})
    flow.wait_idle()
    steps.append((round(time.monotonic() - t0, 2), "monitor on the normal days"))
    flow.trigger("monitor")
    flow.wait_idle()
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise RuntimeError("the first training run released no champion")
    return {
        "wall_seconds": round(time.monotonic() - t0, 1),
        "steps": steps,
        "calls": dict(flow.calls),
        "runs": dict(flow.runs),
        "champion": f"{champion.version} ({champion.tags.get('flavour')})",
    }


def cpu_reference(n: int = 10_000_000) -> float:
    """Seconds one core takes for a fixed pure-Python loop: this machine kind's cores differ in speed
    from one machine to the next (2.4x between two of them), which moves both walls, not their ratio."""
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return round(time.perf_counter() - started, 2)


def child(phase: str, args) -> None:
    import threading

    os.environ["LIFECYCLE_STATE_DIR"] = str(OUT / phase)
    from lifecycle.platform import env

    env.apply()
    if phase == "smoke":
        return smoke_report(phase_smoke(args))
    loads, done = [], threading.Event()

    def sample() -> None:  # the 1-minute load average every 10 s while the phase runs
        while not done.wait(10):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    before = os.getloadavg()
    speed = cpu_reference()
    result = (phase_airflow if phase == "airflow" else phase_inprocess)(args)
    done.set()
    result["load_average"] = {
        "cpu_reference_s": speed,
        "before": before,
        "mean_1min_during": round(sum(loads) / max(len(loads), 1), 2),
        "max_1min_during": round(max(loads, default=0.0), 2),
        "after": os.getloadavg(),
    }
    (OUT / f"{phase}.json").write_text(json.dumps(result, indent=1, default=str))


# ---------------------------------------------------------------------------------------------
# the report


def smoke_report(result: dict) -> None:
    """``--smoke``'s table: phase B's library calls in its first steps."""
    (OUT / "smoke.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"\norchestration smoke: phase B's first steps in {result['wall_seconds']} s, champion {result['champion']}")
    for at, text in result["steps"]:
        print(f"  [{at:5.1f} s] {text}")
    print(f"  runs: {', '.join(f'{k} {v}' for k, v in sorted(result['runs'].items()))}")
    print(f"\n  {'call (dag.task)':<36} {'calls':>5} {'seconds':>8}")
    for key, seconds in result["calls"].items():
        print(f"  {key:<36} {len(seconds):>5} {sum(seconds):>8.2f}")
    print("\n(--smoke measures nothing: run the bench without it for the figures)")


def _t(text: str | None) -> float | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def task_log_marks(ti: dict) -> tuple[float, float, float] | None:
    """(first line, end of Pre Execute, start of Post Execute) of a task instance's log: the task
    runner's start-up ends when the DAG file is parsed and the context received; the callable runs
    until Post Execute (XCom push, outlet events, state)."""
    folder = OUT / "airflow" / "airflow" / "logs" / f"dag_id={ti['dag_id']}" / f"run_id={ti['dag_run_id']}"
    folder /= f"task_id={ti['task_id']}"
    if ti["map_index"] >= 0:
        folder /= f"map_index={ti['map_index']}"
    path = folder / f"attempt={ti['try_number']}.log"
    if not path.exists():
        return None
    first = pre_end = post = None
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        at = _t(entry.get("timestamp"))
        event = str(entry.get("event", ""))
        first = first if first is not None else at
        if event == "::endgroup::" and pre_end is None:
            pre_end = at
        elif event == "::group::Post Execute":
            post = at
    return (first, pre_end, post) if None not in (first, pre_end, post) else None


def _union(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``spans``."""
    total, reach = 0.0, None
    for lo, hi in sorted(spans):
        if reach is None or lo > reach:
            total, reach = total + hi - lo, hi
        elif hi > reach:
            total, reach = total + hi - reach, hi
    return total


def breakdown(a: dict, b: dict) -> tuple[dict, dict]:
    """Where phase A's extra time goes: the wall clock split by what ran (no overlap), and per
    category summed seconds with the largest items (task-level sums overlap)."""
    obs = a["observed"]
    tis = [t for t in obs["task_instances"] if t["start_date"] and t["end_date"]]
    runs = {(r["dag_id"], r["dag_run_id"]): r for r in obs["runs"]}
    by_run = defaultdict(dict)
    for t in tis:
        by_run[(t["dag_id"], t["dag_run_id"])][(t["task_id"], t["map_index"])] = t
    cats: dict[str, list[tuple[float, str]]] = defaultdict(list)
    waits = {("canary", "approval")}  # deferred to the triggerer until the demo's user answers
    callable_s, counts = defaultdict(float), defaultdict(int)
    spans = {"task": [], "callable": []}
    for t in tis:
        key = f"{t['dag_id']}.{t['task_id']}"
        item = f"{key}[{t['map_index']}] {t['dag_run_id'][:40]}"
        start, end, queued = _t(t["start_date"]), _t(t["end_date"]), _t(t["queued_when"])
        if (t["dag_id"], t["task_id"]) not in waits:
            spans["task"].append((start, end, item))
        if (t["dag_id"], t["task_id"]) in waits:
            cats["deferral waits (the rollout approval)"].append((end - start, item))
        elif marks := task_log_marks(t):
            first, pre_end, post = marks
            cats["task start-up (TI start -> end of Pre Execute)"].append((pre_end - start, item))
            cats["task finish (Post Execute -> TI end)"].append((end - post, item))
            callable_s[key] += post - pre_end
            counts[key] += 1
            spans["callable"].append((pre_end, post))
        else:
            cats["task instances without a readable log (whole duration)"].append((end - start, item))
        # a resumed deferral is queued again, so a deferred task's queued time is its re-queue
        if queued is not None and (t["dag_id"], t["task_id"]) not in waits:
            cats["queue wait (start_date - queued_dttm)"].append((start - queued, item))
            ups = obs["upstream"].get(t["dag_id"], {}).get(t["task_id"], [])
            siblings = by_run[(t["dag_id"], t["dag_run_id"])]
            ends = [_t(u["end_date"]) for (tid, _), u in siblings.items() if tid in ups]
            if ends:
                cats["scheduling: upstream end -> task queued"].append((queued - max(ends), item))
            elif (run := runs.get((t["dag_id"], t["dag_run_id"]))) and run.get("start_date"):
                cats["scheduling: run start -> first tasks queued"].append((queued - _t(run["start_date"]), item))
    # the task callables against the same library calls in one process
    calls = b["calls"]
    for key, seconds in callable_s.items():
        lib = calls.get(key, [])
        cats["task callables beyond phase B's library calls"].append(
            (
                seconds - sum(lib),
                f"{key}: {counts[key]} x {seconds / counts[key]:.2f} s in tasks, "
                f"{len(lib)} x {sum(lib) / max(len(lib), 1):.2f} s in-process",
            )
        )
    # runs: asset event -> triggered run, manual/backfill creation -> start, last task -> run end
    latest_event = {}
    for e in obs["asset_events"]:
        for r in e.get("created_dagruns", []):
            k = (r["dag_id"], r["run_id"])
            latest_event[k] = max(latest_event.get(k, 0), _t(e["timestamp"]))
    for k, r in runs.items():
        if not r.get("start_date"):
            continue
        item = f"{k[0]} {k[1][:48]}"
        if k in latest_event:
            cats["asset event -> triggered run start"].append((_t(r["start_date"]) - latest_event[k], item))
        elif r.get("queued_at"):
            cats["run created -> start (manual, backfill)"].append((_t(r["start_date"]) - _t(r["queued_at"]), item))
        ends = [_t(t["end_date"]) for t in by_run[k].values()]
        if r.get("end_date") and ends:
            cats["last task end -> run end"].append((_t(r["end_date"]) - max(ends), item))
    task_union, callable_union = _union([sp[:2] for sp in spans["task"]]), _union(spans["callable"])
    gaps, reach, last = [], None, None  # stretches with no task running, and what came before and after
    for lo, hi, item in sorted(spans["task"]):
        if reach is not None and lo > reach:
            gaps.append((lo - reach, f"after {last}, before {item}"))
        if reach is None or hi > reach:
            reach, last = hi, item
    cats["gaps with no task running (between the first and last task)"] = gaps
    b_calls = sum(sum(v) for v in calls.values())
    wall = {
        "airflow: some task callable running": round(callable_union, 1),
        "airflow: task processes running, no callable (start-up, finish)": round(task_union - callable_union, 1),
        "airflow: no task running (scheduling, run creation, driver and its waits, start-up)": round(
            a["wall_seconds"] - task_union, 1
        ),
        "in-process: library calls": round(b_calls, 1),
        "in-process: the rest (landing files, traffic and evidence waits, service start)": round(
            b["wall_seconds"] - b_calls, 1
        ),
    }
    return wall, {
        name: {
            "seconds": round(sum(s for s, _ in items), 1),
            "n": len(items),
            "top": [f"{s:6.1f} s  {i}" for s, i in sorted(items, reverse=True)[:6]],
        }
        for name, items in cats.items()
    }


def report(args) -> dict:
    a, b = (json.loads((OUT / f"{p}.json").read_text()) for p in PHASES)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "load_average_at_report": os.getloadavg(),
        "wall_airflow_s": a["wall_seconds"],
        "wall_inprocess_s": b["wall_seconds"],
        "ratio": round(a["wall_seconds"] / b["wall_seconds"], 2),
        "difference_s": round(a["wall_seconds"] - b["wall_seconds"], 1),
        "demo_problems": a["problems"],
        "load_average": {"airflow": a.get("load_average"), "inprocess": b.get("load_average")},
        "steps": [],
        "wall_clock": None,
        "breakdown": None,
        "inprocess_runs": b["runs"],
        "model_versions": {"airflow": a["summary"]["model_versions"], "inprocess": b["model_versions"]},
    }
    result["wall_clock"], result["breakdown"] = breakdown(a, b)
    for phase in (a, b):  # step i lasts until step i+1 (the last one until the end of the loop)
        marks = [0.0, *(s for s, _ in phase["steps"]), phase["wall_seconds"]]
        phase["segments"] = [round(marks[i + 1] - marks[i], 1) for i in range(len(marks) - 1)]
    names = ["start-up (reset, set-up, processes; normal days landed)", *(t[:60] for _, t in b["steps"])]
    for name, sa, sb in zip(names, a["segments"], b["segments"], strict=False):
        result["steps"].append({"step": name, "airflow_s": sa, "inprocess_s": sb, "difference_s": round(sa - sb, 1)})
    print(f"\nOrchestration overhead, {result['date']} (load average now {os.getloadavg()[0]:.2f})")
    print(f"  wall A (Airflow, demo.run)     {a['wall_seconds']:8.1f} s   demo.check: {a['problems'] or 'kept'}")
    print(f"  wall B (in-process)            {b['wall_seconds']:8.1f} s")
    for p, phase in zip(PHASES, (a, b), strict=True):
        if load := phase.get("load_average"):
            print(
                f"  load average during {p:<10} mean {load['mean_1min_during']}, max {load['max_1min_during']}"
                f"; CPU reference at its start {load.get('cpu_reference_s')} s"
            )
    print(f"  ratio A/B                      {result['ratio']:8.2f}      difference {result['difference_s']:.1f} s")
    print("\n  step                                                          A s     B s    A-B")
    for s in result["steps"]:
        print(f"  {s['step'][:60]:<60} {s['airflow_s']:6.1f}  {s['inprocess_s']:6.1f} {s['difference_s']:6.1f}")
    print("\n  the wall clock, by what ran (no overlap)")
    for name, seconds in result["wall_clock"].items():
        print(f"  {name:<85} {seconds:7.1f} s")
    print("\n  where A's extra time goes (Airflow metadata; sums over task instances overlap in time)")
    for name, c in sorted(result["breakdown"].items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"  {name:<55} {c['seconds']:8.1f} s  ({c['n']} items)")
        for line in c["top"][: 6 if "callables" in name else 3]:
            print(f"      {line}")
    return result


def markdown(result: dict) -> str:
    """The report as Markdown tables (for bench/README.md)."""
    lines = [
        "| phase | wall | load average (1 min) during: mean / max | CPU reference at its start |",
        "|---|---|---|---|",
    ]
    for p, key in zip(PHASES, ("wall_airflow_s", "wall_inprocess_s"), strict=True):
        load = result["load_average"][p] or {}
        lines.append(
            f"| {p} | {result[key]} s | {load.get('mean_1min_during')} / {load.get('max_1min_during')} "
            f"| {load.get('cpu_reference_s')} s |"
        )
    lines += ["", "| step | Airflow | in-process | difference |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['airflow_s']} | {s['inprocess_s']} | {s['difference_s']} |" for s in result["steps"]]
    lines += ["", "| wall clock, by what ran | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in result["wall_clock"].items()]
    lines += ["", "| where Airflow's extra time goes (sums overlap) | seconds | items | largest |", "|---|---|---|---|"]
    for name, c in sorted(result["breakdown"].items(), key=lambda kv: -kv[1]["seconds"]):
        top = "; ".join(t.strip() for t in c["top"][:2]).replace("|", "/")
        lines.append(f"| {name} | {c['seconds']} | {c['n']} | {top} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal-days", type=int, default=8)
    parser.add_argument("--drifted-days", type=int, default=3)
    parser.add_argument("--concept-days", type=int, default=4)
    parser.add_argument("--only", choices=PHASES, help="run one phase (its result replaces the stored one)")
    parser.add_argument("--report-only", action="store_true", help="report the stored results of both phases")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's check that the bench still runs: phase B's first steps in their own state (measures nothing)",
    )
    parser.add_argument("--child", choices=(*PHASES, "smoke"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args.child, args)
    if args.smoke:
        subprocess.run([sys.executable, __file__, "--child", "smoke"], check=True)
        return
    if not args.report_only:
        days = ["--normal-days", str(args.normal_days), "--drifted-days", str(args.drifted_days)]
        days += ["--concept-days", str(args.concept_days)]
        for phase in [args.only] if args.only else PHASES:
            print(f"phase {phase} (load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, __file__, "--child", phase, *days], check=True)
    if all((OUT / f"{p}.json").exists() for p in PHASES):
        result = report(args)
        (OUT / "report.json").write_text(json.dumps(result, indent=1))
        (OUT / "report.md").write_text(markdown(result))
        print(f"\n(all figures: {OUT / 'report.json'})")


if __name__ == "__main__":
    main()
