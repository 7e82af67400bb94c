"""Deterministic card-transaction generator with known scenarios.

``normal`` is the baseline; ``drifted`` shifts amounts, the category mix and the fraud pattern
(small online card-testing fraud instead of large foreign purchases); ``concept`` keeps every input
exactly as ``normal`` draws it but changes which transactions are fraud (concept drift: nothing a
data-drift check sees); ``corrupt`` breaks every rule the quality gate enforces. The same
(scenario, day, seed) always gives the same bytes.

Labels are a late feed: a transaction's label becomes known ``LABEL_DELAY_HOURS`` later on average
(within ``LABEL_MAX_DAYS``), and each day's labels file holds the labels that became known that
day, for transactions of that day and earlier ones. The generator records which scenario it landed
for each day, so later days' labels follow the pattern their transactions were drawn with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd

from lifecycle.schema import CHANNELS, COUNTRIES, MERCHANT_CATEGORIES

SCENARIOS = ("normal", "drifted", "concept", "corrupt")
N_CARDS = 3000
N_MERCHANTS = 400
ROWS_PER_DAY = 3000
FUTURE = pd.Timestamp("2099-12-31T00:00:00Z")
LABEL_DELAY_HOURS = 36  # mean of an exponential delay
LABEL_MAX_DAYS = 7  # every label is known before the end of the 7th day after its transaction's day


class ScenarioError(ValueError):
    """An unknown scenario name."""


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
    return cards, merchants


def generate_day(day: dt.date, scenario: str = "normal", seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transactions and their (later-arriving) labels for one day."""
    if scenario not in SCENARIOS:
        raise ScenarioError(f"scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
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
    seconds = hours * 3600 + rng.integers(0, 3600, n)
    start = pd.Timestamp(day, tz="UTC")
    ts = start + pd.to_timedelta(np.sort(seconds), unit="s")
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
    delay = pd.to_timedelta(rng.exponential(LABEL_DELAY_HOURS, n), unit="h")
    latest = start + pd.Timedelta(days=LABEL_MAX_DAYS) - pd.Timedelta(seconds=1)
    labels = pd.DataFrame(
        {
            "transaction_id": tx["transaction_id"],
            "is_fraud": fraud.astype(int),
            "labeled_at": pd.Series(ts + delay).clip(upper=latest).dt.floor("s"),
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


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with ISO-8601 UTC timestamps: the landing-zone file format."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.to_csv(index=False).encode()


def labels_known_on(day: dt.date, landed: dict[dt.date, tuple[str, int]]) -> pd.DataFrame:
    """The labels that became known on ``day``, for the transactions of the ``landed`` days
    (day -> (scenario, seed)). A ``corrupt`` day is a broken extract: its ids never reach the label
    source, so none of its rows is ever labeled."""
    frames = []
    for back in range(LABEL_MAX_DAYS):
        source = day - dt.timedelta(days=back)
        if source in landed and landed[source][0] != "corrupt":
            _, labels = generate_day(source, *landed[source])
            frames.append(labels[labels["labeled_at"].dt.date == day])
    if not frames:
        return pd.DataFrame(
            {
                "transaction_id": pd.Series(dtype=str),
                "is_fraud": pd.Series(dtype=int),
                "labeled_at": pd.Series(dtype="datetime64[ns, UTC]"),
            }
        )
    return pd.concat(frames[::-1], ignore_index=True).sort_values(["labeled_at", "transaction_id"], ignore_index=True)


def _record(day: dt.date):
    """Where the generator notes the scenario and seed it landed a day with."""
    from lifecycle import lake

    return lake.zone("landing") / "_generator" / f"{day.isoformat()}.json"


def landed_days(day: dt.date) -> dict[dt.date, tuple[str, int]]:
    """What the generator landed on the days whose labels can still arrive on ``day``."""
    out = {}
    for back in range(LABEL_MAX_DAYS):
        source = day - dt.timedelta(days=back)
        record = _record(source)
        if record.exists():
            got = json.loads(record.read_text())
            out[source] = (got["scenario"], got["seed"])
    return out


def land(day: dt.date, scenario: str = "normal", seed: int = 42) -> list[str]:
    """Write the day's transactions file and the file of labels that became known that day into the
    lake's landing zone (the labels of earlier days follow the scenarios they were landed with)."""
    from lifecycle import lake

    tx, _ = generate_day(day, scenario, seed)
    record = _record(day)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"scenario": scenario, "seed": seed}))
    labels = labels_known_on(day, landed_days(day))
    written = []
    for dataset, frame in (("transactions", tx), ("labels", labels)):
        path = lake.landing_file(dataset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_csv_bytes(frame))
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Land generated card transactions, one file per day.")
    parser.add_argument("--scenario", default="normal", help=f"one of {', '.join(SCENARIOS)}")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    for i in range(args.days):
        for path in land(args.start + dt.timedelta(days=i), args.scenario, args.seed):
            print(path)


if __name__ == "__main__":
    main()
