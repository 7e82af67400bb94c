"""A reference point-in-time join written for the tests, and generated lakes to compare it on.

The reference is a plain pandas join, independent of Feast and of DuckDB: every (row, snapshot)
pair with the row's key, kept when the snapshot is stamped at or before the row's time and no
more than the view's TTL before it, the newest kept per row. ``check_against_reference`` publishes
generated snapshots into whatever lake the settings name (a folder, or S3), runs
``point_in_time.features`` on generated rows and compares every row's every feature.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from lifecycle import contract, features, lake, point_in_time
from lifecycle.feature_store import get_store

UC = contract.current()
FIRST = dt.date(2026, 10, 1)
SNAPSHOT_DAYS = 6  # snapshots may exist for FIRST .. FIRST + 5 (stamped at each day's end)
ROW_DAYS = 10  # rows fall in FIRST .. FIRST + 9: before the first snapshot, covered, and past the TTL
CARDS = ("c1", "c2", "c3", "never-seen")
MERCHANTS = ("m1", "m2", "never-seen")


def views() -> dict[str, tuple[str, pd.Timedelta, list[tuple[str, str]]]]:
    """Per view of the use case's service: (join key, TTL, [(feature, Feast type)])."""
    store = get_store()
    out = {}
    for projection in store.get_feature_service(UC.feature_service).feature_view_projections:
        view = store.get_feature_view(projection.name)
        (key,) = [e.name for e in view.entity_columns]
        out[view.name] = (key, pd.Timedelta(view.ttl), [(f.name, str(f.dtype)) for f in projection.features])
    return out


def end_of(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)


@st.composite
def snapshot_values(draw, keys: tuple[str, ...], columns: list[tuple[str, str]]) -> pd.DataFrame:
    """One day's snapshot: some of ``keys`` (never the unseen one), each with drawn feature values
    (floats sometimes empty: a snapshot may hold a row whose features are all missing)."""
    chosen = draw(st.lists(st.sampled_from(keys[:-1]), unique=True, min_size=1))
    rows = []
    for _ in chosen:
        row = {}
        for name, kind in columns:
            if "Int" in kind:
                row[name] = draw(st.integers(0, 50))
            else:
                row[name] = draw(st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)))
        rows.append(row)
    types = {name: "int64" if "Int" in kind else "float64" for name, kind in columns}
    return pd.DataFrame(rows, index=pd.Index(chosen, dtype=object), columns=list(types)).astype(types)


@st.composite
def worlds(draw, spec):
    """Snapshots per view and day, late rebuilds of some of them, and rows whose keys and times
    repeat (shared instants, ties with a snapshot's stamp, before the first one, past the TTL)."""
    tables = {}
    for name, (key, _, columns) in spec.items():
        keys = CARDS if key == "card_id" else MERCHANTS
        days = draw(st.lists(st.integers(0, SNAPSHOT_DAYS - 1), unique=True, min_size=1, max_size=SNAPSHOT_DAYS))
        tables[name] = {FIRST + dt.timedelta(days=d): draw(snapshot_values(keys, columns)) for d in sorted(days)}
        rebuilt = draw(st.lists(st.sampled_from(sorted(tables[name])), unique=True)) if tables[name] else []
        tables[name] = {
            day: (frame, draw(snapshot_values(keys, columns)) if day in rebuilt else None)
            for day, frame in tables[name].items()
        }
    # a few instants that many rows share: a snapshot's own stamp, a second after it, mid-day
    instants = [
        pd.Timestamp(FIRST, tz="UTC") + pd.Timedelta(days=d, seconds=s)
        for d in range(ROW_DAYS)
        for s in (0, 1, 43_200, 86_399)
    ]
    n = draw(st.integers(1, 60))
    rows = pd.DataFrame(
        {
            UC.id: [f"e{i}" for i in range(n)],
            "card_id": draw(st.lists(st.sampled_from(CARDS), min_size=n, max_size=n)),
            "merchant_id": draw(st.lists(st.sampled_from(MERCHANTS), min_size=n, max_size=n)),
            UC.time: draw(st.lists(st.sampled_from(instants), min_size=n, max_size=n)),
        }
    )
    return tables, rows


def publish(tables) -> dict[str, pd.DataFrame]:
    """Write each snapshot partition (then its late rebuild over it, as a late day does); returns what
    the lake holds per view: key, stamp and features."""
    lake.remove(lake.zone("features"))
    held = {}
    for name, days in tables.items():
        key = get_store().get_feature_view(name).entity_columns[0].name
        frames = []
        for day, (first, rebuilt) in days.items():
            for version in (first, rebuilt):
                if version is not None:
                    frame = version.rename_axis(key).reset_index().assign(**{features.STAMP: end_of(day)})
                    features.publish_snapshot(name, frame, day, "generated")
            frames.append(frame)
        held[name] = pd.concat(frames, ignore_index=True) if frames else None
    return held


def reference(rows: pd.DataFrame, held: dict[str, pd.DataFrame], spec) -> pd.DataFrame:
    """Each row's features by the plain definition (see the module docstring), in row order."""
    out = rows[[UC.time]].reset_index(drop=True).assign(row=lambda f: np.arange(len(f)))
    keyed = rows.reset_index(drop=True).assign(row=np.arange(len(rows)))
    for name, (key, ttl, columns) in spec.items():
        names = [n for n, _ in columns]
        snap = held[name]
        if snap is None:
            out = out.assign(**{n: np.nan for n in names})
            continue
        pairs = keyed[["row", key, UC.time]].merge(snap.rename(columns={features.STAMP: "stamp"}), on=key)
        pairs = pairs[(pairs["stamp"] <= pairs[UC.time]) & (pairs["stamp"] >= pairs[UC.time] - ttl)]
        newest = pairs.sort_values(["row", "stamp"]).groupby("row").tail(1)
        out = out.merge(newest[["row", *names]], on="row", how="left")
    return out.sort_values("row", ignore_index=True)


def check_against_reference(world) -> int:
    """Publish ``world``, join it both ways and compare every feature of every row; returns the rows."""
    tables, rows = world
    spec = views()
    held = publish(tables)
    got = point_in_time.features(rows)
    want = reference(rows, held, spec)
    assert len(got) == len(rows) and got[UC.id].tolist() == rows[UC.id].tolist()
    for name, (_, _, columns) in spec.items():
        for column, _ in columns:
            np.testing.assert_array_equal(
                got[column].to_numpy(dtype=float),
                want[column].to_numpy(dtype=float),
                err_msg=f"{name}.{column}",
            )
    return len(rows)
