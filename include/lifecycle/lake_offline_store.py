"""Feast's DuckDB offline store over the lake's partitioned Parquet, its point-in-time join an ASOF join.

Why not Feast's Dask/File store: it collapses entity rows that share join keys and event
timestamp (its ``_drop_duplicates``, feast-dev/feast#6787) and drops rows that match no view, so
the features of every event sharing an entity and an instant with another were lost (a fifth of
a real data set of events scheduled on the hour). Why not Feast's own DuckDB (ibis) join: it is
row-safe (it keys rows by join keys and time and left-joins back), but it inner-joins every entity
row with each snapshot inside the TTL and ranks them with a window: measured with bench/training.py
on 10M labeled rows (2 cores), its join alone took 64-82 s and 4-5 GB, where the whole training set
must take at most 120 s and 6 GB (its whole build took 84.7 s and 7.9 GB). So
``get_historical_features`` here is one DuckDB ``ASOF LEFT JOIN`` per view: each entity row,
carried by its position, gets the newest snapshot of its keys stamped at or before its time, kept
only within the view's TTL (what Feast's joins do), and comes back exactly once, in input order
(10M rows: 19 s, the training set 65 s and 5.3 GB; both gave byte-identical training sets). Everything else
(materialization's ``pull_latest``, the registry, the CLI) is Feast's DuckDB store.
``lifecycle.point_in_time`` checks every join against an independent computation.

The definitions in ``feature_repo/`` name their tables by a path relative to the lake root
(``features/card_stats``), a folder of daily partitions (``date=YYYY-MM-DD/data.parquet``)::

    offline_store:
      type: lifecycle.lake_offline_store.LakeOfflineStore
      root: s3://<bucket>/lake
      s3_endpoint_override: http://...

Tables are read with pyarrow's file systems, the same for a folder and for S3 (Feast's
``FileSource.create_filesystem_and_path``, credentials from the environment, the endpoint from the
config), only their partitions that can hold rows a join needs, and handed to DuckDB as Arrow:
DuckDB's own S3 reader would need its httpfs extension, which it downloads at run time. A
partition is read as ``lake.publish`` leaves it at any instant (each file old or new, never a
half); ``pinned()`` makes every read of a table inside it return the same Arrow table, so a check
that reads a view again sees what the join saw.

Feast imports this module when it loads the config (the CLI too), so it imports neither settings
nor Airflow.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import datetime as dt
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

import pandas as pd
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileOptions, FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob
from pydantic import StrictStr

DATA_FILE = "data.parquet"
_pinned: contextvars.ContextVar[dict | None] = contextvars.ContextVar("lake_tables", default=None)


class LakeOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """The DuckDB store's config plus where relative paths start and the S3 endpoint."""

    type: Literal["lifecycle.lake_offline_store.LakeOfflineStore"] = "lifecycle.lake_offline_store.LakeOfflineStore"
    root: StrictStr
    s3_endpoint_override: StrictStr | None = None


def located(config, source):
    """``source`` with a relative path joined to the configured root; any other source unchanged."""
    if not isinstance(source, FileSource) or urlsplit(source.path).scheme or PurePosixPath(source.path).is_absolute():
        return source
    store = config.offline_store
    out = copy.copy(source)
    out.file_options = FileOptions(
        uri=f"{store.root.rstrip('/')}/{source.path}",
        file_format=source.file_format,
        s3_endpoint_override=source.s3_endpoint_override or store.s3_endpoint_override,
    )
    return out


def located_view(config, view):
    """``view`` with its batch source located (a copy; the registry's view is left as it is)."""
    source = located(config, view.batch_source)
    if source is view.batch_source:
        return view
    out = copy.copy(view)
    out.batch_source = source
    return out


@contextlib.contextmanager
def pinned():
    """Inside this block each table is read once: every later read returns the same Arrow table."""
    token = _pinned.set({})
    try:
        yield
    finally:
        _pinned.reset(token)


def partition_files(source: FileSource, first: dt.date | None = None, last: dt.date | None = None):
    """(file system, data files) of the source's ``date=`` partitions with first <= date <= last,
    oldest first; a single Parquet file is itself. Staging folders (``_``-prefixed) are not read."""
    from pyarrow import fs as pafs

    filesystem, path = FileSource.create_filesystem_and_path(source.path, source.s3_endpoint_override)
    filesystem = filesystem or pafs.LocalFileSystem()
    if path.endswith(".parquet"):
        return filesystem, [path]
    files = []
    for info in filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        name = PurePosixPath(info.path).name
        if info.type != pafs.FileType.Directory or not name.startswith("date="):
            continue
        day = dt.date.fromisoformat(name[5:])
        if (first is None or day >= first) and (last is None or day <= last):
            files.append((day, f"{info.path}/{DATA_FILE}"))
    present = {i.path for i in filesystem.get_file_info([f for _, f in files]) if i.type == pafs.FileType.File}
    return filesystem, [f for _, f in sorted(files) if f in present]


def read_table(source: FileSource, first: dt.date | None = None, last: dt.date | None = None):
    """The source's rows from partitions first..last as one Arrow table (pinned inside ``pinned()``)."""
    import pyarrow.parquet as pq

    cache = _pinned.get()
    key = (source.path, first, last)
    if cache is not None and key in cache:
        return cache[key]
    filesystem, files = partition_files(source, first, last)
    if files:
        table = pq.ParquetDataset(files, filesystem=filesystem).read()
    else:  # no snapshot in range (the first days): no rows, with the table's columns
        filesystem, every = partition_files(source)
        if not every:
            raise FileNotFoundError(f"feature table {source.path} has no partition: build the feature tables first")
        table = pq.read_schema(every[-1], filesystem=filesystem).empty_table()
    if cache is not None:
        cache[key] = table
    return table


def join_range(entity_df, feature_views) -> tuple[dt.date | None, dt.date]:
    """The partition days a point-in-time join of ``entity_df`` can take rows from.

    Partition ``date=D`` holds rows stamped within day D or at its end (``features.snapshot`` stamps
    a day's snapshot at its end), and a join takes rows stamped from a row's time minus the TTL up
    to that time: from the day before the earliest such instant to the latest row's day."""
    from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df

    column = infer_event_timestamp_from_entity_df(dict(zip(entity_df.columns, entity_df.dtypes, strict=True)))
    times = pd.to_datetime(entity_df[column], utc=True)
    if not all(v.ttl for v in feature_views):  # a view without a TTL takes its snapshots from any day
        return None, times.max().date()
    ttl = max(v.ttl for v in feature_views)
    return (times.min() - ttl).date() - dt.timedelta(days=1), times.max().date()


def _reader(first: dt.date | None = None, last: dt.date | None = None):
    import ibis

    return lambda source, repo_path: ibis.memtable(read_table(source, first, last))


ROW = "lake_entity_row"  # a row's position in the entity frame, in the join's queries


def asof_queries(entity_df, feature_views, feature_refs, full_feature_names: bool):
    """The point-in-time join of ``entity_df`` with ``feature_views``: the entity rows as Arrow, and
    per view (SQL, {name: Arrow table}) selecting each row's features from the newest snapshot of its
    keys at or before its time, empty when that snapshot is older than the view's TTL, in input order
    (a query per view: DuckDB sorts only a row's position, keys and time, never the other columns)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df

    time = infer_event_timestamp_from_entity_df(dict(zip(entity_df.columns, entity_df.dtypes, strict=True)))
    entity = pa.Table.from_pandas(entity_df, preserve_index=False).replace_schema_metadata(None)
    times = pc.cast(entity[time], pa.timestamp("us", tz="UTC"), safe=False)
    position = pa.array(range(entity.num_rows), pa.int64())
    first, last = join_range(entity_df, feature_views)
    queries = []
    for view in feature_views:
        names = [r.split(":", 1)[1] for r in feature_refs if r.split(":", 1)[0] == view.projection.name_to_use()]
        source = view.batch_source
        keys = {k: view.projection.join_key_map.get(k, k) for k in (e.name for e in view.entity_columns)}
        if not keys or source.field_mapping or source.created_timestamp_column:
            raise ValueError(
                f"feature view {view.name!r}: the lake's offline store joins views with entities, and sources "
                "without field_mapping or created_timestamp_column (a snapshot is one row per key and stamp)"
            )
        stamp = source.timestamp_field
        table = read_table(source, first, last).select([*keys, stamp, *names])
        snapshots = table.set_column(len(keys), stamp, pc.cast(table[stamp], pa.timestamp("us", tz="UTC"), safe=False))
        rows = pa.table({ROW: position, **{f"k{i}": entity[col] for i, col in enumerate(keys.values())}, "t": times})
        on = " AND ".join(f'e."k{i}" = v."{key}"' for i, key in enumerate(keys))
        prefix = f"{view.projection.name_alias or view.name}__" if full_feature_names else ""
        columns = []
        for name in names:
            value = f'v."{name}"'
            if view.ttl:  # Feast's TTL: the snapshot is no older than the row's time minus the TTL
                ttl = int(view.ttl.total_seconds() * 1_000_000)
                value = f'CASE WHEN v."{stamp}" >= e.t - to_microseconds({ttl}) THEN {value} END'
            columns.append(f'{value} AS "{prefix}{name}"')
        select = ", ".join([f"e.{ROW}", *columns])
        query = f'SELECT {select} FROM e ASOF LEFT JOIN v ON {on} AND e.t >= v."{stamp}" ORDER BY e.{ROW}'
        queries.append((query, {"e": rows, "v": snapshots}))
    return entity, queries


MEMORY_LIMIT = "3GB"  # DuckDB's working memory for a join (it spills to a temporary folder beyond it)


@contextlib.contextmanager
def connect():
    """A DuckDB connection for a join: UTC timestamps whatever the machine's zone, bounded memory
    (unbounded, an ASOF join of 10M rows held 4.8 GB more; bench/training.py) spilling into a
    folder of its own (DuckDB names its spill files by number and removes them all on close: a
    shared folder would mix two processes' files), rows in no order but the query's ``ORDER BY``."""
    import shutil
    import tempfile

    import duckdb

    spill = tempfile.mkdtemp(prefix="lifecycle-duckdb-")
    try:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            con.execute(f"SET temp_directory = '{spill}'")
            con.execute("SET preserve_insertion_order = false")
            yield con
    finally:
        shutil.rmtree(spill, ignore_errors=True)


class AsofRetrievalJob(RetrievalJob):
    """The ASOF joins, run by DuckDB when their result is asked for: the entity rows with every
    view's features beside them."""

    def __init__(self, entity, queries, full_feature_names: bool, metadata):
        super().__init__()
        self.entity, self.queries, self._full, self._metadata = entity, queries, full_feature_names, metadata

    def _to_arrow_internal(self, timeout=None):
        import pyarrow as pa
        import pyarrow.compute as pc

        out = self.entity
        with connect() as con:
            for query, tables in self.queries:
                for name, table in tables.items():
                    con.register(name, table)
                # streamed out of DuckDB batch by batch: its result is never held twice
                got = pa.Table.from_batches(con.sql(query).to_arrow_reader(1_000_000))
                if got.num_rows != out.num_rows or not pc.equal(got[ROW], tables["e"][ROW]).to_numpy().all():
                    raise RuntimeError(f"an ASOF join returned {got.num_rows} rows for {out.num_rows}, or out of order")
                for name in got.column_names[1:]:
                    out = out.append_column(name, got[name].combine_chunks())
                del got
        return out

    def _to_df_internal(self, timeout=None):
        return self._to_arrow_internal(timeout).to_pandas()

    @property
    def full_feature_names(self) -> bool:
        return self._full

    @property
    def on_demand_feature_views(self):
        return []

    @property
    def metadata(self):
        return self._metadata

    def persist(self, storage, allow_overwrite=False, timeout=None):
        raise NotImplementedError("a training set is written to the lake by lifecycle.training")


class LakeOfflineStore(DuckDBOfflineStore):
    """Feast's DuckDB store on located sources, reading the lake's partitions, joining by ASOF."""

    @staticmethod
    def get_historical_features(config, feature_views, feature_refs, entity_df, registry, project, **kwargs):
        from feast.infra.offline_stores.offline_store import RetrievalMetadata
        from feast.infra.offline_stores.offline_utils import infer_event_timestamp_from_entity_df

        if not isinstance(entity_df, pd.DataFrame):
            raise TypeError("the lake's offline store joins a pandas entity frame, not a query")
        full = kwargs.get("full_feature_names", False)
        views = [located_view(config, v) for v in feature_views]
        entity, queries = asof_queries(entity_df, views, feature_refs, full)
        time = infer_event_timestamp_from_entity_df(dict(zip(entity_df.columns, entity_df.dtypes, strict=True)))
        times = pd.to_datetime(entity_df[time], utc=True)
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in entity_df.columns if c != time],
            min_event_timestamp=times.min().to_pydatetime(),
            max_event_timestamp=times.max().to_pydatetime(),
        )
        return AsofRetrievalJob(entity, queries, full, metadata)

    @staticmethod
    def pull_latest_from_table_or_query(config, data_source, *args, **kwargs):
        from feast.infra.offline_stores.ibis import pull_latest_from_table_or_query_ibis

        call = _pull_arguments(args, kwargs)
        return pull_latest_from_table_or_query_ibis(
            config=config,
            data_source=located(config, data_source),
            data_source_reader=_reader(call["start_date"].date() - dt.timedelta(days=1), call["end_date"].date()),
            data_source_writer=_no_writes,
            **call,
        )

    @staticmethod
    def pull_all_from_table_or_query(config, data_source, *args, **kwargs):
        from feast.infra.offline_stores.ibis import pull_all_from_table_or_query_ibis

        return pull_all_from_table_or_query_ibis(
            config=config,
            data_source=located(config, data_source),
            data_source_reader=_reader(),
            data_source_writer=_no_writes,
            **_pull_arguments(args, kwargs),
        )

    @staticmethod
    def offline_write_batch(config, feature_view, *args, **kwargs):
        raise NotImplementedError("the lake's feature tables are written by lifecycle.features, not through Feast")

    def validate_data_source(self, config, data_source):
        super().validate_data_source(config, located(config, data_source))

    def get_table_column_names_and_types_from_data_source(self, config, data_source):
        import pyarrow.parquet as pq

        filesystem, files = partition_files(located(config, data_source))
        if not files:
            raise FileNotFoundError(f"feature table {data_source.path} has no partition yet")
        return [(f.name, str(f.type)) for f in pq.read_schema(files[-1], filesystem=filesystem)]


def _pull_arguments(args, kwargs) -> dict:
    """The arguments after the source of Feast's ``pull_*_from_table_or_query``, by name."""
    names = (
        "join_key_columns",
        "feature_name_columns",
        "timestamp_field",
        "created_timestamp_column",
        "start_date",
        "end_date",
    )
    return {**dict(zip(names, args, strict=False)), **kwargs}


def _no_writes(*args, **kwargs):
    raise NotImplementedError("the lake's feature tables are written by lifecycle.features, not through Feast")
