"""Feature source tables and the Feast store.

Features are daily snapshots: for day D, each card and merchant seen in the 7 days up to D gets
its aggregates, stamped at the end of D. A transaction on D+1 is therefore joined (point in time)
with what was known before it, and the online store serves the same snapshot: no skew.
The tables are ``features/card_stats`` and ``features/merchant_stats`` in the lake, the paths the
definitions in ``feature_repo/`` give their sources; the store itself is ``lifecycle.feature_store``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lifecycle import lake
from lifecycle.feature_store import get_store

WINDOW_DAYS = 7


def snapshot(curated: pd.DataFrame, day: dt.date) -> dict[str, pd.DataFrame]:
    """Card and merchant aggregates over the 7 days ending with ``day``, stamped at its end."""
    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    window = curated[
        (curated["event_timestamp"] >= end - pd.Timedelta(days=WINDOW_DAYS)) & (curated["event_timestamp"] < end)
    ]
    last_day = window["event_timestamp"] >= end - pd.Timedelta(days=1)
    card = (
        window.assign(is_last_day=last_day)
        .groupby("card_id")
        .agg(
            card_txn_count_1d=("is_last_day", "sum"),
            card_txn_count_7d=("amount", "size"),
            card_avg_amount_7d=("amount", "mean"),
            card_std_amount_7d=("amount", "std"),
            card_max_amount_7d=("amount", "max"),
            card_online_share_7d=("channel", lambda s: float(np.mean(s == "online"))),
            card_country_count_7d=("country", "nunique"),
        )
        .reset_index()
    )
    merchant = (
        window.groupby("merchant_id")
        .agg(
            merchant_txn_count_7d=("amount", "size"),
            merchant_avg_amount_7d=("amount", "mean"),
        )
        .reset_index()
    )
    out = {}
    for name, frame in (("card_stats", card), ("merchant_stats", merchant)):
        frame = frame.fillna({"card_std_amount_7d": 0.0})
        counts = [c for c in frame.columns if "count" in c]
        frame[counts] = frame[counts].astype("int64")
        frame["event_timestamp"] = end
        out[name] = frame
    return out


def affected_days(new_days: list[dt.date], curated_days: list[dt.date]) -> list[dt.date]:
    """Snapshot days whose window contains any new curated day (late or backfilled data included)."""
    return sorted({d for d in curated_days for n in new_days if n <= d < n + dt.timedelta(days=WINDOW_DAYS)})


def pending_days() -> list[dt.date]:
    """Curated days whose own snapshot is missing or was built from other curated bytes."""
    return lake.pending(("curated", "transactions"), ("features", "card_stats"), "curated_sha256")


def build_tables(new_days: list[dt.date]) -> list[dt.date]:
    """Rewrite the snapshot partitions affected by newly curated days; returns those days."""
    days = affected_days(new_days, lake.dates("curated", "transactions"))
    for day in days:
        curated = lake.read_range("curated", "transactions", day - dt.timedelta(days=WINDOW_DAYS - 1), day)
        source = lake.manifest(lake.partition("curated", "transactions", day))["data_sha256"]
        for name, frame in snapshot(curated, day).items():
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
    """Make the registry hold what feature_repo/ defines, as ``feast apply`` does: Feast's repo
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
    loaded = [d for d in lake.dates("features", "card_stats") if d >= min(days)]
    stamp = lambda day: pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)  # noqa: E731  (end of day)
    store.materialize(
        start_date=(stamp(loaded[0]) - pd.Timedelta(minutes=1)).to_pydatetime(),
        end_date=(stamp(loaded[-1]) + pd.Timedelta(minutes=1)).to_pydatetime(),
    )
    return loaded
