"""The point-in-time join against the independent reference with the lake in a real S3 server
(and Feast's SQL registry in PostgreSQL), as the scale-out profile runs it."""

import hypothesis
import pit_reference
import pytest
from airflow.sdk.io import store
from hypothesis import strategies as st

from lifecycle import features, lake
from lifecycle.devtools import sandbox
from lifecycle.feature_store import get_store
from lifecycle.platform import env, services

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def on_s3(tmp_path_factory):
    with sandbox.scaleout(tmp_path_factory.mktemp("pit-s3")):
        env.apply()  # the lake's Airflow connection and the S3 credentials pyarrow reads
        services.create_databases()
        assert str(lake.zone("features")).startswith("s3://")
        features.apply_definitions(get_store())
        yield pit_reference.views()
        # Airflow keeps one file system per connection id for the process: this module's S3 server
        # is gone once it ends, and a later module's lake (same connection id) must not reach it
        store._STORE_CACHE.clear()  # noqa: SLF001


@hypothesis.settings(deadline=None, max_examples=15)
@hypothesis.given(data=st.data())
def test_every_row_gets_the_features_of_the_reference_join_on_s3(on_s3, data):
    pit_reference.check_against_reference(data.draw(pit_reference.worlds(on_s3)))
