"""Live model performance: the prediction log joined with the labels that have arrived.

Predictions (live and batch) of the events of a window of event days meet the curated labels
known so far; each event counts once per model version and arm (as ``LABEL`` and ``PROBA``,
whatever the use case names its label and score). Per (version, arm) the
headline metrics are ``evaluation.metrics`` (PR-AUC, ROC-AUC, precision and recall at the configured
alert rate, Brier score and expected calibration error); the champion's rows get an Evidently
classification report with prediction drift against the scores the same version gave its offline
holdout. Reports land in ``reports/performance/<as_of>/``, metrics in MLflow against the version.
The champion is degraded when, over at least ``LIFECYCLE_MIN_LABELS`` labels, its live primary
metric is below ``degraded_min_lift`` times what chance reaches on the same labels, or more than
``degraded_drop`` (a share) below its holdout value (``lifecycle.thresholds``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from lifecycle import (
    columnar,
    contract,
    evaluation,
    lake,
    model_card,
    prediction_reader,
    pseudonym,
    reports,
    thresholds,
    tracking,
    ui,
)
from lifecycle import settings as _settings
from lifecycle.aliases import CHAMPION

LABEL, PROBA = "label", "probability"


class NothingToEvaluate(RuntimeError):
    """No champion, or no prediction of the window has a label yet."""


def window(as_of: dt.date, days: int) -> list[dt.date]:
    return [as_of - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]


def labeled_predictions(as_of: dt.date, cfg: _settings.Settings) -> pd.DataFrame:
    """Predictions of the window's event days that have a label, one per event, version and
    arm (a live answer is preferred to a batch score of the same version).

    Built for millions of logged rows: only the columns the metrics need are read (id, score,
    version, arm, source; id and label), strings stay in Arrow buffers, and the join and the
    de-duplication run on integer codes (Arrow's hash of the ids, numpy's sort) rather than on
    pandas object columns; version, arm and source come back as categoricals (bench/scale.py: 10
    million logged rows, 4.3 GB and 64 s with pandas merges)."""
    import pyarrow as pa

    uc = contract.current(cfg)
    days = window(as_of, cfg.performance_window_days)
    columns = [uc.id, uc.score, "model_version", "arm", "source"]
    # duplicates of a request (a retried flush) go with the (event, version, arm) ones below
    preds = prediction_reader.read_table(cfg, columns=columns, days=days, by_request=False)
    _release()
    if preds.num_rows == 0:
        raise NothingToEvaluate(f"no logged prediction for the event days {days[0]}..{days[-1]}")
    # a label arrives on its event's day or up to LABEL_MAX_DELAY_DAYS later
    last = as_of + dt.timedelta(days=cfg.label_max_delay_days)
    labels = lake.read_range_table("curated", uc.labels, days[0], last, [uc.id, uc.label])
    if labels is None or labels.num_rows == 0:
        raise NothingToEvaluate(f"no label has arrived for the event days {days[0]}..{days[-1]}")
    # the log keeps the event id's pseudonym: the labels' ids are hashed the same way to meet it
    label_ids = pseudonym.of(cfg).array(labels[uc.id], distinct=True)  # an event has one label
    label = labels[uc.label].to_numpy().astype("int64")
    del labels
    # the inner join: each prediction's row in the labels (an event has one label: the quality gate)
    at = lookup(preds[uc.id], label_ids)
    del label_ids
    _release()
    scored = np.isfinite(preds[uc.score].to_numpy(zero_copy_only=False).astype(float))  # a failed score: none
    rows = np.flatnonzero((at >= 0) & scored)  # the labeled predictions
    del scored
    at = at[rows]
    label = label[at]
    versions, arms = (preds[c].take(rows) for c in ("model_version", "arm"))  # small: int32 codes
    live = columnar.equals(preds["source"], "live")[rows]
    keep = rows[columnar.first_rows([at, versions, arms], prefer=live)]
    del versions, arms, live, at
    label = label[np.searchsorted(rows, keep)]
    del rows
    # column by column, each dropped from the log as it is copied: one column's copy at a time
    joined = {}
    for name in columns:
        joined[PROBA if name == uc.score else name] = preds[name].take(keep)
        preds = preds.drop_columns([name])
        _release()
    joined = pa.table(joined)
    del preds
    joined = joined.append_column(LABEL, pa.array(label))
    joined = joined.to_pandas(types_mapper=columnar.arrow_strings)
    _release()
    return joined


JOIN_BUCKETS = 16


def lookup(keys, values) -> np.ndarray:
    """For each of ``keys`` (Arrow strings) its position in ``values`` (unique), or -1.

    ``pyarrow.compute.index_in`` hashes all of ``values`` at once: ~900 MB for 10 million ids.
    Both sides are split first into ``JOIN_BUCKETS`` parts by their last two bytes (read from the
    Arrow buffers: no hashing, no Python object), and each part is looked up in its own, so the
    hash table holds a sixteenth of the ids at a time."""
    import pyarrow.compute as pc

    key_part, value_part = _bucket(keys), _bucket(values)
    at = np.full(len(key_part), -1, dtype=np.int64)
    for part in range(JOIN_BUCKETS):
        these, among = np.flatnonzero(key_part == part), np.flatnonzero(value_part == part)
        if len(these) and len(among):
            value_set = values.take(among)  # a sixteenth of the values
            found = pc.fill_null(pc.index_in(keys.take(these), value_set=value_set), -1).to_numpy()
            hit = found >= 0
            at[these[hit]] = among[found[hit]]
            del value_set, found
            _release()  # the part's copies and hash table, before the next part allocates its own
    return at


def _bucket(strings) -> np.ndarray:
    """Each string's part, 0 to ``JOIN_BUCKETS`` - 1, from its last two bytes."""
    import pyarrow as pa

    out = []
    for chunk in strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]:
        _, offsets, data = chunk.buffers()
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        ends = np.frombuffer(offsets, width)[chunk.offset : chunk.offset + len(chunk) + 1]
        raw = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
        # in the offsets' own width and 16-bit arithmetic: ~100 MB of temporaries for 10 million ids, not ~400
        length, end = np.diff(ends), ends[1:]
        last = np.where(length >= 1, raw[np.maximum(end - 1, 0)], 0).astype(np.uint16)
        before = np.where(length >= 2, raw[np.maximum(end - 2, 0)], 0)
        last *= 31
        last += before
        last %= JOIN_BUCKETS
        out.append(last.astype(np.uint8))
    return np.concatenate(out) if out else np.zeros(0, np.uint8)


def _release() -> None:
    """Hand the memory Arrow's allocator keeps for reuse back to the system between the join's
    steps: without it the freed buffers of one step add to the next step's peak (~1 GB at 10M rows)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def by_version_and_arm(joined: pd.DataFrame, alert_rate: float) -> dict[str, dict]:
    """``"<version>/<arm>"`` -> metrics and the sources its rows came from."""
    out = {}
    groups = joined.groupby(["model_version", "arm"], sort=True, observed=True)[["source", LABEL, PROBA]]
    for (version, arm), rows in groups:
        sources = rows["source"].value_counts()  # a categorical counts its absent values too: not those
        out[f"{version}/{arm}"] = {
            "version": str(version),
            "arm": str(arm),
            "sources": {str(k): int(v) for k, v in sources[sources > 0].items()},
            **evaluation.metrics(rows[LABEL].to_numpy(int), rows[PROBA].to_numpy(float), alert_rate),
        }
    return out


def decide(champion: dict | None, baseline: float | None, cfg: _settings.Settings) -> tuple[bool, str]:
    """(degraded, why) for the champion's live metrics: below ``degraded_min_lift`` times what
    chance reaches on the same live labels, or ``degraded_drop`` (a share) below its holdout value."""
    metric = cfg.primary_metric
    if champion is None or champion.get(metric) is None:
        return False, f"no live {metric} for the champion yet (labels with both classes are needed)"
    value, labels = champion[metric], champion["labels"]
    if labels < cfg.min_labels:
        return False, f"{labels} labels, fewer than LIFECYCLE_MIN_LABELS={cfg.min_labels}: no decision"
    chance = thresholds.chance(metric, champion["positive_rate"])
    floor = thresholds.floor(metric, champion["positive_rate"], cfg.degraded_min_lift)
    if value < floor:
        return True, (
            f"live {metric} {value:.4f} is below {floor:.4f} ({cfg.degraded_min_lift:g} x chance {chance:.4f} "
            f"on these {labels} labels)"
        )
    if baseline is not None and value < baseline * (1 - cfg.degraded_drop):
        return True, (
            f"live {metric} {value:.4f} is more than {cfg.degraded_drop:.0%} below the holdout {baseline:.4f} "
            f"(limit {baseline * (1 - cfg.degraded_drop):.4f})"
        )
    return False, (
        f"live {metric} {value:.4f} over {labels} labels is within bounds (holdout {baseline}, chance {chance:.4f})"
    )


def holdout_scores(version: str, cfg: _settings.Settings) -> pd.DataFrame:
    """The scores and labels the version gave its offline holdout: the prediction-drift reference."""
    from lifecycle import live, training

    mv = tracking.client().get_model_version(cfg.model_name, version)
    holdout = training.load_part(mv.tags["training_set_uri"], "holdout")
    model = live.load_version(cfg, version).model
    label = contract.current(cfg).label
    return pd.DataFrame({LABEL: holdout[label].to_numpy(int), PROBA: model.predict_proba(holdout)})


def evaluate(
    as_of: dt.date, cfg: _settings.Settings | None = None, limits: thresholds.Thresholds | None = None
) -> dict:
    """Join, measure, report, log to MLflow and decide with ``limits`` (default
    ``thresholds.in_force()``); returns the summary (``degraded`` and the thresholds included)."""
    limits = limits or thresholds.in_force(cfg)
    cfg = limits.apply(cfg or _settings.load())
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise NothingToEvaluate(f"model {cfg.model_name!r} has no champion yet")
    joined = labeled_predictions(as_of, cfg)
    groups = by_version_and_arm(joined, cfg.alert_rate)
    version = str(champion.version)
    live_rows = joined.loc[(joined["model_version"] == version) & (joined["arm"] == CHAMPION), [LABEL, PROBA]]
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
        "thresholds": limits.record(),
        "airflow_run": ui.current_run(),
    }
    summary["report_uri"] = publish(summary, live_rows, holdout_scores(version, cfg), cfg, header(summary, cfg))
    summary["report_url"] = ui.report_url(summary["report_uri"])  # the page a person opens
    log_to_mlflow(summary, cfg)
    model_card.publish(version)  # its live performance so far
    return summary


def publish(
    summary: dict, current: pd.DataFrame, reference: pd.DataFrame, cfg: _settings.Settings, lead: str = ""
) -> str:
    """Evidently classification report (+ prediction drift vs the holdout) as HTML and JSON.

    Evidently runs on bounded, seeded samples (``monitoring.sample``): at most ``MONITOR_MAX_ROWS``
    of the champion's labeled predictions and ``REFERENCE_MAX_ROWS`` holdout scores; the summary
    says how many of each it compared. The headline metrics (``metrics``) are the summary's, over
    every joined row; the report's own classification figures are the sample's estimate of them."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import ClassificationPreset

    from lifecycle.monitoring import sample

    definition = DataDefinition(
        classification=[BinaryClassification(target=LABEL, prediction_probas=PROBA, pos_label=1)],
        numerical_columns=[PROBA],
    )
    numpy = {LABEL: "int64", PROBA: "float64"}  # the join's columns are Arrow-backed
    cur = sample(current[[LABEL, PROBA]], cfg.monitor_max_rows, cfg.seed).astype(numpy)
    ref = sample(reference[[LABEL, PROBA]], cfg.reference_max_rows, cfg.seed).astype(numpy)
    summary["report_rows"] = {"current": len(current), "current_compared": len(cur), "reference": len(reference)}
    summary["report_rows"].update({"reference_compared": len(ref), "seed": cfg.seed})
    threshold = summary["champion"].get("alert_threshold", 0.5)
    snapshot = Report([ClassificationPreset(probas_threshold=threshold), ValueDrift(column=PROBA)]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    evidently = snapshot.dict()["metrics"]
    drift = next((m for m in evidently if m["config"]["type"].endswith(":ValueDrift")), None)
    summary["prediction_drift"] = (
        {"method": drift["config"]["method"], "value": float(drift["value"]), "threshold": drift["config"]["threshold"]}
        if drift
        else None
    )
    return reports.publish_evidently(snapshot, summary, evidently, f"performance/{summary['as_of']}", lead)


def header(summary: dict, cfg: _settings.Settings) -> str:
    """What the performance page leads with: the champion's version, the window, and per version and
    arm its labels, primary metric and precision and recall at the alert rate; links to the model
    card and the Airflow run. Evidently's report below covers the champion's rows."""
    import html

    m, rate = cfg.primary_metric, cfg.alert_rate
    run = summary.get("airflow_run") or {}

    def num(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = "".join(
        f"<tr><td>v{html.escape(g['version'])}</td><td>{html.escape(g['arm'])}</td><td>{g['labels']}</td>"
        f"<td>{g['positives']}</td><td>{num(g.get(m))}</td><td>{num(g.get('precision_at_alert'))}</td>"
        f"<td>{num(g.get('recall_at_alert'))}</td><td>{num(g.get('ece'))}</td></tr>"
        for g in summary["groups"].values()
    )
    version = summary["model_version"]
    card = f"../../../{reports.card_page(version)}"  # from performance/<as of>/<run>/report.html
    links = f"<a href='{html.escape(card)}'>model card of v{html.escape(version)}</a>"
    if run.get("url"):
        links += f" · Airflow run <a href='{html.escape(run['url'])}'>{html.escape(run['run_id'])}</a>"
    verdict = "degraded" if summary["degraded"] else "within bounds"
    return (
        "<div style='font-family:sans-serif;margin:1em 2em;padding:1em;border:1px solid #ccc'>"
        f"<h1 style='margin-top:0'>Live performance of champion v{html.escape(version)}</h1>"
        f"<p>Events of {html.escape(summary['window'])}, labels known by {html.escape(summary['as_of'])}: "
        f"{summary['labels']} labeled predictions of the champion. {html.escape(m)} "
        f"{num(summary['value'])} (holdout {num(summary['baseline'])}): <b>{verdict}</b>. "
        f"{html.escape(summary['reason'])}</p>"
        "<table style='border-collapse:collapse' border='1' cellpadding='4'><tr><th>version</th><th>arm</th>"
        f"<th>labels</th><th>positives</th><th>{html.escape(m)}</th><th>precision at {rate:.1%} alerts</th>"
        f"<th>recall at {rate:.1%} alerts</th><th>calibration error</th></tr>{rows}</table>"
        f"<p>{links}</p></div>"
    )


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
                    "report_url": summary["report_url"],
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
