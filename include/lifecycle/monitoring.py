"""Drift monitoring: Evidently's DataDriftPreset between what the champion learned from and
what arrives now. Reports (HTML for analysts, JSON for machines) land in the reports zone."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lifecycle import lake, reports, tracking
from lifecycle import settings as _settings
from lifecycle.schema import CHAMPION, REQUEST_CATEGORICALS
from lifecycle.training import load_part

NUMERIC = ("amount", "hour")
COLUMNS = (*NUMERIC, *REQUEST_CATEGORICALS)


class NothingToMonitor(RuntimeError):
    """No champion or no recent curated data yet: there is nothing to compare."""


def _inputs(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[[c for c in COLUMNS if c != "hour"]].copy()
    out["hour"] = pd.to_datetime(frame["event_timestamp"], utc=True).dt.hour
    return out[list(COLUMNS)]


def reference_and_current(as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The champion's training snapshot (bounded sample) and the latest curated days up to ``as_of``."""
    cfg = _settings.load()
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise NothingToMonitor(f"model {cfg.model_name!r} has no champion yet: no reference to compare with")
    reference = load_part(champion.tags["training_set_uri"], "train")
    if len(reference) > cfg.reference_max_rows:
        reference = reference.sample(cfg.reference_max_rows, random_state=cfg.seed)
    days = [d for d in lake.dates("curated", "transactions") if d <= as_of][-cfg.monitor_window_days :]
    if not days:
        raise NothingToMonitor(f"no curated partitions on or before {as_of}")
    current = lake.read_range("curated", "transactions", days[0], days[-1])
    meta = {
        "model_version": str(champion.version),
        "current_days": [d.isoformat() for d in days],
        "window": f"{days[0]}..{days[-1]}",
        "reference_rows": len(reference),
        "current_rows": len(current),
    }
    return _inputs(reference), _inputs(current), meta


def drift_report(as_of: dt.date) -> dict:
    """Run the report, publish HTML + JSON, and summarise it for the drift decision."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cfg = _settings.load()
    ref, cur, meta = reference_and_current(as_of)
    definition = DataDefinition(numerical_columns=list(NUMERIC), categorical_columns=list(REQUEST_CATEGORICALS))
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
        **meta,
        "as_of": as_of.isoformat(),
        "drift_share": float(count["value"]["share"]),
        "drifted_columns": drifted,
        "threshold": cfg.drift_share_threshold,
    }
    summary["drift"] = summary["drift_share"] >= cfg.drift_share_threshold
    # named for the data's last day
    summary["report_uri"] = reports.publish_evidently(
        snapshot, dict(summary), metrics, f"drift/{meta['current_days'][-1]}"
    )
    return summary


def _drifted(metric: dict) -> bool:
    """Distances drift at or above the threshold; p-value tests below it (Evidently's convention)."""
    value, threshold = metric["value"], metric["config"]["threshold"]
    return value < threshold if "p_value" in metric["config"]["method"].lower() else value >= threshold
