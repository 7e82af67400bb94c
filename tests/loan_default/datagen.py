"""Deterministic loan-application generator: one scenario, a learnable default signal.

Customers have a stable employment status, a typical loan size and a hidden risk. An application
defaults more often when the customer is unemployed or self-employed, when it asks for far more
than the customer usually does (visible as the amount against the customer's average), for
business loans and long terms. Whether it defaulted becomes known ``LABEL_DELAY_HOURS`` later on
average, within ``LABEL_MAX_DAYS``. The same (scenario, day, seed) always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from lifecycle.contract import known_at
from loan_default import EMPLOYMENT, MAX_AMOUNT, MIN_AMOUNT, PURPOSES

SCENARIOS = ("normal",)
UNLABELED = ()
N_CUSTOMERS = 500
ROWS_PER_DAY = 600
LABEL_DELAY_HOURS = 24  # mean of an exponential delay
LABEL_MAX_DAYS = 4  # every label is known before the end of the 4th day after its application's day
TERMS = (12, 24, 36, 48, 60, 72)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _customers(seed: int) -> pd.DataFrame:
    rng = _rng(seed, "customers")
    return pd.DataFrame(
        {
            "customer_id": [f"u{i:04d}" for i in range(N_CUSTOMERS)],
            "employment": rng.choice(EMPLOYMENT, N_CUSTOMERS, p=[0.55, 0.15, 0.1, 0.1, 0.1]),
            "typical": np.exp(rng.normal(8.8, 0.5, N_CUSTOMERS)),
            "risk": rng.normal(0, 1, N_CUSTOMERS),
        }
    )


def generate_day(day: dt.date, scenario: str = "normal", seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Applications and their (later-arriving) default labels for one day."""
    rng = _rng(seed, scenario, day.isoformat())
    n = ROWS_PER_DAY
    who = _customers(seed).iloc[rng.integers(0, N_CUSTOMERS, n)].reset_index(drop=True)
    start = pd.Timestamp(day, tz="UTC")
    hour_p = np.array([0.2] * 7 + [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 2.5, 2, 1.5, 1, 0.6, 0.4, 0.3])
    seconds = rng.choice(24, n, p=hour_p / hour_p.sum()) * 3600 + rng.integers(0, 3600, n)
    applied = start + pd.to_timedelta(np.sort(seconds), unit="s")
    stretch = rng.random(n) < 0.15  # asks for far more than usual
    amount = who["typical"].to_numpy() * np.exp(rng.normal(0, 0.3, n)) * np.where(stretch, 3.5, 1.0)
    amount = np.clip(np.round(amount, 2), MIN_AMOUNT, MAX_AMOUNT)
    term = rng.choice(TERMS, n)
    purpose = rng.choice(PURPOSES, n, p=[0.25, 0.2, 0.25, 0.1, 0.1, 0.1])
    employment = who["employment"].to_numpy()
    logit = (
        -3.9
        + 3.0 * (employment == "unemployed")
        + 1.2 * (employment == "self_employed")
        + 0.6 * (employment == "student")
        + 3.0 * stretch
        + 0.5 * who["risk"].to_numpy()
        + 0.7 * (purpose == "business")
        + 0.5 * (term >= 60)
    )
    defaulted = rng.random(n) < 1 / (1 + np.exp(-logit))
    apps = pd.DataFrame(
        {
            "application_id": [f"a{day:%Y%m%d}{i:05d}" for i in range(n)],
            "customer_id": who["customer_id"],
            "loan_amount": amount,
            "term_months": term,
            "purpose": purpose,
            "employment": employment,
            "applied_at": applied,
        }
    )
    labels = pd.DataFrame(
        {
            "application_id": apps["application_id"],
            "defaulted": defaulted.astype(int),
            "resolved_at": known_at(applied, day, rng, LABEL_DELAY_HOURS, LABEL_MAX_DAYS),
        }
    )
    return apps, labels
