"""Package the champion as a bento and prove it serves before anyone relies on it."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from lifecycle import settings as _settings
from lifecycle import tracking
from lifecycle.schema import CHAMPION

SERVICE = "lifecycle.serving:FraudService"
GOOD = {"transaction_id": "golden-1", "card_id": "c00001", "merchant_id": "m0001", "amount": 42.5,
        "merchant_category": "grocery", "country": "US", "channel": "pos",
        "event_timestamp": "2026-10-20T12:00:00Z"}
# (request, expected HTTP status): known and unknown entities must score; contract breaches answer 400.
GOLDEN = [
    (GOOD, 200),
    ({**GOOD, "transaction_id": "golden-2", "card_id": "never-seen", "amount": 950.0, "channel": "online"}, 200),
    ({**GOOD, "transaction_id": "golden-3", "amount": -5}, 400),
    ({**GOOD, "transaction_id": "golden-4", "merchant_category": "casino"}, 400),
    ({k: v for k, v in GOOD.items() if k != "card_id"}, 400),
]


class SmokeTestError(RuntimeError):
    """The built service did not start or answered a golden request wrongly."""


def import_champion() -> dict:
    """Copy the champion from the MLflow registry into the BentoML model store (idempotent)."""
    import bentoml

    cfg = _settings.load()
    champion = tracking.version_by_alias(CHAMPION)
    if champion is None:
        raise LookupError(f"model {cfg.model_name!r} has no {CHAMPION!r} alias: nothing to package")
    tag = f"{cfg.model_name}:v{champion.version}"
    try:
        model = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        model = bentoml.mlflow.import_model(
            tag, model_uri=f"models:/{cfg.model_name}/{champion.version}",
            labels={"mlflow_version": str(champion.version), "mlflow_model": cfg.model_name},
            metadata={k: v for k, v in champion.tags.items() if k.startswith("holdout_")})
    return {"bento_model": str(model.tag), "mlflow_version": str(champion.version)}


def locked_packages() -> list[str]:
    lock = _settings.PROJECT_ROOT / "requirements.lock"
    return [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]


def build(mlflow_version: str) -> str:
    """Build the bento from the library; dependencies come from the committed lock, not PyPI."""
    import bentoml

    cfg = _settings.load()
    bento = bentoml.bentos.build(
        SERVICE, name=cfg.bento_name, version=f"v{mlflow_version}-{int(time.time())}",
        build_ctx=str(_settings.PROJECT_ROOT / "include"), include=["lifecycle/*.py"],
        labels={"mlflow_model": cfg.model_name, "mlflow_version": str(mlflow_version)},
        python={"packages": locked_packages(), "lock_packages": False},
        docker={"python_version": "3.11"},
    )
    return str(bento.tag)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {"error": err.read().decode(errors="replace")[:300]}


@contextlib.contextmanager
def serving(bento_tag: str, startup_timeout: float = 120) -> Iterator[str]:
    """``bentoml serve`` the bento on a free local port until the block ends; yields its base URL."""
    port = free_port()
    log = _settings.load().state_dir / "bentoml" / f"serve-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bentoml", "serve", bento_tag, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None or b"Application startup failed" in log.read_bytes():
                raise SmokeTestError(f"bentoml serve {bento_tag} failed to start (exit {proc.poll()}); see {log}")
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SmokeTestError(f"bentoml serve {bento_tag} not ready after {startup_timeout}s; see {log}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def smoke_test(bento_tag: str, mlflow_version: str) -> dict:
    """Serve the bento, check the golden requests, stop it; raise on any mismatch."""
    with serving(bento_tag) as base:
        results, latencies = [], []
        for body, expected in GOLDEN:
            t = time.perf_counter()
            status, answer = post(f"{base}/predict", body)
            latencies.append((time.perf_counter() - t) * 1000)
            ok = status == expected
            if ok and status == 200:
                ok = (answer.get("model_version") == str(mlflow_version)
                      and 0.0 <= answer.get("fraud_probability", -1) <= 1.0)
            results.append({"transaction_id": body.get("transaction_id"), "status": status,
                            "expected": expected, "ok": ok, "answer": answer})
    bad = [r for r in results if not r["ok"]]
    if bad:
        raise SmokeTestError(f"golden requests failed against {bento_tag}: {bad}")
    return {"bento": bento_tag, "requests": len(results), "latency_ms_max": round(max(latencies), 2),
            "results": results}
