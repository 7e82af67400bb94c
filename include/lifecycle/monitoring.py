"""Drift monitoring: Evidently's DataDriftPreset between what the champion learned from and
what arrives now, over the request's inputs as the use case declares them (its numbers and what
derives from them alone, and its categories). Reports (HTML for analysts, JSON for machines) land
in the reports zone. Both sides are bounded, seeded samples (``REFERENCE_MAX_ROWS`` training rows,
``MONITOR_MAX_ROWS`` rows of the window; ``sample`` says why that keeps the scores honest), so a
window of 10 million rows costs what 200,000 do once read; the summary gives rows read and compared."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lifecycle import contract, lake, reports, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CHAMPION
from lifecycle.training import load_part


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


def _inputs(frame: pd.DataFrame, uc: contract.UseCase) -> pd.DataFrame:
    """The monitored columns: request numbers, what derives from the request alone, categories."""
    out = frame[[*uc.of(contract.NUMBER), *uc.categoricals]].copy()
    derived = uc.derive(frame, len(frame))
    for name in uc.request_derived:
        out[name] = derived[name]
    return out[[*uc.numerics, *uc.categoricals]]


def reference(cfg: _settings.Settings) -> tuple[pd.DataFrame, str]:
    """The champion's training snapshot (sampled by ``compare``) and the champion's version."""
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise NothingToMonitor(f"model {cfg.model_name!r} has no champion yet: no reference to compare with")
    return load_part(champion.tags["training_set_uri"], "train"), str(champion.version)


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
    ref = _inputs(sample(reference, cfg.reference_max_rows, cfg.seed), uc)
    cur = _inputs(sample(current, cfg.monitor_max_rows, cfg.seed), uc)
    definition = DataDefinition(numerical_columns=list(uc.numerics), categorical_columns=list(uc.categoricals))
    snapshot = Report([DataDriftPreset(drift_share=cfg.drift_share_threshold)]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    count = next(m for m in metrics if m["config"]["type"].endswith(":DriftedColumnsCount"))
    drifted = sorted(
        m["config"]["column"] for m in metrics if m["config"]["type"].endswith(":ValueDrift") and _drifted(m)
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
    }
    summary["drift"] = summary["drift_share"] >= cfg.drift_share_threshold
    return snapshot, metrics, summary


def drift_report(as_of: dt.date) -> dict:
    """Run the report, publish HTML + JSON, and summarise it for the drift decision."""
    cfg = _settings.load()
    ref, version = reference(cfg)
    cur, days = current_window(as_of, cfg)
    snapshot, metrics, compared = compare(ref, cur, cfg)
    summary = {
        "model_version": version,
        "current_days": [d.isoformat() for d in days],
        "window": f"{days[0]}..{days[-1]}",
        "as_of": as_of.isoformat(),
        **compared,
    }
    # named for the data's last day
    summary["report_uri"] = reports.publish_evidently(snapshot, dict(summary), metrics, f"drift/{days[-1]}")
    return summary


def _drifted(metric: dict) -> bool:
    """Distances drift at or above the threshold; p-value tests below it (Evidently's convention)."""
    value, threshold = metric["value"], metric["config"]["threshold"]
    return value < threshold if "p_value" in metric["config"]["method"].lower() else value >= threshold
