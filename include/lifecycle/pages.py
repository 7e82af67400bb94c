"""Pages the reports plugin renders when asked (Browse → Model reports), from the records as they
are: the deployment page (what serves now, pending approvals, the deployment history) and an audit
answer."""

from __future__ import annotations

import html

from lifecycle import registry, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHAMPION

STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}pre{white-space:pre-wrap}</style>"
)
AUDIT_FORM = (
    "<form action='audit' method='get'>Audit a prediction: <input name='key' size='40' "
    "placeholder='request id or event id'> <button>answer</button></form>"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}</head>"
        f"<body><p><a href='./'>Model reports</a> · <a href='deployment'>Deployment</a></p>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def link(url: str | None, text: str) -> str:
    return f'<a href="{html.escape(url)}">{html.escape(text)}</a>' if url else html.escape(text)


def table(columns: list[str], rows: list[list[str]], empty: str = "none") -> str:
    """An HTML table of cells already rendered as HTML (the model cards use it too); with no column
    named, a table of names and values without a header row."""
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>" if any(columns) else ""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body or f'<tr><td colspan={len(columns)}>{html.escape(empty)}</td></tr>'}</table>"


def deployment(pending: list[dict]) -> str:
    """What serves now (each alias's version, how it got there), the approvals waiting under
    Required Actions (``pending``: subject, body, created_at, link), and the history, newest first."""
    cfg = _settings.load()
    now, history = registry.aliases(), registry.history()
    c = tracking.client()
    serving = []
    for alias, version in sorted(now.items(), key=lambda kv: registry.ALIASES.index(kv[0])):
        tags = c.get_model_version(cfg.model_name, version).tags
        came = next((e for e in reversed(history) if e["to"].get(alias) == version != e["from"].get(alias)), None)
        serving.append(
            [
                html.escape(alias),
                html.escape(f"v{version}"),
                html.escape(tags.get("flavour", "-")),
                html.escape(tags.get(f"holdout_{cfg.primary_metric}", "-")),
                html.escape(f"{came['transition']} {came['at'][:19]}, by {came['by']}" if came else "-"),
            ]
        )
    waiting = [
        [html.escape(p["created_at"][:19]), link(p["link"], p["subject"]), html.escape(p.get("body") or "")]
        for p in pending
    ]
    moves = [
        [
            html.escape(e["at"][:19].replace("T", " ")),
            html.escape(e["transition"]),
            html.escape(f"v{e['version']}"),
            html.escape(", ".join(_moved(e)) or "-"),
            link(e.get("dag_run"), e["by"]),
            html.escape(e.get("approved_by") or "-"),
            html.escape(e["reason"]),
            html.escape(e.get("evidence") or "-"),
        ]
        for e in reversed(history)
    ]
    live = [a for a in (CHAMPION, CANARY) if a in now]
    return _page(
        f"Deployment of {cfg.model_name}",
        f"<p>Serving live: {html.escape(', '.join(f'{a} v{now[a]}' for a in live) or 'nothing yet')}.</p>"
        + table(["alias", "version", "flavour", f"holdout {cfg.primary_metric}", "since"], serving)
        + "<h2>Waiting for a human (Browse → Required Actions)</h2>"
        + table(["asked at (UTC)", "request", "why"], waiting)
        + "<h2>Deployment history</h2>"
        + table(["when (UTC)", "transition", "version", "aliases moved", "by", "approved by", "why", "evidence"], moves)
        + AUDIT_FORM,
    )


def _moved(entry: dict) -> list[str]:
    return [
        f"{a} {entry['from'].get(a, '-')}→{entry['to'].get(a, '-')}"
        for a in registry.ALIASES
        if entry["from"].get(a) != entry["to"].get(a)
    ]


def audit(key: str) -> tuple[int, str]:
    """(HTTP status, page) of the audit answer for a request id or event id."""
    from lifecycle import audit as _audit

    if not key.strip():
        return 200, _page("Audit a prediction", AUDIT_FORM)
    try:
        result = _audit.answer(key.strip())
    except _audit.NotLogged as err:
        return 404, _page("Audit a prediction", f"<p>{html.escape(str(err))}</p>{AUDIT_FORM}")
    return 200, _page(f"Audit of {key}", f"<pre>{html.escape(_audit.text(result))}</pre>{AUDIT_FORM}")
