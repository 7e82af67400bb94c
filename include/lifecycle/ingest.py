"""Land one day's files from the landing zone into the raw zone, with a manifest.

A day lands two feeds (``UseCase.datasets``): its events, and the labels that became known that
day (for events of that day or earlier ones; the label's time decides the day). A feed's day is
one file, ``<dataset>/<YYYY-MM-DD>.csv`` or ``.parquet``, or a folder ``<dataset>/<YYYY-MM-DD>/``
of such files that counts as landed once it holds ``_SUCCESS`` (written by the upstream job last,
as Spark and Hadoop do). Columns may come in any order; timestamps without an offset are UTC.

Rerunning for the same day rewrites an identical partition (same bytes, same manifest).
"""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd

from lifecycle import contract, lake

FORMATS = (".csv", ".parquet")
READY = "_SUCCESS"  # a day's folder is complete once it holds this file


class LandingError(RuntimeError):
    """The landing file for a day is absent, ambiguous or unreadable."""


def landed(dataset: str, day: dt.date) -> list:
    """The files holding ``dataset``'s landing for ``day`` (name order), [] while it has not
    (completely) landed. A day landed in two forms at once is refused, naming both."""
    base = lake.zone("landing") / dataset
    name = day.isoformat()
    forms = [p for p in (base / f"{name}{ext}" for ext in FORMATS) if p.exists()]
    folder = base / name
    if folder.is_dir():
        forms.append(folder)
    if len(forms) > 1:
        raise LandingError(f"{dataset} of {name} landed twice ({', '.join(map(str, forms))}): keep one")
    if not forms or forms[0] != folder:
        return forms
    children = sorted(folder.iterdir(), key=lambda p: p.name)
    if not any(p.name == READY for p in children):
        return []
    return [p for p in children if p.suffix in FORMATS and not p.name.startswith(("_", "."))]


def landed_days(dataset: str) -> list[dt.date]:
    """The days ``dataset`` has landed (a folder only once it holds ``READY``), oldest first."""
    base = lake.zone("landing") / dataset
    days = set()
    for child in base.iterdir() if base.exists() else []:
        stem = child.name.removesuffix(child.suffix) if child.suffix in FORMATS else child.name
        try:
            day = dt.date.fromisoformat(stem)
        except ValueError:
            continue
        if child.suffix in FORMATS or (child / READY).exists():
            days.add(day)
    return sorted(days)


def _read(src, data: bytes, keys: tuple[str, ...]) -> pd.DataFrame:
    """One landing file; key columns as strings (a CSV's ``00123`` stays ``00123``)."""
    try:
        if src.suffix == ".parquet":
            return text_keys(pd.read_parquet(io.BytesIO(data)), keys)
        return pd.read_csv(io.BytesIO(data), dtype=dict.fromkeys(keys, str))
    except Exception as exc:  # pandas and pyarrow raise several unrelated types for unreadable files
        raise LandingError(f"landing file {src} is unreadable as {src.suffix[1:].upper()}: {exc}") from exc


def text_keys(frame: pd.DataFrame, keys) -> pd.DataFrame:
    """Key columns typed otherwise (a Parquet file's integer ids) as strings; nulls stay null."""
    for col in keys:
        if col in frame and not pd.api.types.is_object_dtype(frame[col]):
            text = frame[col].astype("string")
            frame[col] = text.astype(object).where(text.notna(), None)
    return frame


def utc_timestamps(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Each timestamp column typed as UTC when every value parses (naive values are UTC);
    otherwise left as it is, for validation to reject by name."""
    for col in columns:
        if col not in frame:
            continue
        values = frame[col]
        if pd.api.types.is_datetime64_any_dtype(values):
            frame[col] = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
            continue
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        if parsed.notna().sum() == values.notna().sum():
            frame[col] = parsed
    return frame


def read_landing(uc: contract.UseCase, dataset: str, day: dt.date) -> tuple[pd.DataFrame, str, dict]:
    """The day's landed rows of ``dataset`` (contract columns first, in contract order), where they
    came from, and each file's sha256."""
    files = landed(dataset, day)
    if not files:
        base = lake.zone("landing") / dataset
        raise LandingError(
            f"landing file {base / day.isoformat()}.csv is absent: ingest expects one {dataset} file per day, "
            f"{day.isoformat()}.csv or .parquet, or a folder {day.isoformat()}/ of such files with {READY}"
        )
    frames, digests = [], {}
    for src in files:
        data = src.read_bytes()
        digests[src.name] = lake.sha256(data)
        frames.append(_read(src, data, uc.of(contract.KEY) if dataset == uc.events else (uc.id,)))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if frame.empty and dataset != uc.labels:  # a day on which no label became known is a day like any
        raise LandingError(f"landing file {files[0]} has no rows: a day's {dataset} file must hold at least one row")
    order = uc.event_columns if dataset == uc.events else uc.label_columns
    frame = frame[[*[c for c in order if c in frame], *[c for c in frame if c not in order]]]
    source = str(files[0]) if len(files) == 1 else str(files[0].parent)
    return utc_timestamps(frame, uc.timestamps[dataset]), source, digests


def source_digest(digests: dict[str, str]) -> str:
    """One digest of what landed: the file's own sha256, or for a folder the sha256 of its files'
    names and digests (so a renamed, added or changed file changes it)."""
    if len(digests) == 1:
        return next(iter(digests.values()))
    return lake.sha256("".join(f"{name} {sha}\n" for name, sha in sorted(digests.items())).encode())


def ingest_day(day: dt.date) -> dict:
    """Copy the day's events and labels into raw partitions; returns their manifests."""
    uc = contract.current()
    landed_feeds = {ds: read_landing(uc, ds, day) for ds in uc.datasets}  # read both before writing either
    manifests = {}
    for dataset, (frame, source, digests) in landed_feeds.items():
        data = lake.parquet_bytes(frame)
        manifest = {
            "dataset": dataset,
            "date": day.isoformat(),
            "rows": len(frame),
            "schema": {c: str(t) for c, t in frame.dtypes.items()},
            "source": source,
            "source_files": digests,
            "source_sha256": source_digest(digests),
            "data_sha256": lake.sha256(data),
        }
        lake.publish(lake.partition("raw", dataset, day), {"data.parquet": data}, manifest)
        manifests[dataset] = manifest
    return manifests
