"""Land one day's files from the landing zone into the raw zone, with a manifest.

A day lands two feeds (``UseCase.datasets``): its events, and the labels that became known that
day (for events of that day or earlier ones; the label's time decides the day).

Rerunning for the same day rewrites an identical partition (same bytes, same manifest).
"""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd

from lifecycle import contract, lake


class LandingError(RuntimeError):
    """The landing file for a day is absent or unreadable."""


def read_landing(uc: contract.UseCase, dataset: str, day: dt.date) -> tuple[pd.DataFrame, bytes, str]:
    src = lake.landing_file(dataset, day)
    if not src.exists():
        raise LandingError(
            f"landing file {src} is absent: ingest expects one {dataset} file per day "
            f"named {day.isoformat()}.csv in the landing zone"
        )
    data = src.read_bytes()
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except Exception as exc:  # pandas raises several unrelated types for unreadable CSV
        raise LandingError(f"landing file {src} is unreadable as CSV: {exc}") from exc
    if frame.empty and dataset != uc.labels:  # a day on which no label became known is a day like any
        raise LandingError(f"landing file {src} has no rows: a day's {dataset} file must hold at least one row")
    for col in uc.timestamps[dataset]:
        if col in frame:  # typed only when the whole column parses; validation rejects the rest
            parsed = pd.to_datetime(frame[col], utc=True, errors="coerce", format="ISO8601")
            if parsed.notna().sum() == frame[col].notna().sum():
                frame[col] = parsed
    return frame, data, str(src)


def ingest_day(day: dt.date) -> dict:
    """Copy the day's events and labels into raw partitions; returns their manifests."""
    uc = contract.current()
    landed = {ds: read_landing(uc, ds, day) for ds in uc.datasets}  # read both before writing either
    manifests = {}
    for dataset, (frame, source_bytes, source) in landed.items():
        data = lake.parquet_bytes(frame)
        manifest = {
            "dataset": dataset,
            "date": day.isoformat(),
            "rows": len(frame),
            "schema": {c: str(t) for c, t in frame.dtypes.items()},
            "source": source,
            "source_sha256": lake.sha256(source_bytes),
            "data_sha256": lake.sha256(data),
        }
        lake.publish(lake.partition("raw", dataset, day), {"data.parquet": data}, manifest)
        manifests[dataset] = manifest
    return manifests
