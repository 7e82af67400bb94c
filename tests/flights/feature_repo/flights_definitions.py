"""Feast definitions for the flight-delay model: planes and destinations, their daily snapshot
views and the one feature service training and serving read.

Feast objects only (see ``usecases/fraud/feature_repo/definitions.py``); the module has a name of
its own because Feast imports a repo's files by module name.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

plane = Entity(name="plane", join_keys=["tailnum"], value_type=ValueType.STRING, description="An aircraft")
dest = Entity(name="dest", join_keys=["dest"], value_type=ValueType.STRING, description="A destination airport")

# Daily partitions under the lake root, stamped by the library with event_timestamp.
plane_source = FileSource(name="plane_stats_source", path="features/plane_stats", timestamp_field="event_timestamp")
dest_source = FileSource(name="dest_stats_source", path="features/dest_stats", timestamp_field="event_timestamp")

plane_stats = FeatureView(
    name="plane_stats",
    entities=[plane],
    ttl=timedelta(days=2),
    source=plane_source,
    schema=[
        Field(name="tailnum", dtype=String),
        Field(name="plane_flights_1d", dtype=Int64),
        Field(name="plane_flights_7d", dtype=Int64),
        Field(name="plane_avg_distance_7d", dtype=Float64),
    ],
)

dest_stats = FeatureView(
    name="dest_stats",
    entities=[dest],
    ttl=timedelta(days=2),
    source=dest_source,
    schema=[
        Field(name="dest", dtype=String),
        Field(name="dest_flights_7d", dtype=Int64),
        Field(name="dest_avg_precip_7d", dtype=Float64),
    ],
)

# Built from the outcomes known by each snapshot's end (lifecycle.features: label_snapshot).
outcome_source = FileSource(
    name="plane_outcomes_source", path="features/plane_outcomes", timestamp_field="event_timestamp"
)
plane_outcomes = FeatureView(
    name="plane_outcomes",
    entities=[plane],
    ttl=timedelta(days=2),
    source=outcome_source,
    schema=[
        Field(name="tailnum", dtype=String),
        Field(name="plane_outcomes_14d", dtype=Int64),
        Field(name="plane_delay_rate_14d", dtype=Float64),
    ],
)

flights_model = FeatureService(name="flights_v1", features=[plane_stats, dest_stats, plane_outcomes])
