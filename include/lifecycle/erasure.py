"""Erasure: every row of some entities (a card holder's card, a customer) removed from every zone,
the prediction log and the online store, on request; recorded in a ledger that keeps the ids only
as pseudonyms.

The rows an erasure removes are those whose entity column holds one of the ids (events, feature
snapshots, training sets, the log's rows by the ids' pseudonyms) and those whose event id is one of
those entities' events (their labels, wherever and whenever they landed). Other rows stay as they
were: untouched files keep their bytes, a rewritten Parquet file keeps the other rows' values and
its schema, a rewritten CSV keeps the other lines byte for byte. Aggregates over other entities
(a merchant's averages) are not recomputed: they hold no id, and recomputing them would change
other entities' data.

Each touched partition is replaced whole by ``lake.publish`` (readers see the old or the new one,
never a half) with a manifest that names the erasure and its digests as they are now (a curated
day and the features made from it stay consistent, so nothing is rebuilt); a landing file is
replaced by a rename. Reports and alerts that show sample values are redacted: the ids in their
text become ``[erased]``. An erasure of ids already erased finds nothing and says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import time
import uuid

from lifecycle import columnar, contract, lake, pseudonym
from lifecycle import settings as _settings

LEDGER = "erasures"  # the lake zone of the ledger: one JSON record per erasure
REDACTED = "[erased]"
TEXT = (".html", ".json", ".txt", ".csv", ".md", ".svg", ".log")  # report and alert files searched for the ids
MAX_IDS = 10_000


class ErasureError(ValueError):
    """An erasure request that breaks a rule (no ids, an unknown entity, an id that is not text)."""


def request_ids(ids, ids_file: str | None) -> list[str]:
    """The ids of a request: ``ids`` (a list, or text with one id per line or comma) and the lines
    of ``ids_file`` (a path or lake URL), unique, in order. Refused, naming the rule: none at all,
    more than ``MAX_IDS``, an empty or non-text id."""
    given = ids if isinstance(ids, list) else re.split(r"[\n,]", ids or "")
    if any(not isinstance(i, str) for i in given):
        raise ErasureError("erase: every id must be text (a JSON string)")
    found = [i.strip() for i in given if i.strip()]
    if ids_file:
        path = _request_file(ids_file)
        if not path.exists():
            raise ErasureError(f"erase: ids_file {ids_file} does not exist")
        found += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    found = list(dict.fromkeys(found))
    if not found:
        raise ErasureError("erase: no ids given (ids, or ids_file with one id per line)")
    if len(found) > MAX_IDS:
        raise ErasureError(f"erase: {len(found)} ids in one request, at most {MAX_IDS}: split it")
    return found


def _request_file(ids_file: str):
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(ids_file if "://" in ids_file else f"file://{ids_file}")


def forget_request(ids_file: str | None) -> None:
    """Delete a request's file of ids once they are erased: the ledger keeps their pseudonyms."""
    if ids_file and (path := _request_file(ids_file)).exists():
        path.unlink()


def describe(summary: dict) -> str:
    """One line for the run note: what went where, or that nothing was left."""
    if not summary["changed"]:
        earlier = ", ".join(summary["earlier"]) or "none"
        return f"{len(summary['ids'])} {summary['entity']}: nothing left to erase (earlier erasures: {earlier})"
    rows = ", ".join(f"{zone} {n}" for zone, n in sorted(summary["rows"].items()))
    took = sum(summary["seconds"].values())
    return (
        f"{summary['erasure']}: {len(summary['ids'])} {summary['entity']} erased ({rows} rows; "
        f"{summary['online_keys']} online rows) in {took:.1f} s"
    )


def record_name(text: str) -> str:
    """An erasure's id as its ledger file is named (a run id's ``:`` and ``+`` as ``_``)."""
    return re.sub(r"[^\w.-]", "_", text)


def _relative(path, base) -> str:
    """``path`` below ``base`` as text (an S3 path relative to another has no text of its own)."""
    return path.path[len(base.path) :].lstrip("/")


class Erasure:
    """One erasure's work: the ids (raw, in memory only), what it removed, and how long each zone took."""

    def __init__(self, entity: str, ids: list[str], reason: str, erasure_id: str | None = None):
        cfg = _settings.load()
        self.uc = contract.current(cfg)
        if entity not in self.uc.entities:
            raise ErasureError(f"erase: entity {entity!r} is not one of the use case's {list(self.uc.entities)}")
        self.cfg, self.entity, self.ids, self.reason = cfg, entity, set(ids), reason
        self.names = pseudonym.of(cfg)
        self.id = record_name(erasure_id or f"erasure-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}")
        self.events: set[str] = set()  # the entities' event ids found by this attempt
        self.ledger = lake.zone(LEDGER) / f"{self.id}.json"
        # what an earlier attempt of this erasure (a retried task) removed and found, recorded as it went
        done = json.loads(self.ledger.read_text()) if self.ledger.exists() else {}
        self.event_names: set[str] = set(done.get("event_pseudonyms", []))  # the events' pseudonyms
        self.removed: dict[str, dict[str, int]] = done.get("removed", {})  # zone -> partition or file -> rows
        self.seconds: dict[str, float] = done.get("seconds", {})
        self.online_keys = done.get("online_keys", 0)
        self.sha: dict[tuple[str, dt.date], str] = {}  # (dataset, day) -> curated data_sha256 now

    def _count(self, zone: str, where: str, rows: int) -> None:
        if rows:
            zone_ = self.removed.setdefault(zone, {})
            zone_[where] = zone_.get(where, 0) + rows

    def _drop(self, table):
        """The rows of an Arrow table to keep (a boolean mask) and how many go."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.entity in table.column_names:  # an event's own rows, a snapshot's, a training row: by the entity
            drop = columnar.holding(table, {self.entity: self.ids})
        elif self.uc.id in table.column_names and self.event_names:  # a label: by its event's pseudonym
            drop = columnar.holding(
                pa.table({"event": self.names.array(table[self.uc.id], distinct=True)}), {"event": self.event_names}
            )
        else:
            drop = pa.array([False] * table.num_rows)
        return pc.invert(drop), pc.sum(drop).as_py() or 0

    def _parquet(self, data: bytes):
        """(new bytes, rows removed) of one Parquet file; the bytes are None when nothing goes."""
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        keep, gone = self._drop(table)
        if not gone:
            return None, 0
        self._collect(table, keep)
        return lake.parquet_bytes(table.filter(keep)), gone

    def _collect(self, table, keep) -> None:
        """The event ids of the rows going (the labels of those events go too)."""
        import pyarrow.compute as pc

        if self.uc.id in table.column_names and self.entity in table.column_names:
            gone = [i for i in table.filter(pc.invert(keep))[self.uc.id].cast("string").to_pylist() if i is not None]
            self.events.update(gone)
            self.event_names.update(self.names.many(gone))

    # the lake's zones -------------------------------------------------------------------------

    def landing(self, datasets: tuple[str, ...]) -> None:
        """Landing files (CSV, Parquet, or a day's folder of them), each replaced by a rename."""
        for dataset in datasets:
            base = lake.zone("landing") / dataset
            if not base.exists():
                continue
            files = (p for p in base.rglob("*") if p.suffix in (".csv", ".parquet") and p.name[0] not in "._")
            for path in sorted(p for p in files if p.is_file()):
                data = path.read_bytes()
                new, gone = self._csv(data) if path.suffix == ".csv" else self._parquet(data)
                if gone:
                    staged = path.parent / f".erasing-{path.name}"
                    staged.write_bytes(new)
                    staged.rename(path)
                    self._count("landing", _relative(path, lake.zone("landing")), gone)

    def _csv(self, data: bytes):
        """A CSV with the erased rows' lines left out and every other line as it was."""
        text = data.decode("utf-8")
        lines = io.StringIO(text).readlines()  # split as the reader reads them (quoted line breaks span lines)
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None:
            return None, 0
        cols = {c: header.index(c) for c in (self.entity, self.uc.id) if c in header}
        keep, gone, at = lines[: reader.line_num], 0, reader.line_num
        for record in reader:
            span = lines[at : reader.line_num]
            at = reader.line_num
            entity = record[cols[self.entity]] if self.entity in cols and len(record) > cols[self.entity] else None
            event = record[cols[self.uc.id]] if self.uc.id in cols and len(record) > cols[self.uc.id] else None
            if entity in self.ids or (event is not None and self.names.one(event) in self.event_names):
                gone += 1
                if entity in self.ids and event is not None:
                    self.events.add(event)
                    self.event_names.add(self.names.one(event))
                continue
            keep += span
        return ("".join(keep).encode("utf-8"), gone) if gone else (None, 0)

    def partitions(self, zone: str, dataset: str) -> None:
        """Every partition of a dataset in a zone (complete or not), each replaced whole."""
        base = lake.zone(zone) / dataset
        if not base.exists():
            return
        for part in sorted(p for p in base.iterdir() if p.name.startswith("date=")):
            self._partition(zone, part, dataset, dt.date.fromisoformat(part.name[5:]))

    def training_sets(self) -> None:
        for part in sorted(p for p in lake.zone("training").iterdir()) if lake.zone("training").exists() else []:
            if part.is_dir() and not part.name.startswith("_"):
                self._partition("training", part, None, None)

    def _partition(self, zone: str, part, dataset: str | None, day: dt.date | None) -> None:
        manifest = lake.manifest(part) or {}
        files = {p.name: p.read_bytes() for p in part.iterdir() if p.is_file() and p.name != lake.MANIFEST}
        removed, changed = 0, {}
        for name, data in files.items():
            if name.endswith(".parquet"):
                new, gone = self._parquet(data)
                if gone:
                    changed[name], removed = new, removed + gone
        if not removed:
            if zone == "curated" and day is not None and manifest:
                self.sha[(dataset, day)] = manifest.get("data_sha256")
            made_from = self.sha.get((self.uc.events, day))
            if zone == "features" and made_from and manifest and manifest.get("curated_sha256") != made_from:
                # a snapshot without their rows, of a day that lost some: made from the day as it is now
                lake.publish(
                    part,
                    files,
                    {**manifest, "curated_sha256": made_from, "erasures": [*manifest.get("erasures", []), self.id]},
                )
            return
        files.update(changed)
        manifest = self._manifest(zone, manifest, files, dataset, day)
        lake.publish(part, files, manifest)
        self._count(zone, _relative(part, lake.zone(zone)), removed)

    def _manifest(self, zone: str, manifest: dict, files: dict[str, bytes], dataset, day) -> dict:
        """The partition's manifest as it describes the new files, naming the erasure."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        out = {**manifest, "erasures": [*manifest.get("erasures", []), self.id]}
        rows = {n: pq.read_metadata(io.BytesIO(d)).num_rows for n, d in files.items() if n.endswith(".parquet")}
        if "data.parquet" in files:
            out["data_sha256"] = lake.sha256(files["data.parquet"])
            if "rows" in out:
                out["rows"] = rows["data.parquet"]
            if zone == "curated":
                self.sha[(dataset, day)] = out["data_sha256"]
            if zone == "features" and (sha := self.sha.get((self.uc.events, day))):
                out["curated_sha256"] = sha  # made from the curated day as it is now: nothing to rebuild
        if zone == "training":
            from lifecycle import training

            out["erased_from_digest"] = manifest.get("erased_from_digest", manifest.get("digest"))
            out["digest"] = training.dataset_digest(files)
            out["train_rows"], out["holdout_rows"] = rows.get("train.parquet"), rows.get("holdout.parquet")
            parts = [pq.read_table(io.BytesIO(files[n]), columns=[self.uc.label, self.uc.known_if]) for n in rows]
            labels = sum(p.num_rows for p in parts)
            if labels:
                out["positive_rate"] = round(sum(pc.sum(p[self.uc.label]).as_py() or 0 for p in parts) / labels, 5)
                out["no_feature_rows"] = sum(p[self.uc.known_if].null_count for p in parts)
        return out

    def lake_zones(self) -> None:
        """Events before labels (a label goes with its event), then what was made from them."""
        uc = self.uc
        steps = [
            ("landing", lambda: self.landing((uc.events,))),
            *((z, lambda z=z: self.partitions(z, uc.events)) for z in ("raw", "curated", "quarantine")),
            ("landing", lambda: self.landing((uc.labels,))),
            *((z, lambda z=z: self.partitions(z, uc.labels)) for z in ("raw", "curated", "quarantine")),
            *(("features", lambda t=t: self.partitions("features", t)) for t in uc.feature_tables),
            ("training", self.training_sets),
        ]
        for zone, step in steps:
            start = time.perf_counter()
            step()
            self.seconds[zone] = round(self.seconds.get(zone, 0.0) + time.perf_counter() - start, 3)
            self._save()

    def _save(self, final: dict | None = None) -> None:
        """The ledger record so far (a retry of this erasure goes on from it), or the final one."""
        record = final or {
            "erasure": self.id,
            "status": "in progress",
            "entity": self.entity,
            "ids": sorted(self.names.many(self.ids)),
            "event_pseudonyms": sorted(self.event_names),
            "removed": self.removed,
            "seconds": self.seconds,
            "online_keys": self.online_keys,
        }
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        staged = self.ledger.parent / f".{self.ledger.name}"
        staged.write_text(json.dumps(record, indent=2, sort_keys=True))
        staged.rename(self.ledger)

    # beyond the partitions ----------------------------------------------------------------------

    def prediction_log(self) -> None:
        from lifecycle import prediction_maintenance

        start = time.perf_counter()
        wanted = {self.entity: set(self.names.many(self.ids)), self.uc.id: self.event_names}
        for day, rows in prediction_maintenance.erase(self.cfg, wanted).items():
            self._count("predictions", day, rows)
        self.seconds["predictions"] = round(time.perf_counter() - start, 3)
        self._save()

    def online_store(self) -> None:
        from lifecycle import feature_store

        start = time.perf_counter()
        self.online_keys += feature_store.delete_entities(self.entity, sorted(self.ids))
        self.seconds["online_store"] = round(time.perf_counter() - start, 3)
        self._save()

    def redact(self) -> None:
        """Reports and alerts whose text shows an id: the id becomes ``[erased]`` (Data Docs of a
        quarantined day list sample values)."""
        start = time.perf_counter()
        ids = sorted(self.ids | self.events, key=len, reverse=True)
        pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(i)}(?![\w-])" for i in ids)) if ids else None
        for zone in ("reports", "alerts"):
            base = lake.zone(zone)
            if pattern is None or not base.exists():
                continue
            for path in sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in TEXT):
                text = path.read_text(errors="surrogateescape")
                if not any(i in text for i in ids):  # a substring test first: the pattern is slow on MBs of HTML
                    continue
                new, hits = pattern.subn(REDACTED, text)
                if hits:
                    staged = path.parent / f".erasing-{path.name}"
                    staged.write_text(new, errors="surrogateescape")
                    staged.rename(path)
                    self._count(zone, _relative(path, base), hits)
        self.seconds["redaction"] = round(time.perf_counter() - start, 3)

    def record(self) -> dict:
        """The ledger record (ids as pseudonyms only), written when anything was removed or these
        ids were never erased before; returns it with ``earlier`` naming erasures that covered them."""
        hashed = sorted(self.names.many(self.ids))
        earlier = [
            r["erasure"]
            for r in ledger()
            if r["erasure"] != self.id and set(hashed) <= set(r["ids"]) and r["entity"] == self.entity
        ]
        summary = {
            "erasure": self.id,
            "status": "done",
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reason": self.reason,
            "entity": self.entity,
            "key_id": self.names.key_id,
            "ids": hashed,
            "events": len(self.event_names),
            "removed": self.removed,
            "rows": {zone: sum(parts.values()) for zone, parts in self.removed.items()},
            "online_keys": self.online_keys,
            "seconds": self.seconds,
            "earlier": earlier,
        }
        summary["changed"] = bool(self.removed or summary["online_keys"])
        if summary["changed"] or not earlier:
            self._save(summary)
        else:
            lake.remove(self.ledger)  # nothing left: this run changed nothing, not even the ledger
        return summary


def ledger() -> list[dict]:
    """Every erasure recorded, oldest first."""
    base = lake.zone(LEDGER)
    if not base.exists():
        return []
    records = (json.loads(p.read_text()) for p in base.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    return sorted((r for r in records if r.get("status") == "done"), key=lambda r: r["at"])


def erase(entity: str, ids: list[str], reason: str, erasure_id: str | None = None) -> dict:
    """Remove the entities' rows from every zone, the prediction log and the online store, redact
    the reports, and record it; returns the ledger record (no raw id)."""
    work = Erasure(entity, ids, reason, erasure_id)
    work.lake_zones()
    work.prediction_log()
    work.online_store()
    work.redact()
    return work.record()


def tag_versions(summary: dict) -> list[str]:
    """Registered versions whose training set lost rows to this erasure get the tag ``erased``
    (the erasures, comma-separated): their training set is no longer what they were trained on."""
    from lifecycle import tracking

    sets = set(summary["removed"].get("training", {}))
    if not sets:
        return []
    cfg = _settings.load()
    client = tracking.client()
    tagged = []
    for mv in client.search_model_versions(f"name='{cfg.model_name}'"):
        uri = mv.tags.get("training_set_uri", "")
        if uri.rstrip("/").rsplit("/", 1)[-1] in sets:
            before = [e for e in mv.tags.get("erased", "").split(",") if e]
            client.set_model_version_tag(mv.name, mv.version, "erased", ",".join([*before, summary["erasure"]]))
            tagged.append(str(mv.version))
    return sorted(tagged, key=int)
