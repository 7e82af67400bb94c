"""Training: a point-in-time training set from Feast, candidates, and the challenger.

The training set is written to the lake once per DAG run; each candidate task reads it, trains
on the device it finds (CUDA when present), logs everything to MLflow and reports its holdout
metrics; the best candidate becomes a new registered version with alias ``challenger``.

Every step is keyed by the Airflow run, so a retried task (its process killed mid-run) ends as an
uninterrupted one would: the training set is published whole or not at all, the parent MLflow run
and each finished candidate run are reused, and a run registers at most one model version.

A registered version records what made it (training set URI and digest, flavour, seed, device,
commit); ``reproduce`` retrains from that record and gives the same holdout metrics on the same
device: every flavour fits deterministically (fixed seeds and thread counts).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time

import numpy as np
import pandas as pd

from lifecycle import contract, evaluation, lake, point_in_time, registry, tracking, ui
from lifecycle import settings as _settings
from lifecycle.modeling import LifecycleModel, model_frame, numeric_columns, preprocessor

FLAVOURS = ("xgboost", "pytorch_mlp", "sklearn_logistic")  # what a use case can list as candidates
PARTS = ("train", "holdout")
QUALITY = ("pr_auc", "roc_auc", "log_loss")  # the holdout metrics a retrain must reproduce (timings are not)
# the holdout metrics a candidate run logs and a registered version keeps as ``holdout_*`` tags
HEADLINE = (*QUALITY, "ece", "brier", "precision_at_alert", "recall_at_alert", "alert_threshold", "positive_rate")
IMPORTANCE_ROWS = 2000  # holdout rows (the first ones) importance is measured on


class TrainingDataError(RuntimeError):
    """Not enough labeled, curated data to train on."""


class NoCuratedData(TrainingDataError):
    """No curated day up to the cutoff: a fresh deployment's scheduled run has nothing to train on."""


class ReproductionError(RuntimeError):
    """A registered version cannot be retrained from its record (training set changed or gone, device missing)."""


class NothingToTrain(RuntimeError):
    """A run with nothing new to learn from (the message says why): the train DAG skips it."""


class EvidenceAnswered(NothingToTrain):
    """The drift or degradation evidence that triggered this run is already answered: nothing to train."""


def labeled_events(cutoff: pd.Timestamp) -> pd.DataFrame:
    """``labeled_table`` as a pandas frame."""
    return labeled_table(cutoff).to_pandas()


def labeled_table(cutoff: pd.Timestamp):
    """Curated events joined with the labels known at ``cutoff``, over the training window, as an
    Arrow table in (time, id) order: the same days give the same rows in the same order, whatever
    order the files were read in.

    Labels are partitioned by the day they became known, so only partitions up to the cutoff's day
    are read, and within it only labels with ``labeled_at <= cutoff`` count, whatever the time of
    the event they describe."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cfg = _settings.load()
    uc = contract.current(cfg)
    days = [d for d in lake.dates("curated", uc.events) if d <= cutoff.date()]
    if not days:
        raise NoCuratedData(f"no curated {uc.events} partitions up to {cutoff}: run ingest and validate first")
    first = max(days[0], days[-1] - dt.timedelta(days=cfg.max_train_days - 1))
    events = lake.read_range_table("curated", uc.events, first, days[-1], list(uc.event_columns))
    labels = lake.read_range_table("curated", uc.labels, first, cutoff.date(), list(uc.label_columns))
    if labels is None:
        raise TrainingDataError(f"no labels up to {cutoff}: training needs both classes")
    labels = labels.filter(pc.less_equal(labels[uc.labeled_at], cutoff))
    labels = labels.take(pc.sort_indices(labels, [(uc.labeled_at, "descending")]))  # newest first
    # the events in (time, id) order, each with the latest label known at the cutoff (a later
    # correction wins): one sort, one lookup and one take, never a second copy of the events
    found = pc.index_in(events[uc.id], value_set=labels[uc.id])
    order = pc.sort_indices(events, [(uc.time, "ascending"), (uc.id, "ascending")])
    order = order.filter(pc.is_valid(found.take(order)))
    out = events.take(order).append_column(uc.label, labels[uc.label].take(found.take(order)))
    del events, labels, found, order
    pa.default_memory_pool().release_unused()  # what the inputs held goes back to the system before the join
    if out.num_rows == 0 or pc.count_distinct(out[uc.label]).as_py() < 2:
        raise TrainingDataError(f"{out.num_rows} labeled rows up to {cutoff}: training needs both classes")
    return out


def build_training_set(run_key: str, cutoff: pd.Timestamp) -> dict:
    """Write train/holdout parquet for this run; returns their URIs, sizes and digest.

    Built as Arrow tables, never a pandas frame: 10M labeled rows in ~2 GB (bench/training.py)."""
    import pyarrow.compute as pc

    cfg = _settings.load()
    uc = contract.current(cfg)
    rows = labeled_table(cutoff).replace_schema_metadata(None)  # the curated files' pandas metadata is not ours
    stored = point_in_time.feature_table(rows)
    for name in stored.column_names:
        rows = rows.append_column(name, stored[name])
    day = pc.floor_temporal(rows[uc.time], unit="day")
    last = pc.max(day).as_py()
    split = last - dt.timedelta(days=cfg.holdout_days - 1)
    first_holdout = pc.sum(pc.less(day, split)).as_py()  # rows are in time order: the parts are slices
    parts = {"train": rows.slice(0, first_holdout), "holdout": rows.slice(first_holdout)}
    if any(pc.count_distinct(part[uc.label]).as_py() < 2 for part in parts.values()):
        raise TrainingDataError(
            f"time split at {split.date()} leaves a part with one class: land more days or lower LIFECYCLE_HOLDOUT_DAYS"
        )
    folder = lake.zone("training") / run_key.replace(":", "_").replace("+", "_")
    files = {f"{name}.parquet": lake.parquet_bytes(part) for name, part in parts.items()}
    info = {
        "uri": str(folder),
        "train_rows": parts["train"].num_rows,
        "holdout_rows": parts["holdout"].num_rows,
        "no_feature_rows": rows[uc.known_if].null_count,
        "positive_rate": round(pc.mean(rows[uc.label]).as_py(), 5),
        "first_day": str(pc.min(day).as_py().date()),
        "split_day": str(split.date()),
        "last_day": str(last.date()),
        "digest": dataset_digest(files),
        "numeric": numeric_columns(uc, rows.column_names),
    }
    info["sources"] = sources(dt.date.fromisoformat(info["first_day"]), last.date(), cutoff.date())
    lake.publish(folder, files, info)  # the manifest is the training set's description
    return info


def sources(first: dt.date, last: dt.date, cutoff: dt.date) -> dict[str, dict[str, str]]:
    """The curated partitions a training set was made from (events of its days, labels known up to
    its cutoff), each with its data's digest then: what an audit names as the model's data."""
    uc = contract.current()
    return {
        dataset: {
            d.isoformat(): lake.manifest(lake.partition("curated", dataset, d)).get("data_sha256")
            for d in lake.dates("curated", dataset)
            if first <= d <= end
        }
        for dataset, end in ((uc.events, last), (uc.labels, cutoff))
    }


def dataset_digest(files: dict[str, bytes]) -> str:
    """The training set's digest (recorded as ``dataset_digest``): over each part's file bytes."""
    digests = {name.removesuffix(".parquet"): lake.sha256(data) for name, data in files.items()}
    return lake.sha256(json.dumps(digests, sort_keys=True).encode())[:16]


def stored_digest(uri: str) -> str:
    """``dataset_digest`` of the training set as stored at ``uri`` now."""
    from airflow.sdk import ObjectStoragePath

    return dataset_digest(
        {f"{part}.parquet": (ObjectStoragePath(uri) / f"{part}.parquet").read_bytes() for part in PARTS}
    )


def load_part(uri: str, part: str, limit: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A training set's part as a frame; with ``limit``, its ``fit_rows`` only, sampled while the rows
    are Arrow (10M rows as a pandas frame hold ~5 GB of Python strings: bench/training.py)."""
    import pyarrow.parquet as pq
    from airflow.sdk import ObjectStoragePath

    with (ObjectStoragePath(uri) / f"{part}.parquet").open("rb") as f:
        table = pq.read_table(io.BytesIO(f.read()))
    return (table if limit is None else fit_rows(table, seed, limit)).to_pandas()


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def estimator(flavour: str, seed: int, dev: str):
    """The unfitted candidate of ``flavour`` on device ``dev``.

    No flavour weights a class: each minimises the plain log loss, so its scores are calibrated
    probabilities, as the service answers them and promotion requires (``max_calibration_share``).
    Weighting the rare class inflated them: on the demo's holdout (1.3% fraud) the expected
    calibration error was 0.16 for the balanced logistic regression and 0.05 for the MLP, against
    0.0045 each unweighted, with PR-AUC no lower (0.57 -> 0.66, 0.68 -> 0.69)."""
    if flavour == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(
            n_estimators=300,
            max_depth=5,
            learning_rate=0.08,
            subsample=0.9,
            colsample_bytree=0.9,
            tree_method="hist",
            device=dev,
            n_jobs=2,
            random_state=seed,
            eval_metric="aucpr",
        )
    if flavour == "pytorch_mlp":
        from lifecycle.modeling import TorchMLP

        return TorchMLP(seed=seed, device=dev)
    if flavour == "sklearn_logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    raise ValueError(f"candidate {flavour!r} is not one of {', '.join(FLAVOURS)}")


LATENCY_ROWS = 100  # single rows scored by each model to measure its latency


def scoring_latency(models: dict, sample: pd.DataFrame, clock=time.process_time) -> dict[str, float]:
    """Single-row scoring latency (p50, ms of CPU time) of each pyfunc-like model, on the same rows.

    The models take turns row by row, the order alternating from one row to the next, so a change in
    the machine's speed while this runs reaches every model alike and a ratio between them keeps.

    The clock is this process's CPU time (``time.process_time``: user and system time of all its
    threads, so work a model hands to its own thread pool counts). The kernel counts a thread's CPU
    time only while the thread runs on a CPU, not while it waits for one: on a machine whose cores
    other processes keep busy, a predict call takes longer by the wall clock, not by this one (on a
    2-core machine with six busy processes, xgboost's p50 went from 0.77 to 17.4 ms by the wall
    clock and from 0.77 to 1.06 ms of CPU time). What still adds to it is contention that slows the
    instructions themselves (shared caches, a busy sibling hyperthread, a lower clock frequency); the
    alternation spreads it over every model, and the median moves little while the calls it hit are
    fewer than half. A thread of this very process that burns CPU would count: each Airflow task
    runs in a process of its own."""
    timings: dict[str, list[float]] = {role: [] for role in models}
    order = list(models)
    for i in range(len(sample)):
        row = sample.iloc[[i]]
        for role in order if i % 2 == 0 else order[::-1]:
            t = clock()
            models[role].predict(row)
            timings[role].append((clock() - t) * 1000)
    return {role: float(np.median(t)) for role, t in timings.items()}


def judged(
    scores: dict[str, np.ndarray], holdout: pd.DataFrame, cfg: _settings.Settings | None = None, *, by_slice=True
) -> dict:
    """``evaluation.judge`` of each model's scores (role -> the holdout's scores) on the holdout's
    labels and (``by_slice``) the use case's slices, with the settings in force (``cfg``: thresholds
    applied)."""
    cfg = cfg or _settings.load()
    uc = contract.current(cfg)
    return evaluation.judge(
        scores,
        holdout[uc.label].to_numpy(),
        {column: holdout[column].to_numpy() for column in uc.slices} if by_slice else {},
        metric=cfg.primary_metric,
        alert_rate=cfg.alert_rate,
        min_rows=int(cfg.slice_min_rows),
        boots=cfg.eval_bootstrap,
        seed=cfg.seed,
    )


def headline(judgement: dict, role: str) -> dict[str, float]:
    """One model's ``HEADLINE`` metrics from a ``judged`` result (those it could compute)."""
    m = judgement["models"][role]["metrics"]
    return {k: float(m[k]) for k in HEADLINE if m.get(k) is not None}


def quality(model, holdout: pd.DataFrame) -> dict[str, float]:
    """``HEADLINE`` holdout metrics (ranking, calibration, the alert budget's precision and recall)
    of a pyfunc-like model's scores, and the holdout's positive rate (what the floor is relative to);
    no slices, so no bootstrap (``reproduce`` compares these alone)."""
    return headline(judged({"model": model.predict(holdout)}, holdout, by_slice=False), "model")


def evaluate(model, holdout: pd.DataFrame) -> tuple[dict[str, float], dict]:
    """A candidate on its holdout: the ``HEADLINE`` metrics with its single-row scoring latency
    (p50, ms of CPU time), and the whole ``judged`` result (reliability curve, slices)."""
    judgement = judged({"model": model.predict(holdout)}, holdout)
    latency = scoring_latency({"model": model}, holdout.head(LATENCY_ROWS))["model"]
    return {**headline(judgement, "model"), "latency_ms_p50": latency}, judgement


class Scorer:  # LifecycleModel.predict without an MLflow context: evaluation, promotion and latency
    def __init__(self, model: LifecycleModel):
        self.model = model

    def predict(self, frame):
        return self.model.predict_proba(frame)


def _earlier_attempt(parent_run_id: str, flavour: str) -> dict | None:
    """A finished run of this candidate under this parent (a retry reuses it); unfinished ones
    (their process was killed) are marked KILLED so the parent shows one live run per candidate."""
    from mlflow.entities import RunStatus

    c = tracking.client()
    found = None
    for run in c.search_runs(
        [tracking.experiment_id()], f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.flavour = '{flavour}'"
    ):
        if run.info.status == "FINISHED" and found is None:
            found = {
                "flavour": flavour,
                "run_id": run.info.run_id,
                "device": run.data.params.get("device"),
                "seed": int(run.data.params["seed"]),
                "metrics": dict(run.data.metrics),
                "artifact_digest": run.data.tags.get("artifact_digest"),
            }
        elif run.info.status == "RUNNING":
            c.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
    return found


def fit_rows(train, seed: int, limit: int):
    """The training rows (a frame or an Arrow table) a candidate fits on: all of them, or a seeded
    sample of ``limit`` (in their time order) when there are more (``LIFECYCLE_MAX_FIT_ROWS``), so a
    fit's time and memory are bounded whatever the window holds."""
    if len(train) <= limit:
        return train
    keep = np.sort(np.random.default_rng(seed).choice(len(train), size=limit, replace=False))
    return train.iloc[keep].reset_index(drop=True) if isinstance(train, pd.DataFrame) else train.take(keep)


def fit(
    flavour: str, train: pd.DataFrame, numeric: list[str], seed: int, dev: str, limit: int
) -> tuple[LifecycleModel, object, float]:
    """Fit one candidate on the training part (``fit_rows`` of it); returns the model, its estimator
    and the fit seconds."""
    uc = contract.current()
    train = fit_rows(train, seed, limit)
    prep = preprocessor(numeric, list(uc.categoricals))
    X = prep.fit_transform(model_frame(uc, train, numeric))
    y = train[uc.label].to_numpy()
    est = estimator(flavour, seed, dev)
    t = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t
    if flavour == "xgboost":
        est.set_params(device="cpu")  # scoring happens on CPU, in Airflow and in BentoML
    return LifecycleModel(prep, est, numeric, flavour, uc), est, fit_s


def train_candidate(flavour: str, training_set: dict, parent_run_id: str, seed: int) -> dict:
    """Fit one candidate, log params/metrics/model to MLflow; returns run id and metrics."""
    import mlflow

    if (done := _earlier_attempt(parent_run_id, flavour)) is not None:  # also points MLflow at the store
        return done
    train = load_part(training_set["uri"], "train", _settings.load().max_fit_rows, seed)
    holdout = load_part(training_set["uri"], "holdout")
    dev = device()
    sizes = {"train_rows": training_set["train_rows"], "fit_rows": len(train)}
    model, est, fit_s = fit(flavour, train, training_set["numeric"], seed, dev, len(train))
    del train
    cfg = _settings.load()
    uc = contract.current(cfg)
    metrics, judgement = evaluate(Scorer(model), holdout)
    metrics |= {"fit_seconds": fit_s, **slice_metrics(judgement, "model", cfg.primary_metric)}
    sample = holdout.head(IMPORTANCE_ROWS)
    drivers = evaluation.importance(
        model, model.inputs(sample), sample[uc.label].to_numpy(), metric=cfg.primary_metric, seed=seed
    )
    with mlflow.start_run(
        experiment_id=tracking.experiment_id(), run_name=flavour, parent_run_id=parent_run_id, nested=True
    ) as run:
        params = (
            {k: v for k, v in est.get_params().items() if isinstance(v, (int, float, str, bool))}
            if hasattr(est, "get_params")
            else {k: getattr(est, k) for k in ("hidden", "epochs", "lr", "threads")}
        )
        mlflow.log_params({**params, **sizes, "flavour": flavour, "device": dev, "seed": seed})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(judgement, "evaluation/evaluation.json")
        mlflow.log_dict(drivers, "evaluation/importance.json")
        mlflow.set_tags(
            {
                "dataset_digest": training_set["digest"],
                "training_set_uri": training_set["uri"],
                "git_commit": tracking.git_commit(),
                "feature_service": contract.current().feature_service,
                "seed": str(seed),
                "flavour": flavour,
            }
        )
        columns = model_columns(uc, model)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            pip_requirements=tracking.model_requirements(flavour),
            code_paths=tracking.model_code(cfg),
            signature=signature(uc, model),
            input_example=example(uc, holdout[columns].head(EXAMPLE_ROWS)),
        )
        digest = tracking.logged_model_digest(info.model_uri)  # what the live service checks before serving
        mlflow.set_tag("artifact_digest", digest)
    return {
        "flavour": flavour,
        "run_id": run.info.run_id,
        "metrics": metrics,
        "device": dev,
        "seed": seed,
        "artifact_digest": digest,
    }


EXAMPLE_ROWS = 3  # holdout rows a logged model keeps as its input example


def model_columns(uc: contract.UseCase, model: LifecycleModel) -> list[str]:
    """The frame columns a model reads: the event's time, the numbers it reads as they are (not the
    derived ones), its categories."""
    derived = {*uc.request_derived, *uc.feature_derived}
    return [uc.time, *(c for c in model.numeric if c not in derived), *model.categorical]


def example(uc: contract.UseCase, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the ``signature`` takes them: MLflow's datetime is a time without a zone (UTC here),
    and it never converts int64 to double (counts are doubles: an entity never seen has none)."""
    numbers = [c for c in rows.columns if c != uc.time and c not in uc.categoricals]
    return rows.assign(
        **{uc.time: pd.to_datetime(rows[uc.time], utc=True).dt.tz_convert(None)},
        **{c: contract.floats(rows[c], len(rows)) for c in numbers},
    )


def signature(uc: contract.UseCase, model: LifecycleModel):
    """The logged model's MLflow signature: ``model_columns`` in, the positive class's probability out.
    Stored features are optional (an entity never seen has none); the request's fields are required;
    the event time is UTC without a zone (``example``)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    request = {*uc.event_columns}
    kinds = {uc.time: "datetime", **dict.fromkeys(model.categorical, "string")}
    return ModelSignature(
        inputs=Schema([ColSpec(kinds.get(c, "double"), c, required=c in request) for c in model_columns(uc, model)]),
        outputs=Schema([ColSpec("double", uc.score)]),
    )


def slice_metrics(judgement: dict, role: str, metric: str) -> dict[str, float]:
    """A model's judged slices as MLflow metrics: ``slice_<column>_<value>_<metric>`` and the interval's bounds."""
    import re

    out = {}
    for s in judgement["slices"]:
        value = s["models"][role]
        if not s["judged"]:
            continue
        name = "slice_" + re.sub(r"[^0-9A-Za-z_.\-]", "_", f"{s['column']}_{s['value']}") + f"_{metric}"
        out[name] = value[metric]
        if None not in value.get("interval", [None]):
            out[f"{name}_low"], out[f"{name}_high"] = value["interval"]
    return out


def reproduce(version: str) -> dict:
    """Retrain a registered version from its record and score it on its holdout.

    Reads the version's training set from ``training_set_uri`` (``ReproductionError`` unless its
    digest is still the recorded ``dataset_digest``), fits the recorded flavour with the recorded
    seed on the recorded device, and returns the reproduced ``QUALITY`` metrics beside the recorded
    ones (the candidate run's, full precision), with the recorded and the current commit: on the
    same commit and device they are equal."""
    from airflow.sdk import ObjectStoragePath

    cfg = _settings.load()
    c = tracking.client()
    mv = c.get_model_version(cfg.model_name, str(version))
    run = c.get_run(mv.run_id)
    uri, recorded_digest = mv.tags["training_set_uri"], mv.tags["dataset_digest"]
    try:
        digest = stored_digest(uri)
    except FileNotFoundError as err:
        raise ReproductionError(f"version {version}: its training set {uri} is gone") from err
    if digest != recorded_digest and (erased := mv.tags.get("erased")):
        raise ReproductionError(
            f"version {version}: its training set at {uri} lost rows to erasure {erased} (digest {digest}, recorded "
            f"{recorded_digest}): it cannot be reproduced, and data_erased asked for a retraining without them"
        )
    if digest != recorded_digest:
        raise ReproductionError(
            f"version {version}: the training set at {uri} has digest {digest}, not the recorded {recorded_digest}"
        )
    dev = run.data.params["device"]
    if dev != "cpu" and device() != dev:
        raise ReproductionError(f"version {version} was trained on {dev}; this machine has none")
    seed = int(mv.tags.get("seed") or run.data.params["seed"])  # versions registered before the tag: the run's
    numeric = lake.manifest(ObjectStoragePath(uri))["numeric"]
    # the recorded sample size, whatever the setting now (versions from before the setting: every row)
    limit = int(run.data.params.get("fit_rows", lake.manifest(ObjectStoragePath(uri))["train_rows"]))
    train = load_part(uri, "train", limit, seed)
    model, _, _ = fit(mv.tags["flavour"], train, numeric, seed, dev, limit)
    return {
        "version": str(version),
        "flavour": mv.tags["flavour"],
        "seed": seed,
        "device": dev,
        "dataset_digest": digest,
        "git_commit": mv.tags["git_commit"],
        "current_commit": tracking.git_commit(),
        "recorded": {k: run.data.metrics[k] for k in QUALITY},
        "reproduced": {k: v for k, v in quality(Scorer(model), load_part(uri, "holdout")).items() if k in QUALITY},
    }


def trigger_reason(triggering_asset_events, run_type: str, manual_reason: str) -> str:
    """Why this training run started: the newest drift, degradation or erasure event's evidence,
    else the manual run's reason, else the run type (a scheduled run)."""
    from lifecycle.assets import DEGRADED, DRIFT, ERASED

    events = sorted(
        (
            (asset, e)
            for asset in (DRIFT, DEGRADED, ERASED)
            for e in (triggering_asset_events.get(asset, []) if triggering_asset_events else [])
        ),
        key=lambda pair: pair[1].timestamp,
    )
    if events:
        asset, event = events[-1]
        extra = event.extra or {}
        if asset == DRIFT:
            return f"drift share {extra.get('drift_share')} ({extra.get('report_url') or extra.get('report_uri')})"
        if asset == ERASED:
            rows, ids, entity = extra.get("rows"), extra.get("ids"), extra.get("entity")
            return f"data erased: {extra.get('erasure')} ({rows} rows of {ids} {entity})"
        return (
            f"degraded: live {extra.get('metric')} {extra.get('value')} over {extra.get('labels')} labels "
            f"(v{extra.get('model_version')}, {extra.get('report_url') or extra.get('report_uri')})"
        )
    return manual_reason if run_type == "manual" else str(run_type)


def evidence_day(extra: dict) -> str | None:
    """The last event day a drift or degradation event judged (its ``window``, "first..last")."""
    return (extra.get("window") or "").split("..")[-1] or None


def answered(
    events: list[tuple[float, dict]],
    champion: str | None,
    versions: dict[str, float],
    canary: str | None,
    trained_through: dict[str, str] | None = None,
) -> str | None:
    """Why drift or degradation evidence needs no new training run, or None when it does.

    ``events`` are (emitted at, extra) with the version each judged (``model_version``); ``versions``
    maps every registered version to when it was registered (epoch seconds), ``trained_through`` to
    the last day of its training data. Both detectors judge the champion and can fire on the same
    days, and a detector keeps firing while its answer is still in canary: evidence is answered when
    the version it judged is no longer the champion, when a newer version was registered after it
    was emitted or is serving as canary, or when a newer version was already trained on the days it
    judged (the offline gate rejected that answer: training again on the same days gives the same
    model, so the next attempt waits for evidence from a new day)."""
    if not events:
        return None
    trained_through = trained_through or {}
    why = []
    for at, extra in events:
        judged = str(extra.get("model_version", ""))
        if not judged.isdigit():  # evidence that names no version (an event posted by hand) is never answered
            return None
        newer = {v: t for v, t in versions.items() if int(v) > int(judged)}
        day = evidence_day(extra)
        if judged != str(champion):
            why.append(f"v{judged} is no longer the champion (v{champion} is)")
        elif canary is not None and canary in newer:
            why.append(f"v{canary}, newer than v{judged}, is already serving as canary")
        elif after := sorted(v for v, t in newer.items() if t >= at):
            why.append(f"v{after[0]} was registered after the evidence on v{judged}")
        elif day and (seen := sorted((v for v in newer if trained_through.get(v, "") >= day), key=int)):
            why.append(
                f"v{seen[-1]} was already trained on data through {trained_through[seen[-1]]}, "
                f"the last day of the evidence on v{judged}"
            )
        else:
            return None
    return "; ".join(why)


def trigger_answered(triggering_asset_events) -> str | None:
    """``answered`` for an asset-triggered run, read from its events and the registry; an erasure
    is never answered: the training data changed."""
    from lifecycle.aliases import CANARY, CHAMPION
    from lifecycle.assets import DEGRADED, DRIFT, ERASED

    if triggering_asset_events and triggering_asset_events.get(ERASED, []):
        return None

    events = [
        (e.timestamp.timestamp(), dict(e.extra or {}))
        for asset in (DRIFT, DEGRADED)
        for e in (triggering_asset_events.get(asset, []) if triggering_asset_events else [])
    ]
    if not events:
        return None
    cfg = _settings.load()
    champion, canary = tracking.version_by_alias(CHAMPION), tracking.version_by_alias(CANARY)
    registered = tracking.client().search_model_versions(f"name='{cfg.model_name}'")
    versions = {str(v.version): v.creation_timestamp / 1000 for v in registered}
    through = {str(v.version): v.tags["train_window"].split("..")[-1] for v in registered if "train_window" in v.tags}
    return answered(events, champion and str(champion.version), versions, canary and str(canary.version), through)


def trigger(run_type: str, triggering_asset_events, manual_reason: str) -> str:
    """Why this training run starts (``trigger_reason``); raises ``EvidenceAnswered`` saying why when an
    asset-triggered run's evidence is already answered (``trigger_answered``) and the run should be skipped."""
    if run_type == "asset_triggered" and (why := trigger_answered(triggering_asset_events)):
        raise EvidenceAnswered(f"the evidence that triggered this run is already answered: {why}")
    return trigger_reason(triggering_asset_events, run_type, manual_reason)


def prepare(run_key: str, run_type: str, triggering_asset_events, manual_reason: str, cutoff, seed: int) -> dict:
    """The training set of a train run, with why it runs and its MLflow parent run; raises
    ``NothingToTrain`` when there is nothing new: evidence already answered, no curated day yet
    (a manual run fails instead: someone asked), or a training set identical (same digest) to one
    another run's registered version was trained on with the same seed (its folder is removed
    again). A retried run finds its own version and goes on (``register_best`` returns it)."""
    reason = trigger(run_type, triggering_asset_events, manual_reason)
    try:
        info = build_training_set(run_key, cutoff)
    except NoCuratedData as err:  # other data errors (one class, no labels) fail the run
        if run_type == "manual":
            raise
        raise NothingToTrain(f"{err} (nothing to train yet)") from err
    same = registered_on(info["digest"], seed)
    if same is not None and same.tags.get("airflow_run") != run_key:  # this run's own version: a retry
        from airflow.sdk import ObjectStoragePath

        if same.tags.get("training_set_uri") != info["uri"]:
            lake.remove(ObjectStoragePath(info["uri"]))
        raise NothingToTrain(
            f"the training set (digest {info['digest']}, {info['first_day']}..{info['last_day']}) is the one version "
            f"{same.version} was trained on with seed {seed}: nothing new to learn (land new days, or use another seed)"
        )
    info["reason"] = reason
    info["parent_run_id"] = start_parent_run(run_key, info, reason)
    return info


def registered_on(digest: str, seed: int):
    """The first registered version trained on the training set with this digest and seed, if any."""
    cfg = _settings.load()
    found = tracking.client().search_model_versions(f"name = '{cfg.model_name}' and tags.dataset_digest = '{digest}'")
    same = sorted((v for v in found if v.tags.get("seed", str(seed)) == str(seed)), key=lambda v: int(v.version))
    return same[0] if same else None


def start_parent_run(run_key: str, training_set: dict, reason: str) -> str:
    """The MLflow run that holds this Airflow run's candidates (created once per Airflow run)."""
    import mlflow

    c = tracking.client()
    earlier = c.search_runs([tracking.experiment_id()], f"tags.airflow_run = '{run_key}'", max_results=1)
    if earlier:
        return earlier[0].info.run_id
    with mlflow.start_run(experiment_id=tracking.experiment_id(), run_name=f"train {run_key}") as run:
        mlflow.log_params({k: v for k, v in training_set.items() if k not in ("numeric", "uri", "sources")})
        mlflow.set_tags(
            {
                "trigger": reason,
                "airflow_run": run_key,
                "training_set_uri": training_set["uri"],
                "dataset_digest": training_set["digest"],
                "git_commit": tracking.git_commit(),
            }
        )
    return run.info.run_id


def register_best(results: list[dict], training_set: dict, run_key: str, reason: str) -> dict:
    """Register the best candidate (primary metric) as a new version with alias ``challenger``."""
    import mlflow

    cfg = _settings.load()
    c = tracking.client()
    best = max(results, key=lambda r: r["metrics"][cfg.primary_metric])
    tags = {
        "flavour": best["flavour"],
        "dataset_digest": training_set["digest"],
        "training_set_uri": training_set["uri"],
        "feature_service": contract.current().feature_service,
        "git_commit": tracking.git_commit(),
        "airflow_run": run_key,
        **({"airflow_run_url": here["url"]} if (here := ui.current_run()) else {}),  # the model card links it
        "trigger": reason,
        "artifact_digest": best["artifact_digest"],
        "train_window": f"{training_set['first_day']}..{training_set['last_day']}",
        **{f"holdout_{k}": f"{v:.6f}" for k, v in best["metrics"].items() if k in (*HEADLINE, "latency_ms_p50")},
        **({"seed": str(best["seed"])} if best.get("seed") is not None else {}),
    }
    # tags are written with the version, so a retry finds the version its first attempt made
    earlier = c.search_model_versions(f"name = '{cfg.model_name}' and tags.airflow_run = '{run_key}'")
    mv = earlier[0] if earlier else mlflow.register_model(f"runs:/{best['run_id']}/model", cfg.model_name, tags=tags)
    registry.nominate(
        mv.version,
        f"best of {len(results)} candidates ({best['flavour']}, {cfg.primary_metric} "
        f"{best['metrics'][cfg.primary_metric]:.4f} on the holdout), trained on {tags['train_window']} for {reason}",
        f"MLflow run {best['run_id']}",
    )
    return {
        "version": mv.version,
        "flavour": best["flavour"],
        "run_id": best["run_id"],
        cfg.primary_metric: best["metrics"][cfg.primary_metric],
        "candidates": {r["flavour"]: round(r["metrics"][cfg.primary_metric], 5) for r in results},
    }
