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
