"""Upstream delivers into a bucket of its own, read through an Airflow connection of its own (the
amazon provider's): ``LIFECYCLE_LANDING_ROOT`` points ingest at it, and the lake's bucket holds
only what ingest made of it."""

import datetime as dt
import json
import os

import pytest
from airflow.sdk import ObjectStoragePath
from airflow.sdk.io import store

from lifecycle import ingest, lake, landing, settings
from lifecycle.devtools import datagen, sandbox
from lifecycle.platform import env, services

pytestmark = pytest.mark.services
DAY = dt.date(2026, 10, 5)
ROOT = "s3://upstream_s3@upstream-exports/daily"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    with sandbox.scaleout(tmp_path_factory.mktemp("upstream")) as values:
        # Airflow keeps one file system per connection id for the process: an earlier module's
        # lifecycle_s3 may point at its own S3 server, gone now
        store._STORE_CACHE.clear()  # noqa: SLF001
        env.apply()
        svc = settings.load().services
        services.s3_client(svc).create_bucket(Bucket="upstream-exports")
        os.environ["AIRFLOW_CONN_UPSTREAM_S3"] = json.dumps(
            {
                "conn_type": "aws",
                "login": values["LIFECYCLE_S3_ACCESS_KEY"],
                "password": values["LIFECYCLE_S3_SECRET_KEY"],
                "extra": {"endpoint_url": values["LIFECYCLE_S3_ENDPOINT_URL"], "region_name": "us-east-1"},
            }
        )
        os.environ["LIFECYCLE_LANDING_ROOT"] = ROOT
        yield svc
        store._STORE_CACHE.clear()  # noqa: SLF001 (this module's S3 server stops with it)


def test_ingest_reads_a_day_from_the_upstream_bucket(upstream):
    assert str(lake.zone("landing")) == ROOT
    events, labels = datagen.generate_day(DAY)
    folder = ObjectStoragePath(ROOT) / "transactions" / DAY.isoformat()
    half = len(events) // 2
    (folder / "part-0.parquet").write_bytes(lake.parquet_bytes(events.iloc[:half]))
    (folder / "part-1.parquet").write_bytes(lake.parquet_bytes(events.iloc[half:]))
    (ObjectStoragePath(ROOT) / "labels" / f"{DAY}.csv").write_bytes(datagen.to_csv_bytes(labels.iloc[0:0]))
    [waiting] = landing.missing(DAY)  # the folder is still being written: no _SUCCESS
    assert waiting.startswith(f"{ROOT}/transactions/{DAY}")
    (folder / ingest.READY).write_bytes(b"")
    assert landing.missing(DAY) == []
    manifest = ingest.ingest_day(DAY)["transactions"]
    assert manifest["rows"] == len(events) and manifest["source"] == str(folder)
    raw = lake.partition("raw", "transactions", DAY)
    assert str(raw).startswith(f"s3://{settings.S3_CONN_ID}@{upstream.s3_bucket}/lake/raw/")
    assert len(lake.read_parquet(raw)) == len(events)
    keys = [o["Key"] for o in services.s3_client(upstream).list_objects_v2(Bucket=upstream.s3_bucket)["Contents"]]
    assert keys and not [k for k in keys if "/landing/" in k]  # the lake's bucket holds no landing
