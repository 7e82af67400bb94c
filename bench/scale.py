"""Monitoring and scoring at scale, side by side with their limits (60 s and 2,048 MB each).

    .local/venv/bin/python bench/scale.py                  # 10,000,000 rows (~6 min with the set-up)
    .local/venv/bin/python bench/scale.py --rows 200000    # a quick run
    .local/venv/bin/python bench/scale.py --rows 20000     # make bench-smoke's (~1 min)
    .local/venv/bin/python bench/scale.py --only drift join

Builds seeded synthetic inputs of --rows rows in a temporary state folder (removed at the end
unless --keep): curated transactions over the monitor window (3 days), a 7-day prediction log
(batch files written by ``prediction_writer.write_batch``) with a label for every event, one day's
file of --rows events with their stored features, and a small XGBoost ``LifecycleModel`` (the
fraud use case's inputs). Then it measures each figure in its own Python process, so the peak memory
(VmHWM of that process: imports included) is the figure's alone:

  drift       monitoring.current_window (the window's monitored columns read from the lake) +
              monitoring.compare (thresholds calibrated on a reference of at most
              monitoring.REFERENCE_READ_ROWS rows over 30 days; seeded samples of REFERENCE_MAX_ROWS
              and MONITOR_MAX_ROWS rows, Evidently's DataDriftPreset) + the report published
  prediction  performance.publish: Evidently's classification report and ValueDrift of --rows
              probabilities against 50,000 holdout scores (sampled like the drift report)
  join        performance.labeled_predictions (the log's needed columns joined with the labels) +
              performance.by_version_and_arm (PR-AUC, ROC-AUC, ... on every joined row)
  scoring     scoring.score_chunks + prediction_writer.write_batch: --rows rows with their features
              read from Parquet in batches of CHUNK_ROWS, scored by the model (on both cores, as
              score_days has it) and written as one batch file of the log
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import isolated

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("drift", "prediction", "join", "scoring")
LIMIT_S, LIMIT_MB = 60.0, 2048.0
FIRST = dt.date(2026, 10, 1)
MONITOR_DAYS, PERFORMANCE_DAYS = 3, 7
AS_OF = FIRST + dt.timedelta(days=PERFORMANCE_DAYS - 1)
SEED = 42
FEATURES = {  # the fraud use case's stored features (usecases/fraud/feature_repo)
    "card_txn_count_1d": "int",
    "card_txn_count_7d": "int",
    "card_avg_amount_7d": "float",
    "card_std_amount_7d": "float",
    "card_max_amount_7d": "float",
    "card_online_share_7d": "float",
    "card_country_count_7d": "int",
    "merchant_txn_count_7d": "int",
    "merchant_avg_amount_7d": "float",
}


# --- synthetic inputs -------------------------------------------------------------------------


def events(n: int, day: dt.date, seed: int, features: bool = False):
    """``n`` fraud-use-case events of ``day`` as an Arrow table (ids as strings, no Python object each)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from usecases import fraud

    rng = np.random.default_rng(seed)

    def ids(prefix: str, values):
        return pc.binary_join_element_wise(prefix, pa.array(values).cast(pa.string()), "")

    def category(values: tuple[str, ...], weights=None):
        idx = rng.choice(len(values), size=n, p=weights)
        return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(values)).dictionary_decode()

    start = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1_000_000)
    stamps = start + np.sort(rng.integers(0, 86_400_000_000, n))
    columns = {
        "transaction_id": ids(f"t{day:%m%d}-{seed}-", np.arange(n)),
        "card_id": ids("c", rng.integers(0, 200_000, n)),
        "merchant_id": ids("m", rng.integers(0, 2_000, n)),
        "amount": np.round(rng.lognormal(3.5, 1.0, n), 2),
        "merchant_category": category(fraud.MERCHANT_CATEGORIES),
        "country": category(fraud.COUNTRIES, [0.5, *[0.5 / 9] * 9]),
        "channel": category(fraud.CHANNELS),
        "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
    }
    if features:
        for name, kind in FEATURES.items():
            values = rng.gamma(2.0, 20.0, n) if kind == "float" else rng.integers(0, 30, n)
            columns[name] = np.where(rng.random(n) < 0.05, np.nan, values) if kind == "float" else values
    return pa.table(columns)


def split(rows: int, parts: int) -> list[int]:
    return [rows // parts + (1 if i < rows % parts else 0) for i in range(parts)]


def publish(zone: str, dataset: str, day: dt.date, table) -> None:
    import io

    import pyarrow.parquet as pq

    from lifecycle import lake

    buf = io.BytesIO()
    pq.write_table(table, buf)
    lake.publish(lake.partition(zone, dataset, day), {"data.parquet": buf.getvalue()}, {"rows": table.num_rows})


def prepare(rows: int, state: Path) -> dict:
    """Every figure's inputs under ``state`` (LIFECYCLE_STATE_DIR is set to it)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import xgboost

    from lifecycle import (
        columnar,
        contract,
        modeling,
        monitoring,
        prediction_log,
        prediction_writer,
        pseudonym,
        settings,
    )

    cfg = settings.load()
    uc = contract.current(cfg)
    rng = np.random.default_rng(SEED)
    # drift: the monitor window's curated events, and a training snapshot to compare with
    for i, n in enumerate(split(rows, MONITOR_DAYS)):
        day = AS_OF - dt.timedelta(days=MONITOR_DAYS - 1 - i)
        publish("curated", uc.events, day, events(n, day, SEED + i))
    # the champion's training part as the monitor reads it: at most monitoring.REFERENCE_READ_ROWS, over
    # 30 days (its windows calibrate the drift thresholds)
    span = [FIRST - dt.timedelta(days=40 - i) for i in range(30)]
    sizes = split(min(rows, monitoring.REFERENCE_READ_ROWS), len(span))
    parts = [events(n, day, SEED + 100 + i) for i, (n, day) in enumerate(zip(sizes, span, strict=True))]
    pq.write_table(pa.concat_tables(parts), state / "reference.parquet")
    # the model: XGBoost on the fraud inputs of 50,000 labeled events
    train = events(50_000, FIRST - dt.timedelta(days=20), SEED - 2, features=True).to_pandas()
    numeric = modeling.numeric_columns(uc, train.columns)
    X = modeling.model_frame(uc, train, numeric)
    logit = -5 + 0.8 * np.log(train["amount"]) - 1.5 * (train["channel"] == "online") + rng.normal(0, 1, len(train))
    y = (rng.random(len(train)) < 1 / (1 + np.exp(-logit))).astype(int)
    prep = modeling.preprocessor(numeric, list(uc.categoricals)).fit(X)
    estimator = xgboost.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, random_state=SEED)
    model = modeling.LifecycleModel(prep, estimator.fit(prep.transform(X), y), numeric, "xgboost", uc)
    import pickle

    (state / "model.pkl").write_bytes(pickle.dumps(model))
    # scoring: --rows events with their stored features (one day's file)
    pq.write_table(events(rows, AS_OF, SEED + 10, features=True), state / "score_frame.parquet")
    # join: a 7-day prediction log (batch files) and a label for every event
    served = dt.datetime.combine(AS_OF, dt.time(23), dt.UTC)
    for i, n in enumerate(split(rows, PERFORMANCE_DAYS)):
        day = FIRST + dt.timedelta(days=i)
        frame = events(n, day, SEED + 100 + i, features=True).to_pandas(types_mapper=columnar.arrow_strings)
        p = rng.beta(0.6, 12.0, n)
        label = (rng.random(n) < p).astype("int64")
        chunks = [
            prediction_log.rows(
                uc,
                "batch-v1-",
                {c: frame[c].iloc[a : a + 500_000] for c in uc.keys},
                model.inputs(frame.iloc[a : a + 500_000]),
                p[a : a + 500_000],
                "1",
                "champion",
                0.01,
                served,
                "batch",
                pseudonym.of(cfg),
                arrays=True,
            )
            for a in range(0, n, 500_000)
        ]
        prediction_writer.write_batch(cfg, day, "1", "champion", iter(chunks))
        labels = pa.table(
            {
                uc.id: pa.array(frame[uc.id]),
                uc.label: label,
                uc.labeled_at: pa.array(frame[uc.time]).cast(pa.timestamp("us", tz="UTC")),
            }
        )
        publish("curated", uc.labels, day, labels)
    return {"log_files": PERFORMANCE_DAYS, "monitor_days": MONITOR_DAYS}


# --- the figures, each run in its own process ------------------------------------------------


def figure_drift(rows: int, state: Path) -> dict:
    import pandas as pd

    from lifecycle import monitoring, reports, settings

    cfg = settings.load()
    reference = pd.read_parquet(state / "reference.parquet")
    before_mb = isolated.status_mb("VmRSS")  # imports and inputs: in the peak too
    start = time.perf_counter()
    current, days = monitoring.current_window(AS_OF, cfg)
    read_s = time.perf_counter() - start
    snapshot, metrics, summary = monitoring.compare(reference, current, cfg)
    del current
    reports.publish_evidently(snapshot, summary, metrics, f"drift/{days[-1]}")
    return {
        "seconds": time.perf_counter() - start,
        "rss_before_mb": before_mb,
        "read_seconds": read_s,
        "sample": {k: summary[k] for k in summary if k.endswith(("_rows", "_compared")) or k == "sample_seed"},
        "drift_share": summary["drift_share"],
    }


def figure_prediction(rows: int, state: Path) -> dict:
    import numpy as np
    import pandas as pd

    from lifecycle import performance, settings

    cfg = settings.load()
    rng = np.random.default_rng(SEED)

    def scored(n: int) -> pd.DataFrame:
        p = rng.beta(0.6, 12.0, n)
        return pd.DataFrame({performance.LABEL: (rng.random(n) < p).astype("int64"), performance.PROBA: p})

    current, reference = scored(rows), scored(50_000)
    threshold = float(np.quantile(current[performance.PROBA], 1 - cfg.alert_rate))
    summary = {"as_of": AS_OF.isoformat(), "champion": {"alert_threshold": threshold}}
    before_mb = isolated.status_mb("VmRSS")  # imports and inputs: in the peak too
    start = time.perf_counter()
    performance.publish(summary, current, reference, cfg)
    return {
        "seconds": time.perf_counter() - start,
        "rss_before_mb": before_mb,
        "sample": summary["report_rows"],
        "prediction_drift": summary["prediction_drift"],
    }


def figure_join(rows: int, state: Path) -> dict:
    from lifecycle import performance, settings

    cfg = settings.load()
    before_mb = isolated.status_mb("VmRSS")  # imports and inputs: in the peak too
    start = time.perf_counter()
    joined = performance.labeled_predictions(AS_OF, cfg)
    join_s = time.perf_counter() - start
    groups = performance.by_version_and_arm(joined, cfg.alert_rate)
    champion = groups["1/champion"]
    return {
        "seconds": time.perf_counter() - start,
        "rss_before_mb": before_mb,
        "join_seconds": join_s,
        "rows": len(joined),
        "metrics": {k: champion[k] for k in ("labels", "pr_auc", "roc_auc", "brier", "ece")},
    }


def figure_scoring(rows: int, state: Path) -> dict:
    import pickle

    import pyarrow.parquet as pq

    from lifecycle import columnar, contract, prediction_writer, scoring, settings
    from lifecycle.aliases import CHAMPION

    cfg = settings.load()
    uc = contract.current(cfg)
    model = pickle.loads((state / "model.pkl").read_bytes()).single_threaded().all_cores()  # as score_days has it
    batches = pq.ParquetFile(state / "score_frame.parquet").iter_batches(batch_size=scoring.CHUNK_ROWS)
    # read as scored: never whole
    frames = (batch.to_pandas(types_mapper=columnar.arrow_strings) for batch in batches)
    before_mb = isolated.status_mb("VmRSS")  # imports and inputs: in the peak too
    start = time.perf_counter()
    chunks = scoring.score_chunks(uc, frames, model, "1", CHAMPION)
    path = prediction_writer.write_batch(
        cfg, AS_OF + dt.timedelta(days=30), "1", CHAMPION, chunks
    )  # not the join's days
    seconds = time.perf_counter() - start
    written = pq.read_metadata(path)
    return {
        "seconds": seconds,
        "rss_before_mb": before_mb,
        "rows": written.num_rows,
        "columns": written.num_columns,
        "file_mb": round(Path(path).stat().st_size / 2**20, 1),
    }


def child(name: str, rows: int, state: Path) -> None:
    from lifecycle.platform import env

    env.apply()
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    out = prepare(rows, state) if name == "prepare" else globals()[f"figure_{name}"](rows, state)
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time of the whole figure function (inputs loaded included): on a busy machine, a floor
    # that the wall time would approach with the cores to itself
    out["cpu_seconds"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    out.setdefault("rows", rows)
    print(json.dumps({**out, "peak_mb": isolated.status_mb("VmHWM")}, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    parser.add_argument("--keep", action="store_true", help="keep the state folder (its path is printed)")
    parser.add_argument("--child", choices=("prepare", *FIGURES), help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.rows, args.state)
    (ROOT / ".local" / "bench").mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="scale-", dir=ROOT / ".local" / "bench"))
    try:
        prepared = isolated.run(__file__, "prepare", state, args.rows)
        print(f"inputs of {args.rows:,} rows built in {prepared['process_seconds']:.0f} s under {state}", flush=True)
        results = {}
        for name in args.only:
            results[name] = isolated.run(__file__, name, state, args.rows)
            print(f"{name}: {json.dumps(results[name], default=str)}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    labels = {
        "drift": "data drift (read window + compare + report)",
        "prediction": "prediction drift (classification + ValueDrift)",
        "join": "performance join (log x labels -> metrics)",
        "scoring": "batch scoring (score_chunks + write_batch)",
    }
    print(f"\n{'figure':<48} {'rows':>12} {'seconds':>8} {'peak MB':>8} {'limit':>14}  result")
    for name, r in results.items():
        ok = r["seconds"] < LIMIT_S and r["peak_mb"] < LIMIT_MB
        limit = f"{LIMIT_S:.0f} s, {LIMIT_MB:.0f} MB"
        print(
            f"{labels[name]:<48} {r['rows']:>12,} {r['seconds']:>8.1f} {r['peak_mb']:>8.0f} {limit:>14}  "
            f"{'pass' if ok else 'FAIL'}"
        )
    print("\ndetails:")
    for name, r in results.items():
        print(f"  {name}: {json.dumps({k: v for k, v in r.items() if k not in ('seconds', 'peak_mb')}, default=str)}")
    print(
        f"\n{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end, "
        f"python {platform.python_version()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )


if __name__ == "__main__":
    main()
