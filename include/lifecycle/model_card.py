"""A model card per registered version: what an analyst and an auditor read about one model.

``facts`` gathers it from the registry and the records: what the version is for (the use case's
``purpose``), what made it (``audit.model``: training window, data digests, code, trigger), the
candidates trained beside it, its evaluation on the holdout (``lifecycle.evaluation``: metrics,
calibration, slices with intervals, importance), the decisions about it (promotion, every alias
move with who approved it, canary outcomes) and its live performance so far. ``publish`` renders it
as one HTML page under ``reports/model_cards/v<version>/`` (listed in the reports index), logs the
page to the version's MLflow run (artifact ``model_card/index.html``), and points the version's
description at it. It is published again whenever something about the version changes: each
registry transition, each promotion decision, each live performance run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import tempfile
from pathlib import Path

from lifecycle import audit, contract, pages, registry, reports, tracking, ui
from lifecycle import settings as _settings

PAGE = reports.INDEX
TOP_INPUTS = 15  # inputs the importance chart shows


def folder(version: str) -> str:
    """The card's folder in the reports zone."""
    return reports.card_page(version).rsplit("/", 1)[0]


def facts(version: str) -> dict:
    """Everything the card shows, from the registry and the records as they are now."""
    from mlflow.exceptions import MlflowException

    cfg = _settings.load()
    uc = contract.current(cfg)
    c = tracking.client()
    version = str(version)
    mv = c.get_model_version(cfg.model_name, version)
    made = audit.model(version)
    run = c.get_run(mv.run_id) if mv.run_id else None  # a version registered by hand may have none
    parent = run and run.data.tags.get("mlflow.parentRunId")
    siblings = (
        c.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
        if parent
        else [run] * bool(run)
    )

    def artifact(name: str) -> dict | None:
        import mlflow

        if run is None:
            return None
        try:
            return mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/evaluation/{name}")
        except (MlflowException, OSError):  # versions trained before evaluation in depth
            return None

    live = c.search_runs(
        [tracking.experiment_id()],
        f"tags.kind = 'live_performance' and tags.model_version = '{version}'",
        order_by=["start_time DESC"],
        max_results=20,
    )
    return {
        **made,
        "model_name": cfg.model_name,
        "use_case": uc.name,
        "purpose": uc.purpose,
        "label": uc.label,
        "slices": list(uc.slices),
        "metric": cfg.primary_metric,
        "alert_rate": cfg.alert_rate,
        "aliases": sorted(alias for alias, v in registry.aliases().items() if v == version),
        "registered_at": dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).isoformat(timespec="seconds"),
        "candidates": sorted(
            (
                {
                    "flavour": r.data.tags.get("flavour"),
                    "run_id": r.info.run_id,
                    "chosen": r.info.run_id == mv.run_id,
                    **{k: r.data.metrics.get(k) for k in ("pr_auc", "roc_auc", "ece", "latency_ms_p50")},
                }
                for r in siblings
            ),
            key=lambda r: -(r.get(cfg.primary_metric) or 0),
        ),
        "evaluation": artifact("evaluation.json"),
        "importance": artifact("importance.json"),
        "live": [
            {
                "run": r.info.run_name,
                "arm": r.data.tags.get("arm"),
                "window": r.data.tags.get("window"),
                "report_url": r.data.tags.get("report_url"),
                **{k.removeprefix("live_"): v for k, v in r.data.metrics.items()},
            }
            for r in live
        ],
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def publish(version: str) -> str:
    """Render the card of ``version``, publish it in the reports zone, log it to the version's run
    and point its description at it; returns the page's URI."""
    cfg = _settings.load()
    card = facts(version)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / PAGE).write_text(render(card))
        (Path(tmp) / "card.json").write_text(json.dumps(card, default=str))
        page = reports.publish_dir(Path(tmp), folder(card["version"]))
        c = tracking.client()
        if card["training_run"]:
            c.log_artifact(card["training_run"], str(Path(tmp) / PAGE), artifact_path="model_card")
    reports.rebuild_index()
    url = ui.report_url(page)
    c.update_model_version(
        cfg.model_name,
        card["version"],
        description=f"Model card: {url} (and this version's run, artifact model_card/{PAGE}). {card['purpose']}",
    )
    return str(page)


def refresh(versions) -> None:
    """``publish`` each of ``versions`` that still exists (a version deleted by hand has no card)."""
    from mlflow.exceptions import MlflowException

    for version in dict.fromkeys(str(v) for v in versions if v):
        try:
            publish(version)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise


# --- rendering --------------------------------------------------------------------------------

STYLE = pages.STYLE + (  # the deployment page's, and what a card adds
    "<style>body{max-width:70em}th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".chosen{font-weight:bold}</style>"
)


def _e(value) -> str:
    return html.escape("-" if value is None else str(value))


def _n(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else _e(value)


def _table(columns: list[str], rows: list[list[str]], empty: str = "none yet") -> str:
    return pages.table(columns, rows, empty)


def reliability_svg(curve: list[dict], size: int = 260) -> str:
    """The reliability curve as an inline SVG: mean score (x) against observed rate (y) per bin,
    each point's area by its rows, and the diagonal a calibrated model follows."""
    pad = 30
    span = size - 2 * pad
    most = max((b["rows"] for b in curve), default=1)

    def xy(x: float, y: float) -> tuple[float, float]:
        return pad + x * span, size - pad - y * span

    points = [(*xy(b["mean_score"], b["observed_rate"]), b) for b in curve]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _) in enumerate(points))
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{2 + 6 * (b['rows'] / most) ** 0.5:.1f}' fill='#36c' fill-opacity='0.6'>"
        f"<title>scores {b['low']:.1f}-{b['high']:.1f}: {b['rows']} rows, mean score {b['mean_score']:.4f}, "
        f"observed {b['observed_rate']:.4f}</title></circle>"
        for x, y, b in points
    )
    (x0, y0), (x1, y1) = xy(0, 0), xy(1, 1)
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' role='img' "
        f"aria-label='reliability curve'><rect x='{pad}' y='{pad}' width='{span}' height='{span}' fill='none' "
        f"stroke='#999'/><line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y1}' stroke='#999' stroke-dasharray='4'/>"
        f"<path d='{path}' fill='none' stroke='#36c'/>{dots}"
        f"<text x='{size / 2}' y='{size - 5}' text-anchor='middle' font-size='11'>mean score</text>"
        f"<text x='10' y='{size / 2}' font-size='11' transform='rotate(-90 10 {size / 2})' text-anchor='middle'>"
        f"observed rate</text></svg>"
    )


def _bars(inputs: list[dict]) -> str:
    top = inputs[:TOP_INPUTS]
    most = max((abs(i["value"]) for i in top), default=0) or 1
    rows = [
        [
            _e(i["name"]),
            f"<span style='display:inline-block;background:#36c;height:0.8em;"
            f"width:{200 * abs(i['value']) / most:.0f}px'></span>",
            f"<span class='num'>{i['value']:.4f}</span>",
        ]
        for i in top
    ]
    return _table(["input", "", "importance"], rows)


def render(card: dict) -> str:
    """The card as one self-contained HTML page."""
    m = card["metric"]
    ts = card.get("training_set") or {}
    ev = card.get("evaluation")
    parts = [
        f"<p>{_e(card['purpose'])}</p>",
        _table(
            ["model", "version", "flavour", "serving as", "registered", "card generated"],
            [
                [
                    _e(card["model_name"]),
                    _e(card["version"]),
                    _e(card["flavour"]),
                    _e(", ".join(card["aliases"]) or "not serving"),
                    _e(card["registered_at"]),
                    _e(card["generated_at"]),
                ]
            ],
        ),
        "<h2>Training</h2>",
        _table(
            ["", ""],
            [
                ["why trained", _e(card["trigger"])],
                ["Airflow run", pages.link(card["airflow_run_url"], card["airflow_run"] or "-")],
                ["training window", _e(ts.get("days"))],
                ["holdout from", _e(ts.get("holdout_from"))],
                [
                    "rows (train / holdout)",
                    _e(f"{(ts.get('rows') or {}).get('train')} / {(ts.get('rows') or {}).get('holdout')}"),
                ],
                ["training set digest", _e(ts.get("digest"))],
                ["training set", _e(ts.get("uri"))],
                ["code commit", _e(card["code_commit"])],
                ["model artifact digest", _e(card["artifact_digest"])],
                ["MLflow run", _e(card["training_run"])],
            ],
        ),
        _sources(ts.get("curated_partitions") or {}),
        "<h2>Candidates compared</h2>",
        _table(
            ["flavour", m, "roc_auc", "calibration error", "latency p50 (ms CPU)", "MLflow run"],
            [
                [
                    f"<span class='chosen'>{_e(r['flavour'])} (chosen)</span>" if r["chosen"] else _e(r["flavour"]),
                    _n(r.get(m)),
                    _n(r.get("roc_auc")),
                    _n(r.get("ece")),
                    _n(r.get("latency_ms_p50"), 3),
                    _e(r["run_id"]),
                ]
                for r in card["candidates"]
            ],
        ),
        "<h2>Holdout evaluation</h2>",
        _evaluation(card, ev) if ev else "<p>Not recorded: this version was trained before evaluation in depth.</p>",
        "<h2>What drives it</h2>",
        (
            f"<p>{_e(card['importance']['method'])}, over {card['importance']['rows']} holdout rows.</p>"
            + _bars(card["importance"]["inputs"])
            if card.get("importance")
            else "<p>Not recorded.</p>"
        ),
        "<h2>Decisions</h2>",
        _table(
            ["promotion decision", "against champion", "reasons", "MLflow run"],
            [
                [_e(p["decision"]), _e(p["against_champion"]), _e(p["reasons"]), _e(p["mlflow_run"])]
                for p in card["promotion"]
            ],
            "no promotion decision yet",
        ),
        _table(
            ["when (UTC)", "move", "by", "approved by", "why"],
            [
                [_e(mv["at"][:19]), _e(mv["transition"]), _e(mv["by"]), _e(mv["approved_by"]), _e(mv["reason"])]
                for mv in card["moves"]
            ],
            "never moved",
        ),
        _table(
            ["canary outcome", "why", "MLflow run"],
            [[_e(c["outcome"]), _e(c["reason"]), _e(c["mlflow_run"])] for c in card["canary"]],
            "never a canary",
        ),
        "<h2>Live performance so far</h2>",
        _table(
            [
                "run",
                "arm",
                "window",
                "labels",
                m,
                "precision at alert",
                "recall at alert",
                "calibration error",
                "report",
            ],
            [
                [
                    _e(r["run"]),
                    _e(r["arm"]),
                    _e(r["window"]),
                    _n(r.get("labels"), 0),
                    _n(r.get(m)),
                    _n(r.get("precision_at_alert")),
                    _n(r.get("recall_at_alert")),
                    _n(r.get("ece")),
                    f"<a href='{_e(r['report_url'])}'>report</a>" if r.get("report_url") else "-",
                ]
                for r in card["live"]
            ],
            "no labeled live predictions yet",
        ),
    ]
    title = f"{card['model_name']} v{card['version']}: model card"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}</head><body>"
        f"<p><a href='../../{reports.INDEX}'>Model reports</a></p><h1>{html.escape(title)}</h1>"
        f"{''.join(parts)}</body></html>"
    )


def _sources(partitions: dict) -> str:
    rows = [[_e(dataset), _e(day), _e(digest)] for dataset, days in partitions.items() for day, digest in days.items()]
    return (
        f"<details><summary>Curated partitions it was made from ({len(rows)}), with their data digests</summary>"
        + _table(["dataset", "day", "sha256"], rows)
        + "</details>"
    )


def _evaluation(card: dict, ev: dict) -> str:
    m, alert = card["metric"], card["alert_rate"]
    model = ev["models"]["model"]
    x = model["metrics"]
    headline = _table(
        [
            "rows",
            "positives",
            m,
            "roc_auc",
            "log loss",
            "Brier",
            "calibration error (ECE)",
            f"precision at {alert:.1%} alerts",
            f"recall at {alert:.1%} alerts",
        ],
        [
            [
                _e(ev["rows"]),
                _e(ev["positives"]),
                *(
                    _n(x.get(k))
                    for k in (m, "roc_auc", "log_loss", "brier", "ece", "precision_at_alert", "recall_at_alert")
                ),
            ]
        ],
    )
    slices = _table(
        ["slice", "rows", "positives", m, "95% interval", "judged"],
        [
            [
                _e(f"{s['column']} = {s['value']}"),
                _e(s["rows"]),
                _e(s["positives"]),
                _n(s["models"]["model"].get(m)),
                _e("[" + ", ".join(_n(v) for v in s["models"]["model"]["interval"]) + "]")
                if "interval" in s["models"]["model"]
                else "-",
                "yes" if s["judged"] else "too few rows or one class",
            ]
            for s in ev["slices"]
        ],
        "the use case declares no slices",
    )
    return (
        headline
        + "<h3>Calibration</h3><div style='display:flex;gap:2em;align-items:flex-start'>"
        + reliability_svg(model["reliability"])
        + _table(
            ["scores", "rows", "mean score", "observed rate"],
            [
                [_e(f"{b['low']:.1f}-{b['high']:.1f}"), _e(b["rows"]), _n(b["mean_score"]), _n(b["observed_rate"])]
                for b in model["reliability"]
            ],
        )
        + "</div><h3>Slices</h3>"
        + f"<p>{_e(m)} per value of {_e(', '.join(card['slices']) or 'no column')}, with bootstrap intervals.</p>"
        + slices
    )
