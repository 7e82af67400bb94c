"""Batch scoring: each curated day scored by the live aliases, into the same prediction log.

A day's events get the features they had at their event time (Feast's point-in-time join,
the same one training uses), then the ``champion`` scores them (and, in shadow, the ``challenger``
when ``LIFECYCLE_SHADOW`` is on and a live ``canary``), column-wise: one model call per arm, never a frame per row. The
rows go to ``predictions/<model>/date=<day>/batch-v<version>-<arm>.parquet`` with
``source=batch``: a rerun for the same day and version replaces that file, never duplicates it.
Versions are loaded and digest-checked as the live service loads them.
"""

from __future__ import annotations

import datetime as dt
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lifecycle import contract, lake, live, prediction_log, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, SHADOW

SOURCE = "batch"


class ScoringError(RuntimeError):
    """Nothing to score: no champion yet, or the day has no curated partition."""


def arms(cfg: _settings.Settings) -> list[tuple[str, str]]:
    """(arm, version) pairs to score with: the champion; in shadow the challenger when
    ``LIFECYCLE_SHADOW`` is on, and a live canary (as the live service does: its scores beside the
    champion's are the canary decision's distribution gate)."""
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise ScoringError(f"model {cfg.model_name!r} has no {CHAMPION} alias: nothing to score with yet")
    out = [(CHAMPION, str(champion.version))]
    for alias, wanted in ((CHALLENGER, cfg.shadow), (CANARY, True)):
        mv = tracking.version_by_alias(alias) if wanted else None
        if mv is not None and str(mv.version) not in {v for _, v in out}:
            out.append((SHADOW, str(mv.version)))
    return out


def day_features(day: dt.date) -> pd.DataFrame:
    """The day's curated events with their point-in-time features."""
    from lifecycle import training

    part = lake.partition("curated", contract.current().events, day)
    if lake.manifest(part) is None:
        raise ScoringError(f"no curated partition for {day.isoformat()} ({part}): only gated days are scored")
    return training.point_in_time_features(lake.read_parquet(part))


def score_frame(
    uc: contract.UseCase, frame: pd.DataFrame, model, version: str, arm: str, served_at: datetime | None = None
) -> dict:
    """Prediction-log columns for every row of ``frame`` (features joined), scored in one call."""
    start = time.perf_counter()
    inputs = model.inputs(uc, frame)
    probs = np.asarray(model.score(inputs), dtype=float)
    latency_ms = (time.perf_counter() - start) * 1000 / max(len(frame), 1)  # per row, amortised
    ids = (f"{SOURCE}-v{version}-" + frame[uc.id].astype(str)).tolist()
    part = {c: frame[c] for c in uc.keys}  # Arrow reads Series
    return prediction_log.rows(
        uc, ids, part, inputs, probs, version, arm, latency_ms, served_at or datetime.now(UTC), SOURCE
    )


def score_day(day: dt.date, cfg: _settings.Settings | None = None) -> dict:
    """Score one curated day with every configured arm; returns the rows and the file of each."""
    cfg = cfg or _settings.load()
    uc = contract.current(cfg)
    wanted = arms(cfg)
    frame = day_features(day)
    out = {"date": day.isoformat(), "rows": len(frame), "scored": []}
    for arm, version in wanted:
        loaded = live.load_version(cfg, version)
        columns = score_frame(uc, frame, loaded.model, version, arm)
        path = prediction_log.write_batch(cfg, day, version, arm, columns)
        out["scored"].append(
            {
                "arm": arm,
                "version": version,
                "rows": len(frame),
                "file": path,
                "mean_probability": round(float(np.mean(columns[uc.score])), 5),
            }
        )
    return out
