"""``lifecycle.evaluation`` against independent references: scikit-learn's metrics per slice and a
bootstrap written here, a reliability table computed with pandas, XGBoost's own margins and the
scikit-learn pipeline for the contributions; and the gate on real judged slices: a challenger better
on average but worse on one country is refused, naming it."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_modeling import CAT, NUMERIC, UC, frame

from lifecycle import evaluation, promotion, settings, training
from lifecycle.modeling import LifecycleModel, model_frame, preprocessor


def holdout(n: int, seed: int):
    """Labels, a slice column and two models' scores: the challenger ranks far better everywhere but
    on country "NG", where its scores are noise."""
    rng = np.random.default_rng(seed)
    country = rng.choice(["US", "GB", "NG"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < 0.1).astype(int)
    champion = np.clip(0.1 + 0.3 * y + rng.normal(0, 0.25, n), 0, 1)
    challenger = np.clip(0.05 + 0.8 * y + rng.normal(0, 0.1, n), 0, 1)
    noise = country == "NG"
    challenger[noise] = rng.random(noise.sum())
    return y, {"country": country}, {"champion": champion, "challenger": challenger}


@pytest.mark.parametrize("metric", ["pr_auc", "roc_auc"])
def test_slices_and_their_paired_intervals_equal_a_bootstrap_written_with_scikit_learn(metric):
    """Each resample scored by scikit-learn on the resampled rows themselves (ties and repeats
    included); the module weighs one sorted copy of the slice instead."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    reference = {"pr_auc": average_precision_score, "roc_auc": roc_auc_score}[metric]
    y, groups, scores = holdout(3000, 1)
    scores = {role: np.round(p, 2) for role, p in scores.items()}  # many ties
    got = evaluation.slices(scores, y, groups, metric=metric, min_rows=700, boots=50, seed=9)
    kinds, counts = np.unique(groups["country"], return_counts=True)
    by_rows = sorted(zip(kinds, counts.tolist(), strict=True), key=lambda kv: -kv[1])
    assert [(s["value"], s["rows"]) for s in got] == by_rows
    for v, s in enumerate(got):
        idx = np.flatnonzero(groups["country"] == s["value"])
        assert s["positives"] == y[idx].sum()
        assert s["judged"] == (len(idx) >= 700)
        for role, p in scores.items():
            assert s["models"][role][metric] == pytest.approx(reference(y[idx], p[idx]), rel=1e-12)
        if not s["judged"]:
            assert "difference" not in s and "interval" not in s["models"]["champion"]
            continue
        rng = np.random.default_rng([9, 0, v])
        draws = {role: [] for role in scores}
        for _ in range(50):
            pick = idx[rng.integers(0, len(idx), len(idx))]
            for role, p in scores.items():
                draws[role].append(reference(y[pick], p[pick]))
        diff = np.array(draws["challenger"]) - np.array(draws["champion"])
        assert s["difference"]["interval"] == pytest.approx(np.percentile(diff, [2.5, 97.5]).tolist(), rel=1e-9)
        for role in scores:
            assert s["models"][role]["interval"] == pytest.approx(np.percentile(draws[role], [2.5, 97.5]), rel=1e-9)


def test_what_a_slice_cannot_give_is_none_so_a_decision_travels_as_strict_json():
    """A slice with one class has no ranking metric: None, not NaN (XCom refuses NaN)."""
    import json

    y, groups, scores = holdout(3000, 4)
    y[groups["country"] == "NG"] = 0
    cfg = dataclasses.replace(settings.load(), slice_min_rows=100)
    judged = evaluation.judge(scores, y, groups, metric="pr_auc", alert_rate=0.05, min_rows=100, boots=20, seed=1)
    ng = next(s for s in judged["slices"] if s["value"] == "NG")
    assert not ng["judged"] and ng["models"]["challenger"]["pr_auc"] is None and "difference" not in ng
    metrics = {role: {**judged["models"][role]["metrics"], "latency_ms_p50": 1.0} for role in scores}
    decision = promotion.decide(metrics["challenger"], metrics["champion"], cfg, judged["slices"])
    json.dumps({"judged": judged, "decision": decision}, allow_nan=False)


def test_reliability_log_loss_and_the_alert_budget_equal_references():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(2)
    p = rng.beta(0.5, 8, 4000)
    y = (rng.random(4000) < p * 1.3).astype(int)
    table = pd.DataFrame({"y": y, "p": p, "bin": np.minimum(np.floor(p * 10), 9)}).groupby("bin")
    want = [
        {
            "low": b / 10,
            "high": (b + 1) / 10,
            "rows": len(g),
            "mean_score": g["p"].mean(),
            "observed_rate": g["y"].mean(),
        }
        for b, g in table
    ]
    assert evaluation.reliability(y, p) == [pytest.approx(row, rel=1e-9) for row in want]
    assert evaluation.log_loss(y, p) == pytest.approx(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), rel=1e-9)
    m = evaluation.metrics(y, p, 0.05)
    flagged = p >= np.sort(p)[-200]  # the 5% highest scores: 200 rows
    assert m["precision_at_alert"] == pytest.approx(y[flagged].mean())
    assert m["recall_at_alert"] == pytest.approx(y[flagged].sum() / y.sum())


def test_better_on_average_but_worse_on_one_slice_is_refused_naming_the_slice():
    y, groups, scores = holdout(6000, 3)
    cfg = dataclasses.replace(settings.load(), slice_min_rows=500, slice_margin=0.05, max_calibration_share=100.0)
    judged = evaluation.judge(scores, y, groups, metric="pr_auc", alert_rate=0.05, min_rows=500, boots=100, seed=1)
    metrics = {role: {**judged["models"][role]["metrics"], "latency_ms_p50": 1.0} for role in scores}
    assert metrics["challenger"]["pr_auc"] > metrics["champion"]["pr_auc"] + 0.1  # better on average
    promote, reasons = promotion.decide(metrics["challenger"], metrics["champion"], cfg, judged["slices"])
    assert not promote
    assert len(reasons) == 1 and reasons[0].startswith("pr_auc on country=NG (")
    # the same challenger without the slices would pass: the slice is what refuses it
    assert promotion.decide(metrics["challenger"], metrics["champion"], cfg) == (
        True,
        ["pr_auc beats champion by the margin"],
    )


def fitted(flavour: str) -> tuple[LifecycleModel, pd.DataFrame, np.ndarray]:
    train, serve = frame(1500, 4), frame(300, 5)
    y = ((train["amount"] > train["amount"].quantile(0.85)) | (train["channel"] == "online")).to_numpy().astype(int)
    prep = preprocessor(NUMERIC, CAT)
    est = training.estimator(flavour, 7, "cpu").fit(prep.fit_transform(model_frame(UC, train, NUMERIC)), y)
    return LifecycleModel(prep, est, NUMERIC, flavour, UC), serve, prep


def test_xgboost_contributions_are_its_shap_values_summed_per_input_and_add_up_to_its_margin():
    import xgboost

    model, serve, prep = fitted("xgboost")
    names, contrib = model.contributions(model.inputs(serve))
    assert names == [*NUMERIC, *CAT]
    X = prep.transform(model_frame(UC, serve, NUMERIC))
    shap = model.estimator.get_booster().predict(xgboost.DMatrix(X), pred_contribs=True)
    margin = model.estimator.get_booster().predict(xgboost.DMatrix(X), output_margin=True)
    np.testing.assert_allclose(contrib.sum(axis=1) + shap[:, -1], margin, rtol=1e-5, atol=1e-5)
    onehot = prep.named_transformers_["cat"].get_feature_names_out(CAT)
    channel = [i for i, name in enumerate(onehot) if name.startswith("channel_")]
    first_cat = X.shape[1] - len(onehot)
    np.testing.assert_allclose(
        contrib[:, names.index("channel")], shap[:, [first_cat + i for i in channel]].sum(axis=1), rtol=1e-6
    )


def test_other_flavours_contribution_is_the_log_odds_change_with_the_input_at_its_baseline():
    model, serve, prep = fitted("sklearn_logistic")
    names, contrib = model.contributions(model.inputs(serve))
    imputer = prep.named_transformers_["num"].named_steps["simpleimputer"]

    def logit(inputs: pd.DataFrame) -> np.ndarray:  # scikit-learn's pipeline, not the fitted arrays
        p = np.clip(model.estimator.predict_proba(prep.transform(inputs))[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    inputs = model_frame(UC, serve, NUMERIC)  # a derived input moves alone: amount's ratios stay
    for name in ("amount", "amount_to_card_avg", "channel", "card_avg_amount_7d"):
        moved = inputs.copy()
        moved[name] = "never-seen" if name in CAT else imputer.statistics_[NUMERIC.index(name)]
        np.testing.assert_allclose(contrib[:, names.index(name)], logit(inputs) - logit(moved), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("flavour", ["xgboost", "sklearn_logistic"])
def test_importance_ranks_what_the_label_depends_on_first(flavour):
    model, serve, _ = fitted(flavour)
    y = ((serve["amount"] > serve["amount"].quantile(0.85)) | (serve["channel"] == "online")).to_numpy().astype(int)
    got = evaluation.importance(model, model.inputs(serve), y, metric="pr_auc", seed=1)
    top = [i["name"] for i in got["inputs"][:3]]
    assert "channel" in top and ("amount" in top or "amount_to_card_avg" in top)
    assert got["method"].startswith("mean |SHAP|" if flavour == "xgboost" else "permutation importance")
    values = [i["value"] for i in got["inputs"]]
    assert values == sorted(values, reverse=True) and got["rows"] == len(serve)
