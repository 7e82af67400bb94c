"""Erasure on the scale-out profile: the lake in a real S3 server, Feast's online store in Redis.
Every object of the bucket (decoded) and every Redis key and value lose the cards' ids; Feast
answers them as unknown; the rows of other cards are what they were."""

import datetime as dt
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import redis
from airflow.sdk.io import store

from lifecycle import erasure, features, lake, settings, validation
from lifecycle.devtools import datagen, sandbox, trace
from lifecycle.feature_store import get_store
from lifecycle.platform import env, services

pytestmark = pytest.mark.services
DAYS = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(3)]


def _bucket(folder) -> dict[str, bytes]:
    """Every object of the deployment's bucket, written under ``folder`` as files (to be searched)."""
    s3, bucket = services.s3_client(), settings.load().services.s3_bucket
    keys = [
        o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p.get("Contents", [])
    ]
    out = {}
    for key in keys:
        out[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(out[key])
    return out


def _redis_bytes(client, key: bytes) -> bytes:
    """A key with what it holds: a hash's fields and values, a string's value, another type's dump."""
    kind = client.type(key)
    if kind == b"hash":
        return key + b"".join(k + v for k, v in client.hgetall(key).items())
    if kind == b"string":
        return key + client.get(key)
    return key + (client.dump(key) or b"")


@pytest.fixture(scope="module")
def erased(tmp_path_factory):
    with sandbox.scaleout(tmp_path_factory.mktemp("erasure-s3")) as values:
        env.apply()
        services.create_databases()
        assert str(lake.zone("curated")).startswith("s3://")
        from lifecycle import ingest

        for day in DAYS:
            datagen.land(day)
            ingest.ingest_day(day)
            validation.validate_day(day)
        features.materialize(features.build_tables(DAYS))
        events = lake.read_parquet(lake.partition("curated", "transactions", DAYS[-1]))
        cards = list(events["card_id"].value_counts().index[:3])
        before = _bucket(tmp_path_factory.mktemp("before"))
        online = redis.Redis.from_url(values["LIFECYCLE_REDIS_URL"])
        redis_before = sum(1 for k in online.scan_iter() if any(c.encode() in k for c in cards))
        summary = erasure.erase("card_id", cards, "scale-out test")
        after_folder = tmp_path_factory.mktemp("after")
        after = _bucket(after_folder)
        redis_after = [k for k in online.scan_iter() if any(c.encode() in _redis_bytes(online, k) for c in cards)]
        unknown = (
            get_store()
            .get_online_features(features=["card_stats:card_txn_count_7d"], entity_rows=[{"card_id": c} for c in cards])
            .to_dict()
        )
        again = erasure.erase("card_id", cards, "again")
        yield {
            "cards": cards,
            "summary": summary,
            "before": before,
            "after": after,
            "found": trace.holding(after_folder, cards),
            "redis_before": redis_before,
            "redis_after": redis_after,
            "unknown": unknown,
            "again": again,
            "ledger": erasure.ledger(),
        }
        store._STORE_CACHE.clear()  # noqa: SLF001 (this module's S3 server stops with it)


def test_no_object_or_redis_key_holds_the_ids(erased):
    assert erased["found"] == {}, erased["found"]
    assert erased["redis_before"] == 3 and erased["summary"]["online_keys"] == 3  # one key per card and project
    assert erased["redis_after"] == []
    assert erased["unknown"]["card_txn_count_7d"] == [None, None, None]


def test_the_cards_rows_went_from_every_zone_and_other_rows_stayed(erased):
    cards = set(erased["cards"])
    rows = erased["summary"]["rows"]
    assert {"landing", "raw", "curated", "features"} <= set(rows)
    for key, data in erased["before"].items():
        if not key.endswith(".parquet") or "/predictions/" in key:
            continue
        old, new = pq.read_table(io.BytesIO(data)), pq.read_table(io.BytesIO(erased["after"][key]))
        if "card_id" in old.column_names:
            mine = pc.is_in(old["card_id"], value_set=pa.array(sorted(cards)))
            assert new.equals(old.filter(pc.invert(mine))), key
    curated = sum(
        pq.read_metadata(io.BytesIO(d)).num_rows
        for k, d in erased["before"].items()
        if "/curated/transactions/" in k and k.endswith(".parquet")
    ) - sum(
        pq.read_metadata(io.BytesIO(d)).num_rows
        for k, d in erased["after"].items()
        if "/curated/transactions/" in k and k.endswith(".parquet")
    )
    assert (
        sum(v for k, v in erased["summary"]["removed"]["curated"].items() if k.startswith("transactions/")) == curated
    )


def test_a_second_erasure_changes_nothing(erased):
    assert erased["again"]["changed"] is False and erased["again"]["earlier"] == [erased["summary"]["erasure"]]
    assert [r["erasure"] for r in erased["ledger"]] == [erased["summary"]["erasure"]]
