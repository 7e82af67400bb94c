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


def test_publish_keeps_every_file_readable_while_it_replaces_them(state, monkeypatch):
    """A reader listing the partition between two steps of a publish (a score run's point-in-time
    join beside a features run) finds the old or the new bytes of each file, never a missing one;
    a file the new version does not have is gone at the end, and the manifest comes last."""
    dest = lake.partition("features", "card_stats", DAY)
    lake.publish(dest, {"data.parquet": b"v1", "old.parquet": b"x"}, {"v": 1})
    seen = []
    rename = type(dest).rename

    def observed(self, target):
        seen.append({p.name: p.read_bytes() for p in dest.iterdir()})
        return rename(self, target)

    monkeypatch.setattr(type(dest), "rename", observed)
    lake.publish(dest, {"data.parquet": b"v2"}, {"v": 2})
    assert seen == [{"data.parquet": b"v1", "old.parquet": b"x"}, {"data.parquet": b"v2"}]  # before each rename
    assert sorted(p.name for p in dest.iterdir()) == ["_manifest.json", "data.parquet"]
    assert lake.manifest(dest) == {"v": 2}
