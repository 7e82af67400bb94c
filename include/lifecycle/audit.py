"""Which model answered a request, with which inputs, trained on what, approved by whom:
``python -m lifecycle.audit <request id | event id> [--json]`` (the reports plugin's audit page too).

The answer joins the three records that hold it:
  prediction log      every arm that scored the request: version, the exact model inputs, the
                      score (or the error), when, how fast, from which source (live, batch)
  registry (MLflow)   the version's training run, training set (its days, the digest of each
                      curated partition it was made from, its own digest), code commit, artifact
                      digest, holdout metrics, the promotion decision with its thresholds, canary
                      decisions
  deployment history  how the version came to serve the arm it answered from (the transition in
                      force when it answered: who, when, why, approved by whom), and all its moves
"""

from __future__ import annotations

import json
import math
import sys

import pandas as pd

from lifecycle import contract, prediction_log, prediction_reader, registry, reports, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, FALLBACK, PREVIOUS, SHADOW

ARM_ALIASES = {CHAMPION: (CHAMPION,), CANARY: (CANARY,), SHADOW: (CANARY, CHALLENGER), FALLBACK: (PREVIOUS,)}


class NotLogged(LookupError):
    """No logged prediction has the key as request id or event id."""


def answer(key: str) -> dict:
    """The audit answer for a request id or an event id (every logged request of that event)."""
    cfg = _settings.load()
    uc = contract.current(cfg)
    rows = prediction_reader.find(key, cfg)
    if rows.empty:
        raise NotLogged(f"no logged prediction has request_id or {uc.id} {key!r}")
    history = registry.history()
    versions: dict[str, dict] = {}
    answers = []
    for _, row in rows.sort_values(["served_at", "arm"]).iterrows():
        version = str(row["model_version"])
        if version not in versions:
            versions[version] = model(version)
        served = row["served_at"].isoformat()
        answers.append(
            {
                "request_id": _plain(row["request_id"]),
                uc.id: _plain(row[uc.id]),
                "arm": row["arm"],
                # a shadow score is logged, never answered; a failed one answered nothing
                "returned": row["arm"] != SHADOW and _plain(row.get("error")) is None,
                "model_version": version,
                "served_at": served,
                "event_time": row[prediction_log.EVENT_TIME].isoformat(),
                "source": row["source"],
                "score": _plain(row[uc.score]),
                "error": _plain(row.get("error")),
                "latency_ms": _plain(row["latency_ms"]),
                "feature_age_s": _plain(row.get("feature_age_s")),
                "missing_features": _plain(row.get("missing_features")),
                "entities": {e: _plain(row[e]) for e in uc.entities},
                "inputs": {c.removeprefix("input_"): _plain(row[c]) for c in rows.columns if c.startswith("input_")},
                # what an explained answer gave as the inputs behind its score
                "reasons": json.loads(r) if isinstance(r := _plain(row.get("reasons")), str) else None,
                "model_card": reports.card_page(version),
                "serving_because": in_force(history, version, row["arm"], served),
            }
        )
    return {"key": key, "model_name": cfg.model_name, "score_name": uc.score, "answers": answers, "models": versions}


def model(version: str) -> dict:
    """What the registry and the history say about a version: its making, its judging, its moves."""
    from airflow.sdk import ObjectStoragePath

    from lifecycle import lake

    cfg = _settings.load()
    c = tracking.client()
    mv = c.get_model_version(cfg.model_name, version)
    tags = mv.tags
    training_set = lake.manifest(ObjectStoragePath(tags["training_set_uri"])) if "training_set_uri" in tags else None
    promotion = c.get_experiment_by_name(f"{cfg.experiment}-promotion")
    decisions = (
        c.search_runs([promotion.experiment_id], f"tags.challenger_version = '{version}'", order_by=["start_time ASC"])
        if promotion
        else []
    )
    canaries = c.search_runs(
        [tracking.experiment_id()],
        f"tags.kind = 'canary_decision' and tags.canary_version = '{version}'",
        order_by=["start_time ASC"],
    )
    return {
        "version": version,
        "training_run": mv.run_id,
        "flavour": tags.get("flavour"),
        "trigger": tags.get("trigger"),
        "airflow_run": tags.get("airflow_run"),
        "airflow_run_url": tags.get("airflow_run_url"),
        "code_commit": tags.get("git_commit"),
        "artifact_digest": tags.get("artifact_digest"),
        "holdout": {k.removeprefix("holdout_"): float(v) for k, v in tags.items() if k.startswith("holdout_")},
        "training_set": None
        if training_set is None
        else {
            "uri": tags["training_set_uri"],
            "digest": training_set.get("digest"),
            "days": f"{training_set.get('first_day')}..{training_set.get('last_day')}",
            "holdout_from": training_set.get("split_day"),
            "rows": {"train": training_set.get("train_rows"), "holdout": training_set.get("holdout_rows")},
            "curated_partitions": training_set.get("sources"),
        },
        "promotion": [
            {
                "decision": r.data.tags.get("decision"),
                "reasons": r.data.tags.get("reasons"),
                "against_champion": r.data.tags.get("champion_version"),
                "thresholds": {k.removeprefix("threshold_"): v for k, v in r.data.params.items()},
                "mlflow_run": r.info.run_id,
            }
            for r in decisions
        ],
        "canary": [
            {"outcome": r.data.tags.get("outcome"), "reason": r.data.tags.get("reason"), "mlflow_run": r.info.run_id}
            for r in canaries
        ],
        "moves": [
            {k: e[k] for k in ("at", "transition", "by", "approved_by", "reason", "evidence", "dag_run")}
            for e in registry.history(version)
        ],
    }


def in_force(history: list[dict], version: str, arm: str, served_at: str) -> dict | None:
    """The history record that put ``version`` in the alias its ``arm`` reads, the last before it answered."""
    aliases = ARM_ALIASES.get(arm, ())
    found = None
    for entry in history:
        if entry["at"] > served_at:
            break
        if any(entry["to"].get(a) == version and entry["from"].get(a) != version for a in aliases):
            found = entry
    if found is None:
        return None
    return {k: found[k] for k in ("at", "transition", "by", "approved_by", "reason", "evidence", "dag_run")}


def _plain(value):
    """A JSON value: NaN and missing as None, numpy scalars as Python's."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def text(result: dict) -> str:
    """The answer as a person reads it."""
    lines = [f"Audit of {result['key']} ({result['model_name']})"]
    for a in result["answers"]:
        said = (
            "answered"
            if a["returned"]
            else "failed to score (not returned)"
            if a["error"]
            else "scored in shadow (not returned)"
        )
        age = a.get("feature_age_s")
        lines += [
            "",
            f"request {a['request_id']} at {a['served_at']} ({a['source']}): {said} by v{a['model_version']} "
            f"on arm {a['arm']}, {result['score_name']} {a['score']}, {a['latency_ms']:.2f} ms"
            + (f", error {a['error']}" if a["error"] else ""),
            "  inputs: " + ", ".join(f"{k}={v}" for k, v in a["inputs"].items()),
            *(
                ["  reasons given: " + ", ".join(f"{r['input']}={r['value']} ({r['contribution']:+.3f})" for r in why)]
                if (why := a.get("reasons"))
                else []
            ),
            "  stored features: "
            + ("none for an entity" if a.get("missing_features") else "for every entity")
            + (f", {age / 3600:.1f} h old at the event's time" if age is not None else ""),
        ]
        why = a["serving_because"]
        lines.append(
            f"  serving because: {why['transition']} at {why['at']} by {why['by']}"
            + (f", approved by {why['approved_by']}" if why["approved_by"] else "")
            + f": {why['reason']}"
            if why
            else "  serving because: no recorded move put it there (before the deployment history began)"
        )
    for m in result["models"].values():
        ts = m["training_set"] or {}
        lines += [
            "",
            f"v{m['version']}: {m['flavour']}, model card reports/{reports.card_page(m['version'])}, "
            f"training run {m['training_run']}, commit {m['code_commit']}, "
            f"artifact sha256 {m['artifact_digest']}, trigger {m['trigger']!r} ({m['airflow_run']})",
            f"  trained on {ts.get('days')} (holdout from {ts.get('holdout_from')}, rows {ts.get('rows')}), "
            f"training set digest {ts.get('digest')}",
        ]
        for dataset, days in (ts.get("curated_partitions") or {}).items():
            lines.append(f"  {dataset}: " + ", ".join(f"{d} {sha[:12]}" for d, sha in days.items()))
        for p in m["promotion"]:
            lines.append(
                f"  promotion: {p['decision']} vs champion {p['against_champion']}: {p['reasons']} "
                f"(thresholds {p['thresholds']}, MLflow run {p['mlflow_run']})"
            )
        for c in m["canary"]:
            lines.append(f"  canary: {c['outcome']}: {c['reason']} (MLflow run {c['mlflow_run']})")
        for move in m["moves"]:
            lines.append(
                f"  {move['at']} {move['transition']} by {move['by']}"
                + (f", approved by {move['approved_by']}" if move["approved_by"] else "")
                + f": {move['reason']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from lifecycle.platform import env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key", help="a request id (from the service's answer) or an event id")
    parser.add_argument("--json", action="store_true", help="the answer as JSON")
    args = parser.parse_args(argv)
    env.apply()
    try:
        result = answer(args.key)
    except NotLogged as err:
        sys.exit(f"audit: {err}")
    print(json.dumps(result, indent=2, default=str) if args.json else text(result))


if __name__ == "__main__":
    main()
