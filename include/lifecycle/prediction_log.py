"""The prediction log's layout and rows: every answered request and every shadow score, in the
lake's ``predictions`` zone as Parquet partitioned by the event's day
(``predictions/<model>/date=YYYY-MM-DD/``).

A row holds the request id; the event id and entity ids as pseudonyms (``lifecycle.pseudonym``:
keyed hashes, never the raw ids); the event time; the exact model inputs (``input_<name>``); the
answer (score, or the error that kept a model from answering); the version and arm that gave it;
when, how fast and from which source; for a live row the age of its stored features, whether they
were missing and, when asked for, the reasons it answered with. The README lists why each is kept.

Writers only ever add or replace whole files: the live service's journaled writer and the batch
writer (``prediction_writer``); readers dedup by ``request_id`` and arm (``prediction_reader``);
compaction, erasure and retention rewrite or remove files (``prediction_maintenance``).

The service imports nothing of Airflow, so the lake is opened here with fsspec (local files, or
S3 with the profile's endpoint and keys) rather than through ``ObjectStoragePath``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from urllib.parse import urlsplit

from lifecycle import settings as _settings

ZONE = "predictions"
EVENT_TIME = "event_timestamp"  # the event's time, whatever the use case names it
TIMESTAMPS = (EVENT_TIME, "served_at")
FEW_VALUES = ("model_version", "arm", "source")  # read as Arrow dictionaries, pandas categoricals


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


def id_columns(uc) -> tuple[str, ...]:
    """The columns the log keeps as pseudonyms: the event id and the entity ids."""
    return (uc.id, *uc.entities)


def pseudonymised(uc, part: dict, names, arrays: bool = True) -> dict:
    """The id columns of ``part`` as pseudonyms (``names``: ``pseudonym.Pseudonyms``): Arrow arrays
    for a batch's columns, lists for a live request's."""
    if arrays:  # an event id is one row's: hashed without looking for repeats
        return {c: names.array(part[c], distinct=c == uc.id) for c in id_columns(uc)}
    return {c: names.many(part[c]) for c in id_columns(uc)}


def is_live(path: str) -> bool:
    """A live writer's file (a flush, a replay or a compaction), not a batch score's."""
    return not os.path.basename(path).startswith("batch-")


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
    names,
    error: str | None = None,
    arrays: bool = False,
    feature_age_s=None,
    missing_features=None,
    reasons=None,
    ids: dict | None = None,
) -> dict:
    """Log rows as columns: the use case's id and entity keys from ``part`` (request columns) as
    pseudonyms (``names``: ``pseudonym.Pseudonyms``), the event time, the exact model ``inputs``,
    and the answer (``UseCase.score``, or the ``error`` that kept a model from answering). Live
    serving and batch scoring both build them here; the live service adds each row's
    ``feature_age_s`` (``lifecycle.live.OnlineFeatures``) and whether an entity had no stored
    features (``missing_features``): the watch's evidence; and for a row whose request asked for an
    explanation, the ``reasons`` it answered with (JSON, else null).

    ``request_ids`` are the live requests' ids, or for batch rows a prefix their event's pseudonym
    completes. Live requests get lists (the writer's buffer extends them). Batch scoring passes
    ``arrays``: the columns stay numpy and Arrow arrays, the constant ones Arrow repeats. A Python
    object per value costs ~30-60 bytes (10 million rows x 20 columns: many GB); the file written
    is the same (tests/unit/test_prediction_log.py compares the two). ``ids``: the id columns'
    pseudonyms when they were computed ahead (``pseudonymised``)."""
    ids = ids or pseudonymised(uc, part, names, arrays)
    if isinstance(request_ids, str):  # a batch row's: the prefix, then its event's pseudonym
        import pyarrow.compute as pc

        request_ids = pc.binary_join_element_wise(request_ids, ids[uc.id], "")
    k = len(request_ids)
    out = {"request_id": request_ids, **ids, EVENT_TIME: part[uc.time]}
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


def table(columns: dict):
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


def put(fs, path: str, data: bytes) -> None:
    """Whole files only: an object store's PUT is atomic; a local file is written, then renamed."""
    if "file" in fs.protocol:
        tmp = f"{os.path.dirname(path)}/_tmp-{os.path.basename(path)}"
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, data)


def listed(cfg: _settings.Settings, days: list | None = None):
    """(filesystem, folder, ``listing``) of the log as it is now: an object store's listing cache
    (s3fs keeps one per process) is dropped first, so files written since are seen."""
    fs, _ = filesystem(cfg)
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache()
    base = folder(cfg)
    return fs, base, listing(fs, base, days)


def listing(fs, base: str, days: list | None) -> dict[str, list[str]]:
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
