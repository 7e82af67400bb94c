"""The asset graph, defined once: every DAG imports its inlets and outlets from here."""

from airflow.sdk import Asset

RAW = Asset(name="raw_events", group="lake")
CURATED = Asset(name="curated_events", group="lake")
FEATURES = Asset(name="online_features", group="feature_store")
CANDIDATE = Asset(name="model_challenger", group="model_registry")
PROMOTED = Asset(name="model_promoted", group="model_registry")
PACKAGED = Asset(name="service_bento", group="serving")
RELEASED = Asset(name="model_released", group="serving")
DRIFT = Asset(name="feature_drift", group="monitoring")
PREDICTIONS = Asset(name="batch_predictions", group="monitoring")
DEGRADED = Asset(name="model_degraded", group="monitoring")
ERASED = Asset(name="data_erased", group="lake")
