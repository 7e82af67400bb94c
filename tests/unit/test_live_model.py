"""The live model's start-up on a deployment whose first features run has not applied Feast's definitions."""

import datetime as dt

import pytest

from conftest import featurized_days
from lifecycle import contract, live, settings


def test_a_service_started_before_the_features_exist_waits_unready_then_reads_them(state):
    model = live.LiveModel(settings.load()).start()  # an empty state: no definitions applied, no model
    try:
        uc = contract.current()
        assert model.online is None and not model.ready
        assert repr(uc.feature_service) in model.online_error
        assert model.status()["online_features_error"] == model.online_error
        request = {k: [v] for k, v in uc.example.items()}
        with pytest.raises(live.NotReady, match=f"no online features yet: feature service '{uc.feature_service}'"):
            model.features(request)

        featurized_days(dt.date(2026, 10, 1), 2)  # the features DAG's work: definitions applied, materialized
        assert model.open_online() and model.online_error is None
        row, ages = model.features(request)
        assert set(row) > set(request) and row[uc.id] == request[uc.id] and len(ages) == 1
        assert not model.ready  # still no champion
    finally:
        model.close()
