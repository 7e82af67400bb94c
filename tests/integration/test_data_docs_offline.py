"""A quarantined day's Data Docs through the reports plugin, read by a real browser (Debian's
Chromium, headless) on a machine without the internet: every asset comes from the plugin, the
index lists the validation, and the result page names the failed expectations."""

import datetime as dt
import importlib.util
import re
import shutil
import subprocess
import threading
import time
from urllib.parse import urljoin

import pytest

from conftest import ROOT, land_days
from lifecycle import data_docs, validation
from lifecycle.devtools import datagen

DAY = dt.date(2026, 10, 5)
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="make test installs Debian's chromium (make browser-tool)")


@pytest.fixture
def served(state):
    """The plugin's app under uvicorn on a free port, signed in as a tester; the day quarantined."""
    import uvicorn

    from lifecycle.devtools.sandbox import free_port

    land_days(DAY, 1, "corrupt")
    with pytest.raises(validation.QualityGateError):
        validation.validate_day(DAY)
    spec = importlib.util.spec_from_file_location("reports_viewer", ROOT / "plugins" / "reports_viewer.py")
    viewer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(viewer)
    viewer.app.dependency_overrides[viewer.get_user] = lambda: "tester"
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(viewer.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def browse(url: str) -> str:
    """The page's DOM after its scripts ran, as Chromium renders it."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def fetch(url: str) -> tuple[int, str, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers["content-type"], r.read()
    except urllib.error.HTTPError as err:
        return err.code, "", b""


def assets_of(page: str) -> list[str]:
    return re.findall(r"""<(?:link|script|img)\b[^>]*?\b(?:href|src)=["']([^"'#]+)["']""", page)


def test_a_quarantined_days_data_docs_open_styled_and_whole_offline(served):
    base = f"{served}/data_quality/transactions/{DAY}"
    status, media, body = fetch(f"{base}/index.html")
    index = body.decode()
    assert status == 200 and media.startswith("text/html")
    for page_url, page in ((f"{base}/index.html", index),):
        urls = assets_of(page)
        assert urls and not [u for u in urls if "://" in u], urls  # nothing from a CDN
        for u in urls:  # each resolves through the plugin
            got = fetch(urljoin(page_url, u))  # as a browser resolves it
            assert got[0] == 200, u
    assert fetch(f"{served}/_assets/bootstrap.min.css")[1].startswith("text/css")
    assert fetch(f"{served}/_assets/nothing.js")[0] == 404
    rendered = browse(f"{base}/index.html")
    rows = re.findall(r'<tr[^>]*data-href="([^"]+)"', rendered)  # the tables the page's script filled
    [run] = [r for r in rows if r.startswith("validations/transactions/")]
    assert "expectations/transactions.html" in rows and "Failed" in rendered
    result = browse(f"{base}/{run}")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", result))
    tx, _ = datagen.generate_day(DAY, "corrupt")
    assert "Status: Failed" in text and f"{(tx['amount'] < 0).sum()} unexpected values found" in text
    assert not [u for u in assets_of(fetch(f"{base}/{run}")[2].decode()) if "://" in u]
    assert set(data_docs.ASSETS) >= {"bootstrap.min.css", "jquery.min.js", "table.js"}
