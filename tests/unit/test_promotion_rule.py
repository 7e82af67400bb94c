"""The promotion rule (``promotion.decide``) on generated metric sets and slices: a challenger that
is worse than the documented rule allows (on average, in calibration, or on one slice), or that
carries a metric which is not a finite number, is never promoted, and a challenger that clears every
bound is. Then the latency guard's measurement
(``training.scoring_latency``) against a burst of contention, on a fake CPU clock."""

import dataclasses
import math

import hypothesis
import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from lifecycle import promotion, settings, training

BASE = settings.load()
PROPERTIES = hypothesis.settings(deadline=None, database=None, max_examples=300)  # no timing: CI is shared

configs = st.builds(
    lambda margin, lift, latency, ratio, metric, calibration, slice_margin: dataclasses.replace(
        BASE,
        promotion_margin=margin,
        promotion_min_lift=lift,
        max_latency_ms=latency,
        max_latency_ratio=ratio,
        primary_metric=metric,
        max_calibration_share=calibration,
        slice_margin=slice_margin,
    ),
    st.floats(0, 0.2),
    st.floats(1, 10),
    st.floats(0.1, 100),
    st.floats(1, 10),
    st.sampled_from(["pr_auc", "roc_auc"]),
    st.floats(0, 5),
    st.floats(0, 0.2),
)
unit = st.floats(0, 1)
metric_sets = st.fixed_dictionaries(
    {
        "pr_auc": unit,
        "roc_auc": unit,
        "log_loss": st.floats(0, 10),
        "latency_ms_p50": st.floats(0, 200),
        "positive_rate": st.floats(0.0001, 0.9999),
        "ece": st.floats(0, 0.5),
    }
)


@st.composite
def a_slice(draw):
    """A slice as ``evaluation.slices`` gives it for champion and challenger: its paired difference
    (challenger minus champion) and that difference's bootstrap interval around it."""
    champion, challenger = draw(unit), draw(unit)
    low, high = sorted((challenger - champion - draw(st.floats(0, 1)), challenger - champion + draw(st.floats(0, 1))))
    return {
        "column": draw(st.sampled_from(["country", "channel"])),
        "value": draw(st.sampled_from(["US", "NG", "online"])),
        "rows": draw(st.integers(1, 10**6)),
        "positives": draw(st.integers(0, 1000)),
        "judged": draw(st.booleans()),
        "models": {
            role: dict.fromkeys(("pr_auc", "roc_auc"), v)
            for role, v in (("champion", champion), ("challenger", challenger))
        },
        "difference": {"value": challenger - champion, "interval": [low, high]},
    }


slice_lists = st.lists(a_slice(), max_size=6)
NOT_FINITE = [math.nan, None, math.inf, -math.inf]


def latency_limit(champion: dict | None, cfg) -> float:
    """MAX_LATENCY_MS, or with a champion MAX_LATENCY_RATIO times its latency when that is higher."""
    if champion is None:
        return cfg.max_latency_ms
    return max(cfg.max_latency_ms, cfg.max_latency_ratio * champion["latency_ms_p50"])


def floor(challenger: dict, cfg) -> float:
    """PROMOTION_MIN_LIFT times what chance reaches on the holdout (PR-AUC: its positive rate,
    ROC-AUC: 0.5), at most halfway from chance to 1."""
    chance = challenger["positive_rate"] if cfg.primary_metric == "pr_auc" else 0.5
    # halfway as (1 + chance) / 2: chance + (1 - chance) / 2 rounds one ulp apart for some rates (1/3),
    # and a draw between the two roundings made this reference disagree with the rule (CI, hypothesis)
    return min(cfg.promotion_min_lift * chance, (1 + chance) / 2)


def calibration_limit(challenger: dict, champion: dict | None, cfg) -> float:
    """MAX_CALIBRATION_SHARE times the holdout's minority-class rate, or the champion's error on the
    same rows when higher."""
    bound = cfg.max_calibration_share * min(challenger["positive_rate"], 1 - challenger["positive_rate"])
    return max(bound, champion["ece"]) if champion else bound


def regressing(s: dict, cfg) -> bool:
    """A judged slice more than SLICE_MARGIN worse whose difference's interval lies below zero."""
    return s["judged"] and s["difference"]["value"] < -cfg.slice_margin and s["difference"]["interval"][1] < 0


def documented(challenger: dict, champion: dict | None, cfg, slices=()) -> bool:
    """The rule as the module docstring and the README state it, on finite metrics."""
    m = cfg.primary_metric
    if challenger["latency_ms_p50"] > latency_limit(champion, cfg) or challenger[m] < floor(challenger, cfg):
        return False
    if challenger["ece"] > calibration_limit(challenger, champion, cfg):
        return False
    if champion is None:
        return True
    return (
        challenger[m] - champion[m] >= cfg.promotion_margin
        and challenger["roc_auc"] >= champion["roc_auc"] - cfg.promotion_margin
        and not any(regressing(s, cfg) for s in slices)
    )


@st.composite
def promotable(draw):
    """(challenger, champion or None, cfg) that the documented rule promotes."""
    cfg = draw(configs)
    m = cfg.primary_metric
    champion = draw(st.none() | metric_sets)
    challenger = draw(metric_sets)
    challenger["latency_ms_p50"] = draw(st.floats(0, latency_limit(champion, cfg)))
    challenger["ece"] = draw(st.floats(0, calibration_limit(challenger, champion, cfg)))
    if champion is not None:
        champion[m] = draw(st.floats(0, 0.5))
        if m != "roc_auc":
            challenger["roc_auc"] = draw(st.floats(max(0.0, champion["roc_auc"] - cfg.promotion_margin), 1))
    # a hair above the bounds: the floor written another way may round to the next float
    low = min(1.0, max(floor(challenger, cfg), champion[m] + cfg.promotion_margin if champion else 0.0) + 1e-9)
    challenger[m] = draw(st.floats(low, 1))
    slices = [s for s in draw(slice_lists) if not regressing(s, cfg)]
    hypothesis.assume(documented(challenger, champion, cfg, slices))  # float rounding at a bound
    return challenger, champion, cfg, slices


@PROPERTIES
@hypothesis.given(configs, metric_sets, st.none() | metric_sets, slice_lists)
def test_the_decision_is_the_documented_rule_with_its_reasons(cfg, challenger, champion, slices):
    promote, reasons = promotion.decide(challenger, champion, cfg, slices)
    assert promote == documented(challenger, champion, cfg, slices)
    assert reasons
    if promote:
        m = cfg.primary_metric
        assert reasons == [
            f"first model, {m} {challenger[m]:.4f} above the floor {floor(challenger, cfg):.4f}"
            if champion is None
            else f"{m} beats champion by the margin"
        ]


@PROPERTIES
@hypothesis.given(promotable())
def test_a_challenger_that_clears_every_bound_is_promoted(case):
    challenger, champion, cfg, slices = case
    assert promotion.decide(challenger, champion, cfg, slices)[0] is True


@PROPERTIES
@hypothesis.given(st.data(), promotable(), a_slice())
def test_a_challenger_regressing_on_one_slice_beyond_margin_and_interval_is_never_promoted(data, case, bad):
    """Better on average (it clears every other bound) yet worse on one judged slice."""
    challenger, champion, cfg, slices = case
    hypothesis.assume(champion is not None)
    drop = data.draw(st.floats(cfg.slice_margin, 1, exclude_min=True))
    high = data.draw(st.floats(-drop, 0, exclude_max=True))
    bad = {**bad, "judged": True, "difference": {"value": -drop, "interval": [-drop - 0.1, high]}}
    promote, reasons = promotion.decide(challenger, champion, cfg, [*slices, bad])
    assert not promote
    m = cfg.primary_metric
    assert [r for r in reasons if " on " in r] == [
        f"{m} on {bad['column']}={bad['value']} ({bad['rows']} rows, {bad['positives']} positive) regresses "
        f"{bad['models']['champion'][m]:.4f} -> {bad['models']['challenger'][m]:.4f} "
        f"({-drop:+.4f}, 95% interval [{-drop - 0.1:+.4f}, {high:+.4f}]; margin {cfg.slice_margin})"
    ]


@PROPERTIES
@hypothesis.given(st.data(), promotable())
def test_a_regression_the_interval_does_not_confirm_or_an_unjudged_slice_never_rejects(data, case):
    challenger, champion, cfg, slices = case
    hypothesis.assume(champion is not None)
    noisy = {**data.draw(a_slice()), "judged": True}
    noisy["difference"] = {"value": -0.9, "interval": [-1.0, data.draw(st.floats(0, 1))]}  # reaches zero
    small = {**data.draw(a_slice()), "judged": False, "difference": {"value": -0.9, "interval": [-1.0, -0.8]}}
    assert promotion.decide(challenger, champion, cfg, [*slices, noisy, small])[0] is True


@PROPERTIES
@hypothesis.given(st.data(), promotable())
def test_a_challenger_calibrated_worse_than_the_bound_is_never_promoted(data, case):
    challenger, champion, cfg, slices = case
    limit = calibration_limit(challenger, champion, cfg)
    challenger["ece"] = data.draw(st.floats(limit, limit + 1, exclude_min=True))
    promote, reasons = promotion.decide(challenger, champion, cfg, slices)
    assert not promote
    assert any(r.startswith(f"expected calibration error {challenger['ece']:.4f} exceeds {limit:.4f}") for r in reasons)


@PROPERTIES
@hypothesis.given(st.data(), promotable())
def test_a_challenger_calibrated_better_than_the_champion_is_not_refused_for_the_bound(data, case):
    """The demo's concept-drift retrain: its error (0.024) missed the bound (0.015), the champion's on
    the same rows was 0.036; refusing it kept the worse model serving."""
    challenger, champion, cfg, slices = case
    hypothesis.assume(champion is not None)
    bound = cfg.max_calibration_share * min(challenger["positive_rate"], 1 - challenger["positive_rate"])
    champion["ece"] = data.draw(st.floats(bound, bound + 1, exclude_min=True))
    challenger["ece"] = data.draw(st.floats(bound, champion["ece"]))
    assert promotion.decide(challenger, champion, cfg, slices)[0] is True


@PROPERTIES
@hypothesis.given(st.data(), configs, metric_sets, metric_sets)
def test_a_challenger_worse_on_the_primary_metric_beyond_the_margin_is_never_promoted(data, cfg, challenger, champion):
    m = cfg.primary_metric
    hypothesis.assume(champion[m] + cfg.promotion_margin > 0)
    challenger[m] = data.draw(st.floats(0, min(1.0, champion[m] + cfg.promotion_margin), exclude_max=True))
    gain = challenger[m] - champion[m]
    hypothesis.assume(gain < cfg.promotion_margin)
    promote, reasons = promotion.decide(challenger, champion, cfg)
    assert not promote
    assert f"{m} gain {gain:+.4f} over champion is below the margin {cfg.promotion_margin}" in reasons


@PROPERTIES
@hypothesis.given(st.data(), configs, metric_sets, st.none() | metric_sets)
def test_a_challenger_below_the_floor_is_never_promoted(data, cfg, challenger, champion):
    m = cfg.primary_metric
    challenger[m] = data.draw(st.floats(0, floor(challenger, cfg), exclude_max=True))
    promote, reasons = promotion.decide(challenger, champion, cfg)
    assert not promote
    assert any(
        r.startswith(f"{m} {challenger[m]:.4f} is below the floor {floor(challenger, cfg):.4f}") for r in reasons
    )


@PROPERTIES
@hypothesis.given(st.data(), configs, metric_sets, st.none() | metric_sets)
def test_a_model_no_better_than_chance_is_never_promoted(data, cfg, challenger, champion):
    """PR-AUC at the holdout's positive rate (or ROC-AUC at 0.5) is what a random ranking gets,
    whatever the base rate: it never clears a floor of at least 1x chance plus anything."""
    m = cfg.primary_metric
    hypothesis.assume(cfg.promotion_min_lift > 1.0001)
    challenger[m] = challenger["positive_rate"] if m == "pr_auc" else 0.5
    assert promotion.decide(challenger, champion, cfg)[0] is False


@PROPERTIES
@hypothesis.given(st.data(), configs, metric_sets, metric_sets)
def test_a_challenger_regressing_on_roc_auc_is_never_promoted(data, cfg, challenger, champion):
    hypothesis.assume(champion["roc_auc"] > cfg.promotion_margin)
    challenger["roc_auc"] = data.draw(st.floats(0, champion["roc_auc"] - cfg.promotion_margin, exclude_max=True))
    hypothesis.assume(challenger["roc_auc"] < champion["roc_auc"] - cfg.promotion_margin)
    promote, reasons = promotion.decide(challenger, champion, cfg)
    assert not promote
    assert f"roc_auc {challenger['roc_auc']:.4f} regresses from {champion['roc_auc']:.4f}" in reasons


@PROPERTIES
@hypothesis.given(st.data(), configs, metric_sets, st.none() | metric_sets)
def test_a_challenger_slower_than_the_limit_is_never_promoted(data, cfg, challenger, champion):
    limit = latency_limit(champion, cfg)
    challenger["latency_ms_p50"] = data.draw(st.floats(limit, 1e6, exclude_min=True))
    promote, reasons = promotion.decide(challenger, champion, cfg)
    assert not promote
    assert f"latency p50 {challenger['latency_ms_p50']:.2f} ms exceeds {limit:.2f} ms" in reasons


def rule_metrics(role: str, cfg) -> list[str]:
    return list(dict.fromkeys([cfg.primary_metric, "roc_auc", "latency_ms_p50", "positive_rate", "ece"]))


@PROPERTIES
@hypothesis.given(st.data(), promotable(), st.sampled_from(NOT_FINITE + ["missing"]))
def test_one_metric_that_is_not_a_finite_number_turns_a_promotion_into_a_rejection_naming_it(data, case, bad):
    challenger, champion, cfg, _ = case
    role = data.draw(st.sampled_from(["challenger"] + (["champion"] if champion is not None else [])))
    name = data.draw(st.sampled_from(rule_metrics(role, cfg)))
    spoiled = dict(challenger if role == "challenger" else champion)
    if bad == "missing":
        del spoiled[name]
    else:
        spoiled[name] = bad
    pair = (spoiled, champion) if role == "challenger" else (challenger, spoiled)
    shown = None if bad == "missing" else bad
    assert promotion.decide(*pair, cfg) == (False, [f"{role} {name} is {shown!r}, not a finite number"])


maybe_finite = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@PROPERTIES
@hypothesis.given(
    configs,
    st.fixed_dictionaries({k: maybe_finite for k in ("pr_auc", "roc_auc", "latency_ms_p50", "positive_rate", "ece")}),
    st.none()
    | st.fixed_dictionaries({k: maybe_finite for k in ("pr_auc", "roc_auc", "latency_ms_p50", "positive_rate", "ece")}),
)
def test_metrics_that_are_not_finite_numbers_are_never_promoted_and_each_is_named(cfg, challenger, champion):
    bad = [
        f"{role} {name} is {metrics[name]!r}, not a finite number"
        for role, metrics in (("challenger", challenger), ("champion", champion))
        if metrics is not None
        for name in rule_metrics(role, cfg)
        if metrics[name] is None or not math.isfinite(metrics[name])
    ]
    promote, reasons = promotion.decide(challenger, champion, cfg)
    if bad:
        assert (promote, reasons) == (False, bad)
    else:
        assert promote == documented(challenger, champion, cfg)


@pytest.mark.parametrize("metric", ["pr_auc", "roc_auc", "latency_ms_p50", "positive_rate", "ece"])
def test_a_nan_first_model_is_not_promoted_on_the_floor(metric):
    cfg = dataclasses.replace(BASE, primary_metric="pr_auc")
    challenger = {"pr_auc": 0.9, "roc_auc": 0.95, "log_loss": 0.1, "latency_ms_p50": 1.0, "positive_rate": 0.1}
    challenger["ece"] = 0.01
    challenger[metric] = math.nan
    assert promotion.decide(challenger, None, cfg) == (False, [f"challenger {metric} is nan, not a finite number"])


class Machine:
    """A fake CPU-time clock and the models it runs: each predict call advances the clock by the
    model's cost, multiplied while a burst is on. A burst is contention that CPU time still shows
    (shared caches, a busy sibling hyperthread): it slows the calls made during a stretch of the
    measurement, whichever model makes them."""

    def __init__(self, burst_calls: int = 0, slowdown: float = 1.0):
        self.now, self.calls, self.burst_calls, self.slowdown = 0.0, 0, burst_calls, slowdown

    def clock(self) -> float:
        return self.now

    def model(self, cost_ms: float):
        machine = self

        class Model:
            def predict(self, frame):
                machine.calls += 1
                factor = machine.slowdown if machine.calls <= machine.burst_calls else 1.0
                machine.now += cost_ms / 1000 * factor
                return np.zeros(len(frame))

        return Model()


ROWS = pd.DataFrame({"x": range(100)})
CLEAR = {"pr_auc": 0.7, "roc_auc": 0.9, "log_loss": 0.1, "positive_rate": 0.05, "ece": 0.01}  # beats CHAMPION_METRICS
CHAMPION_METRICS = {"pr_auc": 0.6, "roc_auc": 0.9, "log_loss": 0.1, "positive_rate": 0.05, "ece": 0.01}


def decision(latency: dict[str, float], cfg):
    challenger = {**CLEAR, "latency_ms_p50": latency["challenger"]}
    champion = {**CHAMPION_METRICS, "latency_ms_p50": latency["champion"]} if "champion" in latency else None
    return promotion.decide(challenger, champion, cfg)


def test_a_burst_of_contention_during_the_measurement_reaches_both_models_and_changes_no_decision():
    cfg = dataclasses.replace(BASE, max_latency_ms=1.5, max_latency_ratio=1.2, primary_metric="pr_auc")
    quiet = Machine()
    calm = training.scoring_latency(
        {"challenger": quiet.model(1.0), "champion": quiet.model(1.0)}, ROWS, clock=quiet.clock
    )
    assert calm == {"challenger": pytest.approx(1.0), "champion": pytest.approx(1.0)}
    assert decision(calm, cfg) == (True, ["pr_auc beats champion by the margin"])
    # a 3x burst over the first 40% of the calls: the turns give each model 40% slow calls, the median keeps
    busy = Machine(burst_calls=80, slowdown=3.0)
    latency = training.scoring_latency(
        {"challenger": busy.model(1.0), "champion": busy.model(1.0)}, ROWS, clock=busy.clock
    )
    assert latency == pytest.approx(calm) and decision(latency, cfg) == decision(calm, cfg)
    # the same burst, had the challenger been measured alone before the champion, would reject it
    alone = Machine(burst_calls=80, slowdown=3.0)
    first = training.scoring_latency({"challenger": alone.model(1.0)}, ROWS, clock=alone.clock)
    then = training.scoring_latency({"champion": alone.model(1.0)}, ROWS, clock=alone.clock)
    assert first["challenger"] == pytest.approx(3.0) and then["champion"] == pytest.approx(1.0)
    assert decision({**first, **then}, cfg)[0] is False
    # a slowdown over the whole measurement raises both alike: the ratio to the champion holds
    slow = Machine(burst_calls=10**6, slowdown=3.0)
    latency = training.scoring_latency(
        {"challenger": slow.model(1.0), "champion": slow.model(1.0)}, ROWS, clock=slow.clock
    )
    assert latency == {"challenger": pytest.approx(3.0), "champion": pytest.approx(3.0)}
    assert decision(latency, cfg) == decision(calm, cfg)


def test_a_challenger_slower_than_the_champion_beyond_the_ratio_is_rejected_however_busy_the_machine():
    cfg = dataclasses.replace(BASE, max_latency_ms=1.5, max_latency_ratio=1.2, primary_metric="pr_auc")
    for burst in (0, 80, 10**6):
        machine = Machine(burst_calls=burst, slowdown=3.0)
        latency = training.scoring_latency(
            {"challenger": machine.model(2.0), "champion": machine.model(1.0)}, ROWS, clock=machine.clock
        )
        promote, reasons = decision(latency, cfg)
        assert not promote and reasons[0].startswith("latency p50"), (burst, latency)
