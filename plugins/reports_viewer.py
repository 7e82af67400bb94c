"""Reports in the Airflow UI: the lake's reports zone (Evidently drift, GX Data Docs) served by
the api-server under /reports/, behind Airflow's own authentication, with a nav entry; and pages
made on request: /reports/deployment (what serves, pending approvals, the deployment history) and
/reports/audit?key=<request id | event id>. Data Docs pages are served readable offline
(``lifecycle.data_docs``: their CDN assets from /reports/_assets/)."""

import mimetypes

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

app = FastAPI(title="Model lifecycle reports", dependencies=[Depends(get_user)])


@app.get("/deployment")
def deployment() -> HTMLResponse:
    """What serves now, the approvals waiting, the deployment history."""
    from lifecycle import pages

    return HTMLResponse(pages.deployment(pending_approvals()))


@app.get("/audit")
def audit(key: str = "") -> HTMLResponse:
    """The audit answer for a request id or event id (``?key=``)."""
    from lifecycle import pages

    status, page = pages.audit(key)
    return HTMLResponse(page, status_code=status)


def pending_approvals() -> list[dict]:
    """Human-in-the-loop requests of deferred task instances that nobody answered yet."""
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session

    from lifecycle import ui

    with create_session() as session:
        waiting = session.query(HITLDetail).filter(HITLDetail.responded_at.is_(None)).all()
        return [
            {
                "subject": d.subject,
                "body": d.body,
                "created_at": d.created_at.isoformat(),
                "link": ui.run_url(d.task_instance.dag_id, d.task_instance.run_id, d.task_instance.task_id),
            }
            for d in waiting
            if d.task_instance is not None and d.task_instance.state == "deferred"
        ]


@app.get("/_assets/{name}")
def data_docs_asset(name: str) -> Response:
    """What an offline Data Docs page loads instead of a CDN (``lifecycle.data_docs``)."""
    from lifecycle import data_docs

    if (found := data_docs.asset(name)) is None:
        raise HTTPException(404, f"no asset {name}")
    return Response(found[0], media_type=found[1])


@app.get("/{path:path}")
def report(path: str = "") -> Response:
    from lifecycle import lake

    parts = [p for p in path.split("/") if p]
    # the lake's own files are not reports: a publish's staging folder and a partition's manifest
    # (Great Expectations' own folders, such as a result page's ``__none__``, are)
    if any(p in (".", "..", lake.MANIFEST) or p.startswith(lake.STAGING) for p in parts):
        raise HTTPException(404, "no such report")
    target = lake.zone("reports").joinpath(*parts) if parts else lake.zone("reports")
    if target.is_dir():
        target, parts = target / "index.html", [*parts, "index.html"]
    if not target.is_file():
        raise HTTPException(404, f"no report at {path or 'index.html'}")
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if parts[0] == "data_quality" and media == "text/html":  # Great Expectations' pages, offline
        from lifecycle import data_docs

        return Response(data_docs.offline(target.read_text(), depth=len(parts) - 1), media_type=media)
    return Response(target.read_bytes(), media_type=media)


class ReportsViewer(AirflowPlugin):
    name = "lifecycle_reports"
    fastapi_apps = [{"app": app, "url_prefix": "/reports", "name": "Model lifecycle reports"}]
    external_views = [
        {"name": "Model reports", "href": "/reports/", "destination": "nav", "category": "browse", "icon": None},
        {
            "name": "Model deployment",
            "href": "/reports/deployment",
            "destination": "nav",
            "category": "browse",
            "icon": None,
        },
    ]
