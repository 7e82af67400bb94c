import datetime as dt

import numpy as np
import pandas as pd
import pytest
from usecases.fraud import CHANNELS, COUNTRIES, FEATURE_DERIVED, MERCHANT_CATEGORIES

from lifecycle import contract
from lifecycle.modeling import FittedPreprocessor, model_frame, model_inputs, preprocessor

UC = contract.current()
CAT = list(UC.categoricals)
DERIVED = FEATURE_DERIVED

NUMERIC = [
    "amount",
    "hour",
    *DERIVED,
    "card_avg_amount_7d",
    "card_std_amount_7d",
    "card_txn_count_7d",
    "merchant_avg_amount_7d",
    "never_seen",
]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    card_avg = rng.gamma(2.0, 30.0, n)
    card_avg[rng.random(n) < 0.2] = np.nan  # cards without a snapshot
    card_avg[:3] = 0.0  # a zero average: the ratio is missing, not infinite
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 40.0, n),
            "event_timestamp": pd.Timestamp("2026-10-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 86400 * 3, n), "s"),
            "card_avg_amount_7d": card_avg,
            "card_std_amount_7d": rng.gamma(2.0, 10.0, n),
            "card_txn_count_7d": pd.array(np.where(np.isnan(card_avg), None, rng.integers(1, 30, n)), dtype="Int64"),
            "merchant_avg_amount_7d": rng.gamma(2.0, 50.0, n),
            "merchant_category": rng.choice(MERCHANT_CATEGORIES, n),
            "country": rng.choice(COUNTRIES, n),
            "channel": rng.choice(CHANNELS, n),
        }
    )


def test_fitted_preprocessor_equals_scikit_learn():
    train, serve = frame(2000, 1), frame(500, 2)
    serve.loc[:10, "merchant_category"] = "casino"  # a category never seen in fit: all zeros, like sklearn
    serve.loc[20:30, "amount"] = np.nan
    prep = preprocessor(NUMERIC, CAT).fit(model_frame(UC, train, NUMERIC))  # never_seen: empty in fit, dropped
    expected = prep.transform(model_frame(UC, serve, NUMERIC))
    got = FittedPreprocessor(prep, NUMERIC).transform(model_inputs(UC, serve, NUMERIC, CAT))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_model_inputs_are_the_same_for_a_frame_and_a_request():
    rows = frame(50, 3)
    as_frame = model_inputs(UC, rows, NUMERIC, CAT)
    request = {c: [None if pd.isna(v) else v for v in rows[c]] for c in rows if c != "event_timestamp"}
    request["event_timestamp"] = [
        t.to_pydatetime().astimezone(dt.timezone(dt.timedelta(hours=-5))) for t in rows["event_timestamp"]
    ]  # same instants, another zone
    as_request = model_inputs(UC, request, NUMERIC, CAT)
    assert as_frame.keys() == as_request.keys()
    for col in as_frame:
        np.testing.assert_array_equal(as_frame[col], as_request[col], err_msg=col)


def test_derived_ratios_are_missing_without_a_usable_average():
    got = model_inputs(
        UC,
        {
            "amount": [100.0, 100.0, 100.0],
            "card_avg_amount_7d": [50.0, 0.0, None],
            "card_std_amount_7d": [25.0, 0.0, None],
            "merchant_avg_amount_7d": [None, 20.0, 40.0],
            "event_timestamp": [dt.datetime(2026, 10, 1, 23, 30, tzinfo=dt.UTC)] * 3,
            "merchant_category": ["fuel"] * 3,
            "country": ["US"] * 3,
            "channel": ["pos"] * 3,
        },
        ["amount", "hour", *DERIVED],
        CAT,
    )
    np.testing.assert_array_equal(got["amount_to_card_avg"], [2.0, np.nan, np.nan])
    np.testing.assert_array_equal(got["amount_card_zscore"], [2.0, np.nan, np.nan])
    np.testing.assert_array_equal(got["amount_to_merchant_avg"], [np.nan, 5.0, 2.5])
    assert got["hour"].tolist() == [23.0] * 3


@pytest.mark.parametrize("flavour", ["xgboost", "sklearn_logistic", "pytorch_mlp"])
def test_lifecycle_model_scores_inputs_like_the_scikit_learn_pipeline(flavour):
    from lifecycle import training
    from lifecycle.modeling import LifecycleModel

    train, serve = frame(1500, 4), frame(200, 5)
    y = (train["amount"] > train["amount"].quantile(0.9)).to_numpy().astype(int)
    prep = preprocessor(NUMERIC, CAT)
    X = prep.fit_transform(model_frame(UC, train, NUMERIC))
    est = training.estimator(flavour, 7, "cpu").fit(X, y)
    model = LifecycleModel(prep, est, NUMERIC, flavour, UC)
    expected = est.predict_proba(prep.transform(model_frame(UC, serve, NUMERIC)))[:, 1]
    np.testing.assert_allclose(model.predict_proba(serve), expected, rtol=1e-6, atol=1e-7)


def test_a_model_pickled_as_fraud_model_before_the_contract_still_loads_and_scores():
    """Versions registered before the use-case contract pickled ``lifecycle.modeling.FraudModel``."""
    import pickle

    from lifecycle import training
    from lifecycle.modeling import LifecycleModel

    train, serve = frame(500, 6), frame(50, 7)
    y = (train["amount"] > train["amount"].quantile(0.9)).to_numpy().astype(int)
    prep = preprocessor(NUMERIC, CAT)
    est = training.estimator("sklearn_logistic", 7, "cpu").fit(prep.fit_transform(model_frame(UC, train, NUMERIC)), y)
    model = LifecycleModel(prep, est, NUMERIC, "sklearn_logistic", UC)
    # protocol 0 names classes as text lines, so the stream can name the class as it was then
    old = pickle.dumps(model, protocol=0).replace(b"\nLifecycleModel\n", b"\nFraudModel\n")
    assert b"\nFraudModel\n" in old and b"LifecycleModel" not in old
    loaded = pickle.loads(old)
    assert isinstance(loaded, LifecycleModel) and loaded.categorical == CAT
    np.testing.assert_array_equal(loaded.predict_proba(serve), model.predict_proba(serve))
