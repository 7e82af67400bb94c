"""Scores judged against labels: the one home of the metrics every stage decides on.

Training judges each candidate on its holdout, promotion judges challenger and champion on the same
rows, live performance and the canary judge logged scores against late labels: all with
``metrics``. ``judge`` adds what an analyst and an auditor read beside the averages: calibration
(a reliability curve and the expected calibration error), precision and recall at the alert budget,
and the primary metric per slice of the columns the use case declares (``UseCase.slices``), each
with a bootstrap confidence interval and, for two models scored on the same rows, the interval of
their paired difference (what the promotion gate reads). ``importance`` says which inputs drive a
model: the mean size of XGBoost's own SHAP contributions, or permutation importance for the other
flavours.

Numpy only: live performance runs ``metrics`` on millions of rows, where scikit-learn's input checks
alone copy the arrays several times (tests/unit/test_sampling.py checks equality with scikit-learn).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

CALIBRATION_BINS = 10
CURVE_CHUNK = 1 << 20  # points of the precision-recall and ROC curves summed at a time
INTERVAL = (2.5, 97.5)  # percentiles of a bootstrap distribution: a 95% interval


def metrics(y: np.ndarray, p: np.ndarray, alert_rate: float) -> dict:
    """Headline classification metrics of scores ``p`` against labels ``y`` (numpy only: on 10
    million rows scikit-learn's input checks alone copy the arrays several times)."""
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
            "brier": brier(y, p),
            "ece": expected_calibration_error(y, p),
            "mean_probability": float(p.mean()),
            "positive_rate": positives / n,
        }
    )
    if 0 < positives < n:
        out.update(ranking_metrics(y, p))
    return out


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """scikit-learn's ``brier_score_loss`` for 0/1 labels, with one temporary array."""
    gap = p - y
    gap *= gap
    return float(gap.mean())


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """PR-AUC (average precision) and ROC-AUC from one sort of the scores: scikit-learn's
    ``average_precision_score`` and ``roc_auc_score`` (tests/unit/test_sampling.py checks equality)
    sort twice and hold ~770 MB of temporaries each on 10 million rows. Both sums run over the
    curve in chunks of ``CURVE_CHUNK`` points, so the curve's arrays are never held whole."""
    order = np.argsort(p, kind="stable")[::-1]
    ranked = p[order]
    change = np.diff(ranked) != 0
    del ranked
    last = np.flatnonzero(change)  # the last row of each distinct score but the lowest
    del change
    last = np.append(last, len(p) - 1)
    hits = y[order].astype(np.int64, copy=False)
    del order
    tps = np.cumsum(hits, out=hits)[last]  # true positives above each distinct score's threshold
    del hits
    positives, negatives = int(tps[-1]), int(last[-1] + 1 - tps[-1])
    pr = roc = 0.0
    tp_before = fp_before = 0.0
    for at in range(0, len(last), CURVE_CHUNK):
        tp = tps[at : at + CURVE_CHUNK].astype(float)
        flagged = last[at : at + CURVE_CHUNK] + 1.0
        fp = flagged - tp
        pr += float(np.sum(np.diff(tp, prepend=tp_before) * tp / flagged))  # sum of (recall step x precision)
        roc += float(np.sum(np.diff(fp, prepend=fp_before) * (tp + np.r_[tp_before, tp[:-1]]))) / 2  # trapezoids
        tp_before, fp_before = tp[-1], fp[-1]
    return {"pr_auc": pr / positives, "roc_auc": roc / (positives * negatives)}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by their rows: the
    sum over bins of |labels - scores| in the bin, over all rows."""
    idx = np.minimum((p * bins).astype(np.int16), bins - 1)
    gap = np.bincount(idx, weights=y, minlength=bins) - np.bincount(idx, weights=p, minlength=bins)
    return float(np.abs(gap).sum() / len(y))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """scikit-learn's ``log_loss`` for 0/1 labels, the scores clipped away from 0 and 1."""
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(np.where(y == 1, np.log(q), np.log1p(-q))))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """The reliability curve over ``expected_calibration_error``'s bins: per non-empty bin its
    bounds, rows, mean score and observed positive rate (a calibrated model's lie on the diagonal)."""
    idx = np.minimum((p * bins).astype(np.int16), bins - 1)
    rows = np.bincount(idx, minlength=bins)
    scores, hits = np.bincount(idx, weights=p, minlength=bins), np.bincount(idx, weights=y, minlength=bins)
    return [
        {
            "low": b / bins,
            "high": (b + 1) / bins,
            "rows": int(rows[b]),
            "mean_score": float(scores[b] / rows[b]),
            "observed_rate": float(hits[b] / rows[b]),
        }
        for b in range(bins)
        if rows[b]
    ]


def ranking(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """``metric`` (pr_auc or roc_auc) of ``p``; NaN unless both classes are present."""
    positives = int(y.sum())
    return ranking_metrics(y, p)[metric] if 0 < positives < len(y) else float("nan")


def judge(
    scores: Mapping[str, np.ndarray],
    y: np.ndarray,
    groups: Mapping[str, np.ndarray],
    *,
    metric: str,
    alert_rate: float,
    min_rows: int,
    boots: int,
    seed: int,
) -> dict:
    """Each model's scores (``scores``: role -> probabilities of the same rows) judged on labels ``y``:
    ``metrics`` with ``log_loss``, the reliability curve, and ``slices`` of ``groups`` (slice column
    -> each row's value)."""
    y = np.asarray(y, dtype=np.int64)
    out = {"rows": len(y), "positives": int(y.sum()), "models": {}}
    for role, p in scores.items():
        p = np.asarray(p, dtype=float)
        m = metrics(y, p, alert_rate)
        m["log_loss"] = log_loss(y, p)
        out["models"][role] = {"metrics": m, "reliability": reliability(y, p)}
    out["slices"] = slices(scores, y, groups, metric=metric, min_rows=min_rows, boots=boots, seed=seed)
    return out


def slices(
    scores: Mapping[str, np.ndarray],
    y: np.ndarray,
    groups: Mapping[str, np.ndarray],
    *,
    metric: str,
    min_rows: int,
    boots: int,
    seed: int,
) -> list[dict]:
    """Per value of each slice column: its rows and positives, and, where it has ``min_rows`` rows
    and both classes, each model's ``metric`` with a bootstrap interval (``boots`` resamples of the
    slice's rows, seeded per slice). With several models the same resamples score them all, so the
    interval of a difference (``difference``: the second role minus the first) is a paired one."""
    y = np.asarray(y, dtype=np.int64)
    roles = list(scores)
    arrays = {role: np.asarray(p, dtype=float) for role, p in scores.items()}
    out = []
    for c, (column, values) in enumerate(groups.items()):
        values = np.asarray(values, dtype=object).astype(str)
        kinds, counts = np.unique(values, return_counts=True)
        for v, value in enumerate(kinds[np.argsort(-counts, kind="stable")]):
            idx = np.flatnonzero(values == value)
            ys = y[idx]
            row = {"column": column, "value": str(value), "rows": len(idx), "positives": int(ys.sum())}
            row["judged"] = bool(len(idx) >= min_rows and 0 < row["positives"] < len(idx))
            row["models"] = {role: {metric: _finite(ranking(metric, ys, arrays[role][idx]))} for role in roles}
            if row["judged"] and boots > 0:
                rng = np.random.default_rng([seed, c, v])
                ranked = {role: _Ranked(ys, arrays[role][idx]) for role in roles}
                draws = {role: np.empty(boots) for role in roles}
                for b in range(boots):
                    counts = np.bincount(rng.integers(0, len(idx), len(idx)), minlength=len(idx))
                    for role in roles:
                        draws[role][b] = ranked[role].metric(metric, counts)
                for role in roles:
                    row["models"][role]["interval"] = _interval(draws[role])
                if len(roles) == 2:
                    first, second = roles
                    row["difference"] = {
                        "value": _finite(row["models"][second][metric] - row["models"][first][metric]),
                        "interval": _interval(draws[second] - draws[first]),
                    }
            out.append(row)
    return out


class _Ranked:
    """A slice's rows sorted once by score, for its bootstrap: a resample holds the same rows, some
    several times and some not at all, so it is these rows weighted by how often each was drawn, in
    the same order. Each resample's metric is then two weighted cumulative sums, not a sort (on a
    666,000-row holdout, 200 resamples of three slice columns took ~60 s sorted)."""

    def __init__(self, y: np.ndarray, p: np.ndarray):
        self.order = np.argsort(p, kind="stable")[::-1]
        ranked = p[self.order]
        self.last = np.append(np.flatnonzero(np.diff(ranked) != 0), len(p) - 1)  # each distinct score's last row
        self.y = y[self.order].astype(float)

    def metric(self, metric: str, counts: np.ndarray) -> float:
        """``metric`` of the rows weighted by ``counts`` (how often the resample drew each row):
        ``ranking_metrics`` of the resample itself, ties included; NaN without both classes."""
        w = counts[self.order].astype(float)
        tp = np.cumsum(w * self.y)[self.last]
        fp = np.cumsum(w)[self.last] - tp
        positives, negatives = tp[-1], fp[-1]
        if positives == 0 or negatives == 0:
            return float("nan")
        if metric == "pr_auc":
            flagged = tp + fp
            step = np.diff(tp, prepend=0.0)
            return float(np.sum(np.divide(step * tp, flagged, out=np.zeros_like(tp), where=flagged > 0)) / positives)
        below = np.r_[0.0, tp[:-1]]
        return float(np.sum(np.diff(fp, prepend=0.0) * (tp + below)) / 2 / (positives * negatives))


def _interval(draws: np.ndarray) -> list[float | None]:
    """The 95% percentile interval of bootstrap draws, those without both classes left out."""
    finite = draws[np.isfinite(draws)]
    return [float(x) for x in np.percentile(finite, INTERVAL)] if len(finite) else [None, None]


def _finite(value: float) -> float | None:
    """None for a metric a slice cannot give (one class): slices travel as JSON (XCom, MLflow, cards)."""
    return float(value) if np.isfinite(value) else None


def importance(model, inputs: Mapping[str, np.ndarray], y: np.ndarray, *, metric: str, seed: int) -> dict:
    """Which inputs drive a ``modeling.LifecycleModel``: with XGBoost the mean absolute SHAP value per
    input (its own tree contributions, in log-odds), otherwise permutation importance (the drop in
    ``metric`` when one input's values are shuffled across the rows, seeded). Largest first."""
    if model.flavour == "xgboost":
        names, contrib = model.contributions(inputs)
        values = np.abs(contrib).mean(axis=0)
        method = "mean |SHAP| (XGBoost tree contributions, log-odds)"
    else:
        names = list(inputs)
        rng = np.random.default_rng(seed)
        base = ranking(metric, y, model.score(inputs))
        values = np.array(
            [base - ranking(metric, y, model.score({**inputs, name: rng.permutation(inputs[name])})) for name in names]
        )
        method = f"permutation importance (drop in {metric})"
    order = np.argsort(-values, kind="stable")
    return {"method": method, "rows": len(y), "inputs": [{"name": names[i], "value": float(values[i])} for i in order]}
