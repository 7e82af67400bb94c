"""The training set and each candidate's fit at scale, side by side with their limits.

    .local/venv/bin/python bench/training.py                   # 1,000,000 and 10,000,000 labeled rows
    .local/venv/bin/python bench/training.py --rows 20000      # a quick run (make bench-smoke)
    .local/venv/bin/python bench/training.py --rows 1000000 --dask   # also Feast's Dask/File store's join

For each size it builds, in a temporary state folder (removed at the end unless --keep), DAYS
curated days of seeded fraud-shaped events (2% of them a card's second event in the same second),
a label for every event (known the same day), the daily card and merchant snapshot tables every
entity of the day's 7-day window is in (seeded values: the join, not the aggregation, is measured
here), and Feast's registry. Then each figure runs in its own Python process, so its peak memory
(VmHWM, imports included) is its own:

  training_set  training.build_training_set: curated events joined with their labels, the
                point-in-time join through Feast (lifecycle.lake_offline_store: Feast's DuckDB
                store over the lake) with its per-view check, the time split, both parts written
  <flavour>     training.train_candidate for each fraud candidate: the training set read, the fit
                on at most LIFECYCLE_MAX_FIT_ROWS rows (a seeded sample), the holdout scored whole,
                everything logged to MLflow
  dask          with --dask: the same rows through Feast's Dask/File store (the store this project
                used before): its seconds, peak memory and how many rows it returned
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
DAYS = 30
FIRST = dt.date(2026, 9, 1)
SEED = 42
CARDS, MERCHANTS = 200_000, 2_000
SAME_SECOND = 0.02
LIMITS = {"training_set": (120.0, 6144.0)}  # the goal for 10M rows on 2 cores
FIT_LIMIT = (300.0, 6144.0)  # a candidate: bounded by MAX_FIT_ROWS (2,000,000 by default)
SIZES = (1_000_000, 10_000_000)


def day_events(n: int, day: dt.date, seed: int):
    """``n`` seeded events of ``day`` (time order) with their labels, as Arrow tables."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from usecases import fraud

    rng = np.random.default_rng(seed)
    start = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
    seconds = np.sort(rng.integers(0, 86_400, n))
    cards = rng.integers(0, CARDS, n)
    again = np.flatnonzero(rng.random(n) < SAME_SECOND)
    again = again[again > 0]
    seconds[again], cards[again] = seconds[again - 1], cards[again - 1]  # a card's second use in one second
    merchants = rng.integers(0, MERCHANTS, n)
    channel = rng.choice(len(fraud.CHANNELS), n, p=[0.5, 0.35, 0.15])
    amount = np.round(rng.lognormal(3.5, 1.0, n), 2)
    logit = -5.0 + 0.5 * np.log(amount) + 1.2 * (channel == 1) + rng.normal(0, 1, n)
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")

    def ids(prefix: str, values):
        return pc.binary_join_element_wise(prefix, pa.array(values).cast(pa.string()), "")

    def category(values, idx):
        return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(values)).dictionary_decode()

    times = pa.array((start + seconds) * 1_000_000, pa.timestamp("us", tz="UTC"))
    tx_ids = ids(f"t{day:%m%d}-", np.arange(n))
    events = pa.table(
        {
            "transaction_id": tx_ids,
            "card_id": ids("c", cards),
            "merchant_id": ids("m", merchants),
            "amount": amount,
            "merchant_category": category(fraud.MERCHANT_CATEGORIES, rng.integers(0, 8, n)),
            "country": category(fraud.COUNTRIES, rng.choice(10, n, p=[0.5, *[0.5 / 9] * 9])),
            "channel": category(fraud.CHANNELS, channel),
            "event_timestamp": times,
        }
    )
    labels = pa.table({"transaction_id": tx_ids, "is_fraud": label, "labeled_at": times})
    return events, labels, np.unique(cards), np.unique(merchants)


def snapshot(keys, key: str, prefix: str, columns: dict[str, str], day: dt.date, seed: int):
    """A seeded snapshot of ``keys`` stamped at the end of ``day``, with the view's columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    n = len(keys)
    table = {key: pc.binary_join_element_wise(prefix, pa.array(keys).cast(pa.string()), "")}
    for name, kind in columns.items():
        table[name] = rng.integers(1, 30, n) if kind == "int" else rng.gamma(2.0, 20.0, n)
    stamp = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    table["event_timestamp"] = pa.array([stamp] * n, pa.timestamp("us", tz="UTC"))
    return pa.table(table)


def publish(zone: str, dataset: str, day: dt.date, table) -> None:
    import io

    import pyarrow.parquet as pq

    from lifecycle import lake

    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    lake.publish(
        lake.partition(zone, dataset, day),
        {"data.parquet": data},
        {"rows": table.num_rows, "data_sha256": lake.sha256(data), "date": day.isoformat()},
    )


def prepare(rows: int, state: Path) -> dict:
    """Every figure's inputs under ``state`` (LIFECYCLE_STATE_DIR is set to it)."""
    import numpy as np

    from lifecycle import contract, features
    from lifecycle.feature_store import get_store

    uc = contract.current()
    card_cols = {
        "card_txn_count_1d": "int",
        "card_txn_count_7d": "int",
        "card_avg_amount_7d": "float",
        "card_std_amount_7d": "float",
        "card_max_amount_7d": "float",
        "card_online_share_7d": "float",
        "card_country_count_7d": "int",
    }
    merchant_cols = {"merchant_txn_count_7d": "int", "merchant_avg_amount_7d": "float"}
    seen: list[tuple] = []
    for i in range(DAYS):
        day = FIRST + dt.timedelta(days=i)
        n = rows // DAYS + (1 if i < rows % DAYS else 0)
        events, labels, cards, merchants = day_events(n, day, SEED + i)
        publish("curated", uc.events, day, events)
        publish("curated", uc.labels, day, labels)
        seen = [*seen[-6:], (cards, merchants)]  # the 7-day window's entities
        window_cards = np.unique(np.concatenate([c for c, _ in seen]))
        window_merchants = np.unique(np.concatenate([m for _, m in seen]))
        publish("features", "card_stats", day, snapshot(window_cards, "card_id", "c", card_cols, day, SEED + 1000 + i))
        publish(
            "features",
            "merchant_stats",
            day,
            snapshot(window_merchants, "merchant_id", "m", merchant_cols, day, SEED + 2000 + i),
        )
    features.apply_definitions(get_store())
    return {"days": DAYS}


def cutoff():
    import pandas as pd

    return pd.Timestamp(FIRST + dt.timedelta(days=DAYS), tz="UTC")


def figure_training_set(state: Path) -> dict:
    from lifecycle import training

    start = time.perf_counter()
    info = training.build_training_set("bench", cutoff())
    seconds = time.perf_counter() - start
    (state / "training_set.json").write_text(json.dumps(info))
    return {
        "seconds": seconds,
        "rows": info["train_rows"] + info["holdout_rows"],
        "no_feature_rows": info["no_feature_rows"],
        "digest": info["digest"],
    }


def figure_candidate(flavour: str, state: Path) -> dict:
    from lifecycle import settings, training

    info = json.loads((state / "training_set.json").read_text())
    parent = training.start_parent_run(f"bench_{flavour}", info, "bench")
    start = time.perf_counter()
    result = training.train_candidate(flavour, info, parent, seed=SEED)
    return {
        "seconds": time.perf_counter() - start,
        "rows": info["train_rows"],
        "fit_rows": min(info["train_rows"], settings.load().max_fit_rows),
        "fit_seconds": round(result["metrics"]["fit_seconds"], 1),
        "pr_auc": round(result["metrics"]["pr_auc"], 4),
    }


def figure_dask(state: Path) -> dict:
    """The labeled rows through Feast's Dask/File store (the store used before), as it was called."""
    from feast.infra.offline_stores.dask import DaskOfflineStore, DaskOfflineStoreConfig

    from lifecycle import contract, lake_offline_store, training
    from lifecycle.feature_store import get_store

    uc = contract.current()
    rows = training.labeled_events(cutoff())
    store = get_store()
    config = store.config.model_copy()
    config._offline_store = DaskOfflineStoreConfig()
    service = store.get_feature_service(uc.feature_service)
    views = [
        lake_offline_store.located_view(store.config, store.get_feature_view(p.name))
        for p in service.feature_view_projections
    ]
    refs = [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features]
    start = time.perf_counter()
    got = DaskOfflineStore.get_historical_features(
        config, views, refs, rows[list(uc.keys)], store.registry, store.project
    ).to_df()
    return {"seconds": time.perf_counter() - start, "rows": len(rows), "returned_rows": len(got)}


def child(name: str, state: Path, rows: int) -> None:
    from lifecycle.platform import env

    env.apply()
    if name == "prepare":
        out = prepare(rows, state)
    elif name in ("training_set", "dask"):
        out = globals()[f"figure_{name}"](state)
    else:
        out = figure_candidate(name, state)
    print(json.dumps({**out, "peak_mb": isolated.status_mb("VmHWM")}, default=str))


def measure(rows: int, only: list[str] | None, dask: bool, keep: bool) -> list[tuple[str, dict]]:
    from lifecycle import contract

    (ROOT / ".local" / "bench").mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="training-", dir=ROOT / ".local" / "bench"))
    out = []
    try:
        prepared = isolated.run(__file__, "prepare", state, rows)
        print(f"{rows:,} rows: inputs built in {prepared['process_seconds']:.0f} s under {state}", flush=True)
        names = ["training_set", *contract.current().candidates]
        for name in [n for n in names if not only or n in only] + (["dask"] if dask else []):
            out.append((name, isolated.run(__file__, name, state, rows)))
            print(f"  {name}: {json.dumps(out[-1][1], default=str)}", file=sys.stderr, flush=True)
    finally:
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES), help="labeled rows (one run each)")
    parser.add_argument("--only", nargs="+", help="these figures alone (training_set and/or candidate flavours)")
    parser.add_argument("--dask", action="store_true", help="also run Feast's Dask/File store's join")
    parser.add_argument("--keep", action="store_true", help="keep the state folders (their paths are printed)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.state, args.rows[0])
    results = [(rows, name, r) for rows in args.rows for name, r in measure(rows, args.only, args.dask, args.keep)]
    failed = False
    print(f"\n{'figure':<28} {'rows':>12} {'seconds':>8} {'peak MB':>8} {'limit':>16}  result")
    for _rows, name, r in results:
        limit = LIMITS.get(name, FIT_LIMIT if name != "dask" else None)
        ok = limit is None or (r["seconds"] <= limit[0] and r["peak_mb"] <= limit[1])
        failed |= not ok
        shown = f"{limit[0]:.0f} s, {limit[1]:.0f} MB" if limit else "-"
        verdict = "pass" if ok and limit else ("-" if limit is None else "FAIL")
        print(f"{name:<28} {r['rows']:>12,} {r['seconds']:>8.1f} {r['peak_mb']:>8.0f} {shown:>16}  {verdict}")
    print("\ndetails:")
    for rows, name, r in results:
        print(f"  {rows:,} {name}: {json.dumps({k: v for k, v in r.items() if k not in ('seconds', 'peak_mb')})}")
    print(
        f"\n{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end, "
        f"python {platform.python_version()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )
    if failed:
        raise SystemExit("a figure is over its limit")


if __name__ == "__main__":
    main()
