"""The reports zone: HTML for analysts (Data Docs, Evidently), with one index page."""
from __future__ import annotations

import html
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


def rebuild_index() -> ObjectStoragePath:
    """Write ``reports/index.html`` linking every report page, newest first per kind."""
    base = lake.zone("reports")
    sections = {
        "Drift reports (Evidently)": sorted(_pages(base / "drift", "report.html"), reverse=True),
        "Data quality (Great Expectations Data Docs)": sorted(_pages(base / "data_quality", INDEX), reverse=True),
    }
    body = []
    for title, pages in sections.items():
        items = "".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in pages)
        body.append(f"<h2>{title}</h2><ul>{items or '<li>none yet</li>'}</ul>")
    base.mkdir(parents=True, exist_ok=True)
    index = base / INDEX
    index.write_text("<!doctype html><html><head><meta charset='utf-8'><title>Model lifecycle reports</title>"
                     "</head><body><h1>Model lifecycle reports</h1>" + "".join(body) + "</body></html>")
    return index


def _pages(folder: ObjectStoragePath, name: str) -> list[str]:
    if not folder.exists():
        return []
    prefix = lake.zone("reports").path.rstrip("/") + "/"  # by string: object-store paths are never relative
    return [p.parent.path.removeprefix(prefix) + "/" + name for p in folder.rglob(name)
            if not p.name.startswith("_")]
