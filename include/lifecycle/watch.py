"""The watch over the live champion: its recent rows in the prediction log, and the service's status.

Every ``LIFECYCLE_WATCH_EVERY_MINUTES`` the ``watch`` DAG judges the rows served in the last
``LIFECYCLE_WATCH_WINDOW_MINUTES`` (``lifecycle.health.measure``: per arm) against these bounds:
  error rate       the champion's rows that failed to score: at most ``live_max_error_rate``
  latency          the champion's p99: at most ``max_latency_ratio`` times its own p99 over the
                   ``LIFECYCLE_WATCH_BASELINE_HOURS`` before the window (and never below
                   ``max_latency_ms``); without such a baseline, ``max_latency_ms`` times the ratio
  missing features rows served without an entity's stored features: at most ``live_max_missing_share``
  feature age      the median age of the stored features served, at the event's time: at most the
                   feature views' TTL (a stalled ``features`` DAG)
  service          the live service answers its status
Rates are judged only over at least ``LIFECYCLE_WATCH_MIN_REQUESTS`` rows.

A breach of the first two is the model's: with ``LIFECYCLE_WATCH_ROLLBACK`` the champion is rolled
back to ``previous_champion`` when that version is healthy (the service has it loaded and its own
recent rows, if it has enough, are within the same bounds). Old or missing features and an
unreachable service are the data's or the platform's: a rollback cannot mend them, they alert only.
Every breach alerts (``live_breach``) once per version, breach and day.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from lifecycle import alerts, contract, health, packaging, prediction_reader
from lifecycle import settings as _settings
from lifecycle.aliases import CHAMPION, FALLBACK, PREVIOUS

COLUMNS = ["model_version", "latency_ms", "error", "missing_features", "feature_age_s"]
MODEL_FAULTS = ("error_rate", "latency")  # breaches a rollback mends


def rows_health(rows: pd.DataFrame) -> dict:
    """``health.measure`` of logged rows (a row with no ``error`` value scored)."""
    failed = rows["error"].notna() if "error" in rows else np.zeros(len(rows), bool)
    missing = rows["missing_features"].fillna(False).astype(bool) if len(rows) else []
    return health.measure(rows["latency_ms"], failed, missing, rows["feature_age_s"])


def feature_ttl_seconds(cfg: _settings.Settings) -> float | None:
    """The shortest TTL among the use case's feature views (None when none has one)."""
    from lifecycle import feature_store

    store = feature_store.get_store()
    service = store.get_feature_service(contract.current(cfg).feature_service)
    ttls = [store.get_feature_view(p.name).ttl for p in service.feature_view_projections]
    ttls = [t.total_seconds() for t in ttls if t]
    return min(ttls) if ttls else None


def service_status(cfg: _settings.Settings) -> dict:
    """The live service's ``/status`` (one worker's), or why it did not answer."""
    try:
        code, body = packaging.post(f"http://127.0.0.1:{cfg.serving_port}/status", {}, cfg.serving_api_key())
    except OSError as err:
        return {"reachable": False, "error": f"{type(err).__name__}: {err}"}
    if code != 200:
        return {"reachable": False, "error": f"HTTP {code}: {body}"}
    return {"reachable": True, **body}


def judge(
    log: pd.DataFrame,
    aliases: dict,
    status: dict,
    now: dt.datetime,
    limits: dict,
    cfg: _settings.Settings,
    ttl_seconds: float | None,
) -> dict:
    """The watch's verdict on the live rows ``log`` (the window and the baseline before it).
    ``limits``: the thresholds in force (``thresholds.Thresholds.values``)."""
    champion, previous = aliases.get(CHAMPION), aliases.get(PREVIOUS)
    start = now - dt.timedelta(minutes=cfg.watch_window_minutes)
    served = pd.to_datetime(log["served_at"], utc=True)
    window, before = log[served >= start], log[served < start]
    arms = {}
    for (arm, version), rows in window.groupby(["arm", "model_version"], observed=True, sort=True):
        arms[f"{arm} v{version}"] = rows_health(rows)
    out = {
        "at": now.isoformat(),
        "window": {"from": start.isoformat(), "to": now.isoformat(), "minutes": cfg.watch_window_minutes},
        "champion": champion,
        "previous_champion": previous,
        "arms": arms,
        "service": {k: status.get(k) for k in ("reachable", "error", "serving", "fallback", "refused_versions")},
        "breaches": [],
    }
    if not status.get("reachable"):
        out["breaches"].append({"kind": "service", "why": f"the live service did not answer: {status.get('error')}"})
    if champion is None:
        return {**out, "rollback": False, "why": "no champion: nothing to watch"}
    mine = window[(window["arm"] == CHAMPION) & (window["model_version"] == str(champion))]
    now_health = rows_health(mine)
    usual = rows_health(before[(before["arm"] == CHAMPION) & (before["model_version"] == str(champion))])
    latency_limit = _latency_limit(usual, limits, cfg)
    out["bounds"] = {
        "error_rate": limits["live_max_error_rate"],
        "p99_ms": latency_limit,
        "baseline_p99_ms": usual.get("p99_ms") if usual["requests"] >= cfg.watch_min_requests else None,
        "missing_features_share": limits["live_max_missing_share"],
        "feature_age_s": ttl_seconds,
        "min_requests": cfg.watch_min_requests,
    }
    out["champion_health"] = now_health
    if now_health["requests"] < cfg.watch_min_requests:
        judged = f"{now_health['requests']} champion rows in the window, {cfg.watch_min_requests} needed to judge"
    else:
        out["breaches"] += _breaches(now_health, latency_limit, limits, ttl_seconds)
        judged = None
    faults = [b for b in out["breaches"] if b["kind"] in MODEL_FAULTS]
    if not out["breaches"]:
        return {**out, "rollback": False, "why": judged or f"champion v{champion} within its bounds"}
    if not faults:
        return {**out, "rollback": False, "why": "no breach a rollback mends (the data's or the platform's)"}
    healthy, why = previous_healthy(previous, window, status, latency_limit, limits, cfg)
    out["previous_health"] = {"healthy": healthy, "why": why}
    if not cfg.watch_rollback:
        return {**out, "rollback": False, "why": "LIFECYCLE_WATCH_ROLLBACK is off: alert only"}
    if not healthy:
        return {**out, "rollback": False, "why": f"no rollback: {why}"}
    return {**out, "rollback": True, "why": f"roll back to v{previous}: {why}"}


def _latency_limit(usual: dict, limits: dict, cfg: _settings.Settings) -> float:
    if usual["requests"] >= cfg.watch_min_requests:
        return max(limits["max_latency_ms"], limits["max_latency_ratio"] * usual["p99_ms"])
    return limits["max_latency_ms"] * limits["max_latency_ratio"]


def _breaches(h: dict, latency_limit: float, limits: dict, ttl_seconds: float | None) -> list[dict]:
    out = []
    if h["error_rate"] > limits["live_max_error_rate"]:
        out.append(
            {
                "kind": "error_rate",
                "why": f"{h['errors']} of {h['requests']} rows failed to score: error rate {h['error_rate']:.4f} "
                f"> {limits['live_max_error_rate']}",
            }
        )
    if h["p99_ms"] > latency_limit:
        out.append({"kind": "latency", "why": f"p99 latency {h['p99_ms']:.1f} ms > {latency_limit:.1f} ms"})
    if h["missing_features_share"] > limits["live_max_missing_share"]:
        out.append(
            {
                "kind": "missing_features",
                "why": f"{h['missing_features_share']:.1%} of rows served without an entity's stored features "
                f"> {limits['live_max_missing_share']:.1%}",
            }
        )
    age = h.get("feature_age_p50_s")
    if ttl_seconds is not None and age is not None and age > ttl_seconds:
        out.append(
            {
                "kind": "feature_age",
                "why": f"stored features served are {age / 3600:.1f} h old at the event's time (median), "
                f"beyond their TTL of {ttl_seconds / 3600:.1f} h: is the features DAG stalled?",
            }
        )
    return out


def previous_healthy(
    previous: str | None, window: pd.DataFrame, status: dict, latency_limit: float, limits: dict, cfg
) -> tuple[bool, str]:
    """Whether ``previous_champion`` can take over: the service has it loaded, and its own rows in
    the window (as the fallback or a canary), when there are enough, are within the bounds."""
    if previous is None:
        return False, "there is no previous_champion"
    if not status.get("reachable"):
        return False, f"v{previous}'s state is unknown: the live service did not answer"
    if str(previous) in (status.get("refused_versions") or {}):
        return False, f"the service refused v{previous}: {status['refused_versions'][str(previous)]}"
    if str(status.get("fallback")) != str(previous):
        return False, f"v{previous} is not loaded by the service"
    rows = window[(window["model_version"] == str(previous)) & window["arm"].isin([FALLBACK, CHAMPION])]
    h = rows_health(rows)
    if h["requests"] < cfg.watch_min_requests:
        return True, f"v{previous} is loaded by the service ({h['requests']} recent rows of its own)"
    bad = [b["why"] for b in _breaches(h, latency_limit, limits, None) if b["kind"] in MODEL_FAULTS]
    if bad:
        return False, f"v{previous} breaches too: {'; '.join(bad)}"
    return True, f"v{previous} is loaded and its {h['requests']} recent rows are within the bounds"


def check(limits: dict, now: dt.datetime | None = None, cfg: _settings.Settings | None = None) -> dict:
    """Read the live rows and the service's status, judge them, alert each breach."""
    from lifecycle import registry

    cfg = cfg or _settings.load()
    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(minutes=cfg.watch_window_minutes, hours=cfg.watch_baseline_hours)
    log = prediction_reader.recent(cfg, since, COLUMNS)
    verdict = judge(log, registry.aliases(), service_status(cfg), now, limits, cfg, feature_ttl_seconds(cfg))
    for breach in verdict["breaches"]:
        alert(verdict, breach)
    return verdict


def alert(verdict: dict, breach: dict) -> dict | None:
    """One ``live_breach`` alert per champion version, breach kind and day."""
    from lifecycle import ui

    version = verdict["champion"]
    action = (
        f"rolling back to v{verdict['previous_champion']}"
        if verdict["rollback"] and breach["kind"] in MODEL_FAULTS
        else verdict["why"]
    )
    return alerts.send(
        "live_breach",
        f"live champion v{version}: {breach['kind'].replace('_', ' ')} breached",
        f"{breach['why']}\n{action}",
        {"deployment": ui.deployment_url()},
        key=f"live_breach/{version}/{breach['kind']}/{verdict['at'][:10]}",
    )


def describe(verdict: dict) -> str:
    """One line for the run's note."""
    if not verdict["breaches"]:
        return f"watch: {verdict['why']}"
    kinds = ", ".join(b["kind"] for b in verdict["breaches"])
    return f"watch: v{verdict['champion']} breached {kinds}; {verdict['why']}"
