"""Drift reports at scale compare bounded, seeded samples and say how large they were."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from lifecycle import contract, evaluation, monitoring, performance, settings

UC = contract.current()


def events(n: int, seed: int) -> pd.DataFrame:
    """``n`` events of the use case's monitored columns (what ``monitoring.read_columns`` reads)."""
    rng = np.random.default_rng(seed)
    frame = {UC.time: pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")}
    for column in UC.columns:
        if column.kind == contract.NUMBER:
            frame[column.name] = rng.uniform(column.min or 0, min(column.max or 1000, 1000), n)
        elif column.kind == contract.CATEGORY:
            frame[column.name] = rng.choice(column.values, n)
    return pd.DataFrame(frame)[monitoring.read_columns(UC)]


def test_a_sample_is_bounded_seeded_and_made_of_the_frames_rows():
    frame = pd.DataFrame({"i": np.arange(10_000)}, index=np.arange(10_000) + 5)
    one = monitoring.sample(frame, 1_000, seed=7)
    assert len(one) == 1_000 and one["i"].is_unique and one["i"].is_monotonic_increasing
    assert set(one["i"]) <= set(frame["i"]) and list(one.index) == list(range(1_000))
    pd.testing.assert_frame_equal(one, monitoring.sample(frame, 1_000, seed=7))  # same seed, same rows
    assert not one.equals(monitoring.sample(frame, 1_000, seed=8))
    small = monitoring.sample(frame.head(500), 1_000, seed=7)  # no larger than the bound: every row
    assert small["i"].tolist() == list(range(500))


def test_the_drift_summary_gives_rows_read_and_compared_and_a_rerun_compares_the_same(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_MONITOR_MAX_ROWS", "1000")
    monkeypatch.setenv("LIFECYCLE_REFERENCE_MAX_ROWS", "800")
    cfg = settings.load()
    reference, current = events(2_000, seed=1), events(3_000, seed=2)
    _, metrics, summary = monitoring.compare(reference, current, cfg)
    assert {k: summary[k] for k in summary if k.endswith(("_rows", "_compared")) or k == "sample_seed"} == {
        "reference_rows": 2_000,
        "reference_rows_compared": 800,
        "current_rows": 3_000,
        "current_rows_compared": 1_000,
        "sample_seed": cfg.seed,
    }
    again = monitoring.compare(reference, current, cfg)[1]
    values = [[m["value"] for m in ms if m["config"]["type"].endswith(":ValueDrift")] for ms in (metrics, again)]
    assert values[0] == values[1] and len(values[0]) == len((*UC.numerics, *UC.categoricals))
    _, _, whole = monitoring.compare(reference.head(500), current.head(900), cfg)  # under both bounds
    assert (whole["reference_rows_compared"], whole["current_rows_compared"]) == (500, 900)


def test_the_prediction_drift_report_compares_a_bounded_sample_and_says_so(state, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_MONITOR_MAX_ROWS", "1000")
    cfg = settings.load()
    rng = np.random.default_rng(3)

    def scored(n):  # Arrow-backed, as the join returns them
        p = rng.beta(0.6, 12.0, n)
        frame = pd.DataFrame({performance.LABEL: (rng.random(n) < p).astype(int), performance.PROBA: p})
        return frame.convert_dtypes(dtype_backend="pyarrow")

    current, reference = scored(4_000), scored(1_500)
    summary = {"as_of": dt.date(2026, 10, 7).isoformat(), "champion": {"alert_threshold": 0.2}}
    performance.publish(summary, current, reference, cfg)
    assert summary["report_rows"] == {
        "current": 4_000,
        "current_compared": 1_000,
        "reference": 1_500,
        "reference_compared": 1_500,
        "seed": cfg.seed,
    }
    assert summary["prediction_drift"]["value"] < summary["prediction_drift"]["threshold"]  # same distribution
    first = dict(summary["prediction_drift"])
    performance.publish(summary, current, reference, cfg)
    assert summary["prediction_drift"] == first  # seeded: the same rows, the same score


def test_ranking_metrics_equal_scikit_learns_with_ties():
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    rng = np.random.default_rng(5)
    for p in (rng.beta(0.6, 12.0, 5_000), np.round(rng.random(5_000), 2)):  # continuous, and many ties
        y = (rng.random(len(p)) < p).astype(int)
        got = evaluation.ranking_metrics(y, p)
        assert got["pr_auc"] == pytest.approx(average_precision_score(y, p), rel=1e-12)
        assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12)
        assert evaluation.metrics(y, p, 0.02)["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)


def test_the_curve_sums_do_not_depend_on_the_chunk_size(monkeypatch):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(6)
    p = np.round(rng.random(3_001), 3)  # ties spread over chunk boundaries
    y = (rng.random(len(p)) < p).astype(int)
    for chunk in (1, 7, 1000, 1 << 20):
        monkeypatch.setattr(evaluation, "CURVE_CHUNK", chunk)
        got = evaluation.ranking_metrics(y, p)
        assert got["pr_auc"] == pytest.approx(average_precision_score(y, p), rel=1e-12), chunk
        assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12), chunk


def test_calibration_error_is_the_row_weighted_gap_per_score_bin():
    y = np.array([0, 1, 1, 0, 0, 1])
    p = np.array([0.05, 0.15, 0.95, 1.0, 0.12, 0.55])
    # bins: 0 -> {0.05: y 0}; 1 -> {0.15: 1, 0.12: 0}; 5 -> {0.55: 1}; 9 -> {0.95: 1, 1.0: 0}
    expected = (1 * 0.05 + 2 * abs(0.5 - 0.135) + 1 * 0.45 + 2 * abs(0.5 - 0.975)) / 6
    assert evaluation.expected_calibration_error(y, p) == pytest.approx(expected, rel=1e-12)


def test_the_bucketed_lookup_finds_what_index_in_finds():
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.chunked_array([pa.array(["a", "", "t17", "t170"]), pa.array(["x9", "€€", "zz"])])
    keys = pa.chunked_array([pa.array(["zz", "t17", "nope", ""]), pa.array(["€€", "a", "t170", "x"]).slice(1)])
    want = pc.fill_null(pc.index_in(keys, value_set=values.combine_chunks()), -1).to_numpy()
    assert performance.lookup(keys, values).tolist() == want.tolist() == [6, 2, -1, 1, 0, 3, -1]
