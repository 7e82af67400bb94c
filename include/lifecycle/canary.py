"""Canary decisions from production evidence: roll the canary out to champion, abort it, or wait.

A released challenger serves a share of live traffic under alias ``canary`` (sticky per entity: ``UseCase.route_by``).
Its evidence is what the prediction log holds since it started (``canary_started_at`` tag):
  operational   the canary arm's live requests: enough of them, no failed scoring, p99 latency
                within ``LIFECYCLE_CANARY_MAX_LATENCY_RATIO`` of the champion's (or under
                ``LIFECYCLE_MAX_LATENCY_MS``)
  distribution  the canary's shadow scores and the champion's scores on the same events:
                Evidently's value drift of the score distribution stays under its threshold
  quality       once ``LIFECYCLE_MIN_LABELS`` of those events are labeled: the canary's
                primary metric is at least the champion's on them, minus ``LIFECYCLE_CANARY_MARGIN``
A failed operational or quality gate aborts; all three passed rolls out; otherwise the canary
keeps serving and a later run decides. A moved score distribution alone proves nothing either way
(a model retrained after drift scores the drifted traffic differently, and better): it holds the
canary until the labels judge it, and a canary that moved its scores but passed the quality gate is
rolled out only after a human approved it (``review``). Every rollout or abort is an MLflow run
(kind ``canary_decision``) and tags on the version.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from lifecycle import contract, evaluation, lake, prediction_reader, pseudonym, registry, thresholds, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHAMPION, SHADOW
from lifecycle.performance import LABEL, PROBA

ROLLOUT, ABORT, WAIT = "rollout", "abort", "wait"
PASS, FAIL, PENDING = "pass", "fail", "pending"


class NoCanary(RuntimeError):
    """No version holds the canary alias: nothing to decide."""


def evidence(cfg: _settings.Settings, versions: list[str], since: dt.datetime) -> pd.DataFrame:
    """Logged predictions of ``versions`` served since the canary started, with labels where known.
    Every event day is read: replayed or late traffic can carry any event time."""
    log = prediction_reader.read(cfg)
    if log.empty:
        return log
    uc = contract.current(cfg)
    log = log[log["model_version"].isin(versions) & (log["served_at"] >= since)].rename(columns={uc.score: PROBA})
    labels = lake.read_range("curated", uc.labels, dt.date.min, dt.date.max)
    if labels.empty:
        return log.assign(**{LABEL: np.nan})
    labels = labels[[uc.id, uc.label]].rename(columns={uc.label: LABEL}).drop_duplicates(uc.id)
    # the log keeps the event id's pseudonym: hashed as one array (``many`` is one Python call per id)
    labels[uc.id] = pseudonym.of(cfg).array(labels[uc.id], distinct=True).to_numpy(zero_copy_only=False)
    return log.merge(labels, on=uc.id, how="left")


def operational_gate(log: pd.DataFrame, canary_version: str, cfg: _settings.Settings) -> dict:
    live = log[log["source"] == "live"]
    canary = live[(live["arm"] == CANARY) & (live["model_version"] == canary_version)]
    champion = live[live["arm"] == CHAMPION]
    n = len(canary)
    if n < cfg.canary_min_requests:
        return {"result": PENDING, "requests": n, "why": f"{n} canary requests, {cfg.canary_min_requests} needed"}
    errors = int(canary["error"].notna().sum()) if "error" in canary else 0
    error_rate = errors / n
    p99 = float(np.percentile(canary["latency_ms"], 99))
    ref = float(np.percentile(champion["latency_ms"], 99)) if len(champion) else None
    limit = max(cfg.max_latency_ms, ref * cfg.canary_max_latency_ratio) if ref else cfg.max_latency_ms
    out = {"requests": n, "error_rate": error_rate, "p99_ms": p99, "champion_p99_ms": ref, "p99_limit_ms": limit}
    if error_rate > cfg.canary_max_error_rate:
        return {**out, "result": FAIL, "why": f"error rate {error_rate:.4f} > {cfg.canary_max_error_rate}"}
    if p99 > limit:
        return {**out, "result": FAIL, "why": f"p99 latency {p99:.1f} ms > {limit:.1f} ms"}
    return {**out, "result": PASS, "why": f"{n} requests, error rate {error_rate:.4f}, p99 {p99:.1f} ms"}


def paired(log: pd.DataFrame, canary_version: str, key: str) -> pd.DataFrame:
    """Per event (``key``: the use case's id): the champion arm's score and the canary version's
    shadow score (rows whose scoring failed carry no score and count in the operational gate only)."""
    log = log[log[PROBA].notna()]
    champ = log[log["arm"] == CHAMPION][[key, PROBA, LABEL]].drop_duplicates(key)
    shadow = log[(log["arm"] == SHADOW) & (log["model_version"] == canary_version)]
    shadow = shadow[[key, PROBA]].drop_duplicates(key)
    return champ.merge(shadow, on=key, suffixes=("_champion", "_canary"))


def distribution_gate(pairs: pd.DataFrame, cfg: _settings.Settings) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    n = len(pairs)
    if n < cfg.canary_min_requests:
        return {
            "result": PENDING,
            "pairs": n,
            "why": f"{n} events scored by both (shadow), "
            f"{cfg.canary_min_requests} needed: LIFECYCLE_SHADOW scores the canary beside the champion",
        }
    definition = DataDefinition(numerical_columns=[PROBA])
    ref = pd.DataFrame({PROBA: pairs[f"{PROBA}_champion"].to_numpy(float)})
    cur = pd.DataFrame({PROBA: pairs[f"{PROBA}_canary"].to_numpy(float)})
    snapshot = Report([ValueDrift(column=PROBA, method="psi", threshold=cfg.canary_max_psi)]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    psi = float(snapshot.dict()["metrics"][0]["value"])
    out = {
        "pairs": n,
        "psi": psi,
        "threshold": cfg.canary_max_psi,
        "mean_champion": float(ref[PROBA].mean()),
        "mean_canary": float(cur[PROBA].mean()),
    }
    if psi >= cfg.canary_max_psi:
        return {**out, "result": FAIL, "why": f"score distribution moved: PSI {psi:.3f} >= {cfg.canary_max_psi}"}
    return {**out, "result": PASS, "why": f"PSI {psi:.3f} over {n} events"}


def quality_gate(pairs: pd.DataFrame, cfg: _settings.Settings) -> dict:
    labeled = pairs[pairs[LABEL].notna()]
    n, metric = len(labeled), cfg.primary_metric
    if n < cfg.min_labels or labeled[LABEL].nunique() < 2:
        return {"result": PENDING, "labels": n, "why": f"{n} labeled events, {cfg.min_labels} needed"}
    y = labeled[LABEL].to_numpy(int)
    canary = evaluation.metrics(y, labeled[f"{PROBA}_canary"].to_numpy(float), cfg.alert_rate)
    champion = evaluation.metrics(y, labeled[f"{PROBA}_champion"].to_numpy(float), cfg.alert_rate)
    out = {
        "labels": n,
        "canary": canary[metric],
        "champion": champion[metric],
        "metric": metric,
        "margin": cfg.canary_margin,
    }
    if canary[metric] < champion[metric] - cfg.canary_margin:
        return {
            **out,
            "result": FAIL,
            "why": f"canary {metric} {canary[metric]:.4f} < champion "
            f"{champion[metric]:.4f} - {cfg.canary_margin} on the same {n} labeled events",
        }
    return {
        **out,
        "result": PASS,
        "why": f"canary {metric} {canary[metric]:.4f} vs champion {champion[metric]:.4f} on {n} labeled events",
    }


def decide(cfg: _settings.Settings | None = None, limits: thresholds.Thresholds | None = None) -> dict:
    """The three gates and the outcome (rollout, abort or wait) for the current canary, with
    ``limits`` (default ``thresholds.in_force()``; the canary DAG passes the Airflow Variables' too)."""
    limits = limits or thresholds.in_force(cfg)
    cfg = limits.apply(cfg or _settings.load())
    canary, champion = tracking.version_by_alias(CANARY), tracking.version_by_alias(CHAMPION)
    if canary is None or champion is None:
        raise NoCanary(f"model {cfg.model_name!r} has no {CANARY} alias (or no {CHAMPION}): nothing to decide")
    since = dt.datetime.fromisoformat(canary.tags["canary_started_at"])
    log = evidence(cfg, [str(canary.version), str(champion.version)], since)
    if log.empty:
        gates = {"operational": {"result": PENDING, "why": "no prediction logged since the canary started"}}
    else:
        pairs = paired(log, str(canary.version), contract.current(cfg).id)
        gates = {
            "operational": operational_gate(log, str(canary.version), cfg),
            "distribution": distribution_gate(pairs, cfg),
            "quality": quality_gate(pairs, cfg),
        }
    decision, review = outcome({name: g["result"] for name, g in gates.items()})
    reasons = [f"{name}: {g['result']} ({g['why']})" for name, g in gates.items()]
    return {
        "decision": decision,
        "review": review,
        "canary": str(canary.version),
        "champion": str(champion.version),
        "since": since.isoformat(),
        "gates": gates,
        "reasons": reasons,
        "thresholds": limits.record(),
    }


def outcome(results: dict[str, str]) -> tuple[str, bool]:
    """(decision, whether a rollout needs a human) from each gate's result."""
    operational, quality = results.get("operational", PENDING), results.get("quality", PENDING)
    distribution = results.get("distribution", PENDING)
    if FAIL in (operational, quality):
        return ABORT, False
    if operational == quality == PASS and distribution in (PASS, FAIL):
        return ROLLOUT, distribution == FAIL
    return WAIT, False


def record(decision: dict, outcome: str, reason: str) -> str:
    """An MLflow run with the gates' numbers, and the outcome on the canary's version; returns the run id."""
    import mlflow

    cfg = _settings.load()
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(), run_name=f"canary v{decision['canary']} {outcome}"
    ) as run:
        mlflow.set_tags(
            {
                "kind": "canary_decision",
                "canary_version": decision["canary"],
                "champion_version": decision["champion"],
                "outcome": outcome,
                "reason": reason[:5000],
            }
        )
        mlflow.log_metrics(
            {
                f"{name}_{k}": float(v)
                for name, g in decision["gates"].items()
                for k, v in g.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and v is not None
            }
        )
        mlflow.log_params({f"threshold_{k}": v["value"] for k, v in decision.get("thresholds", {}).items()})
    c = tracking.client()
    c.set_model_version_tag(cfg.model_name, decision["canary"], "canary_outcome", outcome)
    c.set_model_version_tag(cfg.model_name, decision["canary"], "canary_reason", reason[:5000])
    return run.info.run_id


def rollout(decision: dict, reason: str, approved_by: str | None = None) -> dict:
    """The canary rolls forward to champion (``registry.roll_forward``); returns the history record."""
    run = record(decision, ROLLOUT, reason + (f"; approved by {approved_by}" if approved_by else ""))
    return registry.roll_forward(decision["canary"], reason, f"MLflow run {run}", approved_by)


def abort(decision: dict, reason: str, approved_by: str | None = None) -> dict:
    """The canary alias goes (``registry.abort``); the champion keeps serving every request."""
    run = record(decision, ABORT, reason)
    return registry.abort(decision["canary"], reason, f"MLflow run {run}", approved_by)
