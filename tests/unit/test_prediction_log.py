"""The prediction log on local files: flushes add files, a compacting read merges them and loses nothing."""

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from lifecycle import contract, prediction_log, settings

DAYS = [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]


def _chunk(n: int, arm: str = "champion", source: str = "live", days: list = DAYS) -> dict[str, list]:
    """``n`` rows whose event days take turns over ``days``."""
    ids = [uuid.uuid4().hex for _ in range(n)]
    part = {
        "transaction_id": ids,
        "card_id": ["c"] * n,
        "merchant_id": ["m"] * n,
        "event_timestamp": [dt.datetime.combine(days[i % len(days)], dt.time(12), dt.UTC) for i in range(n)],
    }
    return prediction_log.rows(
        contract.current(),
        ids,
        part,
        {"amount": np.arange(n, dtype=float)},
        np.full(n, 0.1),
        "1",
        arm,
        3.0,
        dt.datetime.now(dt.UTC),
        source,
    )


def _files(day: dt.date) -> list[str]:
    return sorted(p.name for p in (Path(prediction_log.folder(settings.load())) / f"date={day}").iterdir())


def _flushed(log: prediction_log.PredictionLog, flushes: int, rows: int) -> list[str]:
    ids = []
    for _ in range(flushes):
        chunk = _chunk(rows)
        ids += chunk["request_id"]
        log.append(chunk)
        log.flush()
    return ids


def test_a_compacting_read_merges_a_days_flushes_into_one_file_and_keeps_every_row(state):
    cfg = settings.load()
    log = prediction_log.PredictionLog(cfg)
    ids = _flushed(log, prediction_log.COMPACT_AT, 5)
    log.append(_chunk(3))  # the same request logged twice (a retried flush) counts once
    again = {k: v[:1] for k, v in _chunk(1).items()} | {"request_id": [ids[0]]}
    log.append(again)
    log.flush()
    prediction_log.write_batch(cfg, DAYS[0], "1", "champion", _chunk(4, source="batch", days=DAYS[:1]))
    before = prediction_log.read(cfg)
    assert len(_files(DAYS[0])) == prediction_log.COMPACT_AT + 2  # one per flush, and the batch file

    compacted = prediction_log.read(cfg, compact=True)
    pd.testing.assert_frame_equal(
        compacted.sort_values(["request_id", "arm"], ignore_index=True),
        before.sort_values(["request_id", "arm"], ignore_index=True),
        check_like=True,
    )
    assert len(before) == len(ids) + 3 + 4 and set(ids) <= set(before["request_id"])
    for day in DAYS:
        live = [f for f in _files(day) if not f.startswith("batch-")]
        assert len(live) == 1 and live[0].startswith("compact-")
    assert "batch-v1-champion.parquet" in _files(DAYS[0])
    assert len(prediction_log.read(cfg, days=[DAYS[1]])) == len(before[before["event_timestamp"].dt.date == DAYS[1]])


def test_a_day_with_few_files_is_left_alone_and_a_plain_read_never_writes(state):
    cfg = settings.load()
    log = prediction_log.PredictionLog(cfg)
    _flushed(log, prediction_log.COMPACT_AT, 2)
    files = _files(DAYS[0])
    prediction_log.read(cfg)
    assert _files(DAYS[0]) == files
    log.append(_chunk(2))
    log.flush()
    prediction_log.read(cfg, compact=True)
    prediction_log.read(cfg, compact=True)  # one compact file and no new flush: nothing to merge
    assert [f.split("-")[0] for f in _files(DAYS[0])] == ["compact"]


def test_a_file_removed_between_listing_and_reading_is_listed_again(state, monkeypatch):
    cfg = settings.load()
    log = prediction_log.PredictionLog(cfg)
    ids = _flushed(log, 3, 4)
    real = prediction_log._listing
    calls = []

    def listing_then_compaction(fs, base, days):
        found = real(fs, base, days)
        calls.append(found)
        if len(calls) == 1:  # another reader compacts right after this one listed
            day, files = next(iter(found.items()))
            prediction_log._compact(fs, f"{base}/{day}", files, prediction_log._frame(fs.cat(files), files))
        return found

    monkeypatch.setattr(prediction_log, "_listing", listing_then_compaction)
    assert set(prediction_log.read(cfg)["request_id"]) == set(ids) and len(calls) == 2
