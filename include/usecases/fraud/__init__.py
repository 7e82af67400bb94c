"""Card fraud: the reference use case, and the default (``LIFECYCLE_USE_CASE=usecases.fraud``).

A transaction is scored when it happens; whether it was fraud becomes known up to a week later.
Stored features are daily card and merchant aggregates over 7 days (``feature_repo/``); the model
also reads the request's amount against them. The generator is ``usecases.fraud.datagen``.
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.contract import CATEGORY, KEY, NUMBER, TIMESTAMP, Column, UseCase, column, hours, ratio

MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "electronics",
    "travel",
    "fashion",
    "digital_goods",
    "pharmacy",
)
CHANNELS = ("pos", "online", "contactless")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "BR", "NG", "IN", "CN")
WINDOW_DAYS = 7
# The request's amount against the stored averages (NaN when the entity has no usable snapshot).
FEATURE_DERIVED = ("amount_to_card_avg", "amount_to_merchant_avg", "amount_card_zscore")


def derive(columns, n: int) -> dict:
    """The hour of the transaction and its amount against the card's and the merchant's averages."""
    amount = column(columns, "amount", n)
    card_avg, card_std = column(columns, "card_avg_amount_7d", n), column(columns, "card_std_amount_7d", n)
    return {
        "hour": hours(columns["event_timestamp"]),
        "amount_to_card_avg": ratio(amount, card_avg),
        "amount_to_merchant_avg": ratio(amount, column(columns, "merchant_avg_amount_7d", n)),
        "amount_card_zscore": ratio(amount - card_avg, card_std),
    }


def snapshot(window, last_day) -> dict:
    """Card and merchant aggregates over the window's transactions (``last_day``: its last day's rows)."""
    import numpy as np

    card = (
        window.assign(is_last_day=last_day)
        .groupby("card_id")
        .agg(
            card_txn_count_1d=("is_last_day", "sum"),
            card_txn_count_7d=("amount", "size"),
            card_avg_amount_7d=("amount", "mean"),
            card_std_amount_7d=("amount", "std"),
            card_max_amount_7d=("amount", "max"),
            card_online_share_7d=("channel", lambda s: float(np.mean(s == "online"))),
            card_country_count_7d=("country", "nunique"),
        )
        .reset_index()
        .fillna({"card_std_amount_7d": 0.0})
        .astype({"card_txn_count_1d": "int64", "card_txn_count_7d": "int64", "card_country_count_7d": "int64"})
    )
    merchant = (
        window.groupby("merchant_id")
        .agg(merchant_txn_count_7d=("amount", "size"), merchant_avg_amount_7d=("amount", "mean"))
        .reset_index()
        .astype({"merchant_txn_count_7d": "int64"})
    )
    return {"card_stats": card, "merchant_stats": merchant}


def use_case(cfg) -> UseCase:
    return UseCase(
        name="fraud",
        events="transactions",
        columns=(
            Column("transaction_id", KEY),
            Column("card_id", KEY),
            Column("merchant_id", KEY),
            Column("amount", NUMBER, min=0.01, max=cfg.max_amount),
            Column("merchant_category", CATEGORY, values=MERCHANT_CATEGORIES),
            Column("country", CATEGORY, values=COUNTRIES),
            Column("channel", CATEGORY, values=CHANNELS),
            Column("event_timestamp", TIMESTAMP),
        ),
        id="transaction_id",
        time="event_timestamp",
        entities=("card_id", "merchant_id"),
        route_by="card_id",
        label="is_fraud",
        labeled_at="labeled_at",
        score="fraud_probability",
        known="known_card",
        known_if="card_avg_amount_7d",
        known_by={"merchant_id": ("known_merchant", "merchant_avg_amount_7d")},
        feature_repo=Path(__file__).parent / "feature_repo",
        feature_service="fraud_model_v1",
        feature_tables=("card_stats", "merchant_stats"),
        window_days=WINDOW_DAYS,
        snapshot=snapshot,
        derive=derive,
        request_derived=("hour",),
        feature_derived=FEATURE_DERIVED,
        candidates=("xgboost", "pytorch_mlp", "sklearn_logistic"),
        slices=("country", "channel", "merchant_category"),
        purpose=(
            "Scores each card transaction, when it happens, with the probability that it is fraud: the "
            "transactions with the highest scores (the alert budget) go to fraud analysts for review. "
            "Whether a transaction was fraud becomes known up to a week later."
        ),
        example={
            "transaction_id": "golden-1",
            "card_id": "c00001",
            "merchant_id": "m0001",
            "amount": 42.5,
            "merchant_category": "grocery",
            "country": "US",
            "channel": "pos",
            "event_timestamp": "2026-10-20T12:00:00Z",
        },
        unknown={"card_id": "never-seen", "amount": 950.0, "channel": "online"},
        generator="usecases.fraud.datagen",
        request_name="Transaction",
    )
