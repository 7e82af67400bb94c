"""Single-row latency of the packaged fraud service over HTTP (one keep-alive connection).

Run after `make demo` (it serves the latest bento built there):
    .local/venv/bin/python bench/serving_latency.py --requests 2000
Prints p50/p95/p99 latency and throughput for known and unknown cards (online feature hit/miss).
"""
import argparse
import http.client
import json
import statistics
import time
import urllib.parse

from lifecycle import env

env.apply()

from lifecycle import packaging  # noqa: E402  (after the environment is applied)
from lifecycle import settings as _settings  # noqa: E402


def measure(base: str, body: dict, n: int) -> dict:
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    payload, headers = json.dumps(body), {"Content-Type": "application/json"}
    timings = []
    for i in range(n):
        t = time.perf_counter()
        conn.request("POST", "/predict", payload, headers)
        resp = conn.getresponse()
        resp.read()
        timings.append((time.perf_counter() - t) * 1000)
        if resp.status != 200:
            raise SystemExit(f"request {i} answered HTTP {resp.status}")
    conn.close()
    q = statistics.quantiles(timings, n=100)
    return {"requests": n, "p50_ms": round(q[49], 2), "p95_ms": round(q[94], 2), "p99_ms": round(q[98], 2),
            "req_per_s": round(n / (sum(timings) / 1000), 1)}


def main() -> None:
    import bentoml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    bento = str(bentoml.get(f"{_settings.load().bento_name}:latest").tag)
    with packaging.serving(bento) as base:
        measure(base, packaging.GOOD, 50)  # warm-up
        known = measure(base, packaging.GOOD, args.requests)
        unknown = measure(base, {**packaging.GOOD, "card_id": "never-seen"}, args.requests)
    print(json.dumps({"bento": bento, "known_card": known, "unknown_card": unknown}, indent=2))


if __name__ == "__main__":
    main()
