"""The reports zone: HTML for analysts (Data Docs, Evidently), with one index page."""

from __future__ import annotations

import datetime as dt
import html
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from lifecycle import lake

INDEX = "index.html"


def publish_dir(local: Path, relative: str) -> ObjectStoragePath:
    """Copy a local folder of report files into ``reports/<relative>``; returns its index page."""
    dest = lake.zone("reports") / relative
    lake.remove(dest)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            target = dest / path.relative_to(local).as_posix()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return dest / INDEX


def run_key() -> str:
    """A folder for one run's report: when it was made (UTC, sortable) and a random part."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]


def publish_evidently(snapshot, summary: dict, metrics: list, day_folder: str, header: str = "") -> str:
    """An Evidently snapshot as ``reports/<day_folder>/<run_key>/report.html`` plus ``report.json``
    (the summary the index reads, and the metrics); rebuilds the index; returns the HTML page's URI.
    Each run gets its own folder: a rerun for the same day never replaces the page an earlier
    decision (an asset event, an MLflow tag) points to. ``header`` (HTML) leads the page, above
    Evidently's own: what the reader needs first."""
    relative = f"{day_folder}/{run_key()}"
    with tempfile.TemporaryDirectory() as tmp:
        snapshot.save_html(str(Path(tmp) / "report.html"))
        if header:
            page = (Path(tmp) / "report.html").read_text()
            at = page.index(">", page.index("<body")) + 1
            (Path(tmp) / "report.html").write_text(page[:at] + header + page[at:])
        (Path(tmp) / "report.json").write_text(json.dumps({"summary": summary, "metrics": metrics}, default=str))
        page = publish_dir(Path(tmp), relative)
    rebuild_index()
    return str(page.parent / "report.html")


def latest(day_folder: str) -> ObjectStoragePath | None:
    """The newest run's ``report.json`` under ``reports/<day_folder>/``, None when there is none."""
    folder = lake.zone("reports") / day_folder
    runs = sorted(p.name for p in folder.iterdir() if (p / "report.json").exists()) if folder.exists() else []
    return folder / runs[-1] / "report.json" if runs else None


def rebuild_index() -> ObjectStoragePath:
    """Write ``reports/index.html``: per kind a table, newest first, of each report's date, model
    version and headline numbers (read from the ``report.json`` beside each Evidently page)."""
    base = lake.zone("reports")
    performance = [(p, _summary(base, p)) for p in _pages(base / "performance", "report.html")]
    drift = [(p, _summary(base, p)) for p in _pages(base / "drift", "report.html")]
    quality = _pages(base / "data_quality", INDEX)
    cards = [(p, _card(base, p)) for p in _pages(base / "model_cards", INDEX)]
    body = [
        _table(
            "Model cards (one per registered version: purpose, data, evaluation, decisions, live performance)",
            ["version", "flavour", "serving as", "trained on", "holdout metric", "calibration error", "decision"],
            [
                (
                    p,
                    [
                        c.get("version"),
                        c.get("flavour"),
                        ", ".join(c.get("aliases") or []) or "-",
                        (c.get("training_set") or {}).get("days"),
                        _num(c.get("metric"), (c.get("holdout") or {}).get(c.get("metric"))),
                        _num(None, (c.get("holdout") or {}).get("ece")),
                        ((c.get("promotion") or [{}])[-1].get("decision")),
                    ],
                )
                for p, c in cards
            ],
            key=lambda row: int(row[1][0] or 0),
        ),
        _table(
            "Live model performance (Evidently classification, predictions joined with labels)",
            [
                "as of",
                "window",
                "model version",
                "live metric",
                "holdout",
                "labels",
                "prediction drift",
                "degraded",
                "model card",
                "Airflow run",
            ],
            [
                (
                    p,
                    [
                        s.get("as_of"),
                        s.get("window"),
                        s.get("model_version"),
                        _num(s.get("metric"), s.get("value")),
                        _num(None, s.get("baseline")),
                        s.get("labels"),
                        _num(None, (s.get("prediction_drift") or {}).get("value")),
                        "yes" if s.get("degraded") else "no",
                        *_links(s),
                    ],
                )
                for p, s in performance
            ],
        ),
        _table(
            "Data drift (Evidently, champion's training data vs recent days)",
            [
                "as of",
                "days",
                "champion version",
                "drift share",
                "drifted columns",
                "drift",
                "model card",
                "Airflow run",
            ],
            [
                (
                    p,
                    [
                        s.get("as_of"),
                        _span(s.get("current_days") or []),
                        s.get("model_version"),
                        _num(None, s.get("drift_share")),
                        ", ".join(s.get("drifted_columns", [])) or "-",
                        "yes" if s.get("drift") else "no",
                        *_links(s),
                    ],
                )
                for p, s in drift
            ],
        ),
        _table(
            "Data quality (Great Expectations Data Docs)",
            ["date", "dataset"],
            [(p, [p.split("/")[2], p.split("/")[1]]) for p in quality],
        ),
    ]
    base.mkdir(parents=True, exist_ok=True)
    index = base / INDEX
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Model lifecycle reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>"
        "</head><body><h1>Model lifecycle reports</h1>"
        "<p><a href='deployment'>Deployment</a>: what serves now, approvals waiting, the history of every "
        "alias move · <a href='audit'>Audit a prediction</a>: which model answered a request, and why</p>"
        + "".join(body)
        + "</body></html>"
    )
    return index


def _table(title: str, columns: list[str], rows: list[tuple[str, list]], key=None) -> str:
    """An HTML table, newest first (by ``key``, else the first cell: a date), each row linking its report."""
    rows = sorted(rows, key=key or (lambda r: (str(r[1][0]), r[0])), reverse=True)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*columns, "report"])
    cells = "".join(
        "<tr>"
        + "".join(
            f"<td>{v.html() if isinstance(v, Link) else html.escape(str(v if v is not None else '-'))}</td>"
            for v in values
        )
        + f'<td><a href="{html.escape(page)}">{html.escape(page)}</a></td></tr>'
        for page, values in rows
    )
    empty = f"<tr><td colspan='{len(columns) + 1}'>none yet</td></tr>"
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{cells or empty}</table>"


@dataclass(frozen=True)
class Link:
    """A table cell that links a page (a relative path in the reports zone, or a URL)."""

    href: str
    text: str

    def html(self) -> str:
        return f'<a href="{html.escape(self.href)}">{html.escape(self.text)}</a>'


def card_page(version) -> str:
    """A version's model card, relative to the reports zone (``lifecycle.model_card`` writes it)."""
    return f"model_cards/v{version}/{INDEX}"


def _links(summary: dict) -> list:
    """A report's model card and the Airflow run that made it, as index cells."""
    version, run = summary.get("model_version"), summary.get("airflow_run") or {}
    return [
        Link(card_page(version), f"v{version}") if version else "-",
        Link(run["url"], run["run_id"]) if run.get("url") else "-",
    ]


def _span(days: list[str]) -> str:
    return f"{days[0]}..{days[-1]}" if days else "-"


def _num(name: str | None, value) -> str:
    if value is None:
        return "-"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return f"{name} {text}" if name else text


def _summary(base: ObjectStoragePath, page: str) -> dict:
    """The ``summary`` of the JSON beside a report page ({} when it has none)."""
    data = base / page.rsplit("/", 1)[0] / "report.json"
    try:
        return json.loads(data.read_text()).get("summary", {}) if data.exists() else {}
    except ValueError:  # a report being replaced: its row shows no numbers until the next rebuild
        return {}


def _card(base: ObjectStoragePath, page: str) -> dict:
    """The ``card.json`` beside a model card ({} while it is being replaced)."""
    data = base / page.rsplit("/", 1)[0] / "card.json"
    try:
        return json.loads(data.read_text()) if data.exists() else {}
    except ValueError:
        return {}


def _pages(folder: ObjectStoragePath, name: str) -> list[str]:
    if not folder.exists():
        return []
    prefix = lake.zone("reports").path.rstrip("/") + "/"  # by string: object-store paths are never relative
    return [p.parent.path.removeprefix(prefix) + "/" + name for p in folder.rglob(name) if not p.name.startswith("_")]
