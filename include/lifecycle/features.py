"""Feature source tables and the Feast store.

Features are daily snapshots: for day D, each entity seen in the use case's window up to D gets
its aggregates (``UseCase.snapshot``; card fraud: cards and merchants over 7 days), stamped at the
end of D; a use case may add aggregates over the labels known by then (``UseCase.label_snapshot``:
an entity's recent outcome rate). An event on D+1 is therefore joined (point in time) with what was known before it, and
the online store serves the same snapshot: no skew. The tables are ``features/<table>`` in the
lake, the paths the definitions in the use case's feature repo give their sources; the store
itself is ``lifecycle.feature_store``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from pathlib import Path

import pandas as pd

from lifecycle import contract, lake
from lifecycle.feature_store import get_store

STAMP = "event_timestamp"  # a snapshot row's time: the end of its day (the sources' timestamp_field)


def snapshot(
    curated: pd.DataFrame, day: dt.date, uc: contract.UseCase, labels: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """The use case's aggregates over the ``window_days`` ending with ``day``, stamped at its end;
    with a ``label_snapshot``, also its aggregates over the ``label_window_days`` of events, each
    with its label only when ``labels`` (id, label, known at) says it was known before that end:
    a row joined to this snapshot (at or after its stamp) sees no label known after its own time."""
    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    times = curated[uc.time]
    window = curated[(times >= end - pd.Timedelta(days=uc.window_days)) & (times < end)]
    last_day = window[uc.time] >= end - pd.Timedelta(days=1)
    tables = dict(uc.snapshot(window, last_day))
    if uc.label_snapshot is not None:
        span = curated[(times >= end - pd.Timedelta(days=uc.label_window_days)) & (times < end)]
        outcome = pd.Series(dtype="Int64")
        if labels is not None and len(labels):
            known = labels[labels[uc.labeled_at] < end].sort_values(uc.labeled_at, kind="stable")
            outcome = known.drop_duplicates(uc.id, keep="last").set_index(uc.id)[uc.label]
        labeled = span.assign(**{uc.label: span[uc.id].map(outcome).astype("Int64")})
        tables |= uc.label_snapshot(labeled, labeled[uc.time] >= end - pd.Timedelta(days=1))
    return {name: frame.assign(**{STAMP: end}) for name, frame in tables.items()}


def span_days(uc: contract.UseCase) -> int:
    """How many days of events one snapshot reads: the longer of its two windows."""
    return max(uc.window_days, uc.label_window_days)


def affected_days(new_days: list[dt.date], curated_days: list[dt.date], window_days: int) -> list[dt.date]:
    """Snapshot days whose window contains any new curated day (late or backfilled data included)."""
    return sorted({d for d in curated_days for n in new_days if n <= d < n + dt.timedelta(days=window_days)})


def pending_days() -> list[dt.date]:
    """Curated days whose own snapshot is missing or was built from other curated bytes."""
    uc = contract.current()
    return lake.pending(("curated", uc.events), ("features", uc.feature_tables[0]), "curated_sha256")


def build_tables(new_days: list[dt.date]) -> list[dt.date]:
    """Rewrite the snapshot partitions affected by newly curated days; returns those days."""
    uc = contract.current()
    span = span_days(uc)
    days = affected_days(new_days, lake.dates("curated", uc.events), span)
    for day in days:
        first = day - dt.timedelta(days=span - 1)
        curated = lake.read_range("curated", uc.events, first, day)
        # labels are partitioned by the day they became known: those of the window's events are in
        # its days' partitions (a label is known on or after its event's day)
        labels = lake.read_range("curated", uc.labels, first, day) if uc.label_snapshot is not None else None
        source = lake.manifest(lake.partition("curated", uc.events, day))["data_sha256"]
        for name, frame in snapshot(curated, day, uc, labels).items():
            publish_snapshot(name, frame, day, source)
    return days


def publish_snapshot(name: str, frame: pd.DataFrame, day: dt.date, curated_sha256: str) -> int:
    """Write one snapshot partition with its manifest (``curated_sha256``: what it was built from);
    returns its bytes."""
    data = lake.parquet_bytes(frame)
    lake.publish(
        lake.partition("features", name, day),
        {"data.parquet": data},
        {
            "dataset": name,
            "date": day.isoformat(),
            "rows": len(frame),
            "data_sha256": lake.sha256(data),
            "curated_sha256": curated_sha256,
        },
    )
    return len(data)


def apply_definitions(store) -> None:
    """Make the registry hold what the use case's feature repo defines, as ``feast apply`` does: Feast's repo
    parser, then its apply step (objects no longer defined are removed from the registry)."""
    from feast.repo_operations import apply_total_with_repo_instance, parse_repo

    root = Path(store.repo_path).resolve()
    if str(root) not in sys.path:
        sys.path.append(str(root))  # as the feast CLI does before parsing (repo_operations.cli_check_repo)
    # Python imports the repo's modules once per process; they hold no settings, so every store
    # (every profile, every state folder) gets the same objects.
    with contextlib.chdir(root):  # Feast names repo modules relative to the working directory
        repo = parse_repo(root)
    apply_total_with_repo_instance(store, store.project, store.registry, repo, skip_source_validation=False)


def materialize(days: list[dt.date]) -> list[dt.date]:
    """Load snapshots into the online store (after applying the definitions); returns the days loaded.

    The online store keeps the last write, not the newest row, so a late change to an old day is
    loaded together with every later snapshot (one window up to the latest): the newest wins.
    """
    store = get_store()
    apply_definitions(store)
    if not days:
        return []
    loaded = [d for d in lake.dates("features", contract.current().feature_tables[0]) if d >= min(days)]
    stamp = lambda day: pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)  # noqa: E731  (end of day)
    store.materialize(
        start_date=(stamp(loaded[0]) - pd.Timedelta(minutes=1)).to_pydatetime(),
        end_date=(stamp(loaded[-1]) + pd.Timedelta(minutes=1)).to_pydatetime(),
    )
    return loaded
