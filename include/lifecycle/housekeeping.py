"""Retention: what is older than its zone's ``LIFECYCLE_RETENTION_DAYS`` is deleted, except what the
lifecycle still points to, and every sweep is recorded.

Old is, per zone: a landing day, a raw, curated, quarantine or features partition, a prediction-log
day by its day; a training set by its last day; a report by the day it is about (Data Docs, drift
and performance reports), a model card with its version; an MLflow run by its start.

Never deleted (``protected``): for every version that holds an alias (champion, canary, previous
champion, challenger: a live version or an open decision), has a move in flight, or served as
champion, canary or previous champion in the deployment history (an audit of a request it answered
needs it): its training set and the curated partitions it was made from, its model card,
the MLflow runs that made and judged it (its training run and their parent, runs tagged with it),
and every report those runs or the history name. The deployment history, the alert and erasure
ledgers and these records are kept whole.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

from lifecycle import contract, lake, registry, reports, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHAMPION, PREVIOUS

ZONE = "housekeeping"  # the lake zone of the sweep records
PARTITIONED = ("raw", "curated", "quarantine", "features")
VERSION_TAGS = ("model_version", "challenger_version", "champion_version", "canary_version")
SERVING = (CHAMPION, CANARY, PREVIOUS)  # a version the history shows under one of these answered requests
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def protected(cfg: _settings.Settings) -> dict:
    """What the lifecycle points to: versions, their training sets, curated days, runs, and the text
    of every reference (report paths are looked up in it)."""
    from airflow.sdk import ObjectStoragePath

    client = tracking.client()
    history = registry.history()
    pending = lake.zone("deployments") / "_pending" / cfg.model_name
    moving = {re.sub(r"^.*-v", "", p.stem) for p in pending.iterdir()} if pending.exists() else set()
    served = {str(v) for e in history for a, v in {**e["from"], **e["to"]}.items() if a in SERVING}
    versions = {str(v) for v in registry.aliases().values()} | served | moving
    mvs = [mv for mv in client.search_model_versions(f"name='{cfg.model_name}'") if str(mv.version) in versions]
    sets, days, runs, texts = set(), {}, set(), [json.dumps(history)]
    for mv in mvs:
        runs.add(mv.run_id)
        texts.append(json.dumps(mv.tags))
        if uri := mv.tags.get("training_set_uri"):
            sets.add(uri.rstrip("/").rsplit("/", 1)[-1])
            manifest = lake.manifest(ObjectStoragePath(uri)) or {}
            for dataset, parts in manifest.get("sources", {}).items():
                days.setdefault(dataset, set()).update(parts)
        try:
            parent = client.get_run(mv.run_id).data.tags.get("mlflow.parentRunId")
        except Exception:  # noqa: BLE001 (a run deleted by hand: nothing more to keep)
            parent = None
        if parent:
            runs.add(parent)
    return {"versions": versions, "training_sets": sets, "curated_days": days, "runs": runs, "texts": "\n".join(texts)}


class Sweep:
    """One housekeeping run as of a day: the cutoff per zone, what went and what was kept because it is pointed to."""

    def __init__(self, as_of: dt.date, dry_run: bool = False):
        self.cfg = _settings.load()
        self.uc = contract.current(self.cfg)
        self.as_of, self.dry_run = as_of, dry_run
        self.cutoff = {z: as_of - dt.timedelta(days=d) for z, d in self.cfg.retention_days.items()}
        self.keep = protected(self.cfg)
        self.deleted: dict[str, list[str]] = {}
        self.kept: dict[str, list[str]] = {}  # old, but pointed to
        self.seconds: dict[str, float] = {}

    def _old(self, zone: str, day: dt.date) -> bool:
        return day < self.cutoff[zone]

    def _delete(self, zone: str, name: str, path) -> None:
        self.deleted.setdefault(zone, []).append(name)
        if not self.dry_run:
            lake.remove(path)

    def landing(self) -> None:
        for dataset in self.uc.datasets:
            base = lake.zone("landing") / dataset
            for child in sorted(base.iterdir()) if base.exists() else []:
                stem = child.name.split(".")[0]
                if DAY.match(stem) and self._old("landing", dt.date.fromisoformat(stem)):
                    self._delete("landing", f"{dataset}/{child.name}", child)

    def partitions(self) -> None:
        for zone in PARTITIONED:
            datasets = self.uc.feature_tables if zone == "features" else self.uc.datasets
            for dataset in datasets:
                for day in lake.dates(zone, dataset) + self._incomplete(zone, dataset):
                    if not self._old(zone, day):
                        continue
                    name = f"{dataset}/date={day.isoformat()}"
                    if zone == "curated" and day.isoformat() in self.keep["curated_days"].get(dataset, ()):
                        self.kept.setdefault(zone, []).append(name)
                        continue
                    self._delete(zone, name, lake.partition(zone, dataset, day))

    @staticmethod
    def _incomplete(zone: str, dataset: str) -> list[dt.date]:
        """Partitions without a manifest (a write that never finished) are old by their day too."""
        base = lake.zone(zone) / dataset
        if not base.exists():
            return []
        complete = set(lake.dates(zone, dataset))
        found = [dt.date.fromisoformat(c.name[5:]) for c in base.iterdir() if c.name.startswith("date=")]
        return sorted(d for d in found if d not in complete)

    def training_sets(self) -> None:
        base = lake.zone("training")
        for folder in sorted(base.iterdir()) if base.exists() else []:
            manifest = lake.manifest(folder) or {}
            last = manifest.get("last_day")
            if not last or not self._old("training", dt.date.fromisoformat(last)):
                continue
            if folder.name in self.keep["training_sets"]:
                self.kept.setdefault("training", []).append(folder.name)
            else:
                self._delete("training", folder.name, folder)

    def reports(self) -> None:
        """Report folders of an old day (a kind's ``.../<YYYY-MM-DD>/``) no kept run or history
        names, and the model cards of versions nothing points to, registered before the cutoff."""
        base = lake.zone("reports")
        if not base.exists():
            return
        for kind in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "model_cards"):
            for folder in self._day_folders(kind):
                name = folder.path[len(base.path) :].lstrip("/")
                if not self._old("reports", dt.date.fromisoformat(folder.name)):
                    continue
                if name in self.keep["texts"]:
                    self.kept.setdefault("reports", []).append(name)
                else:
                    self._delete("reports", name, folder)
        client = tracking.client()
        registered = {
            str(mv.version): dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC).date()
            for mv in client.search_model_versions(f"name='{self.cfg.model_name}'")
        }
        cards = base / "model_cards"
        for card in sorted(cards.iterdir()) if cards.exists() else []:
            version = card.name.removeprefix("v")
            made = registered.get(version)
            if version in self.keep["versions"] or made is None or not self._old("reports", made):
                continue
            self._delete("reports", f"model_cards/{card.name}", card)
        if self.deleted.get("reports") and not self.dry_run:
            reports.rebuild_index()

    @staticmethod
    def _day_folders(folder) -> list:
        found = []
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if DAY.match(child.name):
                found.append(child)
            else:
                found += Sweep._day_folders(child)
        return found

    def predictions(self) -> None:
        from lifecycle import prediction_maintenance

        for day in prediction_maintenance.days(self.cfg):
            if self._old("predictions", day):
                self.deleted.setdefault("predictions", []).append(day.isoformat())
                if not self.dry_run:
                    prediction_maintenance.drop_day(self.cfg, day)

    def mlflow_runs(self) -> None:
        client = tracking.client()
        cutoff_ms = dt.datetime.combine(self.cutoff["mlflow_runs"], dt.time(), dt.UTC).timestamp() * 1000
        experiments = [e.experiment_id for e in client.search_experiments()]
        for run in client.search_runs(experiments, f"attributes.start_time < {int(cutoff_ms)}", max_results=50000):
            tags = run.data.tags
            pointed = run.info.run_id in self.keep["runs"] or any(
                tags.get(t) in self.keep["versions"] for t in VERSION_TAGS
            )
            if pointed or tags.get("mlflow.parentRunId") in self.keep["runs"]:
                self.kept.setdefault("mlflow_runs", []).append(run.info.run_id)
                continue
            self.deleted.setdefault("mlflow_runs", []).append(run.info.run_id)
            if not self.dry_run:
                client.delete_run(run.info.run_id)

    def run(self) -> dict:
        for zone, step in (
            ("landing", self.landing),
            ("partitions", self.partitions),
            ("training", self.training_sets),
            ("reports", self.reports),
            ("predictions", self.predictions),
            ("mlflow_runs", self.mlflow_runs),
        ):
            start = time.perf_counter()
            step()
            self.seconds[zone] = round(time.perf_counter() - start, 3)
        record = {
            "as_of": self.as_of.isoformat(),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "dry_run": self.dry_run,
            "retention_days": dict(self.cfg.retention_days),
            "deleted": self.deleted,
            "counts": {z: len(v) for z, v in self.deleted.items()},
            "kept_pointed_to": self.kept,
            "protected_versions": sorted(self.keep["versions"], key=int),
            "seconds": self.seconds,
        }
        if not self.dry_run:
            name = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{self.as_of.isoformat()}.json"
            folder = lake.zone(ZONE)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(json.dumps(record, indent=2, sort_keys=True))
        return record


def sweep(as_of: dt.date, dry_run: bool = False) -> dict:
    """Delete what is older than its zone's retention and nothing pointed to; returns the record."""
    return Sweep(as_of, dry_run).run()


def describe(record: dict) -> str:
    counts = ", ".join(f"{z} {n}" for z, n in sorted(record["counts"].items())) or "nothing"
    kept = sum(len(v) for v in record["kept_pointed_to"].values())
    verb = "would delete" if record["dry_run"] else "deleted"
    return f"as of {record['as_of']}: {verb} {counts}; kept {kept} old items the lifecycle points to"
