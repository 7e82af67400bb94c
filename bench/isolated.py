"""Each figure of a bench in a Python process of its own, so its peak memory is the figure's alone.

A bench runs ``python <bench> --child NAME --state S --rows N`` through ``run``; the child prints
its figures as one JSON line, its peak (``status_mb("VmHWM")``) included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status: VmHWM (peak resident), VmRSS (now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def run(script: str, name: str, state: Path, rows: int) -> dict:
    """``script``'s figure ``name`` measured in a child process on ``state``; adds its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, script, "--child", name, "--state", str(state), "--rows", str(rows)],
        capture_output=True,
        text=True,
        env={**os.environ, "LIFECYCLE_STATE_DIR": str(state)},
    )
    if proc.returncode:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"{name}: exit {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result
