"""The prediction log: every answered request and every shadow score, in the lake's ``predictions``
zone as Parquet partitioned by the event's day (``predictions/<model>/date=YYYY-MM-DD/``).

This module holds the log's rows and files and its reader; the live service's writer, which
journals every answered request before it answers, is ``prediction_writer``. A writer only ever
adds files (one per day and flush, named by the writer and a sequence number); readers dedup by
``request_id`` and arm. Every flush of every
serving process adds a file per day, so a compacting read (the Airflow tasks that read the log)
merges a day's live files into one once there are ``COMPACT_AT`` of them: object-store listings
and fetches cost per file. Batch scoring writes one file per day, version and arm
(``batch-v<version>-<arm>.parquet``), replaced whole by a rerun.

The service imports nothing of Airflow, so the lake is opened here with fsspec (local files, or
S3 with the profile's endpoint and keys) rather than through ``ObjectStoragePath``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import tempfile
import uuid
from urllib.parse import urlsplit

import pandas as pd

from lifecycle import settings as _settings

ZONE = "predictions"
LOG = logging.getLogger(__name__)


def filesystem(cfg: _settings.Settings):
    """(fsspec filesystem, path of the lake root on it) for the configured lake."""
    import fsspec

    parts = urlsplit(cfg.lake_root)
    if parts.scheme in ("file", ""):
        return fsspec.filesystem("file"), parts.path
    if parts.scheme == "s3" and cfg.services is not None:
        svc = cfg.services
        fs = fsspec.filesystem(
            "s3",
            key=svc.s3_access_key,
            secret=svc.s3_secret_key,
            client_kwargs={"endpoint_url": svc.s3_endpoint_url, "region_name": "us-east-1"},
        )
        return fs, f"{parts.hostname}{parts.path}"  # s3://<conn id>@bucket/path: the bucket is the host
    raise _settings.SettingError(
        f"LIFECYCLE_LAKE_ROOT={cfg.lake_root!r}: the prediction log needs a file:// root, "
        "or s3:// in the scaleout profile"
    )


def folder(cfg: _settings.Settings) -> str:
    return f"{filesystem(cfg)[1].rstrip('/')}/{ZONE}/{cfg.model_name}"


EVENT_TIME = "event_timestamp"  # the event's time, whatever the use case names it
TIMESTAMPS = (EVENT_TIME, "served_at")


def rows(
    uc,
    request_ids,
    part: dict,
    inputs: dict,
    probs,
    version: str,
    arm: str,
    latency_ms: float,
    served_at: dt.datetime,
    source: str,
    error: str | None = None,
    arrays: bool = False,
    feature_age_s=None,
    missing_features=None,
    reasons=None,
) -> dict:
    """Log rows as columns: the use case's id and entity keys and the event time from ``part``
    (request columns), the exact model ``inputs``, and the answer (``UseCase.score``, or the
    ``error`` that kept a model from answering). Live serving and batch scoring both build them here;
    the live service adds each row's ``feature_age_s`` (``lifecycle.live.OnlineFeatures``) and
    whether an entity had no stored features (``missing_features``): the watch's evidence; and for a
    row whose request asked for an explanation, the ``reasons`` it answered with (JSON, else null).

    Live requests get lists (the writer's buffer extends them). Batch scoring passes ``arrays``: the
    columns stay numpy and Arrow arrays, the constant ones Arrow repeats. A Python object per value
    costs ~30-60 bytes (10 million rows x 20 columns: many GB); the file written is the same
    (tests/unit/test_prediction_log.py compares the two)."""
    k = len(request_ids)
    out = {"request_id": request_ids, **{c: part[c] for c in (uc.id, *uc.entities)}, EVENT_TIME: part[uc.time]}
    if arrays:
        import pyarrow as pa

        def same(value, type_=None):
            return pa.repeat(pa.scalar(value, type=type_), k)

        out.update({f"input_{c}": v for c, v in inputs.items()})
        out.update(
            {
                uc.score: probs,
                "model_version": same(version),
                "arm": same(arm),
                "latency_ms": same(float(latency_ms)),
                "served_at": same(served_at, pa.timestamp("us", tz="UTC")),
                "source": same(source),
            }
        )
        if error is not None:
            out["error"] = same(error)
        return out
    out.update({f"input_{c}": v.tolist() for c, v in inputs.items()})  # exactly what the model read
    out.update(
        {
            uc.score: probs.tolist(),
            "model_version": [version] * k,
            "arm": [arm] * k,
            "latency_ms": [latency_ms] * k,
            "served_at": [served_at] * k,
            "source": [source] * k,
        }
    )
    if error is not None:
        out["error"] = [error] * k
    if feature_age_s is not None:
        out["feature_age_s"] = [float("nan") if a is None else float(a) for a in feature_age_s]
    if missing_features is not None:
        out["missing_features"] = list(missing_features)
    if reasons is not None:
        out["reasons"] = [None if r is None else json.dumps(r) for r in reasons]
    return out


def _table(columns: dict):
    """An Arrow table of log columns (lists, numpy arrays, pandas Series or Arrow arrays); the two
    timestamps as microseconds in UTC whatever they came as."""
    import pyarrow as pa

    stamp = pa.timestamp("us", tz="UTC")

    def column(name, values):
        if name not in TIMESTAMPS:
            return values
        if isinstance(values, pa.Array | pa.ChunkedArray):
            return values.cast(stamp)
        return pa.array(values, type=stamp)

    return pa.table({c: column(c, v) for c, v in columns.items()})


def _put(fs, path: str, data: bytes) -> None:
    """Whole files only: an object store's PUT is atomic; a local file is written, then renamed."""
    if "file" in fs.protocol:
        tmp = f"{os.path.dirname(path)}/_tmp-{os.path.basename(path)}"
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, data)


def write_batch(cfg: _settings.Settings, day: dt.date, version: str, arm: str, columns) -> str:
    """Replace the batch file of (day, version, arm) with ``columns``: a rerun never duplicates.

    ``columns`` is one set of log columns (``rows``), or an iterable of them (chunks of a large
    batch: ``scoring.score_chunks``), written one Parquet row group after the other through a file
    on disk, so memory holds one chunk, never the whole file."""
    import pyarrow.parquet as pq

    fs, _ = filesystem(cfg)
    path = f"{folder(cfg)}/date={day.isoformat()}/batch-v{version}-{arm}.parquet"
    chunks = iter([columns] if isinstance(columns, dict) else columns)
    local = "file" in fs.protocol
    if local:
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{os.path.dirname(path)}/_tmp-{os.path.basename(path)}"
    else:
        handle, tmp = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
    try:
        first = _table(next(chunks))
        with pq.ParquetWriter(tmp, first.schema) as writer:
            writer.write_table(first)
            del first
            for chunk in chunks:
                writer.write_table(_table(chunk).cast(writer.schema))
        if local:  # whole files only: written, then renamed
            fs.mv(tmp, path)
        else:  # an object store's PUT (multipart for a large file) is atomic
            fs.put_file(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


FEW_VALUES = ("model_version", "arm", "source")  # read as Arrow dictionaries, pandas categoricals
COMPACT_AT = 16  # live files of one day that a compacting reader merges into one


def _listing(fs, base: str, days: list | None) -> dict[str, list[str]]:
    """``date=YYYY-MM-DD`` -> the Parquet files of that day (only the wanted days' folders are listed)."""
    if days is None:
        found = fs.glob(f"{base}/date=*/*.parquet")
    else:
        found = []
        for day in days:
            try:
                found += fs.ls(f"{base}/date={day.isoformat()}", detail=False)
            except FileNotFoundError:
                continue
    out: dict[str, list[str]] = {}
    for f in found:
        if f.endswith(".parquet") and not os.path.basename(f).startswith("_"):
            out.setdefault(f.rsplit("/", 2)[-2], []).append(f)
    return out


def _frame(blobs: dict[str, bytes], files: list[str]) -> pd.DataFrame:
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


def _day(fs, folder_: str, files: list[str], compact: bool, columns: list[str] | None) -> list:
    """A day folder's rows: its live files (merged into one first when ``compact`` and there are
    ``COMPACT_AT`` of them), then its batch files; frames, or Arrow tables of ``columns``."""
    live = sorted(f for f in files if not os.path.basename(f).startswith("batch-"))
    batch = sorted(f for f in files if f not in live)
    if compact and len(live) >= COMPACT_AT:
        blobs = fs.cat(live)  # every column: the merged file replaces them
        _compact(fs, folder_, live, _frame(blobs, live))
        if columns is not None:
            return [*(_columns(blobs[f], columns) for f in live), *(_columns(f, columns, fs) for f in batch)]
        return [_frame(blobs, live), _frame(fs.cat(batch), batch) if batch else pd.DataFrame()]
    if columns is not None:
        return [_columns(f, columns, fs) for f in [*live, *batch]]
    blobs = fs.cat([*live, *batch]) if live or batch else {}  # one concurrent fetch on S3
    return [_frame(blobs, live), _frame(blobs, batch)]


def first_rows(keys: list, prefer=None):
    """Positions (ascending) of the first row of each distinct combination of ``keys`` (Arrow string
    arrays, or integer numpy codes), a row where ``prefer`` is true before any other: a
    ``drop_duplicates`` on integer codes (Arrow's hashing, numpy's sort) that never turns millions
    of strings into Python objects."""
    import numpy as np
    import pyarrow.compute as pc

    codes = None  # one int64 code per row, built in place (10 million rows: 80 MB an array)
    for key in keys:
        if isinstance(key, np.ndarray):
            code, size = key, int(key.max(initial=0)) + 1
        else:
            encoded = (
                pc.dictionary_encode(key).combine_chunks() if hasattr(key, "chunks") else pc.dictionary_encode(key)
            )
            code = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64) + 1  # null: its own code
            size = len(encoded.dictionary) + 1
        if codes is None:
            codes = np.array(code, np.int64)  # a copy: the caller's array stays as it was
        else:
            codes *= size
            codes += code
        del code
    if codes is None or not len(codes):
        return np.arange(0)
    if prefer is not None:  # a preferred row sorts first within its combination
        codes *= 2
        codes += ~np.asarray(prefer, bool)
    order = np.argsort(codes, kind="stable")  # one sort (lexsort on two keys held ~2x the memory)
    ranked = codes[order]
    del codes
    if prefer is not None:
        ranked >>= 1
    first = np.ones(len(order), bool)
    first[1:] = ranked[1:] != ranked[:-1]
    del ranked
    out = order[first]
    del order
    out.sort()
    return out


def equals(column, value: str):
    """``column == value`` as a numpy bool array, for a string or a dictionary column (Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.equal(column, value).to_numpy(zero_copy_only=False)


def arrow_strings(type_):
    """pandas dtypes for an Arrow table's ``to_pandas``: strings stay Arrow-backed, dictionaries
    become categoricals, the rest numpy."""
    import pyarrow as pa

    return pd.ArrowDtype(type_) if pa.types.is_string(type_) or pa.types.is_large_string(type_) else None


def _compact(fs, folder_: str, files: list[str], frame: pd.DataFrame) -> None:
    """Replace the live ``files`` of one day folder with one file holding their rows. The new file
    lands before the old ones go, so a reader sees every row at least once (and dedups); a file
    written meanwhile was not listed and stays; two compactions at once only duplicate rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame.drop_duplicates(["request_id", "arm"]), preserve_index=False), buf)
    _put(fs, f"{folder_}/compact-{uuid.uuid4().hex[:12]}.parquet", buf.getvalue())
    for f in files:
        try:
            fs.rm_file(f)
        except FileNotFoundError:  # another compaction took it
            pass


def read(
    cfg: _settings.Settings | None = None,
    days: list | None = None,
    source: str | None = None,
    compact: bool = False,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The logged predictions (all days, or ``days``), one row per request id and arm. With
    ``compact``, a day holding ``COMPACT_AT`` or more live files has them merged into one on the
    way (every flush of every serving process adds a file; the batch files stay as they are).
    With ``columns``, only those come back, strings Arrow-backed, ``FEW_VALUES`` as categoricals
    (``read_table``)."""
    if columns is not None:
        return read_table(cfg, days, source, compact, columns).to_pandas(types_mapper=arrow_strings)
    frames = [f for f in _read(cfg, days, compact, None) if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if source is not None:
        frame = frame[frame["source"] == source]
    return frame.drop_duplicates(["request_id", "arm"], ignore_index=True)


def read_table(
    cfg: _settings.Settings | None,
    days: list | None,
    source: str | None,
    compact: bool,
    columns: list[str],
    by_request: bool = True,
):
    """``read`` of ``columns`` only, as one Arrow table: the memory-lean read of a performance join
    over millions of rows (files read column by column, day by day; duplicates dropped on codes).
    ``by_request=False`` leaves the duplicates of a request in (and ``request_id`` unread: 10
    million of them are ~300 MB, their hash as much again) for a caller that drops duplicates on a
    coarser key anyway: a request logged twice has the same event, version and arm."""
    import pyarrow as pa

    wanted = list(dict.fromkeys([*columns, *(["request_id", "arm"] if by_request else []), "source"]))
    tables = [t for t in _read(cfg, days, compact, wanted) if t.num_rows]
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    table = pa.concat_tables(tables, promote_options="default").unify_dictionaries()
    del tables
    if source is not None:
        table = table.filter(equals(table["source"], source))
    keep = first_rows([table["request_id"], table["arm"]]) if by_request else None
    table = table.select(columns)
    return table if keep is None or len(keep) == table.num_rows else table.take(keep)


def find(value: str, keys: list[str], cfg: _settings.Settings | None = None) -> pd.DataFrame:
    """Every logged row (each arm) with ``value`` in one of the ``keys`` columns (a request id, an
    event id): each day's key columns are read first, a day's whole rows only where one matched."""
    import pyarrow.compute as pc

    cfg = cfg or _settings.load()
    fs, _ = filesystem(cfg)
    found = []
    for day in sorted(_listing(fs, folder(cfg), None)):
        date = dt.date.fromisoformat(day.removeprefix("date="))
        table = read_table(cfg, [date], None, False, keys, by_request=False)
        if any(pc.any(pc.equal(table[k].cast("string"), value)).as_py() for k in keys if k in table.column_names):
            frame = read(cfg, days=[date])
            found.append(frame[frame[keys].astype(str).eq(value).any(axis=1)])
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def recent(cfg: _settings.Settings, since: dt.datetime, columns: list[str]) -> pd.DataFrame:
    """The live service's rows served at or after ``since`` (``columns`` of them, a column a file
    lacks as missing values), one per request id and arm. Only files written since then are read,
    whatever event day they are filed under (replayed or late traffic carries any event time)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, _ = filesystem(cfg)
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache()
    wanted = list(dict.fromkeys([*columns, "request_id", "arm", "served_at", "source"]))
    frames = []
    for path, info in fs.glob(f"{folder(cfg)}/date=*/*.parquet", detail=True).items():
        name = os.path.basename(path)
        if name.startswith(("_", "batch-")) or _modified(info) < since:
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


def _read(cfg: _settings.Settings | None, days: list | None, compact: bool, columns: list[str] | None) -> list:
    cfg = cfg or _settings.load()
    fs, _ = filesystem(cfg)
    base = folder(cfg)
    for attempt in range(5):
        if hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()
        listing = _listing(fs, base, days)
        try:
            return [
                f for day, files in sorted(listing.items()) for f in _day(fs, f"{base}/{day}", files, compact, columns)
            ]
        except FileNotFoundError:  # a compaction replaced a listed file: list again
            if attempt == 4:
                raise
    return []
