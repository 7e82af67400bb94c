"""The quality gate: Great Expectations suites for a day's raw batch.

A passing batch is copied to the curated zone; a failing one moves to quarantine. Besides each
row's rules, a day as a whole must look like a day the lake has seen (``lifecycle.distribution``). Data Docs are
written for both, under ``reports/data_quality/<dataset>/<date>/``.

The suites derive from the use case's contract (``lifecycle.contract``): its columns, their
types, ranges and allowed values. Labels arrive late, so their suite checks referential
integrity against curated data: each label's event must be a curated event of the last
``LIFECYCLE_LABEL_MAX_DELAY_DAYS`` days (or of the day's own batch), and a label cannot be known
before its event happened. The suite sees the labels with the event's time joined on (``EVENT_TIME``, empty when
no curated transaction matches), so Data Docs stay small whatever the number of known ids.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lifecycle import alerts, contract, distribution, ingest, lake, reports, ui
from lifecycle import settings as _settings

DOCS_SITE = "lifecycle_data_docs"
EVENT_TIME = "curated_event_time"  # joined onto labels for the referential-integrity rules
# GX logs ~200 INFO lines at import when Airflow configured logging first (measured with GX 1.24).
logging.getLogger("great_expectations").setLevel(logging.WARNING)


class QualityGateError(RuntimeError):
    """A batch broke its expectation suite and was quarantined."""


@dataclass
class Outcome:
    dataset: str
    day: dt.date
    success: bool
    failures: list[dict] = field(default_factory=list)
    docs_uri: str = ""


def _expectations(dataset: str, day: dt.date, uc: contract.UseCase) -> list:
    """The dataset's suite, derived from the use case's columns."""
    import great_expectations.expectations as gxe

    cfg = _settings.load()
    start = pd.Timestamp(day, tz="UTC")
    in_day = {"min_value": start, "max_value": start + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)}
    if dataset == uc.labels:
        return [
            gxe.ExpectTableColumnsToMatchSet(column_set=[*uc.label_columns, EVENT_TIME], exact_match=True),
            *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in uc.label_columns],
            gxe.ExpectColumnValuesToBeUnique(column=uc.id),
            gxe.ExpectColumnValuesToBeInSet(column=uc.label, value_set=[0, 1]),
            # typed, and inside the day: a day's file holds the labels that became known that day
            gxe.ExpectColumnValuesToBeBetween(column=uc.labeled_at, **in_day),
            gxe.ExpectColumnValuesToNotBeNull(
                column=EVENT_TIME,
                description=f"referential integrity: the label's event is "
                f"curated (its day or the {cfg.label_max_delay_days} days before)",
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=uc.labeled_at,
                column_B=EVENT_TIME,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description="a label is known after its event",
            ),
        ]
    numbers, categories = uc.of(contract.NUMBER), [uc.column(c) for c in uc.of(contract.CATEGORY)]
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=list(uc.event_columns), exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.min_rows_per_day),
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in uc.event_columns],
        *[gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=["float64", "int64"]) for c in numbers],
        gxe.ExpectColumnValuesToBeUnique(column=uc.id),
        *[
            gxe.ExpectColumnValuesToBeBetween(column=c.name, min_value=c.min, max_value=c.max)
            for c in map(uc.column, numbers)
            if c.min is not None or c.max is not None
        ],
        *[gxe.ExpectColumnValuesToBeInSet(column=c.name, value_set=list(c.values)) for c in categories],
        # timestamps: typed (a string column cannot be compared), not in the future, inside the day
        *[
            e
            for c in uc.of(contract.TIMESTAMP)
            for e in (
                gxe.ExpectColumnValuesToBeBetween(column=c, max_value=pd.Timestamp.now(tz="UTC")),
                gxe.ExpectColumnValuesToBeBetween(column=c, **in_day),
            )
        ],
    ]


def run_suite(dataset: str, day: dt.date, frame: pd.DataFrame, docs_dir: Path, uc: contract.UseCase) -> Outcome:
    """Validate ``frame`` with the dataset's suite and build Data Docs into ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        },
    )
    batch = (
        context.data_sources.add_pandas("lake")
        .add_dataframe_asset(dataset)
        .add_batch_definition_whole_dataframe(day.isoformat())
    )
    bounds = distribution.expectations(distribution.rules(dataset, day, len(frame), uc), uc)
    suite = context.suites.add(
        gx.ExpectationSuite(name=dataset, expectations=[*_expectations(dataset, day, uc), *bounds])
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{dataset}-{day}", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{dataset}-gate",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])],
            result_format={"result_format": "SUMMARY"},
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    failures = []
    for run_result in result.run_results.values():
        for r in run_result.results:
            if not r.success:
                cfg = r.expectation_config
                failures.append(
                    {
                        "expectation": cfg.type,
                        "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_A"),
                        "rule": cfg.description,
                        "unexpected_count": (r.result or {}).get("unexpected_count"),
                        "error": _exception_message(r.exception_info),
                    }
                )
    return Outcome(dataset, day, bool(result.success), failures)


def _exception_message(info: dict) -> str | None:
    """GX nests exception info per metric when an expectation cannot even be computed."""
    found = [
        v.get("exception_message") for v in [info, *info.values()] if isinstance(v, dict) and v.get("raised_exception")
    ]
    return found[0] if found else None


def describe(failures: list[dict]) -> str:
    parts = []
    for f in failures:
        what = f["expectation"] + (f"({f['column']})" if f["column"] else "")
        what += f" [{f['rule']}]" if f.get("rule") else ""
        detail = (
            f"{f['unexpected_count']} unexpected" if f["unexpected_count"] is not None else f.get("error") or "failed"
        )
        parts.append(f"{what}: {detail}")
    return "; ".join(parts)


def describe_results(results: list[dict]) -> str:
    """A gate run in one line (its note): the days curated, each quarantined day and why."""
    curated = [r["date"] for r in results if r["status"] == "curated"]
    bad = [f"{r['date']} quarantined: {r['detail']}" for r in results if r["status"] == "quarantined"]
    head = f"curated {', '.join(curated)}" if curated else "no day curated"
    return "; ".join([head, *bad]) if results else "no raw day was waiting for the gate"


def pending_days() -> list[dt.date]:
    """Raw days not yet gated: no curated partition holding the same bytes (quarantine removes raw)."""
    events = contract.current().events
    return lake.pending(("raw", events), ("curated", events), "data_sha256")


def waiting_for(
    day: dt.date, batch: list[dt.date], gated: set[dt.date], raw: set[dt.date], events: str
) -> list[dt.date]:
    """Earlier days that must be gated before ``day``: its labels can name their events.
    Those are the days of the label window that landed (or are ``raw``) but are neither ``gated``
    (curated or quarantined) nor earlier in ``batch``, the days this run gates in date order
    (``events``: the use case's events dataset)."""
    window = _settings.load().label_max_delay_days
    earlier = [day - dt.timedelta(days=i) for i in range(1, window + 1)]
    return sorted(d for d in earlier if d not in gated and d not in batch and (d in raw or ingest.landed(events, d)))


def gate_days(days: list[dt.date]) -> list[dict]:
    """Gate ``days`` oldest first, so a day's labels meet the events gated before them.

    One day's failure does not stop the others: each result says ``curated``, ``quarantined``
    (with the failed expectations) or ``waiting`` (an earlier day of its label window has landed
    but is not gated yet: a later run gates it once that day is raw)."""
    # listed once: a day this run gates is in ``days``, so what changes meanwhile needs no new listing
    events = contract.current().events
    gated = set(lake.dates("curated", events)) | set(lake.dates("quarantine", events))
    raw = set(lake.dates("raw", events))
    results = []
    for day in sorted(days):
        if wait := waiting_for(day, days, gated, raw, events):
            results.append(
                {
                    "date": day.isoformat(),
                    "status": "waiting",
                    "detail": f"waits for {', '.join(d.isoformat() for d in wait)} to be gated first",
                }
            )
            continue
        try:
            outcomes = validate_day(day)
        except QualityGateError as err:
            results.append({"date": day.isoformat(), "status": "quarantined", "detail": str(err)})
            continue
        results.append(
            {"date": day.isoformat(), "status": "curated", "docs": {o.dataset: o.docs_uri for o in outcomes}}
        )
    return results


def gate_until_drained(days: list[dt.date]) -> list[dict]:
    """``gate_days``, then the raw days that changed meanwhile, until that stops: a backfill's runs
    land their days side by side, and the first raw_events event starts a validate run while the
    others are still landing. Gated here, they are named by this run's one curated_events event,
    and the runs their own events start find nothing new (``not_regated``) instead of building
    features, scoring and evaluating a second time. One result per day, its last; it stops once a
    pass leaves the same days pending (days waiting for an earlier one)."""
    results = {r["date"]: r for r in gate_days(days)}
    pending = None
    while (more := pending_days()) and more != pending:
        pending = more
        results |= {r["date"]: r for r in gate_days(more)}
    return sorted(results.values(), key=lambda r: r["date"])


def not_regated(named: list[str], pending: list[dt.date]) -> list[str]:
    """The days of ``named`` (ISO dates a run's raw_events events name) still to gate: all but
    those whose curated partition already holds the raw bytes (an earlier run gated them). A
    quarantined day has no raw partition: it stays, so the run it woke fails naming it.
    ``pending``: the caller's ``pending_days()``."""
    events = contract.current().events
    gated = set(lake.dates("raw", events)) - set(pending)
    return [d for d in named if dt.date.fromisoformat(d) not in gated]


def with_event_time(labels: pd.DataFrame, batch: pd.DataFrame, day: dt.date, uc: contract.UseCase) -> pd.DataFrame:
    """``labels`` with the time of the curated event each one names (NaT when none does),
    looked up in the curated days a label can still arrive for, and in the day's own batch."""
    window = _settings.load().label_max_delay_days
    cols = [uc.id, uc.time]
    frames = [
        lake.read_parquet(lake.partition("curated", uc.events, d))[cols]
        for d in lake.dates("curated", uc.events)
        if day - dt.timedelta(days=window) <= d < day
    ]
    frames.append(batch[cols] if set(cols) <= set(batch.columns) else pd.DataFrame(columns=cols))
    known = pd.concat(frames, ignore_index=True).drop_duplicates(uc.id)
    known = known.rename(columns={uc.time: EVENT_TIME})
    known[EVENT_TIME] = pd.to_datetime(known[EVENT_TIME], utc=True, errors="coerce")
    if uc.id not in labels:  # the column-set rule names what is wrong
        return labels.assign(**{EVENT_TIME: pd.NaT})
    return labels.merge(known, on=uc.id, how="left", suffixes=("", "_joined"))


def validate_day(day: dt.date) -> list[Outcome]:
    """Gate one day's raw batch. Pass: curated partitions. Fail: quarantine, then raise."""
    uc = contract.current()
    raw = {ds: lake.partition("raw", ds, day) for ds in uc.datasets}
    for part in raw.values():
        if lake.manifest(part) is None:
            quarantined = [lake.manifest(lake.partition("quarantine", ds, day)) for ds in uc.datasets]
            if any(quarantined):  # an earlier attempt quarantined it and was killed before it failed
                failures = [f for m in quarantined if m for f in m["failures"]]
                raise QualityGateError(
                    f"batch {day.isoformat()} was already quarantined; failed expectations: {describe(failures)}"
                )
            raise FileNotFoundError(
                f"raw partition {part} is missing or incomplete (no manifest): "
                f"validate runs only on partitions landed by ingest"
            )
    data = {ds: (part / "data.parquet").read_bytes() for ds, part in raw.items()}  # read once: validate, then copy
    frames = {ds: pd.read_parquet(io.BytesIO(b)) for ds, b in data.items()}
    frames[uc.labels] = with_event_time(frames[uc.labels], frames[uc.events], day, uc)
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for ds, frame in frames.items():
            docs = Path(tmp) / ds
            outcome = run_suite(ds, day, frame, docs, uc)
            outcome.docs_uri = str(reports.publish_dir(docs, f"data_quality/{ds}/{day.isoformat()}"))
            outcomes.append(outcome)
    reports.rebuild_index()
    passed = all(o.success for o in outcomes)
    target = "curated" if passed else "quarantine"
    for ds, part in raw.items():
        manifest = {
            **lake.manifest(part),
            "validated": passed,
            "failures": [f for o in outcomes if o.dataset == ds for f in o.failures],
        }
        lake.publish(lake.partition(target, ds, day), {"data.parquet": data[ds]}, manifest)
    if not passed:
        for part in raw.values():
            lake.remove(part)
        detail = " | ".join(f"{o.dataset}: {describe(o.failures)}" for o in outcomes if not o.success)
        docs = {o.dataset: ui.report_url(o.docs_uri) for o in outcomes if not o.success}
        each = "\n".join(f"{o.dataset}: {describe([f])}" for o in outcomes if not o.success for f in o.failures)
        alerts.quarantined(day.isoformat(), each, docs, lake.sha256(b"".join(data.values())))  # a line per rule
        raise QualityGateError(
            f"batch {day.isoformat()} failed validation and was moved to "
            f"{lake.partition('quarantine', uc.events, day).parent.parent}; failed expectations: {detail}"
        )
    return outcomes
