"""Feast's file offline store, reading relative FileSource paths under a root set in feature_store.yaml.

The definitions in ``feature_repo/`` name their tables by a path relative to the lake root
(``features/card_stats``); where that root is differs by profile and by deployment (a folder under
the state directory, or ``s3://<bucket>/lake``), so it lives in the rendered store config::

    offline_store:
      type: lifecycle.lake_offline_store.LakeOfflineStore
      root: s3://<bucket>/lake
      s3_endpoint_override: http://...

Feast alone resolves a relative FileSource path against the repo folder, and only as a local path
(``FileSource.get_uri_for_file_path`` joins it with ``pathlib``, so an ``s3://`` base cannot work).
This store hands the file (dask) store a copy of each source with the path joined to ``root`` and,
for S3, the configured endpoint: part of Feast's S3 access goes through pyarrow's ``S3FileSystem``,
which does not read ``AWS_ENDPOINT_URL_S3``. Absolute paths and URIs are read as they are.

Feast imports this module when it loads the config (the CLI too), so it imports neither settings
nor Airflow.
"""

from __future__ import annotations

import copy
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from feast.infra.offline_stores.dask import DaskOfflineStore, DaskOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileOptions, FileSource
from pydantic import StrictStr


class LakeOfflineStoreConfig(DaskOfflineStoreConfig):
    """The file store's config (the file store asserts that type) plus where relative paths start."""

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


def _view(config, view):
    source = located(config, view.batch_source)
    if source is view.batch_source:
        return view
    out = copy.copy(view)
    out.batch_source = source
    return out


class LakeOfflineStore(DaskOfflineStore):
    """The file store on located sources: every entry point that takes a source or a view."""

    @staticmethod
    def get_historical_features(config, feature_views, *args, **kwargs):
        return DaskOfflineStore.get_historical_features(
            config, [_view(config, v) for v in feature_views], *args, **kwargs
        )

    @staticmethod
    def pull_latest_from_table_or_query(config, data_source, *args, **kwargs):
        return DaskOfflineStore.pull_latest_from_table_or_query(config, located(config, data_source), *args, **kwargs)

    @staticmethod
    def pull_all_from_table_or_query(config, data_source, *args, **kwargs):
        return DaskOfflineStore.pull_all_from_table_or_query(config, located(config, data_source), *args, **kwargs)

    @staticmethod
    def offline_write_batch(config, feature_view, *args, **kwargs):
        return DaskOfflineStore.offline_write_batch(config, _view(config, feature_view), *args, **kwargs)

    def validate_data_source(self, config, data_source):
        super().validate_data_source(config, located(config, data_source))

    def get_table_column_names_and_types_from_data_source(self, config, data_source):
        return super().get_table_column_names_and_types_from_data_source(config, located(config, data_source))
