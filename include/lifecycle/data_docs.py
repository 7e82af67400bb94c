"""Great Expectations' Data Docs, readable offline.

The pages GX writes load Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega and its logo from
CDNs: behind a firewall the index is an empty table and nothing is styled. The reports plugin
serves each Data Docs page with those links rewritten (``offline``) to its ``_assets/`` route,
which serves packages already installed (Bootstrap 5's stylesheet and bundle and jQuery, as the
Celery provider's Flower ships them; GX's own logo) and this project's table renderer
(``static/data_docs_table.js``: bootstrap-table's one call the pages make, the rows GX embeds in
the page; ``static/data_docs.css``: the status icons as characters, Bootstrap 4's badge colours).
Links are relative to the page, so they hold under any URL prefix. Vega charts and the table
filters are absent offline; the expectations, their results, the status marks and every link are
there.
"""

from __future__ import annotations

import importlib.util
import mimetypes
import re
from pathlib import Path

ROUTE = "_assets"
ASSETS = {  # name -> (installed package, file inside it)
    "bootstrap.min.css": ("flower", "static/css/bootstrap.min.css"),
    "bootstrap.bundle.min.js": ("flower", "static/js/bootstrap.bundle.min.js"),
    "jquery.min.js": ("flower", "static/js/jquery-3.6.4.min.js"),
    "table.js": ("lifecycle", "static/data_docs_table.js"),
    "data_docs.css": ("lifecycle", "static/data_docs.css"),
    "logo-long.png": ("great_expectations", "render/view/static/images/logo-long.png"),
}
# a CDN URL (its start) -> the asset standing in for it; a CDN URL not here is dropped
STAND_INS = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/": "bootstrap.bundle.min.js",
    "https://code.jquery.com/jquery-": "jquery.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "table.js",
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": "logo-long.png",
}
_TAG = re.compile(r"""<(link|script|img)\b[^>]*?\b(?:href|src)=["'](https?://[^"']+)["'][^>]*>(\s*</script>)?""", re.I)


def offline(page: str, depth: int) -> str:
    """``page`` with each CDN tag pointing at its stand-in under ``_assets/`` (``depth``: the
    page's folders below the reports root), or removed."""
    prefix = "../" * depth + ROUTE + "/"

    def replace(match: re.Match) -> str:
        kind, url = match.group(1).lower(), match.group(2)
        name = next((n for start, n in STAND_INS.items() if url.startswith(start)), None)
        if name is None:
            return ""
        if kind == "link":  # Bootstrap's stylesheet, then what the CDNs' icons and Bootstrap 4 gave
            return "".join(f'<link rel="stylesheet" href="{prefix}{n}">' for n in (name, "data_docs.css"))
        if kind == "script":
            return f'<script src="{prefix}{name}"></script>'
        return match.group(0).replace(url, prefix + name)

    return _TAG.sub(replace, page)


def asset(name: str) -> tuple[bytes, str] | None:
    """(bytes, media type) of an ``_assets`` file, None for a name not in ``ASSETS``."""
    if name not in ASSETS:
        return None
    package, inside = ASSETS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / inside
    return path.read_bytes(), mimetypes.guess_type(name)[0] or "application/octet-stream"
