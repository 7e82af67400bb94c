"""Rewrites of the prediction log, each an explicit step of a DAG, never a side effect of reading:
compaction (the performance DAG, before its join), erasure (the erase DAG) and retention (the
housekeeping DAG).

Every rewrite lands its new file before the old ones go, so a reader sees every row at least once
(the reader dedups by request id and arm); a file written meanwhile was not listed and stays.
"""

from __future__ import annotations

import io
import uuid

from lifecycle import columnar, prediction_log, prediction_reader
from lifecycle import settings as _settings

COMPACT_AT = 16  # live files of one day that compaction merges into one


def compact(cfg: _settings.Settings | None = None, *, days: list | None = None) -> dict:
    """Merge the live files of each day folder (all days, or ``days``) holding ``COMPACT_AT`` or
    more into one: every flush of every serving process adds a file, and object-store listings and
    fetches cost per file. Batch files stay as they are. Returns {day: files merged}."""
    fs, base, found = prediction_log.listed(cfg or _settings.load(), days)
    merged = {}
    for day, files in sorted(found.items()):
        live = sorted(f for f in files if prediction_log.is_live(f))
        if len(live) < COMPACT_AT:
            continue
        try:
            blobs = fs.cat(live)
        except FileNotFoundError:  # another compaction took one: the next run merges what is left
            continue
        _replace(fs, f"{base}/{day}", live, prediction_reader.frame(blobs, live))
        merged[day.removeprefix("date=")] = len(live)
    return merged


def _replace(fs, folder: str, files: list[str], frame) -> None:
    """Replace ``files`` of one day folder with one file holding ``frame``'s rows, once each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame.drop_duplicates(["request_id", "arm"]), preserve_index=False), buf)
    prediction_log.put(fs, f"{folder}/compact-{uuid.uuid4().hex[:12]}.parquet", buf.getvalue())
    for f in files:
        try:
            fs.rm_file(f)
        except FileNotFoundError:  # another compaction took it
            pass


def erase(cfg: _settings.Settings | None, wanted: dict[str, set[str]]) -> dict[str, int]:
    """Remove every row whose column holds one of ``wanted[column]`` (pseudonyms), file by file:
    each file holding one is replaced under its own name by one without those rows (a PUT, or a
    rename), so a reader sees the old file or the new one. Returns {day: rows removed}."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = {c: v for c, v in wanted.items() if v}
    fs, _, found = prediction_log.listed(cfg or _settings.load())
    removed: dict[str, int] = {}
    for day, files in sorted(found.items()):
        for path in sorted(files):
            try:  # the key columns first: a file without the rows is read no further
                keys = pq.read_table(path, columns=[c for c in wanted if c in _names(fs, path)], filesystem=fs)
                if not pc.any(columnar.holding(keys, wanted)).as_py():
                    continue
                table = pq.read_table(path, filesystem=fs)  # the whole file, judged again as it is now
            except FileNotFoundError:  # compacted meanwhile: its rows are in the file that replaced it
                continue
            drop = columnar.holding(table, wanted)
            gone = pc.sum(drop).as_py() or 0
            if gone:
                buf = io.BytesIO()
                pq.write_table(table.filter(pc.invert(drop)), buf)
                prediction_log.put(fs, path, buf.getvalue())
                day_ = day.removeprefix("date=")
                removed[day_] = removed.get(day_, 0) + gone
    return removed


def _names(fs, path: str) -> set[str]:
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as f:
        return set(pq.read_schema(f).names)


def days(cfg: _settings.Settings | None = None) -> list:
    """The event days the log holds, oldest first."""
    import datetime as dt

    _, _, found = prediction_log.listed(cfg or _settings.load())
    return sorted(dt.date.fromisoformat(d.removeprefix("date=")) for d in found)


def drop_day(cfg: _settings.Settings | None, day) -> None:
    """Delete one event day of the log, every file of it."""
    cfg = cfg or _settings.load()
    fs, _ = prediction_log.filesystem(cfg)
    path = f"{prediction_log.folder(cfg)}/date={day.isoformat()}"
    if fs.exists(path):
        fs.rm(path, recursive=True)
