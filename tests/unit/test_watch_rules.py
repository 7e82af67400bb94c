"""The watch's verdicts on logged live rows (``watch.judge``), and the reader of recent rows."""

import datetime as dt
import statistics

import numpy as np
import pandas as pd
import pytest

from lifecycle import contract, prediction_log, prediction_reader, pseudonym, settings, thresholds, watch
from lifecycle.aliases import CHAMPION, FALLBACK, PREVIOUS

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TTL = 2 * 86400.0
ALIASES = {CHAMPION: "7", PREVIOUS: "6"}
STATUS = {"reachable": True, "serving": {CHAMPION: "7"}, "fallback": "6", "refused_versions": {}}


def rows(n, version="7", arm=CHAMPION, minutes_ago=5.0, latency=4.0, failed=0, missing=0, age=3600.0, seed=0):
    """``n`` live rows served ``minutes_ago``, latencies around ``latency`` ms, the first ``failed``
    failed and the first ``missing`` without stored features."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "request_id": [f"{version}-{arm}-{minutes_ago}-{i}" for i in range(n)],
            "arm": arm,
            "model_version": version,
            "served_at": NOW - dt.timedelta(minutes=minutes_ago) + pd.to_timedelta(rng.random(n), unit="s"),
            "source": "live",
            "latency_ms": latency * rng.uniform(0.5, 1.5, n),
            "error": ["ValueError: boom"] * failed + [None] * (n - failed),
            "missing_features": [True] * missing + [False] * (n - missing),
            "feature_age_s": np.full(n, age),
        }
    )


@pytest.fixture
def cfg(state):
    return settings.load()


def judge(cfg, log, aliases=ALIASES, status=STATUS, **overrides):
    limits = {**thresholds.in_force(cfg).values, **overrides}
    return watch.judge(log, aliases, status, NOW, limits, cfg, TTL)


def test_a_healthy_champion_has_no_breach(cfg):
    log = pd.concat([rows(200), rows(500, minutes_ago=120, seed=1)])
    verdict = judge(cfg, log)
    assert verdict["breaches"] == [] and not verdict["rollback"]
    window = log[log["served_at"] >= NOW - dt.timedelta(minutes=cfg.watch_window_minutes)]
    reference = statistics.quantiles(window["latency_ms"], n=100, method="inclusive")[98]
    assert verdict["champion_health"]["p99_ms"] == pytest.approx(reference)
    assert verdict["champion_health"]["requests"] == 200
    usual = statistics.quantiles(log["latency_ms"][200:], n=100, method="inclusive")[98]
    assert verdict["bounds"]["baseline_p99_ms"] == pytest.approx(usual)
    assert verdict["bounds"]["p99_ms"] == max(cfg.max_latency_ms, cfg.max_latency_ratio * usual)


def test_failing_scores_roll_back_to_a_healthy_previous_champion(cfg):
    log = pd.concat([rows(200, failed=9), rows(200, version="6", arm=FALLBACK, seed=2)])
    verdict = judge(cfg, log)
    assert [b["kind"] for b in verdict["breaches"]] == ["error_rate"]
    assert "9 of 200 rows failed to score: error rate 0.0450 > 0.01" in verdict["breaches"][0]["why"]
    assert verdict["rollback"] and verdict["previous_health"]["healthy"]
    assert verdict["why"].startswith("roll back to v6")
    # the same share under a looser bound (an Airflow Variable's, say) is no breach
    assert judge(cfg, log, live_max_error_rate=0.05)["breaches"] == []


def test_latency_is_judged_against_the_champions_own_usual_p99(cfg):
    usual = rows(400, minutes_ago=90, latency=30.0, seed=3)  # its usual: ~45 ms p99
    slow = rows(200, latency=200.0, seed=4)
    verdict = judge(cfg, pd.concat([usual, slow]))
    assert [b["kind"] for b in verdict["breaches"]] == ["latency"] and verdict["rollback"]
    assert verdict["bounds"]["p99_ms"] == pytest.approx(cfg.max_latency_ratio * verdict["bounds"]["baseline_p99_ms"])
    # no baseline: the declared bound times the ratio
    assert judge(cfg, slow)["bounds"]["p99_ms"] == cfg.max_latency_ms * cfg.max_latency_ratio


def test_old_or_missing_features_alert_but_never_roll_back(cfg):
    stale = rows(200, missing=150, age=3 * 86400.0)
    verdict = judge(cfg, stale)
    assert sorted(b["kind"] for b in verdict["breaches"]) == ["feature_age", "missing_features"]
    assert not verdict["rollback"] and "no breach a rollback mends" in verdict["why"]
    assert "72.0 h old" in next(b["why"] for b in verdict["breaches"] if b["kind"] == "feature_age")


def test_no_rollback_without_a_healthy_previous_champion_or_with_rollback_off(cfg, monkeypatch):
    failing = rows(200, failed=200)
    assert judge(cfg, failing, aliases={CHAMPION: "7"})["why"] == "no rollback: there is no previous_champion"
    refused = {**STATUS, "refused_versions": {"6": "DigestMismatch: …"}}
    assert judge(cfg, failing, status=refused)["why"].startswith("no rollback: the service refused v6")
    also_failing = pd.concat([failing, rows(100, version="6", arm=FALLBACK, failed=100)])
    assert "v6 breaches too" in judge(cfg, also_failing)["why"]
    monkeypatch.setenv("LIFECYCLE_WATCH_ROLLBACK", "false")
    off = judge(settings.load(), failing)
    assert not off["rollback"] and off["why"] == "LIFECYCLE_WATCH_ROLLBACK is off: alert only"


def test_too_few_rows_are_not_judged_but_a_silent_service_is(cfg):
    verdict = judge(cfg, rows(cfg.watch_min_requests - 1, failed=10))
    assert verdict["breaches"] == [] and "needed to judge" in verdict["why"]
    down = judge(cfg, rows(0), status={"reachable": False, "error": "ConnectionRefusedError: …"})
    assert [b["kind"] for b in down["breaches"]] == ["service"] and not down["rollback"]


def test_recent_reads_the_files_written_since_whatever_their_event_day(cfg):
    uc = contract.current(cfg)
    fs, _ = prediction_log.filesystem(cfg)
    base = prediction_log.folder(cfg)
    names = pseudonym.of(cfg)

    def write(name, day, served_at, n, **extra):
        part = {uc.id: [f"{name}-{i}" for i in range(n)], **{e: ["x"] * n for e in uc.entities}}
        part[uc.time] = [dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)] * n
        cols = prediction_log.rows(
            uc,
            [f"{name}-{i}" for i in range(n)],
            part,
            {},
            np.zeros(n),
            "7",
            CHAMPION,
            3.0,
            served_at,
            "live",
            names,
            **extra,
        )
        prediction_log.put(fs, f"{base}/date={day}/{name}.parquet", prediction_log.table(cols).to_pandas().to_parquet())

    now = dt.datetime.now(dt.UTC)
    write("old-file", dt.date(2026, 10, 3), now - dt.timedelta(hours=2), 5)  # written now, served long ago
    write("replayed", dt.date(2026, 10, 3), now, 4, feature_age_s=[1.0] * 4, missing_features=[False] * 4)
    write("today", now.date(), now, 3)  # from before the age was logged: no such column
    got = prediction_reader.recent(cfg, now - dt.timedelta(minutes=5), watch.COLUMNS)
    assert sorted(got["request_id"]) == sorted([f"replayed-{i}" for i in range(4)] + [f"today-{i}" for i in range(3)])
    assert got.set_index("request_id")["feature_age_s"].isna().sum() == 3
    assert prediction_reader.recent(cfg, now + dt.timedelta(minutes=1), watch.COLUMNS).empty
