"""Champion/challenger: promote only a model that is measurably better on the same holdout.

``decide`` is the pure rule; ``compare`` scores both registered versions on the challenger's
holdout and records the decision. ``release`` moves the aliases once the packaged service passed
its smoke test (a version reaches a live alias only then), keeping the old champion as
``previous_champion``; ``rollback`` swaps them back.

Every challenger must reach the floor, which is relative to its holdout: ``promotion_min_lift``
times what a ranking by chance reaches on it (``thresholds.floor``). It is judged as a first model
only when the registry says there is no champion; a registry that cannot be read fails the
comparison (the Airflow task is retried). A metric the rule reads that is not a finite number
(NaN, None, missing, infinite), in either model's set, rejects the challenger with a reason naming it.

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

from lifecycle import settings as _settings
from lifecycle import thresholds, tracking
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, PREVIOUS
from lifecycle.training import LATENCY_ROWS, load_part, quality, scoring_latency


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


def decide(challenger: dict, champion: dict | None, cfg: _settings.Settings | None = None) -> tuple[bool, list[str]]:
    """The promotion rule on holdout metrics; returns (promote, reasons). A metric the rule reads
    that is not a finite number, in either set, rejects the challenger and is named."""
    cfg = cfg or _settings.load()
    m = cfg.primary_metric
    names = dict.fromkeys((m, "roc_auc", "latency_ms_p50", "positive_rate"))
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
    if champion is not None:
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
    holdout = load_part(challenger.tags["training_set_uri"], "holdout")
    models = {
        role: mlflow.pyfunc.load_model(f"models:/{cfg.model_name}/{mv.version}")
        for role, mv in (("challenger", challenger), ("champion", champion))
        if mv is not None
    }
    scores = {role: quality(model, holdout) for role, model in models.items()}
    # both models in turns on the same rows, in CPU time: see scoring_latency
    for role, latency in scoring_latency(models, holdout.head(LATENCY_ROWS)).items():
        scores[role]["latency_ms_p50"] = latency
    promote, reasons = decide(scores["challenger"], scores.get("champion"), cfg)
    decision = Decision(
        promote,
        str(challenger.version),
        str(champion.version) if champion else None,
        cfg.primary_metric,
        scores["challenger"],
        scores.get("champion"),
        reasons,
        limits.record(),
    )
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(f"{cfg.experiment}-promotion"),
        run_name=f"v{challenger.version} vs {decision.champion_version or 'none'}",
    ):
        mlflow.log_metrics({f"challenger_{k}": v for k, v in scores["challenger"].items()})
        if champion is not None:
            mlflow.log_metrics({f"champion_{k}": v for k, v in scores["champion"].items()})
        mlflow.log_params({f"threshold_{k}": v["value"] for k, v in decision.thresholds.items()})
        mlflow.set_tags(
            {
                "decision": "promote" if promote else "reject",
                "reasons": "; ".join(reasons),
                "challenger_version": decision.challenger_version,
                "champion_version": str(decision.champion_version),
            }
        )
    c.set_model_version_tag(
        cfg.model_name,
        challenger.version,
        "promotion_decision",
        ("promoted: " if promote else "rejected: ") + "; ".join(reasons),
    )
    return decision


def release(version: str, force: bool = False, canary: bool | None = None) -> dict:
    """Put ``version`` live once its bento passed the smoke test. With a champion serving and canary
    mode on (``LIFECYCLE_CANARY_MODE``, or ``canary``) it becomes the ``canary``, and the canary DAG
    decides; otherwise it becomes the champion and the old one ``previous_champion`` for rollback.
    A version the offline gate rejected is refused unless forced."""
    import datetime as dt

    cfg = _settings.load()
    c = tracking.client()
    mv = c.get_model_version(cfg.model_name, version)
    decision = mv.tags.get("promotion_decision", "")
    if not decision.startswith("promoted") and not force:
        raise ValueError(
            f"version {version} was not promoted by the offline gate "
            f"({decision or 'no decision recorded'}): not released"
        )
    current = tracking.version_by_alias(CHAMPION)
    released_at = dt.datetime.now(dt.UTC).isoformat()
    if (cfg.canary_mode if canary is None else canary) and current is not None and str(current.version) != str(version):
        c.set_model_version_tag(cfg.model_name, version, "canary_started_at", released_at)
        c.set_registered_model_alias(cfg.model_name, CANARY, version)
        return {CANARY: str(version), CHAMPION: str(current.version), "released_at": released_at}
    if current is not None and str(current.version) != str(version):
        c.set_registered_model_alias(cfg.model_name, PREVIOUS, current.version)
    c.set_registered_model_alias(cfg.model_name, CHAMPION, version)
    challenger = tracking.version_by_alias(CHALLENGER)
    if challenger is not None and str(challenger.version) == str(version):
        c.delete_registered_model_alias(cfg.model_name, CHALLENGER)
    c.set_model_version_tag(cfg.model_name, version, "released_at", released_at)
    return {CHAMPION: str(version), PREVIOUS: str(current.version) if current else None, "released_at": released_at}


def rollback(canary: bool = False) -> dict:
    """Swap ``champion`` back to ``previous_champion`` (an operator's lever, also in the README).
    With ``canary`` the previous champion first serves as ``canary``, and the canary DAG decides
    from production evidence whether it takes over."""
    cfg = _settings.load()
    c = tracking.client()
    previous, current = tracking.version_by_alias(PREVIOUS), tracking.version_by_alias(CHAMPION)
    if previous is None:
        raise LookupError(f"model {cfg.model_name!r} has no {PREVIOUS!r} version to roll back to")
    if canary:
        return release(str(previous.version), canary=True)
    c.set_registered_model_alias(cfg.model_name, CHAMPION, previous.version)
    if current is not None:
        c.set_registered_model_alias(cfg.model_name, PREVIOUS, current.version)
    return {"champion": str(previous.version), PREVIOUS: str(current.version) if current else None}
