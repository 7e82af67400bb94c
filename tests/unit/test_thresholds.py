"""Thresholds in force: the deployment's setting, then the use case's value, then the Airflow
Variable; bad values name where they came from; retired absolute settings are refused."""

import dataclasses

import pytest

from lifecycle import contract, settings, thresholds


@pytest.fixture
def use_case(monkeypatch):
    """The configured use case with its own thresholds (what a contract declares)."""
    real = contract.current()

    def declare(**values):
        uc = dataclasses.replace(real, thresholds=values)
        monkeypatch.setattr(contract, "current", lambda cfg=None: uc)
        return uc

    return declare


def test_the_last_layer_that_has_a_threshold_wins_and_says_so(monkeypatch, use_case):
    monkeypatch.setenv("LIFECYCLE_PROMOTION_MIN_LIFT", "1.5")
    monkeypatch.setenv("LIFECYCLE_DEGRADED_DROP", "0.4")
    use_case(degraded_drop=0.2, drift_share_threshold=0.5)
    got = thresholds.in_force(
        variables={"lifecycle_fraud_drift_share_threshold": "0.6", "lifecycle_loans_degraded_drop": "0.9", "x": "y"}
    )
    record = got.record()
    assert record["promotion_min_lift"] == {"value": 1.5, "source": "LIFECYCLE_PROMOTION_MIN_LIFT"}
    assert record["degraded_drop"] == {"value": 0.2, "source": f"use case {contract.current().name}"}
    assert record["drift_share_threshold"] == {"value": 0.6, "source": "Variable lifecycle_fraud_drift_share_threshold"}
    assert set(record) == set(settings.THRESHOLDS)
    cfg = got.apply(settings.load())
    assert (cfg.promotion_min_lift, cfg.degraded_drop, cfg.drift_share_threshold) == (1.5, 0.2, 0.6)


@pytest.mark.parametrize(
    ("variables", "declared", "message"),
    [
        (
            {"lifecycle_fraud_promotion_min_lift": "high"},
            {},
            r"Airflow Variable lifecycle_fraud_promotion_min_lift='high': must be a number",
        ),
        (
            {"lifecycle_fraud_degraded_drop": "1.5"},
            {},
            r"lifecycle_fraud_degraded_drop='1.5': must be between 0.0 and 1.0",
        ),
        ({"lifecycle_fraud_canary_max_psi": "nan"}, {}, r"must be between"),
        ({}, {"promotion_floor": 0.3}, r"'promotion_floor' is not a threshold \(known: promotion_min_lift"),
        ({}, {"promotion_min_lift": 0.5}, r"threshold promotion_min_lift=0.5: must be between 1.0 and 100.0"),
    ],
)
def test_a_bad_value_names_where_it_came_from_and_its_rule(use_case, variables, declared, message):
    use_case(**declared)
    with pytest.raises(thresholds.ThresholdError, match=message):
        thresholds.in_force(variables=variables)


@pytest.mark.parametrize("retired", ["PROMOTION_FLOOR", "DEGRADED_THRESHOLD", "DEGRADED_MARGIN"])
def test_retired_absolute_settings_are_refused_naming_their_successor(monkeypatch, retired):
    monkeypatch.setenv(f"LIFECYCLE_{retired}", "0.3")
    with pytest.raises(settings.SettingError, match=f"LIFECYCLE_{retired} is retired: .* use [A-Z_]+"):
        settings.load()


def test_set_up_lists_every_threshold_as_a_variable_with_its_value_and_meaning(use_case):
    use_case(canary_margin=0.05)
    got = thresholds.as_variables()
    assert set(got) == {f"lifecycle_fraud_{name}" for name in settings.THRESHOLDS}
    assert got["lifecycle_fraud_canary_margin"]["value"] == "0.05"
    assert got["lifecycle_fraud_canary_margin"]["description"].startswith(settings.THRESHOLDS["canary_margin"].meaning)
    assert "use case fraud" in got["lifecycle_fraud_canary_margin"]["description"]
    assert got["lifecycle_fraud_promotion_min_lift"]["value"] == "1.2"


@pytest.mark.parametrize(
    ("metric", "rate", "lift", "floor"),
    [("pr_auc", 0.02, 1.2, 0.024), ("pr_auc", 0.2, 1.2, 0.24), ("pr_auc", 0.6, 2.0, 0.8), ("roc_auc", 0.01, 1.2, 0.6)],
)
def test_the_floor_is_a_multiple_of_chance_at_most_halfway_to_one(metric, rate, lift, floor):
    assert thresholds.floor(metric, rate, lift) == pytest.approx(floor)
