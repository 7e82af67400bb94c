"""The quality gate's rules over a day as a whole: its volume, each category value's share, each
label value's share.

Every row of a day can pass the contract's rules while the day is impossible: a tenth of the usual
volume, one channel carrying all the traffic, no category left but a default. ``rules`` bounds a
day by what the lake has seen: over the last ``HISTORY_DAYS`` curated days (at least
``MIN_HISTORY_DAYS``), a day's rows between a third of the smallest day and three times the largest;
a value's share at least a third of its smallest daily share, and its complement at least a third
of its smallest (so 8% may rise to 69% but not to 80%), each widened by three binomial standard
errors of the day's size. Drift stays possible: the monitor judges it; the gate stops what no
upstream day looks like. A use case may declare bounds of its own (``UseCase.distribution``),
which replace the derived ones. Each rule becomes a Great Expectations expectation whose
description names it and where its bounds came from, so Data Docs say why a day was quarantined.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from lifecycle import contract, lake

HISTORY_DAYS = 28
MIN_HISTORY_DAYS = 7
FACTOR = 3.0  # how far below (a third) or above (three times) anything seen a day may go
ROWS = "rows"


@dataclass(frozen=True)
class Rule:
    key: str  # ROWS, or "<column>=<value>" (a share)
    lo: float
    hi: float
    source: str

    def describe(self) -> str:
        what = "rows a day" if self.key == ROWS else f"share of {self.key}"
        return f"{what} between {self.lo:.4g} and {self.hi:.4g} ({self.source})"


def shares(frame: pd.DataFrame, columns: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """{"<column>=<value>": share of the rows} for every value of ``columns``."""
    n = len(frame)
    out = {}
    for column, values in columns.items():
        counts = frame[column].astype(str).value_counts() if n else pd.Series(dtype=int)
        for value in values:
            out[f"{column}={value}"] = float(counts.get(value, 0)) / n if n else math.nan
    return out


def share_columns(dataset: str, uc: contract.UseCase) -> dict[str, tuple[str, ...]]:
    """The columns whose values' shares a day of ``dataset`` is bounded on."""
    if dataset == uc.labels:
        return {uc.label: ("0", "1")}
    return {c: uc.column(c).values for c in uc.of(contract.CATEGORY)}


def history(dataset: str, day: dt.date, uc: contract.UseCase) -> list[tuple[int, dict[str, float]]]:
    """(rows, shares) of each curated day of the ``HISTORY_DAYS`` before ``day``."""
    columns = share_columns(dataset, uc)
    days = [d for d in lake.dates("curated", dataset) if day - dt.timedelta(days=HISTORY_DAYS) <= d < day]
    out = []
    for d in days:
        frame = lake.read_parquet(lake.partition("curated", dataset, d), columns=list(columns))
        out.append((len(frame), shares(frame, columns)))
    return out


def rules(dataset: str, day: dt.date, rows: int, uc: contract.UseCase) -> list[Rule]:
    """The day's bounds: the use case's declared ones, and derived ones for the rest (none before
    ``MIN_HISTORY_DAYS`` curated days; shares only on days with rows). ``rows``: the day's size."""
    declared = {
        key: Rule(key, lo, hi, f"declared by use case {uc.name}")
        for key, (lo, hi) in uc.distribution.items()
        if _belongs(key, dataset, uc)
    }
    past = history(dataset, day, uc)
    derived = {}
    if len(past) >= MIN_HISTORY_DAYS:
        source = f"derived from {len(past)} curated days before {day}"
        sizes = [n for n, _ in past]
        if dataset == uc.events:
            derived[ROWS] = Rule(ROWS, min(sizes) / FACTOR, max(sizes) * FACTOR, source)
        seen = [(n, s) for n, s in past if n]
        for key in seen[0][1] if seen and rows else []:
            daily = [s[key] for _, s in seen]
            mean = sum(n * s[key] for n, s in seen) / sum(n for n, _ in seen)
            noise = 3 * math.sqrt(mean * (1 - mean) / rows)
            lo = max(0.0, min(daily) / FACTOR - noise)
            hi = min(1.0, 1 - (1 - max(daily)) / FACTOR + noise)
            derived[key] = Rule(key, lo, hi, source)
    return list({**derived, **declared}.values())


def _belongs(key: str, dataset: str, uc: contract.UseCase) -> bool:
    if key == ROWS:
        return dataset == uc.events
    return key.split("=", 1)[0] in share_columns(dataset, uc)


def expectations(rules_: list[Rule], uc: contract.UseCase) -> list:
    """Great Expectations' own expectations for ``rules_``: the row count between its bounds; a
    share at least ``lo`` (the value's rows are ``mostly`` that share) and at most ``hi`` (the other
    rows are ``mostly`` the rest)."""
    import great_expectations.expectations as gxe

    out = []
    for rule in rules_:
        if rule.key == ROWS:
            out.append(
                gxe.ExpectTableRowCountToBeBetween(
                    min_value=math.ceil(rule.lo), max_value=math.floor(rule.hi), description=rule.describe()
                )
            )
            continue
        column, value = rule.key.split("=", 1)
        typed = int(value) if column == uc.label else value
        if rule.lo > 0:
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=column, value_set=[typed], mostly=rule.lo, description=rule.describe()
                )
            )
        if rule.hi < 1:
            out.append(
                gxe.ExpectColumnValuesToNotBeInSet(
                    column=column, value_set=[typed], mostly=1 - rule.hi, description=rule.describe()
                )
            )
    return out
