"""Live model performance: the prediction log joined with the labels that have arrived.

Predictions (live and batch) of the events of a window of event days meet the curated labels
known so far; each event counts once per model version and arm (as ``LABEL`` and ``PROBA``,
whatever the use case names its label and score). Per (version, arm) the
headline metrics are computed here (PR-AUC, ROC-AUC, precision and recall at the configured alert
rate, Brier score and expected calibration error); the champion's rows get an Evidently
classification report with prediction drift against the scores the same version gave its offline
holdout. Reports land in ``reports/performance/<as_of>/``, metrics in MLflow against the version.
The champion is degraded when, over at least ``LIFECYCLE_MIN_LABELS`` labels, its live primary
metric is below ``LIFECYCLE_DEGRADED_THRESHOLD`` or below its holdout value minus
``LIFECYCLE_DEGRADED_MARGIN``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from lifecycle import contract, lake, prediction_log, reports, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CHAMPION

LABEL, PROBA = "label", "probability"
CALIBRATION_BINS = 10


class NothingToEvaluate(RuntimeError):
    """No champion, or no prediction of the window has a label yet."""


def window(as_of: dt.date, days: int) -> list[dt.date]:
    return [as_of - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]


def labeled_predictions(as_of: dt.date, cfg: _settings.Settings) -> pd.DataFrame:
    """Predictions of the window's event days that have a label, one per event, version and
    arm (a live answer is preferred to a batch score of the same version)."""
    uc = contract.current(cfg)
    days = window(as_of, cfg.performance_window_days)
    preds = prediction_log.read(cfg, days=days, compact=True)
    if preds.empty:
        raise NothingToEvaluate(f"no logged prediction for the event days {days[0]}..{days[-1]}")
    # a label arrives on its event's day or up to LABEL_MAX_DELAY_DAYS later
    labels = lake.read_range("curated", uc.labels, days[0], as_of + dt.timedelta(days=cfg.label_max_delay_days))
    if labels.empty:
        raise NothingToEvaluate(f"no label has arrived for the event days {days[0]}..{days[-1]}")
    labels = labels[[uc.id, uc.label, uc.labeled_at]].rename(columns={uc.label: LABEL})
    joined = preds.rename(columns={uc.score: PROBA}).merge(labels, on=uc.id, how="inner")
    joined = joined.sort_values("source", key=lambda s: s != "live", kind="stable")
    return joined.drop_duplicates([uc.id, "model_version", "arm"], ignore_index=True)


def metrics(y: np.ndarray, p: np.ndarray, alert_rate: float) -> dict:
    """Headline classification metrics of scores ``p`` against labels ``y``."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    n, positives = len(y), int(y.sum())
    out = {"labels": n, "positives": positives, "alert_rate": alert_rate}
    if n == 0:
        return out
    threshold = float(np.quantile(p, 1 - alert_rate))
    flagged = p >= threshold
    out.update(
        {
            "alert_threshold": threshold,
            "precision_at_alert": float(y[flagged].mean()) if flagged.any() else 0.0,
            "recall_at_alert": float(y[flagged].sum() / positives) if positives else None,
            "brier": float(brier_score_loss(y, p)),
            "ece": expected_calibration_error(y, p),
            "mean_probability": float(p.mean()),
            "positive_rate": positives / n,
        }
    )
    if 0 < positives < n:
        out.update({"pr_auc": float(average_precision_score(y, p)), "roc_auc": float(roc_auc_score(y, p))})
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by their rows."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(idx):
        sel = idx == b
        total += sel.sum() * abs(y[sel].mean() - p[sel].mean())
    return float(total / len(y))


def by_version_and_arm(joined: pd.DataFrame, alert_rate: float) -> dict[str, dict]:
    """``"<version>/<arm>"`` -> metrics and the sources its rows came from."""
    out = {}
    for (version, arm), rows in joined.groupby(["model_version", "arm"], sort=True):
        out[f"{version}/{arm}"] = {
            "version": str(version),
            "arm": arm,
            "sources": rows["source"].value_counts().to_dict(),
            **metrics(rows[LABEL].to_numpy(int), rows[PROBA].to_numpy(float), alert_rate),
        }
    return out


def decide(champion: dict | None, baseline: float | None, cfg: _settings.Settings) -> tuple[bool, str]:
    """(degraded, why) for the champion's live metrics against the threshold and its holdout value."""
    metric = cfg.primary_metric
    if champion is None or champion.get(metric) is None:
        return False, f"no live {metric} for the champion yet (labels with both classes are needed)"
    value, labels = champion[metric], champion["labels"]
    if labels < cfg.min_labels:
        return False, f"{labels} labels, fewer than LIFECYCLE_MIN_LABELS={cfg.min_labels}: no decision"
    if value < cfg.degraded_threshold:
        return True, f"live {metric} {value:.4f} is below the threshold {cfg.degraded_threshold}"
    if baseline is not None and value < baseline - cfg.degraded_margin:
        return True, f"live {metric} {value:.4f} is below the holdout {baseline:.4f} minus {cfg.degraded_margin}"
    return False, f"live {metric} {value:.4f} over {labels} labels is within bounds (holdout {baseline})"


def holdout_scores(version: str, cfg: _settings.Settings) -> pd.DataFrame:
    """The scores and labels the version gave its offline holdout: the prediction-drift reference."""
    from lifecycle import live, training

    mv = tracking.client().get_model_version(cfg.model_name, version)
    holdout = training.load_part(mv.tags["training_set_uri"], "holdout")
    model = live.load_version(cfg, version).model
    label = contract.current(cfg).label
    return pd.DataFrame({LABEL: holdout[label].to_numpy(int), PROBA: model.predict_proba(holdout)})


def evaluate(as_of: dt.date, cfg: _settings.Settings | None = None) -> dict:
    """Join, measure, report, log to MLflow and decide; returns the summary (``degraded`` included)."""
    cfg = cfg or _settings.load()
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise NothingToEvaluate(f"model {cfg.model_name!r} has no champion yet")
    joined = labeled_predictions(as_of, cfg)
    groups = by_version_and_arm(joined, cfg.alert_rate)
    version = str(champion.version)
    live_rows = joined[(joined["model_version"] == version) & (joined["arm"] == CHAMPION)]
    if live_rows[LABEL].nunique() < 2:
        raise NothingToEvaluate(
            f"champion v{version}: {len(live_rows)} labeled predictions in the window, not yet both classes"
        )
    champ = groups[f"{version}/{CHAMPION}"]
    baseline_tag = champion.tags.get(f"holdout_{cfg.primary_metric}")
    baseline = float(baseline_tag) if baseline_tag else None
    degraded, reason = decide(champ, baseline, cfg)
    days = window(as_of, cfg.performance_window_days)
    summary = {
        "as_of": as_of.isoformat(),
        "window": f"{days[0]}..{days[-1]}",
        "model_version": version,
        "metric": cfg.primary_metric,
        "value": champ.get(cfg.primary_metric),
        "baseline": baseline,
        "labels": champ["labels"],
        "champion": champ,
        "groups": groups,
        "degraded": degraded,
        "reason": reason,
    }
    summary["report_uri"] = publish(summary, live_rows, holdout_scores(version, cfg), cfg)
    log_to_mlflow(summary, cfg)
    return summary


def publish(summary: dict, current: pd.DataFrame, reference: pd.DataFrame, cfg: _settings.Settings) -> str:
    """Evidently classification report (+ prediction drift vs the holdout) as HTML and JSON."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import ClassificationPreset

    definition = DataDefinition(
        classification=[BinaryClassification(target=LABEL, prediction_probas=PROBA, pos_label=1)],
        numerical_columns=[PROBA],
    )
    cur = current[[LABEL, PROBA]].reset_index(drop=True)
    threshold = summary["champion"].get("alert_threshold", 0.5)
    snapshot = Report([ClassificationPreset(probas_threshold=threshold), ValueDrift(column=PROBA)]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    evidently = snapshot.dict()["metrics"]
    drift = next((m for m in evidently if m["config"]["type"].endswith(":ValueDrift")), None)
    summary["prediction_drift"] = (
        {"method": drift["config"]["method"], "value": float(drift["value"]), "threshold": drift["config"]["threshold"]}
        if drift
        else None
    )
    return reports.publish_evidently(snapshot, summary, evidently, f"performance/{summary['as_of']}")


def log_to_mlflow(summary: dict, cfg: _settings.Settings) -> None:
    """One run per (version, arm) with the live metrics; the champion's version gets them as tags."""
    import mlflow

    for group in summary["groups"].values():
        with mlflow.start_run(
            experiment_id=tracking.experiment_id(),
            run_name=f"performance {summary['as_of']} v{group['version']} {group['arm']}",
        ):
            mlflow.set_tags(
                {
                    "kind": "live_performance",
                    "model_version": group["version"],
                    "arm": group["arm"],
                    "window": summary["window"],
                    "report_uri": summary["report_uri"],
                }
            )
            mlflow.log_metrics(
                {
                    f"live_{k}": float(v)
                    for k, v in group.items()
                    if isinstance(v, int | float) and not isinstance(v, bool) and v is not None
                }
            )
    tags = {
        f"live_{cfg.primary_metric}": summary["value"],
        "live_labels": summary["labels"],
        "live_as_of": summary["as_of"],
    }
    for key, value in tags.items():
        if value is not None:
            tracking.client().set_model_version_tag(cfg.model_name, summary["model_version"], key, str(value))
