import datetime as dt
import json

import pytest
from usecases.fraud import datagen as fraud_datagen

from lifecycle import ingest, lake
from lifecycle.devtools import datagen

DAY = dt.date(2026, 10, 5)


def test_ingest_writes_partition_with_manifest_and_rerun_is_identical(state):
    datagen.land(DAY)
    first = ingest.ingest_day(DAY)
    part = lake.partition("raw", "transactions", DAY)
    data = (part / "data.parquet").read_bytes()
    second = ingest.ingest_day(DAY)
    assert first == second
    assert (part / "data.parquet").read_bytes() == data
    m = lake.manifest(part)
    assert m["rows"] == fraud_datagen.ROWS_PER_DAY
    assert m["schema"]["event_timestamp"] == "datetime64[ns, UTC]"
    assert m["source_sha256"] == lake.sha256(lake.landing_file("transactions", DAY).read_bytes())
    assert m["data_sha256"] == lake.sha256(data)
    assert sorted(p.name for p in part.iterdir()) == ["_manifest.json", "data.parquet"]
    assert lake.dates("raw", "transactions") == [DAY]


def test_absent_landing_file_is_named_and_nothing_is_written(state):
    with pytest.raises(ingest.LandingError, match=r"transactions/2026-10-05\.csv is absent"):
        ingest.ingest_day(DAY)
    assert lake.dates("raw", "transactions") == []


def test_unreadable_landing_file_is_named(state):
    datagen.land(DAY)
    lake.landing_file("labels", DAY).write_bytes(b"")
    with pytest.raises(ingest.LandingError, match=r"labels/2026-10-05\.csv is unreadable"):
        ingest.ingest_day(DAY)
    assert lake.dates("raw", "transactions") == []  # both files are read before either is written


def test_failed_publish_leaves_no_partial_partition(state):
    dest = lake.partition("raw", "transactions", DAY)
    with pytest.raises(TypeError):
        lake.publish(dest, {"data.parquet": b"ok", "broken.parquet": object()}, {"rows": 1})
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []  # staging cleaned up


def test_publish_replaces_a_complete_partition(state):
    dest = lake.partition("curated", "labels", DAY)
    lake.publish(dest, {"data.parquet": b"v1"}, {"v": 1})
    lake.publish(dest, {"data.parquet": b"v2"}, {"v": 2})
    assert (dest / "data.parquet").read_bytes() == b"v2"
    assert json.loads((dest / "_manifest.json").read_text()) == {"v": 2}
