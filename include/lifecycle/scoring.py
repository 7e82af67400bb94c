"""Batch scoring: each curated day scored by the live aliases, into the same prediction log.

A day's events get the features they had at their event time (Feast's point-in-time join,
the same one training uses), then the ``champion`` scores them (and, in shadow, the ``challenger``
when ``LIFECYCLE_SHADOW`` is on and a live ``canary``), column-wise: one model call per arm and
chunk of ``CHUNK_ROWS`` rows, never a frame per row, streamed into one file per arm. The rows go
to ``predictions/<model>/date=<day>/batch-v<version>-<arm>.parquet`` with ``source=batch``:
a rerun for the same day and version replaces that file, never duplicates it. Versions
are loaded and digest-checked as the live service loads them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lifecycle import contract, lake, live, point_in_time, prediction_log, prediction_writer, pseudonym, tracking
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
    part = lake.partition("curated", contract.current().events, day)
    if lake.manifest(part) is None:
        raise ScoringError(f"no curated partition for {day.isoformat()} ({part}): only gated days are scored")
    return point_in_time.features(lake.read_parquet(part))


CHUNK_ROWS = (
    200_000  # rows scored at a time: a chunk's model matrix and its temporaries are ~300 MB, not 10+ GB for 10M rows
)


def score_frame(
    uc: contract.UseCase,
    frame: pd.DataFrame,
    model,
    version: str,
    arm: str,
    served_at: datetime | None = None,
    ids: dict | None = None,
) -> dict:
    """Prediction-log columns (arrays) for every row of ``frame`` (features joined), scored in one
    call; ``ids``: its id columns' pseudonyms when they were computed ahead (``score_chunks``)."""
    start = time.perf_counter()
    inputs = model.inputs(frame)
    probs = np.asarray(model.score(inputs), dtype=float)
    latency_ms = (time.perf_counter() - start) * 1000 / max(len(frame), 1)  # per row, amortised
    part = {c: frame[c] for c in uc.keys}  # Arrow reads Series
    return prediction_log.rows(
        uc,
        f"{SOURCE}-v{version}-",  # a batch row's request id: one per event and version
        part,
        inputs,
        probs,
        version,
        arm,
        latency_ms,
        served_at or datetime.now(UTC),
        SOURCE,
        pseudonym.of(_settings.load()),
        arrays=True,
        ids=ids,
    )


def score_chunks(
    uc: contract.UseCase,
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    model,
    version: str,
    arm: str,
    served_at: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[dict]:
    """``score_frame`` over slices of at most ``chunk_rows`` rows, one set of log columns each (one
    served_at for all): what ``prediction_writer.write_batch`` streams into one file in bounded memory.
    ``frames`` is one frame, or frames read one after the other (e.g. Parquet row batches): 10
    million rows with their features are ~1.6 GB in memory even with Arrow strings, so a batch that
    large is read as it is scored, never whole (bench/scale.py).

    The next slice's ids are hashed on a second thread while this one is scored and written (DuckDB
    hashes without Python's lock): hashed in line, pseudonyms cost 10 million rows ~20 s."""
    from concurrent.futures import ThreadPoolExecutor

    served_at = served_at or datetime.now(UTC)
    names = pseudonym.of(_settings.load())
    slices = (
        frame.iloc[first : first + chunk_rows]
        for frame in ([frames] if isinstance(frames, pd.DataFrame) else frames)
        for first in range(0, len(frame), chunk_rows)
    )

    with ThreadPoolExecutor(1, thread_name_prefix="pseudonyms") as pool:
        hashing = (  # a slice's hashing starts when the slice is taken from here
            (f, pool.submit(prediction_log.pseudonymised, uc, {c: f[c] for c in uc.keys}, names)) for f in slices
        )
        taken = next(hashing, None)
        while taken is not None:
            (frame, ids), taken = taken, next(hashing, None)  # the next slice's ids hash while this one scores
            yield score_frame(uc, frame, model, version, arm, served_at, ids.result())


def score_days(days: list[dt.date], cfg: _settings.Settings | None = None) -> dict:
    """Score curated days with every configured arm, each arm's version loaded once for all of them.

    One call for a run's days, not one task per day: a fresh task process pays Feast's store and
    the model load again (4.7 s a day in a mapped task against 1.4 s in one process, measured with
    bench/orchestration.py). A day that is not curated is skipped, saying why; the others go on.
    Raises ``ScoringError`` when there is no champion or no day could be scored."""
    cfg = cfg or _settings.load()
    uc = contract.current(cfg)
    models = []
    for arm, version in arms(cfg):
        loaded = live.load_version(cfg, version)
        models.append((arm, version, loaded.model.all_cores()))  # a task, not a single-threaded service worker
    out = {"days": [], "skipped": {}}
    for day in sorted(set(days)):
        try:
            frame = day_features(day)
        except ScoringError as reason:
            out["skipped"][day.isoformat()] = str(reason)
            continue
        scored = []
        for arm, version, model in models:
            sums = []  # the scores' sum per chunk: the mean without keeping the chunks
            chunks = score_chunks(uc, frame, model, version, arm)
            path = prediction_writer.write_batch(cfg, day, version, arm, _summing(chunks, uc.score, sums))
            scored.append(
                {
                    "arm": arm,
                    "version": version,
                    "rows": len(frame),
                    "file": path,
                    "mean_probability": round(float(sum(sums) / max(len(frame), 1)), 5),
                }
            )
        out["days"].append({"date": day.isoformat(), "rows": len(frame), "scored": scored})
    if not out["days"]:
        raise ScoringError("; ".join(out["skipped"].values()) or "no day to score")
    return out


def _summing(chunks, column: str, sums: list):
    for chunk in chunks:
        sums.append(float(np.sum(chunk[column])))
        yield chunk
