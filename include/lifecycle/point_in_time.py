"""The point-in-time feature join behind every training set and batch score, and its self-check.

Feast joins (``lifecycle.lake_offline_store``: an ASOF join in DuckDB over the lake's snapshot
tables) each row's entities with the newest snapshot of each view stamped at or before the row's
time and within the view's TTL: one row per input row, in input order, whatever rows share an
entity and an instant. Then every view is joined again another way, a sort-and-sweep in numpy over
the same snapshot tables (pinned for the call), and every feature of every row must be equal: a
join that lost or invented features fails naming the view, the count and example keys and times,
so a training set or a batch score never silently differs from what the online store serves.
The check is independent of the join's logic (ASOF, TTL, keys), not of its reading: both take the
same partitions of each table through ``lake_offline_store`` (the unit and services tests compare
both with a reference that publishes and reads its own snapshots).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lifecycle import contract
from lifecycle.feature_store import get_store

ROW = "lifecycle_row"  # each input row's position, carried through the join
EXAMPLES = 5


class FeatureJoinError(RuntimeError):
    """The point-in-time join returned other rows than it was given, or other features."""


def features(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (the use case's events) with the feature service's stored features as of each row's
    time: the same rows in the same order, index reset."""
    import pyarrow as pa

    uc = contract.current()
    keys = pa.Table.from_pandas(rows[[*uc.entities, uc.time]], preserve_index=False)
    return rows.reset_index(drop=True).join(feature_table(keys).to_pandas())


def feature_table(keys):
    """The feature service's stored features for each row of ``keys`` (an Arrow table with the use
    case's entities and time), as an Arrow table in the same row order.

    Arrow end to end: the rows reach Feast as a frame of Arrow-backed strings and come back as Arrow,
    never one Python string per id (10M rows: bench/training.py)."""
    import pyarrow.compute as pc

    from lifecycle import lake_offline_store  # imports Feast: not at parse time

    uc = contract.current()
    store = get_store()
    service = store.get_feature_service(uc.feature_service)
    n = keys.num_rows
    entity = pd.DataFrame(
        {
            ROW: np.arange(n),
            **{c: keys[c].to_pandas(types_mapper=pd.ArrowDtype) for c in uc.entities},
            uc.time: pd.to_datetime(keys[uc.time].to_pandas(), utc=True),
        }
    )
    views = [(p, store.get_feature_view(p.name)) for p in service.feature_view_projections]
    names = [f.name for p, _ in views for f in p.features]
    with lake_offline_store.pinned():
        got = store.get_historical_features(entity_df=entity, features=service).to_arrow()
        got = got.select([ROW, *names])
        if got.num_rows == n and not np.array_equal(got[ROW].to_numpy(), np.arange(n)):
            got = got.take(pc.sort_indices(got[ROW]))  # a store that returns rows in another order
        if got.num_rows != n or not np.array_equal(got[ROW].to_numpy(), np.arange(n)):
            raise FeatureJoinError(f"the feature join returned {got.num_rows} rows for {n} input rows")
        for projection, view in views:
            check_view(store, projection, view, keys, got, [v for _, v in views])
    return got.drop_columns([ROW])


def _codes(snap_keys, row_keys) -> tuple[np.ndarray, np.ndarray]:
    """int64 codes for the key tuples of the snapshots and of the rows, equal for equal tuples; -1
    for a snapshot with a null key, -2 for a row whose keys no snapshot has."""
    import pyarrow as pa
    import pyarrow.compute as pc

    snap = np.zeros(len(snap_keys[0]), dtype=np.int64)
    rows = np.zeros(len(row_keys[0]), dtype=np.int64)
    snap_null = np.zeros(len(snap), dtype=bool)
    row_null = np.zeros(len(rows), dtype=bool)
    for s_col, r_col in zip(snap_keys, row_keys, strict=True):
        encoded = pa.chunked_array([s_col]).combine_chunks().dictionary_encode()
        found = pc.index_in(r_col, value_set=encoded.dictionary)
        size = max(len(encoded.dictionary), 1)
        snap_null |= encoded.indices.is_null().to_numpy(zero_copy_only=False)
        row_null |= pc.is_null(found).to_numpy(zero_copy_only=False)
        snap = snap * size + encoded.indices.fill_null(0).to_numpy().astype(np.int64)
        rows = rows * size + pc.fill_null(found, 0).to_numpy().astype(np.int64)
    return np.where(snap_null, -1, snap), np.where(row_null, -2, rows)


def newest_at_or_before(snap_keys, snap_times: np.ndarray, row_keys, row_times: np.ndarray) -> np.ndarray:
    """For each row, the index of the snapshot with its keys stamped latest at or before its time
    (-1 when none): every snapshot and row sorted by keys, time and kind (a snapshot first on a tie),
    then swept, each row taking the last snapshot position before it when that one has its keys."""
    n_snap = len(snap_times)
    if n_snap == 0:
        return np.full(len(row_times), -1, np.int64)
    snap_codes, row_codes = _codes(snap_keys, row_keys)
    codes = np.r_[snap_codes, row_codes]
    # time and kind in one key: twice the time, plus one for a row (a snapshot sorts first on a tie)
    order = np.lexsort((np.r_[snap_times * 2, row_times * 2 + 1], codes))
    is_snap = order < n_snap
    last = np.maximum.accumulate(np.where(is_snap, np.arange(len(order)), -1))
    rows = ~is_snap
    found = last[rows]
    sorted_codes = codes[order]
    same = (found >= 0) & (sorted_codes[np.maximum(found, 0)] == sorted_codes[rows])
    out = np.full(len(row_times), -1, np.int64)
    out[order[rows] - n_snap] = np.where(same, order[np.maximum(found, 0)], -1)
    return out


def _micros(column) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(column, pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64()).to_numpy()


def check_view(store, projection, view, keys, got, all_views) -> None:
    """Fail unless every row's features of ``view`` in ``got`` (Arrow, in row order) equal what the
    sweep finds: the newest snapshot of its keys at or before its time, empty past the TTL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lifecycle import lake_offline_store

    uc = contract.current()
    source = lake_offline_store.located(store.config, view.batch_source)
    entity = pd.DataFrame({uc.time: pd.to_datetime(keys[uc.time].to_pandas(), utc=True)})
    table = lake_offline_store.read_table(source, *lake_offline_store.join_range(entity, all_views))
    join_keys = [e.name for e in view.entity_columns]
    row_times = _micros(keys[uc.time])
    stamps = _micros(table[view.batch_source.timestamp_field])
    found = newest_at_or_before(
        [table[k] for k in join_keys], stamps, [keys[projection.join_key_map.get(k, k)] for k in join_keys], row_times
    )
    if view.ttl and len(stamps):
        ttl = int(view.ttl.total_seconds() * 1_000_000)
        found = np.where((found >= 0) & (stamps[np.maximum(found, 0)] >= row_times - ttl), found, -1)
    take = pa.array(found, mask=found < 0)
    wrong = np.zeros(keys.num_rows, dtype=bool)
    lost = np.zeros(keys.num_rows, dtype=bool)
    for feature in projection.features:
        want, have = table[feature.name].take(take), got[feature.name]
        want_null = pc.is_null(want, nan_is_null=True).to_numpy(zero_copy_only=False)
        have_null = pc.is_null(have, nan_is_null=True).to_numpy(zero_copy_only=False)
        differ = pc.fill_null(pc.not_equal(want, have), False).to_numpy(zero_copy_only=False)
        wrong |= (want_null != have_null) | (~want_null & ~have_null & differ)
        lost |= have_null & ~want_null
    if wrong.any():
        bad = np.flatnonzero(wrong)
        examples = keys.take(pa.array(bad[:EXAMPLES])).select([*join_keys, uc.time]).to_pylist()
        raise FeatureJoinError(
            f"feature view {view.name!r}: {len(bad)} of {keys.num_rows} rows disagree with its snapshots within "
            f"the TTL ({view.ttl}): {int(lost.sum())} came back without features a snapshot holds; e.g. {examples}"
        )
