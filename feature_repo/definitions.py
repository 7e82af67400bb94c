"""Feast definitions for the fraud model: entities, daily snapshot views, the request-time
ratio view, and the one feature service used by training and serving alike."""
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

from lifecycle.features import source_path
from lifecycle.settings import load

card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING, description="A payment card")
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.STRING, description="A merchant")

S3 = load().services  # the lake's S3 endpoint in the scale-out profile
card_source = FileSource(name="card_stats_source", path=source_path("card_stats"), timestamp_field="event_timestamp",
                         s3_endpoint_override=S3.s3_endpoint_url if S3 else None)
merchant_source = FileSource(name="merchant_stats_source", path=source_path("merchant_stats"),
                             timestamp_field="event_timestamp", s3_endpoint_override=S3.s3_endpoint_url if S3 else None)

# A snapshot stamped at the end of day D serves all of D+1; TTL leaves a day of slack.
card_stats = FeatureView(
    name="card_stats", entities=[card], ttl=timedelta(days=2), source=card_source,
    schema=[Field(name="card_txn_count_1d", dtype=Int64), Field(name="card_txn_count_7d", dtype=Int64),
            Field(name="card_avg_amount_7d", dtype=Float64), Field(name="card_std_amount_7d", dtype=Float64),
            Field(name="card_max_amount_7d", dtype=Float64), Field(name="card_online_share_7d", dtype=Float64),
            Field(name="card_country_count_7d", dtype=Int64)],
)
merchant_stats = FeatureView(
    name="merchant_stats", entities=[merchant], ttl=timedelta(days=2), source=merchant_source,
    schema=[Field(name="merchant_txn_count_7d", dtype=Int64),
            Field(name="merchant_avg_amount_7d", dtype=Float64)],
)

transaction = RequestSource(name="transaction", schema=[Field(name="amount", dtype=Float64)])


@on_demand_feature_view(
    sources=[card_stats, merchant_stats, transaction],
    schema=[Field(name="amount_to_card_avg", dtype=Float64),
            Field(name="amount_to_merchant_avg", dtype=Float64),
            Field(name="amount_card_zscore", dtype=Float64)],
    mode="pandas",
)
def amount_ratios(inputs: pd.DataFrame) -> pd.DataFrame:
    """The request's amount against stored averages (NaN when the entity has no snapshot)."""
    amount = inputs["amount"].astype(float)
    card_avg = inputs["card_avg_amount_7d"].astype(float)
    card_std = inputs["card_std_amount_7d"].astype(float)
    merchant_avg = inputs["merchant_avg_amount_7d"].astype(float)
    out = pd.DataFrame(index=inputs.index)
    out["amount_to_card_avg"] = amount / card_avg.where(card_avg > 0)
    out["amount_to_merchant_avg"] = amount / merchant_avg.where(merchant_avg > 0)
    out["amount_card_zscore"] = (amount - card_avg) / card_std.where(card_std > 0)
    return out


fraud_model = FeatureService(name=load().feature_service,
                             features=[card_stats, merchant_stats, amount_ratios])
