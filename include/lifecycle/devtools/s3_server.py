"""A real S3-compatible server process (moto's standalone server) for tests and benchmarks.

It checks credentials like S3 does: after the three unauthenticated calls that create an IAM user,
its access key and an allow-all policy, every request must be signed with that key, so a wrong
secret is answered 403 as a real endpoint would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BOOTSTRAP_CALLS = 3  # create_user, create_access_key, put_user_policy


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)


def start(log: Path, timeout: float = 30) -> S3Server:
    import boto3

    from lifecycle.devtools.sandbox import free_port

    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(BOOTSTRAP_CALLS)},
        )
    deadline = time.monotonic() + timeout
    while True:  # a TCP probe: an HTTP request would count as one of the unauthenticated calls
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start on port {port}; see {log}") from None
            time.sleep(0.3)
    url = f"http://127.0.0.1:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="lifecycle")
    key = iam.create_access_key(UserName="lifecycle")["AccessKey"]
    iam.put_user_policy(
        UserName="lifecycle",
        PolicyName="lake",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    return S3Server(url, key["AccessKeyId"], key["SecretAccessKey"], proc)
