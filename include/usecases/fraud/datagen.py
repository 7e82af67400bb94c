"""Deterministic card-transaction generator with known scenarios.

``normal`` is the baseline; ``drifted`` shifts amounts, the category mix and the fraud pattern
(small online card-testing fraud instead of large foreign purchases); ``concept`` keeps every input
exactly as ``normal`` draws it but changes which transactions are fraud (concept drift: nothing a
data-drift check sees); ``corrupt`` breaks every rule the quality gate enforces. The same
(scenario, day, seed) always gives the same bytes.

Labels are a late feed: a transaction's label becomes known ``LABEL_DELAY_HOURS`` later on average
(within ``LABEL_MAX_DAYS``); ``lifecycle.devtools.datagen`` lands each day's labels on the day they become
known.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from lifecycle.contract import known_at
from usecases.fraud import CHANNELS, COUNTRIES, MERCHANT_CATEGORIES

SCENARIOS = ("normal", "drifted", "concept", "corrupt")
UNLABELED = ("corrupt",)  # a broken extract: its ids never reach the label source
N_CARDS = 3000
N_MERCHANTS = 400
ROWS_PER_DAY = 3000
FUTURE = pd.Timestamp("2099-12-31T00:00:00Z")
LABEL_DELAY_HOURS = 36  # mean of an exponential delay
LABEL_MAX_DAYS = 7  # every label is known before the end of the 7th day after its transaction's day
BATCH_MERCHANT_SHARE = 0.1  # merchants whose transactions are stamped when their batch settles
BATCH_SECONDS = 1800  # a batch settles every half hour
SAME_SECOND_SHARE = 0.02  # transactions made within the same second as their card's previous one


def _rng(seed: int, *parts: object) -> np.random.Generator:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _population(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = _rng(seed, "population")
    cards = pd.DataFrame(
        {
            "card_id": [f"c{i:05d}" for i in range(N_CARDS)],
            "home": rng.choice(COUNTRIES[:6], N_CARDS),
            "typical": np.exp(rng.normal(3.6, 0.6, N_CARDS)),
        }
    )
    merchants = pd.DataFrame(
        {
            "merchant_id": [f"m{i:04d}" for i in range(N_MERCHANTS)],
            "merchant_category": rng.choice(
                MERCHANT_CATEGORIES, N_MERCHANTS, p=[0.22, 0.18, 0.12, 0.1, 0.08, 0.12, 0.1, 0.08]
            ),
            "merchant_country": rng.choice(
                COUNTRIES, N_MERCHANTS, p=[0.3, 0.15, 0.12, 0.1, 0.08, 0.07, 0.06, 0.04, 0.04, 0.04]
            ),
        }
    )
    merchants["settles_in_batches"] = rng.random(N_MERCHANTS) < BATCH_MERCHANT_SHARE
    return cards, merchants


def _collide(seconds: np.ndarray, card: pd.DataFrame, merchant: pd.DataFrame, rng: np.random.Generator):
    """What real feeds hold and a point-in-time join must survive: events sharing an entity and a
    timestamp. Batch-settling merchants stamp their transactions at the start of the half hour they
    settle in; and some cards are used twice within one second (half of them at the same merchant:
    a double charge). Returns the rows in time order."""
    batch = merchant["settles_in_batches"].to_numpy()
    seconds = np.where(batch, seconds - seconds % BATCH_SECONDS, seconds)  # the half hour keeps its hour
    order = np.argsort(seconds, kind="stable")
    seconds = seconds[order]
    card, merchant = card.iloc[order].reset_index(drop=True), merchant.iloc[order].reset_index(drop=True)
    again = np.flatnonzero(rng.random(len(seconds)) < SAME_SECOND_SHARE)
    again = again[again > 0]
    double = again[rng.random(len(again)) < 0.5]
    seconds[again] = seconds[again - 1]  # still in order: the previous row is no later
    return seconds, _copy_rows(card, again), _copy_rows(merchant, double)


def _copy_rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame`` with each of ``rows`` a copy of the row before it (every column keeps its dtype)."""
    out = {}
    for name in frame.columns:
        values = frame[name].to_numpy().copy()
        values[rows] = values[rows - 1]
        out[name] = values
    return pd.DataFrame(out)


def generate_day(day: dt.date, scenario: str = "normal", seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions and their (later-arriving) labels for one day."""
    base = "normal" if scenario in ("corrupt", "concept") else scenario  # the inputs' distribution
    rng = _rng(seed, base, day.isoformat())
    cards, merchants = _population(seed)
    n = ROWS_PER_DAY
    card = cards.iloc[rng.integers(0, N_CARDS, n)].reset_index(drop=True)
    if base == "drifted":  # category mix shifts towards electronics, travel and digital goods
        weights = np.where(merchants["merchant_category"].isin(["electronics", "travel", "digital_goods"]), 4.0, 1.0)
        merchant_idx = rng.choice(N_MERCHANTS, n, p=weights / weights.sum())
    else:
        merchant_idx = rng.integers(0, N_MERCHANTS, n)
    merchant = merchants.iloc[merchant_idx].reset_index(drop=True)
    hour_p = np.array(
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2, 3, 3.5, 4, 4.5, 5, 4.8, 4.5, 4.5, 4.7, 5, 5, 4.5, 4, 3, 2, 1.5]
    )
    hours = rng.choice(24, n, p=hour_p / hour_p.sum())
    seconds, card, merchant = _collide(
        hours * 3600 + rng.integers(0, 3600, n), card, merchant, _rng(seed, "collisions", base, day.isoformat())
    )
    hours = seconds // 3600
    start = pd.Timestamp(day, tz="UTC")
    ts = start + pd.to_timedelta(seconds, unit="s")
    channel = rng.choice(CHANNELS, n, p=[0.5, 0.35, 0.15])
    abroad = rng.random(n) < 0.08
    country = np.where(abroad, merchant["merchant_country"], card["home"])
    amount = card["typical"].to_numpy() * np.exp(rng.normal(0, 0.5, n))
    if base == "drifted":
        amount *= 1.6

    ratio_high = rng.random(n)
    if base == "normal":  # large, foreign, night-time, online purchases
        logit = (
            -5.2
            + 2.0 * abroad
            + 1.0 * (channel == "online")
            + 0.9 * (hours < 5)
            + 0.8 * merchant["merchant_category"].isin(["electronics", "travel"]).to_numpy()
        )
        fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
        amount = np.where(fraud, amount * (3 + 4 * ratio_high), amount)
        if scenario == "concept":  # same inputs, new fraud: daytime contactless fuel and pharmacy at home
            staple = merchant["merchant_category"].isin(["fuel", "pharmacy", "grocery"]).to_numpy()
            logit = (
                -5.4
                + 2.2 * (channel == "contactless")
                + 1.6 * staple
                + 0.8 * ((hours >= 10) & (hours < 17))
                - 1.0 * abroad
            )
            fraud = _rng(seed, "concept", day.isoformat()).random(n) < 1 / (1 + np.exp(-logit))
    else:  # card testing: many small online digital-goods charges, at home
        digital = (merchant["merchant_category"] == "digital_goods").to_numpy()
        logit = -5.0 + 2.2 * (channel == "online") + 1.8 * digital + 0.6 * (hours >= 20) - 0.5 * abroad
        fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
        amount = np.where(fraud, 0.5 + 4 * ratio_high, amount)

    tx = pd.DataFrame(
        {
            "transaction_id": [f"t{day:%Y%m%d}{i:06d}" for i in range(n)],
            "card_id": card["card_id"],
            "merchant_id": merchant["merchant_id"],
            "amount": np.round(amount, 2),
            "merchant_category": merchant["merchant_category"],
            "country": country,
            "channel": channel,
            "event_timestamp": ts,
        }
    )
    labels = pd.DataFrame(
        {
            "transaction_id": tx["transaction_id"],
            "is_fraud": fraud.astype(int),
            "labeled_at": known_at(ts, day, rng, LABEL_DELAY_HOURS, LABEL_MAX_DAYS),
        }
    )
    if scenario == "corrupt":
        tx = _corrupt(tx, rng)
    return tx, labels


def _corrupt(tx: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Break the contract in every way the quality gate must catch."""
    tx = tx.copy()
    n = len(tx)
    tx.loc[rng.choice(n, 40, replace=False), "merchant_id"] = None
    tx.loc[rng.choice(n, 25, replace=False), "amount"] *= -1
    tx.loc[rng.choice(n, 10, replace=False), "event_timestamp"] = FUTURE
    tx.loc[rng.choice(n, 15, replace=False), "merchant_category"] = "casino"
    dupes = tx.sample(30, random_state=int(rng.integers(1 << 31)))
    return pd.concat([tx, dupes], ignore_index=True).drop(columns=["channel"])
