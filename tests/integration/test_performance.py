"""Concept drift end to end in the library: the inputs stay as in `normal`, the fraud pattern
changes; monitoring sees no data drift, live performance sees the champion degrade once the
labels of the concept days arrive. Batch scores are the predictions joined with the labels."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from conftest import land_days, world_from
from lifecycle import (
    evaluation,
    features,
    lake,
    monitoring,
    performance,
    promotion,
    reports,
    scoring,
    settings,
    training,
    validation,
)

NORMAL, CONCEPT = 8, 6


@pytest.fixture(scope="module")
def concept_world(tmp_path_factory, featurized_template):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECYCLE_STATE_DIR", str(tmp_path_factory.mktemp("concept")))
        mp.setenv("LIFECYCLE_MIN_LABELS", "500")
        normal = world_from(featurized_template, NORMAL)
        info = training.build_training_set("concept__v1", pd.Timestamp.now(tz="UTC"))
        parent = training.start_parent_run("concept__v1", info, "test")
        result = training.train_candidate("xgboost", info, parent, seed=7)
        version = str(training.register_best([result], info, "concept__v1", "test")["version"])
        promotion.release(version, force=True)
        concept = land_days(normal[-1] + dt.timedelta(days=1), CONCEPT, "concept")
        for day in concept:
            validation.validate_day(day)
        features.materialize(features.build_tables(concept))
        scoring.score_days(normal + concept)
        yield {"normal": normal, "concept": concept, "version": version}


def test_metrics_match_scikit_learn_and_read_precision_at_the_alert_rate():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.05).astype(int)
    p = np.clip(0.4 * y + 0.6 * rng.random(5000), 0, 1)
    got = evaluation.metrics(y, p, alert_rate=0.02)
    assert got["labels"] == 5000 and got["positives"] == y.sum()
    assert got["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    flagged = p >= got["alert_threshold"]
    assert flagged.sum() == pytest.approx(100, abs=1)
    assert got["precision_at_alert"] == pytest.approx(y[flagged].mean())
    assert got["recall_at_alert"] == pytest.approx(y[flagged].sum() / y.sum())
    assert 0 <= got["ece"] <= 1 and "pr_auc" not in evaluation.metrics(np.zeros(10, int), p[:10], 0.1)


def test_decide_needs_enough_labels_and_compares_chance_and_holdout():
    import dataclasses

    cfg = dataclasses.replace(settings.load(), min_labels=1000, degraded_min_lift=1.1, degraded_drop=0.3)
    assert performance.decide({"pr_auc": 0.05, "labels": 999, "positive_rate": 0.02}, 0.6, cfg)[0] is False
    # a random model on labels with a 20% positive rate: PR-AUC 0.21, degraded whatever its holdout said
    assert performance.decide({"pr_auc": 0.21, "labels": 1000, "positive_rate": 0.2}, 0.3, cfg) == (
        True,
        "live pr_auc 0.2100 is below 0.2200 (1.1 x chance 0.2000 on these 1000 labels)",
    )
    degraded, why = performance.decide({"pr_auc": 0.41, "labels": 5000, "positive_rate": 0.02}, 0.6, cfg)
    assert degraded and why == "live pr_auc 0.4100 is more than 30% below the holdout 0.6000 (limit 0.4200)"
    assert performance.decide({"pr_auc": 0.43, "labels": 5000, "positive_rate": 0.02}, 0.6, cfg)[0] is False
    assert performance.decide(None, 0.6, cfg)[0] is False


def test_concept_drift_degrades_the_champion_without_data_drift(concept_world):
    before = performance.evaluate(concept_world["normal"][-1])
    assert not before["degraded"], before["reason"]
    assert before["labels"] >= 500 and before["value"] > 0.3
    drift = monitoring.drift_report(concept_world["concept"][-1])
    assert not drift["drift"], drift  # the inputs did not move
    after = performance.evaluate(concept_world["concept"][-1])
    assert after["degraded"], after["reason"]
    assert after["value"] < before["value"] - 0.2 and after["labels"] >= 500
    assert after["groups"][f"{concept_world['version']}/champion"]["sources"] == {"batch": after["labels"]}
    page = reports.latest(f"performance/{concept_world['concept'][-1].isoformat()}").parent / "report.html"
    assert after["report_uri"] == str(page)
    again = performance.evaluate(concept_world["concept"][-1])  # a rerun keeps the first run's evidence
    assert again["report_uri"] != after["report_uri"] and ObjectStoragePath(after["report_uri"]).exists()
    assert reports.latest(f"performance/{concept_world['concept'][-1].isoformat()}").parent / "report.html" == (
        ObjectStoragePath(again["report_uri"])
    )
    published = json.loads((page.parent / "report.json").read_text())
    assert published["summary"] == {k: v for k, v in after.items() if k not in ("report_uri", "report_url")}
    drift = next(m for m in published["metrics"] if m["config"]["type"].endswith(":ValueDrift"))
    assert after["prediction_drift"] == {
        "method": drift["config"]["method"],
        "value": drift["value"],
        "threshold": drift["config"]["threshold"],
    }  # the page's own numbers
    index = (lake.zone("reports") / "index.html").read_text()
    assert f"pr_auc {after['value']:.4f}" in index
    # the page leads with what decides: version, window, labels, and per version and arm the
    # primary metric and precision and recall at the alert rate, above Evidently's report
    text = page.read_text()
    head = text[: text.index("</div>")]
    assert f"Live performance of champion v{concept_world['version']}" in head and after["window"] in head
    for g in after["groups"].values():
        assert f"<td>v{g['version']}</td><td>{g['arm']}</td><td>{g['labels']}</td>" in head
        for k in ("pr_auc", "precision_at_alert", "recall_at_alert"):
            assert f"<td>{g[k]:.4f}</td>" in head
    card = reports.card_page(concept_world["version"])
    assert f"'../../../{card}'" in head and (lake.zone("reports") / card).exists()  # published by the run
    assert f'href="{card}"' in index  # each report's row links the version's model card
    mv = performance.tracking.client().get_model_version(settings.load().model_name, concept_world["version"])
    assert float(mv.tags["live_pr_auc"]) == pytest.approx(after["value"])
