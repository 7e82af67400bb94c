"""The prediction log: every answered request and every shadow score, in the lake's ``predictions``
zone as Parquet partitioned by the event's day (``predictions/<model>/date=YYYY-MM-DD/``).

A writer buffers rows in memory (nothing touches storage on the request path) and a thread
flushes them every LIFECYCLE_PREDICTION_FLUSH_SECONDS as one new file per day, named by the
writer and a sequence number; ``close()`` (the service calls it on SIGTERM) flushes what is left.
A crash loses at most the unflushed buffer. A failed write keeps its rows for the next flush.
A writer only ever adds files; readers dedup by ``request_id`` and arm. Every flush of every
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
import itertools
import logging
import os
import socket
import threading
import time
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
    request_ids: list,
    part: dict,
    inputs: dict,
    probs,
    version: str,
    arm: str,
    latency_ms: float,
    served_at: dt.datetime,
    source: str,
    error: str | None = None,
) -> dict[str, list]:
    """Log rows as columns: the use case's id and entity keys and the event time from ``part``
    (request columns), the exact model ``inputs``, and the answer (``UseCase.score``, or the
    ``error`` that kept a model from answering). Live serving and batch scoring both build them here."""
    k = len(request_ids)
    out = {"request_id": request_ids, **{c: part[c] for c in (uc.id, *uc.entities)}, EVENT_TIME: part[uc.time]}
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
    return out


def _table(columns: dict[str, list]):
    import pyarrow as pa

    return pa.table(
        {c: pa.array(v, type=pa.timestamp("us", tz="UTC")) if c in TIMESTAMPS else v for c, v in columns.items()}
    )


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


def write_batch(cfg: _settings.Settings, day: dt.date, version: str, arm: str, columns: dict[str, list]) -> str:
    """Replace the batch file of (day, version, arm) with ``columns``: a rerun never duplicates."""
    import pyarrow.parquet as pq

    fs, _ = filesystem(cfg)
    path = f"{folder(cfg)}/date={day.isoformat()}/batch-v{version}-{arm}.parquet"
    buf = io.BytesIO()
    pq.write_table(_table(columns), buf)
    _put(fs, path, buf.getvalue())
    return path


def _extend(columns: dict[str, list], rows: int, chunk: dict[str, list]) -> int:
    """Append ``chunk`` to the column buffer holding ``rows`` rows; a column one side lacks is None."""
    added = len(chunk["request_id"]) if chunk else 0
    for name, values in chunk.items():
        if name not in columns:
            columns[name] = [None] * rows
        columns[name].extend(values)
    for col in columns.values():
        if len(col) < rows + added:
            col.extend([None] * (rows + added - len(col)))
    return rows + added


class PredictionLog:
    """Buffered, append-only writer of prediction rows (one instance per serving process)."""

    def __init__(self, cfg: _settings.Settings | None = None, max_buffered_rows: int = 2_000_000):
        self.cfg = cfg or _settings.load()
        self.fs, _ = filesystem(self.cfg)
        self.base = folder(self.cfg)
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.max_buffered_rows = max_buffered_rows
        self._columns: dict[str, list] = {}  # the buffer, column-wise: a flush hands it to Arrow as is
        self._buffered = 0
        self._lock = threading.Lock()  # held for list operations only, never during I/O
        self._flushing = threading.Lock()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.logged_rows = self.dropped_rows = self.failed_flushes = 0
        self.last_error: str | None = None

    def append(self, chunk: dict[str, list]) -> None:
        """Queue rows given as columns of equal length (``request_id``, ``EVENT_TIME`` and
        ``served_at`` as timezone-aware datetimes, anything else Arrow can type)."""
        with self._lock:
            self._buffered = _extend(self._columns, self._buffered, chunk)
            if self._buffered > self.max_buffered_rows:  # storage down for long: the oldest rows go
                extra = self._buffered - self.max_buffered_rows
                for col in self._columns.values():
                    del col[:extra]
                self._buffered -= extra
                self.dropped_rows += extra

    def start(self) -> PredictionLog:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.prediction_flush_seconds):
            self.flush()

    def flush(self) -> int:
        """Write everything buffered; returns the rows written (0 when a write failed: kept for later)."""
        with self._flushing:
            with self._lock:
                columns, rows, self._columns, self._buffered = self._columns, self._buffered, {}, 0
            if not rows:
                return 0
            try:
                self._write(columns, rows)
            except Exception as err:  # storage unreachable: keep the rows, say why
                with self._lock:
                    newer, self._columns = self._columns, columns
                    self._buffered = _extend(self._columns, rows, newer)
                self.failed_flushes += 1
                self.last_error = f"{type(err).__name__}: {err}"
                LOG.warning("prediction log flush failed (rows kept for the next flush): %s", self.last_error)
                return 0
            self.logged_rows += rows
            self.last_error = None
            return rows

    def _write(self, columns: dict[str, list], rows: int) -> None:
        import pyarrow.parquet as pq

        table = _table(columns)
        days: dict[dt.date, list[int]] = {}
        for i, t in enumerate(columns[EVENT_TIME]):
            days.setdefault(t.astimezone(dt.UTC).date(), []).append(i)
        seq = next(self._seq)
        for day, idx in sorted(days.items()):
            buf = io.BytesIO()
            pq.write_table(table if len(idx) == rows else table.take(idx), buf)
            _put(self.fs, f"{self.base}/date={day.isoformat()}/{self.writer}-{seq:06d}.parquet", buf.getvalue())

    def close(self, timeout: float = 30.0) -> None:
        """Stop the flush thread and write what is left (retrying until ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self._buffered and time.monotonic() < deadline:
            if not self.flush():
                time.sleep(0.5)

    def status(self) -> dict:
        return {
            "writer": self.writer,
            "logged_rows": self.logged_rows,
            "buffered_rows": self._buffered,
            "dropped_rows": self.dropped_rows,
            "failed_flushes": self.failed_flushes,
            "last_error": self.last_error,
            "flush_seconds": self.cfg.prediction_flush_seconds,
        }


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
    cfg: _settings.Settings | None = None, days: list | None = None, source: str | None = None, compact: bool = False
) -> pd.DataFrame:
    """The logged predictions (all days, or ``days``), one row per request id and arm. With
    ``compact``, a day holding ``COMPACT_AT`` or more live files has them merged into one on the
    way (every flush of every serving process adds a file; the batch files stay as they are)."""
    cfg = cfg or _settings.load()
    fs, _ = filesystem(cfg)
    base = folder(cfg)
    for attempt in range(5):
        if hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()
        listing = _listing(fs, base, days)
        try:  # one concurrent fetch on S3
            blobs = fs.cat([f for files in listing.values() for f in files]) if listing else {}
            break
        except FileNotFoundError:  # a compaction replaced a listed file: list again
            if attempt == 4:
                raise
    frames = []
    for day, files in sorted(listing.items()):
        live = [f for f in files if not os.path.basename(f).startswith("batch-")]
        live_rows = _frame(blobs, live)
        if compact and len(live) >= COMPACT_AT:
            _compact(fs, f"{base}/{day}", live, live_rows)
        frames += [live_rows, _frame(blobs, [f for f in files if f not in live])]
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if source is not None:
        frame = frame[frame["source"] == source]
    return frame.drop_duplicates(["request_id", "arm"], ignore_index=True)
