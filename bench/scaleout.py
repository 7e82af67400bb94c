"""Scale-out profile figures: the loop under Celery vs Local, Feast materialization into Redis, online latency.

Runs against this machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379); every scale-out
measurement runs in a fresh ``lifecycle.devtools.sandbox.scaleout`` deployment (own databases, Redis database,
moto S3 server and bucket) that is removed afterwards. Each measurement runs in its own Python
process, so no environment or module state leaks between profiles; state lives under .local/bench/.

    .local/venv/bin/python bench/scaleout.py --out .local/bench/scaleout.json
    .local/venv/bin/python bench/scaleout.py --only materialize online --entities 100000
    .local/venv/bin/python bench/scaleout.py --smoke     # CI's check that it still runs (~30 s)

loop         demo.run(normal, drifted) on the embedded profile (LocalExecutor, SQLite) and then on
             the scale-out profile (CeleryExecutor, PostgreSQL, Redis, S3): wall time, per-DAG run
             times, peak memory of the deployment's processes, scale-out / embedded ratios.
materialize  one card_stats snapshot partition with N distinct cards published to the S3 lake, then
             FeatureStore.materialize of that day into Redis: seconds, entities/s, Redis keys, peak RSS.
online       single-entity get_online_features from Redis: the feature service (with its on-demand
             view) and the plain stored views; p50/p90/p99/max ms.
--smoke      (make bench-smoke) measures nothing: the loop's child checks that demo.run, demo.check and
             the sandbox still take what it passes them (two whole demos are ~25 min), then materialize
             and online run for real at SMOKE_ENTITIES cards and SMOKE_REQUESTS calls; exit 1 on a failure.
The JSON result goes to stdout (progress and the children's logs to stderr) and, with --out, to a file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".local" / "bench"
STEPS = ("loop", "materialize", "online")
DAY = dt.date(2026, 10, 1)  # the snapshot day of the materialize/online data
N_MERCHANTS = 2000
SMOKE_ENTITIES, SMOKE_REQUESTS, SMOKE_WARMUP = 5000, 200, 20  # --smoke's sizes
# Settings that say where a deployment lives: a child starts without them (the sandbox or the
# embedded defaults decide), so a shell with a scale-out environment exported cannot leak into it.
LOCATION_KEYS = (
    "LIFECYCLE_PROFILE",
    "LIFECYCLE_STATE_DIR",
    "LIFECYCLE_LAKE_ROOT",
    "LIFECYCLE_MLFLOW_TRACKING_URI",
    "LIFECYCLE_MLFLOW_ARTIFACT_ROOT",
    "LIFECYCLE_POSTGRES_URL",
    "LIFECYCLE_DB_PREFIX",
    "LIFECYCLE_REDIS_URL",
    "LIFECYCLE_S3_ENDPOINT_URL",
    "LIFECYCLE_S3_BUCKET",
    "LIFECYCLE_S3_ACCESS_KEY",
    "LIFECYCLE_S3_SECRET_KEY",
    "LIFECYCLE_MLFLOW_URL",
    "LIFECYCLE_AIRFLOW_PORT",
)
VIEW_FEATURES = [
    "card_stats:card_txn_count_1d",
    "card_stats:card_txn_count_7d",
    "card_stats:card_avg_amount_7d",
    "card_stats:card_std_amount_7d",
    "card_stats:card_max_amount_7d",
    "card_stats:card_online_share_7d",
    "card_stats:card_country_count_7d",
    "merchant_stats:merchant_txn_count_7d",
    "merchant_stats:merchant_avg_amount_7d",
]


def log(msg: str) -> None:
    print(f"[scaleout-bench] {msg}", file=sys.stderr, flush=True)


def _mb(kb: float) -> float:
    return round(kb / 1024, 1)


def _proc_status(field: str) -> float | None:
    """A ``/proc/self/status`` figure in kB (VmRSS, VmHWM), None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux clear_refs 5), so a later VmHWM is the peak since now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- children (one process each)


def child_loop(profile: str, normal_days: int, drifted_days: int) -> dict:
    """demo.run on one profile; runs in its own process (see ``run_child``)."""
    from lifecycle.devtools import demo, sandbox

    state = BENCH / f"loop-{profile}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    t0 = time.monotonic()
    if profile == "scaleout":
        with sandbox.scaleout(state):
            summary = demo.run(normal_days, drifted_days)
    else:
        os.environ.update(
            {
                "LIFECYCLE_PROFILE": "embedded",
                "LIFECYCLE_STATE_DIR": str(state),
                "LIFECYCLE_AIRFLOW_PORT": str(sandbox.free_port(span=4)),
            }
        )
        summary = demo.run(normal_days, drifted_days)
    dags = {
        d: {"runs": e["runs"], "max_seconds": e["max_seconds"], "total_seconds": e["total_seconds"]}
        for d, e in summary["dags"].items()
    }
    return {
        "profile": profile,
        "executor": "CeleryExecutor" if profile == "scaleout" else "LocalExecutor",
        "normal_days": normal_days,
        "drifted_days": drifted_days,
        "wall_seconds": summary["wall_seconds"],
        "process_seconds": round(time.monotonic() - t0, 1),  # + sandbox set-up/teardown, imports
        "dag_max_seconds": max((e["max_seconds"] for e in dags.values()), default=0),
        "dag_total_seconds": round(sum(e["total_seconds"] for e in dags.values()), 1),
        "dags": dags,
        "airflow_peak_memory_mb": summary["airflow_peak_memory_mb"],
        "model_versions": len(summary["model_versions"]),
        "problems": demo.check(summary),
    }


def child_loop_check(normal_days: int, drifted_days: int) -> dict:
    """--smoke: what ``child_loop`` calls takes what it passes (the loop itself is not run)."""
    import inspect

    from lifecycle.devtools import demo, sandbox

    inspect.signature(demo.run).bind(normal_days, drifted_days)
    inspect.signature(sandbox.scaleout).bind(BENCH / "loop-scaleout")
    inspect.signature(sandbox.free_port).bind(span=4)
    inspect.signature(demo.check).bind({})
    return {"checked": ["demo.run", "demo.check", "sandbox.scaleout", "sandbox.free_port"], "ran": False}


def card_stats_frame(n: int, day: dt.date, seed: int = 7):
    """N distinct cards with plausible card_stats aggregates, stamped at the end of ``day``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    count_7d = rng.poisson(6, n).astype("int64") + 1
    avg = np.round(np.exp(rng.normal(3.6, 0.6, n)), 2)
    std = np.where(count_7d > 1, np.round(avg * rng.uniform(0.05, 0.8, n), 2), 0.0)
    return pd.DataFrame(
        {
            "card_id": [f"c{i:07d}" for i in range(n)],
            "card_txn_count_1d": rng.binomial(count_7d, 1 / 7).astype("int64"),
            "card_txn_count_7d": count_7d,
            "card_avg_amount_7d": avg,
            "card_std_amount_7d": std,
            "card_max_amount_7d": np.round(avg + std * rng.uniform(0, 2, n), 2),
            "card_online_share_7d": np.round(rng.uniform(0, 1, n), 3),
            "card_country_count_7d": rng.integers(1, 4, n).astype("int64"),
            "event_timestamp": pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1),
        }
    )


def merchant_stats_frame(n: int, day: dt.date, seed: int = 8):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "merchant_id": [f"m{i:04d}" for i in range(n)],
            "merchant_txn_count_7d": rng.poisson(50, n).astype("int64") + 1,
            "merchant_avg_amount_7d": np.round(np.exp(rng.normal(3.6, 0.5, n)), 2),
            "event_timestamp": pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1),
        }
    )


def check_like_snapshot(frames: dict, day: dt.date) -> None:
    """Columns and dtypes must be exactly what ``features.snapshot`` writes for the same day."""
    import pandas as pd

    from lifecycle import contract, features

    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=12)
    curated = pd.DataFrame(
        {
            "card_id": ["c1", "c1", "c2"],
            "merchant_id": ["m1", "m2", "m1"],
            "amount": [10.0, 20.0, 30.0],
            "channel": ["online", "pos", "pos"],
            "country": ["US", "DE", "US"],
            "event_timestamp": [end] * 3,
        }
    )
    reference = features.snapshot(curated, day, contract.current())
    for name, frame in frames.items():
        ref = reference[name]
        if list(frame.columns) != list(ref.columns) or not frame.dtypes.equals(ref.dtypes):
            raise RuntimeError(
                f"{name}: bench frame {dict(frame.dtypes.astype(str))} differs from "
                f"features.snapshot's {dict(ref.dtypes.astype(str))}"
            )
        if frame["event_timestamp"].iloc[0] != ref["event_timestamp"].iloc[0]:
            raise RuntimeError(
                f"{name}: event_timestamp {frame['event_timestamp'].iloc[0]} is not the snapshot's "
                f"{ref['event_timestamp'].iloc[0]}"
            )


def materialize_view(store, view: str, day: dt.date) -> float:
    """FeatureStore.materialize of one view over the day's snapshot stamp; returns seconds."""
    import pandas as pd

    stamp = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    t = time.perf_counter()
    store.materialize(
        start_date=pd.Timestamp(day, tz="UTC").to_pydatetime(),
        end_date=(stamp + pd.Timedelta(minutes=1)).to_pydatetime(),
        feature_views=[view],
    )
    return time.perf_counter() - t


def redis_figures(svc, sample: int = 1000) -> dict:
    import redis

    client = redis.Redis.from_url(svc.redis_url)
    keys = []
    for key in client.scan_iter(match=b"*fraud_lifecycle", count=1000):
        keys.append(key)
        if len(keys) >= sample:
            break
    sizes = [client.memory_usage(k) or 0 for k in keys]
    return {
        "redis_keys_after": client.dbsize(),
        "redis_bytes_per_key_sampled": round(sum(sizes) / len(sizes)) if sizes else None,
    }


def latency(call, rows: list[dict], warmup: int, check) -> dict:
    """Time ``call(row)`` per row after ``warmup`` calls whose results pass ``check``."""
    import numpy as np

    for row in rows[:warmup]:
        check(call(row))
    timings = []
    for row in rows[warmup:]:
        t = time.perf_counter_ns()
        call(row)
        timings.append((time.perf_counter_ns() - t) / 1e6)
    ms = np.array(timings)
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "requests": len(ms),
        "p50_ms": round(p50, 3),
        "p90_ms": round(p90, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def child_features(steps: list[str], entities: int, online_entities: int, requests: int, warmup: int) -> dict:
    """materialize and/or online in one sandbox; runs in its own process (see ``run_child``)."""
    import gc
    import random

    from lifecycle import contract, features
    from lifecycle import settings as _settings
    from lifecycle.devtools import sandbox
    from lifecycle.platform import env, services

    state = BENCH / "features"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    n = entities if "materialize" in steps else online_entities
    out: dict = {}
    with sandbox.scaleout(state):
        env.apply()  # S3 credentials for Feast/pyarrow, the lake's Airflow connection
        services.create_databases()  # the Feast SQL registry lives in <prefix>_feast
        from lifecycle.feature_store import get_store

        svc = _settings.load().services
        log(f"building a card_stats partition with {n:,} cards and merchant_stats with {N_MERCHANTS:,} merchants")
        t = time.perf_counter()
        cards, merchants = card_stats_frame(n, DAY), merchant_stats_frame(N_MERCHANTS, DAY)
        check_like_snapshot({"card_stats": cards, "merchant_stats": merchants}, DAY)
        card_ids = cards["card_id"].tolist()
        parquet_bytes = features.publish_snapshot("card_stats", cards, DAY, "bench/scaleout.py")
        features.publish_snapshot("merchant_stats", merchants, DAY, "bench/scaleout.py")
        del cards, merchants
        gc.collect()
        prepare_seconds = time.perf_counter() - t
        store = get_store()
        features.apply_definitions(store)

        log(f"materializing card_stats ({n:,} entities) into Redis db {svc.redis_db}")
        rss_before = _proc_status("VmRSS")
        reset = _reset_peak_rss()
        seconds = materialize_view(store, "card_stats", DAY)
        hwm = _proc_status("VmHWM") if reset else None
        figures = {
            "entities": n,
            "seconds": round(seconds, 2),
            "entities_per_s": round(n / seconds),
            **redis_figures(svc),
            "parquet_mb": round(parquet_bytes / 2**20, 1),
            "prepare_seconds": round(prepare_seconds, 1),  # generate + publish to S3 (not in `seconds`)
            "rss_before_mb": _mb(rss_before) if rss_before else None,
            "materialize_peak_rss_mb": _mb(hwm) if hwm else None,  # VmHWM reset just before materialize
            "peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),  # whole process
        }
        merchant_seconds = materialize_view(store, "merchant_stats", DAY)
        figures["merchant_stats"] = {"entities": N_MERCHANTS, "seconds": round(merchant_seconds, 2)}
        out["materialize" if "materialize" in steps else "online_setup"] = figures
        log(f"materialize: {figures['entities_per_s']:,} entities/s ({figures['seconds']} s)")

        if "online" in steps:
            service = store.get_feature_service(contract.current().feature_service)
            rnd = random.Random(11)
            total = warmup + requests
            rows = [
                {"card_id": rnd.choice(card_ids), "merchant_id": f"m{rnd.randrange(N_MERCHANTS):04d}", "amount": 42.0}
                for _ in range(total)
            ]

            def found(names):
                def check(response):
                    values = response.to_dict()
                    missing = [k for k in names if values[k][0] is None]
                    if missing:
                        raise RuntimeError(f"online features missing for a known entity: {missing}")

                return check

            log(f"online latency: {warmup} warm-up + {requests} single-entity calls per variant")
            out["online"] = {
                "entities_in_store": n,
                "feature_service": {
                    "features": f"{contract.current().feature_service} (card_stats, merchant_stats), as served",
                    **latency(
                        lambda row: store.get_online_features(features=service, entity_rows=[row]),
                        rows,
                        warmup,
                        found(["card_avg_amount_7d", "merchant_avg_amount_7d"]),
                    ),
                },
                "plain_views": {
                    "features": f"{len(VIEW_FEATURES)} stored features of card_stats and merchant_stats",
                    **latency(
                        lambda row: store.get_online_features(
                            features=VIEW_FEATURES,
                            entity_rows=[{"card_id": row["card_id"], "merchant_id": row["merchant_id"]}],
                        ),
                        rows,
                        warmup,
                        found(["card_avg_amount_7d", "merchant_avg_amount_7d"]),
                    ),
                },
            }
            fs, pv = out["online"]["feature_service"], out["online"]["plain_views"]
            out["online"]["service_share_p50"] = round(1 - pv["p50_ms"] / fs["p50_ms"], 2) if fs["p50_ms"] else None
    return out


# ---------------------------------------------------------------- parent


def run_child(name: str, args: list[str], env: dict[str, str]) -> dict:
    """This script in a fresh interpreter (``--child``); its stdout goes to our stderr, its result
    comes back through a file."""
    result = BENCH / f"{name}.result.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--result", str(result), *args]
    t = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=sys.stderr.fileno(), stderr=sys.stderr.fileno())
    if done.returncode != 0 or not result.exists():
        return {
            "error": f"child {name!r} exited with {done.returncode} after {time.monotonic() - t:.0f} s "
            "(its log is above, on stderr)"
        }
    return json.loads(result.read_text())


def child_env() -> dict[str, str]:
    from lifecycle.platform import env as _env  # settings only: no Airflow import in the parent

    drop = set(LOCATION_KEYS) | set(_env.PROFILE_KEYS)
    return {k: v for k, v in os.environ.items() if k not in drop}


def machine() -> dict:
    from importlib.metadata import version

    info = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    for pkg in ("apache-airflow", "feast", "redis"):
        info[pkg] = version(pkg)
    try:
        import redis

        info["redis_server"] = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).info("server")[
            "redis_version"
        ]
    except Exception as err:  # informational only
        info["redis_server"] = f"unreachable: {err}"
    return info


def ratios(embedded: dict, scaleout: dict) -> dict:
    def ratio(a, b):
        return round(a / b, 2) if a and b else None

    return {
        "wall_seconds": ratio(scaleout.get("wall_seconds"), embedded.get("wall_seconds")),
        "dag_total_seconds": ratio(scaleout.get("dag_total_seconds"), embedded.get("dag_total_seconds")),
        "dag_max_seconds": ratio(scaleout.get("dag_max_seconds"), embedded.get("dag_max_seconds")),
        "peak_pss_mb": ratio(
            (scaleout.get("airflow_peak_memory_mb") or {}).get("pss"),
            (embedded.get("airflow_peak_memory_mb") or {}).get("pss"),
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=STEPS,
        default=list(STEPS),
        metavar="STEP",
        help=f"measurements to run, of {', '.join(STEPS)} (default: all)",
    )
    parser.add_argument("--normal-days", type=int, default=8, help="loop: normal days (default 8)")
    parser.add_argument("--drifted-days", type=int, default=3, help="loop: drifted days (default 3)")
    parser.add_argument(
        "--entities",
        type=int,
        default=1_000_000,
        help="materialize: distinct cards in the snapshot (default 1,000,000)",
    )
    parser.add_argument(
        "--online-entities",
        type=int,
        default=100_000,
        help="online without materialize: cards materialized first (default 100,000)",
    )
    parser.add_argument("--requests", type=int, default=2000, help="online: timed calls per variant (default 2000)")
    parser.add_argument("--warmup", type=int, default=100, help="online: untimed calls first (default 100)")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="CI's check that the bench still runs: the loop's calls checked, materialize and online at "
        f"{SMOKE_ENTITIES:,} cards and {SMOKE_REQUESTS} calls (measures nothing)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: one measurement in a fresh process
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("entities", "online_entities", "requests", "normal_days", "drifted_days"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")

    if args.smoke:
        args.only = list(STEPS)
        args.entities, args.requests, args.warmup = SMOKE_ENTITIES, SMOKE_REQUESTS, SMOKE_WARMUP
    if args.child:
        if args.child == "loop-check":
            result = child_loop_check(args.normal_days, args.drifted_days)
        elif args.child.startswith("loop-"):
            result = child_loop(args.child.removeprefix("loop-"), args.normal_days, args.drifted_days)
        elif args.child == "features":
            result = child_features(args.only, args.entities, args.online_entities, args.requests, args.warmup)
        else:
            parser.error(f"unknown child {args.child!r}")
        args.result.write_text(json.dumps(result, indent=2, default=str))
        return

    BENCH.mkdir(parents=True, exist_ok=True)
    steps = [s for s in STEPS if s in args.only]
    out: dict = {"machine": machine()}
    env = child_env()
    if "loop" in steps and args.smoke:
        days = ["--normal-days", str(args.normal_days), "--drifted-days", str(args.drifted_days)]
        log("--smoke: the loop's calls checked, not run")
        out["loop"] = {"check": run_child("loop-check", days, env)}
    elif "loop" in steps:
        days = ["--normal-days", str(args.normal_days), "--drifted-days", str(args.drifted_days)]
        loop = {}
        for profile in ("embedded", "scaleout"):  # sequential: they share the 2 cores
            log(f"loop on the {profile} profile ({args.normal_days} normal + {args.drifted_days} drifted days)")
            loop[profile] = run_child(f"loop-{profile}", days, env)
        loop["scaleout_over_embedded"] = ratios(loop["embedded"], loop["scaleout"])
        out["loop"] = loop
    if "materialize" in steps or "online" in steps:
        feature_steps = [s for s in steps if s != "loop"]
        result = run_child(
            "features",
            [
                "--only",
                *feature_steps,
                "--entities",
                str(args.entities),
                "--online-entities",
                str(args.online_entities),
                "--requests",
                str(args.requests),
                "--warmup",
                str(args.warmup),
            ],
            env,
        )
        out.update({s: result for s in feature_steps} if "error" in result else result)
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    failed = [k for k, v in out.items() if isinstance(v, dict) and "error" in v]
    failed += [f"loop.{p}" for p in ("embedded", "scaleout", "check") if "error" in out.get("loop", {}).get(p, {})]
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
