"""Feast definitions for the fraud model: entities, daily snapshot views, and the one feature
service used by training and serving alike. Request-time inputs (the hour, the amount against
these averages) are derived from it by ``lifecycle.modeling.model_inputs``, one vectorised code
path for training, batch scoring and the live service.

Feast objects only: nothing here reads settings or imports the project. What differs by profile
is in the rendered feature_store.yaml: the sources' paths are relative to the lake root, which its
offline store names (a folder under the state directory, or ``s3://<bucket>/lake``); see
``lifecycle.feature_store``. The entity columns are declared, so applying or planning needs no
data to infer them from.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING, description="A payment card")
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING, description="A merchant")

# Folders of daily partitions (<zone>/<dataset>/date=YYYY-MM-DD/data.parquet) under the lake root.
card_source = FileSource(name="card_stats_source", path="features/card_stats", timestamp_field="event_timestamp")
merchant_source = FileSource(
    name="merchant_stats_source", path="features/merchant_stats", timestamp_field="event_timestamp"
)

# A snapshot stamped at the end of day D serves all of D+1; TTL leaves a day of slack.
card_stats = FeatureView(
    name="card_stats",
    entities=[card],
    ttl=timedelta(days=2),
    source=card_source,
    schema=[
        Field(name="card_id", dtype=String),
        Field(name="card_txn_count_1d", dtype=Int64),
        Field(name="card_txn_count_7d", dtype=Int64),
        Field(name="card_avg_amount_7d", dtype=Float64),
        Field(name="card_std_amount_7d", dtype=Float64),
        Field(name="card_max_amount_7d", dtype=Float64),
        Field(name="card_online_share_7d", dtype=Float64),
        Field(name="card_country_count_7d", dtype=Int64),
    ],
)
merchant_stats = FeatureView(
    name="merchant_stats",
    entities=[merchant],
    ttl=timedelta(days=2),
    source=merchant_source,
    schema=[
        Field(name="merchant_id", dtype=String),
        Field(name="merchant_txn_count_7d", dtype=Int64),
        Field(name="merchant_avg_amount_7d", dtype=Float64),
    ],
)

fraud_model = FeatureService(name="fraud_model_v1", features=[card_stats, merchant_stats])
