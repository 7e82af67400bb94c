"""A real SMTP server process (aiosmtpd) for the demo and tests: every message it accepts is
written whole into a folder as ``<time>-<n>.eml``, so a test reads exactly what a mail client would.

``python -m lifecycle.devtools.smtp_server --port P --folder DIR`` serves until SIGTERM; ``start``
runs it in the background and returns a handle with the Airflow connection that reaches it.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


class Folder:
    """aiosmtpd's handler: each message's bytes, as received, to a file of its own."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.count += 1
        name = f"{time.time_ns()}-{self.count:06d}.eml"
        staged = self.folder / f".{name}"
        staged.write_bytes(envelope.original_content)
        staged.rename(self.folder / name)  # whole or not at all
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int
    folder: Path
    proc: subprocess.Popen

    def connection(self) -> str:
        """The Airflow connection (JSON, as ``AIRFLOW_CONN_<ID>`` takes it) for this server:
        plain SMTP on localhost, no TLS, one try."""
        extra = {"disable_ssl": True, "disable_tls": True, "retry_limit": 0, "timeout": 10}
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port, "extra": extra})

    def messages(self) -> list[email.message.EmailMessage]:
        """Every message received so far, oldest first."""
        names = sorted(p for p in self.folder.glob("*.eml"))
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in names]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)


def start(folder: Path, log: Path, timeout: float = 30) -> SmtpServer:
    from lifecycle.devtools.sandbox import free_port

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lifecycle.devtools.smtp_server", "--port", str(port), "--folder", str(folder)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(512).startswith(b"220"):  # the greeting: the server answers
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"SMTP server did not start on port {port}; see {log}")
        time.sleep(0.2)
    return SmtpServer(port, folder, proc)


def main(argv: list[str] | None = None) -> None:
    import argparse

    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(Folder(args.folder), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"SMTP server on 127.0.0.1:{args.port}, messages in {args.folder}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
