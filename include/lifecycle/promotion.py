"""Champion/challenger: promote only a model that is measurably better on the same holdout.

``decide`` is the pure rule; ``compare`` scores both registered versions on the challenger's
holdout and records the decision (a rejected version is retired: it loses ``challenger``).
``release`` puts a version live once the packaged service passed its smoke test (a version reaches
a live alias only then), through ``registry``'s transitions.

Every challenger must reach the floor, which is relative to its holdout: ``promotion_min_lift``
times what a ranking by chance reaches on it (``thresholds.floor``). It is judged as a first model
only when the registry says there is no champion; a registry that cannot be read fails the
comparison (the Airflow task is retried). A metric the rule reads that is not a finite number
(NaN, None, missing, infinite), in either model's set, rejects the challenger with a reason naming it.

Calibration and slices (``lifecycle.evaluation``, on the same holdout): the challenger's expected
calibration error must be at most ``max_calibration_share`` times its holdout's minority-class rate
(what always answering the majority class errs by) or, with a champion whose own error on the same
rows is higher, no higher than the champion's (a better model is never refused for a bound the
model serving today misses by more); and with a champion, no slice of the use case's
``slices`` with ``slice_min_rows`` rows and both classes may regress: a slice is a regression when
the challenger's primary metric there is more than ``slice_margin`` below the champion's and the
bootstrap interval of the paired difference lies wholly below zero (a gap the resampling cannot
explain away). The reasons name the slice and the numbers.

The latency guard reads single-row scoring latency as CPU time (p50 over 100 rows), the challenger
and the champion taking turns on the same rows (``training.scoring_latency``): on a busy machine a
call waits for a core, and waiting is not CPU time, so other processes keeping the cores busy do not
raise it as they raise a wall-clock reading. The limit is ``max_latency_ms``, or with a champion
``max_latency_ratio`` times the champion's latency when that is higher.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

from lifecycle import model_card, registry, thresholds, tracking, training
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION


@dataclass
class Decision:
    promote: bool
    challenger_version: str
    champion_version: str | None
    metric: str
    challenger: dict
    champion: dict | None
    reasons: list[str] = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)  # what the rule used, each with its source
    mlflow_run: str = ""  # the MLflow run holding the decision's numbers
    slices: list = field(default_factory=list)  # ``evaluation.slices`` of champion and challenger

    def as_dict(self) -> dict:
        return asdict(self)


def unreadable(role: str, metrics: dict, names) -> list[str]:
    """A reason for each metric in ``names`` that is missing, None, NaN or infinite: a NaN compares
    False with everything, so without this check it would pass the margin and regression guards."""
    out = []
    for name in names:
        value = metrics.get(name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            out.append(f"{role} {name} is {value!r}, not a finite number")
    return out


def latency_limit(champion: dict | None, cfg: _settings.Settings) -> float:
    """The challenger's latency limit (ms of CPU time): ``max_latency_ms``, or with a champion
    measured alongside it, ``max_latency_ratio`` times the champion's latency when that is higher.
    Both latencies come from ``scoring_latency``, in turns on the same rows: a slowdown that CPU
    time still shows (shared caches, clock frequency) raises both, so a challenger no slower than
    the ratio allows against the champion, which serves today, is not rejected for it."""
    if champion is None:
        return cfg.max_latency_ms
    return max(cfg.max_latency_ms, cfg.max_latency_ratio * champion["latency_ms_p50"])


def calibration_limit(positive_rate: float, champion: dict | None, cfg: _settings.Settings) -> float:
    """The largest expected calibration error a challenger may have: ``max_calibration_share`` of
    the holdout's minority-class rate (the error of a model that always answers the majority class),
    or the champion's own error on the same rows when that is higher."""
    bound = cfg.max_calibration_share * min(positive_rate, 1 - positive_rate)
    return bound if champion is None else max(bound, champion["ece"])


def slice_regressions(slices: list[dict], metric: str, margin: float) -> list[str]:
    """A reason for each judged slice where the challenger's ``metric`` is more than ``margin`` below
    the champion's and the paired bootstrap interval of the difference lies below zero."""
    out = []
    for s in slices:
        diff = s.get("difference")
        if not s["judged"] or diff is None or None in (diff["value"], diff["interval"][1]):
            continue
        if not (diff["value"] < -margin and diff["interval"][1] < 0):
            continue
        low, high = diff["interval"]
        out.append(
            f"{metric} on {s['column']}={s['value']} ({s['rows']} rows, {s['positives']} positive) regresses "
            f"{s['models']['champion'][metric]:.4f} -> {s['models']['challenger'][metric]:.4f} "
            f"({diff['value']:+.4f}, 95% interval [{low:+.4f}, {high:+.4f}]; margin {margin})"
        )
    return out


def decide(
    challenger: dict, champion: dict | None, cfg: _settings.Settings | None = None, slices: list[dict] | None = None
) -> tuple[bool, list[str]]:
    """The promotion rule on holdout metrics and, with a champion, the paired ``slices``; returns
    (promote, reasons). A metric the rule reads that is not a finite number, in either set,
    rejects the challenger and is named."""
    cfg = cfg or _settings.load()
    m = cfg.primary_metric
    names = dict.fromkeys((m, "roc_auc", "latency_ms_p50", "positive_rate", "ece"))
    reasons = unreadable("challenger", challenger, names)
    if champion is not None:
        reasons += unreadable("champion", champion, names)
    if reasons:
        return False, reasons
    ok = True
    limit = latency_limit(champion, cfg)
    if challenger["latency_ms_p50"] > limit:
        ok = False
        reasons.append(f"latency p50 {challenger['latency_ms_p50']:.2f} ms exceeds {limit:.2f} ms")
    floor = thresholds.floor(m, challenger["positive_rate"], cfg.promotion_min_lift)
    if not challenger[m] >= floor:
        ok = False
        reasons.append(
            f"{m} {challenger[m]:.4f} is below the floor {floor:.4f} ({cfg.promotion_min_lift:g} x chance "
            f"{thresholds.chance(m, challenger['positive_rate']):.4f} on this holdout)"
        )
    limit = calibration_limit(challenger["positive_rate"], champion, cfg)
    if not challenger["ece"] <= limit:
        ok = False
        reasons.append(
            f"expected calibration error {challenger['ece']:.4f} exceeds {limit:.4f} ({cfg.max_calibration_share:g} x "
            f"the minority-class rate {min(challenger['positive_rate'], 1 - challenger['positive_rate']):.4f}"
            + (f", or the champion's {champion['ece']:.4f}" if champion is not None else "")
            + ")"
        )
    if champion is not None:
        if regressions := slice_regressions(slices or [], m, cfg.slice_margin):
            ok = False
            reasons += regressions
        gain = challenger[m] - champion[m]
        if gain < cfg.promotion_margin:
            ok = False
            reasons.append(f"{m} gain {gain:+.4f} over champion is below the margin {cfg.promotion_margin}")
        if challenger["roc_auc"] < champion["roc_auc"] - cfg.promotion_margin:
            ok = False
            reasons.append(f"roc_auc {challenger['roc_auc']:.4f} regresses from {champion['roc_auc']:.4f}")
    if ok:
        reasons.append(
            f"first model, {m} {challenger[m]:.4f} above the floor {floor:.4f}"
            if champion is None
            else f"{m} beats champion by the margin"
        )
    return ok, reasons


def describe(decision: dict) -> str:
    """A decision in one line (the promote run's note): the verdict, the numbers, every reason."""
    m = decision["metric"]
    against = (
        f"champion v{decision['champion_version']} {decision['champion'][m]:.4f}"
        if decision["champion"]
        else "no champion"
    )
    verdict = "promoted" if decision["promote"] else "rejected"
    return (
        f"v{decision['challenger_version']} {verdict}: {m} {decision['challenger'][m]:.4f} vs {against}; "
        + "; ".join(decision["reasons"])
    )


def compare(challenger_version: str | None = None, limits: thresholds.Thresholds | None = None) -> Decision:
    """Score challenger and champion on the challenger's holdout and apply the rule with ``limits``
    (default: ``thresholds.in_force()``; the promote DAG passes the Airflow Variables' too)."""
    import mlflow

    limits = limits or thresholds.in_force()
    cfg = limits.apply(_settings.load())
    c = tracking.client()
    challenger = (
        c.get_model_version(cfg.model_name, challenger_version)
        if challenger_version
        else tracking.version_by_alias(CHALLENGER)
    )
    if challenger is None:
        raise LookupError(f"model {cfg.model_name!r} has no {CHALLENGER!r} version to evaluate")
    champion = tracking.version_by_alias(CHAMPION)  # a registry failure raises: the task fails and is retried
    holdout = training.load_part(challenger.tags["training_set_uri"], "holdout")
    models = {  # the champion first: a slice's difference is the challenger's metric minus the champion's
        role: training.Scorer(mlflow.pyfunc.load_model(f"models:/{cfg.model_name}/{mv.version}").unwrap_python_model())
        for role, mv in (("champion", champion), ("challenger", challenger))
        if mv is not None
    }
    judgement = training.judged({role: model.predict(holdout) for role, model in models.items()}, holdout, cfg)
    scores = {role: training.headline(judgement, role) for role in models}
    # both models in turns on the same rows, in CPU time: see scoring_latency
    for role, latency in training.scoring_latency(models, holdout.head(training.LATENCY_ROWS)).items():
        scores[role]["latency_ms_p50"] = latency
    promote, reasons = decide(scores["challenger"], scores.get("champion"), cfg, judgement["slices"])
    decision = Decision(
        promote,
        str(challenger.version),
        str(champion.version) if champion else None,
        cfg.primary_metric,
        scores["challenger"],
        scores.get("champion"),
        reasons,
        limits.record(),
        slices=judgement["slices"],
    )
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(f"{cfg.experiment}-promotion"),
        run_name=f"v{challenger.version} vs {decision.champion_version or 'none'}",
    ) as run:
        mlflow.log_metrics({f"challenger_{k}": v for k, v in scores["challenger"].items()})
        if champion is not None:
            mlflow.log_metrics({f"champion_{k}": v for k, v in scores["champion"].items()})
        mlflow.log_params({f"threshold_{k}": v["value"] for k, v in decision.thresholds.items()})
        mlflow.log_dict(judgement, "evaluation/evaluation.json")
        mlflow.set_tags(
            {
                "decision": "promote" if promote else "reject",
                "reasons": "; ".join(reasons),
                "challenger_version": decision.challenger_version,
                "champion_version": str(decision.champion_version),
            }
        )
    decision.mlflow_run = run.info.run_id
    verdict = ("promoted: " if promote else "rejected: ") + "; ".join(reasons)
    c.set_model_version_tag(cfg.model_name, challenger.version, "promotion_decision", verdict)
    if promote:
        model_card.publish(decision.challenger_version)
    else:  # the retire transition publishes its card
        registry.retire(decision.challenger_version, verdict, f"MLflow run {decision.mlflow_run}")
    return decision


def target(version: str, canary: bool | None = None) -> str:
    """The alias a release of ``version`` moves it to: ``canary`` with a champion serving and canary
    mode on (``LIFECYCLE_CANARY_MODE``, or ``canary``), else ``champion``."""
    current = registry.aliases().get(CHAMPION)
    canary = _settings.load().canary_mode if canary is None else canary
    return CANARY if canary and current not in (None, str(version)) else CHAMPION


def release(
    version: str,
    force: bool = False,
    canary: bool | None = None,
    reason: str | None = None,
    approved_by: str | None = None,
) -> dict:
    """Put ``version`` live once its bento passed the smoke test. With a champion serving and canary
    mode on (``LIFECYCLE_CANARY_MODE``, or ``canary``) it becomes the ``canary``, and the canary DAG
    decides; otherwise it becomes the champion (``registry`` keeps the old one for rollback).
    A version the offline gate rejected is refused unless forced. The history records ``reason``,
    by default the offline decision. Returns the history record."""
    cfg = _settings.load()
    decision = tracking.client().get_model_version(cfg.model_name, version).tags.get("promotion_decision", "")
    if not decision.startswith("promoted") and not force:
        raise ValueError(
            f"version {version} was not promoted by the offline gate "
            f"({decision or 'no decision recorded'}): not released"
        )
    reason = reason or decision or "released by hand without an offline decision"
    if target(version, canary) == CANARY:
        return registry.to_canary(version, reason, approved_by=approved_by)
    return registry.to_champion(version, reason, approved_by=approved_by)
