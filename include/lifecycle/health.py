"""The live service's health figures, one definition for the service and the watch: per arm,
the requests, the share that failed to score, latency percentiles, the share served without an
entity's stored features, and the age of the stored features at the event's time.

The service keeps each arm's last ``RECENT_ROWS`` rows per worker (``Recent``: ``/status``) and
counts every row in Prometheus metrics (``/metrics``, every worker's); the watch measures the
prediction log's rows of a time window with the same ``measure``.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

RECENT_ROWS = 2000  # per arm and worker: /status's window
PERCENTILES = (50, 95, 99)


def measure(latency_ms, failed, missing, ages) -> dict:
    """Health of a set of logged rows (equal-length sequences; ``ages`` in seconds, None or NaN
    where the row had no stored snapshot)."""
    latency = np.asarray(latency_ms, float)
    n = len(latency)
    out = {"requests": n}
    if not n:
        return out
    age = np.asarray([np.nan if a is None else a for a in ages], float)
    age = age[~np.isnan(age)]
    out.update(
        {
            "errors": int(np.sum(np.asarray(failed, bool))),
            "error_rate": float(np.mean(np.asarray(failed, bool))),
            **{f"p{q}_ms": float(np.percentile(latency, q)) for q in PERCENTILES},
            "missing_features_share": float(np.mean(np.asarray(missing, bool))),
            "feature_age_p50_s": float(np.median(age)) if len(age) else None,
            "feature_age_max_s": float(age.max()) if len(age) else None,
        }
    )
    return out


class Recent:
    """Each arm's most recent rows in this process (thread-safe), and observers told of every row
    (the service's Prometheus metrics)."""

    def __init__(self, rows: int = RECENT_ROWS):
        self._rows: dict[str, deque] = {}
        self._size = rows
        self._lock = threading.Lock()
        self.observers: list = []

    def add(self, arm: str, version: str, latency_ms: float, failed: list, missing: list, ages: list) -> None:
        with self._lock:
            rows = self._rows.setdefault(arm, deque(maxlen=self._size))
            rows.extend(zip([version] * len(failed), [latency_ms] * len(failed), failed, missing, ages, strict=True))
        for observe in self.observers:
            observe(arm, version, latency_ms, failed, missing, ages)

    def summary(self) -> dict:
        """Per arm: the versions in the window and ``measure`` of its rows."""
        with self._lock:
            snapshot = {arm: list(rows) for arm, rows in self._rows.items()}
        out = {}
        for arm, rows in sorted(snapshot.items()):
            versions, latency, failed, missing, ages = zip(*rows, strict=True)
            out[arm] = {"versions": sorted(set(versions), key=int), **measure(latency, failed, missing, ages)}
        return {"window": f"this worker's last {self._size} rows per arm", "arms": out}
