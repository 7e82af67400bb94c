"""An isolated scale-out deployment on this machine's PostgreSQL and Redis, with its own S3 server.

For tests and benchmarks: each sandbox gets its own database prefix, its own Redis database
number (claimed with SET NX, so two concurrent runs never share one), its own bucket and ports,
and removes all of them when it ends, so runs never see each other's state.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path


def free_port(span: int = 1) -> int:
    """A port p with p..p+span-1 all free (Airflow uses the api port and the next ones)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + span < 65500 and all(_free(port + i) for i in range(span)):
            return port
    raise RuntimeError(f"no {span} consecutive free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def claim_redis_db(base_url: str, run_id: str) -> int:
    """An unused Redis database number (1-15), marked as this run's.

    Unused means no keys and no client connected to it: a Celery worker left over from a killed
    run holds no keys after a flush, yet would steal this run's task messages.
    """
    import redis

    from lifecycle.platform.services import CLAIM_KEY

    in_use = {int(c["db"]) for c in redis.Redis.from_url(base_url, db=0).client_list()}
    for db in sorted(set(range(1, 16)) - in_use):
        client = redis.Redis.from_url(base_url, db=db)
        if client.set(CLAIM_KEY, run_id, nx=True):
            if client.dbsize() == 1:
                return db
            client.delete(CLAIM_KEY)  # someone else's data lives there
    raise RuntimeError(f"no unused Redis database (1-15) at {base_url}")


@contextlib.contextmanager
def scaleout(
    state_dir: Path,
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432",
    redis_url: str = "redis://127.0.0.1:6379",
) -> Iterator[dict[str, str]]:
    """Environment of a fresh scale-out deployment (applied to ``os.environ`` while it lasts)."""
    from lifecycle.devtools import s3_server
    from lifecycle.platform import services

    run = uuid.uuid4().hex[:8]
    s3 = s3_server.start(state_dir / "s3-server.log")
    saved = dict(os.environ)
    try:
        db = claim_redis_db(redis_url, run)
        values = {
            "LIFECYCLE_PROFILE": "scaleout",
            "LIFECYCLE_STATE_DIR": str(state_dir),
            "LIFECYCLE_POSTGRES_URL": postgres_url,
            "LIFECYCLE_DB_PREFIX": f"lifecycle_t{run}",
            "LIFECYCLE_REDIS_URL": f"{redis_url}/{db}",
            "LIFECYCLE_S3_ENDPOINT_URL": s3.endpoint_url,
            "LIFECYCLE_S3_BUCKET": f"lifecycle-t{run}",
            "LIFECYCLE_S3_ACCESS_KEY": s3.access_key,
            "LIFECYCLE_S3_SECRET_KEY": s3.secret_key,
            "LIFECYCLE_MLFLOW_URL": f"http://127.0.0.1:{free_port()}",
            "LIFECYCLE_AIRFLOW_PORT": str(free_port(span=4)),
            "LIFECYCLE_SERVING_PORT": str(free_port()),
        }
        os.environ.update(values)
        services.create_bucket()
        try:
            yield values
        finally:
            os.environ.clear()
            os.environ.update({**saved, **values})
            services.drop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        s3.stop()
