"""The data lake behind Airflow's ObjectStoragePath, so a ``file://`` or ``s3://`` root is one setting.

A partition is ``<zone>/<dataset>/date=YYYY-MM-DD/`` holding data files and ``_manifest.json``,
written last: readers only see partitions whose manifest exists, and a failed write leaves no
partial partition with a manifest behind (files are staged, then moved in, the manifest last).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid

import pandas as pd
from airflow.sdk import ObjectStoragePath

from lifecycle import settings as _settings

ZONES = (
    "landing",
    "raw",
    "curated",
    "quarantine",
    "features",
    "training",
    "reports",
    "deployments",
    "alerts",
    "erasures",
    "housekeeping",
)
MANIFEST = "_manifest.json"
STAGING = "_staging-"  # a publish's folder beside its partition until the files move in


def root() -> ObjectStoragePath:
    """The lake root, with the filesystem's listing cache dropped: s3fs caches listings per process,
    so a long-lived reader (the demo, the reports plugin) would not see partitions written since."""
    path = ObjectStoragePath(_settings.load().lake_root)
    path.fs.invalidate_cache()
    return path


def zone(name: str) -> ObjectStoragePath:
    """A zone of the lake; ``landing`` is ``LIFECYCLE_LANDING_ROOT`` (by default the lake's own
    ``landing/``): upstream may deliver into a bucket of its own, read through its Airflow connection."""
    if name not in ZONES:
        raise ValueError(f"lake zone {name!r} is not one of {', '.join(ZONES)}")
    if name == "landing":
        path = ObjectStoragePath(_settings.load().landing_root)
        path.fs.invalidate_cache()
        return path
    return root() / name


def local_path(path: ObjectStoragePath) -> str:
    """The path string libraries like Feast and GX take (``/abs`` for file://, ``s3://b/k`` for S3:
    no connection id, which ``str()`` would keep)."""
    return path.path if path.protocol in ("file", "local", "") else f"{path.protocol}://{path.path}"


def landing_file(dataset: str, day: dt.date) -> ObjectStoragePath:
    return zone("landing") / dataset / f"{day.isoformat()}.csv"


def partition(zone_name: str, dataset: str, day: dt.date) -> ObjectStoragePath:
    return zone(zone_name) / dataset / f"date={day.isoformat()}"


def parquet_bytes(data) -> bytes:
    """A pandas frame (without its index) or an Arrow table as Parquet file bytes."""
    buf = io.BytesIO()
    if isinstance(data, pd.DataFrame):
        data.to_parquet(buf, index=False)
    else:
        import pyarrow.parquet as pq

        pq.write_table(data, buf)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish(dest: ObjectStoragePath, files: dict[str, bytes], manifest: dict) -> None:
    """Replace partition ``dest`` with ``files`` and ``manifest``, all or nothing.

    The old manifest goes first (the partition counts as incomplete from then on: ``dates`` and
    ``read_range`` leave it out), each file then replaces its old version by a rename (atomic on a
    POSIX file system; a copy to the same key on S3), files the new version does not have are
    removed, and the new manifest comes last. A reader that lists the partition meanwhile (Feast's
    point-in-time join, a score run beside a features run) finds each file, old or new."""
    staging = dest.parent / f"{STAGING}{dest.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        remove(dest / MANIFEST)
        dest.mkdir(parents=True, exist_ok=True)
        for name in files:
            (staging / name).rename(dest / name)
        for child in dest.iterdir():
            if child.name not in files:
                remove(child)
        (staging / MANIFEST).rename(dest / MANIFEST)  # last: it marks the partition complete
    finally:
        remove(staging)


def remove(path: ObjectStoragePath) -> None:
    if path.exists():
        if path.is_dir():
            for child in path.iterdir():
                remove(child)
            if path.exists():  # an object store has no empty folders: the prefix went with its last key
                path.rmdir()
        else:
            path.unlink()


def manifest(part: ObjectStoragePath) -> dict | None:
    m = part / MANIFEST
    return json.loads(m.read_text()) if m.exists() else None


def dates(zone_name: str, dataset: str) -> list[dt.date]:
    """Complete partitions (manifest present), oldest first."""
    base = zone(zone_name) / dataset
    if not base.exists():
        return []
    found = []
    for child in base.iterdir():
        if child.name.startswith("date=") and (child / MANIFEST).exists():
            found.append(dt.date.fromisoformat(child.name[5:]))
    return sorted(found)


def pending(source: tuple[str, str], target: tuple[str, str], key: str) -> list[dt.date]:
    """Days of ``source`` (zone, dataset) whose ``target`` partition is missing or was made from
    other bytes: the target manifest's ``key`` differs from the source's ``data_sha256``."""
    days = []
    for day in dates(*source):
        made = manifest(partition(*target, day))
        if made is None or made.get(key) != manifest(partition(*source, day)).get("data_sha256"):
            days.append(day)
    return days


def read_parquet(
    part: ObjectStoragePath, name: str = "data.parquet", columns: list[str] | None = None, dtype_backend=None
) -> pd.DataFrame:
    """One data file of a partition; with ``columns`` only those are read (Parquet is columnar:
    the others are never decoded); ``dtype_backend="pyarrow"`` keeps strings in Arrow buffers
    rather than one Python object each (millions of ids)."""
    with (part / name).open("rb") as f:
        return pd.read_parquet(f, columns=columns, **({"dtype_backend": dtype_backend} if dtype_backend else {}))


def partitions(zone_name: str, dataset: str, first: dt.date, last: dt.date) -> list[ObjectStoragePath]:
    """The complete partitions of a dataset with first <= date <= last, oldest first."""
    return [partition(zone_name, dataset, d) for d in dates(zone_name, dataset) if first <= d <= last]


def read_range(
    zone_name: str, dataset: str, first: dt.date, last: dt.date, columns: list[str] | None = None, dtype_backend=None
) -> pd.DataFrame:
    """All complete partitions of a dataset with first <= date <= last, concatenated (only
    ``columns`` when given: a monitor reading millions of rows skips the id strings it never uses)."""
    frames = [
        read_parquet(part, columns=columns, dtype_backend=dtype_backend)
        for part in partitions(zone_name, dataset, first, last)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_range_table(zone_name: str, dataset: str, first: dt.date, last: dt.date, columns: list[str]):
    """``read_range`` as one Arrow table (None when no partition is in range), the files' tables
    side by side: no pandas frame and no concatenated copy (a performance join over 10M labels)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for part in partitions(zone_name, dataset, first, last):
        with (part / "data.parquet").open("rb") as f:
            tables.append(pq.read_table(f, columns=columns))
    return pa.concat_tables(tables, promote_options="permissive") if tables else None  # e.g. an all-null day
