"""The drift monitor calibrated on the reference's own variation (``monitoring.calibrate``).

A world with the seasonality real data has and the bundled generator lacks: amounts that rise on
weekends and drift week to week, a channel mix that follows the weekday, and events that follow a
daily cycle. Under Evidently's fixed thresholds its stable windows drift; calibrated, they do not,
and a genuinely shifted window still does. The in-reference scores are checked against scipy."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from lifecycle import contract, monitoring, settings

UC = contract.current()
START = pd.Timestamp("2026-10-05", tz="UTC")  # a Monday


def seasonal(days: int, start: pd.Timestamp = START, seed: int = 0, amount_scale: float = 1.0) -> pd.DataFrame:
    """``days`` days of events: the amount level wanders from day to day (like weather), weekends
    spend more, later in the day and more through the first channel."""
    rng = np.random.default_rng(seed)
    level, frames = 0.0, []
    weekday_hours = np.r_[np.full(7, 0.01), np.full(12, 0.06), np.full(5, 0.042)]
    weekend_hours = np.r_[np.full(10, 0.01), np.full(14, 0.9 / 14)]
    channels = list(UC.column("channel").values)
    for d in range(days):
        day = start + pd.Timedelta(days=d)
        weekend = day.dayofweek >= 5
        level = 0.8 * level + 0.6 * rng.standard_normal()
        n = 1500
        hours = rng.choice(24, n, p=weekend_hours if weekend else weekday_hours)
        stamps = day + pd.to_timedelta(hours, unit="h") + pd.to_timedelta(rng.integers(0, 3600, n), unit="s")
        amount = rng.lognormal(3.5 + 0.3 * level, 0.8, n) * (1.6 if weekend else 1.0) * amount_scale
        weights = np.full(len(channels), 1.0)
        weights[0] = 4.0 if weekend else 1.0
        frames.append(
            pd.DataFrame(
                {
                    "amount": np.round(np.minimum(amount, 49_000), 2),
                    "merchant_category": rng.choice(UC.column("merchant_category").values, n),
                    "country": rng.choice(UC.column("country").values, n),
                    "channel": rng.choice(channels, n, p=weights / weights.sum()),
                    "event_timestamp": stamps.sort_values(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def cfg(state):
    return settings.load()


def test_stable_windows_drift_under_fixed_thresholds_but_not_calibrated(cfg, monkeypatch):
    world = seasonal(22)
    reference, later = world.iloc[: 19 * 1500], world.iloc[19 * 1500 :]  # the next days: Saturday to Monday
    calibrated = monitoring.compare(reference, later, cfg)[2]
    assert calibrated["drift"] is False, calibrated["drifted_columns"]
    assert calibrated["calibration"]["amount"]["threshold"] > monitoring.DEFAULT_THRESHOLD

    monkeypatch.setattr(monitoring, "HEADROOM", 0.0)  # calibration off: Evidently's fixed thresholds
    fixed = monitoring.compare(reference, later, cfg)[2]
    assert {v["threshold"] for v in fixed["calibration"].values()} == {monitoring.DEFAULT_THRESHOLD}
    assert fixed["drift"] is True and "amount" in fixed["drifted_columns"]


def test_a_shifted_window_still_drifts(cfg):
    reference = seasonal(19)
    shifted = seasonal(3, START + pd.Timedelta(days=19), seed=2, amount_scale=3.0)
    shifted["channel"] = UC.column("channel").values[-1]
    summary = monitoring.compare(reference, shifted, cfg)[2]
    assert summary["drift"] is True
    assert {"amount", "channel"} <= set(summary["drifted_columns"])


def test_in_reference_scores_are_wasserstein_distances_of_each_window_against_the_rest(cfg):
    reference = seasonal(9)
    got = monitoring.calibrate(reference, UC, cfg)["amount"]
    days = reference["event_timestamp"].dt.floor("D")
    distinct = sorted(days.unique())
    scores = []
    for i in range(len(distinct) - cfg.monitor_window_days + 1):
        inside = days.isin(distinct[i : i + cfg.monitor_window_days]).to_numpy()
        # 13,500 rows: below both sample sizes, each side is compared whole
        cur, ref = reference[inside]["amount"].to_numpy(float), reference[~inside]["amount"].to_numpy(float)
        scores.append(wasserstein_distance(ref, cur) / np.std(ref))
    assert got["reference_windows"] == 7
    assert got["reference_max"] == pytest.approx(max(scores), rel=1e-9)
    assert got["threshold"] == pytest.approx(max(monitoring.DEFAULT_THRESHOLD, monitoring.HEADROOM * max(scores)))


def test_a_reference_shorter_than_two_windows_keeps_the_base_thresholds(cfg):
    got = monitoring.calibrate(seasonal(3), UC, cfg)
    assert {c: (v["threshold"], v["reference_windows"]) for c, v in got.items()} == {
        c: (monitoring.DEFAULT_THRESHOLD, 0) for c in monitoring.monitored(UC)
    }


def test_the_contract_excludes_a_column_or_sets_its_test_and_threshold(cfg, monkeypatch):
    uc = dataclasses.replace(
        UC,
        monitor={
            "country": contract.Monitor(exclude=True),
            "amount": contract.Monitor(test="psi", threshold=0.3),
            "channel": contract.Monitor(test="chisquare", threshold=0.01),
        },
    )
    monkeypatch.setattr(contract, "current", lambda cfg=None: uc)
    reference = seasonal(9)
    snapshot, metrics, summary = monitoring.compare(reference, seasonal(3, START + pd.Timedelta(days=9), 3), cfg)
    columns = {m["config"]["column"]: m["config"] for m in metrics if m["config"]["type"].endswith(":ValueDrift")}
    assert "country" not in columns and "country" not in summary["calibration"]
    assert columns["amount"]["method"] == "psi" and summary["calibration"]["amount"]["test"] == "psi"
    assert columns["amount"]["threshold"] == summary["calibration"]["amount"]["threshold"] >= 0.3
    # a p-value test is not calibrated: its declared threshold stands, and a p-value under it drifts
    assert columns["channel"]["threshold"] == summary["calibration"]["channel"]["threshold"] == 0.01
    assert columns["channel"]["method"] == "chisquare"
    same = reference.sample(4500, random_state=1)
    assert "channel" not in monitoring.compare(reference, same, cfg)[2]["drifted_columns"]  # p near 1
    one_channel = same.assign(channel=UC.column("channel").values[-1])
    assert "channel" in monitoring.compare(reference, one_channel, cfg)[2]["drifted_columns"]


def test_monitor_options_must_name_monitored_columns():
    with pytest.raises(contract.ContractError, match=r"monitor options for \['card_id'\], which are not monitored"):
        dataclasses.replace(UC, monitor={"card_id": contract.Monitor(exclude=True)})
