"""The prediction log's writers: the live service's, through which an answered request reaches the
lake even when its serving process is killed right after answering; and batch scoring's
(``write_batch``), one file per day, version and arm, replaced whole by a rerun.

``append`` writes the rows to a local journal before the service answers: one length-prefixed
pickle record per call, one ``write`` to a segment file opened for appending (what the OS accepted
survives the process, however it ends; no fsync per request, so not a lost disk: the cost is in
bench/serving.py). Every ``LIFECYCLE_PREDICTION_FLUSH_SECONDS`` a thread seals the segment and
writes its rows to the lake as one Parquet file per event day, named by the writer and the
segment's number, then deletes the segment; ``close()`` (the service calls it on SIGTERM) does the
same for what is left, and replays. A failed write keeps the sealed segment for the next flush, under the same
file names: a retry never duplicates, and nothing is held in memory meanwhile.

A writer holds an exclusive ``flock`` on ``<writer>.lock`` in the journal folder while it lives;
the OS releases it when the process dies. At start and at every flush a writer replays the
segments of the writers whose lock it can take (older than ``SETTLE_SECONDS``, so a writer that
is starting is never taken for dead): their rows go to the lake under the dead writer's file
names. Readers dedup by request id and arm, so rows a writer wrote just before it died count once.
The journal is on the serving host's disk: ``<state>/serving/journal/<model>/``.

The service imports nothing of Airflow: the lake is reached through ``prediction_log.filesystem``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import logging
import os
import pickle
import socket
import struct
import tempfile
import threading
import time
import uuid
from pathlib import Path

from lifecycle import prediction_log
from lifecycle import settings as _settings

LOG = logging.getLogger(__name__)
HEADER = struct.Struct("<Q")  # each record: its length, then the pickled columns
SETTLE_SECONDS = 10.0
OPEN, SEALED, BAD = ".open", ".sealed", ".bad"


class BadSegment(ValueError):
    """A journal segment whose rows cannot be read or typed: set aside as ``.bad``, never retried."""


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


def records(path: Path) -> tuple[dict[str, list], int]:
    """A segment's rows as columns; a record cut short (the process died inside its write, before
    the request was answered) ends the segment."""
    data = path.read_bytes()
    columns: dict[str, list] = {}
    rows, at = 0, 0
    while at + HEADER.size <= len(data):
        (size,) = HEADER.unpack_from(data, at)
        if at + HEADER.size + size > len(data):
            break
        rows = _extend(columns, rows, pickle.loads(data[at + HEADER.size : at + HEADER.size + size]))  # noqa: S301 (this host's own journal)
        at += HEADER.size + size
    return columns, rows


class PredictionLog:
    """Journaled, append-only writer of prediction rows (one instance per serving process)."""

    def __init__(self, cfg: _settings.Settings | None = None):
        self.cfg = cfg or _settings.load()
        self.fs, _ = prediction_log.filesystem(self.cfg)
        self.base = prediction_log.folder(self.cfg)
        self.journal = self.cfg.state_dir / "serving" / "journal" / self.cfg.model_name
        self.journal.mkdir(parents=True, exist_ok=True)
        self.writer = f"{socket.gethostname().replace('.', '_')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lockfile = os.open(self.journal / f"{self.writer}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(self._lockfile, fcntl.LOCK_EX)  # held until this process ends, however it ends
        self._seq = 0
        self._segment = self._open()
        self._buffered = 0  # rows in the open segment
        self._writing = 0  # rows in sealed segments not yet in the lake
        self._lock = threading.Lock()  # held for a journal write or a seal, never during a lake write
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.logged_rows = self.replayed_rows = self.failed_flushes = self.bad_segments = 0
        self._sealed: dict[int, int] = {}  # this writer's sealed segments not yet in the lake: seq -> rows
        self.last_error: str | None = None
        self._closed = False

    def _path(self, writer: str, seq: int, state: str) -> Path:
        return self.journal / f"{writer}.{seq:06d}{state}"

    def _open(self):
        return open(self._path(self.writer, self._seq, OPEN), "ab", buffering=0)  # noqa: SIM115 (kept open)

    def append(self, chunk: dict[str, list]) -> None:
        """Journal rows given as columns of equal length (``request_id``, ``EVENT_TIME`` and
        ``served_at`` as timezone-aware datetimes, anything else Arrow can type); on return they
        survive this process."""
        data = pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
        record = memoryview(HEADER.pack(len(data)) + data)
        with self._lock:
            if self._closed:
                raise RuntimeError("the prediction log is closed: this row would not be written")
            while record:
                record = record[self._segment.write(record) :]
            self._buffered += len(chunk["request_id"])

    def start(self) -> PredictionLog:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        self.replay()
        while not self._stop.wait(self.cfg.prediction_flush_seconds):
            self.flush()
            self.replay()

    def flush(self) -> int:
        """Seal the open segment and write every sealed one to the lake, oldest first; returns the
        rows written (a failed write keeps its segment for the next flush, and stops this one)."""
        with self._flushing:
            with self._lock:
                if self._buffered:
                    self._segment.close()
                    self._path(self.writer, self._seq, OPEN).rename(self._path(self.writer, self._seq, SEALED))
                    self._sealed[self._seq] = self._buffered
                    self._seq += 1
                    self._segment = self._open()
                    self._writing += self._buffered
                    self._buffered = 0
            written = 0
            for path in sorted(self.journal.glob(f"{self.writer}.*{SEALED}")):
                seq = int(path.name.rsplit(".", 2)[-2])
                try:
                    self._publish(self.writer, path)
                except BadSegment:  # rows no retry can write: set aside, never blocking the ones after
                    with self._lock:
                        self._writing -= self._sealed.pop(seq, 0)
                        self.bad_segments += 1
                    continue
                except Exception as err:  # storage unreachable: the segment stays, say why
                    with self._lock:
                        self.failed_flushes += 1
                        self.last_error = f"{type(err).__name__}: {err}"
                    LOG.warning("prediction log flush failed (kept in the journal): %s", self.last_error)
                    break
                with self._lock:
                    rows = self._sealed.pop(seq, 0)
                    self._writing -= rows
                    self.logged_rows += rows
                    self.last_error = None
                written += rows
            return written

    def _publish(self, writer: str, path: Path) -> int:
        """A segment's rows into the lake (one file per event day), then the segment goes. Rows
        that cannot be read or typed raise ``BadSegment`` (the segment is renamed ``.bad``)."""
        import pyarrow.parquet as pq

        seq = int(path.name.rsplit(".", 2)[-2])
        try:
            columns, rows = records(path)
            table = prediction_log.table(columns) if rows else None
            days: dict[dt.date, list[int]] = {}
            for i, t in enumerate(columns.get(prediction_log.EVENT_TIME, [])):
                days.setdefault(t.astimezone(dt.UTC).date(), []).append(i)
        except Exception as err:
            bad = path.with_name(path.name.rsplit(".", 1)[0] + BAD)
            path.rename(bad)
            LOG.error(
                "prediction log segment %s cannot be written (%s: %s): kept as %s", path, type(err).__name__, err, bad
            )
            raise BadSegment(f"{path.name}: {type(err).__name__}: {err}") from err
        if rows:
            for day, idx in sorted(days.items()):
                buf = io.BytesIO()
                pq.write_table(table if len(idx) == rows else table.take(idx), buf)
                name = f"{self.base}/date={day.isoformat()}/{writer}-{seq:06d}.parquet"
                prediction_log.put(self.fs, name, buf.getvalue())
        path.unlink()
        return rows

    def replay(self) -> int:
        """Write the segments of dead writers (a killed serving process) to the lake; returns their rows."""
        replayed = bad = 0  # rows, segments
        for lock in sorted(self.journal.glob("*.lock")):
            writer = lock.name.removesuffix(".lock")
            if writer == self.writer:
                continue
            try:
                if time.time() - lock.stat().st_mtime < SETTLE_SECONDS:
                    continue
                fd = os.open(lock, os.O_WRONLY)
            except FileNotFoundError:  # another writer replayed it meanwhile
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # alive
                    continue
                segments = [*self.journal.glob(f"{writer}.*{OPEN}"), *self.journal.glob(f"{writer}.*{SEALED}")]
                for path in sorted(segments, key=lambda p: p.name.rsplit(".", 2)[-2]):
                    try:
                        replayed += self._publish(writer, path)
                    except BadSegment:
                        bad += 1
                lock.unlink(missing_ok=True)
            except Exception as err:  # storage unreachable: the dead writer's segments wait for the next try
                LOG.warning("prediction log replay of %s failed: %s", writer, err)
            finally:
                os.close(fd)
        with self._lock:
            self.replayed_rows += replayed
            self.bad_segments += bad
        return replayed

    def close(self, timeout: float = 30.0) -> None:
        """Stop the flush thread and write what is left (retrying until ``timeout``); what still
        cannot be written stays in the journal for the next writer's replay."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            self._closed = True  # a row appended from now on raises: none is accepted unwritten
        deadline = time.monotonic() + timeout
        while True:
            self.flush()
            if not self._writing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.replay()  # a sibling killed since the last flush: the last worker to stop leaves no journal
        with self._lock:
            self._segment.close()
            if not self._writing and not self._buffered:
                self._path(self.writer, self._seq, OPEN).unlink(missing_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    (self.journal / f"{self.writer}.lock").unlink()
        os.close(self._lockfile)  # what is left is a dead writer's journal now: the next writer replays it

    def status(self) -> dict:
        """The counters as of one instant: every journaled row is in exactly one of logged,
        writing (sealed, not yet in the lake) and buffered (the open segment)."""
        with self._lock:
            return {
                "writer": self.writer,
                "logged_rows": self.logged_rows,
                "writing_rows": self._writing,
                "buffered_rows": self._buffered,
                "replayed_rows": self.replayed_rows,
                "bad_segments": self.bad_segments,  # set aside as .bad (rows that cannot be read), logged as errors
                "failed_flushes": self.failed_flushes,
                "last_error": self.last_error,
                "flush_seconds": self.cfg.prediction_flush_seconds,
            }


def write_batch(cfg: _settings.Settings, day: dt.date, version: str, arm: str, columns) -> str:
    """Replace the batch file of (day, version, arm) with ``columns``: a rerun never duplicates.

    ``columns`` is one set of log columns (``rows``), or an iterable of them (chunks of a large
    batch: ``scoring.score_chunks``), written one Parquet row group after the other through a file
    on disk, so memory holds one chunk, never the whole file."""
    import pyarrow.parquet as pq

    fs, _ = prediction_log.filesystem(cfg)
    path = f"{prediction_log.folder(cfg)}/date={day.isoformat()}/batch-v{version}-{arm}.parquet"
    chunks = iter([columns] if isinstance(columns, dict) else columns)
    local = "file" in fs.protocol
    if local:
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{os.path.dirname(path)}/_tmp-{os.path.basename(path)}"
    else:
        handle, tmp = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
    try:
        first = prediction_log.table(next(chunks))
        with pq.ParquetWriter(tmp, first.schema) as writer:
            writer.write_table(first)
            del first
            for chunk in chunks:
                writer.write_table(prediction_log.table(chunk).cast(writer.schema))
        if local:  # whole files only: written, then renamed
            fs.mv(tmp, path)
        else:  # an object store's PUT (multipart for a large file) is atomic
            fs.put_file(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
