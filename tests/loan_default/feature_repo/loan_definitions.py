"""Feast definitions for the loan-default model: the customer entity, its daily snapshot view and
the one feature service training and serving read. Request-time inputs (the hour, the amount
against the customer's average) derive from it in ``loan_default.derive``.

Feast objects only: nothing here reads settings or imports the project (see
``usecases/fraud/feature_repo/definitions.py``). The module has a name of its own: Feast imports a
repo's files by module name, and a process that has parsed the fraud repo already holds a
``definitions`` module.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

customer = Entity(
    name="customer", join_keys=["customer_id"], value_type=ValueType.STRING, description="A loan applicant"
)

# Daily partitions (features/customer_stats/date=YYYY-MM-DD/data.parquet) under the lake root,
# stamped by the library with event_timestamp (lifecycle.features.STAMP).
customer_source = FileSource(
    name="customer_stats_source", path="features/customer_stats", timestamp_field="event_timestamp"
)

# A snapshot stamped at the end of day D serves all of D+1; TTL leaves a day of slack.
customer_stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    ttl=timedelta(days=2),
    source=customer_source,
    schema=[
        Field(name="customer_id", dtype=String),
        Field(name="customer_app_count_1d", dtype=Int64),
        Field(name="customer_app_count_14d", dtype=Int64),
        Field(name="customer_avg_loan_amount_14d", dtype=Float64),
        Field(name="customer_max_loan_amount_14d", dtype=Float64),
        Field(name="customer_avg_term_14d", dtype=Float64),
    ],
)

loan_default_model = FeatureService(name="loan_default_v1", features=[customer_stats])
