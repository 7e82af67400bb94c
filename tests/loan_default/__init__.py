"""Loan default by customer: a second use case, the proof that ``lifecycle.contract`` is reusable.

An application is scored when it is made; whether the loan defaulted becomes known a few days
later (``resolved_at``). Stored features are daily customer aggregates over 14 days
(``feature_repo/``); the model also reads the requested amount against the customer's average.
The generator is ``loan_default.datagen``. Nothing in ``lifecycle`` changes for it: select it with
``LIFECYCLE_USE_CASE=loan_default`` (tests/ is on the path under pytest).
"""

from __future__ import annotations

from pathlib import Path

from lifecycle.contract import CATEGORY, KEY, NUMBER, TIMESTAMP, Column, UseCase, column, hours, ratio

PURPOSES = ("car", "home_improvement", "debt_consolidation", "education", "business", "medical")
EMPLOYMENT = ("salaried", "self_employed", "unemployed", "retired", "student")
WINDOW_DAYS = 14
MIN_AMOUNT, MAX_AMOUNT = 100.0, 60_000.0


def derive(columns, n: int) -> dict:
    """The hour of the application and its amount against the customer's average."""
    return {
        "hour": hours(columns["applied_at"]),
        "amount_to_customer_avg": ratio(
            column(columns, "loan_amount", n), column(columns, "customer_avg_loan_amount_14d", n)
        ),
    }


def snapshot(window, last_day) -> dict:
    """Customer aggregates over the window's applications (``last_day``: its last day's rows)."""
    stats = (
        window.assign(is_last_day=last_day)
        .groupby("customer_id")
        .agg(
            customer_app_count_1d=("is_last_day", "sum"),
            customer_app_count_14d=("loan_amount", "size"),
            customer_avg_loan_amount_14d=("loan_amount", "mean"),
            customer_max_loan_amount_14d=("loan_amount", "max"),
            customer_avg_term_14d=("term_months", "mean"),
        )
        .reset_index()
        .astype({"customer_app_count_1d": "int64", "customer_app_count_14d": "int64"})
    )
    return {"customer_stats": stats}


def use_case(cfg) -> UseCase:
    return UseCase(
        name="loan_default",
        events="applications",
        columns=(
            Column("application_id", KEY),
            Column("customer_id", KEY),
            Column("loan_amount", NUMBER, min=MIN_AMOUNT, max=MAX_AMOUNT),
            Column("term_months", NUMBER, min=6, max=84),
            Column("purpose", CATEGORY, values=PURPOSES),
            Column("employment", CATEGORY, values=EMPLOYMENT),
            Column("applied_at", TIMESTAMP),
        ),
        id="application_id",
        time="applied_at",
        entities=("customer_id",),
        route_by="customer_id",
        label="defaulted",
        labeled_at="resolved_at",
        score="default_probability",
        known="known_customer",
        known_if="customer_avg_loan_amount_14d",
        feature_repo=Path(__file__).parent / "feature_repo",
        feature_service="loan_default_v1",
        feature_tables=("customer_stats",),
        window_days=WINDOW_DAYS,
        snapshot=snapshot,
        derive=derive,
        request_derived=("hour",),
        feature_derived=("amount_to_customer_avg",),
        candidates=("sklearn_logistic", "xgboost"),
        slices=("purpose",),
        example={
            "application_id": "golden-1",
            "customer_id": "u0001",
            "loan_amount": 5000.0,
            "term_months": 36.0,
            "purpose": "car",
            "employment": "salaried",
            "applied_at": "2026-11-20T12:00:00Z",
        },
        unknown={"customer_id": "never-seen", "loan_amount": 20000.0, "employment": "unemployed"},
        generator="loan_default.datagen",
        request_name="Application",
    )
