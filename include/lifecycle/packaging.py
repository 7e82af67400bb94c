"""Package the service as a bento and prove it serves an approved version before it goes live.

The bento is the code artifact (the service and the locked environment); models come from the
registry at run time. ``smoke_test`` serves the bento pinned to one version
(LIFECYCLE_SERVING_PIN_VERSION), so golden requests check that version before any alias moves.
The golden requests derive from the use case's contract: its example, an entity never seen, and
one breach of each kind of rule.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lifecycle import bento_content, contract
from lifecycle import settings as _settings
from lifecycle.platform.cluster import SERVICE


def golden(uc: contract.UseCase, at: str | None = None) -> list[tuple[dict, bool, int]]:
    """(request, with the API key, expected HTTP status): a known and an unknown entity must
    score; a number out of range, a category not allowed and a missing entity key answer 400; no
    key answers 401. ``at``: the events' time instead of the example's (within the stored
    features' TTL, so the known entity's features are read)."""
    good = {**uc.example, **({uc.time: at} if at else {})}
    ids = (f"golden-{i}" for i in range(2, 100))
    out = [(good, True, 200), ({**good, uc.id: next(ids), **uc.unknown}, True, 200)]
    numbers = [uc.column(c) for c in uc.of(contract.NUMBER)]
    if low := next((c for c in numbers if c.min is not None), None):
        out.append(({**good, uc.id: next(ids), low.name: low.min - abs(low.min) - 1}, True, 400))
    if uc.categoricals:
        out.append(({**good, uc.id: next(ids), uc.categoricals[0]: "not-an-allowed-value"}, True, 400))
    out.append(({k: v for k, v in {**good, uc.id: next(ids)}.items() if k != uc.entities[0]}, True, 400))
    out.append(({**good, uc.id: next(ids)}, False, 401))
    return out


def request_bodies(frame, uc: contract.UseCase | None = None) -> list[dict]:
    """Events (curated rows) as the JSON bodies the live service takes."""
    uc = uc or contract.current()
    frame = frame.assign(**{uc.time: frame[uc.time].map(lambda t: t.isoformat())})
    return frame[list(uc.event_columns)].to_dict("records")


class SmokeTestError(RuntimeError):
    """The built service did not start or answered a golden request wrongly."""


class GoldenRequestsFailed(SmokeTestError):
    """The service started and answered a golden request wrongly: the same bento and version answer
    the same way again, so a retry cannot help."""


def locked_packages(names: set[str] | None = None) -> list[str]:
    """The lock's ``name==version`` lines; with ``names`` (canonical distribution names), only those."""
    lock = _settings.PROJECT_ROOT / "requirements.lock"
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    return lines if names is None else bento_content.locked_subset(lines, names)


def build(mlflow_version: str) -> str:
    """Build the bento: only the modules the service imports, the use case's package (which it
    loads by setting) whole, and only the locked packages in their install-requires closure;
    dependencies come from the committed lock, not PyPI.

    ``bentoml build`` runs in a fresh interpreter on the build context: the service it imports
    (its name, its request model) is the one the bento ships, never a module this process
    imported earlier under other settings."""
    import yaml

    cfg = _settings.load()
    with tempfile.TemporaryDirectory(prefix="bento-ctx-") as ctx:
        found = bento_content.build_context(
            Path(ctx), [contract.package_dir(cfg)], cfg.cache_dir / "bento-probe", modules=[cfg.use_case]
        )
        bentofile = {
            "service": SERVICE,
            "name": cfg.bento_name,
            "labels": {"mlflow_model": cfg.model_name, "mlflow_version": str(mlflow_version)},
            "exclude": ["__pycache__", "*.pyc"],
            "python": {"packages": locked_packages(bento_content.serving_distributions(found)), "lock_packages": False},
            "docker": {"python_version": "3.11"},
        }
        (Path(ctx) / "bentofile.yaml").write_text(yaml.safe_dump(bentofile, sort_keys=False))
        cmd = [sys.executable, "-m", "bentoml", "build", ctx, "--version", f"v{mlflow_version}-{int(time.time())}"]
        done = subprocess.run(
            [*cmd, "--output", "tag"],
            cwd=ctx,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ctx, os.environ.get("PYTHONPATH")]))},
            capture_output=True,
            text=True,
            timeout=600,
        )
    tags = [line.removeprefix("__tag__:") for line in done.stdout.splitlines() if line.startswith("__tag__:")]
    if done.returncode != 0 or not tags:
        raise RuntimeError(
            f"bentoml build failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return tags[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict | list, key: str | None = None) -> tuple[int, dict]:
    """POST JSON (with the bearer ``key`` if given); returns (HTTP status, parsed body or error text)."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {"error": err.read().decode(errors="replace")[:300]}


@contextlib.contextmanager
def serving(
    target: str = SERVICE, overrides: dict[str, str] | None = None, startup_timeout: float = 120, ready: bool = True
) -> Iterator[str]:
    """``bentoml serve`` a bento (or the source service) on a free local port until the block ends,
    with ``overrides`` added to its environment; yields its base URL once /readyz answers 200
    (or, with ``ready=False``, once it answers at all)."""
    port = free_port()
    log = _settings.load().state_dir / "bentoml" / f"serve-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(overrides or {})},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, startup_timeout, proc, log, ready)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(base: str, timeout: float, proc: subprocess.Popen | None = None, log=None, ready: bool = True) -> None:
    """Until ``base``/readyz answers 200 (or anything, with ``ready=False``); SmokeTestError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and (proc.poll() is not None or b"Application startup failed" in log.read_bytes()):
            raise SmokeTestError(f"the service at {base} failed to start (exit {proc.poll()}); see {log}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError:
            if not ready:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SmokeTestError(f"the service at {base} was not ready after {timeout}s; see {log}")
        time.sleep(0.5)


def _after_newest_day(uc: contract.UseCase) -> str | None:
    """Noon after the newest curated day (a snapshot stamped at a day's end serves the next day)."""
    import datetime as dt

    from lifecycle import lake

    days = lake.dates("curated", uc.events)
    return f"{days[-1] + dt.timedelta(days=1)}T12:00:00Z" if days else None


def smoke_test(bento_tag: str, mlflow_version: str) -> dict:
    """Serve the bento pinned to ``mlflow_version``, check the golden requests, stop it; raise on any
    mismatch. Its answers are logged with source ``smoke_test``, apart from live traffic."""
    cfg = _settings.load()
    key = cfg.serving_api_key()
    uc = contract.current(cfg)
    pinned = {
        "LIFECYCLE_SERVING_PIN_VERSION": str(mlflow_version),
        "LIFECYCLE_SERVING_SOURCE": "smoke_test",
        # the golden requests need one worker: a second one loads the same libraries and model for
        # nothing (8.3 s of CPU a smoke test on this 2-core machine kind: 18.9 s with two, 10.6 s with one)
        "LIFECYCLE_SERVING_WORKERS": "1",
    }
    with serving(bento_tag, pinned) as base:
        results, latencies = [], []
        for body, with_key, expected in golden(uc, _after_newest_day(uc)):
            t = time.perf_counter()
            status, answer = post(f"{base}/predict", body, key if with_key else None)
            latencies.append((time.perf_counter() - t) * 1000)
            ok = status == expected
            if ok and status == 200:
                ok = (
                    answer.get("model_version") == str(mlflow_version)
                    and answer.get("arm") == "champion"
                    and 0.0 <= answer.get(uc.score, -1) <= 1.0
                )
            results.append(
                {
                    "id": body.get(uc.id),
                    "status": status,
                    "expected": expected,
                    "ok": ok,
                    "answer": answer,
                }
            )
    bad = [r for r in results if not r["ok"]]
    if bad:
        raise GoldenRequestsFailed(
            f"golden requests failed against {bento_tag} serving version {mlflow_version}: {bad}"
        )
    return {
        "bento": bento_tag,
        "version": str(mlflow_version),
        "requests": len(results),
        "latency_ms_max": round(max(latencies), 2),
        "results": results,
    }
