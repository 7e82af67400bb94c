"""The scale-out profile's services: check them before anything runs, create and remove what a
deployment owns (its PostgreSQL databases, its S3 bucket, its Redis database's keys).

A bad setting fails here, at set-up, with the service and the setting named, instead of as a
stack trace deep inside a task. Nothing here runs for the embedded profile.
"""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

from lifecycle import settings as _settings

DATABASES = ("airflow", "mlflow", "feast")
CLAIM_KEY = "lifecycle:sandbox"  # marks a Redis database number as taken by a test or benchmark run


class ServiceError(RuntimeError):
    """A service of the profile is unreachable, rejects the credentials, or lacks what it needs."""


def _svc() -> _settings.Services:
    svc = _settings.load().services
    if svc is None:
        raise ServiceError("LIFECYCLE_PROFILE is not scaleout: there are no external services to manage")
    return svc


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _postgres(svc: _settings.Services, database: str = "postgres"):
    import psycopg2

    url = svc.postgres_url.rstrip("/") + f"/{database}"
    try:
        conn = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.OperationalError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kind = "rejected the credentials in" if "password" in reason or "authentication" in reason else "failed for"
        raise ServiceError(
            f"PostgreSQL at {_where(svc.postgres_url)} {kind} LIFECYCLE_POSTGRES_URL: {reason}"
        ) from None
    conn.autocommit = True
    return conn


def _redis(svc: _settings.Services):
    import redis

    client = redis.Redis.from_url(svc.redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        client.ping()
    except redis.AuthenticationError as err:
        raise ServiceError(
            f"Redis at {_where(svc.redis_url)} rejected the password in LIFECYCLE_REDIS_URL: {err}"
        ) from None
    except redis.ResponseError as err:  # AUTH sent to a server without a password is an error too
        raise ServiceError(
            f"Redis at {_where(svc.redis_url)} refused LIFECYCLE_REDIS_URL's credentials: {err}"
        ) from None
    except (redis.ConnectionError, redis.TimeoutError) as err:
        raise ServiceError(f"Redis unreachable at {_where(svc.redis_url)} (LIFECYCLE_REDIS_URL): {err}") from None
    return client


def s3_client(svc: _settings.Services | None = None):
    import boto3
    from botocore.config import Config

    svc = svc or _svc()
    return boto3.client(
        "s3",
        endpoint_url=svc.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=svc.s3_access_key,
        aws_secret_access_key=svc.s3_secret_key,
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
    )


def _check_bucket(svc: _settings.Services) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    try:
        s3_client(svc).head_bucket(Bucket=svc.s3_bucket)
    except EndpointConnectionError as err:
        raise ServiceError(
            f"S3 endpoint unreachable at {svc.s3_endpoint_url} (LIFECYCLE_S3_ENDPOINT_URL): {err}"
        ) from None
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            raise ServiceError(
                f"S3 bucket {svc.s3_bucket!r} does not exist at {svc.s3_endpoint_url} "
                "(LIFECYCLE_S3_BUCKET): create it first (`python -m lifecycle.platform.services "
                "create-bucket`, or the compose service create-bucket)"
            ) from None
        if code in ("403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            raise ServiceError(
                f"S3 at {svc.s3_endpoint_url} rejected the credentials in LIFECYCLE_S3_ACCESS_KEY / "
                f"LIFECYCLE_S3_SECRET_KEY (HTTP {code}) for bucket {svc.s3_bucket!r}"
            ) from None
        raise ServiceError(f"S3 at {svc.s3_endpoint_url} answered {code} for bucket {svc.s3_bucket!r}") from None


def check() -> None:
    """Every service reachable, credentials accepted, bucket present; all problems in one error."""
    svc = _svc()
    problems = []
    for probe in (lambda: _postgres(svc).close(), lambda: _redis(svc).close(), lambda: _check_bucket(svc)):
        try:
            probe()
        except ServiceError as err:
            problems.append(str(err))
    if problems:
        raise ServiceError("scale-out services not ready:\n  - " + "\n  - ".join(problems))


def create_databases() -> list[str]:
    """This deployment's databases (``<prefix>_airflow`` ...), created when missing; returns the new ones."""
    svc = _svc()
    created = []
    conn = _postgres(svc)
    with contextlib.closing(conn), conn.cursor() as cur:
        for purpose in DATABASES:
            name = svc.database(purpose)
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    return created


def create_bucket() -> None:
    svc = _svc()
    client = s3_client(svc)
    if svc.s3_bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=svc.s3_bucket)


def empty_bucket(delete: bool = False) -> int:
    """Remove every object of the bucket (and the bucket with ``delete``); returns the objects removed."""
    svc = _svc()
    client = s3_client(svc)
    removed = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=svc.s3_bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=svc.s3_bucket, Delete={"Objects": keys})
            removed += len(keys)
    if delete:
        client.delete_bucket(Bucket=svc.s3_bucket)
    return removed


def drop(keep_bucket: bool = False) -> None:
    """Remove everything this deployment owns: databases, its Redis database's keys, the bucket."""
    svc = _svc()
    conn = _postgres(svc)
    with contextlib.closing(conn), conn.cursor() as cur:
        for purpose in DATABASES:
            cur.execute(f'DROP DATABASE IF EXISTS "{svc.database(purpose)}" WITH (FORCE)')
    client = _redis(svc)
    claim = client.get(CLAIM_KEY)
    client.flushdb()
    if keep_bucket and claim is not None:  # a reset keeps the sandbox's claim on this database number
        client.set(CLAIM_KEY, claim)
    from botocore.exceptions import ClientError

    try:
        empty_bucket(delete=not keep_bucket)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise


def reset() -> None:
    """A clean slate for a demo run: no databases, no online features, an empty bucket."""
    if _settings.load().services is not None:
        drop(keep_bucket=True)


def main(argv: list[str] | None = None) -> None:
    import argparse

    actions = {"check": check, "create-bucket": create_bucket, "create-databases": create_databases, "drop": drop}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=actions)
    try:
        result = actions[parser.parse_args(argv).action]()
    except ServiceError as err:
        raise SystemExit(str(err)) from None
    print(result if result is not None else "ok")


if __name__ == "__main__":
    main()
