"""A load generator for the live service (demo, tests): threads replaying transactions over
keep-alive HTTP connections, recording every answer, so a run can say how many requests
failed and when a model switch reached the service."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Answer:
    sent_at: float  # time.time() when sent
    status: int
    latency_ms: float
    model_version: str | None
    arm: str | None
    request_id: str | None
    error: str | None = None


@dataclass
class Load:
    """``connections`` threads POSTing ``bodies`` round-robin to ``base``/predict until stopped
    (or ``total`` requests were sent)."""

    base: str
    key: str
    bodies: list[dict]
    connections: int = 4
    total: int | None = None
    pause: float = 0.0  # seconds each connection waits between requests (a paced replay)
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._next = itertools.count()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.connections)]
        self._lock = threading.Lock()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def wait(self, timeout: float = 600) -> None:
        """Until ``total`` requests were answered."""
        for t in self._threads:
            t.join(timeout)

    def _run(self) -> None:
        url = urlsplit(self.base)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        while not self._stop.is_set():
            i = next(self._next)
            if self.total is not None and i >= self.total:
                return
            body = json.dumps(self.bodies[i % len(self.bodies)], default=str)
            sent, start = time.time(), time.perf_counter()
            try:
                conn.request("POST", "/predict", body, headers)
                resp = conn.getresponse()
                data = resp.read()
                answer = json.loads(data) if resp.status == 200 else {}
                got = Answer(
                    sent,
                    resp.status,
                    (time.perf_counter() - start) * 1000,
                    answer.get("model_version"),
                    answer.get("arm"),
                    answer.get("request_id"),
                    None if resp.status == 200 else data[:300].decode(errors="replace"),
                )
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                got = Answer(sent, 0, (time.perf_counter() - start) * 1000, None, None, None, repr(err))
            with self._lock:
                self.answers.append(got)
            if self.pause:
                self._stop.wait(self.pause)

    def errors(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def first_answer_from(self, version: str, after: float) -> float | None:
        """Seconds from ``after`` to the first request sent after it that ``version`` answered."""
        times = [a.sent_at for a in list(self.answers) if a.model_version == str(version) and a.sent_at >= after]
        return min(times) - after if times else None

    def percentiles(self) -> dict:
        lat = sorted(a.latency_ms for a in self.answers if a.status == 200)
        if not lat:
            return {}
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return {"p50_ms": round(lat[len(lat) // 2], 2), "p99_ms": round(p99, 2), "max_ms": round(lat[-1], 2)}


def wait_for_version(load: Load, version: str, after: float, timeout: float = 30) -> float:
    """Seconds until the service (under ``load``) first answered with ``version`` after ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (seconds := load.first_answer_from(version, after)) is not None:
            return seconds
        time.sleep(0.05)
    raise TimeoutError(f"version {version} did not answer within {timeout}s of the alias move")
