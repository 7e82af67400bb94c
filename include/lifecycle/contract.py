"""The use-case contract: everything specific to one model's domain, declared once.

A use case is a module (``LIFECYCLE_USE_CASE``, default ``usecases.fraud``) whose
``use_case(cfg)`` returns a ``UseCase``: the event columns with their types, keys, allowed values
and ranges; the label and the time it becomes known; the request fields and the answer's name;
the Feast repo and the aggregates it serves; the candidates; an example request; optionally a
generator of demo data and its scenarios. The generic stages derive from it: the Great Expectations suites, the live
service's request and response models (so its OpenAPI document), the model inputs, the Evidently
column mapping, the golden requests of the smoke test. Nothing in ``lifecycle`` names a column.

Cheap to import (no pandas): the DAG processor reads the candidates when it parses the train DAG.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY, CATEGORY, NUMBER, TIMESTAMP = "key", "category", "number", "timestamp"
KINDS = (KEY, CATEGORY, NUMBER, TIMESTAMP)


class ContractError(ValueError):
    """A use case that breaks the contract's own rules (named column missing, unknown kind...)."""


@dataclass(frozen=True)
class Column:
    """One field of an event, as it lands, is validated and arrives in a request."""

    name: str
    kind: str  # KEY (string id), CATEGORY (one of ``values``), NUMBER (within min/max), TIMESTAMP (UTC)
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int = 64  # of a KEY


@dataclass(frozen=True)
class Monitor:
    """How the drift monitor treats one monitored column: left out, or compared with another
    Evidently test (a stattest name: "psi", "ks", "jensenshannon"...) or threshold than the
    defaults (Wasserstein distance for numbers, Jensen-Shannon for categories, 0.1)."""

    exclude: bool = False
    test: str = ""
    threshold: float | None = None


@dataclass(frozen=True)
class UseCase:
    """One model's domain. See the module docstring; ``usecases/fraud`` is the reference."""

    name: str
    events: str  # the dataset of events a day lands (and the service scores one of): "transactions"
    columns: tuple[Column, ...]  # an event's fields, in order: the landing file's and the request's
    id: str  # the event's unique key, the join key of its label
    time: str  # the event time: the day it lands in and the point in time of its features
    entities: tuple[str, ...]  # Feast join keys among the columns
    route_by: str  # the entity a canary share is sticky for
    label: str  # the 0/1 outcome column
    labeled_at: str  # when a label became known: it lands with that day's labels
    score: str  # the answer's probability field, and the prediction log's
    known: str  # the answer's flag: the routed entity had stored features
    known_if: str  # the stored feature whose presence sets ``known``
    feature_repo: Path  # Feast objects only (``feast plan`` works on it)
    feature_service: str  # the FeatureService in it that training and serving read
    feature_tables: tuple[str, ...]  # the snapshot tables, named as the repo's sources' paths
    window_days: int  # a snapshot aggregates the events of this many days up to its day
    snapshot: Callable  # (events of the window, the window's end) -> {table: frame keyed by its entity}
    derive: Callable  # (columns mapping, rows) -> {name: float array} of the derived numerics
    request_derived: tuple[str, ...]  # derived from the request alone (so drift-monitored), e.g. "hour"
    feature_derived: tuple[str, ...]  # derived from the request and stored features
    candidates: tuple[str, ...]  # model flavours to train (``lifecycle.training.FLAVOURS``)
    example: dict  # one valid request for a known entity: the smoke test's first golden request
    unknown: dict  # fields that make ``example`` an entity never seen (it must still score)
    request_name: str = "Request"  # the request model's name in the OpenAPI document
    labels: str = "labels"  # the dataset of labels a day lands
    # optional, for demos and tests: SCENARIOS, UNLABELED, LABEL_MAX_DAYS, generate_day(day, scenario, seed)
    generator: str = ""
    # this use case's own defaults for thresholds (names: ``settings.THRESHOLDS``), over the deployment's
    thresholds: Mapping[str, float] = field(default_factory=dict)
    # per monitored column (``numerics`` and ``categoricals``): how the drift monitor treats it
    monitor: Mapping[str, Monitor] = field(default_factory=dict)
    # the other entities' answer flags: entity -> (flag, the stored feature whose presence sets it)
    known_by: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # optional aggregates over labels, point-in-time: (the last ``label_window_days`` days of events,
    # each with its label where it was known by the snapshot's end, else null; last day) -> {table: frame}
    label_snapshot: Callable | None = None
    label_window_days: int = 0
    # a day's bounds of its own (``lifecycle.distribution``): "rows" (events a day) or
    # "<category or label>=<value>" (that value's share of the day's rows) -> (low, high)
    distribution: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # what the model is for, in a sentence or two: the first thing its model card says
    purpose: str = ""
    # category columns whose values a candidate is judged on one by one (``lifecycle.evaluation``):
    # promotion refuses a challenger that regresses on one of them, the model card lists them
    slices: tuple[str, ...] = ()

    def __post_init__(self):
        names = [c.name for c in self.columns]
        for c in self.columns:
            if c.kind not in KINDS:
                raise ContractError(
                    f"use case {self.name!r}: column {c.name!r} has kind {c.kind!r}, not one of {KINDS}"
                )
            if c.kind == CATEGORY and not c.values:
                raise ContractError(f"use case {self.name!r}: category column {c.name!r} lists no values")
        for role in ("id", "time", "route_by"):
            if getattr(self, role) not in names:
                raise ContractError(f"use case {self.name!r}: {role} {getattr(self, role)!r} is not a column")
        if missing := [e for e in self.entities if e not in names]:
            raise ContractError(f"use case {self.name!r}: entities {missing} are not columns")
        if self.route_by not in self.entities:
            raise ContractError(f"use case {self.name!r}: route_by {self.route_by!r} is not an entity")
        kinds = {c.name: c.kind for c in self.columns}
        if kinds[self.time] != TIMESTAMP or any(kinds[k] != KEY for k in (self.id, *self.entities)):
            raise ContractError(f"use case {self.name!r}: id and entities must be keys, time a timestamp")
        if unknown := sorted(set(self.monitor) - {*self.numerics, *self.categoricals}):
            raise ContractError(
                f"use case {self.name!r}: monitor options for {unknown}, which are not monitored columns "
                f"(numbers, request-derived numbers and categories: {[*self.numerics, *self.categoricals]})"
            )
        if stray := sorted(set(self.known_by) - set(self.entities) | ({self.route_by} & set(self.known_by))):
            raise ContractError(
                f"use case {self.name!r}: known_by names {stray}, which are not entities besides route_by "
                f"{self.route_by!r} (its flag is known, its feature known_if)"
            )
        shares = {f"{c.name}={v}" for c in self.columns if c.kind == CATEGORY for v in c.values}
        if bad := sorted(set(self.distribution) - {"rows", f"{self.label}=0", f"{self.label}=1", *shares}):
            raise ContractError(
                f"use case {self.name!r}: distribution bounds for {bad}: a key is 'rows' or "
                "'<category column>=<one of its values>' or '<label>=0|1'"
            )
        if bad := [s for s in self.slices if s not in self.categoricals]:
            raise ContractError(
                f"use case {self.name!r}: slices {bad} are not category columns ({list(self.categoricals)})"
            )
        if (self.label_snapshot is None) != (self.label_window_days == 0):
            raise ContractError(
                f"use case {self.name!r}: label_snapshot and label_window_days go together (a window of at least a day)"
            )
        if set(self.example) != set(names):
            raise ContractError(f"use case {self.name!r}: the example request must have exactly the columns {names}")

    def of(self, kind: str) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == kind)

    @property
    def event_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def label_columns(self) -> tuple[str, ...]:
        return (self.id, self.label, self.labeled_at)

    @property
    def datasets(self) -> tuple[str, str]:
        """The two feeds a day lands: its events, and the labels that became known that day."""
        return (self.events, self.labels)

    @property
    def timestamps(self) -> dict[str, tuple[str, ...]]:
        return {self.events: (self.time,), self.labels: (self.labeled_at,)}

    @property
    def categoricals(self) -> tuple[str, ...]:
        """What the model reads as categories: the request's category fields."""
        return self.of(CATEGORY)

    @property
    def numerics(self) -> tuple[str, ...]:
        """What the model reads from the request alone as numbers: its number fields and what
        derives from them; the drift monitor compares these and the categoricals."""
        return (*self.of(NUMBER), *self.request_derived)

    @property
    def keys(self) -> tuple[str, ...]:
        """The columns that identify an event: the prediction log keeps them beside each score."""
        return (self.id, *self.entities, self.time)

    def generate(self):
        """The generator module (imported on use: it needs numpy and pandas)."""
        if not self.generator:
            raise ContractError(
                f"use case {self.name!r} declares no generator: land its files with python -m lifecycle.land"
            )
        return importlib.import_module(self.generator)

    @property
    def known_flags(self) -> dict[str, str]:
        """Each answer flag that an entity had stored features, with the stored feature that sets it:
        the routed entity's (``known``) first, then the others' (``known_by``)."""
        return {self.known: self.known_if, **dict(self.known_by.values())}

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def load(module: str, cfg) -> UseCase:
    """The use case of ``module`` (an importable module with ``use_case(cfg)``)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ContractError(f"LIFECYCLE_USE_CASE={module!r}: cannot import it ({err})") from err
    if not callable(getattr(mod, "use_case", None)):
        raise ContractError(f"LIFECYCLE_USE_CASE={module!r}: the module defines no use_case(cfg) function")
    uc = mod.use_case(cfg)
    if not isinstance(uc, UseCase):
        raise ContractError(f"LIFECYCLE_USE_CASE={module!r}: use_case(cfg) returned {type(uc).__name__}, not UseCase")
    return uc


def current(cfg=None) -> UseCase:
    """The configured use case."""
    from lifecycle import settings

    cfg = cfg or settings.load()
    return load(cfg.use_case, cfg)


def package_dir(cfg) -> Path:
    """The folder of the configured use case's top-level package: what a bento ships besides ``lifecycle``."""
    top = importlib.import_module(cfg.use_case.split(".")[0])
    return Path(top.__file__).parent if top.__file__.endswith("__init__.py") else Path(top.__file__)


# Helpers for a use case's ``derive``: columns arrive as pandas Series (training, batch scoring) or
# as lists (a request's fields and Feast's ``to_dict()``, where a missing value is None).


def floats(values, n: int):
    """Values as a float array; None (an absent column) gives NaNs."""
    import numpy as np

    if values is None:
        return np.full(n, np.nan)
    if hasattr(values, "to_numpy"):  # pandas: nullable integer columns hold pd.NA
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)  # Feast's to_dict(): None becomes NaN


def hours(values, tz: str = "UTC"):
    """The hour of each timestamp in time zone ``tz`` (an IANA name: a schedule's local hour, with
    its daylight-saving shifts), as floats; a timestamp without a zone is UTC."""
    import zoneinfo

    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        return pd.to_datetime(values, utc=True).dt.tz_convert(tz).dt.hour.to_numpy(dtype=float)
    zone = zoneinfo.ZoneInfo(tz)
    return np.array([(t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(zone).hour for t in values], dtype=float)


def ratio(num, den):
    """num / den where den > 0, NaN elsewhere (no usable stored value)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def known_at(times, day: dt.date, rng, mean_hours: float, max_days: int):
    """For a generator: when each event's label becomes known, an exponential delay of
    ``mean_hours`` on average after its time, by the end of the ``max_days``-th day after ``day``
    at the latest, in whole seconds (``rng``: the generator's numpy Generator, drawn once)."""
    import pandas as pd

    delay = pd.to_timedelta(rng.exponential(mean_hours, len(times)), unit="h")
    latest = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=max_days) - pd.Timedelta(seconds=1)
    return pd.Series(times + delay).clip(upper=latest).dt.floor("s")


def column(columns: Mapping, name: str, n: int):
    """A column of ``columns`` as floats, NaN when it is absent."""
    return floats(columns.get(name) if name in columns else None, n)
