"""The point-in-time join against an independent reference, and its self-check."""

import hypothesis
import pandas as pd
import pit_reference
import pytest
from hypothesis import strategies as st

from lifecycle import features, point_in_time
from lifecycle.feature_store import get_store

UC = pit_reference.UC


@pytest.fixture
def applied(state):
    features.apply_definitions(get_store())
    return pit_reference.views()


@hypothesis.settings(
    deadline=None, max_examples=40, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(data=st.data())
def test_every_row_gets_the_features_of_the_reference_join(applied, data):
    pit_reference.check_against_reference(data.draw(pit_reference.worlds(applied)))


def test_rows_sharing_an_entity_and_an_instant_all_keep_their_features(applied):
    """The case Feast's Dask/File store loses (it collapses rows sharing join keys and event
    timestamp): 30 events of one card at one second, and 10 at a snapshot's own stamp."""
    snap = one_snapshot(applied, 7, 1.5)
    stamp = pit_reference.end_of(pit_reference.FIRST)
    rows = pd.DataFrame(
        {
            UC.id: [f"e{i}" for i in range(40)],
            "card_id": "c1",
            "merchant_id": "m1",
            UC.time: [stamp + pd.Timedelta(hours=9)] * 30 + [stamp] * 10,
        }
    )
    assert pit_reference.check_against_reference((snap, rows)) == 40
    got = point_in_time.features(rows)
    assert got["card_avg_amount_7d"].tolist() == [1.5] * 40 and got["merchant_txn_count_7d"].tolist() == [7] * 40


def one_snapshot(spec, value_int=3, value_float=2.0):
    """Every view holds one snapshot (of c1 and m1) stamped at the end of the first day."""
    return {
        name: {
            pit_reference.FIRST: (
                pd.DataFrame(
                    {c: [value_int if "Int" in k else value_float] for c, k in cols},
                    index=["c1" if key == "card_id" else "m1"],
                ),
                None,
            )
        }
        for name, (key, _, cols) in spec.items()
    }


def test_a_join_that_loses_rows_or_features_fails_naming_the_view(applied, monkeypatch):
    from feast.infra.offline_stores.dask import DaskOfflineStore, DaskOfflineStoreConfig

    from lifecycle import lake_offline_store

    pit_reference.publish(one_snapshot(applied))
    at = pit_reference.end_of(pit_reference.FIRST) + pd.Timedelta(hours=1)
    rows = pd.DataFrame({UC.id: ["a", "b", "c"], "card_id": "c1", "merchant_id": "m1", UC.time: [at] * 3})

    def dask(config, feature_views, *args, **kwargs):
        """Feast's Dask/File store on the same lake: rows sharing a card and an instant collapse."""
        views = [lake_offline_store.located_view(config, v) for v in feature_views]
        on_dask = config.model_copy()
        on_dask._offline_store = DaskOfflineStoreConfig()
        return DaskOfflineStore.get_historical_features(on_dask, views, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(lake_offline_store.LakeOfflineStore, "get_historical_features", staticmethod(dask))
        with pytest.raises(point_in_time.FeatureJoinError, match="returned 1 rows for 3 input rows"):
            point_in_time.features(rows)

    run = lake_offline_store.AsofRetrievalJob._to_arrow_internal
    card = [name for name, _ in applied["card_stats"][2]]

    def blank_one(job, timeout=None):
        """Every row returned, but the second row's card features lost."""
        import pyarrow as pa

        out = run(job, timeout)
        for name in card:
            values = out[name].to_pylist()
            values[1] = None
            out = out.set_column(out.column_names.index(name), name, pa.array(values, out[name].type))
        return out

    monkeypatch.setattr(lake_offline_store.AsofRetrievalJob, "_to_arrow_internal", blank_one)
    with pytest.raises(point_in_time.FeatureJoinError) as failed:
        point_in_time.features(rows)
    message = str(failed.value)
    assert "feature view 'card_stats': 1 of 3 rows" in message and "1 came back without features" in message
    assert "'card_id': 'c1'" in message and "merchant_stats" not in message


def test_features_a_snapshot_past_its_ttl_would_give_fail_the_check(applied, monkeypatch):
    """A join that ignores the TTL invents features: the check names the view and the rows."""
    from lifecycle import lake_offline_store

    pit_reference.publish(one_snapshot(applied))
    # an hour past the 2-day TTL: the snapshot's partition is still read (the day before the TTL's start)
    late = pit_reference.end_of(pit_reference.FIRST) + pd.Timedelta(days=2, hours=1)
    rows = pd.DataFrame({UC.id: ["a", "b"], "card_id": "c1", "merchant_id": "m1", UC.time: [late] * 2})
    assert point_in_time.features(rows)["card_avg_amount_7d"].isna().all()
    build = lake_offline_store.asof_queries

    def no_ttl(*args, **kwargs):
        entity, queries = build(*args, **kwargs)
        return entity, [(q.replace("CASE WHEN", "CASE WHEN TRUE OR"), tables) for q, tables in queries]

    monkeypatch.setattr(lake_offline_store, "asof_queries", no_ttl)
    with pytest.raises(point_in_time.FeatureJoinError, match=r"feature view '\w+_stats': 2 of 2 rows disagree"):
        point_in_time.features(rows)
