"""The live service's speed, side by side with its limit and its goals.

    .local/venv/bin/python bench/serving.py [--seconds 10] [--reuse]
    .local/venv/bin/python bench/serving.py --smoke    # CI's check that it still runs (~1 min)

Builds a small world of its own under .local/bench/serving (six landed, validated, featurized
days and one released XGBoost champion; --reuse keeps one built before), then measures:
  in-process   LiveModel.predict for one row: online features, routing, model, prediction log
               (the code the service runs, without HTTP), and within it the prediction log's
               journal write (each answered request is on local disk before it is answered);
               then the same rows asking for reasons ("explain": true)
  HTTP c=1     the live service (`bentoml serve lifecycle.serving:ModelService`) under wrk with one
               connection, then with 8; single-row POST /predict with the API key, logging on;
               then one connection again with every request asking for reasons
  batch        POST /predict_batch with 1,000 transactions, one connection
The load generator (wrk) shares the machine's cores with the service. Prints a table with the
goals (single row p99 <= 5 ms and >= 500 req/s; batch >= 20,000 rows/s) and the ratio to in-process
(for the explained rows: to the in-process row without reasons).
--smoke (make bench-smoke) runs every step on the same world, but briefly (SMOKE: wrk 1 s after a 1 s
warm-up, 300 in-process calls, 3 batch rounds): it proves the bench runs, its figures measure nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local" / "bench" / "serving"
os.environ["LIFECYCLE_STATE_DIR"] = str(STATE)

from lifecycle.platform import env  # noqa: E402  (after the state folder is chosen)

env.apply()

import world  # noqa: E402

from lifecycle import lake, packaging, prediction_reader, settings  # noqa: E402

DAYS = 6
GOAL_P99_MS, GOAL_RPS, GOAL_BATCH_RPS = 5.0, 500, 20_000
SMOKE = {"seconds": 1, "warmup": 1, "requests": 300, "rounds": 3}  # --smoke

WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json",
                                         ["Authorization"] = "Bearer %s"}, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"errors": %%d}\\n', summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def sample(n: int) -> list[dict]:
    frame = lake.read_parquet(lake.partition("curated", "transactions", world.FIRST + dt.timedelta(days=DAYS))).head(n)
    return packaging.request_bodies(frame)


def row(label: str, p50: float, p99: float, mx: float, rps: float, goal: str, limit_p50: float | None) -> dict:
    return {
        "measurement": label,
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(mx, 3),
        "per_s": round(rps, 1),
        "goal": goal,
        "x_in_process_p50": round(p50 / limit_p50, 1) if limit_p50 else None,
    }


def in_process(bodies: list[dict], n: int) -> list[dict]:
    """``LiveModel.predict`` on one row, and within it the prediction log's journal write (what
    an answered request costs to survive its process: ``prediction_writer``); then explained."""
    from lifecycle.live import LiveModel
    from lifecycle.serving import Request, _columns

    model = LiveModel(settings.load()).start()
    requests = [Request(**b).model_dump() for b in bodies]
    for r in requests[:200]:
        model.predict(_columns([r]))
        model.predict(_columns([r]), [True])
    explained = []
    for i in range(n):
        t = time.perf_counter()
        model.predict(_columns([requests[i % len(requests)]]), [True])
        explained.append((time.perf_counter() - t) * 1000)
    explained.sort()
    timings, appends, append = [], [], model.log.append

    def timed(chunk):
        t = time.perf_counter()
        append(chunk)
        appends.append((time.perf_counter() - t) * 1000)

    model.log.append = timed
    for i in range(n):
        t = time.perf_counter()
        model.predict(_columns([requests[i % len(requests)]]))
        timings.append((time.perf_counter() - t) * 1000)
    model.close()
    timings.sort()
    appends.sort()
    return [
        row(
            "in-process, 1 row (limit)",
            timings[n // 2],
            timings[int(n * 0.99)],
            timings[-1],
            1000 / (sum(timings) / n),
            "-",
            None,
        ),
        row(
            "  of which the prediction log's journal write",
            appends[len(appends) // 2],
            appends[int(len(appends) * 0.99)],
            appends[-1],
            1000 / (sum(appends) / len(appends)),
            "-",
            None,
        ),
        row(
            "in-process, 1 row, explained",
            explained[n // 2],
            explained[int(n * 0.99)],
            explained[-1],
            1000 / (sum(explained) / n),
            "-",
            timings[n // 2],
        ),
    ]


def wrk(base: str, key: str, bodies: list[dict], connections: int, seconds: int) -> dict:
    lua = WRK_SCRIPT % (", ".join(json.dumps(json.dumps(b)) for b in bodies), key)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        done = subprocess.run(
            ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s", "-s", f.name, f"{base}/predict"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(f.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    return json.loads(line[4:])


def batch(base: str, key: str, bodies: list[dict], rounds: int) -> dict:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    payload = json.dumps({"events": bodies})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    timings = []
    for i in range(rounds + 2):
        t = time.perf_counter()
        conn.request("POST", "/predict_batch", payload, headers)
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status != 200 or len(json.loads(answer)) != len(bodies):
            raise SystemExit(f"batch request answered HTTP {resp.status}: {answer[:300]!r}")
        if i >= 2:  # two warm-up rounds
            timings.append((time.perf_counter() - t) * 1000)
    timings.sort()
    return row(
        f"HTTP batch of {len(bodies):,} rows (per request)",
        timings[len(timings) // 2],
        timings[min(len(timings) - 1, int(len(timings) * 0.99))],
        timings[-1],
        len(bodies) / (timings[len(timings) // 2] / 1000),
        f">= {GOAL_BATCH_RPS:,} rows/s",
        None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--reuse", action="store_true", help="keep the world a previous run built")
    parser.add_argument("--workers", type=int, help="LIFECYCLE_SERVING_WORKERS for the served service")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds before each measurement")
    parser.add_argument("--requests", type=int, default=3000, help="timed in-process calls")
    parser.add_argument("--rounds", type=int, default=20, help="timed batch requests")
    parser.add_argument("--smoke", action="store_true", help="CI's check that the bench runs: every step, briefly")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    if shutil.which("wrk") is None:
        raise SystemExit(
            "bench/serving.py drives the service with wrk, which is not installed: "
            "`make bench-tools` installs Debian's package (or run `make bench`)"
        )
    if not (args.reuse and (STATE / "lake").exists()):
        world.build(STATE, DAYS)
    cfg = settings.load()
    key = cfg.serving_api_key()
    bodies = sample(1000)
    table = in_process(bodies, args.requests)
    limit = table[0]["p50_ms"]
    overrides = {
        "LIFECYCLE_SERVING_SOURCE": "bench",
        **({"LIFECYCLE_SERVING_WORKERS": str(args.workers)} if args.workers else {}),
    }
    with packaging.serving(packaging.SERVICE, overrides) as base:
        before = len(prediction_reader.read(source="bench"))
        for connections in (1, 8):
            wrk(base, key, bodies, connections, args.warmup)  # warm-up
            got = wrk(base, key, bodies, connections, args.seconds)
            if got["errors"]:
                raise SystemExit(f"wrk saw {got['errors']} failed requests with {connections} connections")
            table.append(
                row(
                    f"HTTP single row, {connections} connection{'s' * (connections > 1)}",
                    got["p50_us"] / 1000,
                    got["p99_us"] / 1000,
                    got["max_us"] / 1000,
                    got["requests"] / got["seconds"],
                    f"p99 <= {GOAL_P99_MS} ms, >= {GOAL_RPS} req/s",
                    limit,
                )
            )
        asked = [dict(b, explain=True) for b in bodies]
        wrk(base, key, asked, 1, args.warmup)
        got = wrk(base, key, asked, 1, args.seconds)
        if got["errors"]:
            raise SystemExit(f"wrk saw {got['errors']} failed explained requests")
        table.append(
            row(
                "HTTP single row explained, 1 connection",
                got["p50_us"] / 1000,
                got["p99_us"] / 1000,
                got["max_us"] / 1000,
                got["requests"] / got["seconds"],
                "-",
                limit,
            )
        )
        table.append(batch(base, key, bodies, args.rounds))
        status = packaging.post(f"{base}/status", {}, key)[1]
    sent = len(prediction_reader.read(source="bench")) - before
    print(f"{'measurement':<42} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'per s':>10}  {'x in-proc':>9}  goal")
    for r in table:
        ratio = f"{r['x_in_process_p50']:.1f}" if r["x_in_process_p50"] else "-"
        print(
            f"{r['measurement']:<42} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['max_ms']:>8.3f} "
            f"{r['per_s']:>10,.1f}  {ratio:>9}  {r['goal']}"
        )
    print(
        f"\nserving model version {status['serving']['champion']}; prediction log: {sent:,} rows written by this "
        f"run (the service reported {status['prediction_log']['logged_rows']:,} logged + "
        f"{status['prediction_log']['writing_rows']:,} being written + "
        f"{status['prediction_log']['buffered_rows']:,} buffered before its final flush); "
        f"{overrides.get('LIFECYCLE_SERVING_WORKERS', cfg.serving_workers)} service worker(s), "
        f"{os.cpu_count()} cores, python {sys.version.split()[0]}"
    )
    if args.smoke:
        print("(--smoke: every step ran briefly; run the bench without it for the figures)")


if __name__ == "__main__":
    main()
