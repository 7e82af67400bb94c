"""Drift monitoring: Evidently's DataDriftPreset between what the champion learned from and
what arrives now, over the request's inputs as the use case declares them (its numbers and what
derives from them alone, and its categories; ``UseCase.monitor`` excludes a column or sets its test
and threshold). Each column's threshold is calibrated on the reference's own variation
(``calibrate``), so seasonality the champion was trained through does not count as drift.
Reports (HTML for analysts, JSON for machines) land in the reports zone. Both sides are bounded,
seeded samples (``REFERENCE_MAX_ROWS`` training rows, ``MONITOR_MAX_ROWS`` rows of the window;
``sample`` says why that keeps the scores honest), so a window of 10 million rows costs what
200,000 do once read; the summary gives rows read and compared."""

from __future__ import annotations

import datetime as dt
import functools

import pandas as pd

from lifecycle import contract, lake, reports, thresholds, tracking, ui
from lifecycle import settings as _settings
from lifecycle.aliases import CHAMPION
from lifecycle.training import load_part

DEFAULT_TESTS = {"num": "wasserstein", "cat": "jensenshannon"}  # distances: the monitor calibrates them
DEFAULT_THRESHOLD = 0.1  # Evidently's own for both tests
HEADROOM = 1.25  # a window this much farther than any the champion was trained through drifts
# rows of the champion's training part a monitor reads: every calibration window still gets its
# MONITOR_MAX_ROWS from them (2M over 60 days: 100,000 a 3-day window), and 10M rows are never a frame
REFERENCE_READ_ROWS = 2_000_000


class NothingToMonitor(RuntimeError):
    """No champion or no recent curated data yet: there is nothing to compare."""


def sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``frame``: all of them when it has no more, else a uniform
    sample without replacement, seeded (same frame and seed, same rows), kept in the frame's order.

    Why a sample keeps a drift report honest: the drift scores (Wasserstein distance for numbers,
    Jensen-Shannon for categories above 1,000 rows) estimate a distance between two distributions,
    and a uniform sample of n rows estimates each side's distribution with an error shrinking as
    1/sqrt(n). The reference is itself a sample of ``REFERENCE_MAX_ROWS`` (50,000) rows, so a
    current side of ``MONITOR_MAX_ROWS`` (200,000) rows adds less noise than the reference already
    has, and every row of the window is equally likely to be in it. The summary says both sizes."""
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    # pandas' own seeded sample; sorted back by the (positional) index the readers give every frame
    return frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def read_columns(uc: contract.UseCase) -> list[str]:
    """The event columns a monitor reads: all but the keys (ids are strings, millions of them cost
    gigabytes in memory and no monitored column derives from them)."""
    return [c.name for c in uc.columns if c.kind != contract.KEY]


def monitored(uc: contract.UseCase) -> dict[str, tuple[str, str, float]]:
    """{column: (Evidently column type, test, base threshold)} of the columns the monitor compares:
    the request's numbers, what derives from the request alone and its categories, less those the
    contract excludes; each with the contract's test and threshold or the defaults."""
    out = {}
    for name in (*uc.numerics, *uc.categoricals):
        opts = uc.monitor.get(name, contract.Monitor())
        if opts.exclude:
            continue
        kind = "num" if name in uc.numerics else "cat"
        out[name] = (
            kind,
            opts.test or DEFAULT_TESTS[kind],
            DEFAULT_THRESHOLD if opts.threshold is None else opts.threshold,
        )
    return out


def _inputs(frame: pd.DataFrame, uc: contract.UseCase) -> pd.DataFrame:
    """The monitored columns (``monitored``) of ``frame``, derived ones computed."""
    out = frame[[c for c in (*uc.of(contract.NUMBER), *uc.categoricals) if c in frame]].copy()
    derived = uc.derive(frame, len(frame))
    for name in uc.request_derived:
        out[name] = derived[name]
    return out[list(monitored(uc))]


@functools.cache  # Evidently's registry lookup costs ~0.1 s; a calibration asks per column and window
def _stattest(kind: str, test: str):
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Numerical if kind == "num" else ColumnType.Categorical
    return get_registered_stattest(test, column_type), column_type


def calibrate(reference: pd.DataFrame, uc: contract.UseCase, cfg: _settings.Settings) -> dict[str, dict]:
    """Each monitored column's threshold, from the reference's own variation.

    Every run of ``MONITOR_WINDOW_DAYS`` consecutive days of the reference period (one a day) is
    compared, as a monitored window is, with the rest of the reference, by the column's test (each
    side a seeded uniform sample of at most as many rows as ``compare`` takes). A distance test's
    threshold is then the larger of its base threshold and ``HEADROOM`` times the farthest of those
    windows: variation the champion was trained through (a daily or weekly cycle, a cold week) does
    not fire. A p-value test keeps its base threshold (p-values shrink with sample size, not with
    the data's variation), as does every column when the reference spans fewer than two windows.
    Returns per column the test, base and calibrated threshold, and the in-reference scores' maximum and count."""
    import numpy as np

    columns = monitored(uc)
    days = pd.to_datetime(reference[uc.time], utc=True).dt.floor("D") if uc.time in reference else None
    codes, distinct = pd.factorize(days, sort=True) if days is not None else (None, [])
    width = cfg.monitor_window_days
    windows = [range(i, i + width) for i in range(len(distinct) - width + 1)]
    inputs = _inputs(reference, uc) if len(windows) >= 2 else None
    scores: dict[str, list[float]] = {name: [] for name in columns}
    if inputs is not None:
        # each day's row positions once; a window's sides are then gathered by position (at 5M
        # rows, masking and copying the whole frame per window took 75 s of the 28 windows' time)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(distinct) + 1))
        by_day = [order[bounds[d] : bounds[d + 1]] for d in range(len(distinct))]
    for i, window in enumerate(windows if inputs is not None else []):
        inside = np.concatenate([by_day[d] for d in window])
        outside = np.concatenate([by_day[d] for d in range(len(distinct)) if d not in window])
        if not len(outside):
            continue
        rng = np.random.default_rng([cfg.seed, i])  # seeded: the same reference gives the same thresholds
        current = inputs.iloc[_draw(inside, cfg.monitor_max_rows, rng)]
        rest = inputs.iloc[_draw(outside, cfg.reference_max_rows, rng)]
        for name, (kind, test, base) in columns.items():
            stattest, column_type = _stattest(kind, test)
            ref_col, cur_col = rest[name].dropna(), current[name].dropna()
            if len(ref_col) and len(cur_col):
                scores[name].append(float(stattest(ref_col, cur_col, column_type, base).drift_score))
    out = {}
    for name, (kind, test, base) in columns.items():
        seen = scores[name]
        threshold = max(base, HEADROOM * max(seen)) if not _is_p_value(kind, test) and len(seen) >= 2 else base
        out[name] = {
            "test": test,
            "base_threshold": base,
            "threshold": threshold,
            "reference_windows": len(seen),
            "reference_max": max(seen) if seen else None,
        }
    return out


def _draw(positions, limit: int, rng):
    """At most ``limit`` of ``positions``, uniformly without replacement, in ascending order."""
    import numpy as np

    picked = positions if len(positions) <= limit else rng.choice(positions, limit, replace=False)
    return np.sort(picked)


def reference(cfg: _settings.Settings) -> tuple[pd.DataFrame, str]:
    """The champion's training part (at most ``REFERENCE_READ_ROWS`` of it, a seeded sample kept in
    time order, read as Arrow: ``compare`` and ``calibrate`` sample it further) and its version."""
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise NothingToMonitor(f"model {cfg.model_name!r} has no champion yet: no reference to compare with")
    part = load_part(champion.tags["training_set_uri"], "train", REFERENCE_READ_ROWS, cfg.seed)
    return part, str(champion.version)


def current_window(as_of: dt.date, cfg: _settings.Settings) -> tuple[pd.DataFrame, list[dt.date]]:
    """The latest ``MONITOR_WINDOW_DAYS`` curated days up to ``as_of`` (the monitored columns only)."""
    uc = contract.current(cfg)
    days = [d for d in lake.dates("curated", uc.events) if d <= as_of][-cfg.monitor_window_days :]
    if not days:
        raise NothingToMonitor(f"no curated partitions on or before {as_of}")
    return lake.read_range("curated", uc.events, days[0], days[-1], columns=read_columns(uc)), days


def compare(reference: pd.DataFrame, current: pd.DataFrame, cfg: _settings.Settings) -> tuple[object, list, dict]:
    """Evidently's DataDriftPreset between bounded, seeded samples of ``reference`` (at most
    ``REFERENCE_MAX_ROWS``) and ``current`` (at most ``MONITOR_MAX_ROWS``): (snapshot, its
    metrics, the summary: drift share, drifted columns, the decision, rows read and compared)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    uc = contract.current(cfg)
    columns = monitored(uc)
    calibration = calibrate(reference, uc, cfg)
    ref = _inputs(sample(reference, cfg.reference_max_rows, cfg.seed), uc)
    cur = _inputs(sample(current, cfg.monitor_max_rows, cfg.seed), uc)
    definition = DataDefinition(
        numerical_columns=[c for c, (kind, _, _) in columns.items() if kind == "num"],
        categorical_columns=[c for c, (kind, _, _) in columns.items() if kind == "cat"],
    )
    preset = DataDriftPreset(
        drift_share=cfg.drift_share_threshold,
        per_column_method={c: v["test"] for c, v in calibration.items()},
        per_column_threshold={c: v["threshold"] for c, v in calibration.items()},
    )
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    count = next(m for m in metrics if m["config"]["type"].endswith(":DriftedColumnsCount"))
    drifted = sorted(
        m["config"]["column"]
        for m in metrics
        if m["config"]["type"].endswith(":ValueDrift") and _drifted(m, columns[m["config"]["column"]][0])
    )
    summary = {
        "reference_rows": len(reference),
        "reference_rows_compared": len(ref),
        "current_rows": len(current),
        "current_rows_compared": len(cur),
        "sample_seed": cfg.seed,
        "drift_share": float(count["value"]["share"]),
        "drifted_columns": drifted,
        "threshold": cfg.drift_share_threshold,
        "calibration": calibration,
    }
    summary["drift"] = summary["drift_share"] >= cfg.drift_share_threshold
    return snapshot, metrics, summary


def drift_report(as_of: dt.date, limits: thresholds.Thresholds | None = None) -> dict:
    """Run the report, publish HTML + JSON, and summarise it for the drift decision (made with
    ``limits``, default ``thresholds.in_force()``; the monitor DAG passes the Airflow Variables' too)."""
    limits = limits or thresholds.in_force()
    cfg = limits.apply(_settings.load())
    ref, version = reference(cfg)
    cur, days = current_window(as_of, cfg)
    snapshot, metrics, compared = compare(ref, cur, cfg)
    summary = {
        "model_version": version,
        "current_days": [d.isoformat() for d in days],
        "window": f"{days[0]}..{days[-1]}",
        "as_of": as_of.isoformat(),
        **compared,
        "thresholds": limits.record(),
        "airflow_run": ui.current_run(),
    }
    # named for the data's last day
    summary["report_uri"] = reports.publish_evidently(snapshot, dict(summary), metrics, f"drift/{days[-1]}")
    summary["report_url"] = ui.report_url(summary["report_uri"])  # the page a person opens
    return summary


def describe(summary: dict) -> str:
    """A drift report in one line (the monitor run's note)."""
    verdict = "feature_drift emitted" if summary["drift"] else "no drift"
    columns = ", ".join(summary["drifted_columns"]) or "none"
    return (
        f"{verdict}: drift share {summary['drift_share']:.2f} (threshold "
        f"{summary['thresholds']['drift_share_threshold']['value']}) on {summary['window']} vs champion "
        f"v{summary['model_version']}'s training data; drifted: {columns}; report {summary['report_url']}"
    )


def _drifted(metric: dict, kind: str) -> bool:
    """Distances drift at or above the threshold; p-value tests below it (Evidently's convention)."""
    value, threshold = metric["value"], metric["config"]["threshold"]
    return value < threshold if _is_p_value(kind, metric["config"]["method"]) else value >= threshold


def _is_p_value(kind: str, test: str) -> bool:
    return "p_value" in _stattest(kind, test)[0].display_name.lower()
