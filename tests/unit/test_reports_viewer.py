import importlib.util

import pytest
from fastapi.testclient import TestClient

from conftest import ROOT
from lifecycle import lake, reports


@pytest.fixture
def viewer(state):
    spec = importlib.util.spec_from_file_location("reports_viewer", ROOT / "plugins" / "reports_viewer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reports_need_an_airflow_login(viewer):
    assert TestClient(viewer.app).get("/").status_code == 401


def test_index_and_reports_are_served_and_paths_cannot_escape(viewer):
    viewer.app.dependency_overrides[viewer.get_user] = lambda: "tester"
    page = lake.zone("reports") / "drift" / "2026-10-18" / "report.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>drift</html>")
    reports.rebuild_index()
    client = TestClient(viewer.app)
    index = client.get("/")
    assert index.status_code == 200 and 'href="drift/2026-10-18/report.html"' in index.text
    got = client.get("/drift/2026-10-18/report.html")
    assert got.status_code == 200 and got.text == "<html>drift</html>"
    assert got.headers["content-type"].startswith("text/html")
    assert client.get("/drift/../../secret").status_code == 404
    assert client.get("/missing.html").status_code == 404
    # the page of a quarantined day's failed expectations lives under GX's own __none__ folder
    result = lake.zone("reports") / "data_quality/transactions/2026-10-18/validations/transactions/__none__/x.html"
    result.parent.mkdir(parents=True)
    result.write_text("<html>failed expectations</html>")
    got = client.get("/data_quality/transactions/2026-10-18/validations/transactions/__none__/x.html")
    assert (got.status_code, got.text) == (200, "<html>failed expectations</html>")
    # the lake's own files are not served: a manifest, a publish's staging folder
    for name in (lake.MANIFEST, f"{lake.STAGING}drift-1234/report.html"):
        hidden = lake.zone("reports") / "drift" / name
        hidden.parent.mkdir(parents=True, exist_ok=True)
        hidden.write_text("{}")
        assert client.get(f"/drift/{name}").status_code == 404, name


def test_the_index_reads_as_a_table_of_headline_numbers_newest_first(state):
    import json

    for as_of, value, degraded in (("2026-10-20", 0.61, False), ("2026-10-24", 0.08, True)):
        folder = lake.zone("reports") / "performance" / as_of
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<html>performance</html>")
        (folder / "report.json").write_text(
            json.dumps(
                {
                    "summary": {
                        "as_of": as_of,
                        "window": f"..{as_of}",
                        "model_version": "3",
                        "metric": "pr_auc",
                        "value": value,
                        "baseline": 0.58,
                        "labels": 4200,
                        "degraded": degraded,
                        "prediction_drift": {"value": 0.12},
                    }
                }
            )
        )
    drift = lake.zone("reports") / "drift" / "2026-10-19"
    drift.mkdir(parents=True)
    (drift / "report.html").write_text("<html>drift</html>")
    (drift / "report.json").write_text(
        json.dumps(
            {
                "summary": {
                    "as_of": "2026-10-19",
                    "current_days": ["2026-10-17", "2026-10-19"],
                    "model_version": "2",
                    "drift_share": 0.5,
                    "drifted_columns": ["amount", "hour"],
                    "drift": True,
                }
            }
        )
    )
    page = reports.rebuild_index().read_text()
    newer, older = page.index("2026-10-24"), page.index("2026-10-20")
    assert newer < older  # newest first
    row = page[newer : page.index("</tr>", newer)]
    assert "pr_auc 0.0800" in row and "0.5800" in row and "4200" in row and ">yes<" in row
    assert 'href="performance/2026-10-24/report.html"' in row
    drift_row = page[page.index("2026-10-17..2026-10-19") - 200 :]
    assert "0.5000" in drift_row and "amount, hour" in drift_row


def test_the_deployment_page_shows_what_serves_the_approvals_waiting_and_every_move(viewer, monkeypatch):
    import tempfile

    from lifecycle import registry, settings, tracking

    client, name = tracking.client(), settings.load().model_name
    client.create_registered_model(name)
    source = tempfile.mkdtemp()
    v1, v2 = (str(client.create_model_version(name, source=source, tags={"flavour": "xgboost"}).version) for _ in "ab")
    registry.to_champion(v1, "first model")
    registry.to_canary(v2, "promoted: pr_auc beats champion by the margin")
    waiting = [
        {
            "subject": "Roll canary v2 out to champion?",
            "body": "quality: pass",
            "created_at": "2026-12-06T10:00:00",
            "link": "http://x/dags/canary/runs/r/tasks/approval",
        }
    ]
    monkeypatch.setattr(viewer, "pending_approvals", lambda: waiting)
    viewer.app.dependency_overrides[viewer.get_user] = lambda: "tester"
    page = TestClient(viewer.app).get("/deployment")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert f"Serving live: champion v{v1}, canary v{v2}." in text
    assert '<a href="http://x/dags/canary/runs/r/tasks/approval">Roll canary v2 out to champion?</a>' in text
    history = text.split("<h2>Deployment history</h2>", 1)[1]
    assert history.index("to_canary") < history.index("to_champion")  # newest first
    assert f"<td>canary -→{v2}</td>" in history and "promoted: pr_auc beats champion by the margin" in history
    assert TestClient(viewer.app).get("/audit?key=nope").status_code == 404  # nothing logged yet
    assert "Audit a prediction" in TestClient(viewer.app).get("/audit").text
