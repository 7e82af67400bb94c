"""The scale-out suite runs against this machine's PostgreSQL and Redis. If either is missing the
run fails here, loudly: CI must not pass by skipping it."""

import socket

import pytest

SERVICES = {"PostgreSQL": ("127.0.0.1", 5432), "Redis": ("127.0.0.1", 6379)}


@pytest.fixture(scope="session", autouse=True)
def services_available():
    for name, (host, port) in SERVICES.items():
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as err:
            pytest.fail(
                f"{name} is not reachable at {host}:{port} ({err}): `make test-services` needs the "
                "machine's PostgreSQL and Redis running",
                pytrace=False,
            )
