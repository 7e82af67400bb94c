"""The point-in-time feature join behind every training set and batch score, and its self-check.

Feast joins (``lifecycle.lake_offline_store``: its DuckDB store over the lake) each row's entities
with the newest snapshot of each view stamped at or before the row's time and within the view's
TTL. The result has one row per input row, in input order, whatever rows share an entity and an
instant. Then each view is checked by another join (DuckDB's ``ASOF LEFT JOIN`` over the same
snapshot tables, pinned for the call): the rows that came back without a view's features must be
exactly those no snapshot within the TTL covers (or covers with every feature empty). A join that
lost features fails naming the view, the count and example keys and times, so a training set or a
batch score never silently differs from what the online store serves.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from lifecycle import contract, lake_offline_store
from lifecycle.feature_store import get_store

ROW = "lifecycle_row"  # each input row's position, carried through the join
EXAMPLES = 5


class FeatureJoinError(RuntimeError):
    """The point-in-time join returned other rows than it was given, or lost stored features."""


def features(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (the use case's events) with the feature service's stored features as of each row's
    time: the same rows in the same order, index reset."""
    uc = contract.current()
    store = get_store()
    service = store.get_feature_service(uc.feature_service)
    entity = pd.DataFrame({ROW: np.arange(len(rows))}).join(rows[[*uc.entities, uc.time]].reset_index(drop=True))
    with lake_offline_store.pinned():
        got = store.get_historical_features(entity_df=entity, features=service).to_df()
        got = got.sort_values(ROW, ignore_index=True)
        if len(got) != len(rows) or not np.array_equal(got[ROW].to_numpy(), entity[ROW].to_numpy()):
            raise FeatureJoinError(f"the feature join returned {len(got)} rows for {len(rows)} input rows")
        views = [(p, store.get_feature_view(p.name)) for p in service.feature_view_projections]
        for projection, view in views:
            check_view(store, projection, view, entity, got, [v for _, v in views])
    names = [f.name for p, _ in views for f in p.features]
    return rows.reset_index(drop=True).join(got[names])


def coverage(store, projection, view, entity: pd.DataFrame, all_views) -> pd.DataFrame:
    """Per entity row (in order): the stamp of the newest snapshot of ``view`` at or before the row's
    time for its keys (NaT for none), and whether that snapshot's features are all empty."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    source = lake_offline_store.located(store.config, view.batch_source)
    first, last = lake_offline_store.join_range(entity, all_views)
    table = lake_offline_store.read_table(source, first, last)
    stamp = view.batch_source.timestamp_field
    keys = {k: projection.join_key_map.get(k, k) for k in (e.name for e in view.entity_columns)}
    empty = functools.reduce(pc.and_, [pc.is_null(table[f.name], nan_is_null=True) for f in projection.features])
    snap = pa.table({**{f"k{i}": table[k] for i, k in enumerate(keys)}, "stamp": table[stamp], "empty": empty})
    ent = pa.table(
        {
            ROW: pa.array(entity[ROW]),
            **{f"k{i}": pa.array(entity[col]) for i, col in enumerate(keys.values())},
            "t": pa.array(pd.to_datetime(entity[contract.current().time], utc=True)),
        }
    )
    on = " AND ".join(f"e.k{i} = s.k{i}" for i in range(len(keys)))
    with duckdb.connect() as con:
        con.register("e", ent)
        con.register("s", snap)
        found = con.sql(
            f"SELECT e.{ROW}, s.stamp, s.empty FROM e ASOF LEFT JOIN s ON {on} AND e.t >= s.stamp ORDER BY e.{ROW}"
        ).to_arrow_table()
    return pd.DataFrame(
        {
            "stamp": pd.to_datetime(found["stamp"].to_pandas(), utc=True),
            "empty": pc.fill_null(found["empty"], True).to_numpy(zero_copy_only=False),
        }
    )


def check_view(store, projection, view, entity: pd.DataFrame, got: pd.DataFrame, all_views) -> None:
    """Fail unless the rows without ``view``'s features are exactly the rows no snapshot within its
    TTL covers (or one whose features are all empty)."""
    found = coverage(store, projection, view, entity, all_views)
    times = pd.to_datetime(entity[contract.current().time], utc=True)
    covered = found["stamp"].notna()
    if view.ttl:
        covered &= found["stamp"] >= times - view.ttl
    expected = ~covered | found["empty"]
    names = [f.name for f in projection.features]
    missing = got[names].isna().all(axis=1)
    wrong = np.flatnonzero(missing.to_numpy() != expected.to_numpy())
    if len(wrong):
        keys = [e.name for e in view.entity_columns]
        lost = int((missing.to_numpy() & ~expected.to_numpy()).sum())
        examples = entity.iloc[wrong[:EXAMPLES]][[*keys, contract.current().time]].to_dict("records")
        raise FeatureJoinError(
            f"feature view {view.name!r}: {len(wrong)} of {len(entity)} rows disagree with its snapshots within "
            f"the TTL ({view.ttl}): {lost} came back without features a snapshot holds, {len(wrong) - lost} with "
            f"features no snapshot covers; e.g. {examples}"
        )
