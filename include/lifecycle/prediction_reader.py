"""The prediction log's reader: the logged rows, one per request id and arm (a retried flush or a
compaction in progress can leave a row in two files), of all days or some, whole or only some
columns. Reading never changes the log: compaction is ``prediction_maintenance.compact``.
"""

from __future__ import annotations

import datetime as dt
import io
import os

import pandas as pd

from lifecycle import columnar, prediction_log, pseudonym
from lifecycle import settings as _settings
from lifecycle.prediction_log import FEW_VALUES


def frame(blobs: dict[str, bytes], files: list[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(io.BytesIO(blobs[f])) for f in sorted(files)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _columns(source, columns: list[str], fs=None):
    """Only ``columns`` of one log file, as an Arrow table: Parquet is columnar, so the others are
    neither fetched (ranges of the file) nor decoded, and a string is bytes in an Arrow buffer, not
    a Python object (~60 bytes more each): what lets a join over 10 million rows stay lean."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(source, bytes):
        source = pa.BufferReader(source)
    codes = [c for c in columns if c in FEW_VALUES]  # an int32 code each, not a string
    return pq.read_table(source, columns=columns, filesystem=fs, read_dictionary=codes)


def _day(fs, files: list[str], columns: list[str] | None) -> list:
    """A day folder's rows: its live files, then its batch files; frames, or Arrow tables of ``columns``."""
    live = sorted(f for f in files if prediction_log.is_live(f))
    batch = sorted(f for f in files if f not in live)
    if columns is not None:
        return [_columns(f, columns, fs) for f in [*live, *batch]]
    blobs = fs.cat([*live, *batch]) if live or batch else {}  # one concurrent fetch on S3
    return [frame(blobs, live), frame(blobs, batch)]


def read(
    cfg: _settings.Settings | None = None,
    *,
    days: list | None = None,
    source: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The logged predictions (all days, or ``days``), one row per request id and arm. With
    ``columns``, only those come back, strings Arrow-backed, ``FEW_VALUES`` as categoricals
    (``read_table``)."""
    if columns is not None:
        return read_table(cfg, columns=columns, days=days, source=source).to_pandas(types_mapper=columnar.arrow_strings)
    frames = [f for f in _read(cfg, days, None) if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if source is not None:
        frame = frame[frame["source"] == source]
    return frame.drop_duplicates(["request_id", "arm"], ignore_index=True)


def read_table(
    cfg: _settings.Settings | None,
    *,
    columns: list[str],
    days: list | None = None,
    source: str | None = None,
    by_request: bool = True,
):
    """``read`` of ``columns`` only, as one Arrow table: the memory-lean read of a performance join
    over millions of rows (files read column by column, day by day; duplicates dropped on codes).
    ``by_request=False`` leaves the duplicates of a request in (and ``request_id`` unread: 10
    million of them are ~300 MB, their hash as much again) for a caller that drops duplicates on a
    coarser key anyway: a request logged twice has the same event, version and arm."""
    import pyarrow as pa

    wanted = list(dict.fromkeys([*columns, *(["request_id", "arm"] if by_request else []), "source"]))
    tables = [t for t in _read(cfg, days, wanted) if t.num_rows]
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    table = pa.concat_tables(tables, promote_options="default").unify_dictionaries()
    del tables
    if source is not None:
        table = table.filter(columnar.equals(table["source"], source))
    keep = columnar.first_rows([table["request_id"], table["arm"]]) if by_request else None
    table = table.select(columns)
    return table if keep is None or len(keep) == table.num_rows else table.take(keep)


def find(value: str, cfg: _settings.Settings | None = None) -> pd.DataFrame:
    """Every logged row (each arm) whose request id is ``value``, or whose event id is (the log
    keeps its pseudonym): each day's two key columns are read first, a day's whole rows only where
    one matched."""
    import pyarrow.compute as pc

    from lifecycle import contract

    cfg = cfg or _settings.load()
    uc = contract.current(cfg)
    wanted = {"request_id": value, uc.id: pseudonym.of(cfg).one(value)}
    fs, _ = prediction_log.filesystem(cfg)
    found = []
    for day in sorted(prediction_log.listing(fs, prediction_log.folder(cfg), None)):
        date = dt.date.fromisoformat(day.removeprefix("date="))
        table = read_table(cfg, columns=list(wanted), days=[date], by_request=False)
        if any(pc.any(pc.equal(table[k].cast("string"), v)).as_py() for k, v in wanted.items()):
            frame = read(cfg, days=[date])
            found.append(frame[(frame["request_id"] == value) | (frame[uc.id] == wanted[uc.id])])
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def recent(cfg: _settings.Settings, since: dt.datetime, columns: list[str]) -> pd.DataFrame:
    """The live service's rows served at or after ``since`` (``columns`` of them, a column a file
    lacks as missing values), one per request id and arm. Only files written since then are read,
    whatever event day they are filed under (replayed or late traffic carries any event time)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, _ = prediction_log.filesystem(cfg)
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache()
    wanted = list(dict.fromkeys([*columns, "request_id", "arm", "served_at", "source"]))
    frames = []
    for path, info in fs.glob(f"{prediction_log.folder(cfg)}/date=*/*.parquet", detail=True).items():
        name = os.path.basename(path)
        if name.startswith("_") or not prediction_log.is_live(name) or _modified(info) < since:
            continue
        try:
            file = pq.ParquetFile(pa.BufferReader(fs.cat_file(path)))
        except FileNotFoundError:  # a compaction replaced it: its rows are in the file it wrote
            continue
        names = set(file.schema_arrow.names)  # a file from before a column was logged lacks it
        frames.append(file.read(columns=[c for c in wanted if c in names]).to_pandas())
    if not frames:
        return pd.DataFrame(columns=wanted)
    frame = pd.concat(frames, ignore_index=True).reindex(columns=wanted)
    frame = frame[(frame["source"] == cfg.serving_source) & (pd.to_datetime(frame["served_at"], utc=True) >= since)]
    return frame.drop_duplicates(["request_id", "arm"], ignore_index=True)


def _modified(info: dict) -> dt.datetime:
    """When a listed file was last written (a local file's mtime, an object's LastModified)."""
    if "mtime" in info:
        return dt.datetime.fromtimestamp(info["mtime"], dt.UTC)
    stamp = info.get("LastModified") or info.get("last_modified")
    if isinstance(stamp, dt.datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    return dt.datetime.max.replace(tzinfo=dt.UTC)  # unknown: read it


def _read(cfg: _settings.Settings | None, days: list | None, columns: list[str] | None) -> list:
    cfg = cfg or _settings.load()
    for attempt in range(5):
        fs, _, listing = prediction_log.listed(cfg, days)
        try:
            return [f for _, files in sorted(listing.items()) for f in _day(fs, files, columns)]
        except FileNotFoundError:  # a compaction or an erasure replaced a listed file: list again
            if attempt == 4:
                raise
    return []
