"""Land a history that already exists: a user's event and label files, split into the landing
zone's days, so ``ingest`` (scheduled or backfilled) takes them like any day's delivery.

    python -m lifecycle.land --events flights/ --labels outcomes.parquet [--rename dep_time=scheduled_at]
                             [--timezone America/New_York] [--first 2013-01-01] [--last 2013-03-31] [--replace]

Events and labels are CSV or Parquet files, or folders of them. Columns are matched by name
(``--rename SOURCE=CONTRACT`` maps others); the contract's columns are kept, in contract order,
and the others named and left out. Events land on the UTC day of their time, labels on the UTC day
they became known (``labeled_at``): ``landing/<dataset>/<YYYY-MM-DD>.parquet``, each day that has
events (a day lands both feeds; one without labels gets an empty labels file). Labels known on a
day without events (after the last one) are counted as not landed: they land with the days of a
later delivery, never earlier.
Timestamps without an offset are read in ``--timezone`` (default UTC). Nothing is written until
everything was read and checked; a day already landed with other bytes is refused unless
``--replace``; each file is written under a temporary name and renamed, so a sensor never reads
half a file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lifecycle import contract

FORMATS = (".csv", ".parquet")


class LandError(ValueError):
    """Input that cannot be landed as it is; the message names the input and the rule."""


def input_files(paths: list[str]) -> list[Path]:
    """The CSV and Parquet files named, or found under the folders named, in name order."""
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix in FORMATS and not p.name.startswith(("_", ".")))
            if not inside:
                raise LandError(f"{path}: the folder holds no .csv or .parquet file")
            found += inside
        elif path.suffix in FORMATS and path.is_file():
            found.append(path)
        else:
            raise LandError(f"{path}: not a .csv or .parquet file, nor a folder of them")
    return found


def read(paths: list[str], keys: tuple[str, ...], rename: dict[str, str]) -> pd.DataFrame:
    """Every file of ``paths`` as one frame, columns renamed, keys as strings."""
    from lifecycle import ingest

    frames = []
    for path in input_files(paths):
        source_keys = [s for s, d in rename.items() if d in keys] + list(keys)
        try:
            frame = (
                pd.read_parquet(path)
                if path.suffix == ".parquet"
                else pd.read_csv(path, dtype=dict.fromkeys(source_keys, str))
            )
        except Exception as exc:  # pandas and pyarrow raise several unrelated types for unreadable files
            raise LandError(f"{path}: unreadable as {path.suffix[1:].upper()}: {exc}") from exc
        frames.append(ingest.text_keys(frame.rename(columns=rename), keys))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def select(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> tuple[pd.DataFrame, list[str]]:
    """The contract's ``columns`` of ``frame`` in order, and the names of the columns left out."""
    if missing := [c for c in columns if c not in frame]:
        raise LandError(
            f"{what}: missing column(s) {missing} the contract requires (found {list(frame.columns)}; "
            "map a different name with --rename SOURCE=CONTRACT)"
        )
    return frame[list(columns)].copy(), [c for c in frame.columns if c not in columns]


def utc(values: pd.Series, timezone: str, what: str) -> pd.Series:
    """Timestamps as UTC: aware values converted, naive ones read in ``timezone`` (an hour that
    happens twice when clocks go back is read as the first, one that never happens moves forward)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=_has_offsets(values, what))
        if bad := int((parsed.isna() & values.notna()).sum()):
            example = values[parsed.isna() & values.notna()].iloc[0]
            raise LandError(f"{what}: {bad} value(s) are not ISO-8601 timestamps, e.g. {example!r}")
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(timezone, ambiguous=np.ones(len(parsed), bool), nonexistent="shift_forward")
    return parsed.dt.tz_convert("UTC")


def _has_offsets(values: pd.Series, what: str) -> bool:
    """Whether the timestamps carry their offsets: all of them, or none (then ``--timezone`` says)."""
    marked = values.dropna().astype(str).str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if marked.any() and not marked.all():
        example = values.dropna()[~marked.to_numpy()].iloc[0]
        raise LandError(
            f"{what}: {int((~marked).sum())} of {len(marked)} timestamps have no offset while the others do "
            f"(e.g. {example!r}): give all or none an offset"
        )
    return bool(marked.any())


def by_day(frame: pd.DataFrame, column: str) -> dict[dt.date, pd.DataFrame]:
    days = frame[column].dt.date
    return {day: rows.reset_index(drop=True) for day, rows in frame.groupby(days, sort=True)}


def plan(
    uc: contract.UseCase,
    events: pd.DataFrame,
    labels: pd.DataFrame,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> dict[str, dict[dt.date, pd.DataFrame]]:
    """{dataset: {day: rows}}: events by the day of their time, labels by the day they became
    known, for every day with events (within first..last)."""
    if events.empty:
        raise LandError("events: no rows to land")
    nulls = events[uc.time].isna().sum()
    if nulls:
        raise LandError(f"events: {nulls} row(s) have no {uc.time}: an event without a time has no day to land on")
    if unknown := int(labels[uc.labeled_at].isna().sum()):
        raise LandError(f"labels: {unknown} row(s) have no {uc.labeled_at}: a label without it has no day to land on")
    start = first or events[uc.time].min().date()
    early = labels[labels[uc.labeled_at].dt.date < start]
    if first is None and len(early):
        raise LandError(
            f"labels: {len(early)} label(s) became known before the first event day {start} "
            f"(e.g. {uc.id} {early[uc.id].iloc[0]!r}): their events are not among the events given"
        )
    end = last or events[uc.time].max().date()
    if end < start:
        raise LandError(f"--first {start} is after --last {end}")
    ev, lb = by_day(events, uc.time), by_day(labels, uc.labeled_at)
    empty = labels.iloc[0:0]
    # a day lands both feeds: labels known after the last event day wait for the next delivery's
    # days (landed with them: never on an earlier day, where they would be known too soon)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1) if start + dt.timedelta(days=i) in ev]
    return {
        uc.events: {d: ev[d] for d in days},
        uc.labels: {d: lb.get(d, empty) for d in days},
    }


def write(plan_: dict[str, dict[dt.date, pd.DataFrame]], replace: bool) -> dict[str, dict]:
    """Write each day's file (Parquet, typed); a day already landed with other bytes is refused
    (before anything is written) unless ``replace``. Returns per dataset: days, rows, written, unchanged."""
    from lifecycle import ingest, lake

    files = {}
    for dataset, days in plan_.items():
        for day, rows in days.items():
            path = lake.zone("landing") / dataset / f"{day.isoformat()}.parquet"
            files[(dataset, day)] = (path, lake.parquet_bytes(rows), len(rows))
    clashes = []
    for (dataset, day), (path, data, _) in files.items():
        there = ingest.landed(dataset, day)  # refuses a day landed in two forms
        if there and (there != [path] or path.read_bytes() != data):
            clashes.append(str(there[0] if len(there) == 1 else there[0].parent))
    if clashes and not replace:
        raise LandError(
            f"{len(clashes)} day(s) already landed with other content, e.g. {clashes[0]}: "
            "nothing was written (--replace overwrites them; then backfill ingest for those days: a day already "
            "curated is gated again only when its events changed)"
        )
    summary = {ds: {"days": 0, "rows": 0, "written": 0, "unchanged": 0} for ds in plan_}
    for (dataset, day), (path, data, n) in files.items():
        s = summary[dataset]
        s["days"] += 1
        s["rows"] += n
        there = ingest.landed(dataset, day)
        if there == [path] and path.read_bytes() == data:
            s["unchanged"] += 1
            continue
        for old in there:  # --replace of a day landed as CSV or as a folder
            lake.remove(old.parent if old.parent.name == day.isoformat() else old)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.parent / f".{path.name}.tmp"
        staging.write_bytes(data)
        staging.rename(path)
        s["written"] += 1
    return summary


def land(
    events: list[str],
    labels: list[str],
    *,
    rename: dict[str, str] | None = None,
    timezone: str = "UTC",
    first: dt.date | None = None,
    last: dt.date | None = None,
    replace: bool = False,
) -> dict:
    """Read, check, split and write; returns what landed per dataset and the columns left out."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise LandError(f"--timezone {timezone!r}: not an IANA time zone name (e.g. UTC, Europe/Paris)") from err
    uc = contract.current()
    rename = rename or {}
    ev, ev_extra = select(read(events, uc.of(contract.KEY), rename), uc.event_columns, "events")
    lb, lb_extra = select(read(labels, (uc.id,), rename), uc.label_columns, "labels")
    for col in uc.of(contract.TIMESTAMP):
        ev[col] = utc(ev[col], timezone, f"events column {col}")
    lb[uc.labeled_at] = utc(lb[uc.labeled_at], timezone, f"labels column {uc.labeled_at}")
    outcome = pd.to_numeric(lb[uc.label], errors="coerce")
    if fractional := int((outcome.notna() & (outcome % 1 != 0)).sum()):
        raise LandError(f"labels: {fractional} value(s) of {uc.label} are not whole numbers: a label is 0 or 1")
    lb[uc.label] = outcome.astype("Int64")  # text and other numbers than 0/1: validation rejects them by name
    days = plan(uc, ev, lb, first, last)
    summary = write(days, replace)
    for dataset, rows in days.items():
        if rows:
            summary[dataset].update(first=min(rows).isoformat(), last=max(rows).isoformat())
    summary["left_out"] = {"events": ev_extra, "labels": lb_extra}
    summary["unlabeled_events"] = int((~ev[uc.id].isin(lb[uc.id])).sum())
    landed_days = set(days[uc.labels])
    summary["labels_not_landed"] = int((~lb[uc.labeled_at].dt.date.isin(landed_days)).sum())
    return summary


def _pair(text: str) -> tuple[str, str]:
    source, sep, target = text.partition("=")
    if not sep or not source or not target:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SOURCE=CONTRACT")
    return source, target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.land",
        description="Land existing event and label files into the landing zone, one file per feed and day.",
    )
    parser.add_argument("--events", nargs="+", required=True, help="CSV/Parquet files or folders of events")
    parser.add_argument("--labels", nargs="+", required=True, help="CSV/Parquet files or folders of labels")
    parser.add_argument("--rename", nargs="*", type=_pair, default=[], metavar="SOURCE=CONTRACT")
    parser.add_argument("--timezone", default="UTC", help="of timestamps without an offset (IANA name)")
    parser.add_argument("--first", type=dt.date.fromisoformat, help="first day to land, YYYY-MM-DD")
    parser.add_argument("--last", type=dt.date.fromisoformat, help="last day to land, YYYY-MM-DD")
    parser.add_argument("--replace", action="store_true", help="overwrite days landed with other content")
    args = parser.parse_args(argv)
    from lifecycle.platform import env

    env.apply()  # before lifecycle.lake imports Airflow, which reads AIRFLOW_HOME once
    from lifecycle import ingest

    try:
        summary = land(
            args.events,
            args.labels,
            rename=dict(args.rename),
            timezone=args.timezone,
            first=args.first,
            last=args.last,
            replace=args.replace,
        )
    except (LandError, ingest.LandingError, contract.ContractError) as err:
        print(f"land: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
