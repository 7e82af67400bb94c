"""Drift monitoring: Evidently's DataDriftPreset between what the champion learned from and
what arrives now, over the request's inputs as the use case declares them (its numbers and what
derives from them alone, and its categories). Reports (HTML for analysts, JSON for machines) land
in the reports zone."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lifecycle import contract, lake, reports, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CHAMPION
from lifecycle.training import load_part


class NothingToMonitor(RuntimeError):
    """No champion or no recent curated data yet: there is nothing to compare."""


def _inputs(frame: pd.DataFrame, uc: contract.UseCase) -> pd.DataFrame:
    """The monitored columns: request numbers, what derives from the request alone, categories."""
    out = frame[[*uc.of(contract.NUMBER), *uc.categoricals]].copy()
    derived = uc.derive(frame, len(frame))
    for name in uc.request_derived:
        out[name] = derived[name]
    return out[[*uc.numerics, *uc.categoricals]]


def reference_and_current(as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The champion's training snapshot (bounded sample) and the latest curated days up to ``as_of``."""
    cfg = _settings.load()
    uc = contract.current(cfg)
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise NothingToMonitor(f"model {cfg.model_name!r} has no champion yet: no reference to compare with")
    reference = load_part(champion.tags["training_set_uri"], "train")
    if len(reference) > cfg.reference_max_rows:
        reference = reference.sample(cfg.reference_max_rows, random_state=cfg.seed)
    days = [d for d in lake.dates("curated", uc.events) if d <= as_of][-cfg.monitor_window_days :]
    if not days:
        raise NothingToMonitor(f"no curated partitions on or before {as_of}")
    current = lake.read_range("curated", uc.events, days[0], days[-1])
    meta = {
        "model_version": str(champion.version),
        "current_days": [d.isoformat() for d in days],
        "window": f"{days[0]}..{days[-1]}",
        "reference_rows": len(reference),
        "current_rows": len(current),
    }
    return _inputs(reference, uc), _inputs(current, uc), meta


def drift_report(as_of: dt.date) -> dict:
    """Run the report, publish HTML + JSON, and summarise it for the drift decision."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cfg = _settings.load()
    uc = contract.current(cfg)
    ref, cur, meta = reference_and_current(as_of)
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
